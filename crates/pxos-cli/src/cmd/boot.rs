//! `pxos boot` and `pxos status`.

use anyhow::Result;
use pxos_boot::boot::{BootRequest, Outcome as StageOutcome};
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::home::home;
use crate::output::Output;

pub fn boot(request: &BootRequest, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let booted = pxos_boot::boot::boot_home(&home, request)?;
    let report = &booted.report;
    if booted.installed {
        output.emit(
            json!({"type": "installed", "cartridge": report.cartridge, "sha256": report.sha256}),
            || {
                format!(
                    "fresh home: installed the built-in default world as {} (current)",
                    report.cartridge
                )
            },
        )?;
    }
    output.emit(
        json!({"type": "boot-start", "cartridge": report.cartridge, "sha256": report.sha256, "status": booted.status, "dry_run": report.dry_run}),
        || format!("pxOS boot: {} ({:?}, sha256 {}...){}", report.cartridge, booted.status, &report.sha256[..16],
            if report.dry_run { " [dry run]" } else { "" }),
    )?;
    for stage in &report.stages {
        output.emit(json!({"type": "stage", "stage": stage}), || {
            let status = match stage.outcome {
                StageOutcome::Ok => output.good("ok     "),
                StageOutcome::Checked => output.good("checked"),
                StageOutcome::Skipped => output.dim("skipped"),
                StageOutcome::Failed => output.bad("FAILED "),
            };
            let mut text = format!(
                "[{}] {:<8} {} {}{}",
                stage.number,
                stage.name,
                status,
                stage.detail,
                if stage.required { "" } else { " (optional)" }
            );
            for line in &stage.output {
                text.push_str(&format!("\n      | {line}"));
            }
            text
        })?;
    }
    output.emit(
        json!({"type": "boot-end", "ok": report.ok(), "halted_at": report.halted_at, "micros": report.micros,
               "screen": if report.dry_run { None } else { Some(&booted.screen_file) }, "log": booted.log_file}),
        || match &report.halted_at {
            None => format!(
                "boot complete in {:.1} ms{}; log: {}",
                report.micros as f64 / 1000.0,
                if report.dry_run { String::new() } else { format!("; screen: {}", booted.screen_file.display()) },
                booted.log_file.display()
            ),
            Some(stage) => format!("boot HALTED at required stage '{stage}'; log: {}", booted.log_file.display()),
        },
    )?;
    if let Some(stage) = &report.halted_at {
        eprintln!("pxos: error: boot halted: required stage '{stage}' failed");
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

pub fn status(global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let log = pxos_cart::EvolutionLog::open(&home.join("log"))?;
    let verification = log.verify()?;
    let registry = pxos_cart::Registry::open(
        &home.join("carts"),
        pxos_cart::EvolutionLog::open(&home.join("log"))?,
    )?;
    let cartridges = registry.list()?;
    let current = registry.current()?;
    let kernels = pxos_boot::KernelStore::open(&home.join("kernels"))?.state()?;
    let current_kernel = kernels.current.and_then(|id| kernels.kernel(id).cloned());
    let experiments: Vec<&pxos_cart::Record> = cartridges
        .iter()
        .filter(|c| c.status == pxos_cart::Status::Experimental)
        .collect();
    output.emit(
        json!({"type": "status", "home": home, "current": current, "experiments": experiments, "cartridges": cartridges,
               "kernel": current_kernel, "kernels": kernels.kernels.len(),
               "log": {"entries": verification.entries, "verifies": verification.is_ok(), "problems": verification.problems}}),
        || {
            let mut text = format!("pxOS home: {}\n", home.display());
            match &current {
                Some(c) => text.push_str(&format!("current cartridge: {} (sha256 {}..., by {} {:?})\n", c.id, &c.sha256[..16], c.creator.name, c.creator.kind)),
                None => text.push_str("current cartridge: none yet (`pxos boot` installs the default world)\n"),
            }
            text.push_str(&format!("experiments: {}\n", if experiments.is_empty() { "none".into() } else { experiments.iter().map(|e| e.id.clone()).collect::<Vec<_>>().join(", ") }));
            text.push_str("history:\n");
            for c in &cartridges {
                text.push_str(&format!("  {:<24} {:<12} {}\n", c.id, format!("{:?}", c.status).to_lowercase(), c.registered));
            }
            match &current_kernel {
                Some(k) => text.push_str(&format!("kernel: {} (id {}, {:?}), {} versions\n", k.version, k.id, k.status, kernels.kernels.len())),
                None => text.push_str("kernel: none installed\n"),
            }
            text.push_str(&format!(
                "evolution log: {} entries, {}",
                verification.entries,
                if verification.is_ok() { output.good("verifies") } else { output.bad("DOES NOT VERIFY") }
            ));
            text
        },
    )?;
    Ok(Outcome::Success)
}

pub fn run_named(
    name: &str,
    args: &[u32],
    fuel: u64,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let result = pxos_boot::boot::run_named(&home(global)?, name, args, fuel)?;
    for line in &result.output {
        output.emit(json!({"type": "print", "text": line}), || line.clone())?;
    }
    for warning in &result.warnings {
        eprintln!("pxos: warning: {warning}");
    }
    output.emit(
        json!({"type": "run", "program": name, "result": result}),
        || match &result.trap {
            None => format!(
                "{name} halted after {} instructions (execution #{})",
                result.cycles, result.log_id
            ),
            Some(trap) => format!(
                "{name} {} after {} instructions: {trap} (execution #{})",
                output.bad("trapped"),
                result.cycles,
                result.log_id
            ),
        },
    )?;
    if let Some(trap) = &result.trap {
        eprintln!("pxos: error: {name}: program trapped: {trap}");
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

pub fn inspect(global: &Global, output: &Output) -> Result<Outcome> {
    let value = pxos_boot::boot::inspect_self(&home(global)?)?;
    let text = serde_json::to_string_pretty(&value)?;
    let mut value = value;
    value["type"] = json!("inspect");
    output.emit(value, || text)?;
    Ok(Outcome::Success)
}
