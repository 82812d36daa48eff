//! `pxos view`: the page end to end in headless Chromium (Debian's chromium
//! and chromium-driver, driven by selenium), and the server against hostile
//! requests. `pxos map` and `pxos vram run` through the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pxos_view::publish::request;
use serde_json::Value;

use crate::support::{Home, json_lines, repo_root};

/// A running `pxos view` and its port and token.
struct View {
    child: Child,
    url: String,
    port: u16,
    token: String,
}

impl View {
    fn start(home: &Home) -> View {
        let mut child = home
            .pxos()
            .args(["--json", "view"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
        let port = started["port"].as_u64().unwrap() as u16;
        let address: Value = serde_json::from_str(
            &std::fs::read_to_string(home.home().join("view/server.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(address["port"].as_u64(), Some(u64::from(port)));
        View {
            child,
            url: started["url"].as_str().unwrap().to_string(),
            port,
            token: address["token"].as_str().unwrap().to_string(),
        }
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        request(self.port, "GET", path, "", &[]).unwrap()
    }

    fn json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit (a process stopped by Q); fails past `limit`.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// python3 with selenium, chromium and chromedriver; under CI=true their absence fails.
fn browser() -> Option<PathBuf> {
    let python = pxos_test_support::require_tool("python3")?;
    pxos_test_support::require_tool("chromium")?;
    pxos_test_support::require_tool("chromedriver")?;
    let probe = Command::new(&python)
        .args(["-c", "import selenium"])
        .output()
        .unwrap();
    if !probe.status.success() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "selenium is required under CI=true (cargo xtask setup installs it)"
        );
        eprintln!("skipping: selenium is missing (cargo xtask setup)");
        return None;
    }
    Some(python)
}

fn read_rgba(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    let rgba = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .flat_map(|p| match channels {
            4 => [p[0], p[1], p[2], p[3]],
            3 => [p[0], p[1], p[2], 255],
            _ => [p[0], p[0], p[0], 255],
        })
        .collect();
    (frame.width, frame.height, rgba)
}

#[test]
fn the_page_in_headless_chromium_shows_the_live_system() {
    let Some(python) = browser() else { return };
    let home = Home::new("view-browser");
    home.ok(&["boot"]);
    let file = home.scratch("note.txt");
    std::fs::write(&file, b"pixels all the way down\n").unwrap();
    home.ok(&["fs", "add", "/docs/view-test.txt", file.to_str().unwrap()]);
    home.ok(&["map", "put", "10", "5", file.to_str().unwrap()]);
    home.ok(&["map", "put", "-300", "5", file.to_str().unwrap()]);
    home.ok(&["tasks", "add", "a task for the view", "--expect", "hi"]);
    let view = View::start(&home);
    let work = home.scratch("browser");
    std::fs::create_dir_all(&work).unwrap();
    let script = repo_root().join("crates/pxos-cli/tests/view/browser.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            &view.url,
            env!("CARGO_BIN_EXE_pxos"),
            work.to_str().unwrap(),
            "/docs/view-test.txt",
        ])
        .env("PXOS_HOME", home.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "browser.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    eprintln!("browser saw: {seen}");
    assert_eq!(seen["last_label"], "run_hello");
    // The map chat and the agents panel.
    let chat = seen["chat"].as_str().unwrap();
    assert!(
        chat.contains("user: hello tile") && chat.contains("assistant"),
        "{chat}"
    );
    assert_eq!(seen["agent_rows"], 1);
    assert!(
        seen["agents_progress"]
            .as_str()
            .unwrap()
            .contains("1 tasks"),
        "{seen}"
    );
    assert!(seen["agent_exchanges"].as_u64().unwrap() >= 1);
    // "tile TX, TY": the tile clicked; its note holds the conversation.
    let tile = seen["chat_tile"].as_str().unwrap();
    let coords: Vec<i64> = tile["tile ".len()..]
        .split(" · ")
        .next()
        .unwrap()
        .split(", ")
        .map(|n| n.parse::<i64>().unwrap() * 256)
        .collect();
    let note = home.ok(&[
        "--json",
        "map",
        "chat",
        &coords[0].to_string(),
        &coords[1].to_string(),
    ]);
    assert!(
        note.contains("hello tile"),
        "the conversation is in the tile's note: {note}"
    );
    assert_eq!(seen["zoom_after_plus"], "2");
    // Generation 0 against the last: the loop changed pixels in these regions.
    let diff = seen["diff"].as_str().unwrap();
    assert!(
        diff.contains("opcode_palette") && diff.contains("metadata"),
        "{diff}"
    );
    // The hover names the pixel's region, value, writer, step and write number,
    // as the server's provenance has them for the pixel under the pointer.
    let hover = seen["hover"].as_str().unwrap();
    let coords = &hover[1..hover.find(')').unwrap()];
    let (x, y) = coords.split_once(", ").unwrap();
    let who = &seen["who_at_hover"];
    assert_eq!(who["x"].to_string(), x, "{hover} {who}");
    let write = &who["write"];
    let expected = format!(
        "({x}, {y}) region {} · value {} rgba({}) · written by {} in step {} · write #{}",
        who["region"].as_str().unwrap(),
        who["word"].as_str().unwrap(),
        who["rgba"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        write["writer"].as_str().unwrap(),
        write["step"].as_str().unwrap(),
        write["seq"]
    );
    assert!(hover.starts_with(&expected), "{hover}\n{expected}");
    assert!(
        y.parse::<u32>().unwrap() >= 15 && y.parse::<u32>().unwrap() <= 18,
        "{hover}"
    );
    assert!(
        seen["hex"].as_str().unwrap().contains("70 69 78 65 6c 73"),
        "{seen}"
    );
    assert!(
        seen["header"].as_str().unwrap().contains("payload_len"),
        "{seen}"
    );
    assert!(seen["boot_screen_width"].as_u64().unwrap() > 0);
    assert!(seen["log_entries"].as_u64().unwrap() >= 2);
    assert!(seen["lineage_nodes"].as_u64().unwrap() >= 1);
    assert!(seen["kernel_rows"].as_u64().unwrap() >= 1);
    assert!(seen["map_tiles"].as_u64().unwrap() >= 1, "{seen}");
    assert!(
        seen["map_tiles_after_pan"].as_u64().unwrap() >= 2,
        "panning loads the next tile: {seen}"
    );

    // The canvas screenshot at zoom 1 is the VRAM's pixels (alpha shown opaque).
    let (width, height, vram) = read_rgba(&work.join("os.png"));
    let (cw, ch, canvas) = read_rgba(&work.join("canvas.png"));
    assert!(cw >= width && ch >= height.min(ch), "canvas {cw}x{ch}");
    let rows = height.min(ch);
    let mut same = 0u64;
    for y in 0..rows {
        for x in 0..width {
            let v = ((y * width + x) * 4) as usize;
            let c = ((y * cw + x) * 4) as usize;
            same += u64::from(vram[v..v + 3] == canvas[c..c + 3]);
        }
    }
    let total = u64::from(rows) * u64::from(width);
    assert!(same * 1000 >= total * 999, "{same} of {total} pixels match");

    // Q stopped the server, which removed its address file.
    let mut view = view;
    assert!(
        exits_within(&mut view.child, Duration::from_secs(10)).success(),
        "pxos view after Q"
    );
    assert!(!home.home().join("view/server.json").exists());
}

#[test]
fn the_server_answers_hostile_requests_with_clear_errors() {
    let home = Home::new("view-hostile");
    home.ok(&["boot"]);
    let view = View::start(&home);

    // It listens on loopback only.
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let listening: Vec<&str> = tcp
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&format!(":{:04X}", view.port)))
        })
        .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
        .collect();
    assert_eq!(listening.len(), 1, "{listening:?}");
    assert!(
        listening[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .starts_with("0100007F:"),
        "{listening:?}"
    );

    let (status, body) = view.json("/no/such/page");
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("no such page"),
        "{body}"
    );
    let (status, body) = view.json("/api/vram/who?x=99999999999999999999999&y=1");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("'x'"), "{body}");
    let (status, _) = view.json(&format!("/api/map/tiles?tx0={}", "9".repeat(5000)));
    assert_eq!(status, 414);
    let (status, body) = view.json("/api/fs/hex?path=/docs/none&length=999999999");
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        view.json("/api/map/tile.png?tx=-9223372036854775808&ty=9223372036854775807");
    assert_eq!(status, 204, "{body}");

    // Path traversal in file browsing never reaches a host file.
    for path in [
        "../../../../etc/passwd",
        "/etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/boot/../../../etc/passwd",
    ] {
        for endpoint in ["info", "preview.png", "hex"] {
            let (status, body) = view.get(&format!("/api/fs/{endpoint}?path={path}"));
            assert!(
                status == 400 || status == 404,
                "{endpoint} {path}: {status}"
            );
            assert!(
                !String::from_utf8_lossy(&body).contains("root:"),
                "{endpoint} {path}"
            );
        }
    }
    let (status, _) = view.get("/../../etc/passwd");
    assert!(status == 404 || status == 400);

    // Publishing and quitting need the token; frames are size-capped.
    let (status, _) = request(view.port, "POST", "/api/frame", "wrong", b"x").unwrap();
    assert_eq!(status, 403);
    let (status, _) = request(view.port, "POST", "/api/quit", "", b"").unwrap();
    assert_eq!(status, 403);
    // Hostile frames: truncated, lying lengths, bad JSON, not a PNG, provenance that does not fit.
    let image = home.scratch("frame.png");
    home.ok(&["vram", "build", "default", "-o", image.to_str().unwrap()]);
    let png = std::fs::read(&image).unwrap();
    let frame = |meta: &str, png: &[u8]| {
        let mut body = (meta.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(meta.as_bytes());
        body.extend_from_slice(png);
        body
    };
    let mut lying = frame("{}", &png);
    lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    for (what, body) in [
        ("empty", Vec::new()),
        ("short length", vec![1, 0]),
        ("a length past the end", lying),
        ("bad JSON", frame("{not json", &png)),
        ("not a PNG", frame("{}", b"GIF89a")),
        ("a truncated PNG", frame("{}", &png[..png.len() / 2])),
        (
            "provenance past the texture",
            frame(
                r#"{"provenance": {"writes": [], "runs": [[4294967295, 9, 0]]}}"#,
                &png,
            ),
        ),
        (
            "a write id past the writes",
            frame(
                r#"{"provenance": {"writes": [], "runs": [[0, 1, 7]]}}"#,
                &png,
            ),
        ),
    ] {
        let (status, body) = request(view.port, "POST", "/api/frame", &view.token, &body).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, 400, "{what}: {body}");
        assert!(!body["error"].as_str().unwrap_or("").is_empty(), "{what}");
    }
    let (status, _) = view.get("/api/vram/frame.png");
    assert_eq!(status, 404, "no hostile frame was taken");
    let (status, _) = request(
        view.port,
        "POST",
        "/api/frame",
        &view.token,
        &frame("{}", &png),
    )
    .unwrap();
    assert_eq!(status, 200, "a good frame still is");
    let mut stream = TcpStream::connect(("127.0.0.1", view.port)).unwrap();
    write!(
        stream,
        "POST /api/frame HTTP/1.1\r\nHost: x\r\nx-pxos-token: {}\r\nContent-Length: {}\r\n\r\n",
        view.token,
        1u64 << 30
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).contains("413"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    // A slow client that never finishes its request does not stall the others.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", view.port)).unwrap();
            s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // And a page that reads no events does not hold up publishing.
    let mut _idle_events = TcpStream::connect(("127.0.0.1", view.port)).unwrap();
    _idle_events
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let (status, _) = view.get("/api/status");
    assert_eq!(status, 200);
    home.ok(&[
        "vram",
        "loop",
        "default",
        "--generations",
        "2",
        "--out",
        home.scratch("gens").to_str().unwrap(),
        "--view",
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    let (_, generations) = view.json("/api/vram/generations");
    assert!(
        !generations["generations"].as_array().unwrap().is_empty(),
        "{generations}"
    );
    let (status, diff) = view.json("/api/vram/diff?a=0&b=0");
    assert_eq!(status, 200, "{diff}");
    slow.iter_mut().for_each(|s| {
        let _ = s.write_all(b"1\r\n");
    });
}

#[test]
fn frames_reach_an_event_stream_and_provenance_follows_them() {
    let home = Home::new("view-stream");
    let view = View::start(&home);
    let mut events = TcpStream::connect(("127.0.0.1", view.port)).unwrap();
    events
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    events
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let image = home.scratch("os.png");
    home.ok(&["vram", "build", "default", "-o", image.to_str().unwrap()]);
    // `vram run --view` publishes slices while the kernel schedules.
    let out = home.ok(&[
        "vram",
        "run",
        image.to_str().unwrap(),
        "--steps",
        "300000",
        "--view",
        "--json",
    ]);
    let lines = json_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "print" && l["text"] == "hello from VRAM" && l["pid"] == 1)
    );
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    while !text.contains("end of run") {
        let n = events.read(&mut buffer).unwrap();
        assert!(n > 0, "the event stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    assert!(text.contains("event: frame"), "{text}");
    let (status, who) = view.json("/api/vram/who?x=39&y=161");
    assert_eq!(status, 200);
    assert_eq!(who["region"], "process_table");
    assert_eq!(who["write"]["writer"], "vram-os", "{who}");
}

#[test]
fn map_commands_round_trip_and_name_a_damaged_tile() {
    let home = Home::new("map-cli");
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let file = home.scratch("big.bin");
    std::fs::write(&file, &big).unwrap();
    let small = home.scratch("small.txt");
    std::fs::write(&small, b"Hello, Infinite Pixel World!").unwrap();
    home.ok(&["map", "put", "10000", "20000", file.to_str().unwrap()]);
    home.ok(&["map", "put", "-10", "-20", small.to_str().unwrap()]);
    home.ok(&["map", "note", "-10", "-20", "the origin's neighbour"]);
    // A new process (a restart) reads both back exactly.
    let out = home.scratch("back.bin");
    home.ok(&["map", "get", "10000", "20000", "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), big);
    let back = home
        .pxos()
        .args(["map", "get", "-10", "-20"])
        .output()
        .unwrap();
    assert_eq!(back.stdout, b"Hello, Infinite Pixel World!");
    let render = home.scratch("r.png");
    home.ok(&[
        "map",
        "render",
        "-20",
        "-30",
        "64",
        "64",
        "-o",
        render.to_str().unwrap(),
    ]);
    let (w, h, rgba) = read_rgba(&render);
    assert_eq!((w, h), (64, 64));
    // "PXM" is the first pixel at (-10, -20): (10, 10) in the render.
    let at = ((10 * 64 + 10) * 4) as usize;
    assert_eq!(&rgba[at..at + 3], b"PXM");
    let stats = json_lines(&home.ok(&["--json", "map", "stats"]));
    assert_eq!(stats[0]["stats"]["writes"], 2);
    assert_eq!(stats[0]["stats"]["notes"], 1);
    // A damaged tile is named, and the other tiles still read.
    let tile = home.home().join("map/tiles/-1_-1.png");
    let mut bytes = std::fs::read(&tile).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&tile, bytes).unwrap();
    let err = home.fails(1, &["map", "get", "-10", "-20"]);
    assert!(err.contains("tile (-1, -1)"), "{err}");
    home.ok(&["map", "get", "10000", "20000", "-o", out.to_str().unwrap()]);
    let err = home.fails(
        2,
        &[
            "map",
            "render",
            "0",
            "0",
            "100000",
            "100000",
            "-o",
            render.to_str().unwrap(),
        ],
    );
    assert!(err.contains("more than"), "{err}");
}

#[test]
fn vram_run_reports_processes_and_a_trapping_process_does_not_stop_the_others() {
    let home = Home::new("vram-run");
    let image = home.scratch("os.png");
    home.ok(&["vram", "build", "default", "-o", image.to_str().unwrap()]);
    let screen = home.scratch("screen.png");
    let after = home.scratch("after.png");
    let out = home.ok(&[
        "--json",
        "vram",
        "run",
        image.to_str().unwrap(),
        "--steps",
        "100000",
        "--screen",
        screen.to_str().unwrap(),
        "-o",
        after.to_str().unwrap(),
    ]);
    let lines = json_lines(&out);
    let processes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "process").collect();
    assert_eq!(processes.len(), 2);
    assert_eq!(processes[0]["process"]["state"], "exited");
    assert_eq!(processes[1]["process"]["state"], "ready");
    let run = lines.iter().find(|l| l["type"] == "run").unwrap();
    assert_eq!(run["ending"]["kind"], "budget-spent");
    assert!(run["switches"].as_u64().unwrap() > 100);
    assert!(screen.is_file() && after.is_file());
    // The image after the run has the kernel's bookkeeping, credited to the OS.
    let who = home.ok(&[
        "--json",
        "vram",
        "who",
        after.to_str().unwrap(),
        "39",
        "162",
    ]);
    assert!(who.contains("vram-os"), "{who}");
    // A damaged image is refused with a clear error.
    let bad = home.scratch("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let err = home.fails(1, &["vram", "run", bad.to_str().unwrap()]);
    assert!(err.contains("not a PNG"), "{err}");
}

#[test]
fn a_view_flag_without_a_running_view_serves_its_own_until_q() {
    let home = Home::new("view-own");
    let mut child = home
        .pxos()
        .args(["vram", "build", "default", "--view", "-o"])
        .arg(home.scratch("os.png"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let start = line
        .find("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{line}"));
    let port: u16 = line[start + 17..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The build's frames are there; the page carries the token its Q needs.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, meta) = request(port, "GET", "/api/vram/meta", "", &[]).unwrap();
        let meta: Value = serde_json::from_slice(&meta).unwrap_or(Value::Null);
        if meta["label"] == "run_hello" {
            break;
        }
        assert!(Instant::now() < deadline, "no last frame: {meta}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, page) = request(port, "GET", "/", "", &[]).unwrap();
    let page = String::from_utf8(page).unwrap();
    let token_at = page.find("const TOKEN = \"").unwrap() + 15;
    let token = &page[token_at..token_at + 32];
    assert!(
        child.try_wait().unwrap().is_none(),
        "it keeps serving after the build"
    );
    let (status, _) = request(port, "POST", "/api/quit", token, &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        exits_within(&mut child, Duration::from_secs(10)).success(),
        "the build's own view after Q"
    );
    assert!(home.scratch("os.png").is_file());
}

#[test]
fn view_open_without_a_desktop_says_so_and_serves() {
    let home = Home::new("view-open");
    let mut child = home
        .pxos()
        .args(["view", "--open"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("no desktop here") && line.contains("http://127.0.0.1:"),
        "{line}"
    );
    assert!(out.starts_with("pxos view: http://127.0.0.1:"), "{out}");
}

#[test]
fn packed_files_show_their_header_bytes_and_pixels() {
    let home = Home::new("view-packed");
    let dir = home.scratch("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/a.txt"), "packed bytes, read through the pack").unwrap();
    std::fs::write(dir.join("b.txt"), "another").unwrap();
    home.ok(&["fs", "add-dir", dir.to_str().unwrap(), "/t"]);
    let view = View::start(&home);
    let (status, info) = view.json("/api/fs/info?path=/t/sub/a.txt");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["packed"], true, "{info}");
    let (status, hex) = view.json("/api/fs/hex?path=/t/sub/a.txt&offset=7&length=5");
    assert_eq!(status, 200, "{hex}");
    assert_eq!(hex["rows"][0]["ascii"], "bytes", "{hex}");
    let (status, png) = view.get("/api/fs/preview.png?path=/t/sub/a.txt");
    assert_eq!(status, 200);
    let (_, payload) = pxos_pixel::decode_from_slice(&png, &Default::default()).unwrap();
    assert_eq!(payload, b"packed bytes, read through the pack");
}

#[test]
fn the_agents_api_and_the_map_chat_need_their_token() {
    let home = Home::new("view-agents");
    home.ok(&["tasks", "add", "shown in the view", "--expect", "hi"]);
    let view = View::start(&home);
    let (status, agents) = view.json("/api/agents");
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents["tasks"][0]["title"], "shown in the view");
    assert_eq!(agents["progress"]["pending"], 1);
    let body = br#"{"x": 3, "y": 4, "text": "who are you?"}"#;
    let (status, _) = request(view.port, "POST", "/api/map/chat", "wrong", body).unwrap();
    assert_eq!(status, 403, "a chat writes a note: the token is needed");
    let (status, _) = request(
        view.port,
        "POST",
        "/api/map/chat",
        &view.token,
        b"{not json",
    )
    .unwrap();
    assert_eq!(status, 400);
    let (status, _) = request(
        view.port,
        "POST",
        "/api/map/chat",
        &view.token,
        br#"{"x": 1}"#,
    )
    .unwrap();
    assert_eq!(status, 400);
    let (status, reply) = request(view.port, "POST", "/api/map/chat", &view.token, body).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["turns"][0]["content"], "who are you?");
    let (status, history) = view.json("/api/map/chat?x=3&y=4");
    assert_eq!(status, 200);
    assert_eq!(history["turns"].as_array().unwrap().len(), 2);
    let (_, agents) = view.json("/api/agents");
    assert_eq!(agents["exchanges"][0]["purpose"], "chat");
    // A damaged queue is named, not shown as empty.
    std::fs::write(home.home().join("agents/tasks.png"), b"junk").unwrap();
    let (status, body) = view.json("/api/agents");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("damaged"));
}
