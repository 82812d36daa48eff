//! `pxos demo ...`.

use crate::error::Result;
use serde_json::json;

use crate::Outcome;
use crate::cli::{DemoCommand, Global};
use crate::home::home;
use crate::output::Output;

pub fn run(command: &DemoCommand, global: &Global, output: &Output) -> Result<Outcome> {
    match command {
        DemoCommand::Evolve { out, actor } => {
            let report = pxos_boot::evolve::demo_evolve(&home(global)?, out, super::actor(actor))?;
            for (boot, screen) in report.boots.iter().zip(&report.screens) {
                output.emit(
                    json!({"type": "boot", "kernel": boot.kernel, "version": boot.version, "cycles": boot.cycles,
                           "output": boot.output, "screen": screen, "failure": boot.failure}),
                    || {
                        let mut text = format!("--- kernel {} (id {}) boots ---\n", boot.version, boot.kernel);
                        for line in &boot.output {
                            text.push_str(&format!("  {line}\n"));
                        }
                        text.push_str(&format!("--- kernel {} halted after {} cycles; screen: {} ---", boot.version, boot.cycles, screen.display()));
                        if let Some(pxos_vm::KernelRequest::Replace { id, .. }) = &boot.request {
                            text.push_str(&format!("\nSELF_MODIFY requested module {id}: installing it as the next kernel"));
                        }
                        text
                    },
                )?;
            }
            output.emit(
                json!({"type": "evolved", "from": report.v1.version, "to": report.v2.version, "to_status": report.v2.status.name(),
                       "parent": report.v2.parent}),
                || format!("evolved {} -> {} (now {}; `pxos kernel list` shows the history)", report.v1.version, report.v2.version, report.v2.status.name()),
            )?;
            Ok(Outcome::Success)
        }
    }
}
