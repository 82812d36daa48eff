//! Every Genesis check fails on a cartridge that violates it, and the
//! sandbox holds.

use std::path::{Path, PathBuf};

use pxos_boot::boot::{BootRequest, boot_home};
use pxos_boot::genesis;
use pxos_boot::hypervisor::{Hypervisor, Launch, Sandbox};
use pxos_cart::{Action, Actor, ActorKind, EvolutionLog, Registry};
use pxos_test_support::TempDir;
use pxos_vm::{MemoryStorage, ProgramImage, asm};

fn registry(home: &Path) -> Registry {
    Registry::open(
        &home.join("carts"),
        EvolutionLog::open(&home.join("log")).unwrap(),
    )
    .unwrap()
}

fn program(source: &str) -> Vec<u8> {
    let assembled = asm::assemble("t", source).unwrap();
    ProgramImage {
        words: assembled.words,
        entry: assembled.entry,
    }
    .to_png()
}

/// A fresh home with the default world, plus a registered variant made by `edit`.
fn variant(
    name: &str,
    edit: impl FnOnce(&Path, &mut serde_json::Value),
) -> (TempDir, PathBuf, pxos_cart::Record) {
    let dir = TempDir::new(&format!("genesis-{name}"));
    let home = dir.join("home");
    boot_home(&home, &BootRequest::default()).unwrap();
    let registry = registry(&home);
    let current = registry.current().unwrap().unwrap();
    let world = home.join("variant");
    pxos_cart::unpack(&registry.path_of(&current), &world, &Default::default()).unwrap();
    let manifest_path = world.join("cartridge.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["version"] = "1.1.0".into();
    manifest["parent"] = "default@1.0.0".into();
    edit(&world, &mut manifest);
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let cart = home.join("variant.pxa");
    pxos_cart::pack(&world, &cart, &Default::default()).unwrap();
    let record = registry
        .register(&cart, Actor::human("test"), "variant", false)
        .unwrap();
    (dir, home, record)
}

fn failed_sections(home: &Path, record: &pxos_cart::Record) -> Vec<String> {
    let report = genesis::check(home, &registry(home), record).unwrap();
    assert!(report.compliance_file.is_file());
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} {}", c.section, c.name))
        .collect();
    assert_eq!(report.failed(), failed);
    assert_eq!(report.passed(), failed.is_empty());
    failed
}

fn check_of<'r>(report: &'r genesis::Report, section: &str) -> &'r genesis::Check {
    report.checks.iter().find(|c| c.section == section).unwrap()
}

#[test]
fn the_default_world_passes_every_check() {
    let (_dir, home, record) = variant("pass", |_, _| {});
    let report = genesis::check(&home, &registry(&home), &record).unwrap();
    assert!(report.passed(), "{:?}", report.failed());
    assert!(report.failed().is_empty());
    assert_eq!(report.checks.len(), 9);
    // The evidence counts what was checked.
    let manifest = pxos_cart::read_manifest(&registry(&home).path_of(&record), &Default::default())
        .unwrap()
        .0;
    let files = manifest.files.len();
    assert!(files > 3);
    assert!(
        check_of(&report, "§1")
            .evidence
            .starts_with(&format!("{files} files ")),
        "{:?}",
        check_of(&report, "§1")
    );
    let sequence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("variant/boot/sequence.json")).unwrap())
            .unwrap();
    let programs = sequence["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["path"].as_str().is_some_and(|p| p.ends_with(".png")))
        .count();
    assert!(programs > 1);
    assert!(
        check_of(&report, "§4")
            .evidence
            .starts_with(&format!("{programs} programs ran")),
        "{:?}",
        check_of(&report, "§4")
    );
    assert_eq!(report.needs_person.len(), 4);
    let markdown = std::fs::read_to_string(&report.compliance_file).unwrap();
    assert!(markdown.contains("§7") && markdown.contains("Needs a person"));
}

#[test]
fn each_check_fails_on_a_violating_cartridge() {
    type Edit = Box<dyn FnOnce(&Path, &mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "s1",
            Box::new(|w, _| std::fs::write(w.join("boot/policy.png"), b"not pixels").unwrap()),
            "§1",
        ),
        (
            "s2",
            Box::new(|_, m| m["genesis_version"] = "9.9".into()),
            "§2 complete manifest",
        ),
        (
            "s2boot",
            Box::new(|w, _| std::fs::remove_file(w.join("boot/shell.png")).unwrap()),
            "§2 boots without network",
        ),
        (
            "s2creator",
            Box::new(|_, m| m["creator"]["name"] = " ".into()),
            "§2 complete manifest",
        ),
        (
            "s2created",
            Box::new(|_, m| m["created"] = " ".into()),
            "§2 complete manifest",
        ),
        (
            "s4",
            Box::new(|w, _| {
                std::fs::write(w.join("boot/kernel.png"), program("L: JMP L")).unwrap()
            }),
            "§4",
        ),
        (
            "s6",
            Box::new(|w, _| {
                std::fs::write(
                    w.join("boot/policy.png"),
                    program("IMM32 R1, 301\nSYSCALL 99\nHALT"),
                )
                .unwrap()
            }),
            "§6",
        ),
        (
            "s8",
            Box::new(|_, m| m["capabilities"] = serde_json::json!(["pxvm", "network"])),
            "§8",
        ),
        (
            "s8syscall",
            Box::new(|w, _| {
                std::fs::write(w.join("boot/policy.png"), program("SYSCALL 999\nHALT")).unwrap()
            }),
            "§8",
        ),
        (
            "s8module",
            Box::new(|w, _| std::fs::write(w.join("boot/policy.png"), b"not pixels").unwrap()),
            "§8",
        ),
        (
            "s10",
            Box::new(|_, m| {
                m["creator"] = serde_json::json!({"kind": "llm", "name": "pixellm"});
                m["reason"] = "".into();
            }),
            "§10",
        ),
    ];
    for (name, edit, section) in cases {
        let (_dir, home, record) = variant(name, edit);
        let failed = failed_sections(&home, &record);
        assert!(
            failed.iter().any(|f| f.starts_with(section)),
            "{name}: expected {section} to fail, failed: {failed:?}"
        );
    }
}

#[test]
fn deleted_history_and_a_tampered_log_fail_their_checks() {
    // §3: a registered cartridge's stored file is deleted.
    let (_dir, home, record) = variant("s3", |_, _| {});
    let registry = registry(&home);
    let original = registry.find("default@1.0.0").unwrap();
    std::fs::remove_file(registry.path_of(&original)).unwrap();
    assert!(
        failed_sections(&home, &record)
            .iter()
            .any(|f| f.starts_with("§3"))
    );

    // §7: the evolution log is edited by hand.
    let (_dir, home, record) = variant("s7", |_, _| {});
    pxos_test_support::replace_in_log(&home.join("log/evolution"), "variant", "nothing happened");
    let failed = failed_sections(&home, &record);
    assert!(failed.iter().any(|f| f.starts_with("§7")), "{failed:?}");
}

#[test]
fn genesis_10_reads_the_log_itself() {
    // A well-formed log entry in which an LLM approved this cartridge's promotion.
    let (_dir, home, record) = variant("s10log", |_, _| {});
    let log = EvolutionLog::open(&home.join("log")).unwrap();
    let bot = Actor {
        kind: ActorKind::Llm,
        name: "bot".into(),
    };
    let current = registry(&home).current().unwrap().unwrap();
    log.append(
        bot.clone(),
        Action::Promote {
            cartridge: record.cart_ref(),
            from: Some(current.cart_ref()),
            forced: true,
        },
        "",
    )
    .unwrap();
    let report = genesis::check(&home, &registry(&home), &record).unwrap();
    let ten = report.checks.iter().find(|c| c.section == "§10").unwrap();
    assert!(!ten.passed, "{ten:?}");
    assert!(
        ten.evidence.contains("not by a person") && ten.evidence.contains("gave no reason"),
        "{}",
        ten.evidence
    );

    // The registry's creator and the log's registration disagree.
    let (_dir, home, record) = variant("s10creator", |_, _| {});
    let mut forged = record.clone();
    forged.creator.kind = pxos_cart::CreatorKind::Llm;
    let report = genesis::check(&home, &registry(&home), &forged).unwrap();
    let ten = report.checks.iter().find(|c| c.section == "§10").unwrap();
    assert!(
        !ten.passed && ten.evidence.contains("the log registers it"),
        "{ten:?}"
    );
}

#[test]
fn the_sandbox_confines_writes_caps_fuel_and_refuses_self_modify() {
    let dir = TempDir::new("sandbox");
    let hypervisor = Hypervisor::new(&dir.join("executions"), pxos_vm::default_messages());
    let sandbox = Sandbox::experimental(10_000, "/sandbox/test");
    let run = |source: &str| {
        let assembled = asm::assemble("t", source).unwrap();
        let image = ProgramImage {
            words: assembled.words,
            entry: assembled.entry,
        };
        hypervisor.run_program(Launch::new(
            "t",
            &image,
            sandbox.clone(),
            Box::new(MemoryStorage::default()),
        ))
    };
    let outside = run(
        "IMM32 R1, P\nIMM32 R2, P\nLI R3, 4\nSYSCALL 42\nMOV R9, R0\nHALT\nP: .string \"/etc/passwd\"",
    );
    assert!(
        outside.success && outside.warnings.iter().any(|w| w.contains("confined")),
        "{outside:?}"
    );
    let escape = run(
        "IMM32 R1, P\nIMM32 R2, P\nLI R3, 4\nSYSCALL 42\nHALT\nP: .string \"/sandbox/test/../../etc\"",
    );
    assert!(
        escape.warnings.iter().any(|w| w.contains("confined")),
        "{escape:?}"
    );
    let inside = run(
        "IMM32 R1, P\nIMM32 R2, P\nLI R3, 4\nSYSCALL 42\nHALT\nP: .string \"/sandbox/test/out\"",
    );
    assert!(inside.warnings.is_empty(), "{inside:?}");
    let forever = run("L: JMP L");
    assert_eq!(forever.trap_kind, Some("fuel-exhausted"));
    assert!(!forever.success && forever.log_id > 0);
    let evolve = run("IMM32 R1, 301\nSYSCALL 99\nHALT");
    assert!(
        evolve
            .warnings
            .iter()
            .any(|w| w.contains("SELF_MODIFY") && w.contains("sandbox")),
        "{evolve:?}"
    );
    let records = pxos_test_support::read_log_records(&dir.join("executions"));
    assert_eq!(records.len(), 5, "every execution is logged");
    assert_eq!(records[3]["id"], 4);
    assert_eq!(records[3]["outcome"], "trapped", "{}", records[3]);
}

#[test]
fn genesis_10_passes_legitimate_histories() {
    // A person packs and approves without a reason: people need none.
    let (_dir, home, record) = variant("s10human", |_, m| m["reason"] = "".into());
    let log = EvolutionLog::open(&home.join("log")).unwrap();
    let person = Actor::human("ada");
    log.append(
        person.clone(),
        Action::Pack {
            cartridge: record.cart_ref(),
        },
        "",
    )
    .unwrap();
    let current = registry(&home).current().unwrap().unwrap();
    log.append(
        person,
        Action::Promote {
            cartridge: record.cart_ref(),
            from: Some(current.cart_ref()),
            forced: false,
        },
        "",
    )
    .unwrap();
    let report = genesis::check(&home, &registry(&home), &record).unwrap();
    let ten = check_of(&report, "§10");
    assert!(ten.passed, "{ten:?}");
    assert!(ten.evidence.contains("3 log entries about it"), "{ten:?}");

    // An LLM's cartridge that states its reason, packed by that LLM.
    let (_dir, home, record) = variant("s10llm", |_, m| {
        m["creator"] = serde_json::json!({"kind": "llm", "name": "pixellm"});
        m["reason"] = "a faster shell".into();
    });
    let log = EvolutionLog::open(&home.join("log")).unwrap();
    let bot = Actor {
        kind: ActorKind::Llm,
        name: "pixellm".into(),
    };
    log.append(
        bot,
        Action::Pack {
            cartridge: record.cart_ref(),
        },
        "it packs what it made",
    )
    .unwrap();
    let report = genesis::check(&home, &registry(&home), &record).unwrap();
    let ten = check_of(&report, "§10");
    assert!(ten.passed, "{ten:?}");
}
