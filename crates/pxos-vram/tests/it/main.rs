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
    assert_eq!(evaluation.max_score, 14);

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
        &mut |_, _, _| {},
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

fn default_source() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("roadmaps/ROADMAP_VRAM_OS.yaml"),
    )
    .unwrap()
}

#[test]
fn the_vram_os_schedules_round_robin_and_dispatches_through_the_table() {
    let (vram, _) = build(&roadmap("ROADMAP_VRAM_OS.yaml")).unwrap();
    let mut os = pxos_vram::os::Os::boot(&vram).unwrap();
    let mut order = Vec::new();
    let run = os.run(100_000, &mut |slice| order.push(slice.pid));
    assert_eq!(run.ending, pxos_vram::os::Ending::BudgetSpent, "{run:?}");
    assert!(run.steps >= 100_000 && run.steps < 101_000, "{}", run.steps);
    let hello = &run.processes[0];
    let counter = &run.processes[1];
    assert_eq!((hello.name.as_str(), hello.state), ("hello", "exited"));
    assert_eq!(counter.state, "ready");
    assert_eq!(hello.syscalls, 2, "PRINT and RECT");
    assert!(counter.slices > 100 && counter.syscalls > 50, "{counter:?}");
    // Round-robin: the first slices alternate while both are ready.
    assert_eq!(&order[..3], &[1, 2, 1], "{order:?}");
    assert_eq!(run.switches as usize, order.len());
    let texts: Vec<(Option<u32>, &str)> = run
        .output
        .iter()
        .map(|p| (p.pid, p.text.as_str()))
        .collect();
    assert!(texts.contains(&(Some(1), "hello from VRAM")), "{texts:?}");
    assert!(
        texts.contains(&(Some(2), "counter reached 1000")),
        "{texts:?}"
    );
    assert_eq!(texts[0].0, None, "the kernel announces itself first");
    assert!(run.drawn >= 1600, "hello's square and the counter's bar");
    // The counter's pixel in VRAM counts, and the control blocks are pixels too.
    let mut after = vram.clone();
    os.write_back(&mut after, "vram-os");
    let table = after.region_address(pxos_vram::Region::ProcessTable);
    let width = after.width();
    let block = table + 2 * width;
    let slices = u32::from_le_bytes(
        after
            .pixel((block + 39) % width, (block + 39) / width)
            .unwrap(),
    );
    assert_eq!(slices, counter.slices);
    assert_eq!(
        after
            .who_wrote((block + 39) % width, (block + 39) / width)
            .unwrap()
            .writer,
        "vram-os"
    );

    // Patching the table changes behaviour: PRINT pointed at the YIELD handler prints nothing.
    let entries =
        pxos_vram::evaluate::syscall_entries(&vram.region_words(pxos_vram::Region::SyscallTable))
            .unwrap();
    let print = entries.iter().position(|(n, _)| *n == 1).unwrap() as u32;
    let yield_handler = entries.iter().find(|(n, _)| *n == 52).unwrap().1;
    let mut patched = vram.clone();
    patched
        .write_words(
            pxos_vram::Region::SyscallTable,
            3 + 2 * print,
            &[yield_handler],
        )
        .unwrap();
    let run = pxos_vram::os::run(&patched, 100_000).unwrap();
    assert!(
        run.output.iter().all(|p| p.pid.is_none()),
        "{:?}",
        run.output
    );
    assert_eq!(run.processes[0].state, "exited");
}

#[test]
fn a_trapping_process_is_marked_dead_and_the_others_go_on() {
    let source = default_source().replace(
        "            IMM32 R1, 20\n            IMM32 R2, 20\n",
        "            LI R2, 0\n            DIV R1, R1, R2\n",
    );
    assert_ne!(source, default_source());
    let (vram, _) = build(&Roadmap::parse(&source.replace("  - name: run_hello\n    kind: run_program\n    params: {region: program_area, fuel: 100000}\n", "")).unwrap()).unwrap();
    let run = pxos_vram::os::run(&vram, 50_000).unwrap();
    assert_eq!(run.processes[0].state, "dead");
    assert!(
        run.processes[0]
            .trap
            .as_deref()
            .unwrap()
            .contains("division by zero"),
        "{:?}",
        run.processes[0]
    );
    assert!(
        run.processes[1].instructions > 10_000,
        "{:?}",
        run.processes[1]
    );
    assert_eq!(run.ending, pxos_vram::os::Ending::BudgetSpent);
}

/// The default roadmap with one piece of kernel source replaced.
fn with_kernel_edit(from: &str, to: &str) -> Roadmap {
    let source = default_source();
    assert!(source.contains(from), "{from}");
    Roadmap::parse(&source.replacen(from, to, 1)).unwrap()
}

#[test]
fn the_execution_checks_fail_on_kernels_broken_in_each_way() {
    let cases = [
        // Never moves on to the next process: the counter never runs.
        (
            "            ADDI R9, R9, 1\n            BNE R9, R13, NEXT_DONE",
            "            NOP\n            BNE R9, R13, NEXT_DONE",
            "processes_progress",
        ),
        // Hard-wired dispatch: never reads the table, calls the PRINT handler.
        (
            "            LOAD R7, [R11+1]            ; entries in the table",
            "            IMM32 R5, SYS_PRINT\n            CALLR R5\n            CALL NEXT\n            JMP SCHEDULE",
            "syscalls_via_table",
        ),
        // Stops the whole system when a process traps.
        (
            "KILL:\n            LI R5, 4\n",
            "KILL:\n            HALT\n",
            "trap_isolated",
        ),
        // Forgets to mark a trapped process dead.
        (
            "KILL:\n            LI R5, 4\n            STORE R5, [R4+2]",
            "KILL:\n            LI R5, 4\n            NOP",
            "trap_isolated",
        ),
    ];
    for (from, to, check) in cases {
        let (vram, _) = build(&with_kernel_edit(from, to)).unwrap();
        let evaluation = evaluate(&vram);
        assert!(
            evaluation.failed().contains(&check),
            "{check} should fail: {:?}",
            evaluation.checks
        );
    }
    // One process is not an OS that schedules.
    let single = default_source().replace(
        "        - {pid: 2, name: counter, region: program_area, offset: 256}\n",
        "",
    );
    let (vram, _) = build(&Roadmap::parse(&single).unwrap()).unwrap();
    assert!(evaluate(&vram).failed().contains(&"processes_progress"));
}

#[test]
fn hostile_control_blocks_and_tables_never_panic_or_hang() {
    let (vram, _) = build(&roadmap("ROADMAP_VRAM_OS.yaml")).unwrap();
    let table = vram.region_address(pxos_vram::Region::ProcessTable);
    let width = vram.width();
    let edits: Vec<(u32, u32)> = vec![
        (table + 1, 1_000_000_000),     // a process count far past the rows
        (table + 1, u32::MAX),          // ... and one that is negative as a signed word
        (table + width + 37, 0),        // SP below the stack
        (table + width + 37, u32::MAX), // SP past memory
        (table + width + 36, u32::MAX), // PC past memory
        (table + 2 * width + 2, 77),    // an unknown state
        (table + width + 3, u32::MAX),  // a name length past the block
    ];
    for (address, value) in edits {
        let mut hostile = vram.clone();
        let (x, y) = (address % width, address / width);
        hostile.write_pixel(x, y, value.to_le_bytes());
        let run = pxos_vram::os::run(&hostile, 50_000).unwrap();
        assert!(run.steps <= 51_000, "{address}={value}: {run:?}");
        assert!(
            !matches!(run.ending, pxos_vram::os::Ending::KernelTrapped { .. }),
            "{address}={value}: {run:?}"
        );
    }
    // A kernel that asks for a slice of a block outside the table is refused, not obeyed.
    let source = default_source().replace(
        "            MOV R1, R4\n            LI R2, 500",
        "            LI R1, 5\n            LI R2, 500",
    );
    assert_ne!(source, default_source());
    let (vram, _) = build(&Roadmap::parse(&source).unwrap()).unwrap();
    let run = pxos_vram::os::run(&vram, 50_000).unwrap();
    assert_eq!(run.switches, 0);
    assert_eq!(
        run.ending,
        pxos_vram::os::Ending::Halted,
        "the default kernel halts when the machine refuses"
    );
    // Tables missing entirely: a clear error naming what to build.
    let (bare, _) = build(&roadmap("deficient.yaml")).unwrap();
    let err = pxos_vram::os::run(&bare, 1000).unwrap_err();
    assert!(err.to_string().contains("write_process_table"), "{err}");
}
