//! Boot time of the default cartridge on a warm home (installed and unpacked
//! by a first boot, which is not measured). Target: < 100 ms wall.
//! `cargo bench -p pxos-boot`; CI runs it once (`-- --test`).

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_boot::boot::{BootRequest, boot_home};

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
