//! `pxos vram ...`: the simulated VRAM.

use std::path::{Path, PathBuf};

use crate::error::{CliError, Context, Result, bail};
use pxos_vram::improve::{RuleProposer, run_loop};
use pxos_vram::{Roadmap, Vram, build, evaluate};
use serde_json::json;

use crate::Outcome;
use crate::cli::VramCommand;
use crate::output::Output;

const DEFAULT_ROADMAP: &str = include_str!("../../../pxos-vram/roadmaps/ROADMAP_VRAM_OS.yaml");
const DEFICIENT_ROADMAP: &str = include_str!("../../../pxos-vram/roadmaps/deficient.yaml");

fn load_roadmap(name: &str) -> Result<Roadmap> {
    let text = match name {
        "default" => DEFAULT_ROADMAP.to_string(),
        "deficient" => DEFICIENT_ROADMAP.to_string(),
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

pub fn run(command: &VramCommand, output: &Output) -> Result<Outcome> {
    match command {
        VramCommand::Build {
            roadmap,
            output: target,
        } => {
            let roadmap = load_roadmap(roadmap)?;
            let (vram, steps) = build(&roadmap)?;
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
        } => {
            let roadmap = load_roadmap(roadmap)?;
            let history = run_loop(
                &roadmap,
                *generations,
                out,
                &mut RuleProposer {
                    fixes_per_generation: 2,
                },
            )?;
            for generation in &history {
                output.emit(
                    json!({"type": "generation", "generation": generation}),
                    || {
                        format!(
                            "gen {:03}: score {}/{}{}",
                            generation.number,
                            generation.score,
                            generation.max_score,
                            if generation.failed.is_empty() {
                                String::new()
                            } else {
                                format!("  failing: {}", generation.failed.join(", "))
                            }
                        )
                    },
                )?;
            }
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
