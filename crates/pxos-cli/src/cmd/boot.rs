//! `pxos boot`, `pxos status` and `pxos inspect`.

use pxos_boot::boot::{BootRequest, HomeStores, Outcome as StageOutcome};
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::error::Result;
use crate::home::home;
use crate::output::{Output, esc};

pub fn boot(request: &BootRequest, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let booted = pxos_boot::boot::boot_home(&home, request)?;
    let report = &booted.report;
    if let Some(why) = &booted.degraded {
        eprintln!(
            "pxos: warning: {} the evolution log does not verify, or state disagrees with it: {why}",
            output.bad("TAMPERED:")
        );
        eprintln!(
            "pxos: warning: booting read-only from the registry's checkpoint: no install, no boot counting, no kernel changes; `pxos log verify` shows the problems"
        );
        output.emit(
            json!({"type": "warning", "degraded": true, "why": why}),
            String::new,
        )?;
    }
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
    if booted.would_install {
        output.emit(
            json!({"type": "would-install", "cartridge": report.cartridge, "sha256": report.sha256}),
            || {
                format!(
                    "fresh home: a boot would install the built-in default world as {} (current); dry run: nothing written",
                    report.cartridge
                )
            },
        )?;
    }
    if let Some((passed, failed)) = &booted.genesis {
        output.emit(
            json!({"type": "genesis", "cartridge": report.cartridge, "passed": passed, "failed": failed}),
            || {
                format!(
                    "Genesis ran on {} for the first time: {}",
                    report.cartridge,
                    if *passed {
                        output.good("passed")
                    } else {
                        output.bad(&format!("FAILED ({})", failed.join(", ")))
                    }
                )
            },
        )?;
    }
    if let Some((id, version)) = &booted.adopted_kernel {
        output.emit(
            json!({"type": "kernel-adopted", "kernel": id, "version": version}),
            || format!("kernel store: {version} (kernel {id}) is the current kernel now"),
        )?;
    }
    output.emit(
        json!({"type": "boot-start", "cartridge": report.cartridge, "sha256": report.sha256, "status": booted.status, "dry_run": report.dry_run}),
        || format!("pxOS boot: {} ({}, sha256 {}...){}", report.cartridge, booted.status.name(), report.sha256.short(),
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
            for attempt in &stage.kernels {
                if let (Some(why), Some(to)) = (&attempt.failure, attempt.reverted_to) {
                    text.push_str(&format!(
                        "\n      {} kernel {} ({}) {why}; reverted to kernel {to}",
                        output.bad("REVERT"),
                        attempt.kernel,
                        attempt.version
                    ));
                }
            }
            for line in &stage.output {
                text.push_str(&format!("\n      | {}", esc(line)));
            }
            text
        })?;
        for warning in &stage.warnings {
            if output.verbose {
                eprintln!("pxos: warning: {}: {warning}", stage.name);
            }
        }
    }
    if let Some(change) = &report.kernel_change {
        output.emit(
            json!({"type": "kernel-change", "kernel": change.kernel, "version": change.version, "applied": change.applied, "detail": change.detail}),
            || if change.applied {
                format!(
                    "kernel change: {}; the next boot runs kernel {} ({}) on trial",
                    change.detail, change.kernel, change.version
                )
            } else {
                format!("kernel change {}", change.detail)
            },
        )?;
    }
    output.emit(
        json!({"type": "boot-end", "ok": report.ok(), "halted_at": report.halted_at, "micros": report.micros,
               "screen": if report.dry_run { None } else { Some(&booted.screen_file) }, "log": booted.log_file,
               "degraded": booted.degraded.is_some(), "reverts": report.reverts().len()}),
        || match &report.halted_at {
            None => format!(
                "boot complete in {:.1} ms{}; log: {}",
                report.micros as f64 / 1000.0,
                if report.dry_run { String::new() } else { format!("; screen: {}", booted.screen_file.display()) },
                booted.log_file.as_deref().map_or("none (dry run)".to_string(), |p| p.display().to_string())
            ),
            Some(stage) => format!("boot HALTED at required stage '{stage}'; log: {}", booted.log_file.as_deref().map_or("none (dry run)".to_string(), |p| p.display().to_string())),
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
    let stores = HomeStores::open(&home)?;
    let verification = stores.log.verify()?;
    let state = stores.registry.state()?;
    let kernels = stores.kernels.state()?;
    let current = state.current_record();
    let current_kernel = kernels.current_record();
    let experiments: Vec<&pxos_cart::Record> = state
        .cartridges
        .iter()
        .filter(|c| c.status == pxos_cart::Status::Experimental)
        .collect();
    let failed_kernels: Vec<&pxos_boot::KernelRecord> = kernels
        .kernels
        .iter()
        .filter(|k| k.status == pxos_boot::Status::Failed)
        .collect();
    output.emit(
        json!({"type": "status", "home": home, "current": current, "experiments": experiments, "cartridges": state.cartridges,
               "requests": state.requests, "kernel": current_kernel, "kernels": kernels.kernels.len(),
               "failed_kernels": failed_kernels,
               "log": {"entries": verification.entries, "verifies": verification.is_ok(), "problems": verification.problems}}),
        || {
            let mut text = format!("pxOS home: {}\n", home.display());
            match current {
                Some(c) => text.push_str(&format!("current cartridge: {} (sha256 {}..., by {} {:?})\n", esc(&c.id), c.sha256.short(), esc(&c.creator.name), c.creator.kind)),
                None => text.push_str("current cartridge: none yet (`pxos boot` installs the default world)\n"),
            }
            text.push_str(&format!("experiments: {}\n", if experiments.is_empty() { "none".into() } else { experiments.iter().map(|e| e.id.clone()).collect::<Vec<_>>().join(", ") }));
            for request in &state.requests {
                text.push_str(&format!(
                    "request: rollback to {} asked by {} (log #{}): \"{}\"; waiting for a person (`pxos cart rollback {} --approved-by NAME`)\n",
                    esc(&request.cartridge), esc(&request.by.to_string()), request.seq, esc(&request.reason), esc(&request.cartridge)
                ));
            }
            text.push_str("history:\n");
            for c in &state.cartridges {
                text.push_str(&format!("  {:<24} {:<12} {}\n", esc(&c.id), c.status.name(), c.registered));
            }
            match current_kernel {
                Some(k) => text.push_str(&format!("kernel: {} (id {}, {}), {} versions\n", k.version, k.id, k.status.name(), kernels.kernels.len())),
                None => text.push_str("kernel: none installed (`pxos boot` installs the current cartridge's kernel)\n"),
            }
            for k in &failed_kernels {
                text.push_str(&format!(
                    "  reverted from kernel {} ({}): {}\n",
                    k.id,
                    k.version,
                    esc(k.failure.as_deref().unwrap_or("failed"))
                ));
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

pub fn inspect(global: &Global, output: &Output) -> Result<Outcome> {
    let mut value = pxos_boot::run::inspect_self(&home(global)?)?;
    value["gpu"] = gpu_summary();
    let text = inspect_text(&value);
    value["type"] = json!("inspect");
    output.emit(value, || text)?;
    Ok(Outcome::Success)
}

/// `inspect` as text: one `key: value` line per field, objects indented
/// below their key, lists joined with commas.
fn inspect_text(value: &serde_json::Value) -> String {
    use serde_json::Value;
    fn scalar(value: &Value) -> String {
        match value {
            Value::String(text) => esc(text).into_owned(),
            Value::Null => "none".into(),
            Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                if items.is_empty() {
                    "none".into()
                } else {
                    items.iter().map(scalar).collect::<Vec<_>>().join(", ")
                }
            }
            other => esc(&other.to_string()).into_owned(),
        }
    }
    fn lines(value: &Value, indent: usize, out: &mut String) {
        let Value::Object(fields) = value else {
            return;
        };
        let width = fields.keys().map(|k| k.len()).max().unwrap_or(0) + 1;
        for (key, field) in fields {
            match field {
                Value::Object(_) => {
                    out.push_str(&format!("{:indent$}{key}:\n", ""));
                    lines(field, indent + 2, out);
                }
                _ => out.push_str(&format!(
                    "{:indent$}{:<width$} {}\n",
                    "",
                    format!("{key}:"),
                    scalar(field)
                )),
            }
        }
    }
    let mut out = String::new();
    lines(value, 0, &mut out);
    out.trim_end().to_string()
}

/// The GPU adapter `pxos llm --device gpu` would use, or why there is none.
#[cfg(feature = "gpu")]
fn gpu_summary() -> serde_json::Value {
    match pxos_llm::gpu::describe_adapter() {
        Ok(adapter) => json!({"adapter": adapter.name, "backend": adapter.backend,
                              "device_type": adapter.device_type, "driver": adapter.driver,
                              "used_by": "pxos llm --device gpu|auto"}),
        Err(why) => json!(format!("none: {why}")),
    }
}

#[cfg(not(feature = "gpu"))]
fn gpu_summary() -> serde_json::Value {
    json!("none: this build has no GPU backend (built without the gpu feature)")
}
