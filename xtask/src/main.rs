//! pxOS automation.
//!
//! * `cargo xtask ci`: everything CI runs (setup, fmt, clippy, tests, benches once, fuzz targets).
//! * `cargo xtask setup`: installs the system tools the tests use (optipng, file, QEMU,
//!   and the Python packages openai and numpy).
//! * `cargo xtask big`: the 1 GiB round trip and random reads through the real binary.

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
        _ => {
            eprintln!("usage: cargo xtask <ci|setup|big>");
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
    // `pxos view` is tested end to end in headless Chromium over WebDriver.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
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
    setup_llama_cpp();
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
