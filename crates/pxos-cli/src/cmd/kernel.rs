//! `pxos kernel ...`: the kernel store.

use anyhow::{Context, Result};
use pxos_boot::{KernelRecord, KernelStore};
use pxos_vm::{ProgramImage, asm};
use serde_json::{Value, json};

use crate::Outcome;
use crate::cli::{Global, KernelCommand};
use crate::home::home;
use crate::output::Output;

fn record_json(record: &KernelRecord, current: Option<u32>) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    value["current"] = json!(current == Some(record.id));
    value
}

fn record_line(record: &KernelRecord, current: Option<u32>) -> String {
    format!(
        "{} {:>3}  {:<10} {:<9} parent {:<4} {:>6} B  {}{}",
        if current == Some(record.id) { "*" } else { " " },
        record.id,
        record.version,
        format!("{:?}", record.status).to_lowercase(),
        record.parent.map_or("-".to_string(), |p| p.to_string()),
        record.size,
        record.date,
        record
            .failure
            .as_ref()
            .map(|f| format!("  ({f})"))
            .unwrap_or_default()
    )
}

pub fn run(command: &KernelCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let store = KernelStore::open(&home.join("kernels"))?;
    match command {
        KernelCommand::List => {
            let state = store.state()?;
            for record in &state.kernels {
                output.emit(record_json(record, state.current), || {
                    record_line(record, state.current)
                })?;
            }
            if state.kernels.is_empty() {
                output.emit(json!({"type": "empty"}), || {
                    "no kernels yet (`pxos kernel install` or `pxos demo evolve`)".into()
                })?;
            }
        }
        KernelCommand::Current => {
            let state = store.state()?;
            let id = state
                .current
                .context("no current kernel (install one first)")?;
            let record = state.kernel(id).context("current kernel missing")?;
            output.emit(record_json(record, state.current), || {
                record_line(record, state.current)
            })?;
        }
        KernelCommand::Install {
            program,
            version,
            parent,
            current,
            tries,
        } => {
            let image = if program.extension().is_some_and(|e| e == "pxasm") {
                let assembled = asm::assemble_file(program)?;
                ProgramImage {
                    words: assembled.words,
                    entry: assembled.entry,
                }
            } else {
                ProgramImage::read(program)?
            };
            let parent = parent.or(store.state()?.current);
            let record = store.install(&image, version, parent, *current, *tries)?;
            let state = store.state()?;
            output.emit(record_json(&record, state.current), || {
                format!("installed {}", record_line(&record, state.current))
            })?;
        }
        KernelCommand::Switch { id } => {
            let record = store.switch(*id, "switched by hand")?;
            output.emit(record_json(&record, Some(record.id)), || {
                format!("current: {}", record_line(&record, Some(record.id)))
            })?;
        }
        KernelCommand::Rollback { id } => {
            let record = store.rollback(*id, "rolled back by hand")?;
            output.emit(record_json(&record, Some(record.id)), || {
                format!("rolled back to {}", record_line(&record, Some(record.id)))
            })?;
        }
        KernelCommand::Boot { fuel, screen } => {
            let report = store.boot(super::vm::storage(global)?, *fuel)?;
            let next = store.apply_request(&report)?;
            if let Some(screen) = screen {
                pxos_pixel::durable::write_atomic(screen, &report.screen.to_png(), "screen")?;
            }
            output.emit(
                json!({"type": "boot", "kernel": report.kernel, "version": report.version, "ok": report.failure.is_none(),
                       "failure": report.failure, "cycles": report.cycles, "output": report.output, "reverted": report.reverted,
                       "next": next.as_ref().map(|k| k.id)}),
                || {
                    let mut text = report.output.join("\n");
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    if let Some(next) = &next {
                        text.push_str(&format!("kernel asked for a change: kernel {} ({}) is now current, on trial\n", next.id, next.version));
                    }
                    match (&report.failure, report.reverted) {
                        (None, _) => text.push_str(&format!("kernel {} booted cleanly ({} cycles)", report.version, report.cycles)),
                        (Some(why), Some((from, to))) => text.push_str(&format!("kernel {from} {why}; reverted to kernel {to}")),
                        (Some(why), None) => text.push_str(&format!("kernel {} {why}", report.version)),
                    }
                    text
                },
            )?;
            if report.failure.is_some() {
                return Ok(Outcome::Negative);
            }
        }
        KernelCommand::Log => {
            for event in store.state()?.log {
                output.emit(serde_json::to_value(&event).unwrap_or(Value::Null), || {
                    format!(
                        "{}  {:<12} kernel {:<3} {}",
                        event.time, event.event, event.kernel, event.detail
                    )
                })?;
            }
        }
    }
    Ok(Outcome::Success)
}
