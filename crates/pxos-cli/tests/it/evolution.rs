//! The seed 000 evolution cycle, end to end through the binary, and crash
//! injection at every durable write of promote and rollback.

use crate::support::{Home, current, derive_world, hand_edit_log, json_lines, shell_message};

#[test]
fn the_seed_000_cycle_works_end_to_end() {
    let home = Home::new("cycle");
    home.ok(&["boot"]);
    derive_world(&home, "v110", "1.1.0", |dir, _| {
        shell_message(dir, "Shell 1.1.0 says hello")
    });
    assert!(
        home.ok(&["cart", "test", "default@1.1.0", "--actor", "ada"])
            .contains("Genesis passed")
    );
    // An experimental cartridge boots on request, sandboxed.
    let experimental = home.ok(&["boot", "--cartridge", "default@1.1.0"]);
    assert!(
        experimental.contains("default@1.1.0 (experimental")
            && experimental.contains("Shell 1.1.0"),
        "{experimental}"
    );
    assert!(
        current(&home)["id"] == "default@1.0.0",
        "booting an experiment does not promote it"
    );

    // Refused without a person's approval, and when an LLM approves.
    let stderr = home.fails(1, &["cart", "promote", "default@1.1.0"]);
    assert!(stderr.contains("needs a person's approval"), "{stderr}");
    let stderr = home.fails(
        1,
        &[
            "cart",
            "promote",
            "default@1.1.0",
            "--approved-by",
            "pixellm",
            "--llm",
        ],
    );
    assert!(stderr.contains("only a person can approve"), "{stderr}");

    // A variant that fails Genesis is refused even with approval.
    derive_world(&home, "v111", "1.1.1", |_, manifest| {
        manifest["capabilities"] = serde_json::json!(["network"])
    });
    let out = home.run(&["cart", "test", "default@1.1.1", "--actor", "ada"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("asks for the network"));
    let stderr = home.fails(
        1,
        &["cart", "promote", "default@1.1.1", "--approved-by", "ada"],
    );
    assert!(stderr.contains("Genesis failed"), "{stderr}");

    // Promote with approval: boot runs 1.1.0.
    home.ok(&[
        "cart",
        "promote",
        "default@1.1.0",
        "--approved-by",
        "ada",
        "--reason",
        "tested and approved",
    ]);
    let boot = home.ok(&["boot"]);
    assert!(
        boot.contains("default@1.1.0") && boot.contains("Shell 1.1.0 says hello"),
        "{boot}"
    );

    // Roll back: boot runs 1.0.0 again; 1.1.0 is deprecated, nothing deleted.
    home.ok(&[
        "cart",
        "rollback",
        "default@1.0.0",
        "--actor",
        "ada",
        "--reason",
        "prefer the original",
    ]);
    let boot = home.ok(&["boot"]);
    assert!(
        boot.contains("default@1.0.0") && !boot.contains("Shell 1.1.0"),
        "{boot}"
    );
    let list = json_lines(&home.ok(&["cart", "list", "--json"]));
    let status_of = |id: &str| {
        list.iter().find(|l| l["record"]["id"] == id).unwrap()["record"]["status"].clone()
    };
    assert_eq!(status_of("default@1.0.0"), "current");
    assert_eq!(status_of("default@1.1.0"), "deprecated");
    assert_eq!(status_of("default@1.1.1"), "experimental");

    // The log shows every step with actor and reason, and verifies.
    let log = json_lines(&home.ok(&["log", "--json"]));
    let steps: Vec<(String, String, String)> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"]["kind"].as_str().unwrap().into(),
                e["actor"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("register", "system", "pxos"),
        ("genesis-check", "system", "pxos"),
        ("pack", "llm", "pixellm"),
        ("register", "llm", "pixellm"),
        ("genesis-check", "human", "ada"),
        ("promote", "human", "ada"),
        ("rollback", "human", "ada"),
    ] {
        assert!(
            steps.contains(&(expected.0.into(), expected.1.into(), expected.2.into())),
            "missing {expected:?} in {steps:?}"
        );
    }
    assert!(
        log.iter().find(|e| e["action"] == "promote").unwrap()["reason"] == "tested and approved"
    );
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));
    let lineage = home.ok(&[
        "cart",
        "lineage",
        "default@1.1.0",
        "--png",
        home.scratch("lineage.png").to_str().unwrap(),
    ]);
    assert!(
        lineage.contains("default@1.0.0") && lineage.contains("└─ default@1.1.0"),
        "{lineage}"
    );
    assert_eq!(
        &std::fs::read(home.scratch("lineage.png")).unwrap()[1..4],
        b"PNG"
    );

    // A hand-edited log fails verification.
    hand_edit_log(&home, "prefer the original", "nobody asked");
    assert_eq!(home.run(&["log", "verify"]).status.code(), Some(1));
}

#[test]
fn forced_promotions_are_recorded_as_forced() {
    let home = Home::new("forced");
    home.ok(&["boot"]);
    derive_world(&home, "v120", "1.2.0", |dir, _| {
        shell_message(dir, "forced")
    });
    home.fails(
        1,
        &["cart", "promote", "default@1.2.0", "--approved-by", "ada"],
    );
    home.ok(&[
        "cart",
        "promote",
        "default@1.2.0",
        "--approved-by",
        "ada",
        "--force",
        "--reason",
        "emergency",
    ]);
    let log = json_lines(&home.ok(&["log", "--json"]));
    assert_eq!(log.last().unwrap()["action"], "promote-forced");
}
