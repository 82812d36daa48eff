use crate::support::{Home, json_lines, random_bytes};

#[test]
fn tour_runs_on_a_fresh_home_in_text_and_json() {
    let home = Home::new("tour");
    let text = home.ok(&["tour"]);
    assert!(
        text.contains("[4/4] verified") && text.contains("ok"),
        "{text}"
    );
    let lines = json_lines(&home.ok(&["tour", "--json"]));
    assert_eq!(lines.iter().filter(|l| l["type"] == "tour-step").count(), 4);
    assert_eq!(lines[3]["verified"], true);
    assert!(home.home().join("tour/hello.png").is_file());
}

#[test]
fn encode_decode_info_read_view_round_trip() {
    let home = Home::new("pixel");
    let payload = random_bytes(1, 3_000_000);
    let input = home.scratch("in.bin");
    std::fs::write(&input, &payload).unwrap();
    let image = home.scratch("in.png");
    let back = home.scratch("back.bin");
    let (input_s, image_s, back_s) = (
        input.to_str().unwrap(),
        image.to_str().unwrap(),
        back.to_str().unwrap(),
    );
    let encoded = json_lines(&home.ok(&[
        "pixel", "encode", input_s, "-o", image_s, "--kind", "tensor", "--json",
    ]));
    assert_eq!(encoded[0]["header"]["kind"], "tensor");
    home.ok(&["pixel", "decode", image_s, "-o", back_s]);
    assert!(std::fs::read(&back).unwrap() == payload);
    let info = json_lines(&home.ok(&["pixel", "info", image_s, "--json"]));
    assert_eq!(info[0]["header"]["payload_len"], 3_000_000);
    assert_eq!(info[0]["indexed"], true);
    let read = home
        .pxos()
        .args([
            "pixel", "read", image_s, "--offset", "1234567", "--length", "4096",
        ])
        .output()
        .unwrap();
    assert!(read.status.success());
    assert_eq!(read.stdout, &payload[1_234_567..1_234_567 + 4096]);
    let read = json_lines(&home.ok(&[
        "pixel", "read", image_s, "--offset", "10", "--length", "4", "--json",
    ]));
    assert_eq!(read[0]["hex"], pxos_hex(&payload[10..14]));
    home.fails(
        2,
        &[
            "pixel", "read", image_s, "--offset", "2999999", "--length", "2",
        ],
    );
    let view = home.scratch("view.png");
    home.ok(&["pixel", "view", image_s, "-o", view.to_str().unwrap()]);
    assert_eq!(&std::fs::read(&view).unwrap()[1..4], b"PNG");
    // Decode to stdout.
    let out = home
        .pxos()
        .args(["pixel", "decode", image_s, "-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout == payload);
}

fn pxos_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

use pxos_test_support::edit_pixels;

#[test]
fn damage_is_exit_code_one_with_a_clear_message() {
    let home = Home::new("damage");
    let input = home.scratch("in.bin");
    std::fs::write(&input, random_bytes(2, 40_000)).unwrap();
    let image = home.scratch("good.png");
    home.ok(&[
        "pixel",
        "encode",
        input.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]);
    let good = std::fs::read(&image).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.png",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "flipped.png",
            edit_pixels(&good, |data, line| data[line * 3 + 5] ^= 1),
            "hash mismatch",
        ),
        (
            "header.png",
            edit_pixels(&good, |data, _| data[20] ^= 0x55),
            "header is corrupted",
        ),
        (
            "ordinary.png",
            edit_pixels(&good, |data, _| data[0] = b'X'),
            "not a pixel file",
        ),
        (
            "huge.png",
            {
                let mut huge = good.clone();
                huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
                huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
                let crc = pxos_test_support::crc32(&huge[12..29]);
                huge[29..33].copy_from_slice(&crc.to_be_bytes());
                huge
            },
            "100000x100000",
        ),
        ("empty.png", Vec::new(), "empty"),
    ];
    for (name, bytes, expected) in cases {
        let path = home.scratch(name);
        std::fs::write(&path, &bytes).unwrap();
        let out = home.scratch(&format!("{name}.out"));
        for args in [
            vec![
                "pixel",
                "decode",
                path.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            vec!["pixel", "verify", path.to_str().unwrap()],
        ] {
            let stderr = home.fails(1, &args);
            assert!(
                stderr.contains(expected) && stderr.contains(name),
                "{args:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        assert!(!out.exists(), "a failed decode left {}", out.display());
        let json = json_lines(
            &String::from_utf8(
                home.run(&["pixel", "verify", "--json", path.to_str().unwrap()])
                    .stdout,
            )
            .unwrap(),
        );
        assert_eq!(json[0]["ok"], false);
    }
}

#[test]
fn usage_errors_are_exit_code_two() {
    let home = Home::new("usage");
    let out = home.run(&["pixel", "encode"]);
    assert_eq!(out.status.code(), Some(2));
    home.fails(
        2,
        &["pixel", "encode", "/definitely/not/here", "-o", "x.png"],
    );
    home.fails(2, &["pixel", "encode", "Cargo.toml", "--kind", "potato"]);
    let out = home.run(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no arguments prints help and exits 2"
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let home = Home::new("pipe");
    let input = home.scratch("big.bin");
    std::fs::write(&input, random_bytes(3, 4_000_000)).unwrap();
    let image = home.scratch("big.png");
    home.ok(&[
        "pixel",
        "encode",
        input.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]);
    let mut child = home
        .pxos()
        .args(["pixel", "decode", image.to_str().unwrap(), "-o", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
