use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh home directory (and scratch space) for one test.
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(name: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("pxos-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("scratch")).unwrap();
        Home { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join("scratch").join(name)
    }

    /// A `pxos` command using this home.
    pub fn pxos(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pxos"));
        command
            .env("PXOS_HOME", self.home())
            .env_remove("PXOS_CRASH_AT")
            // Remote tests store their keys in the home; a developer's own must not win.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `pxos ARGS`, returning the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.pxos().args(args).output().unwrap()
    }

    /// Runs `pxos ARGS` and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "pxos {args:?} failed ({:?}):\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `pxos ARGS`, asserts exit code `code`; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "pxos {args:?}: stderr {stderr}"
        );
        // Every failure says why on stderr: an error line, or (for a clean
        // negative answer, exit 1) at least one line naming what is wrong.
        assert!(
            stderr.contains("pxos: error: ") || (code == 1 && !stderr.trim().is_empty()),
            "pxos {args:?} exited {code} without saying why on stderr: {stderr:?}"
        );
        stderr
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository root (the project's own source tree).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Parses JSON Lines output.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

pub use pxos_test_support::random_bytes;

/// Edits the evolution log by hand: replaces `from` with `to` in its JSON and
/// writes it back as a valid pixel file (only the chain can tell).
pub fn hand_edit_log(home: &Home, from: &str, to: &str) {
    pxos_test_support::replace_in_log(&home.home().join("log/evolution"), from, to);
}

/// The current cartridge's record, from `pxos status --json`.
pub fn current(home: &Home) -> serde_json::Value {
    json_lines(&home.ok(&["status", "--json"]))[0]["current"].clone()
}

/// Unpacks the current cartridge's stored `.pxa` into scratch `name`.
pub fn unpack_current(home: &Home, name: &str) -> PathBuf {
    let sha = current(home)["sha256"].as_str().unwrap().to_string();
    let dir = home.scratch(name);
    let stored = home.home().join("carts").join(format!("{sha}.pxa"));
    home.ok(&[
        "cart",
        "unpack",
        stored.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    dir
}

/// Unpacks the current cartridge, edits it into `version` (made by an LLM,
/// child of the current one), packs and registers it; returns the `.pxa`.
pub fn derive_world(
    home: &Home,
    name: &str,
    version: &str,
    edit: impl FnOnce(&Path, &mut serde_json::Value),
) -> PathBuf {
    let current = current(home);
    let dir = unpack_current(home, name);
    let manifest_path = dir.join("cartridge.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["version"] = version.into();
    manifest["parent"] = current["id"].clone();
    manifest["creator"] = serde_json::json!({"kind": "llm", "name": "pixellm"});
    manifest["reason"] = "a friendlier shell".into();
    edit(&dir, &mut manifest);
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let cart = home.scratch(&format!("{name}.pxa"));
    home.ok(&[
        "cart",
        "pack",
        dir.to_str().unwrap(),
        "-o",
        cart.to_str().unwrap(),
        "--actor",
        "pixellm",
        "--llm",
    ]);
    home.ok(&[
        "cart",
        "register",
        cart.to_str().unwrap(),
        "--actor",
        "pixellm",
        "--llm",
        "--reason",
        "proposed by the model",
    ]);
    cart
}

/// Sets shell message 9 of a world directory.
pub fn shell_message(dir: &Path, text: &str) {
    let path = dir.join("messages.json");
    let mut messages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    messages["9"] = text.into();
    std::fs::write(path, messages.to_string()).unwrap();
}

/// Assembles `source` into a program image at `target` with `pxos asm`.
pub fn assemble(home: &Home, source: &str, target: &Path) {
    let src = target.with_extension("pxasm");
    std::fs::write(&src, source).unwrap();
    home.ok(&["asm", src.to_str().unwrap(), "-o", target.to_str().unwrap()]);
}

/// Derives `default@1.1.0` whose kernel stage asks SELF_MODIFY for `module`
/// (shipped in its `modules/`, found by its file id), tests and promotes it.
pub fn evolving_cartridge(home: &Home, module: &str) {
    let module_png = home.scratch("next.png");
    assemble(home, module, &module_png);
    let info = json_lines(&home.ok(&["pixel", "info", module_png.to_str().unwrap(), "--json"]));
    let file_id = info[0]["header"]["file_id"].as_str().unwrap().to_string();
    derive_world(home, "evolving", "1.1.0", |dir, manifest| {
        std::fs::create_dir_all(dir.join("modules")).unwrap();
        std::fs::copy(&module_png, dir.join("modules/next.png")).unwrap();
        let kernel = format!(
            "START:\n    LI R1, 3\n    LI R2, 0\n    SYSCALL 1\n    IMM32 R1, {file_id}\n    SYSCALL 99\n    HALT\n"
        );
        std::fs::write(dir.join("boot/kernel.pxasm"), &kernel).unwrap();
        let program = pxos_vm::asm::assemble("kernel", &kernel).unwrap();
        let image = pxos_vm::ProgramImage {
            words: program.words,
            entry: program.entry,
        };
        std::fs::write(dir.join("boot/kernel.png"), image.to_png()).unwrap();
        manifest["reason"] = "a kernel that evolves itself".into();
    });
    home.ok(&["cart", "test", "default@1.1.0", "--actor", "ada", "-q"]);
    home.ok(&[
        "cart",
        "promote",
        "default@1.1.0",
        "--approved-by",
        "ada",
        "--reason",
        "an evolving kernel",
    ]);
}

/// Virtual memory a bounded run may use (`ulimit -v`, in KiB): 512 MiB.
pub const BOUNDED_MEMORY_KIB: u64 = 512 * 1024;

/// How a bounded run ended.
pub struct Bounded {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Bounded {
    /// Asserts a clean refusal: exit 1 or 2, no panic, no abort.
    pub fn assert_refused(&self, what: &str) {
        assert!(
            matches!(self.code, Some(1 | 2)),
            "{what}: exit {:?} (signal {:?}), stderr: {}",
            self.code,
            self.signal,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "{what}: panicked: {}",
            self.stderr
        );
    }
}

impl Home {
    /// Runs `pxos ARGS` under `ulimit -v` ([`BOUNDED_MEMORY_KIB`]) and a wall-clock
    /// `deadline`; a run past the deadline is killed and fails the test.
    pub fn bounded(&self, args: &[&str], deadline: std::time::Duration) -> Bounded {
        self.bounded_with(args, deadline, |_| {})
    }

    /// [`Home::bounded`], with `setup` applied to the command first.
    pub fn bounded_with(
        &self,
        args: &[&str],
        deadline: std::time::Duration,
        setup: impl FnOnce(&mut Command),
    ) -> Bounded {
        use std::io::Read;
        use std::os::unix::process::ExitStatusExt;
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -v {BOUNDED_MEMORY_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_pxos"))
            .args(args)
            .env("PXOS_HOME", self.home())
            .env_remove("PXOS_CRASH_AT")
            // Remote tests store their keys in the home; a developer's own must not win.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        setup(&mut command);
        let started = std::time::Instant::now();
        let mut child = command.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stdout.read_to_end(&mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("pxos {args:?} did not finish within {deadline:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let seconds = started.elapsed().as_secs_f64();
        Bounded {
            code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
            seconds,
        }
    }
}

/// Every `.pxos-tmp-*` file or folder under `dir`, at any depth.
pub fn temporaries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".pxos-tmp-")
            {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

/// Copies a folder recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A home as release 0.1.0 wrote it (`tests/fixtures/home-0.1.0`).
pub fn release_home(home: &Home) {
    copy_tree(
        &repo_root().join("crates/pxos-cli/tests/fixtures/home-0.1.0"),
        &home.home(),
    );
}

/// Whether the glyphs of `text` in the console font are drawn white at
/// (`x0`, `y0`) of an RGB screen `width` pixels wide, as the console draws them.
pub fn glyphs_at(rgb: &[u8], width: usize, text: &str, x0: usize, y0: usize) -> bool {
    let font = pxos_vm::Font::builtin();
    text.chars().enumerate().all(|(i, ch)| {
        (0..8).all(|y| {
            (0..8).all(|x| {
                let at = ((y0 + y) * width + x0 + i * 8 + x) * 3;
                let lit = rgb.get(at..at + 3) == Some(&[0xff, 0xff, 0xff][..]);
                lit == font.lit(ch, x as u32, y as u32)
            })
        })
    })
}

/// Whether some row of the console shows `text` from its left edge.
pub fn console_shows(png: &Path, text: &str) -> bool {
    let (width, _, rgb) = pxos_test_support::read_png_rgb(png);
    let [left, top, _, height] = pxos_vm::DEFAULT_CONSOLE_AREA;
    (0..height / 8).any(|row| {
        glyphs_at(
            &rgb,
            width as usize,
            text,
            left as usize,
            (top + row * 8) as usize,
        )
    })
}
