//! The registry: promotion and rollback rules, and the log and the registry
//! vouching for each other.

use std::path::PathBuf;

use pxos_cart::cartridge::{self, Limits};
use pxos_cart::{Action, Actor, EvolutionLog, Registry, RollbackOutcome, Status};
use pxos_test_support::{TempDir, edit_table, write_file};

use crate::log::{forge_entry, human, llm};

struct Home {
    dir: TempDir,
}

impl Home {
    fn new(name: &str) -> Home {
        Home {
            dir: TempDir::new(name),
        }
    }

    fn registry(&self) -> Registry {
        Registry::open(
            &self.dir.join("carts"),
            EvolutionLog::open(&self.dir.join("log")).unwrap(),
        )
        .unwrap()
    }

    /// Packs a small world at `version`.
    fn cartridge(&self, version: &str) -> PathBuf {
        let src = self.dir.join(format!("src-{version}"));
        write_file(
            &src,
            "cartridge.json",
            format!(r#"{{"name": "default", "version": "{version}", "creator": {{"kind": "human", "name": "ada"}}}}"#)
                .as_bytes(),
        );
        write_file(&src, "boot/sequence.json", version.as_bytes());
        let out = self.dir.join(format!("default-{version}.pxa"));
        cartridge::pack(&src, &out, &Limits::default()).unwrap();
        out
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn registry_file(&self) -> PathBuf {
        self.dir.join("carts/registry.png")
    }
}

/// 1.0.0 installed as current with a Genesis pass, 1.1.0 promoted over it,
/// 1.2.0 registered and tested but never current.
fn history(home: &Home) -> Registry {
    let registry = home.registry();
    let first = registry
        .register(&home.cartridge("1.0.0"), Actor::system(), "install", true)
        .unwrap();
    registry
        .record_genesis(&first, true, vec![], Actor::system())
        .unwrap();
    for version in ["1.1.0", "1.2.0"] {
        let record = registry
            .register(&home.cartridge(version), llm("pixellm"), "proposed", false)
            .unwrap();
        registry
            .record_genesis(&record, true, vec![], human("ada"))
            .unwrap();
    }
    registry
        .promote("default@1.1.0", Some(human("ada")), false, "approved")
        .unwrap();
    registry
}

fn status(registry: &Registry, id: &str) -> Status {
    registry.find(id).unwrap().status
}

#[test]
fn rollback_goes_only_to_a_tested_former_current_with_a_reason_and_a_person() {
    let home = Home::new("rollback-rules");
    let registry = history(&home);
    let entries = || registry.log().entries().unwrap().len();
    let before = entries();

    // Never current: refused, whoever asks.
    for actor in [human("ada"), llm("bot")] {
        let err = registry
            .rollback("default@1.2.0", actor, None, "try it")
            .unwrap_err();
        assert!(
            err.is_refusal() && err.to_string().contains("was never current"),
            "{err}"
        );
    }
    // No reason: refused.
    let err = registry
        .rollback("default@1.0.0", human("ada"), None, " ")
        .unwrap_err();
    assert!(
        err.is_refusal() && err.to_string().contains("needs a reason"),
        "{err}"
    );
    // An LLM approving: refused.
    let err = registry
        .rollback("default@1.0.0", llm("bot"), Some(llm("bot")), "revert")
        .unwrap_err();
    assert!(
        err.is_refusal() && err.to_string().contains("only a person"),
        "{err}"
    );
    // Already current: refused.
    let err = registry
        .rollback("default@1.1.0", human("ada"), None, "again")
        .unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert_eq!(entries(), before, "nothing refused is logged");

    // An LLM may ask: recorded as a request, nothing changes.
    let outcome = registry
        .rollback("default@1.0.0", llm("bot"), None, "1.1.0 is slower")
        .unwrap();
    assert!(matches!(outcome, RollbackOutcome::Requested { .. }));
    assert_eq!(status(&registry, "default@1.1.0"), Status::Current);
    let state = registry.state().unwrap();
    assert_eq!(state.requests.len(), 1);
    assert_eq!(state.requests[0].by, llm("bot"));

    // A person approves the LLM's request: it takes effect, both recorded.
    let outcome = registry
        .rollback(
            "default@1.0.0",
            llm("bot"),
            Some(human("ada")),
            "1.1.0 is slower",
        )
        .unwrap();
    assert!(matches!(outcome, RollbackOutcome::Applied(ref r) if r.id == "default@1.0.0"));
    assert_eq!(status(&registry, "default@1.1.0"), Status::Deprecated);
    assert!(registry.state().unwrap().requests.is_empty());
    let last = registry.log().entries().unwrap().pop().unwrap();
    assert_eq!(last.actor, human("ada"));
    assert!(
        matches!(last.action, Action::Rollback { requested_by: Some(ref by), .. } if *by == llm("bot"))
    );

    // A former current without a Genesis pass on record: refused.
    let home = Home::new("rollback-untested");
    let registry = home.registry();
    registry
        .register(&home.cartridge("1.0.0"), Actor::system(), "install", true)
        .unwrap();
    let next = registry
        .register(&home.cartridge("1.1.0"), human("ada"), "next", false)
        .unwrap();
    registry
        .record_genesis(&next, true, vec![], human("ada"))
        .unwrap();
    registry
        .promote("default@1.1.0", Some(human("ada")), false, "ok")
        .unwrap();
    let err = registry
        .rollback("default@1.0.0", human("ada"), None, "back")
        .unwrap_err();
    assert!(err.to_string().contains("Genesis has not run"), "{err}");
}

#[test]
fn a_forged_log_entry_or_a_hand_edited_registry_is_tampering() {
    // A forged promote with the anchor rewritten to match: the log verifies,
    // but the registry never began that change.
    let home = Home::new("forged");
    let registry = history(&home);
    let target = registry.find("default@1.2.0").unwrap();
    forge_entry(
        &home.log_dir(),
        human("eve"),
        Action::Promote {
            cartridge: target.cart_ref(),
            from: Some(registry.find("default@1.1.0").unwrap().cart_ref()),
            forced: false,
        },
    );
    pxos_test_support::edit_log(&home.log_dir().join("evolution"), |v| {
        v["head"]["count"] = v["entries"].as_array().unwrap().len().into();
    });
    assert!(
        registry.log().verify().unwrap().is_ok(),
        "the forgery is well formed"
    );
    let err = registry.current().unwrap_err();
    assert!(
        matches!(err, pxos_cart::Error::Tampered(_))
            && err.to_string().contains("never began that change")
            && err.to_string().contains("registry.png")
            && err.to_string().contains("evolution"),
        "{err}"
    );
    let report = registry.fsck(false).unwrap();
    assert!(!report.is_clean(), "{report:?}");

    // The registry edited by hand to make an untested cartridge current.
    let home = Home::new("edited");
    let registry = history(&home);
    edit_table(&home.registry_file(), |v| {
        v["current"] = "default@1.2.0".into();
        for record in v["cartridges"].as_array_mut().unwrap() {
            record["status"] = if record["id"] == "default@1.2.0" {
                "current"
            } else {
                "historical"
            }
            .into();
        }
    });
    let err = registry.current().unwrap_err();
    assert!(err.to_string().contains("edited by hand"), "{err}");

    // The log and its anchor deleted together while cartridges are registered.
    let home = Home::new("deleted");
    let registry = history(&home);
    std::fs::remove_dir_all(home.log_dir().join("evolution")).unwrap();
    assert!(
        registry.log().verify().unwrap().is_ok(),
        "an empty log verifies on its own"
    );
    let err = registry.list().unwrap_err();
    assert!(
        err.to_string().contains("cut short, deleted or replaced"),
        "{err}"
    );

    // A damaged record: a short hash, refused with the file named.
    let home = Home::new("short-hash");
    let registry = history(&home);
    edit_table(&home.registry_file(), |v| {
        v["cartridges"][0]["sha256"] = "abc".into()
    });
    let err = registry.current().unwrap_err();
    assert!(
        err.is_bad_input() && err.to_string().contains("registry.png"),
        "{err}"
    );
}

#[test]
fn a_crash_between_log_and_registry_is_rolled_forward_from_the_intent() {
    let home = Home::new("intent");
    let registry = history(&home);
    // The registry as it was saved before the last change (the intent written,
    // the log appended, the final save lost).
    let before = home.dir.join("registry-before.png");
    std::fs::copy(home.registry_file(), &before).unwrap();
    let record = registry.find("default@1.2.0").unwrap();
    registry
        .record_genesis(&record, false, vec!["§1".into()], human("ada"))
        .unwrap();
    let mut intent = pxos_test_support::read_table(&before);
    let last = registry.log().entries().unwrap().pop().unwrap();
    intent["pending"] = serde_json::json!({"actor": last.actor, "action": last.action});
    pxos_test_support::write_table(&home.registry_file(), &intent);
    let run = registry.genesis_run(&record.sha256).unwrap().unwrap();
    assert!(!run.passed, "the logged change is replayed");

    // Without the intent the same gap is tampering.
    intent["pending"] = serde_json::Value::Null;
    pxos_test_support::write_table(&home.registry_file(), &intent);
    assert!(registry.genesis_run(&record.sha256).is_err());

    // fsck --repair rebuilds from the log and keeps the damaged file.
    let report = registry.fsck(true).unwrap();
    assert!(
        !report.problems.is_empty() && !report.repaired.is_empty(),
        "{report:?}"
    );
    assert!(
        !registry
            .genesis_run(&record.sha256)
            .unwrap()
            .unwrap()
            .passed
    );
    let kept = std::fs::read_dir(home.dir.join("carts"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registry.png.damaged-")
        });
    assert!(kept, "the damaged checkpoint is kept");
    assert!(registry.fsck(false).unwrap().is_clean());
}

#[test]
fn fsck_lists_what_it_cannot_recover_and_deletes_nothing() {
    let home = Home::new("fsck");
    let registry = history(&home);
    std::fs::remove_file(home.registry_file()).unwrap();
    let lost = registry.path_of(&registry_find_unchecked(&home, "1.2.0"));
    std::fs::remove_file(&lost).unwrap();
    let stray = home
        .dir
        .join("carts")
        .join(format!("{}.pxa", pxos_pixel::Hash256::of(b"stray")));
    std::fs::copy(home.cartridge("9.9.9"), &stray).unwrap();
    let report = registry.fsck(true).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("is missing")),
        "{report:?}"
    );
    assert!(
        report
            .unrecovered
            .iter()
            .any(|p| p.contains("missing or damaged")),
        "{report:?}"
    );
    assert!(
        report
            .orphans
            .iter()
            .any(|p| p.contains("no log entry registers")),
        "{report:?}"
    );
    assert!(stray.exists(), "nothing is deleted");
    assert_eq!(registry.current().unwrap().unwrap().id, "default@1.1.0");
}

/// The record of `default@VERSION` read from the log alone.
fn registry_find_unchecked(home: &Home, version: &str) -> pxos_cart::Record {
    let log = EvolutionLog::open(&home.dir.join("log")).unwrap();
    let entry = log
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| matches!(&e.action, Action::Register { cartridge, .. } if cartridge.version == version))
        .unwrap();
    let Action::Register {
        cartridge,
        parent,
        creator,
        file_len,
        ..
    } = entry.action
    else {
        unreachable!()
    };
    pxos_cart::Record {
        id: cartridge.id(),
        name: cartridge.name.clone(),
        version: cartridge.version.clone(),
        parent,
        creator,
        sha256: cartridge.sha256,
        status: Status::Experimental,
        registered: entry.time,
        file_len,
    }
}

#[test]
fn a_hand_edit_of_any_one_part_of_the_registry_is_found() {
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 3] = [
        ("a record", |v| v["cartridges"][0]["file_len"] = 1.into()),
        ("the genesis runs", |v| {
            v["genesis"] = serde_json::json!({});
        }),
        ("the requests", |v| {
            v["requests"] = serde_json::json!([{"seq": 1, "cartridge": "default@1.0.0",
                "by": {"kind": "llm", "name": "bot"}, "reason": "forged"}]);
        }),
    ];
    for (what, edit) in edits {
        let home = Home::new("edited-part");
        let registry = history(&home);
        edit_table(&home.registry_file(), edit);
        let err = registry.current().unwrap_err();
        assert!(err.to_string().contains("edited by hand"), "{what}: {err}");
    }
}

#[test]
fn fsck_counts_the_cartridges_it_rebuilt() {
    let home = Home::new("fsck-count");
    let registry = history(&home);
    assert_eq!(registry.fsck(false).unwrap().records, 3);
}

#[test]
fn a_decoded_registry_is_checked_field_by_field() {
    let home = Home::new("registry-validate");
    history(&home);
    let path = home.registry_file();
    let original = pxos_test_support::read_table(&path);
    let decode = || pxos_cart::registry::decode_state(&std::fs::read(&path).unwrap());
    assert!(decode().is_ok());
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 7] = [
        ("format", |v| v["format"] = "other".into()),
        ("version", |v| v["version"] = 99.into()),
        ("bad name", |v| {
            v["cartridges"][0]["name"] = "Bad Name".into()
        }),
        ("id mismatch", |v| {
            v["cartridges"][0]["id"] = "default@9.9.9".into()
        }),
        ("listed twice", |v| {
            let first = v["cartridges"][0].clone();
            v["cartridges"].as_array_mut().unwrap().push(first);
        }),
        ("no current record", |v| {
            v["current"] = serde_json::Value::Null
        }),
        ("two current", |v| {
            for record in v["cartridges"].as_array_mut().unwrap() {
                record["status"] = "current".into();
            }
        }),
    ];
    for (name, edit) in cases {
        let mut value = original.clone();
        edit(&mut value);
        pxos_test_support::write_table(&path, &value);
        assert!(decode().is_err(), "{name}: accepted");
    }
}

/// The registry's state machine on its own: every entry that cannot follow
/// the state is refused with a reason, and every status change is exact.
#[test]
fn the_registry_state_refuses_entries_that_cannot_follow() {
    use pxos_cart::registry::State;
    use pxos_cart::{CartRef, Creator, CreatorKind, LogEntry};
    use pxos_pixel::Hash256;

    let cart = |version: &str| CartRef {
        name: "default".into(),
        version: version.into(),
        sha256: Hash256::of(version.as_bytes()),
    };
    let entry = |seq: u64, action: Action| LogEntry {
        seq,
        time: "2026-11-30T00:00:00Z".into(),
        actor: human("ada"),
        action,
        reason: "test".into(),
        prev: Hash256::ZERO,
        hash: Hash256::ZERO,
    };
    let register = |version: &str, as_current: bool| {
        entry(
            0,
            Action::Register {
                cartridge: cart(version),
                parent: None,
                creator: Creator {
                    kind: CreatorKind::Human,
                    name: "ada".into(),
                },
                file_len: 10,
                as_current,
                origin: None,
            },
        )
    };
    let promote = |version: &str, from: Option<&str>| {
        entry(
            0,
            Action::Promote {
                cartridge: cart(version),
                from: from.map(cart),
                forced: false,
            },
        )
    };
    let rollback = |version: &str, from: &str| {
        entry(
            0,
            Action::Rollback {
                cartridge: cart(version),
                from: cart(from),
                requested_by: None,
            },
        )
    };
    let status = |state: &State, version: &str| {
        state
            .cartridges
            .iter()
            .find(|c| c.version == version)
            .unwrap()
            .status
    };

    let mut state = State::default();
    state.apply(&register("1.0.0", true)).unwrap();
    assert!(state.apply(&register("1.0.0", false)).is_err(), "twice");
    assert!(
        state.apply(&register("1.1.0", true)).is_err(),
        "a second current"
    );
    state.apply(&register("1.1.0", false)).unwrap();
    state.apply(&register("1.2.0", false)).unwrap();
    assert_eq!(status(&state, "1.1.0"), Status::Experimental);
    let unknown = entry(
        0,
        Action::GenesisCheck {
            cartridge: cart("9.9.9"),
            passed: true,
            failed: vec![],
        },
    );
    assert!(
        state.apply(&unknown).is_err(),
        "genesis of an unknown cartridge"
    );

    assert!(
        state.apply(&promote("1.1.0", None)).is_err(),
        "from nothing"
    );
    assert!(
        state.apply(&promote("1.1.0", Some("1.2.0"))).is_err(),
        "wrong from"
    );
    assert!(
        state.apply(&promote("1.0.0", Some("1.0.0"))).is_err(),
        "already current"
    );
    state.apply(&promote("1.1.0", Some("1.0.0"))).unwrap();
    assert_eq!(status(&state, "1.0.0"), Status::Historical);
    assert_eq!(status(&state, "1.1.0"), Status::Current);
    assert_eq!(state.current.as_deref(), Some("default@1.1.0"));

    let request = entry(
        7,
        Action::RollbackRequest {
            cartridge: cart("1.0.0"),
            from: cart("1.1.0"),
        },
    );
    state.apply(&request).unwrap();
    assert_eq!(state.requests.len(), 1);
    assert_eq!(state.requests[0].seq, 7);
    assert!(
        state.apply(&rollback("1.0.0", "1.2.0")).is_err(),
        "wrong from"
    );
    assert!(
        state.apply(&rollback("1.2.0", "1.1.0")).is_err(),
        "never current"
    );
    state.apply(&rollback("1.0.0", "1.1.0")).unwrap();
    assert_eq!(status(&state, "1.1.0"), Status::Deprecated);
    assert_eq!(status(&state, "1.0.0"), Status::Current);
    assert!(state.requests.is_empty(), "the request was answered");
}

#[test]
fn promote_register_and_rollback_at_their_edges() {
    // Registering without asking to be current leaves an empty registry without one.
    let home = Home::new("edges");
    let registry = home.registry();
    let first = registry
        .register(&home.cartridge("1.0.0"), human("ada"), "first", false)
        .unwrap();
    assert_eq!(first.status, Status::Experimental);
    assert!(registry.current().unwrap().is_none());
    // A registry with nothing current decodes.
    assert!(
        pxos_cart::registry::decode_state(&std::fs::read(home.registry_file()).unwrap()).is_ok()
    );

    // Promotion needs a Genesis pass unless a person forces it: a failed run is no pass.
    registry
        .record_genesis(&first, false, vec!["§4".into()], human("ada"))
        .unwrap();
    let err = registry
        .promote("default@1.0.0", Some(human("ada")), false, "failed")
        .unwrap_err();
    assert!(err.to_string().contains("Genesis failed"), "{err}");
    let forced = registry
        .promote("default@1.0.0", Some(human("ada")), true, "forced")
        .unwrap();
    assert_eq!(forced.status, Status::Current);
    let last = registry.log().entries().unwrap().pop().unwrap();
    assert!(matches!(last.action, Action::Promote { forced: true, .. }));

    // A person who asks for a rollback approves it by asking.
    let second = registry
        .register(&home.cartridge("1.1.0"), human("ada"), "second", false)
        .unwrap();
    registry
        .record_genesis(&second, true, vec![], human("ada"))
        .unwrap();
    registry
        .record_genesis(&first, true, vec![], human("ada"))
        .unwrap();
    registry
        .promote("default@1.1.0", Some(human("ada")), false, "tested")
        .unwrap();
    let outcome = registry
        .rollback("default@1.0.0", human("ada"), None, "back")
        .unwrap();
    assert!(
        matches!(outcome, RollbackOutcome::Applied(_)),
        "{outcome:?}"
    );
    assert_eq!(status(&registry, "default@1.0.0"), Status::Current);
}
