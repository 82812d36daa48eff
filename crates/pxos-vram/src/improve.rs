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

/// The built-in proposer: reads the failed checks and adds or repairs the
/// steps that fix them, taken from the default roadmap, at most
/// `fixes_per_generation` groups at a time.
pub struct RuleProposer {
    pub fixes_per_generation: usize,
}

/// The steps of the default roadmap that fix a failed check.
fn fixes_for(check: &str) -> &'static [&'static str] {
    match check {
        "metadata_valid" => &["write_metadata"],
        "palette_decodes" => &["write_opcode_palette"],
        "syscall_table_valid"
        | "syscalls_via_table"
        | "kernel_disassembles"
        | "os_boots"
        | "trap_isolated" => &["assemble_kernel", "write_syscall_table"],
        "program_disassembles" | "hello_runs" | "hello_prints" | "hello_draws" => {
            &["assemble_hello"]
        }
        "process_table_valid" | "processes_progress" => {
            &["write_process_table", "assemble_hello", "assemble_counter"]
        }
        _ => &[],
    }
}

impl Proposer for RuleProposer {
    fn propose(&mut self, roadmap: &Roadmap, evaluation: &Evaluation) -> Option<Roadmap> {
        let Ok(default) = Roadmap::parse(crate::DEFAULT_ROADMAP) else {
            return None;
        };
        let order: Vec<&str> = default.steps.iter().map(|s| s.name.as_str()).collect();
        let mut next = roadmap.clone();
        let mut fixes = 0;
        for failed in evaluation.failed() {
            if fixes >= self.fixes_per_generation {
                break;
            }
            let mut changed = false;
            for name in fixes_for(failed) {
                let Some(fix) = default.steps.iter().find(|s| s.name == *name) else {
                    continue;
                };
                if next.steps.contains(fix) {
                    continue;
                }
                place(&mut next, fix.clone(), &order);
                changed = true;
            }
            if changed {
                fixes += 1;
            }
        }
        (next != *roadmap).then_some(next)
    }
}

/// Replaces the step of the same name, or inserts it before the first step
/// that comes after it in the default order (a syscall table after its kernel).
fn place(roadmap: &mut Roadmap, step: Step, order: &[&str]) {
    if let Some(existing) = roadmap.steps.iter_mut().find(|s| s.name == step.name) {
        *existing = step;
        return;
    }
    let rank = |name: &str| order.iter().position(|n| *n == name);
    let mine = rank(&step.name);
    let at = roadmap
        .steps
        .iter()
        .position(|s| matches!((rank(&s.name), mine), (Some(theirs), Some(mine)) if theirs > mine))
        .unwrap_or(roadmap.steps.len());
    roadmap.steps.insert(at, step);
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
    /// Why this generation's proposal was rejected (it lowered the score);
    /// the loop went on from the best generation before it.
    pub rejected: Option<String>,
}

/// Runs up to `generations` generations from `roadmap`, writing
/// `ROADMAP_VRAM_OS.genNNN.yaml`, `vram_os_stage1.genNNN.png` and
/// `vram_os_stage1.genNNN.json` into `out_dir`. Stops at full marks. A
/// proposal that scores lower than the best generation so far is rejected
/// (its generation records why) and the next proposal starts from the best.
pub fn run_loop(
    roadmap: &Roadmap,
    generations: u32,
    out_dir: &Path,
    proposer: &mut dyn Proposer,
    on_generation: &mut dyn FnMut(u32, &crate::Vram, &Evaluation),
) -> Result<Vec<Generation>> {
    std::fs::create_dir_all(out_dir).map_err(|err| Error::io(err, out_dir))?;
    let mut current = roadmap.clone();
    let mut history: Vec<Generation> = Vec::new();
    // The best generation so far: its number, roadmap and evaluation.
    let mut best: Option<(u32, Roadmap, Evaluation)> = None;
    for number in 0..generations {
        let (vram, steps) = build(&current)?;
        let evaluation = evaluate(&vram);
        let rejected = best.as_ref().and_then(|(at, _, kept)| {
            (evaluation.score < kept.score).then(|| {
                format!(
                    "it scores {}/{}, below generation {at}'s {}: rejected, and the loop goes on from generation {at}",
                    evaluation.score, evaluation.max_score, kept.score
                )
            })
        });
        on_generation(number, &vram, &evaluation);
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
        let report = serde_json::json!({"generation": number, "evaluation": evaluation, "steps": steps, "reflection": evaluation.failed(), "rejected": rejected});
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
            rejected: rejected.clone(),
        });
        if rejected.is_none() {
            best = Some((number, current.clone(), evaluation));
        }
        let (_, kept, kept_evaluation) = best.as_ref().expect("generation 0 is never rejected");
        if kept_evaluation.full_marks() {
            break;
        }
        let (kept, kept_evaluation) = (kept.clone(), kept_evaluation.clone());
        current = kept;
        match proposer.propose(&current, &kept_evaluation) {
            Some(next) => {
                next.check()?;
                current = next;
            }
            None => break,
        }
    }
    Ok(history)
}
