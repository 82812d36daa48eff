//! VRAM build of the default roadmap and an evaluator run.
//! `cargo bench -p pxos-vram`; CI runs each once (`-- --test`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pxos_vram::{Roadmap, build, evaluate};

fn vram(c: &mut Criterion) {
    let text = include_str!("../roadmaps/ROADMAP_VRAM_OS.yaml");
    let roadmap = Roadmap::parse(text).unwrap();
    let (image, _) = build(&roadmap).unwrap();
    let mut group = c.benchmark_group("vram");
    group.bench_function("parse-roadmap/default", |b| {
        b.iter(|| Roadmap::parse(text).unwrap())
    });
    group.bench_function("build/default", |b| {
        b.iter(|| assert_eq!(build(&roadmap).unwrap().0.width(), 512))
    });
    group.bench_function("evaluate/default", |b| {
        b.iter(|| assert!(evaluate(&image).full_marks()))
    });
    group.bench_function("png/default", |b| b.iter(|| image.to_png()));
    group.finish();
}

/// Refusing deep nesting must cost time linear in the input: 10^2 and 10^6
/// levels, each refused before the YAML parser runs.
fn nesting(c: &mut Criterion) {
    let mut group = c.benchmark_group("vram/refuse-nesting");
    group.sample_size(10);
    for depth in [100usize, 1_000_000] {
        let text = format!("steps: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        group.bench_function(format!("flow/{depth}"), |b| {
            b.iter(|| assert!(Roadmap::parse(&text).is_err()))
        });
    }
    group.finish();
}

/// The VRAM OS scheduler: context switches per second (one switch = the
/// kernel runs a process's slice and gets control back) with 2 and with 63
/// processes, against the same instructions run by a bare PXVM machine with
/// no kernel (the reference, in the same run).
fn scheduler(c: &mut Criterion) {
    const STEPS: u64 = 1_000_000;
    let text = include_str!("../roadmaps/ROADMAP_VRAM_OS.yaml");
    let many: String = (1..=63)
        .map(|pid| {
            format!(
                "        - {{pid: {pid}, name: counter{pid}, region: program_area, offset: 256}}\n"
            )
        })
        .collect();
    let start = text.find("      processes:\n").unwrap() + "      processes:\n".len();
    let end = text[start..].find("  - name: assemble_hello").unwrap() + start;
    let crowded = format!("{}{many}{}", &text[..start], &text[end..]);
    let mut group = c.benchmark_group("vram/os");
    group.sample_size(10);
    for (name, source) in [("2-processes", text.to_string()), ("63-processes", crowded)] {
        let (image, _) = build(&Roadmap::parse(&source).unwrap()).unwrap();
        let probe = pxos_vram::os::run(&image, STEPS).unwrap();
        assert!(probe.processes.iter().all(|p| p.instructions > 0), "{name}");
        group.throughput(Throughput::Elements(probe.switches));
        group.bench_function(format!("switches/{name}"), |b| {
            b.iter(|| {
                let run = pxos_vram::os::run(&image, STEPS).unwrap();
                assert_eq!(run.switches, probe.switches);
                run.switches
            })
        });
    }
    // The reference: the counter alone on a bare machine, no kernel, no switches.
    let (image, _) = build(&Roadmap::parse(text).unwrap()).unwrap();
    let words = image.as_words();
    let config = pxos_vm::Config {
        memory_words: words.len() as u32,
        stack_words: pxos_vram::os::stack_words(words.len() as u32),
        ..pxos_vm::Config::default()
    };
    let entry = image.region_address(pxos_vram::Region::ProgramArea) + 256;
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("reference/bare-counter", |b| {
        b.iter(|| {
            let mut machine = pxos_vm::Machine::new(config).unwrap();
            let code = machine.code_words() as usize;
            machine.load(0, &words[..code]).unwrap();
            machine.pc = entry;
            let result = machine.run(&mut pxos_vm::NullHost::default(), STEPS);
            assert!(matches!(result, Err(pxos_vm::Trap::FuelExhausted { .. })));
            machine.cycles
        })
    });
    group.finish();
}

criterion_group!(benches, vram, nesting, scheduler);
criterion_main!(benches);
