//! The kernel store's boot counting and revert, the evolution demo, Genesis and the sandbox.

mod genesis;
mod kernels;

use pxos_boot::evolve::demo_evolve;
use pxos_boot::hypervisor::Hypervisor;
use pxos_boot::{BootReport, KernelStore, Status};
use pxos_cart::{Action, Actor, EvolutionLog};
use pxos_test_support::TempDir;
use pxos_vm::{MemoryStorage, ProgramImage, Storage, asm};

/// A kernel store on its own log, and a hypervisor to boot through.
struct Store {
    store: KernelStore,
    hypervisor: Hypervisor,
    log: EvolutionLog,
}

impl Store {
    fn new(dir: &TempDir) -> Store {
        let log = EvolutionLog::open(&dir.join("log")).unwrap();
        Store {
            store: KernelStore::open(&dir.join("kernels"), log.clone()).unwrap(),
            hypervisor: Hypervisor::new(&dir.join("executions"), pxos_vm::default_messages()),
            log,
        }
    }

    fn boot_with(&self, storage: Box<dyn Storage>, fuel: u64) -> BootReport {
        self.store
            .boot(&self.hypervisor, storage, None, fuel)
            .unwrap()
    }

    fn boot(&self, fuel: u64) -> BootReport {
        self.boot_with(Box::new(MemoryStorage::default()), fuel)
    }

    fn install(
        &self,
        source: &str,
        version: &str,
        parent: Option<u32>,
        current: bool,
        tries: u32,
    ) -> pxos_boot::KernelRecord {
        self.store
            .install(
                &image(source),
                version,
                parent,
                current,
                tries,
                Actor::human("ada"),
            )
            .unwrap()
    }
}

impl std::ops::Deref for Store {
    type Target = KernelStore;
    fn deref(&self) -> &KernelStore {
        &self.store
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
    let store = Store::new(&dir);
    let good = store.install(GOOD, "good", None, true, 1);
    let report = store.boot(10_000);
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
        let record = store.install(source, version, Some(good.id), true, 1);
        assert_eq!(record.status, Status::Trial);
        let report = store.boot(10_000);
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
        let logged = store.log.entries().unwrap().pop().unwrap();
        assert!(
            matches!(&logged.action, Action::KernelBoot { outcome: pxos_cart::KernelOutcome::Failed { why, reverted_to: Some(to), .. }, .. } if why.contains(reason) && *to == good.id)
                && logged.actor.kind == pxos_cart::ActorKind::System,
            "{logged:?}"
        );
        // The good kernel still boots.
        let again = store.boot(10_000);
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
    let store = Store::new(&dir);
    let ada = || Actor::human("ada");
    let one = store.install(GOOD, "one", None, true, 1);
    store.boot(1000);
    let flaky = store.install("L: JMP L", "flaky", Some(one.id), true, 2);
    let first = store.boot(1000);
    assert!(first.reverted.is_none(), "one try left");
    assert_eq!(store.state().unwrap().current, Some(flaky.id));
    let second = store.boot(1000);
    assert_eq!(second.reverted, Some((flaky.id, one.id)));
    let two = store.install("LI R1, 4\nSYSCALL 1\nHALT", "two", Some(one.id), true, 1);
    store.boot(1000);
    assert_eq!(store.rollback(None, ada(), "test").unwrap().id, one.id);
    assert_eq!(
        store.rollback(Some(two.id), ada(), "test").unwrap().id,
        two.id
    );
    assert!(store.rollback(Some(99), ada(), "test").is_err());
    assert!(
        store
            .store
            .install(&image(GOOD), "one", None, false, 1, ada())
            .is_err(),
        "duplicate version"
    );
    let empty = ProgramImage {
        words: vec![],
        entry: 0,
    };
    assert!(
        store
            .store
            .install(&empty, "empty", None, false, 1, ada())
            .is_err()
    );
}

#[test]
fn demo_evolve_draws_both_squares() {
    let dir = TempDir::new("evolve");
    let report = demo_evolve(&dir.join("home"), &dir.join("out"), Actor::human("ada")).unwrap();
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
    let again = demo_evolve(&dir.join("home"), &dir.join("out"), Actor::human("ada")).unwrap();
    assert_eq!(again.v2.id, report.v2.id);
}

#[test]
fn version_switch_and_self_modify_requests_are_applied_after_halt() {
    let dir = TempDir::new("requests");
    let store = Store::new(&dir);
    let base = store.install(GOOD, "base", None, true, 1);
    store.boot(1000);
    // A kernel that asks to switch back to the base version.
    let switcher = store.install(
        "LI R1, 1\nSYSCALL 32\nHALT",
        "switcher",
        Some(base.id),
        true,
        1,
    );
    let report = store.boot(1000);
    assert!(report.failure.is_none());
    let pxos_boot::RequestOutcome::Applied(next) = store.apply_request(&report).unwrap() else {
        panic!("the switch was not applied")
    };
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
    store.install(
        "LI R1, 7\nSYSCALL 99\nHALT",
        "evolver",
        Some(base.id),
        true,
        1,
    );
    let report = store.boot_with(Box::new(storage), 1000);
    let pxos_boot::RequestOutcome::Applied(evolved) = store.apply_request(&report).unwrap() else {
        panic!("the replacement was not applied")
    };
    assert_eq!(evolved.status, Status::Trial);
    assert_eq!(evolved.parent, Some(report.kernel));
    let booted = store.boot(1000);
    assert_eq!(booted.output, ["Kernel init done"]);
    assert_eq!(
        store.state().unwrap().kernel(evolved.id).unwrap().status,
        Status::Good
    );
}

#[test]
fn self_modify_reuses_identical_kernels_and_names_what_it_installs() {
    let dir = TempDir::new("requests-reuse");
    let store = Store::new(&dir);
    let base = store.install(GOOD, "base", None, true, 1);
    store.boot(1000);
    const EVOLVER: &str = "LI R1, 7\nSYSCALL 99\nHALT";
    let boot_with_module = |module: &str| {
        let mut storage = MemoryStorage::default();
        storage.modules.insert(7, image(module).words);
        store.boot_with(Box::new(storage), 1000)
    };
    // Asking for the base kernel's exact image switches back to it.
    store.install(EVOLVER, "to-base", Some(base.id), true, 1);
    let report = boot_with_module(GOOD);
    let pxos_boot::RequestOutcome::Applied(next) = store.apply_request(&report).unwrap() else {
        panic!("the identical base kernel was not reused")
    };
    assert_eq!(next.id, base.id);
    // Asking for its own image changes nothing.
    let own = format!("{EVOLVER}\nNOP");
    let itself = store.install(&own, "itself", Some(base.id), true, 1);
    let report = boot_with_module(&own);
    assert!(matches!(
        store.apply_request(&report).unwrap(),
        pxos_boot::RequestOutcome::None
    ));
    assert_eq!(store.state().unwrap().current, Some(itself.id));
    // A new kernel is named after its parent while the name fits in 64 bytes.
    let next_id = store.state().unwrap().next_id;
    let fits = "v".repeat(64 - 1 - next_id.to_string().len());
    store.install(
        &format!("{EVOLVER}\nNOP\nNOP"),
        &fits,
        Some(base.id),
        true,
        1,
    );
    let report = boot_with_module("LI R1, 5\nHALT");
    let pxos_boot::RequestOutcome::Applied(named) = store.apply_request(&report).unwrap() else {
        panic!("the replacement was not applied")
    };
    assert_eq!(named.version, format!("{fits}+{}", next_id + 1));
    assert_eq!(named.version.len(), 64);
    let long = "w".repeat(64);
    store.install(
        &format!("{EVOLVER}\nNOP\nNOP\nNOP"),
        &long,
        Some(base.id),
        true,
        1,
    );
    let report = boot_with_module("LI R1, 6\nHALT");
    let pxos_boot::RequestOutcome::Applied(named) = store.apply_request(&report).unwrap() else {
        panic!("the replacement was not applied")
    };
    let id = named.id;
    assert_eq!(named.version, format!("evolved-{id}"));
}
