//! Boot time of the default cartridge on a warm home (installed and unpacked
//! by a first boot, which is not measured). Target: < 100 ms wall.
//! `cargo bench -p pxos-boot`; CI runs it once (`-- --test`).

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_boot::boot::{BootRequest, boot_home};

#[path = "support/log.rs"]
mod log_support;
use log_support::grow_log;

fn boot(c: &mut Criterion) {
    let home = std::env::temp_dir().join(format!("pxos-boot-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let first = boot_home(&home, &BootRequest::default()).unwrap();
    assert!(first.installed && first.report.ok());
    let mut group = c.benchmark_group("boot");
    group.bench_function("default-world/warm", |b| {
        b.iter(|| {
            let booted = boot_home(&home, &BootRequest::default()).unwrap();
            assert!(booted.report.ok() && !booted.installed);
        })
    });
    group.bench_function("default-world/first-install", |b| {
        b.iter_batched(
            || {
                let fresh = home.with_extension(format!("fresh-{}", rand_suffix()));
                let _ = std::fs::remove_dir_all(&fresh);
                fresh
            },
            |fresh| {
                let booted = boot_home(&fresh, &BootRequest::default()).unwrap();
                assert!(booted.installed);
                let _ = std::fs::remove_dir_all(&fresh);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    // How boot time grows with the evolution log: every boot verifies the whole
    // log and replays the registry and kernel entries (the scale issue segments it).
    for total in [100, 10_000] {
        let grown = home.with_extension(format!("log-{total}"));
        let _ = std::fs::remove_dir_all(&grown);
        boot_home(&grown, &BootRequest::default()).unwrap();
        grow_log(&grown, total);
        group.bench_function(format!("default-world/warm/log-{total}"), |b| {
            b.iter(|| {
                let booted = boot_home(&grown, &BootRequest::default()).unwrap();
                assert!(booted.report.ok() && booted.degraded.is_none());
            })
        });
        let _ = std::fs::remove_dir_all(&grown);
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&home);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

criterion_group!(benches, boot);
criterion_main!(benches);
