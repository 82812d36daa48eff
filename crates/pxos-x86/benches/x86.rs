//! Building and listing the pxOS v1 shell, and booting it in QEMU to its prompt.
//! `cargo bench -p pxos-x86`; CI runs each once (`-- --test`).
//!
//! References measured in the same run: the seed-compatible builder on the seed's source
//! (the algorithm the checked builder replaces), and QEMU booting to the BIOS hand-off
//! ("Booting from Floppy...") for the time the sector itself adds.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_x86::disasm::{disassemble, render};
use pxos_x86::qemu::Machine;
use pxos_x86::{Options, build};

const SEED: &str = include_str!("../tests/fixtures/seed_pxos_commands.txt");

fn builder(c: &mut Criterion) {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let labels = image.labels();
    let mut group = c.benchmark_group("x86");
    group.bench_function("build/pxos-v1-shell", |b| {
        b.iter(|| {
            assert_eq!(
                build(pxos_x86::SHELL_SOURCE, Options::default())
                    .unwrap()
                    .bytes
                    .len(),
                512
            )
        })
    });
    group.bench_function("build-compat/seed", |b| {
        let options = Options {
            compat_seed: true,
            ..Options::default()
        };
        b.iter(|| assert_eq!(build(SEED, options).unwrap().bytes.len(), 31_833))
    });
    group.bench_function("disasm/pxos-v1-shell", |b| {
        b.iter(|| {
            let listing = render(&disassemble(&image.bytes, 0x7C00, &labels));
            // Every label of the shell appears in its listing.
            assert!(labels.values().all(|name| listing.contains(name.as_str())));
        })
    });
    group.finish();
    // Label chains resolve with an explicit stack: cost per label stays flat
    // from 10^2 to 10^6 chained DEFINEs.
    let mut group = c.benchmark_group("x86/define-chain");
    group.sample_size(10);
    for length in [100usize, 1_000_000] {
        let mut source = String::from("DEFINE L0 0x7C00\n");
        for i in 1..length {
            source.push_str(&format!("DEFINE L{i} L{}\n", i - 1));
        }
        source.push_str(&format!("WRITE L{} 0xEB\nWRITE 0x7C01 0xFE\n", length - 1));
        group.bench_function(format!("build/{length}"), |b| {
            b.iter(|| assert_eq!(build(&source, Options::default()).unwrap().bytes.len(), 512))
        });
    }
    group.finish();
}

fn boot(c: &mut Criterion) {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let mut group = c.benchmark_group("x86/qemu");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    let timeout = Duration::from_secs(60);
    // The seed builder's image never clears the BIOS messages, so the hand-off stays on
    // screen to be seen (the shell would clear it within a poll interval).
    let seed = build(
        SEED,
        Options {
            compat_seed: true,
            ..Options::default()
        },
    )
    .unwrap();
    group.bench_function("boot-to-bios-handoff", |b| {
        b.iter(|| {
            let mut vm = Machine::boot_headless(&seed.bytes).unwrap();
            vm.wait_for("the hand-off", timeout, |s| {
                s.text().contains("Booting from Floppy")
            })
            .unwrap();
        })
    });
    group.bench_function("boot-to-prompt", |b| {
        b.iter(|| {
            let mut vm = Machine::boot_headless(&image.bytes).unwrap();
            vm.wait_for("the prompt", timeout, |s| {
                s.row(0) == "pxOS v1>" && s.cursor == (0, 9)
            })
            .unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, builder, boot);
criterion_main!(benches);
