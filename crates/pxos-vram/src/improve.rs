//! The improvement loop: build -> evaluate -> reflect -> propose, one
//! generation at a time, writing every generation's roadmap, image and report.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::evaluate::{Evaluation, evaluate};
use crate::roadmap::{Roadmap, Step, build};

/// Proposes the next roadmap from the last evaluation (an LLM can implement this).
pub trait Proposer {
    /// A new roadmap, or `None` when it has nothing to offer.
    fn propose(&mut self, roadmap: &Roadmap, evaluation: &Evaluation) -> Option<Roadmap>;
}

/// The default kernel for the `kernel` region.
pub const DEFAULT_KERNEL: &str = "START:\n    LI R1, 4\n    LI R2, 0\n    SYSCALL 1\n    HALT\n";
/// The default hello program for the `program_area`.
pub const DEFAULT_HELLO: &str = "START:\n    IMM32 R1, GREETING\n    LI R2, 1\n    SYSCALL 1\n    IMM32 R1, 20\n    IMM32 R2, 20\n    IMM32 R3, 40\n    IMM32 R4, 40\n    IMM32 R5, 10\n    SYSCALL 2\n    HALT\nGREETING:\n    .string \"hello from VRAM\"\n";

/// The built-in proposer: reads the failed checks and adds or repairs the
/// steps that fix them, at most `fixes_per_generation` at a time.
pub struct RuleProposer {
    pub fixes_per_generation: usize,
}

fn step(name: &str, kind: &str, params: &str) -> Step {
    Step {
        name: name.into(),
        kind: kind.into(),
        params: serde_norway::from_str(params).unwrap_or(serde_norway::Value::Null),
    }
}

impl Proposer for RuleProposer {
    fn propose(&mut self, roadmap: &Roadmap, evaluation: &Evaluation) -> Option<Roadmap> {
        let mut next = roadmap.clone();
        let mut fixes = 0;
        let replace_or_push = |roadmap: &mut Roadmap, new: Step| match roadmap
            .steps
            .iter_mut()
            .find(|s| s.name == new.name)
        {
            Some(existing) => *existing = new,
            None => roadmap.steps.push(new),
        };
        for failed in evaluation.failed() {
            if fixes >= self.fixes_per_generation {
                break;
            }
            let fix = match failed {
                "metadata_valid" => {
                    step("write_metadata", "write_metadata", "{fields: {stage: '1'}}")
                }
                "palette_decodes" => step("write_opcode_palette", "write_opcode_palette", "{}"),
                "syscall_table_valid" => step("write_syscall_table", "write_syscall_table", "{}"),
                "kernel_disassembles" => step(
                    "assemble_kernel",
                    "assemble_program",
                    &format!("{{region: kernel, source: {:?}}}", DEFAULT_KERNEL),
                ),
                "program_disassembles" | "hello_runs" | "hello_prints" | "hello_draws" => step(
                    "assemble_hello",
                    "assemble_program",
                    &format!("{{region: program_area, source: {:?}}}", DEFAULT_HELLO),
                ),
                "process_table_valid" => step(
                    "write_process_table",
                    "write_process_table",
                    "{processes: [{pid: 1, name: hello, region: program_area}]}",
                ),
                "regions_initialized" => continue,
                _ => continue,
            };
            if next.steps.contains(&fix) {
                continue;
            }
            replace_or_push(&mut next, fix);
            fixes += 1;
        }
        (next != *roadmap).then_some(next)
    }
}

/// One generation's record.
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub number: u32,
    pub score: u32,
    pub max_score: u32,
    pub failed: Vec<&'static str>,
    pub roadmap: PathBuf,
    pub image: PathBuf,
    pub report: PathBuf,
}

/// Runs up to `generations` generations from `roadmap`, writing
/// `ROADMAP_VRAM_OS.genNNN.yaml`, `vram_os_stage1.genNNN.png` and
/// `vram_os_stage1.genNNN.json` into `out_dir`. Stops at full marks.
pub fn run_loop(
    roadmap: &Roadmap,
    generations: u32,
    out_dir: &Path,
    proposer: &mut dyn Proposer,
) -> Result<Vec<Generation>> {
    std::fs::create_dir_all(out_dir).map_err(|err| Error::io(err, out_dir))?;
    let mut current = roadmap.clone();
    let mut history = Vec::new();
    for number in 0..generations {
        let (vram, steps) = build(&current)?;
        let evaluation = evaluate(&vram);
        let roadmap_path = out_dir.join(format!("ROADMAP_VRAM_OS.gen{number:03}.yaml"));
        let image_path = out_dir.join(format!("vram_os_stage1.gen{number:03}.png"));
        let report_path = out_dir.join(format!("vram_os_stage1.gen{number:03}.json"));
        let write = |path: &Path, bytes: &[u8]| {
            pxos_pixel::durable::write_atomic(
                path,
                bytes,
                pxos_pixel::durable::label::VRAM_GENERATION,
            )
            .map_err(|err| Error::io(err, path))
        };
        write(&roadmap_path, current.to_yaml().as_bytes())?;
        write(&image_path, &vram.to_png())?;
        let report = serde_json::json!({"generation": number, "evaluation": evaluation, "steps": steps, "reflection": evaluation.failed()});
        write(
            &report_path,
            serde_json::to_string_pretty(&report)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        history.push(Generation {
            number,
            score: evaluation.score,
            max_score: evaluation.max_score,
            failed: evaluation.failed(),
            roadmap: roadmap_path,
            image: image_path,
            report: report_path,
        });
        if evaluation.full_marks() {
            break;
        }
        match proposer.propose(&current, &evaluation) {
            Some(next) => {
                next.check()?;
                current = next;
            }
            None => break,
        }
    }
    Ok(history)
}
