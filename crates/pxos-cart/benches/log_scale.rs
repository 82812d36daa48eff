//! How the evolution log's costs grow with its length (`docs/benchmarks.md`):
//!
//! * `scale/log-append`: one `EvolutionLog::append` (what `pxos log note`
//!   does) on logs of 10^2 .. 10^6 entries, against the floor of any durable
//!   append measured in the same run: one line appended to a file and
//!   fdatasync'd.
//! * `scale/log-verify`: `verify_from_checkpoint(false)` (what `pxos log
//!   verify` runs on the log) after one append past a clean checkpoint.
//!
//! The logs are built in one go by the segmented log's bulk writer. `cargo
//! bench -p pxos-cart --bench log_scale` measures 10^2 and 10^4 entries;
//! `PXOS_BENCH_FULL=1` adds 10^5 and 10^6. CI runs each once (`-- --test`).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_cart::{Action, Actor, EvolutionLog, LogEntry};
use pxos_pixel::Hash256;

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

fn full() -> bool {
    std::env::var_os("PXOS_BENCH_FULL").is_some()
}

fn note() -> Action {
    Action::Note {
        label: "note".into(),
    }
}

/// A log of `total` notes in `dir`.
fn build(dir: &Path, total: usize) -> EvolutionLog {
    let _ = std::fs::remove_dir_all(dir);
    let log = EvolutionLog::open(dir).unwrap();
    let mut prev = Hash256::ZERO;
    let mut bodies = (0..total).map(|seq| {
        let mut entry = LogEntry {
            seq: seq as u64,
            time: "2026-11-30T00:00:00Z".into(),
            actor: Actor::human("bench"),
            action: note(),
            reason: format!("note {seq}: a reason of a typical length for an entry"),
            prev,
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        prev = entry.hash;
        serde_json::to_vec(&entry).unwrap()
    });
    pxos_fs::seglog::SegLog::new(&log.log_path())
        .create_from(&mut bodies)
        .unwrap();
    let log = EvolutionLog::open(dir).unwrap();
    assert!(log.verify_from_checkpoint(true).unwrap().is_ok());
    log
}

fn sizes() -> &'static [usize] {
    match (quick(), full()) {
        (true, _) => &[100, 1_000],
        (false, false) => &[100, 10_000],
        (false, true) => &[100, 10_000, 100_000, 1_000_000],
    }
}

fn append(c: &mut Criterion) {
    let base = std::env::temp_dir().join(format!("pxos-log-scale-{}", std::process::id()));
    let mut group = c.benchmark_group("scale/log-append");
    group.sample_size(20);
    // The floor: one synced append of a line the size of an entry.
    let floor = base.join("floor.log");
    std::fs::create_dir_all(&base).unwrap();
    let line = vec![b'x'; 400];
    group.bench_function("fdatasync-floor", |b| {
        b.iter(|| {
            pxos_pixel::durable::append_synced(
                &floor,
                &line,
                pxos_pixel::durable::label::SEGLOG_APPEND,
            )
            .unwrap()
        })
    });
    for &entries in sizes() {
        let log = build(&base.join(entries.to_string()), entries);
        group.bench_function(format!("{entries}-entries"), |b| {
            b.iter(|| {
                log.append(Actor::human("bench"), note(), "one more")
                    .unwrap()
                    .seq
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scale/log-verify");
    group.sample_size(20);
    for &entries in sizes() {
        let log = EvolutionLog::open(&base.join(entries.to_string())).unwrap();
        assert!(log.verify_from_checkpoint(true).unwrap().is_ok());
        group.bench_function(format!("incremental/{entries}-entries"), |b| {
            b.iter(|| {
                let report = log.verify_from_checkpoint(false).unwrap();
                assert!(report.is_ok());
                report.checked
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, append);
criterion_main!(benches);
