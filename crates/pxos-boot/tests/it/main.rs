//! The kernel store's boot counting and revert, the evolution demo, Genesis and the sandbox.

mod genesis;

use std::path::PathBuf;

use pxos_boot::evolve::demo_evolve;
use pxos_boot::{KernelStore, Status};
use pxos_vm::{MemoryStorage, ProgramImage, asm};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("pxos-boot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn image(source: &str) -> ProgramImage {
    let program = asm::assemble("k", source).unwrap();
    ProgramImage {
        words: program.words,
        entry: program.entry,
    }
}

const GOOD: &str = "LI R1, 2\nSYSCALL 1\nHALT";

#[test]
fn bad_kernels_are_reverted_and_the_good_one_still_boots() {
    let dir = TempDir::new("revert");
    let store = KernelStore::open(&dir.0).unwrap();
    let good = store.install(&image(GOOD), "good", None, true, 1).unwrap();
    let report = store
        .boot(Box::new(MemoryStorage::default()), 10_000)
        .unwrap();
    assert!(report.failure.is_none());
    assert_eq!(report.output, ["PXVM ready"]);
    assert_eq!(
        store.state().unwrap().kernel(good.id).unwrap().status,
        Status::Good
    );

    let bad = [
        (
            "traps",
            "LI R1, 0\nDIV R2, R1, R1\nHALT",
            "trapped: division by zero",
        ),
        ("loops", "L: JMP L", "did not halt within"),
        (
            "unhealthy",
            "LI R1, 6\nSYSCALL 1\nHALT",
            "failed its health check",
        ),
    ];
    for (version, source, reason) in bad {
        let record = store
            .install(&image(source), version, Some(good.id), true, 1)
            .unwrap();
        assert_eq!(record.status, Status::Trial);
        let report = store
            .boot(Box::new(MemoryStorage::default()), 10_000)
            .unwrap();
        assert!(
            report.failure.as_deref().unwrap().contains(reason),
            "{version}: {:?}",
            report.failure
        );
        assert_eq!(report.reverted, Some((record.id, good.id)), "{version}");
        let state = store.state().unwrap();
        assert_eq!(state.current, Some(good.id));
        let failed = state.kernel(record.id).unwrap();
        assert_eq!(failed.status, Status::Failed);
        assert!(failed.failure.as_deref().unwrap().contains(reason));
        assert!(
            state
                .log
                .iter()
                .any(|e| e.event == "revert" && e.detail.contains(reason))
        );
        // The good kernel still boots.
        let again = store
            .boot(Box::new(MemoryStorage::default()), 10_000)
            .unwrap();
        assert!(
            again.failure.is_none(),
            "{version}: good kernel failed after revert"
        );
        assert_eq!(again.kernel, good.id);
    }
}

#[test]
fn trial_kernels_get_their_tries_and_rollback_reaches_any_version() {
    let dir = TempDir::new("tries");
    let store = KernelStore::open(&dir.0).unwrap();
    let one = store.install(&image(GOOD), "one", None, true, 1).unwrap();
    store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    let flaky = store
        .install(&image("L: JMP L"), "flaky", Some(one.id), true, 2)
        .unwrap();
    let first = store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    assert!(first.reverted.is_none(), "one try left");
    assert_eq!(store.state().unwrap().current, Some(flaky.id));
    let second = store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    assert_eq!(second.reverted, Some((flaky.id, one.id)));
    let two = store
        .install(
            &image("LI R1, 4\nSYSCALL 1\nHALT"),
            "two",
            Some(one.id),
            true,
            1,
        )
        .unwrap();
    store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    assert_eq!(store.rollback(None, "test").unwrap().id, one.id);
    assert_eq!(store.rollback(Some(two.id), "test").unwrap().id, two.id);
    assert!(store.rollback(Some(99), "test").is_err());
    assert!(
        store.install(&image(GOOD), "one", None, false, 1).is_err(),
        "duplicate version"
    );
    assert!(
        store
            .install(
                &ProgramImage {
                    words: vec![],
                    entry: 0
                },
                "empty",
                None,
                false,
                1
            )
            .is_err()
    );
}

#[test]
fn demo_evolve_draws_both_squares() {
    let dir = TempDir::new("evolve");
    let report = demo_evolve(&dir.0.join("home"), &dir.0.join("out")).unwrap();
    assert_eq!(report.boots.len(), 2);
    assert_eq!(report.boots[0].output, ["PXVM booting..."]);
    assert_eq!(report.boots[1].output, ["Kernel init done", "PXVM ready"]);
    assert_eq!(report.v2.parent, Some(report.v1.id));
    assert_eq!(report.v2.status, Status::Good);
    // The PNGs show the rectangles at the seed's positions and colours.
    for (path, (x, y, w, h), rgb) in [
        (&report.screens[0], (50, 50, 100, 100), [0x00, 0x00, 0xaa]),
        (&report.screens[1], (200, 50, 150, 150), [0x55, 0xaa, 0xff]),
    ] {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut pixels).unwrap();
        let at = |px: u32, py: u32| {
            let i = (py as usize * 512 + px as usize) * 3;
            [pixels[i], pixels[i + 1], pixels[i + 2]]
        };
        assert_eq!(at(x, y), rgb);
        assert_eq!(at(x + w - 1, y + h - 1), rgb);
        assert_eq!(at(x + w, y + h), [0, 0, 0]);
        assert_eq!(at(x - 1, y), [0, 0, 0]);
        let count = pixels.chunks(3).filter(|p| *p == rgb).count();
        assert_eq!(count, (w * h) as usize);
    }
    // Running it again reuses the installed versions.
    let again = demo_evolve(&dir.0.join("home"), &dir.0.join("out")).unwrap();
    assert_eq!(again.v2.id, report.v2.id);
}

#[test]
fn version_switch_and_self_modify_requests_are_applied_after_halt() {
    let dir = TempDir::new("requests");
    let store = KernelStore::open(&dir.0).unwrap();
    let base = store.install(&image(GOOD), "base", None, true, 1).unwrap();
    store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    // A kernel that asks to switch back to the base version.
    let switcher = store
        .install(
            &image("LI R1, 1\nSYSCALL 32\nHALT"),
            "switcher",
            Some(base.id),
            true,
            1,
        )
        .unwrap();
    let report = store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    assert!(report.failure.is_none());
    let next = store.apply_request(&report).unwrap().unwrap();
    assert_eq!(next.id, base.id);
    assert_eq!(
        store.state().unwrap().kernel(switcher.id).unwrap().status,
        Status::Good
    );
    // A kernel that replaces itself with module 7.
    let mut storage = MemoryStorage::default();
    storage
        .modules
        .insert(7, image("LI R1, 4\nSYSCALL 1\nHALT").words);
    store
        .install(
            &image("LI R1, 7\nSYSCALL 99\nHALT"),
            "evolver",
            Some(base.id),
            true,
            1,
        )
        .unwrap();
    let report = store.boot(Box::new(storage), 1000).unwrap();
    let evolved = store.apply_request(&report).unwrap().unwrap();
    assert_eq!(evolved.status, Status::Trial);
    assert_eq!(evolved.parent, Some(report.kernel));
    let booted = store
        .boot(Box::new(MemoryStorage::default()), 1000)
        .unwrap();
    assert_eq!(booted.output, ["Kernel init done"]);
    assert_eq!(
        store.state().unwrap().kernel(evolved.id).unwrap().status,
        Status::Good
    );
}
