//! Remotes against a real 3-node Garage cluster on loopback (replication
//! factor 3): push, pull and clone of PixelFS, cartridges, remote pixels,
//! a node killed mid-push, racing pushes, hostile remotes, the network log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pxos_test_support::garage::Garage;

use crate::support::{Home, current, derive_world, json_lines};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Adds remote `name` for `url` on `endpoint`, its key stored in the home (0600).
fn add_remote(home: &Home, garage: &Garage, name: &str, url: &str, endpoint: &str) {
    let secret = home.scratch(&format!("{name}.secret"));
    std::fs::write(&secret, &garage.secret).unwrap();
    home.ok(&[
        "remote",
        "add",
        name,
        url,
        "--endpoint",
        endpoint,
        "--region",
        "garage",
        "--key-id",
        &garage.key_id,
        "--secret-file",
        s(&secret),
    ]);
}

fn fs_head(home: &Home) -> serde_json::Value {
    json_lines(&home.ok(&["fs", "log", "--json", "-n", "1"]))
        .into_iter()
        .find(|line| line["current"] == true)
        .map(|line| line["snapshot"].clone())
        .unwrap()
}

fn root_of(home: &Home) -> String {
    fs_head(home)["root"].as_str().unwrap().to_string()
}

/// Every file under `dir`, for scanning for secrets (credentials.json aside).
fn text_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text_files(&path, out);
        } else if path.file_name().unwrap() != "credentials.json" {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

fn assert_no_secret(home: &Home, garage: &Garage, outputs: &[String]) {
    let mut files = Vec::new();
    text_files(&home.home(), &mut files);
    for (path, bytes) in files {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&garage.secret),
            "{path} holds the secret key"
        );
    }
    for output in outputs {
        assert!(
            !output.contains(&garage.secret),
            "an output holds the secret key"
        );
    }
}

#[test]
fn ten_thousand_files_push_and_clone_byte_identical() {
    let Some(garage) = Garage::start("tree", "pxos") else {
        return;
    };
    let a = Home::new("remote-tree-a");
    let source = a.scratch("tree");
    for d in 0..100 {
        let dir = source.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("f{f:02}.txt")),
                format!("file {d}/{f}\n").repeat(f + 1),
            )
            .unwrap();
        }
    }
    a.ok(&["fs", "add-dir", s(&source), "/tree", "-q"]);
    add_remote(
        &a,
        &garage,
        "origin",
        "s3://pxos/worlds/one",
        &garage.endpoint(0),
    );
    let pushed = json_lines(&a.ok(&["fs", "push", "--json"]))[0]["report"].clone();
    assert_eq!(pushed["up_to_date"], false);
    assert_eq!(pushed["seq"], 1);
    // A second push sends nothing.
    let again = json_lines(&a.ok(&["fs", "push", "--json"]))[0]["report"].clone();
    assert_eq!(again["up_to_date"], true, "{again}");
    // The stored key outranks a generic AWS key in the environment; a per-remote
    // variable outranks the stored key (and a wrong one is refused, secret unshown).
    let generic = a
        .pxos()
        .env("AWS_ACCESS_KEY_ID", "GKnotthisone")
        .env("AWS_SECRET_ACCESS_KEY", "not-this-secret")
        .args(["fs", "push"])
        .output()
        .unwrap();
    assert!(
        generic.status.success(),
        "{}",
        String::from_utf8_lossy(&generic.stderr)
    );
    let wrong = a
        .pxos()
        .env("PXOS_REMOTE_ORIGIN_KEY_ID", "GKnotthisone")
        .env("PXOS_REMOTE_ORIGIN_SECRET", "a-wrong-secret-value")
        .args(["fs", "push"])
        .output()
        .unwrap();
    let wrong_err = String::from_utf8_lossy(&wrong.stderr).into_owned();
    assert_eq!(wrong.status.code(), Some(2), "{wrong_err}");
    assert!(!wrong_err.contains("a-wrong-secret-value"), "{wrong_err}");
    // A credentials file others can read is refused.
    let credentials = a.home().join("credentials.json");
    let mode = |m: u32| {
        std::fs::set_permissions(
            &credentials,
            std::os::unix::fs::PermissionsExt::from_mode(m),
        )
        .unwrap()
    };
    mode(0o644);
    let open = a.fails(1, &["fs", "push"]);
    assert!(open.contains("can be read by others"), "{open}");
    mode(0o600);

    // Cloned into a second home, through another node's endpoint.
    let b = Home::new("remote-tree-b");
    let secret = b.scratch("secret");
    std::fs::write(&secret, &garage.secret).unwrap();
    let cloned = b.ok(&[
        "fs",
        "clone",
        "s3://pxos/worlds/one",
        "--endpoint",
        &garage.endpoint(1),
        "--region",
        "garage",
        "--key-id",
        &garage.key_id,
        "--secret-file",
        s(&secret),
        "--json",
    ]);
    let report = json_lines(&cloned)[0]["report"].clone();
    assert_eq!(report["root"], root_of(&a));
    assert_eq!(
        root_of(&b),
        root_of(&a),
        "the same root: every byte of every file"
    );
    // Every object's hash checks, and the files read back exactly.
    assert!(b.ok(&["fs", "fsck"]).contains("0 problems"));
    for (d, f) in [(0, 0), (42, 17), (99, 99)] {
        let got = b.ok(&["fs", "cat", &format!("/tree/d{d:02}/f{f:02}.txt")]);
        assert_eq!(got, format!("file {d}/{f}\n").repeat(f + 1));
    }
    assert_eq!(
        a.ok(&["fs", "tree", "/tree"]),
        b.ok(&["fs", "tree", "/tree"]),
        "the same listing in both homes"
    );

    // B changes a file and pushes; A pulls it.
    std::fs::write(b.scratch("new.txt"), "from b").unwrap();
    b.ok(&[
        "fs",
        "add",
        "/tree/d00/f00.txt",
        s(&b.scratch("new.txt")),
        "--replace",
        "-q",
    ]);
    b.ok(&["fs", "push"]);
    let pulled = json_lines(&a.ok(&["fs", "pull", "--json"]))[0]["report"].clone();
    assert!(pulled["objects_fetched"].as_u64().unwrap() >= 1, "{pulled}");
    assert_eq!(a.ok(&["fs", "cat", "/tree/d00/f00.txt"]), "from b");
    assert_eq!(root_of(&a), root_of(&b));

    // The network log lists the requests, and no output or file shows the secret.
    let log = json_lines(&a.ok(&["log", "--network", "--json"]));
    assert!(log.len() >= 6, "{log:?}");
    for record in &log {
        let request = &record["request"];
        assert_eq!(request["remote"], "origin");
        assert!(
            request["url"]
                .as_str()
                .unwrap()
                .starts_with(&garage.endpoint(0))
        );
        assert!(request["status"].as_u64().is_some(), "{request}");
    }
    assert!(log.iter().any(|r| r["request"]["method"] == "PUT"));
    let listed = a.ok(&["remote", "list", "--json"]);
    assert!(listed.contains("\"credentials\":\"file\""), "{listed}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(a.home().join("credentials.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_no_secret(&a, &garage, &[listed, cloned]);
    assert_no_secret(&b, &garage, &[]);
}

#[test]
fn a_pulled_cartridge_is_experimental_until_genesis_and_a_person() {
    let Some(garage) = Garage::start("cart", "pxos") else {
        return;
    };
    let a = Home::new("remote-cart-a");
    a.ok(&["boot", "-q"]);
    let base = current(&a)["id"].as_str().unwrap().to_string();
    let name = base.split('@').next().unwrap().to_string();
    derive_world(&a, "w", "1.1.0", |dir, _| {
        crate::support::shell_message(dir, "pulled across machines");
    });
    let id = format!("{name}@1.1.0");
    a.ok(&["cart", "test", &id]);
    add_remote(
        &a,
        &garage,
        "origin",
        "s3://pxos/carts",
        &garage.endpoint(0),
    );
    let pushed = json_lines(&a.ok(&["cart", "push", &id, "--json"]))[0]["report"].clone();
    assert_eq!(pushed["genesis_passed_there"], true);

    let b = Home::new("remote-cart-b");
    b.ok(&["boot", "-q"]);
    add_remote(
        &b,
        &garage,
        "origin",
        "s3://pxos/carts",
        &garage.endpoint(2),
    );
    let pulled = json_lines(&b.ok(&["cart", "pull", &id, "--json"]))[0]["report"].clone();
    assert_eq!(pulled["status"], "experimental");
    assert_eq!(pulled["sha256"], pushed["sha256"], "the same hash");
    // Not current: a person promotes it, and only after a local Genesis pass.
    assert_eq!(current(&b)["id"], base.as_str());
    let refused = b.fails(1, &["cart", "promote", &id, "--approved-by", "ada"]);
    assert!(refused.to_lowercase().contains("genesis"), "{refused}");
    b.ok(&["cart", "test", &id]);
    b.ok(&["cart", "promote", &id, "--approved-by", "ada"]);
    assert_eq!(current(&b)["id"], id.as_str());
    b.ok(&["boot", "-q"]);
    // The log names the remote the cartridge came from, in typed fields.
    let log = json_lines(&b.ok(&["log", "--json", "--cart", &id]));
    let register = log
        .iter()
        .find(|e| e["action"] == "register")
        .expect("a register entry");
    let origin = &register["details"]["register"]["origin"];
    assert_eq!(origin["remote"], "origin", "{register}");
    assert_eq!(origin["url"], "s3://pxos/carts");
    assert_eq!(origin["genesis_passed"], true);
    // A second pull changes nothing; a different cartridge under the same id is refused.
    let again = json_lines(&b.ok(&["cart", "pull", &id, "--json"]))[0]["report"].clone();
    assert_eq!(again["up_to_date"], true);
    b.fails(1, &["cart", "pull", &format!("{name}@9.9.9")]);
}

/// A proxy in front of a Garage node that counts requests and, when
/// `truncate` is set, cuts object bodies short (keeping their Content-Length).
struct Proxy {
    port: u16,
    requests: Arc<AtomicUsize>,
}

fn read_head(stream: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if stream.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            return Some(head);
        }
    }
}

fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

fn read_body(stream: &mut BufReader<TcpStream>, head: &[u8]) -> Vec<u8> {
    if let Some(len) = header(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap_or(());
        return body;
    }
    if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut raw = Vec::new();
        loop {
            let mut size_line = String::new();
            if stream.read_line(&mut size_line).unwrap_or(0) == 0 {
                break;
            }
            raw.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).unwrap_or(());
            raw.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
        return raw;
    }
    Vec::new()
}

fn proxy(upstream: u16, truncate: bool) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut client = client;
                // One request per connection (the response says `connection: close`).
                if let Some(head) = read_head(&mut reader) {
                    let body = read_body(&mut reader, &head);
                    count.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    server.write_all(&head).unwrap();
                    server.write_all(&body).unwrap();
                    let mut from_server = BufReader::new(server);
                    let Some(response_head) = read_head(&mut from_server) else {
                        return;
                    };
                    let is_get = head.starts_with(b"GET ");
                    let response_body = if head.starts_with(b"HEAD ") {
                        Vec::new()
                    } else {
                        read_body(&mut from_server, &response_head)
                    };
                    let request_line = String::from_utf8_lossy(&head)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let object =
                        request_line.contains("/objects/") || request_line.contains("/packs/");
                    let cut = truncate && is_get && object && response_body.len() > 1;
                    // Keep-alive is dropped: one request per connection.
                    let text = String::from_utf8_lossy(&response_head)
                        .replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
                    let _ = client.write_all(text.as_bytes());
                    let sent = if cut {
                        &response_body[..response_body.len() / 2]
                    } else {
                        &response_body[..]
                    };
                    let _ = client.write_all(sent);
                    let _ = client.flush();
                    let _ = client.shutdown(std::net::Shutdown::Both);
                }
            });
        }
    });
    Proxy { port, requests }
}

#[test]
fn the_network_log_lists_every_request_and_nothing_goes_out_without_a_remote() {
    // A listener that would see any connection pxOS made on its own.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let fresh = Home::new("remote-consent");
    fresh.ok(&["boot", "-q"]);
    std::fs::write(fresh.scratch("f"), "x").unwrap();
    fresh.ok(&["fs", "add", "/f", s(&fresh.scratch("f")), "-q"]);
    let url = format!("http://127.0.0.1:{port}/x.png");
    let refused = fresh.fails(1, &["pixel", "info", &url]);
    assert!(refused.contains("not under any remote"), "{refused}");
    fresh.fails(
        1,
        &[
            "pixel",
            "read",
            "s3://pxos/x.png",
            "--offset",
            "0",
            "--length",
            "1",
        ],
    );
    fresh.fails(1, &["pixel", "verify", &url]);
    let none = fresh.fails(2, &["fs", "push"]);
    assert!(none.contains("no remote is configured"), "{none}");
    fresh.fails(2, &["fs", "pull"]);
    fresh.fails(2, &["cart", "push", "x@1.0.0"]);
    assert!(
        listener.accept().is_err(),
        "a command connected without a remote"
    );
    assert!(!fresh.home().join("log/network.jsonl").exists());
    assert_eq!(fresh.ok(&["log", "--network"]), "");

    // Through a counting proxy: the log has one record per request the proxy saw.
    let Some(garage) = Garage::start("netlog", "pxos") else {
        return;
    };
    let counting = proxy(garage.nodes[0].s3_port, false);
    let a = Home::new("remote-netlog");
    std::fs::write(a.scratch("f"), "counted").unwrap();
    a.ok(&["fs", "add", "/f", s(&a.scratch("f")), "-q"]);
    add_remote(
        &a,
        &garage,
        "counted",
        "s3://pxos/counted",
        &format!("http://127.0.0.1:{}", counting.port),
    );
    a.ok(&["fs", "push"]);
    a.ok(&["fs", "push"]);
    let records = json_lines(&a.ok(&["log", "--network", "--json"]));
    assert_eq!(records.len(), counting.requests.load(Ordering::SeqCst));
    assert!(records.len() >= 5);
}

#[test]
fn hostile_remotes_give_clear_errors_and_corrupt_nothing() {
    let Some(garage) = Garage::start("hostile", "pxos") else {
        return;
    };
    let a = Home::new("remote-hostile-a");
    let big = pxos_test_support::random_bytes(7, 600_000);
    std::fs::write(a.scratch("big.bin"), &big).unwrap();
    std::fs::write(a.scratch("small.txt"), "small").unwrap();
    a.ok(&["fs", "add", "/big.bin", s(&a.scratch("big.bin")), "-q"]);
    a.ok(&["fs", "add", "/small.txt", s(&a.scratch("small.txt")), "-q"]);
    add_remote(&a, &garage, "origin", "s3://pxos/h", &garage.endpoint(0));
    a.ok(&["fs", "push"]);
    let big_sha = json_lines(&a.ok(&["fs", "info", "/big.bin", "--json"]))[0]["entry"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();

    // A home that pulls from the hostile variants: its store must stay intact.
    let b = Home::new("remote-hostile-b");
    b.ok(&["fs", "init"]);
    let check_intact = |b: &Home| {
        assert!(b.ok(&["fs", "fsck"]).contains("0 problems"));
        assert_eq!(fs_head(b)["snapshot"], 0, "nothing was committed");
        assert!(!b.ok(&["fs", "ls", "/"]).contains("big.bin"));
    };

    // 1. Truncated responses (a proxy cuts every object body in half).
    let cutter = proxy(garage.nodes[0].s3_port, true);
    add_remote(
        &b,
        &garage,
        "cut",
        "s3://pxos/h",
        &format!("http://127.0.0.1:{}", cutter.port),
    );
    let err = b.fails(2, &["fs", "pull", "cut"]);
    assert!(
        err.to_lowercase().contains("network") || err.contains("truncated"),
        "{err}"
    );
    check_intact(&b);

    // 2. A server that stalls: the timeout applies.
    let stall = TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in stall.incoming().flatten() {
            held.push(conn);
        }
    });
    add_remote(
        &b,
        &garage,
        "stall",
        "s3://pxos/h",
        &format!("http://127.0.0.1:{stall_port}"),
    );
    let started = Instant::now();
    let output = b
        .pxos()
        .env("PXOS_REMOTE_TIMEOUT", "1")
        .args(["fs", "pull", "stall"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("network"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout did not apply"
    );
    check_intact(&b);

    // 3. An object whose bytes do not match its hash (another valid PXI under its name).
    let remote = pxos_remote::Remote::open(&a.home(), "origin").unwrap();
    let rel = format!("objects/{big_sha}.png");
    let original = remote.get(&rel).unwrap().unwrap();
    let other = pxos_pixel::encode_to_vec(b"not the bytes you want", &Default::default()).unwrap();
    remote.put(&rel, other).unwrap();
    add_remote(&b, &garage, "origin", "s3://pxos/h", &garage.endpoint(1));
    let err = b.fails(1, &["fs", "pull", "origin"]);
    assert!(err.contains("other content than its name"), "{err}");
    check_intact(&b);
    // Flipped bytes inside the PNG are caught too.
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0xff;
    remote.put(&rel, flipped).unwrap();
    let err = b.fails(1, &["fs", "pull", "origin"]);
    assert!(err.contains("the remote sent bad data"), "{err}");
    check_intact(&b);
    remote.put(&rel, original).unwrap();

    // 4. A reference naming an object the remote does not have.
    let refs = remote.list("refs/fs/", None).unwrap();
    let commit = refs
        .iter()
        .rev()
        .find(|l| l.rel.ends_with("commit.json"))
        .unwrap();
    let mut value: serde_json::Value =
        serde_json::from_slice(&remote.get(&commit.rel).unwrap().unwrap()).unwrap();
    value["root"] = serde_json::Value::String("ab".repeat(32));
    remote
        .put(&commit.rel, serde_json::to_vec(&value).unwrap())
        .unwrap();
    let err = b.fails(1, &["fs", "pull", "origin"]);
    assert!(err.contains("has no such object"), "{err}");
    check_intact(&b);
    assert_no_secret(&b, &garage, &[err]);
    drop(remote);
}

#[test]
fn racing_pushes_one_wins_the_other_is_told_the_remote_moved() {
    let Some(garage) = Garage::start("race", "pxos") else {
        return;
    };
    let a = Home::new("remote-race-a");
    let b = Home::new("remote-race-b");
    std::fs::write(a.scratch("base"), "base").unwrap();
    a.ok(&["fs", "add", "/base", s(&a.scratch("base")), "-q"]);
    add_remote(&a, &garage, "origin", "s3://pxos/race", &garage.endpoint(0));
    a.ok(&["fs", "push"]);
    add_remote(&b, &garage, "origin", "s3://pxos/race", &garage.endpoint(1));
    b.ok(&["fs", "pull"]);
    for round in 0..3 {
        for (home, tag) in [(&a, "a"), (&b, "b")] {
            let file = home.scratch(&format!("{tag}{round}"));
            std::fs::write(&file, format!("{tag} {round}")).unwrap();
            home.ok(&["fs", "add", &format!("/{tag}{round}"), s(&file), "-q"]);
        }
        let spawn = |home: &Home| home.pxos().args(["fs", "push"]).spawn().unwrap();
        let (mut pa, mut pb) = (spawn(&a), spawn(&b));
        let (ra, rb) = (pa.wait().unwrap(), pb.wait().unwrap());
        assert!(
            ra.success() != rb.success(),
            "round {round}: exactly one push wins (a: {ra}, b: {rb})"
        );
        let (winner, loser) = if ra.success() { (&a, &b) } else { (&b, &a) };
        let err = loser.fails(1, &["fs", "push"]);
        assert!(err.contains("the remote moved"), "{err}");
        // The remote holds the winner's root; the loser's tree is untouched.
        let loser_root = root_of(loser);
        loser.ok(&["fs", "pull", "--force"]);
        assert_eq!(root_of(loser), root_of(winner));
        assert!(loser.ok(&["fs", "log"]).contains(&loser_root[..12]));
    }
}

#[test]
fn a_push_survives_a_node_killed_midway_and_a_clone_verifies() {
    let Some(mut garage) = Garage::start("kill", "pxos") else {
        return;
    };
    let a = Home::new("remote-kill-a");
    let source = a.scratch("big");
    std::fs::create_dir_all(&source).unwrap();
    // Files over the pack limit stay loose: one PUT each, a push of many requests.
    for i in 0..60 {
        std::fs::write(
            source.join(format!("f{i:02}.bin")),
            pxos_test_support::random_bytes(i, 300_000),
        )
        .unwrap();
    }
    a.ok(&["fs", "add-dir", s(&source), "/big", "-q"]);
    add_remote(&a, &garage, "origin", "s3://pxos/kill", &garage.endpoint(0));
    let mut push = a.pxos().args(["fs", "push"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = garage.nodes[2].pid().unwrap();
    garage.kill(2);
    let first = push.wait().unwrap();
    if !first.success() {
        // It failed cleanly; a retry completes on the remaining quorum.
        a.ok(&["fs", "push"]);
    }
    assert!(a.ok(&["fs", "fsck"]).contains("0 problems"));
    let b = Home::new("remote-kill-b");
    let secret = b.scratch("secret");
    std::fs::write(&secret, &garage.secret).unwrap();
    b.ok(&[
        "fs",
        "clone",
        "s3://pxos/kill",
        "--endpoint",
        &garage.endpoint(1),
        "--region",
        "garage",
        "--key-id",
        &garage.key_id,
        "--secret-file",
        s(&secret),
    ]);
    assert_eq!(root_of(&b), root_of(&a));
    assert!(b.ok(&["fs", "fsck"]).contains("0 problems"));
    assert!(pid > 0);
}

#[test]
fn remote_pixels_are_read_by_ranges_and_resume() {
    let Some(garage) = Garage::start("pixels", "pxos") else {
        return;
    };
    let a = Home::new("remote-pixels");
    // 20 MiB: more than one part, so the upload is multipart.
    let payload = pxos_test_support::random_bytes(11, 20 << 20);
    std::fs::write(a.scratch("big.bin"), &payload).unwrap();
    a.ok(&["fs", "add", "/big.bin", s(&a.scratch("big.bin")), "-q"]);
    add_remote(
        &a,
        &garage,
        "origin",
        "s3://pxos/pixels",
        &garage.endpoint(0),
    );
    a.ok(&["fs", "push"]);
    let sha = json_lines(&a.ok(&["fs", "info", "/big.bin", "--json"]))[0]["entry"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("s3://pxos/pixels/objects/{sha}.png");
    let read = json_lines(&a.ok(&[
        "pixel", "read", &url, "--offset", "12345678", "--length", "4096", "--json",
    ]))[0]
        .clone();
    assert_eq!(
        read["hex"].as_str().unwrap(),
        pxos_pixel::hex(&payload[12_345_678..12_345_678 + 4096])
    );
    let fetched = read["fetched"].as_u64().unwrap();
    assert!(
        fetched < 1 << 20,
        "a 4 KiB read fetched {fetched} bytes of {}",
        read["file_len"]
    );
    let info = json_lines(&a.ok(&["pixel", "info", &url, "--json"]))[0].clone();
    assert_eq!(info["header"]["sha256"], sha.as_str());
    assert!(a.ok(&["pixel", "verify", &url]).contains("ok"));

    // A damaged remote pixel fails verify with exit 1.
    let remote = pxos_remote::Remote::open(&a.home(), "origin").unwrap();
    let small = pxos_pixel::encode_to_vec(b"a small pixel file", &Default::default()).unwrap();
    let mut damaged = small.clone();
    let at = damaged.len() - 40;
    damaged[at] ^= 0x55;
    remote.put("damaged.png", damaged).unwrap();
    a.fails(1, &["pixel", "verify", "s3://pxos/pixels/damaged.png"]);

    drop(remote);

    // An http(s) remote: the website endpoint of Garage's bucket `localhost`,
    // read-only, with no credentials; written through an S3 remote.
    add_remote(&a, &garage, "site", "s3://localhost", &garage.endpoint(0));
    let site = pxos_remote::Remote::open(&a.home(), "site").unwrap();
    let picture = pxos_test_support::random_bytes(12, 3 << 20);
    let pxi = pxos_pixel::encode_to_vec(&picture, &Default::default()).unwrap();
    site.put("pictures/p.png", pxi).unwrap();
    drop(site);
    let web = garage.web(0);
    a.ok(&["remote", "add", "web", &web]);
    let read = json_lines(&a.ok(&[
        "pixel",
        "read",
        &format!("{web}/pictures/p.png"),
        "--offset",
        "1000000",
        "--length",
        "4096",
        "--json",
    ]))[0]
        .clone();
    assert_eq!(
        read["hex"].as_str().unwrap(),
        pxos_pixel::hex(&picture[1_000_000..1_000_000 + 4096])
    );
    assert!(read["fetched"].as_u64().unwrap() < 1 << 20, "{read}");
    let refused = a.fails(2, &["fs", "push", "web"]);
    assert!(
        refused.contains("can be read, not written or listed"),
        "{refused}"
    );

    // Resumption: a pull that was cut off after the first 5 MiB of the big
    // object (its part file stays) fetches only the rest.
    let b = Home::new("remote-pixels-b");
    add_remote(
        &b,
        &garage,
        "origin",
        "s3://pxos/pixels",
        &garage.endpoint(1),
    );
    b.ok(&["fs", "init"]);
    let remote = pxos_remote::Remote::open(&a.home(), "origin").unwrap();
    let whole = remote.get(&format!("objects/{sha}.png")).unwrap().unwrap();
    drop(remote);
    let part = b.home().join(format!("fs/incoming/{sha}.part"));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, &whole[..5 << 20]).unwrap();
    let output = b
        .pxos()
        .env("PXOS_REMOTE_PART_MIB", "5")
        .args(["fs", "pull"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fetched: u64 = json_lines(&b.ok(&["log", "--network", "--json"]))
        .iter()
        .map(|r| &r["request"])
        .filter(|r| r["method"] == "GET" && r["url"].as_str().unwrap().contains(&sha))
        .map(|r| r["received"].as_u64().unwrap())
        .sum();
    assert_eq!(
        fetched,
        whole.len() as u64 - (5 << 20),
        "only the missing bytes"
    );
    assert!(!part.exists());
    b.ok(&["fs", "get", "/big.bin", "-o", s(&b.scratch("big.out"))]);
    assert!(std::fs::read(b.scratch("big.out")).unwrap() == payload);
    assert!(b.ok(&["fs", "fsck"]).contains("0 problems"));
}

#[test]
fn an_interrupted_push_resumes_without_sending_again_what_arrived() {
    let Some(garage) = Garage::start("resume", "pxos") else {
        return;
    };
    let a = Home::new("remote-resume");
    let source = a.scratch("many");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..40 {
        std::fs::write(
            source.join(format!("f{i:02}.bin")),
            pxos_test_support::random_bytes(100 + i, 300_000),
        )
        .unwrap();
    }
    a.ok(&["fs", "add-dir", s(&source), "/many", "-q"]);
    std::fs::write(
        a.scratch("big.bin"),
        pxos_test_support::random_bytes(5, 40 << 20),
    )
    .unwrap();
    a.ok(&["fs", "add", "/big.bin", s(&a.scratch("big.bin")), "-q"]);
    add_remote(
        &a,
        &garage,
        "origin",
        "s3://pxos/resume",
        &garage.endpoint(0),
    );
    let push = |crash: Option<&str>| {
        let mut command = a.pxos();
        command
            .env("PXOS_REMOTE_PART_MIB", "5")
            .args(["fs", "push"]);
        if let Some(point) = crash {
            command.env("PXOS_CRASH_AT", point);
        }
        let before = json_lines(&a.ok(&["log", "--network", "--json"])).len();
        let output = command.output().unwrap();
        let records = json_lines(&a.ok(&["log", "--network", "--json"]));
        let puts: Vec<String> = records[before..]
            .iter()
            .map(|r| &r["request"])
            .filter(|r| r["method"] == "PUT")
            .map(|r| r["url"].as_str().unwrap().to_string())
            .collect();
        (output, puts)
    };
    let objects = |puts: &[String]| {
        puts.iter()
            .filter(|u| u.contains("/objects/") && !u.contains("partNumber"))
            .count()
    };
    let parts = |puts: &[String]| puts.iter().filter(|u| u.contains("partNumber")).count();
    // Cut off after the first batch of small objects...
    let (output, first) = push(Some("fs-push.batch"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("crash injected"));
    assert_eq!(objects(&first), 16);
    // ...then after the first batch of the big object's parts (8 parts of 5 MiB)...
    let (output, second) = push(Some("remote-upload.part-batch"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("crash injected"));
    assert_eq!(
        objects(&second),
        41 - 16,
        "the small objects that arrived are not sent again"
    );
    // The parts recorded before the cut (at least the first 4; more may have finished).
    let recorded = std::fs::read_dir(a.home().join("remotes/origin/uploads"))
        .unwrap()
        .map(|e| {
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            state["parts"].as_array().unwrap().len()
        })
        .sum::<usize>();
    assert!(
        recorded >= 4 && parts(&second) >= recorded,
        "{recorded} {second:?}"
    );
    // ...and the last push sends only the parts that are missing.
    let (output, third) = push(None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(objects(&third), 0);
    let object_len = json_lines(&a.ok(&["fs", "info", "/big.bin", "--json"]))[0]["object_len"]
        .as_u64()
        .unwrap();
    assert_eq!(
        parts(&third) as u64,
        object_len.div_ceil(5 << 20) - recorded as u64,
        "only the parts not recorded are sent: {third:?}"
    );
    let b = Home::new("remote-resume-b");
    add_remote(
        &b,
        &garage,
        "origin",
        "s3://pxos/resume",
        &garage.endpoint(2),
    );
    b.ok(&["fs", "pull"]);
    assert_eq!(root_of(&b), root_of(&a));
    assert!(b.ok(&["fs", "fsck"]).contains("0 problems"));
}
