//! The hardening findings, one test each, run through the binary: bounded
//! time and memory on hostile input, nothing left outside the target,
//! writers that wait. Bounded runs use `ulimit -v` (512 MiB) and a deadline.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Home, assemble, temporaries_under};
use pxos_test_support::pxi_bomb;

const TEN_SECONDS: Duration = Duration::from_secs(10);

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> &Path {
    std::fs::write(path, bytes).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A cartridge folder with one file and this `cartridge.json` name and version.
fn cartridge_dir(home: &Home, name: &str, version: &str) -> std::path::PathBuf {
    let dir = home.scratch("cart-src");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    let manifest = serde_json::json!({"name": name, "version": version,
        "creator": {"name": "tester", "kind": "human"}, "notes": "", "reason": ""});
    std::fs::write(dir.join("cartridge.json"), manifest.to_string()).unwrap();
    dir
}

/// A `.pxa` whose manifest lists `files` (path, bytes) as given, in that order.
fn crafted_pxa(home: &Home, name: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    use sha2_free::hex_sha256;
    let mut offset = 0u64;
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (path, bytes) in files {
        entries.push(serde_json::json!({"path": path, "size": bytes.len(),
            "sha256": hex_sha256(bytes), "offset": offset}));
        offset += bytes.len() as u64;
        data.extend_from_slice(bytes);
    }
    let manifest = serde_json::json!({"format": "pxos-cartridge", "format_version": 1,
        "name": "crafted", "version": "1.0.0", "parent": null,
        "creator": {"kind": "human", "name": "t"}, "created": "2026-11-29T00:00:00Z",
        "notes": "", "reason": "", "capabilities": [], "metrics": {}, "genesis_version": "1.0",
        "files": entries})
    .to_string();
    let mut payload = b"PXA1".to_vec();
    payload.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    payload.extend_from_slice(manifest.as_bytes());
    payload.extend_from_slice(&data);
    let raw = home.scratch(&format!("{name}.payload"));
    std::fs::write(&raw, payload).unwrap();
    let pxa = home.scratch(&format!("{name}.pxa"));
    home.ok(&[
        "pixel",
        "encode",
        s(&raw),
        "-o",
        s(&pxa),
        "--kind",
        "archive",
    ]);
    pxa
}

/// SHA-256 through the library the binary uses (no extra test dependency).
mod sha2_free {
    pub fn hex_sha256(bytes: &[u8]) -> String {
        pxos_pixel::hex(&pxos_pixel::sha256(bytes))
    }
}

// 1. Decompression bombs.

#[test]
fn a_decompression_bomb_is_refused_before_anything_is_inflated() {
    let home = Home::new("bomb");
    // 48 GB of declared payload in a 150 KB file (the bomb, less its zeros).
    let bomb = write(&home.scratch("bomb.png"), pxi_bomb(48_000_000_000)).to_path_buf();
    for args in [
        vec!["pixel", "verify", s(&bomb)],
        vec!["pixel", "info", s(&bomb)],
        vec![
            "pixel",
            "decode",
            s(&bomb),
            "-o",
            s(&home.scratch("out.bin")),
        ],
    ] {
        let run = home.bounded(&args, TEN_SECONDS);
        run.assert_refused(&format!("{args:?}"));
        assert!(run.seconds < 2.0, "{args:?} took {} s", run.seconds);
        assert!(run.stderr.contains("bomb.png"), "{}", run.stderr);
        assert!(
            run.stderr.contains("payload of 48000000000 bytes")
                && run.stderr.contains("--max-payload"),
            "{}",
            run.stderr
        );
    }
    assert!(!home.scratch("out.bin").exists());
    assert!(temporaries_under(&home.dir).is_empty());
    // Under the payload limit but far over the ratio: 1 GiB from 150 KB.
    let ratio = write(&home.scratch("ratio.png"), pxi_bomb(1 << 30)).to_path_buf();
    let run = home.bounded(&["pixel", "verify", s(&ratio)], TEN_SECONDS);
    run.assert_refused("ratio bomb");
    assert!(
        run.stderr.contains("a ratio over the limit of 200") && run.stderr.contains("--max-ratio"),
        "{}",
        run.stderr
    );
    // The flags lift both limits: the file then fails as what it is, a truncated image.
    let run = home.bounded(
        &[
            "pixel",
            "verify",
            s(&bomb),
            "--max-payload",
            "64G",
            "--max-ratio",
            "1000000000",
        ],
        TEN_SECONDS,
    );
    run.assert_refused("lifted limits");
    assert!(!run.stderr.contains("refused by limits"), "{}", run.stderr);
}

#[test]
fn an_output_larger_than_the_free_space_is_refused_before_writing() {
    let home = Home::new("free-space");
    // A file system with less than 60 GiB free: a declared payload larger than
    // its free space (and under the 64 GiB image limit) must be refused up front.
    let candidates = [Path::new("/dev/shm"), &std::env::temp_dir()]
        .into_iter()
        .filter_map(|dir| {
            let out = Command::new("df")
                .args(["-B1", "--output=avail"])
                .arg(dir)
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let free: u64 = text.lines().nth(1)?.trim().parse().ok()?;
            (free < 60 << 30).then(|| (dir.to_path_buf(), free))
        })
        .collect::<Vec<_>>();
    let (dir, free) = candidates
        .first()
        .cloned()
        .expect("a file system with under 60 GiB free (/dev/shm or the temp dir) to test against");
    let target_dir = dir.join(format!("pxos-free-space-{}", std::process::id()));
    std::fs::create_dir_all(&target_dir).unwrap();
    let bomb = write(&home.scratch("big.png"), pxi_bomb(free + (256 << 20))).to_path_buf();
    let target = target_dir.join("out.bin");
    let run = home.bounded(
        &[
            "pixel",
            "decode",
            s(&bomb),
            "-o",
            s(&target),
            "--max-payload",
            "64G",
            "--max-ratio",
            "1000000000",
        ],
        TEN_SECONDS,
    );
    let leftovers: Vec<_> = std::fs::read_dir(&target_dir).unwrap().flatten().collect();
    let _ = std::fs::remove_dir_all(&target_dir);
    run.assert_refused("decode past the free space");
    assert!(
        run.stderr.contains("bytes free; nothing was written"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("out.bin"), "{}", run.stderr);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// 2. Temporary files and signals.

/// Starts `pxos ARGS`, waits until a temporary file appears under `dir`,
/// sends `signal`, and returns the exit status.
fn interrupt(home: &Home, args: &[&str], dir: &Path, signal: &str) -> std::process::ExitStatus {
    let mut child = home
        .pxos()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while temporaries_under(dir).is_empty() {
        assert!(
            started.elapsed() < TEN_SECONDS,
            "no temporary file appeared for {args:?}"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pxos {args:?} ended before the signal: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted by signal"), "{stderr}");
    output.status
}

#[test]
fn temporary_files_are_removed_on_sigterm_and_sigint() {
    let home = Home::new("signals");
    let out_dir = home.scratch("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // A long encode (3 GiB of zeros, sparse on disk), ended by SIGTERM.
    let zeros = home.scratch("zeros.bin");
    std::fs::File::create(&zeros)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let status = interrupt(
        &home,
        &[
            "pixel",
            "encode",
            s(&zeros),
            "-o",
            s(&out_dir.join("zero.png")),
        ],
        &out_dir,
        "-TERM",
    );
    assert_eq!(status.code(), Some(128 + 15));
    assert!(
        temporaries_under(&out_dir).is_empty(),
        "{:?}",
        temporaries_under(&out_dir)
    );
    assert!(!out_dir.join("zero.png").exists());
    // `pixel encode /dev/zero` (which once hashed forever) is refused at once.
    let stderr = home.fails(
        2,
        &[
            "pixel",
            "encode",
            "/dev/zero",
            "-o",
            s(&out_dir.join("z.png")),
        ],
    );
    assert!(stderr.contains("/dev/zero: not a regular file"), "{stderr}");
    // A long decode: 1 GiB of zeros, encoded, then decoded and interrupted with SIGINT.
    std::fs::File::create(&zeros)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let png = home.scratch("zeros.png");
    home.ok(&["pixel", "encode", s(&zeros), "-o", s(&png)]);
    std::fs::remove_file(&zeros).unwrap();
    let status = interrupt(
        &home,
        &[
            "pixel",
            "decode",
            s(&png),
            "-o",
            s(&out_dir.join("zeros.bin")),
            "--max-ratio",
            "100000",
        ],
        &out_dir,
        "-INT",
    );
    assert_eq!(status.code(), Some(128 + 2));
    assert!(
        temporaries_under(&out_dir).is_empty(),
        "{:?}",
        temporaries_under(&out_dir)
    );
    assert!(!out_dir.join("zeros.bin").exists());
}

// 3. `cart unpack` leaves nothing, in every failure.

#[test]
fn cart_unpack_into_a_dangling_symlink_or_a_missing_folder_leaves_nothing() {
    let home = Home::new("unpack-symlink");
    let dir = cartridge_dir(&home, "tiny", "1.0.0");
    let pxa = home.scratch("tiny.pxa");
    home.ok(&["cart", "pack", s(&dir), "-o", s(&pxa)]);
    let work = home.scratch("work");
    std::fs::create_dir_all(&work).unwrap();
    let link = work.join("dangling");
    std::os::unix::fs::symlink(home.scratch("nowhere"), &link).unwrap();
    let stderr = home.fails(2, &["cart", "unpack", s(&pxa), s(&link)]);
    assert!(stderr.contains("already exists"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("dangling")]);
    assert!(!home.scratch("nowhere").exists());
    // A missing parent is refused, not created silently.
    let deep = home.scratch("missing/deep/x");
    let stderr = home.fails(2, &["cart", "unpack", s(&pxa), s(&deep)]);
    assert!(
        stderr.contains("does not exist; create it first"),
        "{stderr}"
    );
    assert!(!home.scratch("missing").exists());
    // A corrupt cartridge fails half way: no staging folder, no target.
    let bytes = std::fs::read(&pxa).unwrap();
    let mut corrupt = bytes.clone();
    let at = corrupt.len() - 40;
    corrupt[at] ^= 0x55;
    let bad = write(&home.scratch("bad.pxa"), corrupt).to_path_buf();
    let run = home.bounded(
        &["cart", "unpack", s(&bad), s(&work.join("t"))],
        TEN_SECONDS,
    );
    run.assert_refused("corrupt cartridge");
    assert!(!work.join("t").exists());
    assert!(temporaries_under(&home.dir).is_empty());
}

// 4. Names and versions.

#[test]
fn versions_and_names_are_strict_semver_and_safe_in_file_names() {
    let home = Home::new("versions");
    for version in [
        "1.0.0-../../..",
        "1.0.0-a/b",
        "1.0.0-x\ny",
        "1.0.0-\u{1b}[31mred",
        "1.0.0-\u{0}",
        "01.0.0",
        "1.0",
        &format!("1.0.0-{}", "a".repeat(100_000)),
    ] {
        let dir = cartridge_dir(&home, "evil", version);
        let work = home.scratch("pack-here");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let output = home
            .pxos()
            .current_dir(&work)
            .args(["cart", "pack", s(&dir)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{version:?}: {stderr}");
        assert!(stderr.contains("is not semver"), "{stderr}");
        assert!(
            stderr.len() < 1000,
            "the error quotes 100 KB: {}",
            stderr.len()
        );
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
        assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    }
    assert!(!home.dir.join("evil-1.0.0-").exists());
    for name in ["Evil", "../x", "a\nb", ""] {
        let dir = cartridge_dir(&home, name, "1.0.0");
        let stderr = home.fails(
            1,
            &["cart", "pack", s(&dir), "-o", s(&home.scratch("n.pxa"))],
        );
        assert!(stderr.contains("cartridge name"), "{stderr}");
    }
    // Good versions still pack.
    for version in ["1.0.0", "2.10.3-rc.1", "1.0.0-alpha-2+build.7"] {
        let dir = cartridge_dir(&home, "good", version);
        home.ok(&["cart", "pack", s(&dir), "-o", s(&home.scratch("good.pxa"))]);
    }
}

#[test]
fn fields_printed_to_a_terminal_cannot_forge_lines_or_colours() {
    let home = Home::new("escapes");
    home.ok(&["boot"]);
    let forged = "fine\n#999 2026-01-01T00:00:00Z human  root  promote  default@9.9.9 \u{1b}[32mall good\u{1b}[0m";
    home.ok(&["log", "note", forged, "--actor", "mallory"]);
    let log = home.ok(&["log"]);
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(!log.lines().any(|l| l.starts_with("#999")), "{log}");
    assert!(log.contains("fine\\n#999"), "{log}");
    assert!(log.contains("\\u{1b}[32mall good"), "{log}");
    // JSON keeps the exact text.
    let json = home.ok(&["log", "--json"]);
    assert!(json.contains("\\u001b[32mall good"), "{json}");
}

// 5. PXVM resources.

#[test]
fn pxvm_runs_are_capped_on_writes_warnings_and_fuel() {
    let home = Home::new("vm-caps");
    home.ok(&["fs", "init"]);
    // 1 MB FILE_WRITEs to new paths, forever: trapped by the bytes-written cap.
    let writer = home.scratch("writer.png");
    assemble(
        &home,
        "IMM32 R7, 0x41414141\n\
         L: IMM32 R4, Q\nSTORE R7, [R4]\nIMM32 R1, P\nLI R2, 0\nIMM32 R3, 1048576\nSYSCALL 42\n\
         ADDI R7, R7, 1\nJMP L\n\
         P: .word 0x6769622f\nQ: .word 0, 0",
        &writer,
    );
    let run = home.bounded(&["run", s(&writer), "--trusted"], TEN_SECONDS);
    run.assert_refused("writer");
    assert!(
        run.stderr
            .contains("exceeded its cap on bytes written (67108864)")
            && run.stderr.contains("--max-write-bytes"),
        "{}",
        run.stderr
    );
    let fs_size: u64 = walk_size(&home.home().join("fs"));
    assert!(fs_size < 80 << 20, "PixelFS grew to {fs_size} bytes");
    // The same with --max-files 3: the files-created cap names itself.
    let run = home.bounded(
        &["run", s(&writer), "--trusted", "--max-files", "3"],
        TEN_SECONDS,
    );
    run.assert_refused("writer, 3 files");
    assert!(
        run.stderr.contains("cap on files created (3)"),
        "{}",
        run.stderr
    );
    // Failing writes in a loop: bounded by fuel, warnings kept to the cap and counted.
    let failing = home.scratch("failing.png");
    assemble(
        &home,
        "L: IMM32 R1, P\nLI R2, 0\nIMM32 R3, 1048576\nSYSCALL 42\nJMP L\nP: .string \"/outside\"",
        &failing,
    );
    let run = home.bounded(
        &["run", s(&failing), "--fuel", "20000000", "--json"],
        TEN_SECONDS,
    );
    run.assert_refused("failing writes");
    let result = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "run")
        .unwrap();
    assert_eq!(result["trap_kind"], "fuel-exhausted");
    assert_eq!(result["warnings"].as_array().unwrap().len(), 100);
    assert!(
        run.stderr
            .contains("more failed syscalls (only the first 100 are kept)"),
        "{}",
        run.stderr
    );
    // Fuel has a maximum.
    for command in ["run", "debug"] {
        let output = home.run(&[command, s(&failing), "--fuel", "18446744073709551615"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not in 1..=10000000000"), "{stderr}");
    }
    // Printed output is host memory: a PRINT loop traps on its cap.
    let printer = home.scratch("printer.png");
    assemble(
        &home,
        "L: IMM32 R1, P\nLI R2, 1\nSYSCALL 1\nJMP L\nP: .string \"spam spam spam\"",
        &printer,
    );
    let run = home.bounded(
        &["run", s(&printer), "--max-host-memory", "64K", "-q"],
        TEN_SECONDS,
    );
    run.assert_refused("printer");
    assert!(run.stderr.contains("cap on host memory"), "{}", run.stderr);
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

// 6. Unbounded input reads.

#[test]
fn text_inputs_are_capped_while_reading() {
    let home = Home::new("input-caps");
    home.ok(&["boot"]);
    let out = home.scratch("out");
    for args in [
        vec!["x86", "build", "/dev/zero", "-o", s(&out)],
        vec!["vram", "build", "/dev/zero", "-o", s(&out)],
        vec!["asm", "/dev/zero", "-o", s(&out)],
        vec!["boot", "--sequence", "/dev/zero"],
    ] {
        let run = home.bounded(&args, TEN_SECONDS);
        run.assert_refused(&format!("{args:?}"));
        assert!(
            run.stderr.contains("/dev/zero") && run.stderr.contains("larger than 67108864 bytes"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.seconds < 5.0, "{args:?}: {} s", run.seconds);
    }
    // --max-input changes the cap.
    let source = write(&home.scratch("s.pxasm"), "HALT\n".repeat(100)).to_path_buf();
    let run = home.bounded(
        &["asm", s(&source), "-o", s(&out), "--max-input", "100"],
        TEN_SECONDS,
    );
    run.assert_refused("--max-input 100");
    assert!(
        run.stderr.contains("larger than 100 bytes"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
    // Program images are read under the same cap.
    let program = home.scratch("p.png");
    assemble(&home, "HALT", &program);
    let run = home.bounded(&["run", s(&program), "--max-input", "100"], TEN_SECONDS);
    run.assert_refused("run --max-input 100");
    assert!(
        run.stderr.contains("p.png") && run.stderr.contains("larger than 100 bytes"),
        "{}",
        run.stderr
    );
}

// 7. Recursion in the x86 builder.

#[test]
fn fifty_thousand_chained_defines_need_no_deep_stack() {
    let home = Home::new("x86-chain");
    let mut source = String::from("DEFINE L0 0x7C00\n");
    for i in 1..50_000 {
        source.push_str(&format!("DEFINE L{i} L{}\n", i - 1));
    }
    source.push_str("WRITE L49999 0xEB\nWRITE 0x7C01 0xFE\n");
    let file = write(&home.scratch("chain.txt"), &source).to_path_buf();
    let run = home.bounded(
        &[
            "x86",
            "build",
            s(&file),
            "-o",
            s(&home.scratch("chain.bin")),
        ],
        TEN_SECONDS,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // A circle of 50,000 is a clean error.
    let mut circle = source.replacen("DEFINE L0 0x7C00", "DEFINE L0 L49999", 1);
    circle.push('\n');
    let file = write(&home.scratch("circle.txt"), &circle).to_path_buf();
    let run = home.bounded(
        &["x86", "build", s(&file), "-o", s(&home.scratch("c.bin"))],
        TEN_SECONDS,
    );
    run.assert_refused("circle");
    assert!(
        run.stderr.contains("labels defined in a circle"),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    // Nested lo()/hi() is capped, not recursed.
    let nested = format!(
        "WRITE 0x7C00 {}0x41{}\n",
        "lo(".repeat(100_000),
        ")".repeat(100_000)
    );
    let file = write(&home.scratch("nested.txt"), &nested).to_path_buf();
    let run = home.bounded(
        &["x86", "build", s(&file), "-o", s(&home.scratch("n.bin"))],
        TEN_SECONDS,
    );
    run.assert_refused("nested lo()");
    assert!(
        run.stderr.contains("nest at most 8 deep"),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
}

// 8. Nested YAML.

#[test]
fn deeply_nested_yaml_is_refused_in_linear_time() {
    let home = Home::new("yaml-depth");
    let roadmap = format!("steps: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
    let file = write(&home.scratch("deep.yaml"), &roadmap).to_path_buf();
    let run = home.bounded(
        &["vram", "build", s(&file), "-o", s(&home.scratch("v.png"))],
        TEN_SECONDS,
    );
    run.assert_refused("deep YAML");
    assert!(run.seconds < 2.0, "{} s", run.seconds);
    assert!(
        run.stderr.contains("nest") && run.stderr.contains("more than 32"),
        "{}",
        run.stderr
    );
    let dashes = format!("steps:\n{}x\n", "- ".repeat(100_000));
    let file = write(&home.scratch("dashes.yaml"), &dashes).to_path_buf();
    let run = home.bounded(
        &["vram", "build", s(&file), "-o", s(&home.scratch("v.png"))],
        TEN_SECONDS,
    );
    run.assert_refused("deep block YAML");
    assert!(run.stderr.contains("more than 32"), "{}", run.stderr);
    // The built-in roadmaps still parse.
    home.ok(&["vram", "build", "default", "-o", s(&home.scratch("ok.png"))]);
}

// 9. Writers wait for the lock.

#[test]
fn parallel_writers_wait_for_the_lock_instead_of_failing() {
    let home = Home::new("lock-wait");
    home.ok(&["fs", "init"]);
    let file = write(&home.scratch("f.txt"), "x").to_path_buf();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let script = (0..12)
                .map(|i| {
                    format!(
                        "\"$0\" fs add /w{w}/f{i}.txt {} -q || exit 1",
                        file.display()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            home_command(&home, &script).spawn().unwrap()
        })
        .collect();
    for mut writer in writers {
        let output = writer.wait().unwrap();
        assert!(output.success(), "a writer gave up");
    }
    for w in 0..4 {
        for i in 0..12 {
            home.ok(&["fs", "cat", &format!("/w{w}/f{i}.txt")]);
        }
    }
    // A lock held past the timeout: a clear message naming the holder and the flag.
    let lock = home.home().join("fs").join("lock");
    pxos_test_support::require_tool("flock").expect("flock (util-linux)");
    let mut holder = Command::new("flock")
        .args([s(&lock), "sleep", "5"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let stderr = home.fails(
        2,
        &["fs", "add", "/late.txt", s(&file), "--lock-timeout", "0.5"],
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(stderr.contains("waiting for the write lock"), "{stderr}");
    assert!(stderr.contains("--lock-timeout"), "{stderr}");
    let _ = holder.kill();
    let _ = holder.wait();
}

/// `bash -c SCRIPT` with `$0` the pxos binary and this home.
fn home_command(home: &Home, script: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pxos"))
        .env("PXOS_HOME", home.home())
        .env("NO_COLOR", "1");
    command
}

// 10. The smaller ones.

#[test]
fn long_path_components_and_unsorted_manifests_are_refused_as_bad_input() {
    let home = Home::new("manifest-rules");
    let long = format!("{}.txt", "a".repeat(300));
    let pxa = crafted_pxa(&home, "long", &[(&long, b"x")]);
    let stderr = home.fails(1, &["cart", "unpack", s(&pxa), s(&home.scratch("out"))]);
    assert!(stderr.contains("a component of 304 bytes"), "{stderr}");
    let pxa = crafted_pxa(&home, "unsorted", &[("b.txt", b"b"), ("a.txt", b"a")]);
    let stderr = home.fails(1, &["cart", "unpack", s(&pxa), s(&home.scratch("out"))]);
    assert!(stderr.contains("not sorted by path"), "{stderr}");
    let stderr = home.fails(1, &["cart", "info", s(&pxa)]);
    assert!(stderr.contains("not sorted by path"), "{stderr}");
    assert!(!home.scratch("out").exists());
    assert!(temporaries_under(&home.dir).is_empty());
}

#[test]
fn errors_name_the_file_they_are_about() {
    let home = Home::new("error-paths");
    let missing_dir = home.scratch("no/such/dir");
    let stderr = home.fails(2, &["x86", "build", "-o", s(&missing_dir.join("x.bin"))]);
    assert!(stderr.contains("no/such/dir/x.bin"), "{stderr}");
    let input = write(&home.scratch("a.txt"), "hello").to_path_buf();
    let stderr = home.fails(
        2,
        &[
            "pixel",
            "encode",
            s(&input),
            "-o",
            s(&missing_dir.join("a.png")),
        ],
    );
    assert!(stderr.contains("no/such/dir/a.png"), "{stderr}");
    let stderr = home.fails(
        2,
        &[
            "vram",
            "build",
            "default",
            "-o",
            s(&missing_dir.join("v.png")),
        ],
    );
    assert!(stderr.contains("no/such/dir/v.png"), "{stderr}");
    let stderr = home.fails(1, &["asm", s(&home.scratch("missing.pxasm"))]);
    assert!(stderr.contains("missing.pxasm"), "{stderr}");
    // PNG CRC errors are sentences, not Rust debug output.
    let png = home.scratch("a.png");
    home.ok(&["pixel", "encode", s(&input), "-o", s(&png)]);
    let mut bytes = std::fs::read(&png).unwrap();
    bytes[29] ^= 0xff; // the IHDR CRC
    std::fs::write(&png, bytes).unwrap();
    let stderr = home.fails(1, &["pixel", "verify", s(&png)]);
    assert!(stderr.contains("the IHDR chunk"), "{stderr}");
    assert!(!stderr.contains("ChunkType {"), "{stderr}");
}

#[test]
fn reading_commands_work_on_a_read_only_home() {
    let home = Home::new("read-only-home");
    home.ok(&["boot"]);
    let commands: [&[&str]; 8] = [
        &["status"],
        &["boot", "--dry-run"],
        &["log"],
        &["log", "verify"],
        &["cart", "list"],
        &["cart", "fsck"],
        &["kernel", "fsck"],
        &["inspect"],
    ];
    for args in commands {
        let output = read_only(&home, args);
        assert!(
            output.status.success(),
            "{args:?} on a read-only home: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A command that writes says why it cannot, naming the path.
    let output = read_only(&home, &["boot"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(home.home().to_str().unwrap()), "{stderr}");
}

/// Runs `pxos ARGS` so that the home cannot be written: as an unprivileged
/// user when the tests run as root (root ignores file modes), else after
/// taking the write bits away.
fn read_only(home: &Home, args: &[&str]) -> std::process::Output {
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mode = |spec: &str| {
        assert!(
            Command::new("chmod")
                .args(["-R", spec, s(&home.home())])
                .status()
                .unwrap()
                .success()
        );
    };
    if is_root {
        // Readable by others, writable by its owner (root) only.
        mode("go+rX,go-w");
        pxos_test_support::require_tool("setpriv").expect("setpriv (util-linux)");
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_pxos"),
        ]);
        command
            .args(args)
            .env("PXOS_HOME", home.home())
            .env("NO_COLOR", "1");
        command.output().unwrap()
    } else {
        mode("a-w");
        let output = home.run(args);
        mode("u+w");
        output
    }
}

#[test]
fn x86_sources_may_start_with_a_byte_order_mark() {
    let home = Home::new("x86-bom");
    let source = write(
        &home.scratch("bom.txt"),
        "\u{feff}WRITE 0x7C00 0xEB\nWRITE 0x7C01 0xFE\n",
    )
    .to_path_buf();
    home.ok(&[
        "x86",
        "build",
        s(&source),
        "-o",
        s(&home.scratch("bom.bin")),
    ]);
}

#[test]
fn program_entry_points_must_be_whole_numbers() {
    let home = Home::new("entry");
    let words = home.scratch("words.bin");
    std::fs::write(&words, [0u8; 8]).unwrap();
    for entry in ["1.5", "1e30", "-1", "\"1\"", "4294967296"] {
        let png = home.scratch("p.png");
        let metadata = format!("{{\"format\":\"pxvm-program\",\"version\":1,\"entry\":{entry}}}");
        home.ok(&[
            "pixel",
            "encode",
            s(&words),
            "-o",
            s(&png),
            "--kind",
            "program",
            "--metadata",
            &metadata,
        ]);
        let stderr = home.fails(1, &["run", s(&png)]);
        assert!(
            stderr.contains("is not a whole number from 0 to 4294967295"),
            "{entry}: {stderr}"
        );
    }
}

#[test]
fn the_debugger_never_wraps_addresses_to_zero() {
    let home = Home::new("debug-wrap");
    let program = write(&home.scratch("p.pxasm"), "HALT\n").to_path_buf();
    let mut child = home
        .pxos()
        .args(["debug", s(&program)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"mem 4294967290 10\nquit\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let addresses: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().split_once(':').map(|(a, _)| a))
        .filter(|a| a.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        addresses,
        [
            "4294967290",
            "4294967291",
            "4294967292",
            "4294967293",
            "4294967294",
            "4294967295"
        ],
        "{stdout}"
    );
}

#[test]
fn a_signal_stops_qemu_and_removes_its_scratch_folder() {
    let home = Home::new("qemu-signal");
    let image = home.scratch("pxos.bin");
    home.ok(&["x86", "build", "-o", s(&image)]);
    let mut child = home
        .pxos()
        .args([
            "x86",
            "run",
            s(&image),
            "--headless",
            "--wait-for",
            "text that never appears",
            "--timeout",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = std::env::temp_dir().join(format!("pxos-qemu-{}-0", child.id()));
    let started = std::time::Instant::now();
    // Wait until QEMU runs on the floppy copy in the scratch folder.
    while qemu_processes_using(&scratch).is_empty() {
        assert!(started.elapsed() < TEN_SECONDS, "QEMU did not start");
        assert!(child.try_wait().unwrap().is_none(), "pxos ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(128 + 15));
    // QEMU got SIGTERM too; give it a moment to go.
    let stopped = std::time::Instant::now();
    while !qemu_processes_using(&scratch).is_empty() {
        assert!(
            stopped.elapsed() < TEN_SECONDS,
            "QEMU still runs after pxos was stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!scratch.exists(), "{} was left behind", scratch.display());
}

/// Processes whose command line mentions `dir` (read from /proc).
fn qemu_processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(pid)
        })
        .collect()
}
