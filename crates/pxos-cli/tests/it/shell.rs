//! The shell, through a real terminal: `pxos boot` in a tmux pane, driven
//! with send-keys and read with capture-pane; and `pxos shell` on a pipe.

use std::path::Path;
use std::time::Duration;

use pxos_test_support::tmux::{Tmux, exit_marker};

use crate::support::{Home, console_shows, derive_world, json_lines};

fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// `pxos ARGS` in a tmux pane on `home`.
fn terminal(home: &Home, args: &[&str]) -> Option<Tmux> {
    let home_dir = home.home();
    Tmux::start(
        &home.scratch("tmux"),
        &[("PXOS_HOME", &home_dir)],
        Path::new(env!("CARGO_BIN_EXE_pxos")),
        args,
    )
}

/// `pxos ARGS` on `home` with stdin from the file at `input`.
fn piped(home: &Home, args: &[&str], input: impl AsRef<Path>) -> std::process::Output {
    home.pxos()
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap()
}

/// Sends `line` at the prompt and waits for its answer.
fn ask(tmux: &Tmux, line: &str, answer: &str) -> String {
    tmux.line(line);
    tmux.wait_for(answer)
}

#[test]
fn boot_on_a_terminal_ends_at_the_prompt_and_every_command_answers() {
    let home = Home::new("shell-tour");
    let note = home.scratch("note.txt");
    std::fs::write(&note, "a note kept in pixels\nsecond line\n").unwrap();
    home.ok(&["fs", "add", "/docs/note.txt", s(&note)]);
    let Some(tmux) = terminal(&home, &["boot"]) else {
        return;
    };
    let screen = tmux.wait_for("pxos> ");
    assert!(screen.contains("boot complete"), "{screen}");
    ask(&tmux, "help", "list a PixelFS directory");
    ask(&tmux, "ls /", "docs/");
    ask(&tmux, "ls /docs", "note.txt");
    ask(&tmux, "cat /docs/note.txt", "second line");
    ask(&tmux, "cat /docs/none", "cat: not found");
    ask(&tmux, "run hello 2", "hello from a pixel program");
    // The screen now shows what was typed, what answered, and what hello drew.
    let saved = home.home().join("boot/screen.png");
    ask(
        &tmux,
        "screen",
        &format!("screen saved: {}", saved.display()),
    );
    for text in [
        "pxos> cat /docs/note.txt",
        "a note kept in pixels",
        "pxos> run hello 2",
        "hello from a pixel program",
    ] {
        assert!(
            console_shows(&saved, text),
            "the screen does not show {text:?}"
        );
    }
    assert!(
        !console_shows(&saved, "pxos> never typed"),
        "the check can fail"
    );
    let (width, _, rgb) = pxos_test_support::read_png_rgb(&saved);
    let yellow = |x: u32| rgb[((25 * width + x) * 3) as usize..][..3] == [0xff, 0xff, 0x55];
    assert!(
        yellow(25) && yellow(39) && !yellow(53),
        "two squares from hello 2"
    );
    let ps = ask(&tmux, "ps", "programs/hello.png 2");
    assert!(ps.contains("(this shell)"), "{ps}");
    ask(&tmux, "kernel", "running: kernel 1 (default@1.0.0, good)");
    let log = ask(&tmux, "log 3", "kernel-boot");
    assert!(log.contains("#3 "), "the last three entries: {log}");
    ask(
        &tmux,
        "frobnicate",
        "unknown command (type help): frobnicate",
    );
    // History: Up brings back `frobnicate`, then `log 3`.
    tmux.keys(&["Up", "Up", "Enter"]);
    tmux.wait_for_count("pxos> log 3", 2, Duration::from_secs(20));
    // Line editing: "hlp", two steps left, insert "e".
    tmux.type_text("hlp");
    tmux.keys(&["Left", "Left"]);
    tmux.type_text("e");
    tmux.keys(&["Enter"]);
    tmux.wait_for_count("list a PixelFS directory", 2, Duration::from_secs(20));
    tmux.line("exit");
    let end = tmux.wait_for(&exit_marker(0));
    assert!(!end.contains("panicked"), "{end}");

    // The screen saved when the shell ended shows the last commands.
    for text in [
        "pxos> frobnicate",
        "unknown command (type help): frobnicate",
        "pxos> log 3",
        "pxos> help",
        "pxos> exit",
    ] {
        assert!(
            console_shows(&saved, text),
            "the screen does not show {text:?}"
        );
    }

    // Every program run is an execution record, the shell's own included.
    let records =
        std::fs::read_to_string(home.home().join("run/executions/open-00000000.log")).unwrap();
    assert!(records.contains("boot/shell.png") && records.contains("programs/hello.png"));
}

#[test]
fn no_shell_and_a_pipe_keep_the_boot_a_script_expects() {
    let home = Home::new("shell-no");
    let Some(tmux) = terminal(&home, &["boot", "--no-shell", "-q"]) else {
        return;
    };
    let screen = tmux.wait_for(&exit_marker(0));
    assert!(!screen.contains("pxos> "), "{screen}");
    // -q prints nothing at all, not even an empty line.
    let before_marker = screen.split(&exit_marker(0)).next().unwrap();
    assert_eq!(
        before_marker.trim_matches('\n').lines().count(),
        0,
        "{screen:?}"
    );
    drop(tmux);
    // stdin that is not a terminal: the boot ends after its report.
    let out = home.ok(&["boot"]);
    assert!(
        out.contains("boot complete") && !out.contains("pxos> "),
        "{out}"
    );
}

/// A world whose shell stage is `shell` (assembled), promoted by a person.
fn world_with_shell(home: &Home, version: &str, shell: &str) {
    home.ok(&["boot", "-q"]);
    derive_world(home, "other-shell", version, |dir, manifest| {
        std::fs::write(dir.join("boot/shell.pxasm"), shell).unwrap();
        let program = pxos_vm::asm::assemble("shell", shell).unwrap();
        let image = pxos_vm::ProgramImage {
            words: program.words,
            entry: program.entry,
        };
        std::fs::write(dir.join("boot/shell.png"), image.to_png()).unwrap();
        manifest["reason"] = "another shell".into();
    });
    let id = format!("default@{version}");
    home.ok(&["cart", "test", &id, "--actor", "ada", "-q"]);
    home.ok(&[
        "cart",
        "promote",
        &id,
        "--approved-by",
        "ada",
        "--reason",
        "try it",
    ]);
}

/// A shell that answers every line with "echo: LINE" at the prompt "alt$ ".
const ECHO_SHELL: &str = r#"
START:
    IMM32 R1, PROMPT
    IMM32 R2, 0x8000
    LI R3, 200
    SYSCALL 70              ; READ_LINE
    LI R4, 0
    BEQ R0, R4, DONE
    IMM32 R1, SAYS
    LI R2, 1
    SYSCALL 1
    IMM32 R1, 0x8000
    LI R2, 1
    SYSCALL 1
    JMP START
DONE:
    HALT
PROMPT:
    .string "alt$ "
SAYS:
    .string "the other shell heard:"
"#;

#[test]
fn a_cartridge_with_another_shell_boots_to_that_shell() {
    let home = Home::new("shell-other");
    world_with_shell(&home, "1.1.0", ECHO_SHELL);
    let Some(tmux) = terminal(&home, &["boot"]) else {
        return;
    };
    tmux.wait_for("alt$ ");
    ask(&tmux, "hello there", "hello there");
    let screen = tmux.wait_for("the other shell heard:");
    assert!(!screen.contains("pxos> "), "{screen}");
    tmux.keys(&["C-d"]);
    tmux.wait_for(&exit_marker(0));
    // `pxos shell` re-enters the same shell without booting again.
    let boots = std::fs::read_to_string(home.home().join("boot/boot.log")).unwrap();
    let out = piped(&home, &["shell"], write(&home, "lines", "again\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("alt$ again") && stdout.contains("again"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(home.home().join("boot/boot.log")).unwrap(),
        boots,
        "no second boot"
    );
}

fn write(home: &Home, name: &str, text: &str) -> std::path::PathBuf {
    let path = home.scratch(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_trapping_shell_is_reported_and_the_boot_ends_without_one() {
    let home = Home::new("shell-trap");
    // It reads a line (the boot's own run finds no terminal and halts), then
    // divides by zero.
    let trapping = "START:\n    IMM32 R1, P\n    IMM32 R2, 0x8000\n    LI R3, 64\n    SYSCALL 70\n    LI R4, 0\n    BEQ R0, R4, DONE\n    DIV R5, R4, R4\nDONE:\n    HALT\nP:\n    .string \"trap> \"\n";
    world_with_shell(&home, "1.2.0", trapping);
    let Some(tmux) = terminal(&home, &["boot"]) else {
        return;
    };
    tmux.wait_for("trap> ");
    tmux.line("boom");
    let screen = tmux.wait_for(&exit_marker(0));
    assert!(
        screen.contains("trapped: division by zero")
            && screen.contains("the boot is complete without a shell"),
        "{screen}"
    );
    assert!(!screen.contains("panicked"), "{screen}");
    // `pxos shell` says the same, with exit 1.
    let out = piped(&home, &["shell"], write(&home, "boom", "boom\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trapped: division by zero"));
}

#[test]
fn hostile_lines_and_the_end_of_input_never_panic_or_hang() {
    let home = Home::new("shell-hostile");
    home.ok(&["boot", "-q"]);
    let Some(tmux) = terminal(&home, &["shell"]) else {
        return;
    };
    tmux.wait_for("pxos> ");
    // A line far longer than the shell's buffer.
    ask(&tmux, &"x".repeat(3000), "that line is too long");
    // Control characters typed as keys, then a command still works.
    tmux.keys(&["C-a", "C-e", "Tab", "C-k", "C-w", "Escape"]);
    tmux.keys(&["C-c"]);
    ask(&tmux, "ls /", "(empty)");
    // Too many words, and a word too long.
    ask(&tmux, &"w ".repeat(20), "too many words");
    ask(
        &tmux,
        &format!("cat {}", "y".repeat(300)),
        "a word is too long",
    );
    // EOF at the prompt ends the shell cleanly.
    tmux.keys(&["C-d"]);
    let screen = tmux.wait_for(&exit_marker(0));
    assert!(!screen.contains("panicked"), "{screen}");

    // The same bytes through a pipe, with raw control characters and invalid
    // UTF-8: every line is answered, escaped, and the shell ends at EOF.
    let mut script = Vec::new();
    script.extend_from_slice(b"help\n");
    script.extend_from_slice(&vec![b'z'; 200_000]);
    script.extend_from_slice(b"\n\x01\x1b[31mred\x07\n\xff\xfe\n\0\0cat\0 /x\nrun hello 1 2 3\nrun\nlog 0\nlog many\nps\n");
    let path = home.scratch("hostile.txt");
    std::fs::write(&path, &script).unwrap();
    let out = home.bounded_with(&["shell"], Duration::from_secs(60), |command| {
        command.stdin(std::fs::File::open(&path).unwrap());
    });
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for expected in [
        "that line is too long",
        "unknown command (type help): \\u{1}\\u{1b}[31mred\\u{7}",
        "usage: run NAME [ARGS]",
        "usage: log [N]",
        "(this shell)",
        "exit",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} in:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains('\x1b'),
        "no raw escape reaches the terminal"
    );
}

#[test]
fn a_piped_shell_speaks_json() {
    let home = Home::new("shell-json");
    home.ok(&["boot", "-q"]);
    let path = home.scratch("lines.txt");
    std::fs::write(&path, "run hello 1\nps\nprograms\n").unwrap();
    let out = piped(&home, &["shell", "--json"], &path);
    assert!(out.status.success());
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "input" && l["line"] == "run hello 1")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "output" && l["text"] == "hello from a pixel program")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "output" && l["text"] == "hello"),
        "programs lists hello"
    );
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "shell-end");
    assert_eq!(end["ok"], true);
    assert_eq!(end["programs_run"], 1);
    assert_eq!(end["lines"], 3);
}

/// A shell that tries to write PixelFS, at boot and at the prompt (inside
/// its own sandbox folder, so that Genesis passes it).
const WRITING_SHELL: &str = r#"
START:
    IMM32 R13, PATHS
NEXT:
    LOAD R1, [R13]
    LI R4, 0
    BEQ R1, R4, ASK
    IMM32 R2, PATHS
    LI R3, 4
    SYSCALL 42              ; FILE_WRITE
    LI R4, 0
    BNE R0, R4, WROTE
    IMM32 R1, DENIED
    LI R2, 1
    SYSCALL 1
    ADDI R13, R13, 1
    JMP NEXT
WROTE:
    IMM32 R1, WRITTEN
    LI R2, 1
    SYSCALL 1
    ADDI R13, R13, 1
    JMP NEXT
ASK:
    IMM32 R1, PROMPT
    IMM32 R2, 0x8000
    LI R3, 64
    SYSCALL 70
    HALT
PATHS:
    .word P1, 0
P1:
    .string "/sandbox/default@1.3.0/x"
DENIED:
    .string "write denied"
WRITTEN:
    .string "WRITTEN"
PROMPT:
    .string "w> "
"#;

#[test]
fn neither_the_boot_nor_the_shell_writes_pixelfs() {
    let home = Home::new("shell-read-only");
    home.ok(&["fs", "init"]);
    world_with_shell(&home, "1.3.0", WRITING_SHELL);
    let boot = home.ok(&["boot"]);
    assert_eq!(boot.matches("write denied").count(), 1, "{boot}");
    let out = piped(&home, &["shell"], write(&home, "line", "x\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("write denied").count(), 1, "{stdout}");
    assert!(!stdout.contains("WRITTEN") && !boot.contains("WRITTEN"));
    let tree = home.ok(&["fs", "tree", "/"]);
    assert!(!tree.contains("sandbox"), "{tree}");
    // A home without PixelFS refuses the writes too, rather than losing them.
    let bare = Home::new("shell-no-fs");
    world_with_shell(&bare, "1.3.0", WRITING_SHELL);
    let boot = bare.ok(&["boot"]);
    assert_eq!(boot.matches("write denied").count(), 1, "{boot}");
}

#[test]
fn the_shell_of_another_cartridge_runs_sandboxed_and_so_do_its_programs() {
    let home = Home::new("shell-sandboxed");
    home.ok(&["boot", "-q"]);
    derive_world(&home, "experiment", "1.1.0", |_, _| {});
    let lines = write(&home, "lines", "run hello 1\nps\n");
    let out = piped(&home, &["shell", "--cartridge", "default@1.1.0"], &lines);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let shell_row = stdout
        .lines()
        .find(|l| l.contains("(this shell)"))
        .unwrap_or_default();
    let hello_row = stdout
        .lines()
        .find(|l| l.contains("default@1.1.0:programs/hello.png 1"))
        .unwrap_or_default();
    assert!(shell_row.contains("sandboxed"), "{stdout}");
    assert!(hello_row.contains("sandboxed"), "{stdout}");
    // The current cartridge's shell runs its programs trusted.
    let out = piped(&home, &["shell"], &lines);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hello_row = stdout
        .lines()
        .find(|l| l.contains("default@1.0.0:programs/hello.png 1"))
        .unwrap_or_default();
    assert!(hello_row.contains("trusted"), "{stdout}");
    let stderr = home.fails(1, &["shell", "--cartridge", "nope@9.9.9"]);
    assert!(stderr.contains("nope@9.9.9"), "{stderr}");
}

#[test]
fn history_carries_over_to_the_next_session_and_a_damaged_one_is_left_alone() {
    let home = Home::new("shell-history");
    home.ok(&["boot", "-q"]);
    let lines = write(&home, "lines", "ls /\nps\n\n\x01junk\n");
    let out = piped(&home, &["shell"], &lines);
    assert!(out.status.success());
    let history = home.home().join("shell/history.txt");
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        "ls /\nps\n",
        "empty lines and control characters are not kept"
    );
    // The next session, on a terminal: Up brings back `ps`.
    let Some(tmux) = terminal(&home, &["shell"]) else {
        return;
    };
    tmux.wait_for("pxos> ");
    tmux.keys(&["Up", "Enter"]);
    tmux.wait_for("(this shell)");
    tmux.keys(&["C-d"]);
    tmux.wait_for(&exit_marker(0));
    drop(tmux);
    assert_eq!(std::fs::read_to_string(&history).unwrap(), "ls /\nps\nps\n");
    // A damaged history file is reported, the shell still works, and the
    // file is not overwritten.
    std::fs::write(&history, b"ls /\n\xff\xfe\n").unwrap();
    let out = piped(&home, &["shell"], &lines);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the shell history is unreadable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&history).unwrap(), b"ls /\n\xff\xfe\n");
}
