//! The evolution log: typed entries, chaining, the anchor, and every kind of tampering.

use std::path::Path;

use pxos_cart::{Action, Actor, ActorKind, CartRef, EvolutionLog, LogEntry, LogPosition};
use pxos_pixel::Hash256;
use pxos_test_support::{TempDir, edit_log, read_log_records};

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

/// Appends a well-formed entry by hand (correct seq, prev and hash, record
/// chain recomputed), leaving the head alone: a forgery only the head can catch.
pub fn forge_entry(log_dir: &Path, actor: Actor, action: Action) {
    edit_log(&log_dir.join("evolution"), |value| {
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

    let records = |dir: &Path| dir.join("evolution");
    let head = |dir: &Path| dir.join("evolution/head.json");
    let tamperings: Vec<(&str, Edit, &str)> = vec![
        (
            "edit",
            Box::new(move |d| {
                edit_log(&records(d), |v| {
                    v["entries"][1]["reason"] = "nothing to see".into()
                })
            }),
            "was edited",
        ),
        (
            "edit-and-fix-head",
            Box::new(move |d| {
                edit_log(&records(d), |v| {
                    v["entries"][1]["reason"] = "nothing to see".into();
                    v["head"]["fix"] = true.into();
                })
            }),
            "was edited",
        ),
        (
            "reorder",
            Box::new(move |d| {
                edit_log(&records(d), |v| {
                    v["entries"].as_array_mut().unwrap().swap(0, 1)
                })
            }),
            "sequence number",
        ),
        (
            "insert",
            Box::new(move |d| {
                edit_log(&records(d), |v| {
                    let copy = v["entries"][0].clone();
                    v["entries"].as_array_mut().unwrap().insert(1, copy);
                })
            }),
            "does not chain",
        ),
        (
            "truncate",
            Box::new(move |d| {
                edit_log(&records(d), |v| {
                    v["entries"].as_array_mut().unwrap().pop();
                })
            }),
            "cut off",
        ),
        (
            "forged-append-head-untouched",
            Box::new(move |d| {
                forge_entry(
                    d,
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
            "head-deleted",
            Box::new(move |d| std::fs::remove_file(head(d)).unwrap()),
            "is missing",
        ),
        (
            "head-not-utf8",
            Box::new(move |d| std::fs::write(head(d), [0xff, 0xfe, 0x00]).unwrap()),
            "head is damaged",
        ),
        (
            "head-huge",
            Box::new(move |d| std::fs::write(head(d), vec![b' '; 1 << 20]).unwrap()),
            "larger than",
        ),
        (
            "head-garbage",
            Box::new(move |d| std::fs::write(head(d), "ok\n").unwrap()),
            "head is damaged",
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
    // The head as the crash leaves it: the old end, the new record pending.
    let head_path = log.anchor_path();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head_path).unwrap()).unwrap();
    let lines = std::fs::read_to_string(log_dir.join("evolution/open-00000000.log")).unwrap();
    let second_hash = lines.lines().nth(1).unwrap()[..64].to_string();
    let mut head = saved.clone();
    head["pending"] = saved["end"].clone();
    head["end"] = serde_json::json!({"count": 2, "hash": second_hash});
    std::fs::write(&head_path, serde_json::to_vec(&head).unwrap()).unwrap();
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
    assert_eq!(log.entries().unwrap().len(), 4);

    // A pending end that is not where the records end is tampering.
    let mut head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head_path).unwrap()).unwrap();
    head["end"]["count"] = 3.into();
    head["pending"] = serde_json::json!({"count": 4, "hash": Hash256::of(b"elsewhere")});
    std::fs::write(&head_path, serde_json::to_vec(&head).unwrap()).unwrap();
    assert!(!log.verify().unwrap().is_ok());
}

#[test]
fn entries_are_typed_and_validated_on_load() {
    let dir = TempDir::new("log-typed");
    let log_dir = dir.join("log");
    fresh_log(&log_dir);
    let records = log_dir.join("evolution");
    let value = read_log_records(&records);
    assert_eq!(value[0]["action"]["pack"]["cartridge"]["version"], "1.0.0");

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
        ("empty actor", serde_json::json!(""), "actor name"),
        (
            "escape in a version",
            serde_json::json!("1.0\u{1b}"),
            "entry 0",
        ),
        (
            "not an entry",
            serde_json::json!({"format": "something else"}),
            "not valid",
        ),
    ];
    for (name, bad, expected) in damaged {
        let log = fresh_log(&log_dir);
        edit_log(&records, |v| match name {
            "short hash" => v["entries"][0]["hash"] = bad,
            "empty actor" => v["entries"][0]["actor"]["name"] = bad,
            "escape in a version" => {
                v["entries"][0]["action"]["pack"]["cartridge"]["version"] = bad
            }
            "not an entry" => v["entries"][0] = bad,
            _ => v["entries"][0]["action"] = bad,
        });
        let report = log.verify().unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(expected) && p.contains("evolution")),
            "{name}: {report:?}"
        );
        assert!(log.verified_entries().is_err(), "{name}");
        assert!(log.append(human("ada"), note("x"), "").is_err(), "{name}");
    }
    // Appends refuse bad actor names and note labels.
    let log = fresh_log(&log_dir);
    assert!(log.append(human(""), note("x"), "").is_err());
    assert!(log.append(human("ada"), note("a\nb"), "").is_err());
}

/// A log as pxOS 0.1 wrote it: one PXI table and an anchor.
fn legacy_log(dir: &Path, entries: &[LogEntry]) {
    std::fs::create_dir_all(dir).unwrap();
    pxos_test_support::write_table(
        &dir.join("evolution.png"),
        &serde_json::json!({"format": "pxos-evolution-log", "version": 2,
            "head": LogPosition::end_of(entries), "entries": entries}),
    );
    std::fs::write(
        dir.join("evolution.anchor"),
        serde_json::json!({"format": "pxos-evolution-anchor", "head": LogPosition::end_of(entries), "pending": null}).to_string(),
    )
    .unwrap();
}

#[test]
fn a_log_written_by_pxos_0_1_is_verified_and_migrated_on_first_use() {
    let dir = TempDir::new("log-migrate");
    let entries = fresh_log(&dir.join("new")).entries().unwrap();
    let log_dir = dir.join("log");
    legacy_log(&log_dir, &entries);
    let log = EvolutionLog::open(&log_dir).unwrap();
    assert_eq!(log.entries().unwrap(), entries);
    assert!(log.verify().unwrap().is_ok());
    assert!(!log_dir.join("evolution.png").exists());
    assert!(log_dir.join("legacy/evolution.png").is_file());
    assert!(log_dir.join("legacy/evolution.anchor").is_file());
    log.append(human("ada"), note("after"), "migrated").unwrap();
    assert_eq!(
        EvolutionLog::open(&log_dir)
            .unwrap()
            .entries()
            .unwrap()
            .len(),
        4
    );

    // A tampered 0.1 log is not migrated: opening it is an error naming it.
    let bad_dir = dir.join("bad");
    let mut edited = entries.clone();
    edited[1].reason = "rewritten".into();
    legacy_log(&bad_dir, &edited);
    let err = EvolutionLog::open(&bad_dir).unwrap_err();
    assert!(
        matches!(err, pxos_cart::Error::Tampered(_)) && err.to_string().contains("was edited"),
        "{err}"
    );
    assert!(bad_dir.join("evolution.png").is_file(), "nothing moved");
    // A version 1 file is named as such.
    let old_dir = dir.join("v1");
    legacy_log(&old_dir, &entries);
    pxos_test_support::edit_table(&old_dir.join("evolution.png"), |v| v["version"] = 1.into());
    let err = EvolutionLog::open(&old_dir).unwrap_err();
    assert!(err.to_string().contains("format version 1"), "{err}");
}

#[test]
fn appends_seal_segments_and_verify_resumes_from_the_checkpoint() {
    let dir = TempDir::new("log-segments");
    let log_dir = dir.join("log");
    let log = EvolutionLog::open(&log_dir).unwrap();
    let per = pxos_fs::seglog::DEFAULT_SEGMENT_RECORDS as usize;
    for i in 0..per * 2 + 5 {
        log.append(human("ada"), note("n"), &format!("entry {i}"))
            .unwrap();
    }
    assert!(log_dir.join("evolution/segments/00000001.png").is_file());
    let full = log.verify_from_checkpoint(true).unwrap();
    assert!(
        full.is_ok() && full.checked == (per * 2 + 5) as u64,
        "{full:?}"
    );
    let incremental = log.verify_from_checkpoint(false).unwrap();
    assert!(incremental.is_ok(), "{incremental:?}");
    assert_eq!(incremental.from, (per * 2) as u64);
    assert!(incremental.checked <= 6, "{incremental:?}");
    let entries = log.verified_entries().unwrap();
    assert_eq!(entries.len(), per * 2 + 5);
    assert_eq!(entries[per].reason, format!("entry {per}"));
    // A sealed segment replaced by another (valid) PXI is caught, by the
    // full check and by the incremental one (the checkpoint's own segment).
    let first = log_dir.join("evolution/segments/00000000.png");
    let second = log_dir.join("evolution/segments/00000001.png");
    let saved = std::fs::read(&second).unwrap();
    std::fs::copy(&first, &second).unwrap();
    assert!(!log.verify_from_checkpoint(true).unwrap().is_ok());
    let incremental = log.verify_from_checkpoint(false).unwrap();
    assert!(
        !incremental.is_ok() || !incremental.notes.is_empty(),
        "{incremental:?}"
    );
    // (A new process: this one's cache keys on the head and the open segment.)
    assert!(
        EvolutionLog::open(&log_dir)
            .unwrap()
            .verified_entries()
            .is_err()
    );
    std::fs::write(&second, saved).unwrap();
    assert!(log.verify_from_checkpoint(false).unwrap().is_ok());
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
    as_folder(&log.log_path().join("open-00000000.log"), &|| {
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
