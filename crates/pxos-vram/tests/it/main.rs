//! Simulated VRAM: the default roadmap, the evaluator, provenance, diffs,
//! the improvement loop and hostile roadmaps.

use std::path::Path;

use pxos_vram::improve::{RuleProposer, run_loop};
use pxos_vram::{Roadmap, Vram, build, evaluate};

fn roadmap(name: &str) -> Roadmap {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("roadmaps")
        .join(name);
    Roadmap::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_default_roadmap_scores_full_marks_and_breaking_the_program_area_fails_execution() {
    let (vram, steps) = build(&roadmap("ROADMAP_VRAM_OS.yaml")).unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.name == "run_hello" && s.detail.contains("hello from VRAM")),
        "{steps:?}"
    );
    let evaluation = evaluate(&vram);
    assert!(evaluation.full_marks(), "{:?}", evaluation.checks);
    assert_eq!(evaluation.max_score, 10);

    // Round trip through PNG keeps the score.
    let again = Vram::from_png(&vram.to_png()).unwrap();
    assert!(evaluate(&again).full_marks());

    // Breaking the program area fails the execution checks.
    let mut broken = again.clone();
    let start = broken.region_address(pxos_vram::Region::ProgramArea);
    let (x, y) = (start % broken.width(), start / broken.width());
    broken.write_pixel(x, y, [0, 0, 0, 0]);
    let evaluation = evaluate(&broken);
    assert!(!evaluation.full_marks());
    assert!(
        evaluation.failed().contains(&"hello_runs"),
        "{:?}",
        evaluation.failed()
    );
}

#[test]
fn provenance_answers_who_wrote_a_pixel_and_diffs_count_regions() {
    let (vram, _) = build(&roadmap("ROADMAP_VRAM_OS.yaml")).unwrap();
    let palette = vram.who_wrote(0, 16).unwrap();
    assert_eq!(palette.step, "write_opcode_palette");
    let background = vram.who_wrote(500, 500).unwrap();
    assert_eq!(background.step, "background");
    assert!(palette.seq > background.seq);
    // Provenance survives its JSON form.
    let mut loaded = Vram::from_png(&vram.to_png()).unwrap();
    loaded.load_provenance(&vram.provenance_json()).unwrap();
    assert_eq!(loaded.who_wrote(0, 16), vram.who_wrote(0, 16));

    let (before, _) = build(&roadmap("deficient.yaml")).unwrap();
    let diff = before.diff(&vram).unwrap();
    let (counts, png) = (diff.changed, diff.png);
    let changed = |region: &str| counts.iter().find(|(r, _)| r.name() == region).unwrap().1;
    assert!(
        changed("opcode_palette") > 0
            && changed("process_table") > 0
            && changed("program_area") > 0
    );
    assert_eq!(&png[1..4], b"PNG");
    let same = vram.diff(&vram).unwrap();
    assert!(same.changed.iter().all(|(_, n)| *n == 0));
}

#[test]
fn the_loop_brings_a_deficient_roadmap_to_full_marks() {
    let dir = std::env::temp_dir().join(format!("pxos-vram-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = roadmap("deficient.yaml");
    assert!(!evaluate(&build(&start).unwrap().0).full_marks());
    let history = run_loop(
        &start,
        10,
        &dir,
        &mut RuleProposer {
            fixes_per_generation: 2,
        },
    )
    .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.score, last.max_score, "{history:?}");
    assert!(history.len() >= 3, "a few generations, not one");
    assert!(
        history.windows(2).all(|w| w[1].score >= w[0].score),
        "scores never drop"
    );
    for generation in &history {
        for path in [&generation.roadmap, &generation.image, &generation.report] {
            assert!(path.is_file(), "{}", path.display());
        }
        // Every generation's roadmap is valid on its own.
        Roadmap::parse(&std::fs::read_to_string(&generation.roadmap).unwrap()).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_roadmaps_are_refused_with_clear_errors() {
    let cases = [
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: run_shell, params: {cmd: 'rm -rf /'}}",
            "unknown step kind 'run_shell'",
        ),
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: fill_region, params: {region: bios, color: [1,2,3,4]}}",
            "unknown region 'bios'",
        ),
        (
            "metadata: {name: x, vram_width: 100000, vram_height: 512}\nsteps: []",
            "outside",
        ),
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: fill_rect, params: {x: 500, y: 0, w: 100, h: 1, color: [1,2,3,4]}}",
            "leaves the VRAM",
        ),
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: run_program, params: {region: program_area, fuel: 99999999999}}",
            "fuel",
        ),
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: fill_region, params: {region: kernel, colour: [1,2,3,4]}}",
            "unknown field",
        ),
        (
            "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: write_opcode_palette, params: {extra: 1}}",
            "takes no parameters",
        ),
        ("not: [valid", "roadmap is not valid"),
    ];
    for (text, expected) in cases {
        let err = Roadmap::parse(text).unwrap_err();
        assert!(
            err.to_string().contains(expected) && err.kind() == pxos_vram::ErrorKind::BadInput,
            "{expected}: {err}"
        );
    }
    // A program too big for its region, and one that traps when run.
    let big = "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: assemble_program, params: {region: metadata, source: \".org 9000\\nHALT\"}}";
    assert!(
        build(&Roadmap::parse(big).unwrap())
            .unwrap_err()
            .to_string()
            .contains("do not fit")
    );
    let trap = "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: run_program, params: {region: program_area}}";
    assert!(
        build(&Roadmap::parse(trap).unwrap())
            .unwrap_err()
            .to_string()
            .contains("trapped")
    );
}

#[test]
fn fuzz_bodies_survive_seeded_inputs() {
    let text = include_str!("../../roadmaps/ROADMAP_VRAM_OS.yaml");
    let (vram, _) = build(&Roadmap::parse(text).unwrap()).unwrap();
    let png = vram.to_png();
    let mut state = 0xfeed_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..60 {
        let mut mutated = text.as_bytes().to_vec();
        for _ in 0..3 {
            let at = next() as usize % mutated.len();
            mutated[at] = b"{}[]:,- \nx09"[next() as usize % 12];
        }
        pxos_vram::fuzz::roadmap_text(&mutated);
        let mut image = png.clone();
        let at = next() as usize % image.len();
        image[at] ^= next() as u8 | 1;
        pxos_vram::fuzz::vram_image(&image);
    }
}
