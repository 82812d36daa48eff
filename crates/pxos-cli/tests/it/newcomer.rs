//! What a newcomer trips over, one test each: a dry run that writes nothing,
//! binary kept off terminals, text forms, silence that says nothing happened.

use std::path::Path;

use pxos_test_support::tmux::{Tmux, exit_marker};

use crate::support::{Home, json_lines};

fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

#[test]
fn a_dry_run_on_a_fresh_home_writes_nothing() {
    let home = Home::new("dry-fresh");
    let out = home.ok(&["boot", "--dry-run"]);
    assert!(
        out.contains("a boot would install the built-in default world as default@1.0.0")
            && out.contains("[5] shell    checked"),
        "{out}"
    );
    assert!(!home.home().exists(), "the dry run created the home");
    let lines = json_lines(&home.ok(&["boot", "--dry-run", "--json"]));
    assert_eq!(lines[0]["type"], "would-install");
    assert!(!home.home().exists());
    // The real boot then installs it.
    let out = home.ok(&["boot", "--no-shell"]);
    assert!(
        out.contains("fresh home: installed the built-in default world"),
        "{out}"
    );
}

#[test]
fn pixel_read_dumps_hex_on_a_terminal_and_raw_bytes_elsewhere() {
    let home = Home::new("read-tty");
    let input = home.scratch("data.bin");
    let bytes: Vec<u8> = (0u8..=255).collect();
    std::fs::write(&input, &bytes).unwrap();
    let png = home.scratch("data.png");
    home.ok(&["pixel", "encode", s(&input), "-o", s(&png)]);
    // Piped: the raw bytes.
    let out = home
        .pxos()
        .args(["pixel", "read", s(&png), "--offset", "60", "--length", "20"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, &bytes[60..80]);
    // A terminal: a dump in xxd's layout, offsets from --offset.
    let Some(tmux) = Tmux::start(
        &home.scratch("tmux"),
        &[("PXOS_HOME", &home.home())],
        Path::new(env!("CARGO_BIN_EXE_pxos")),
        &["pixel", "read", s(&png), "--offset", "60", "--length", "20"],
    ) else {
        return;
    };
    let screen = tmux.wait_for(&exit_marker(0));
    assert!(
        screen.contains("0000003c: 3c3d 3e3f 4041 4243 4445 4647 4849 4a4b  <=>?@ABCDEFGHIJK")
            && screen.contains("0000004c: 4c4d 4e4f                                LMNO"),
        "{screen}"
    );
    drop(tmux);
    // --raw sends the bytes even to a terminal (printable ones, to read them back).
    let Some(tmux) = Tmux::start(
        &home.scratch("tmux-raw"),
        &[("PXOS_HOME", &home.home())],
        Path::new(env!("CARGO_BIN_EXE_pxos")),
        &[
            "pixel",
            "read",
            s(&png),
            "--offset",
            "65",
            "--length",
            "10",
            "--raw",
        ],
    ) else {
        return;
    };
    let screen = tmux.wait_for(&exit_marker(0));
    assert!(screen.contains("ABCDEFGHIJ[exit 0]"), "{screen}");
}

#[test]
fn inspect_speaks_text_unless_asked_for_json() {
    let home = Home::new("inspect-text");
    home.ok(&["boot", "-q"]);
    let text = home.ok(&["inspect"]);
    assert!(!text.trim_start().starts_with('{'), "{text}");
    for line in [
        "cartridge:    default@1.0.0",
        "programs:     hello",
        "sandbox:",
        "  current cartridge: trusted",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    let json = json_lines(&home.ok(&["inspect", "--json"]));
    assert_eq!(json[0]["type"], "inspect");
    assert_eq!(json[0]["cartridge"], "default@1.0.0");
}

#[test]
fn an_empty_answer_says_so_and_quiet_is_silent() {
    let home = Home::new("quiet");
    assert_eq!(home.ok(&["boot", "-q"]), "", "boot -q prints nothing");
    assert_eq!(
        home.ok(&["log", "--actor", "llm"]).trim(),
        "no entries for actor llm"
    );
    assert_eq!(
        home.ok(&["log", "--actor", "llm", "--json"]),
        "",
        "JSON Lines of nothing"
    );
    assert!(home.ok(&["log", "--actor", "system"]).contains("register"));
}
