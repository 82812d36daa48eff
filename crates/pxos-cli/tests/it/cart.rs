//! Cartridges and the evolution log through the binary.

use crate::support::{Home, hand_edit_log, json_lines};

fn world(home: &Home) -> std::path::PathBuf {
    let dir = home.scratch("world");
    std::fs::create_dir_all(dir.join("kernels")).unwrap();
    std::fs::write(
        dir.join("cartridge.json"),
        r#"{"name": "demo", "version": "1.0.0", "creator": {"kind": "human", "name": "ada"}, "reason": "first world"}"#,
    )
    .unwrap();
    std::fs::write(dir.join("kernels/k.pxasm"), "HALT\n").unwrap();
    std::fs::write(dir.join("README.md"), "a world\n").unwrap();
    dir
}

#[test]
fn pack_info_unpack_and_the_log() {
    let home = Home::new("cart");
    let dir = world(&home);
    let cart = home.scratch("demo.pxa");
    let packed = json_lines(&home.ok(&[
        "cart",
        "pack",
        dir.to_str().unwrap(),
        "-o",
        cart.to_str().unwrap(),
        "--actor",
        "ada",
        "--json",
    ]));
    assert_eq!(packed[0]["id"], "demo@1.0.0");
    let info = json_lines(&home.ok(&["cart", "info", cart.to_str().unwrap(), "--json"]));
    assert_eq!(info[0]["files"].as_array().unwrap().len(), 2);
    assert_eq!(info[0]["sha256"], packed[0]["sha256"]);
    let out = home.scratch("unpacked");
    home.ok(&[
        "cart",
        "unpack",
        cart.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("README.md")).unwrap(),
        "a world\n"
    );
    home.fails(
        2,
        &[
            "cart",
            "unpack",
            cart.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );

    home.ok(&[
        "log",
        "note",
        "an llm idea",
        "--actor",
        "pixellm",
        "--llm",
        "--action",
        "propose",
    ]);
    let all = json_lines(&home.ok(&["log", "--json"]));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["action"], "pack");
    assert_eq!(all[0]["actor"]["name"], "ada");
    let llm = json_lines(&home.ok(&["log", "--actor", "llm", "--json"]));
    assert_eq!(llm.len(), 1);
    assert_eq!(llm[0]["actor"]["kind"], "llm");
    assert_eq!(
        json_lines(&home.ok(&["log", "--actor", "ada", "--json"])).len(),
        1
    );
    assert_eq!(
        json_lines(&home.ok(&["log", "--cart", "demo", "--json"])).len(),
        1
    );
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));

    // A hand-edited log fails verification.
    hand_edit_log(&home, "an llm idea", "a human idea");
    let out = home.run(&["log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("was edited"));
}

#[test]
fn hostile_cartridges_are_exit_code_one() {
    let home = Home::new("cart-hostile");
    let text = home.scratch("text.png");
    std::fs::write(
        &text,
        pxos_pixel::encode_to_vec(
            b"hello",
            &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Text),
        )
        .unwrap(),
    )
    .unwrap();
    let stderr = home.fails(1, &["cart", "info", text.to_str().unwrap()]);
    assert!(stderr.contains("not a cartridge"), "{stderr}");
    let stderr = home.fails(
        1,
        &[
            "cart",
            "unpack",
            text.to_str().unwrap(),
            home.scratch("x").to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("cartridge"), "{stderr}");
}

#[test]
fn a_crash_at_every_log_append_write_leaves_old_or_new_and_verifies() {
    use pxos_pixel::durable::{crash_points, label};
    let points: Vec<String> = [
        label::SEGLOG_HEAD_INTENT,
        label::SEGLOG_APPEND,
        label::SEGLOG_HEAD,
    ]
    .into_iter()
    .flat_map(crash_points)
    .collect();
    for point in &points {
        let home = Home::new(&format!("logcrash-{point}"));
        home.ok(&["log", "note", "first", "--actor", "ada"]);
        let output = home
            .pxos()
            .env("PXOS_CRASH_AT", point)
            .args(["log", "note", "second", "--actor", "ada"])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{point}: not reached");
        // It died at the point, not of an ordinary early error.
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("crash injected at {point}")),
            "{point}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let entries = json_lines(&home.ok(&["log", "--json"]));
        assert!(
            entries.len() == 1 || entries.len() == 2,
            "{point}: {} entries",
            entries.len()
        );
        assert!(
            home.ok(&["log", "verify"]).contains("chain intact"),
            "{point}"
        );
        home.ok(&["log", "note", "third", "--actor", "ada"]);
        assert!(
            home.ok(&["log", "verify"]).contains("chain intact"),
            "{point} after another append"
        );
    }
}
