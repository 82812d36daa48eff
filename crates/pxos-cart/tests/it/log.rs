//! The evolution log: typed entries, chaining, the anchor, and every kind of tampering.

use std::path::Path;

use pxos_cart::{Action, Actor, ActorKind, CartRef, EvolutionLog, LogEntry, LogPosition};
use pxos_pixel::Hash256;
use pxos_test_support::{TempDir, edit_table, read_table, write_table};

pub fn human(name: &str) -> Actor {
    Actor::human(name)
}

pub fn llm(name: &str) -> Actor {
    Actor {
        kind: ActorKind::Llm,
        name: name.into(),
    }
}

fn cart(version: &str) -> CartRef {
    CartRef {
        name: "default".into(),
        version: version.into(),
        sha256: Hash256::of(version.as_bytes()),
    }
}

fn note(label: &str) -> Action {
    Action::Note {
        label: label.into(),
    }
}

fn fresh_log(dir: &Path) -> EvolutionLog {
    let _ = std::fs::remove_dir_all(dir);
    let log = EvolutionLog::open(dir).unwrap();
    log.append(
        human("ada"),
        Action::Pack {
            cartridge: cart("1.0.0"),
        },
        "first world",
    )
    .unwrap();
    log.append(llm("pixellm"), note("propose"), "faster boot")
        .unwrap();
    log.append(human("ada"), note("approve"), "approved")
        .unwrap();
    log
}

/// Appends a well-formed entry by hand (correct seq, prev and hash, head
/// updated), leaving the anchor alone: a forgery only the anchor can catch.
pub fn forge_entry(log_file: &Path, actor: Actor, action: Action) {
    edit_table(log_file, |value| {
        let entries: Vec<LogEntry> = serde_json::from_value(value["entries"].clone()).unwrap();
        let last = entries.last().unwrap();
        let mut entry = LogEntry {
            seq: last.seq + 1,
            time: last.time.clone(),
            actor,
            action,
            reason: "forged".into(),
            prev: last.hash,
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        let mut entries = entries;
        entries.push(entry);
        value["head"] = serde_json::to_value(LogPosition::end_of(&entries)).unwrap();
        value["entries"] = serde_json::to_value(&entries).unwrap();
    });
}

/// A hand edit of the log's JSON.
type Edit = Box<dyn FnOnce(&Path)>;

#[test]
fn the_log_chains_and_catches_every_kind_of_tampering() {
    let dir = TempDir::new("log");
    let log_dir = dir.join("log");
    let log = fresh_log(&log_dir);
    let verification = log.verify().unwrap();
    assert!(verification.is_ok(), "{verification:?}");
    assert_eq!(verification.entries, 3);
    let entries = log.entries().unwrap();
    assert_eq!(entries[1].prev, entries[0].hash);
    assert_eq!(entries[1].actor.kind, ActorKind::Llm);
    assert_eq!(entries[0].action.name(), "pack");

    let file = |dir: &Path| dir.join("evolution.png");
    let tamperings: Vec<(&str, Edit, &str)> = vec![
        (
            "edit",
            Box::new(move |d| {
                edit_table(&file(d), |v| {
                    v["entries"][1]["reason"] = "nothing to see".into()
                })
            }),
            "was edited",
        ),
        (
            "reorder",
            Box::new(move |d| {
                edit_table(&file(d), |v| {
                    v["entries"].as_array_mut().unwrap().swap(0, 1)
                })
            }),
            "sequence number",
        ),
        (
            "insert",
            Box::new(move |d| {
                edit_table(&file(d), |v| {
                    let copy = v["entries"][0].clone();
                    v["entries"].as_array_mut().unwrap().insert(1, copy);
                })
            }),
            "does not chain",
        ),
        (
            "truncate",
            Box::new(move |d| {
                edit_table(&file(d), |v| {
                    v["entries"].as_array_mut().unwrap().pop();
                })
            }),
            "cut off",
        ),
        (
            "truncate-and-fix-head",
            Box::new(move |d| {
                edit_table(&file(d), |v| {
                    v["entries"].as_array_mut().unwrap().pop();
                    let last = v["entries"][1]["hash"].clone();
                    v["head"] = serde_json::json!({"count": 2, "hash": last});
                })
            }),
            "appended, cut off or replaced by hand",
        ),
        (
            "forged-append-anchor-untouched",
            Box::new(move |d| {
                forge_entry(
                    &file(d),
                    human("eve"),
                    Action::Promote {
                        cartridge: cart("1.3.0"),
                        from: None,
                        forced: false,
                    },
                )
            }),
            "appended, cut off or replaced by hand",
        ),
        (
            "anchor-deleted",
            Box::new(|d| std::fs::remove_file(d.join("evolution.anchor")).unwrap()),
            "is missing",
        ),
        (
            "anchor-not-utf8",
            Box::new(|d| std::fs::write(d.join("evolution.anchor"), [0xff, 0xfe, 0x00]).unwrap()),
            "not UTF-8",
        ),
        (
            "anchor-huge",
            Box::new(|d| std::fs::write(d.join("evolution.anchor"), vec![b' '; 1 << 20]).unwrap()),
            "larger than",
        ),
        (
            "anchor-garbage",
            Box::new(|d| std::fs::write(d.join("evolution.anchor"), "ok\n").unwrap()),
            "the anchor is damaged",
        ),
    ];
    for (name, edit, expected) in tamperings {
        let log = fresh_log(&log_dir);
        edit(&log_dir);
        let verification = log.verify().unwrap();
        assert!(!verification.is_ok(), "{name} went unnoticed");
        assert!(
            verification.problems.iter().any(|p| p.contains(expected)),
            "{name}: {:?}",
            verification.problems
        );
        let refused = log
            .append(human("eve"), note("cover"), "hide it")
            .unwrap_err();
        assert!(
            matches!(refused, pxos_cart::Error::Tampered(_))
                && refused.to_string().contains("does not verify"),
            "{name}: {refused}"
        );
        assert!(log.verified_entries().is_err(), "{name}");
    }
}

#[test]
fn an_append_interrupted_before_its_anchor_is_completed_by_the_next_one() {
    let dir = TempDir::new("log-interrupted");
    let log_dir = dir.join("log");
    let log = fresh_log(&log_dir);
    let entries = log.entries().unwrap();
    // The anchor as the crash leaves it: the old head, the new entry pending.
    let old = LogPosition::end_of(&entries[..2]);
    let new = LogPosition::end_of(&entries);
    std::fs::write(
        log_dir.join("evolution.anchor"),
        serde_json::to_vec(
            &serde_json::json!({"format": "pxos-evolution-anchor", "head": old, "pending": new}),
        )
        .unwrap(),
    )
    .unwrap();
    let verification = log.verify().unwrap();
    assert!(verification.is_ok(), "{verification:?}");
    assert!(
        verification.notes[0].contains("interrupted"),
        "{verification:?}"
    );
    log.append(human("ada"), note("next"), "after the crash")
        .unwrap();
    let verification = log.verify().unwrap();
    assert!(
        verification.is_ok() && verification.notes.is_empty(),
        "{verification:?}"
    );

    // A pending entry that is not the log's last one is tampering.
    let entries = log.entries().unwrap();
    let elsewhere = LogPosition {
        count: 9,
        hash: Hash256::of(b"elsewhere"),
    };
    std::fs::write(
        log_dir.join("evolution.anchor"),
        serde_json::to_vec(&serde_json::json!({"format": "pxos-evolution-anchor", "head": LogPosition::end_of(&entries[..3]), "pending": elsewhere})).unwrap(),
    )
    .unwrap();
    assert!(!log.verify().unwrap().is_ok());
}

#[test]
fn entries_are_typed_and_validated_on_load() {
    let dir = TempDir::new("log-typed");
    let log_dir = dir.join("log");
    fresh_log(&log_dir);
    let path = log_dir.join("evolution.png");
    let value = read_table(&path);
    assert_eq!(value["version"], 2);
    assert_eq!(
        value["entries"][0]["action"]["pack"]["cartridge"]["version"],
        "1.0.0"
    );

    let damaged: Vec<(&str, serde_json::Value, &str)> = vec![
        ("short hash", serde_json::json!("abc"), "is not a SHA-256"),
        (
            "unknown action",
            serde_json::json!({"explode": {}}),
            "unknown variant",
        ),
        (
            "untyped action",
            serde_json::json!("promote"),
            "expected struct variant",
        ),
    ];
    for (name, bad, expected) in damaged {
        let log = fresh_log(&log_dir);
        edit_table(&path, |v| {
            if name == "short hash" {
                v["entries"][0]["hash"] = bad;
            } else {
                v["entries"][0]["action"] = bad;
            }
        });
        let err = log.verify().unwrap_err();
        assert!(
            err.is_bad_input() && err.to_string().contains(expected),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("evolution.png"),
            "{name}: names the file: {err}"
        );
    }
    // An empty actor name, a control character in a cartridge version: refused.
    let log = fresh_log(&log_dir);
    edit_table(&path, |v| v["entries"][0]["actor"]["name"] = "".into());
    assert!(log.verify().unwrap_err().to_string().contains("actor name"));
    let log = fresh_log(&log_dir);
    edit_table(&path, |v| {
        v["entries"][0]["action"]["pack"]["cartridge"]["version"] = "1.0\u{1b}".into()
    });
    assert!(log.verify().is_err());
    // A version 1 log is named as such.
    let log = fresh_log(&log_dir);
    edit_table(&path, |v| v["version"] = 1.into());
    assert!(
        log.verify()
            .unwrap_err()
            .to_string()
            .contains("format version 1")
    );
    // Not a log at all.
    let log = fresh_log(&log_dir);
    write_table(&path, &serde_json::json!({"format": "something else"}));
    assert!(log.verify().unwrap_err().is_bad_input());
    // Appends refuse bad actor names and note labels.
    let log = fresh_log(&log_dir);
    assert!(log.append(human(""), note("x"), "").is_err());
    assert!(log.append(human("ada"), note("a\nb"), "").is_err());
}

#[test]
fn actor_names_are_checked_at_their_edges() {
    let dir = TempDir::new("log-actor-names");
    let log = fresh_log(&dir.join("log"));
    let longest = "a".repeat(pxos_cart::log::MAX_ACTOR_NAME);
    assert!(log.append(human(&longest), note("edge"), "").is_ok());
    for bad in [
        String::new(),
        "   ".to_string(),
        "a".repeat(pxos_cart::log::MAX_ACTOR_NAME + 1),
        "line\nbreak".to_string(),
    ] {
        let err = log.append(human(&bad), note("edge"), "").unwrap_err();
        assert!(err.to_string().contains("actor name"), "{bad:?}: {err}");
    }
    // The same rule holds for an entry already in a file.
    let path = dir.join("log/evolution.png");
    edit_table(&path, |v| v["entries"][0]["actor"]["name"] = "x\ty".into());
    let err = pxos_cart::log::decode_log_bytes(&std::fs::read(&path).unwrap()).unwrap_err();
    assert!(err.to_string().contains("actor name"), "{err}");
}

#[test]
fn note_names_are_checked_at_their_edges() {
    let dir = TempDir::new("log-note-names");
    let log = fresh_log(&dir.join("log"));
    assert!(log.append(human("ada"), note(&"n".repeat(64)), "").is_ok());
    for bad in [String::new(), " ".into(), "n".repeat(65), "a\u{7}b".into()] {
        let err = log.append(human("ada"), note(&bad), "").unwrap_err();
        assert!(err.to_string().contains("1-64 printable"), "{bad:?}: {err}");
    }
}

#[test]
fn an_unreadable_log_or_anchor_is_an_error_not_an_empty_log() {
    let dir = TempDir::new("log-unreadable");
    let log_dir = dir.join("log");
    let log = fresh_log(&log_dir);
    assert_eq!(
        EvolutionLog::open(&log_dir)
            .unwrap()
            .verify()
            .unwrap()
            .entries,
        log.entries().unwrap().len() as u64
    );
    // `path` replaced by a folder while `check` runs, then put back.
    let as_folder = |path: &Path, check: &dyn Fn()| {
        let saved = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        std::fs::create_dir(path).unwrap();
        check();
        std::fs::remove_dir(path).unwrap();
        std::fs::write(path, &saved).unwrap();
    };
    // Reading the anchor fails, and that is not "no anchor yet".
    as_folder(&log.anchor_path(), &|| {
        assert!(EvolutionLog::open(&log_dir).unwrap().verify().is_err());
    });
    as_folder(&log.log_path(), &|| {
        assert!(EvolutionLog::open(&log_dir).unwrap().entries().is_err());
    });
    assert!(
        EvolutionLog::open(&log_dir)
            .unwrap()
            .verify()
            .unwrap()
            .is_ok()
    );
}

#[test]
fn an_anchor_of_exactly_the_size_limit_is_read() {
    let dir = TempDir::new("log-anchor-limit");
    let log_dir = dir.join("log");
    let log = fresh_log(&log_dir);
    let anchor = log.anchor_path();
    let mut bytes = std::fs::read(&anchor).unwrap();
    let limit = 64 << 10;
    bytes.resize(limit, b' ');
    std::fs::write(&anchor, &bytes).unwrap();
    assert!(
        EvolutionLog::open(&log_dir)
            .unwrap()
            .verify()
            .unwrap()
            .is_ok()
    );
    bytes.push(b' ');
    std::fs::write(&anchor, &bytes).unwrap();
    let report = EvolutionLog::open(&log_dir).unwrap().verify().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("larger than")),
        "{report:?}"
    );
}
