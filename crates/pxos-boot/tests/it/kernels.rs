//! The kernel store and the evolution log vouch for each other; fsck rebuilds
//! the state from the log and the images; the state decoder survives hostile bytes.

use pxos_boot::{ErrorKind, Status};
use pxos_cart::Actor;
use pxos_test_support::{TempDir, edit_table, read_table, write_table};
use pxos_vm::MemoryStorage;

use crate::{GOOD, Store};

fn history(dir: &TempDir) -> Store {
    let store = Store::new(dir);
    let one = store.install(GOOD, "one", None, true, 1);
    store.boot(1000);
    store.install("LI R1, 0\nDIV R1, R1, R1", "bad", Some(one.id), true, 1);
    store.boot(1000);
    store
}

#[test]
fn the_kernel_state_is_a_checkpoint_of_the_log() {
    let dir = TempDir::new("kernel-checkpoint");
    let store = history(&dir);
    let state = store.state().unwrap();
    assert_eq!(state.current, Some(1), "the bad kernel was reverted");
    assert_eq!(state.kernel(2).unwrap().status, Status::Failed);
    let entries = store.history().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.action.name()).collect();
    assert_eq!(
        names,
        [
            "kernel-install",
            "kernel-boot",
            "kernel-install",
            "kernel-boot"
        ]
    );

    // A hand edit that makes the failed kernel current again.
    let path = dir.join("kernels/state.png");
    let original = read_table(&path);
    edit_table(&path, |v| v["current"] = 2.into());
    let err = store.state().unwrap_err();
    assert!(
        err.kind() == ErrorKind::Tampered && err.to_string().contains("edited by hand"),
        "{err}"
    );
    // A damaged record (a short hash) names the file, exit-1 kind.
    edit_table(&path, |v| v["kernels"][0]["sha256"] = "abc".into());
    let err = store.state().unwrap_err();
    assert!(
        err.kind() == ErrorKind::BadInput && err.to_string().contains("state.png"),
        "{err}"
    );

    // A kernel change in the log the store never began.
    write_table(&path, &original);
    store
        .log
        .append(
            Actor::human("eve"),
            pxos_cart::Action::KernelSwitch {
                kernel: 2,
                from: Some(1),
                cause: pxos_cart::SwitchCause::Manual,
            },
            "sneaky",
        )
        .unwrap();
    let err = store.state().unwrap_err();
    assert!(err.to_string().contains("never began that change"), "{err}");

    // fsck --repair rebuilds from the log (the forged switch is in the log, so it is
    // replayed: repair trusts an intact log, and says what it did).
    let report = store.fsck(false).unwrap();
    assert!(!report.is_clean());
    let report = store.fsck(true).unwrap();
    assert!(!report.repaired.is_empty(), "{report:?}");
    assert_eq!(store.state().unwrap().current, Some(2));
    assert!(store.fsck(false).unwrap().is_clean());
}

#[test]
fn fsck_lists_missing_images_and_strays_and_deletes_nothing() {
    let dir = TempDir::new("kernel-fsck");
    let store = history(&dir);
    std::fs::remove_file(dir.join("kernels/state.png")).unwrap();
    let image = store.state_path(); // gone
    assert!(!image.exists());
    let images = dir.join("kernels/images");
    let first = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let bytes = std::fs::read(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    let stray = images.join("stray.png");
    std::fs::write(&stray, &bytes).unwrap();
    let report = store.fsck(true).unwrap();
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
        report.orphans.iter().any(|p| p.contains("stray.png")),
        "{report:?}"
    );
    assert!(stray.exists(), "nothing is deleted");
    assert_eq!(store.checkpoint().unwrap().unwrap().kernels.len(), 2);
}

#[test]
fn fsck_counts_the_kernels_it_rebuilt() {
    let dir = TempDir::new("kernel-fsck-count");
    let store = history(&dir);
    let report = store.fsck(false).unwrap();
    assert_eq!(report.records, 2);
}

#[test]
fn a_decoded_state_is_checked_field_by_field() {
    let dir = TempDir::new("kernel-validate");
    let store = Store::new(&dir);
    let one = store.install(GOOD, "one", None, true, 1);
    store.boot(1000);
    store.install(GOOD, "two", Some(one.id), false, 1);
    let path = dir.join("kernels/state.png");
    let original = read_table(&path);
    let decode = || pxos_boot::kernel_store::decode_state(&std::fs::read(&path).unwrap());
    assert!(decode().is_ok());
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 7] = [
        ("format", |v| v["format"] = "something-else".into()),
        ("version", |v| v["version"] = 99.into()),
        ("unknown current", |v| v["current"] = 7.into()),
        ("unknown last good", |v| v["last_good"] = 7.into()),
        ("id past next_id", |v| v["kernels"][1]["id"] = 5.into()),
        ("repeated id", |v| v["kernels"][1]["id"] = 1.into()),
        ("bad version name", |v| {
            v["kernels"][0]["version"] = "a\nb".into()
        }),
    ];
    for (name, edit) in cases {
        let mut value = original.clone();
        edit(&mut value);
        write_table(&path, &value);
        assert!(decode().is_err(), "{name}: accepted");
    }
}

#[test]
fn a_good_kernel_that_fails_for_good_is_no_longer_the_last_good() {
    let dir = TempDir::new("kernel-last-good");
    let store = Store::new(&dir);
    // A kernel that halts cleanly only while its file exists.
    store.install(
        "IMM32 R1, P\nIMM32 R2, B\nLI R3, 1\nSYSCALL 41\nLI R5, 1\nBEQ R0, R5, OK\nLI R4, 0\nDIV R1, R1, R4\nOK: HALT\nB: .word 0\nP: .string \"/flag\"",
        "flaky",
        None,
        true,
        1,
    );
    let mut storage = MemoryStorage::default();
    storage.files.insert("/flag".into(), vec![1]);
    assert!(store.boot_with(Box::new(storage), 1000).failure.is_none());
    assert_eq!(store.state().unwrap().last_good, Some(1));
    let failed = store.boot(1000);
    assert!(failed.failure.is_some(), "{failed:?}");
    let state = store.state().unwrap();
    assert_eq!(state.kernel(1).unwrap().status, Status::Failed);
    assert_eq!(state.last_good, None);
    let last = store.history().unwrap().pop().unwrap();
    assert!(
        last.reason.contains("no good kernel to revert to"),
        "{}",
        last.reason
    );
}

#[test]
fn clean_boots_are_logged_once_and_failed_ones_say_what_is_left() {
    let dir = TempDir::new("kernel-boot-log");
    let store = Store::new(&dir);
    let one = store.install(GOOD, "one", None, true, 1);
    store.boot(1000);
    let logged = store.history().unwrap().len();
    store.boot(1000);
    assert_eq!(
        store.history().unwrap().len(),
        logged,
        "a second clean boot logs nothing"
    );

    // A good kernel that is not the last good one: its clean boot is recorded again.
    store.install(GOOD, "two", Some(one.id), true, 1);
    store.boot(1000);
    assert_eq!(store.state().unwrap().last_good, Some(2));
    store.switch(1, Actor::human("ada"), "back").unwrap();
    let before = store.history().unwrap().len();
    store.boot(1000);
    assert_eq!(store.history().unwrap().len(), before + 1);
    assert_eq!(store.state().unwrap().last_good, Some(1));

    // A failing kernel with tries left says how many.
    store.install("LI R1, 0\nDIV R1, R1, R1", "bad", Some(1), true, 3);
    store.boot(1000);
    let last = store.history().unwrap().pop().unwrap();
    assert!(last.reason.ends_with("2 tries left"), "{}", last.reason);
}
