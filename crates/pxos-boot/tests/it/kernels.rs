//! The kernel store and the evolution log vouch for each other; fsck rebuilds
//! the state from the log and the images; the state decoder survives hostile bytes.

use pxos_boot::{ErrorKind, Status};
use pxos_cart::Actor;
use pxos_test_support::{TempDir, edit_table, read_table, write_table};

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
