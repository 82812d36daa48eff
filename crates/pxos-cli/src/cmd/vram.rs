//! `pxos vram ...`: the simulated VRAM.

use std::path::{Path, PathBuf};

use crate::error::{CliError, Context, Result, bail};
use pxos_vram::improve::{RuleProposer, run_loop};
use pxos_vram::{Roadmap, Vram, evaluate};
use serde_json::json;

use crate::Outcome;
use crate::cli::{Global, VramCommand};
use crate::output::Output;

fn load_roadmap(name: &str) -> Result<Roadmap> {
    let text = match name {
        "default" => pxos_vram::DEFAULT_ROADMAP.to_string(),
        "deficient" => pxos_vram::DEFICIENT_ROADMAP.to_string(),
        path => pxos_pixel::text::read_input_text(Path::new(path))?,
    };
    Roadmap::parse(&text).context(name)
}

fn provenance_path(image: &Path) -> PathBuf {
    image.with_extension("provenance.json")
}

fn load_image(path: &Path) -> Result<Vram> {
    let bytes = pxos_pixel::text::read_input(path)?;
    Vram::from_png(&bytes).context(path.display())
}

pub fn run(command: &VramCommand, global: &Global, output: &Output) -> Result<Outcome> {
    match command {
        VramCommand::Build {
            roadmap,
            output: target,
            view,
        } => {
            let roadmap = load_roadmap(roadmap)?;
            let mut live = super::view::Live::start(*view, global, output, "build")?;
            let (vram, steps) = pxos_vram::roadmap::build_observed(&roadmap, &mut |step, vram| {
                live.frame(vram, &step.name, None);
            })?;
            crate::output::write_output(target, &vram.to_png(), pxos_pixel::durable::label::VRAM)?;
            crate::output::write_output(
                provenance_path(target),
                vram.provenance_json().to_string().as_bytes(),
                pxos_pixel::durable::label::VRAM_PROVENANCE,
            )?;
            for step in &steps {
                output.emit(json!({"type": "step", "step": step}), || {
                    format!("{:<24} {:<22} {}", step.name, step.kind, step.detail)
                })?;
            }
            output.emit(json!({"type": "built", "output": target, "width": vram.width(), "height": vram.height()}), || {
                format!("wrote {} ({}x{}) and its provenance", target.display(), vram.width(), vram.height())
            })?;
            live.finish(output)?;
        }
        VramCommand::Eval { image } => {
            let evaluation = evaluate(&load_image(image)?);
            for check in &evaluation.checks {
                output.emit(json!({"type": "check", "check": check}), || {
                    format!(
                        "{} {:<22} {:<10} {}",
                        if check.passed {
                            output.good("pass")
                        } else {
                            output.bad("FAIL")
                        },
                        check.name,
                        check.kind,
                        check.detail
                    )
                })?;
            }
            output.emit(json!({"type": "score", "score": evaluation.score, "max_score": evaluation.max_score}), || {
                format!("score {}/{}", evaluation.score, evaluation.max_score)
            })?;
            if !evaluation.full_marks() {
                return Ok(Outcome::Negative);
            }
        }
        VramCommand::Loop {
            roadmap,
            generations,
            out,
            view,
            proposer,
            provider,
        } => {
            let roadmap = load_roadmap(roadmap)?;
            let mut live = super::view::Live::start(*view, global, output, "loop")?;
            let mut rules = RuleProposer {
                fixes_per_generation: 2,
            };
            let mut llm = match proposer.as_str() {
                "rules" => None,
                "llm" => {
                    let home = crate::home::home(global)?;
                    Some(pxos_agent::proposer::LlmProposer::new(
                        super::agents::open_gate(&home, provider.provider.as_deref())?,
                    ))
                }
                other => {
                    return Err(crate::error::CliError::usage(format!(
                        "unknown proposer {other:?} (rules or llm)"
                    )));
                }
            };
            let chosen: &mut dyn pxos_vram::improve::Proposer = match &mut llm {
                Some(llm) => llm,
                None => &mut rules,
            };
            let history = run_loop(
                &roadmap,
                *generations,
                out,
                chosen,
                &mut |number, vram, evaluation| {
                    live.frame(
                        vram,
                        &format!(
                            "generation {number}: {}/{}",
                            evaluation.score, evaluation.max_score
                        ),
                        Some(number),
                    );
                },
            )?;
            for generation in &history {
                output.emit(
                    json!({"type": "generation", "generation": generation}),
                    || {
                        format!(
                            "gen {:03}: score {}/{}{}{}",
                            generation.number,
                            generation.score,
                            generation.max_score,
                            if generation.failed.is_empty() {
                                String::new()
                            } else {
                                format!("  failing: {}", generation.failed.join(", "))
                            },
                            generation
                                .rejected
                                .as_ref()
                                .map_or(String::new(), |why| format!("  REJECTED: {why}"))
                        )
                    },
                )?;
            }
            live.finish(output)?;
            let last = history.last().context("no generation ran")?;
            if last.score != last.max_score {
                eprintln!(
                    "pxos: error: the loop stopped at {}/{} after {} generations",
                    last.score,
                    last.max_score,
                    history.len()
                );
                return Ok(Outcome::Negative);
            }
        }
        VramCommand::Run {
            image,
            steps,
            screen,
            output: target,
            view,
        } => {
            let mut vram = load_image(image)?;
            let mut os = pxos_vram::os::Os::boot(&vram).context(image.display())?;
            let mut live = super::view::Live::start(*view, global, output, "run")?;
            let mut shown = vram.clone();
            let run = os.run(*steps, &mut |slice| {
                if live.due() {
                    shown.begin(
                        &format!("pid {}", slice.pid),
                        &format!("slice {}", slice.number),
                    );
                    let memory = slice.machine.memory();
                    let width = shown.width();
                    for (index, word) in memory.iter().enumerate() {
                        let (x, y) = (index as u32 % width, index as u32 / width);
                        let rgba = word.to_le_bytes();
                        if shown.pixel(x, y) != Some(rgba) {
                            shown.write_pixel(x, y, rgba);
                        }
                    }
                    live.frame(
                        &shown,
                        &format!("slice {} (pid {})", slice.number, slice.pid),
                        None,
                    );
                }
            });
            os.write_back(&mut vram, "vram-os");
            live.frame(&vram, "end of run", None);
            for line in &run.output {
                output.emit(
                    json!({"type": "print", "pid": line.pid, "text": line.text}),
                    || match line.pid {
                        Some(pid) => {
                            format!("[pid {pid}] {}", pxos_pixel::text::escape(&line.text))
                        }
                        None => format!("[kernel] {}", pxos_pixel::text::escape(&line.text)),
                    },
                )?;
            }
            for process in &run.processes {
                output.emit(json!({"type": "process", "process": process}), || {
                    format!(
                        "pid {:<3} {:<12} {:<8} {} slices, {} instructions, {} syscalls{}",
                        process.pid,
                        pxos_pixel::text::escape(&process.name),
                        process.state,
                        process.slices,
                        process.instructions,
                        process.syscalls,
                        process
                            .trap
                            .as_ref()
                            .map_or(String::new(), |t| format!("; trapped: {t}"))
                    )
                })?;
            }
            if let Some(path) = screen {
                crate::output::write_output(
                    path,
                    &os.machine.screen().to_png(),
                    pxos_pixel::durable::label::VRAM_SCREEN,
                )?;
            }
            if let Some(path) = target {
                crate::output::write_output(
                    path,
                    &vram.to_png(),
                    pxos_pixel::durable::label::VRAM,
                )?;
                crate::output::write_output(
                    provenance_path(path),
                    vram.provenance_json().to_string().as_bytes(),
                    pxos_pixel::durable::label::VRAM_PROVENANCE,
                )?;
            }
            let ending = match &run.ending {
                pxos_vram::os::Ending::Halted => "the kernel halted".to_string(),
                pxos_vram::os::Ending::BudgetSpent => {
                    format!("stopped after {} steps (--steps)", steps)
                }
                pxos_vram::os::Ending::KernelTrapped { trap } => {
                    format!("the kernel trapped: {trap}")
                }
            };
            output.emit(json!({"type": "run", "ending": run.ending, "steps": run.steps, "switches": run.switches, "drawn": run.drawn, "screen": screen, "output": target}), || {
                format!("{ending}; {} instructions, {} context switches", run.steps, run.switches)
            })?;
            live.finish(output)?;
            if matches!(run.ending, pxos_vram::os::Ending::KernelTrapped { .. }) {
                return Ok(Outcome::Negative);
            }
        }
        VramCommand::Who { image, x, y } => {
            let mut vram = load_image(image)?;
            let provenance =
                std::fs::read_to_string(provenance_path(image)).with_context(|| {
                    format!(
                        "no provenance beside {} (build it with `pxos vram build`)",
                        image.display()
                    )
                })?;
            let value: serde_json::Value = serde_json::from_str(&provenance)
                .map_err(|err| CliError::bad_input(format!("provenance: {err}")))?;
            vram.load_provenance(&value)?;
            if *x >= vram.width() || *y >= vram.height() {
                bail!(
                    BadInput,
                    "({x}, {y}) is outside the {}x{} VRAM",
                    vram.width(),
                    vram.height()
                );
            }
            let region = vram
                .region_of(*y)
                .map_or("outside", pxos_vram::Region::name);
            let pixel = vram.pixel(*x, *y).unwrap_or_default();
            match vram.who_wrote(*x, *y) {
                Some(write) => output.emit(json!({"type": "who", "x": x, "y": y, "region": region, "rgba": pixel, "write": write}), || {
                    format!("({x}, {y}) in {region} = {pixel:?}: written by {} in step '{}' (write #{})", write.writer, write.step, write.seq)
                })?,
                None => output.emit(json!({"type": "who", "x": x, "y": y, "region": region, "rgba": pixel, "write": null}), || {
                    format!("({x}, {y}) in {region}: never written")
                })?,
            }
        }
        VramCommand::Diff {
            a,
            b,
            output: target,
        } => {
            let diff = load_image(a)?.diff(&load_image(b)?)?;
            if let Some(target) = target {
                crate::output::write_output(
                    target,
                    &diff.png,
                    pxos_pixel::durable::label::VRAM_DIFF,
                )?;
            }
            output.emit(
                json!({"type": "diff", "changed": diff.changed.iter().map(|(r, n)| json!([r.name(), n])).collect::<Vec<_>>(), "image": target}),
                || {
                    diff.changed
                        .iter()
                        .map(|(region, count)| format!("{:<16} {count} pixels changed", region.name()))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )?;
        }
    }
    Ok(Outcome::Success)
}
