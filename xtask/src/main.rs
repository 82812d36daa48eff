//! pxOS automation.
//!
//! * `cargo xtask ci`: everything CI runs (setup, fmt, clippy, tests, benches once, fuzz targets).
//! * `cargo xtask setup`: installs the system tools the tests use (optipng, file, QEMU,
//!   tmux, Chromium, rclone, Garage, and the Python packages openai and numpy).
//! * `cargo xtask big`: the 1 GiB round trip and random reads through the real binary.
//! * `cargo xtask bench-remote`: push and pull against a 3-node Garage cluster,
//!   with rclone syncing the same data to the same cluster as the reference.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has a parent")?
        .to_path_buf();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "ci" => ci(),
        "setup" => setup(),
        "big" => big(&root),
        "bench-remote" => bench_remote(&root),
        _ => {
            eprintln!("usage: cargo xtask <ci|setup|big|bench-remote>");
            std::process::exit(2);
        }
    }
}

/// Tools the test suite needs: (program, Debian package).
const TOOLS: &[(&str, &str)] = &[
    ("optipng", "optipng"),
    ("file", "file"),
    ("qemu-system-i386", "qemu-system-x86"),
    // llama-cpp-python builds llama.cpp from source.
    ("g++", "g++"),
    ("make", "make"),
    // The remote benchmark's reference (`cargo xtask bench-remote`).
    ("rclone", "rclone"),
    // `pxos view` is tested end to end in headless Chromium over WebDriver.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // The shell is tested through a real terminal: tmux panes driven by send-keys.
    ("tmux", "tmux"),
];

/// Python packages the tests and benchmarks use: the official `openai`
/// client (drives `pxos llm serve`), numpy (the benchmarks' second anchor and
/// the reference forward pass), `gguf` (writes the tests' GGUF files) and
/// `regex` (the reference tokenizer's GPT-2 split) and selenium (drives
/// Chromium for the `pxos view` tests).
const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("openai", "openai>=1.40,<3"),
    ("numpy", "numpy>=1.26,<3"),
    ("gguf", "gguf>=0.17,<1"),
    ("regex", "regex>=2023"),
    ("selenium", "selenium>=4.20,<5"),
];

fn setup_python() -> Result<()> {
    let missing: Vec<&str> = PYTHON_PACKAGES
        .iter()
        .filter(|(module, _)| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|(_, spec)| *spec)
        .collect();
    if missing.is_empty() {
        println!("xtask: python packages present: openai, numpy, gguf, regex, selenium");
        return Ok(());
    }
    println!("xtask: pip installing {}", missing.join(" "));
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&missing))
}

/// llama.cpp through llama-cpp-python: the reference for logits and speed on
/// imported GGUF files. PyPI has only its source, so pip builds llama.cpp
/// (cmake, C++; about 15-25 minutes on 2 cores), once per machine. A failed
/// build is reported and the setup goes on: the parity test then says it
/// skipped. `PXOS_SKIP_LLAMA_CPP=1` leaves it out on purpose.
fn setup_llama_cpp() {
    let present = Command::new("python3")
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        println!("xtask: llama-cpp-python present");
        return;
    }
    if std::env::var("PXOS_SKIP_LLAMA_CPP").as_deref() == Ok("1") {
        println!(
            "xtask: PXOS_SKIP_LLAMA_CPP=1: not building llama-cpp-python (llama.cpp parity will be skipped)"
        );
        return;
    }
    println!("xtask: building llama-cpp-python 0.3.36 from source (llama.cpp; once per machine)");
    let started = std::time::Instant::now();
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "llama-cpp-python==0.3.36",
        ])
        .env(
            "CMAKE_ARGS",
            "-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF",
        )
        .env("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        .status();
    match status {
        Ok(s) if s.success() => println!(
            "xtask: llama-cpp-python built in {:.0} s",
            started.elapsed().as_secs_f64()
        ),
        other => println!(
            "xtask: WARNING: llama-cpp-python did not build ({other:?}); llama.cpp parity and speed checks will be skipped"
        ),
    }
}

/// Whether Mesa's lavapipe (software Vulkan) is installed: the GPU tests'
/// adapter in CI (llvmpipe over GL comes with the image's Mesa).
fn has_lavapipe() -> bool {
    std::fs::read_dir("/usr/share/vulkan/icd.d").is_ok_and(|dir| {
        dir.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd"))
    })
}

fn setup() -> Result<()> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    if !has_lavapipe() {
        missing.extend(["mesa-vulkan-drivers", "libvulkan1"]);
    }
    if missing.is_empty() {
        println!(
            "xtask: test tools present: {}, lavapipe",
            TOOLS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        );
    } else {
        println!("xtask: installing {}", missing.join(" "));
        let sudo = if is_root() { vec![] } else { vec!["sudo"] };
        let apt = |args: &[&str]| -> Result<()> {
            let mut command: Vec<&str> = sudo.clone();
            command.push("apt-get");
            command.extend_from_slice(args);
            run(Command::new(command[0])
                .args(&command[1..])
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        apt(&["update", "-qq"])?;
        let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
        install.extend(missing.iter());
        apt(&install)?;
    }
    setup_python()?;
    setup_garage()?;
    setup_llama_cpp();
    Ok(())
}

/// Garage 2.5.0, the S3-compatible store the remote tests run a cluster of:
/// `cargo install` builds it (about 12-17 minutes on 2 cores), once per machine.
fn setup_garage() -> Result<()> {
    if on_path("garage") {
        println!("xtask: garage present");
        return Ok(());
    }
    println!("xtask: cargo install garage 2.5.0 (once per machine)");
    let started = Instant::now();
    run(Command::new("cargo").args(["install", "garage", "--version", "2.5.0", "--locked"]))?;
    println!(
        "xtask: garage installed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ci() -> Result<()> {
    let started = Instant::now();
    setup()?;
    step(
        "fmt",
        Command::new("cargo").args(["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "clippy",
        Command::new("cargo").args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The fuzz crate is not in the workspace: the same checks, by its manifest.
    step(
        "fuzz fmt",
        Command::new("cargo").args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]),
    )?;
    step(
        "fuzz clippy",
        Command::new("cargo").args([
            "clippy",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "bench (each once)",
        Command::new("cargo").args(["bench", "--workspace", "--locked", "--", "--test"]),
    )?;
    // Tests run last so that the run closes on their tally.
    let (passed, failed) = counted_tests()?;
    println!("xtask: ci passed in {:.0?}", started.elapsed());
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs the workspace tests, echoing their output, and adds up their result lines.
fn counted_tests() -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    println!("xtask: == test ==");
    let started = Instant::now();
    let mut child = Command::new("cargo")
        // --no-fail-fast: when something fails, the tally still covers every test binary.
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().context("piped stdout")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| {
                        let part = part
                            .trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ");
                        part.strip_suffix(word)
                    })
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    println!(
        "xtask: test {} ({:.0?})",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed()
    );
    if !status.success() {
        println!("tests: {passed} passed, {failed} failed");
        bail!("cargo test failed with {status}");
    }
    Ok((passed, failed))
}

/// 1 GiB of random bytes through `pxos pixel encode/decode/read`.
fn big(root: &Path) -> Result<()> {
    step(
        "build",
        Command::new("cargo").args(["build", "--release", "-p", "pxos-cli"]),
    )?;
    let pxos = root.join("target/release/pxos");
    let dir = std::env::temp_dir().join(format!("pxos-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = big_in(&pxos, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn big_in(pxos: &Path, dir: &Path) -> Result<()> {
    let input = dir.join("random.bin");
    write_random(&input, 1 << 30)?;
    let image = dir.join("random.png");
    let back = dir.join("back.bin");
    let timed = |name: &str, args: &[&std::ffi::OsStr]| -> Result<()> {
        let started = Instant::now();
        run(Command::new(pxos).args(args))?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "xtask: {name}: {seconds:.2} s ({:.2} GB/s)",
            (1u64 << 30) as f64 / seconds / 1e9
        );
        Ok(())
    };
    timed(
        "encode 1 GiB",
        &[
            "pixel".as_ref(),
            "encode".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            image.as_os_str(),
            "-q".as_ref(),
        ],
    )?;
    timed(
        "decode 1 GiB",
        &[
            "pixel".as_ref(),
            "decode".as_ref(),
            image.as_os_str(),
            "-o".as_ref(),
            back.as_os_str(),
            "-q".as_ref(),
        ],
    )?;
    if std::fs::read(&input)? != std::fs::read(&back)? {
        bail!("1 GiB round trip differs");
    }
    let file = Command::new("file")
        .arg(&image)
        .output()
        .context("`file` is needed (cargo xtask setup)")?;
    let description = String::from_utf8_lossy(&file.stdout);
    if !description.contains("PNG image data") {
        bail!("file(1) does not see a PNG: {description}");
    }
    println!("xtask: {}", description.trim());
    let started = Instant::now();
    let offset = (1u64 << 30) - 123_456_789;
    let output = Command::new(pxos)
        .args([
            "pixel",
            "read",
            "--offset",
            &offset.to_string(),
            "--length",
            "4096",
        ])
        .arg(&image)
        .output()?;
    let elapsed = started.elapsed();
    let expected = {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::open(&input)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut buffer = vec![0u8; 4096];
        file.read_exact(&mut buffer)?;
        buffer
    };
    if output.stdout != expected {
        bail!("random read of 4 KiB at {offset} differs");
    }
    println!(
        "xtask: 1 GiB round trip identical; 4 KiB read at offset {offset} in {elapsed:.1?} (whole process)"
    );
    Ok(())
}

/// Push and pull throughput against a 3-node Garage cluster, rclone as the reference.
fn bench_remote(root: &Path) -> Result<()> {
    use pxos_test_support::garage::Garage;
    step(
        "build",
        Command::new("cargo").args(["build", "--release", "-p", "pxos-cli"]),
    )?;
    let pxos = root.join("target/release/pxos");
    let garage = Garage::start("bench", "bench").context("garage is needed (cargo xtask setup)")?;
    let dir = std::env::temp_dir().join(format!("pxos-bench-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = bench_remote_in(&pxos, &garage, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench_remote_in(
    pxos: &Path,
    garage: &pxos_test_support::garage::Garage,
    dir: &Path,
) -> Result<()> {
    let endpoint = garage.endpoint(0);
    let env = |command: &mut Command, home: &Path| {
        command
            .env("PXOS_HOME", home)
            .env("AWS_ACCESS_KEY_ID", &garage.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &garage.secret)
            .env("RCLONE_CONFIG_GARAGE_TYPE", "s3")
            .env("RCLONE_CONFIG_GARAGE_PROVIDER", "Other")
            .env("RCLONE_CONFIG_GARAGE_ENDPOINT", &endpoint)
            .env("RCLONE_CONFIG_GARAGE_REGION", "garage")
            .env("RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID", &garage.key_id)
            .env("RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY", &garage.secret);
    };
    let pxos_in = |home: &Path, args: &[&str]| -> Result<f64> {
        let mut command = Command::new(pxos);
        env(&mut command, home);
        let started = Instant::now();
        run(command.args(args))?;
        Ok(started.elapsed().as_secs_f64())
    };
    let rclone = |args: &[&str]| -> Result<f64> {
        let mut command = Command::new("rclone");
        env(&mut command, dir);
        // Some machines set a CA bundle for AWS tools, which rclone's S3
        // client cannot load for a plain-http endpoint.
        command.env_remove("AWS_CA_BUNDLE");
        let started = Instant::now();
        run(command
            .args(args)
            .args(["--transfers", "8", "--checkers", "8", "-q"]))?;
        Ok(started.elapsed().as_secs_f64())
    };
    let rows: std::cell::RefCell<Vec<String>> = Default::default();
    let row = |what: &str, bytes: u64, ours: f64, theirs: f64| {
        let line = format!(
            "| {what} | {ours:.2} s ({:.0} MB/s) | {theirs:.2} s ({:.0} MB/s) | {:.2}x |",
            bytes as f64 / ours / 1e6,
            bytes as f64 / theirs / 1e6,
            theirs / ours
        );
        println!("xtask: {line}");
        rows.borrow_mut().push(line);
    };
    // One 1 GiB PXI.
    let big = dir.join("big.bin");
    write_random(&big, 1 << 30)?;
    let home = dir.join("home-big");
    let remote = |home: &Path, prefix: &str| -> Result<f64> {
        pxos_in(
            home,
            &[
                "remote",
                "add",
                "origin",
                &format!("s3://bench/{prefix}"),
                "--endpoint",
                &endpoint,
                "--region",
                "garage",
                "-q",
            ],
        )
    };
    pxos_in(
        &home,
        &["fs", "add", "/big.bin", big.to_str().unwrap(), "-q"],
    )?;
    std::fs::remove_file(&big)?;
    let object = find_png(&home.join("fs/objects"))?.context("the big object")?;
    let object_len = std::fs::metadata(&object)?.len();
    // Twice each, alternating who goes first, after a `sync` (the 1 GiB
    // just written is still going to disk); the better of the two counts.
    let settle = || Command::new("sync").status().map(|_| ());
    let (mut push, mut rclone_push) = (f64::MAX, f64::MAX);
    for round in 0..2 {
        let name = format!("r{round}");
        pxos_in(
            &home,
            &[
                "remote",
                "add",
                &name,
                &format!("s3://bench/big-{round}"),
                "--endpoint",
                &endpoint,
                "--region",
                "garage",
                "-q",
            ],
        )?;
        let ours = |push: &mut f64| -> Result<()> {
            settle()?;
            *push = push.min(pxos_in(&home, &["fs", "push", &name, "-q"])?);
            Ok(())
        };
        let theirs = |rclone_push: &mut f64| -> Result<()> {
            settle()?;
            let target = format!("garage:bench/rclone-big-{round}");
            *rclone_push = rclone_push.min(rclone(&["copy", object.to_str().unwrap(), &target])?);
            Ok(())
        };
        if round == 0 {
            ours(&mut push)?;
            theirs(&mut rclone_push)?;
        } else {
            theirs(&mut rclone_push)?;
            ours(&mut push)?;
        }
    }
    row("push, one 1 GiB PXI", object_len, push, rclone_push);
    let (mut pull, mut rclone_pull) = (f64::MAX, f64::MAX);
    for round in 0..2 {
        let home2 = dir.join(format!("home-big-{round}"));
        let back = dir.join(format!("rclone-big-{round}"));
        let url = format!("s3://bench/big-{round}");
        let source = format!("garage:bench/rclone-big-{round}");
        let mut ours = || -> Result<()> {
            settle()?;
            pull = pull.min(pxos_in(
                &home2,
                &[
                    "fs",
                    "clone",
                    &url,
                    "--endpoint",
                    &endpoint,
                    "--region",
                    "garage",
                    "-q",
                ],
            )?);
            Ok(())
        };
        if round == 0 {
            ours()?;
            settle()?;
            rclone_pull = rclone_pull.min(rclone(&["copy", &source, back.to_str().unwrap()])?);
        } else {
            settle()?;
            rclone_pull = rclone_pull.min(rclone(&["copy", &source, back.to_str().unwrap()])?);
            ours()?;
        }
        std::fs::remove_dir_all(&home2)?;
        std::fs::remove_dir_all(&back)?;
    }
    row("pull, one 1 GiB PXI", object_len, pull, rclone_pull);
    // A 4 KiB read of the remote PXI.
    let hex = object
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        + object.file_stem().unwrap().to_str().unwrap();
    let url = format!("s3://bench/big-0/objects/{hex}.png");
    let mut times = Vec::new();
    let mut fetched = 0;
    for i in 0..7u64 {
        let mut command = Command::new(pxos);
        env(&mut command, &home);
        let offset = (i * 150_000_007) % ((1 << 30) - 4096);
        let started = Instant::now();
        let output = command
            .args([
                "pixel",
                "read",
                &url,
                "--offset",
                &offset.to_string(),
                "--length",
                "4096",
                "--json",
            ])
            .output()?;
        times.push(started.elapsed().as_secs_f64());
        if !output.status.success() {
            bail!(
                "remote read failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        fetched = value["fetched"].as_u64().unwrap_or(0);
    }
    times.sort_by(f64::total_cmp);
    let line = format!(
        "| 4 KiB read of the remote 1 GiB PXI (whole process) | {:.1} ms median of 7 | {} fetched of {} |",
        times[3] * 1e3,
        fetched,
        object_len
    );
    println!("xtask: {line}");
    rows.borrow_mut().push(line);
    std::fs::remove_dir_all(&home)?;
    // Many small files, at two sizes.
    for count in [100u64, 10_000] {
        let small = dir.join(format!("small-{count}"));
        let mut total = 0u64;
        let mut state = count;
        for i in 0..count {
            let sub = small.join(format!("d{:03}", i % 100));
            std::fs::create_dir_all(&sub)?;
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 512 + (state >> 54) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|j| (state >> (j % 56)) as u8 ^ j as u8)
                .collect();
            total += bytes.len() as u64;
            std::fs::write(sub.join(format!("f{i:05}.bin")), bytes)?;
        }
        let home = dir.join(format!("home-small-{count}"));
        remote(&home, &format!("small-{count}"))?;
        pxos_in(
            &home,
            &["fs", "add-dir", small.to_str().unwrap(), "/small", "-q"],
        )?;
        let push = pxos_in(&home, &["fs", "push", "-q"])?;
        let rclone_push = rclone(&[
            "copy",
            small.to_str().unwrap(),
            &format!("garage:bench/rclone-small-{count}"),
        ])?;
        row(
            &format!("push, {count} small files"),
            total,
            push,
            rclone_push,
        );
        let home2 = dir.join(format!("home-small-{count}-2"));
        let pull = pxos_in(
            &home2,
            &[
                "fs",
                "clone",
                &format!("s3://bench/small-{count}"),
                "--endpoint",
                &endpoint,
                "--region",
                "garage",
                "-q",
            ],
        )?;
        let back = dir.join(format!("rclone-small-{count}"));
        let rclone_pull = rclone(&[
            "copy",
            &format!("garage:bench/rclone-small-{count}"),
            back.to_str().unwrap(),
        ])?;
        row(
            &format!("pull, {count} small files"),
            total,
            pull,
            rclone_pull,
        );
    }
    println!(
        "\n| benchmark | pxos | rclone (same data, same cluster) | rclone time / pxos time |\n|---|---|---|---|"
    );
    for line in rows.borrow().iter() {
        println!("{line}");
    }
    Ok(())
}

/// The largest `.png` under `dir` (the big file's object, beside small trees).
fn find_png(dir: &Path) -> Result<Option<std::path::PathBuf>> {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let found = if path.is_dir() {
            find_png(&path)?
        } else {
            path.extension().is_some_and(|e| e == "png").then_some(path)
        };
        if let Some(found) = found {
            let len = std::fs::metadata(&found)?.len();
            if best.as_ref().is_none_or(|(b, _)| len > *b) {
                best = Some((len, found));
            }
        }
    }
    Ok(best.map(|(_, path)| path))
}

fn write_random(path: &Path, len: u64) -> Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x0123_4567_89ab_cdefu64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() as u64 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

fn step(name: &str, command: &mut Command) -> Result<()> {
    println!("xtask: == {name} ==");
    let started = Instant::now();
    run(command)?;
    println!("xtask: {name} ok ({:.0?})", started.elapsed());
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}
