//! `pxos kernel ...`: the kernel store.

use pxos_boot::boot::HomeStores;
use pxos_boot::hypervisor::Hypervisor;
use pxos_boot::{KernelRecord, KernelStore};
use pxos_vm::{ProgramImage, asm};
use serde_json::{Value, json};

use super::actor;
use crate::Outcome;
use crate::cli::{Global, KernelCommand};
use crate::error::{Context, Result};
use crate::home::home;
use crate::output::{Output, esc};

fn record_json(record: &KernelRecord, current: Option<u32>) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    value["current"] = json!(current == Some(record.id));
    value
}

fn record_line(record: &KernelRecord, current: Option<u32>) -> String {
    format!(
        "{} {:>3}  {:<16} {:<9} parent {:<4} {:>6} B  {}{}",
        if current == Some(record.id) { "*" } else { " " },
        record.id,
        esc(&record.version),
        record.status.name(),
        record.parent.map_or("-".to_string(), |p| p.to_string()),
        record.size,
        record.date,
        record
            .failure
            .as_ref()
            .map(|f| format!("  (last failure: {})", esc(f)))
            .unwrap_or_default()
    )
}

/// Syscall storage for `kernel boot`: PixelFS when the home has one.
fn storage(home: &std::path::Path) -> Box<dyn pxos_vm::Storage> {
    match pxos_fs::PixelFs::open(&home.join("fs")) {
        Ok(fs) => Box::new(pxos_boot::FsStorage::new(fs, home.join("tmp"))),
        Err(_) => Box::new(pxos_vm::MemoryStorage::default()),
    }
}

pub fn run(command: &KernelCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let stores = HomeStores::open(&home)?;
    let store: &KernelStore = &stores.kernels;
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
                    "no kernels yet (`pxos boot` installs the current cartridge's kernel; `pxos kernel install` adds one)".into()
                })?;
            }
        }
        KernelCommand::Current => {
            let state = store.state()?;
            let record = state.current_record().context(
                "no current kernel (`pxos boot` installs the current cartridge's kernel)",
            )?;
            output.emit(record_json(record, state.current), || {
                record_line(record, state.current)
            })?;
        }
        KernelCommand::Install {
            actor: who,
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
            let record = store.install(&image, version, parent, *current, *tries, actor(who))?;
            let state = store.state()?;
            output.emit(record_json(&record, state.current), || {
                format!("installed {}", record_line(&record, state.current))
            })?;
        }
        KernelCommand::Switch { id, actor: who } => {
            let record = store.switch(*id, actor(who), "switched by hand")?;
            output.emit(record_json(&record, Some(record.id)), || {
                format!("current: {}", record_line(&record, Some(record.id)))
            })?;
        }
        KernelCommand::Rollback { id, actor: who } => {
            let record = store.rollback(*id, actor(who), "rolled back by hand")?;
            output.emit(record_json(&record, Some(record.id)), || {
                format!("rolled back to {}", record_line(&record, Some(record.id)))
            })?;
        }
        KernelCommand::Boot { fuel, screen } => {
            let hypervisor = Hypervisor::new(
                &home.join("run").join("executions"),
                pxos_vm::default_messages(),
            );
            let report = store.boot(&hypervisor, storage(&home), None, *fuel)?;
            let next = match store.apply_request(&report)? {
                pxos_boot::RequestOutcome::Applied(next) => Some(next),
                pxos_boot::RequestOutcome::Refused { why, .. } => {
                    eprintln!("pxos: note: the kernel's request was not applied: {why}");
                    None
                }
                pxos_boot::RequestOutcome::None => None,
            };
            if let Some(screen) = screen {
                pxos_pixel::durable::write_atomic(
                    screen,
                    &report.screen.to_png(),
                    pxos_pixel::durable::label::SCREEN,
                )
                .with_context(|| format!("cannot write {}", screen.display()))?;
            }
            output.emit(
                json!({"type": "boot", "kernel": report.kernel, "version": report.version, "ok": report.failure.is_none(),
                       "failure": report.failure, "cycles": report.cycles, "output": report.output, "reverted": report.reverted,
                       "next": next.as_ref().map(|k| k.id), "execution": report.log_id}),
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
            for entry in store.history()? {
                output.emit(super::cart::entry_json(&entry), || {
                    format!(
                        "#{:<4} {}  {:<6} {:<10} {:<14} {}",
                        entry.seq,
                        entry.time,
                        entry.actor.kind.name(),
                        entry.actor.name,
                        entry.action.name(),
                        entry.reason
                    )
                })?;
            }
        }
        KernelCommand::Fsck { repair } => {
            let report = store.fsck(*repair)?;
            return super::cart::fsck_report(
                "kernel state",
                &super::cart::FsckLists {
                    problems: &report.problems,
                    unrecovered: &report.unrecovered,
                    repaired: &report.repaired,
                    leftovers: &report.leftovers,
                    orphans: &report.orphans,
                },
                *repair,
                output,
            );
        }
    }
    Ok(Outcome::Success)
}
