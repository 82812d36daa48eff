//! VRAM build of the default roadmap and an evaluator run.
//! `cargo bench -p pxos-vram`; CI runs each once (`-- --test`).

use criterion::{Criterion, criterion_group, criterion_main};
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

criterion_group!(benches, vram, nesting);
criterion_main!(benches);
