//! `pxos boot` and `pxos status` on fresh homes.

use crate::support::{Home, json_lines};

fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

#[test]
fn boot_installs_and_boots_the_default_world_on_a_fresh_home() {
    let home = Home::new("boot");
    let out = home.ok(&["boot"]);
    assert!(
        out.contains("installed the built-in default world as default@1.0.0"),
        "{out}"
    );
    for stage in [
        "[0] verify",
        "[1] bios",
        "[2] kernel",
        "[3] policy",
        "[5] shell",
    ] {
        assert!(out.contains(stage), "{stage} missing:\n{out}");
    }
    assert!(
        out.contains("PXVM ready") && out.contains("boot complete"),
        "{out}"
    );
    // The screen shows the kernel's squares and the shell's prompt bar.
    let screen = home.home().join("boot/screen.png");
    let mut reader = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&screen).unwrap(),
    ))
    .read_info()
    .unwrap();
    let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut pixels).unwrap();
    let at = |x: usize, y: usize| &pixels[(y * 512 + x) * 3..(y * 512 + x) * 3 + 3];
    assert_eq!(at(60, 60), [0x00, 0x00, 0xaa], "blue square");
    assert_eq!(at(260, 100), [0x55, 0xaa, 0xff], "light blue square");
    assert_eq!(at(0, 0), [0xaa, 0xaa, 0xaa], "frame");
    assert_eq!(at(100, 480), [0x55, 0x55, 0x55], "prompt bar");
    let log = std::fs::read_to_string(home.home().join("boot/boot.log")).unwrap();
    assert_eq!(
        json_lines(&log).len(),
        7,
        "a header line and one line per stage"
    );

    let again = home.ok(&["boot", "--json"]);
    let lines = json_lines(&again);
    assert!(
        lines.iter().all(|l| l["type"] != "installed"),
        "installed only once"
    );
    assert_eq!(lines.last().unwrap()["ok"], true);

    let status = json_lines(&home.ok(&["status", "--json"]));
    assert_eq!(status[0]["current"]["id"], "default@1.0.0");
    assert_eq!(status[0]["current"]["creator"]["kind"], "human");
    assert_eq!(status[0]["log"]["verifies"], true);
    let log = json_lines(&home.ok(&["log", "--json"]));
    assert_eq!(log[0]["action"], "register");
    assert_eq!(log[0]["cartridge"], "default@1.0.0");
}

#[test]
fn dry_run_custom_sequences_and_failures() {
    let home = Home::new("boot-seq");
    let dry = home.ok(&["boot", "--dry-run"]);
    assert!(
        dry.contains("checked") && !home.home().join("boot/screen.png").exists(),
        "{dry}"
    );

    let sequence = home.scratch("sequence.json");
    std::fs::write(&sequence, r#"{"stages": [
        {"number": 0, "name": "verify", "path": "builtin:verify", "required": true, "description": "verify"},
        {"number": 1, "name": "extra", "path": "boot/missing.png", "required": false, "description": "optional, missing"},
        {"number": 2, "name": "kernel", "path": "boot/kernel.png", "required": true, "description": "kernel"},
        {"number": 3, "name": "after-extra", "path": "boot/shell.png", "required": false, "requires": ["extra"], "description": "needs extra"}
    ]}"#).unwrap();
    let lines = json_lines(&home.ok(&["boot", "--sequence", sequence.to_str().unwrap(), "--json"]));
    let stages: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["type"] == "stage")
        .map(|l| &l["stage"])
        .collect();
    assert_eq!(stages[1]["outcome"], "skipped");
    assert_eq!(stages[2]["outcome"], "ok");
    assert_eq!(stages[3]["outcome"], "skipped");
    assert!(
        stages[3]["detail"]
            .as_str()
            .unwrap()
            .contains("requires extra")
    );

    std::fs::write(&sequence, r#"{"stages": [
        {"number": 0, "name": "verify", "path": "builtin:verify", "required": true, "description": "verify"},
        {"number": 1, "name": "missing", "path": "boot/missing.png", "required": true, "description": "required, missing"},
        {"number": 2, "name": "kernel", "path": "boot/kernel.png", "required": true, "description": "never reached"}
    ]}"#).unwrap();
    let output = home.run(&["boot", "--sequence", sequence.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("boot HALTED at required stage 'missing'")
            && !stdout.contains("[2] kernel"),
        "{stdout}"
    );

    std::fs::write(&sequence, r#"{"stages": [{"number": 0, "name": "a", "path": "x.png", "required": true, "description": "", "requires": ["b"]}]}"#).unwrap();
    let stderr = home.fails(1, &["boot", "--sequence", sequence.to_str().unwrap()]);
    assert!(stderr.contains("requires 'b'"), "{stderr}");
}

#[test]
fn stage_zero_catches_a_tampered_world() {
    let home = Home::new("boot-tamper");
    home.ok(&["boot"]);
    let run = std::fs::read_dir(home.home().join("run"))
        .unwrap()
        .flatten()
        .find(|e| e.path().join("boot").is_dir())
        .unwrap()
        .path();
    std::fs::write(run.join("boot/policy.pxasm"), "; changed\n").unwrap();
    let output = home.run(&["boot"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("boot/policy.pxasm does not match its hash"),
        "{stdout}"
    );
}

#[test]
fn run_a_program_of_the_current_cartridge_and_inspect() {
    let home = Home::new("run-named");
    // The argument reaches the program as a string (argc, argv): three squares.
    let screen = home.scratch("hello.png");
    let out = home.ok(&["run", "hello", "3", "--screen", s(&screen)]);
    assert!(out.contains("hello from a pixel program"), "{out}");
    let (width, _, rgb) = pxos_test_support::read_png_rgb(&screen);
    let at = |x: u32, y: u32| {
        let i = ((y * width + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    for square in 0..3 {
        assert_eq!(
            at(25 + 14 * square, 25),
            [0xff, 0xff, 0x55],
            "square {square}"
        );
    }
    assert_eq!(at(25 + 14 * 3, 25), [0, 0, 0], "only three squares");
    let refused = home.ok(&["run", "hello", "many"]);
    assert!(refused.contains("usage: hello [N]"), "{refused}");
    let stderr = home.fails(1, &["run", "no-such-program"]);
    assert!(
        stderr.contains("has no program named 'no-such-program'"),
        "{stderr}"
    );
    let inspect = json_lines(&home.ok(&["inspect", "--json"]));
    assert_eq!(inspect[0]["cartridge"], "default@1.0.0");
    assert_eq!(inspect[0]["programs"][0], "hello");
    assert!(
        inspect[0]["sandbox"]["current cartridge"]
            .as_str()
            .unwrap()
            .starts_with("trusted")
    );
    assert!(
        inspect[0]["kernel"].is_null(),
        "no kernel before the first boot"
    );
    home.ok(&["boot", "-q"]);
    let inspect = json_lines(&home.ok(&["inspect", "--json"]));
    assert_eq!(inspect[0]["kernel"]["version"], "default@1.0.0");
    let log =
        std::fs::read_to_string(home.home().join("run/executions/open-00000000.log")).unwrap();
    assert!(
        log.contains("programs/hello.png"),
        "every execution is logged: {log}"
    );
}
