//! `pxos x86` through the binary: build, disassemble, and boot in QEMU.

use crate::support::{Home, json_lines, repo_root};

fn seed_source() -> String {
    repo_root()
        .join("crates/pxos-x86/tests/fixtures/seed_pxos_commands.txt")
        .display()
        .to_string()
}

#[test]
fn build_disasm_and_png() {
    let home = Home::new("x86-build");
    let bin = home.scratch("pxos.bin");
    let png = home.scratch("pxos.png");
    let (bin_s, png_s) = (bin.to_str().unwrap(), png.to_str().unwrap());
    let text = home.ok(&["x86", "build", "-o", bin_s, "--png", png_s]);
    assert!(text.contains("a 512-byte boot sector for 0x7C00"), "{text}");
    let bytes = std::fs::read(&bin).unwrap();
    assert_eq!(bytes.len(), 512);
    assert_eq!(bytes[510..], [0x55, 0xAA]);

    // The source file in the repo builds to the same bytes as the built-in one.
    let source = repo_root().join("crates/pxos-x86/programs/pxos-v1-shell.txt");
    let again = home.scratch("again.bin");
    home.ok(&[
        "x86",
        "build",
        source.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    assert_eq!(
        home.ok(&["x86", "source"]).trim_end(),
        std::fs::read_to_string(&source).unwrap().trim_end()
    );

    // The PNG is a PXI holding the same bytes.
    let decoded = home.scratch("decoded.bin");
    home.ok(&["pixel", "decode", png_s, "-o", decoded.to_str().unwrap()]);
    assert_eq!(std::fs::read(&decoded).unwrap(), bytes);

    // The listing: from the PNG (which carries its labels) or the .bin with --src.
    let golden =
        std::fs::read_to_string(repo_root().join("crates/pxos-x86/tests/golden/pxos-v1-shell.lst"))
            .unwrap();
    let from_png = home.ok(&["x86", "disasm", png_s]);
    assert!(from_png.ends_with(&golden), "{from_png}");
    let from_bin = home.ok(&["x86", "disasm", bin_s, "--src", source.to_str().unwrap()]);
    assert!(from_bin.ends_with(&golden), "{from_bin}");
    // Without labels the branch targets still get names.
    let bare = home.ok(&["x86", "disasm", bin_s]);
    assert!(bare.contains("jmp loc_7C1F"), "{bare}");
    let json = json_lines(&home.ok(&["x86", "disasm", png_s, "--json"]));
    assert_eq!(json[0]["listing"]["entries"][0]["label"], "start");

    let json = json_lines(&home.ok(&["x86", "build", "-o", bin_s, "--json"]));
    assert_eq!(json[0]["type"], "built");
    assert_eq!(json[0]["size"], 512);
    assert_eq!(json[0]["mode"], "boot");
}

#[test]
fn seed_source_compat_golden_and_boot_mode_refusal() {
    let home = Home::new("x86-seed");
    let out = home.scratch("seed.bin");
    let seed = seed_source();
    let output = home
        .pxos()
        .args([
            "x86",
            "build",
            &seed,
            "--compat-seed",
            "-o",
            out.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json = json_lines(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(json[0]["size"], 31_833);
    assert_eq!(
        json[0]["sha256"],
        "733ada3165613e4076880a055dc4bb0e76d0414b3fab62f524749a10738675df"
    );
    assert!(json[0]["warnings"].to_string().contains("cannot boot"));
    // In text mode the warning goes to stderr.
    let output = home.run(&[
        "x86",
        "build",
        &seed,
        "--compat-seed",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("warning: this image cannot boot"));

    // The checked build refuses it with every reason and its line; nothing is written.
    let refused = home.scratch("refused.bin");
    let stderr = home.fails(1, &["x86", "build", &seed, "-o", refused.to_str().unwrap()]);
    assert!(stderr.contains("5 problems"), "{stderr}");
    assert!(
        stderr.contains("line 111: ") && stderr.contains("\"pxOS v1> \\0\""),
        "{stderr}"
    );
    assert!(stderr.contains("line 115: `jmp 0x7C37`"), "{stderr}");
    assert!(!refused.exists());
    let output = home.run(&[
        "x86",
        "build",
        &seed,
        "-o",
        refused.to_str().unwrap(),
        "--json",
    ]);
    let json = json_lines(&String::from_utf8(output.stdout).unwrap());
    let problems: Vec<&str> = json
        .iter()
        .filter(|l| l["type"] == "diagnostic")
        .map(|l| l["diagnostic"]["problem"].as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        [
            "bad-branch",
            "overlap",
            "bad-branch",
            "bad-branch",
            "bad-branch"
        ]
    );

    // The compat image's first sector is what a BIOS would run: zeros.
    let listing = home.ok(&["x86", "disasm", out.to_str().unwrap()]);
    assert!(
        listing.contains("; ... 253 more `add [bx+si], al`"),
        "{listing}"
    );
    assert!(
        listing.contains("a BIOS loads only the first 512"),
        "{listing}"
    );
    // Its code, at file offset 0x7C00, shows the off-by-one jumps.
    let listing = home.ok(&[
        "x86",
        "disasm",
        out.to_str().unwrap(),
        "--offset",
        "0x7C00",
        "--length",
        "0x59",
        "--src",
        &seed,
    ]);
    assert!(listing.contains("jmp loc_7C37"), "{listing}");
    assert!(listing.contains("call loc_7C27"), "{listing}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let home = Home::new("x86-bad");
    let src = home.scratch("bad.txt");
    let out = home.scratch("out.bin");
    let build_args = [
        "x86",
        "build",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    std::fs::write(&src, "WRITE 0x7C00 0xEB\nWRTIE 0x7C01 0xFE\n").unwrap();
    let stderr = home.fails(1, &build_args);
    assert!(
        stderr.contains("line 2: unknown command \"WRTIE\"; did you mean WRITE?"),
        "{stderr}"
    );
    std::fs::write(&src, [0xFF, 0xFE, 0x00]).unwrap();
    let stderr = home.fails(1, &build_args);
    assert!(stderr.contains("not UTF-8"), "{stderr}");
    home.fails(
        2,
        &[
            "x86",
            "build",
            home.scratch("missing.txt").to_str().unwrap(),
        ],
    );

    // Disassembling: an offset past the end; a damaged PNG.
    std::fs::write(&out, [0x90; 16]).unwrap();
    let stderr = home.fails(
        1,
        &["x86", "disasm", out.to_str().unwrap(), "--offset", "0x100"],
    );
    assert!(stderr.contains("past the end of the file"), "{stderr}");
    let listing = home.ok(&["x86", "disasm", out.to_str().unwrap()]);
    assert!(
        listing.contains("do not end in the boot signature"),
        "{listing}"
    );
    let png = home.scratch("x.png");
    home.ok(&[
        "x86",
        "build",
        "-o",
        out.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    let mut bytes = std::fs::read(&png).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 20);
    std::fs::write(&png, bytes).unwrap();
    let stderr = home.fails(1, &["x86", "disasm", png.to_str().unwrap()]);
    assert!(stderr.contains("not a readable PXI"), "{stderr}");

    // Booting: no signature; no emulator.
    std::fs::write(&out, [0u8; 512]).unwrap();
    let stderr = home.fails(1, &["x86", "run", out.to_str().unwrap(), "--headless"]);
    assert!(stderr.contains("not the boot signature 55 AA"), "{stderr}");
    let output = home
        .pxos()
        .args(["x86", "run", out.to_str().unwrap(), "--headless"])
        .env("PXOS_QEMU", "/nonexistent/qemu")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PXOS_QEMU names /nonexistent/qemu"));
    let stderr = home.fails(
        1,
        &[
            "x86",
            "run",
            out.to_str().unwrap(),
            "--headless",
            "--keys",
            "é",
        ],
    );
    assert!(stderr.contains("no key types"), "{stderr}");

    // For a person: with no desktop and no terminal there is nowhere to show the machine.
    let mut sector = [0u8; 512];
    sector[510..].copy_from_slice(&[0x55, 0xAA]);
    let bootable = home.scratch("bootable.bin");
    std::fs::write(&bootable, sector).unwrap();
    let output = home
        .pxos()
        .args(["x86", "run", bootable.to_str().unwrap()])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("use --headless"));
}

#[test]
fn headless_run_types_and_reads_the_screen() {
    let home = Home::new("x86-run");
    let png = home.scratch("pxos.png");
    home.ok(&[
        "x86",
        "build",
        "-o",
        home.scratch("pxos.bin").to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    // Booted from its pixels.
    let out = home.ok(&[
        "x86",
        "run",
        png.to_str().unwrap(),
        "--headless",
        "--wait-for",
        "pxOS v1>",
        "--keys",
        "hello\\b\\b",
        "--keys",
        "\\n",
        "--keys",
        "help\\n",
        "--keys",
        "clear\\n",
        "--json",
    ]);
    let screens = json_lines(&out);
    let rows = |i: usize| -> Vec<String> {
        let rows: Vec<String> = serde_json::from_value(screens[i]["rows"].clone()).unwrap();
        let mut rows = rows;
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    };
    assert_eq!(screens.len(), 5);
    assert_eq!(rows(0), ["pxOS v1>"]);
    assert_eq!(screens[0]["cursor"], serde_json::json!([0, 9]));
    assert_eq!(rows(1), ["pxOS v1> hel"]);
    assert_eq!(
        rows(2),
        [
            "pxOS v1> hel",
            "unknown command: hel (type help)",
            "pxOS v1>"
        ]
    );
    assert_eq!(
        rows(3)[3..],
        [
            "commands:",
            "  help   list the commands",
            "  clear  clear the screen",
            "pxOS v1>"
        ]
    );
    assert_eq!(rows(4), ["pxOS v1>"]);
    assert_eq!(screens[4]["cursor"], serde_json::json!([0, 9]));
}
