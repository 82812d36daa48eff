//! `pxos cart ...` and `pxos log ...`.

use anyhow::Result;
use pxos_cart::cartridge::Limits;
use pxos_cart::{Actor, CreatorKind, EvolutionLog};
use serde_json::{Value, json};

use crate::Outcome;
use crate::cli::{ActorArgs, CartCommand, Global, LogArgs, LogCommand};
use crate::home::home;
use crate::output::{Output, human_bytes};

fn actor(args: &ActorArgs) -> Actor {
    let name = args
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    Actor {
        kind: if args.llm {
            CreatorKind::Llm
        } else {
            CreatorKind::Human
        },
        name,
    }
}

fn evolution_log(global: &Global) -> Result<EvolutionLog> {
    Ok(EvolutionLog::open(&home(global)?.join("log"))?)
}

pub fn run(command: &CartCommand, global: &Global, output: &Output) -> Result<Outcome> {
    match command {
        CartCommand::Pack {
            dir,
            output: target,
            actor: who,
        } => {
            let (source, _) = pxos_cart::cartridge::scan(dir, &Limits::default())?;
            let target = target
                .clone()
                .unwrap_or_else(|| format!("{}-{}.pxa", source.name, source.version).into());
            let packed = pxos_cart::pack(dir, &target, &Limits::default())?;
            let sha = pxos_pixel::hex(&packed.sha256);
            let entry = evolution_log(global)?.append(
                actor(who),
                "pack",
                vec![sha.clone()],
                Some(packed.manifest.id()),
                &packed.manifest.reason,
            )?;
            output.emit(
                json!({"type": "packed", "cartridge": target, "id": packed.manifest.id(), "sha256": sha,
                       "files": packed.manifest.files.len(), "file_len": packed.file_len, "log_seq": entry.seq}),
                || format!(
                    "packed {} ({} files, {}) into {} (sha256 {}...)",
                    packed.manifest.id(), packed.manifest.files.len(), human_bytes(packed.manifest.data_len()),
                    target.display(), &sha[..16]
                ),
            )?;
        }
        CartCommand::Unpack { cartridge, dir } => {
            let manifest = pxos_cart::unpack(cartridge, dir, &Limits::default())?;
            output.emit(json!({"type": "unpacked", "cartridge": cartridge, "dir": dir, "id": manifest.id(), "files": manifest.files.len()}), || {
                format!("unpacked {} ({} files, all verified) into {}", manifest.id(), manifest.files.len(), dir.display())
            })?;
        }
        CartCommand::Info { cartridge } => {
            let (manifest, sha) = pxos_cart::read_manifest(cartridge, &Limits::default())?;
            let mut value = serde_json::to_value(&manifest).unwrap_or(Value::Null);
            value["type"] = json!("cartridge");
            value["sha256"] = json!(pxos_pixel::hex(&sha));
            output.emit(value, || {
                let mut text = format!(
                    "{}\n  version      {}\n  parent       {}\n  creator      {} ({:?})\n  created      {}\n  genesis      {}\n  sha256       {}\n  notes        {}\n  reason       {}\n  files        {} ({})",
                    manifest.name, manifest.version, manifest.parent.as_deref().unwrap_or("none"),
                    manifest.creator.name, manifest.creator.kind, manifest.created, manifest.genesis_version,
                    pxos_pixel::hex(&sha), manifest.notes, manifest.reason, manifest.files.len(), human_bytes(manifest.data_len())
                );
                for file in &manifest.files {
                    text.push_str(&format!("\n    {:<40} {:>10}", file.path, human_bytes(file.size)));
                }
                text
            })?;
        }
        CartCommand::Register {
            cartridge,
            reason,
            actor: who,
        } => {
            let record = registry(global)?.register(cartridge, actor(who), reason, false)?;
            output.emit(json!({"type": "registered", "record": record}), || {
                format!(
                    "registered {} as {:?} (sha256 {}...)",
                    record.id,
                    record.status,
                    &record.sha256[..16]
                )
            })?;
        }
        CartCommand::List => {
            let registry = registry(global)?;
            for record in registry.list()? {
                let genesis = registry.genesis_run(&record.sha256)?;
                output.emit(
                    json!({"type": "cartridge", "record": record, "genesis": genesis}),
                    || {
                        format!(
                            "{:<24} {:<12} {:<6} {:<12} genesis: {}",
                            record.id,
                            format!("{:?}", record.status).to_lowercase(),
                            format!("{:?}", record.creator.kind).to_lowercase(),
                            record.creator.name,
                            match &genesis {
                                None => "not run".to_string(),
                                Some(run) if run.passed => "passed".to_string(),
                                Some(_) => "FAILED".to_string(),
                            }
                        )
                    },
                )?;
            }
        }
        CartCommand::Test {
            cartridge,
            actor: who,
        } => return genesis(cartridge, Some(actor(who)), global, output),
        CartCommand::Promote {
            cartridge,
            approved_by,
            force,
            reason,
            llm,
        } => {
            let approver = approved_by.clone().map(|name| Actor {
                kind: if *llm {
                    CreatorKind::Llm
                } else {
                    CreatorKind::Human
                },
                name,
            });
            let record = registry(global)?.promote(cartridge, approver, *force, reason)?;
            output.emit(
                json!({"type": "promoted", "record": record, "forced": force}),
                || {
                    format!(
                        "{} is now current{}",
                        record.id,
                        if *force {
                            " (FORCED: recorded as such)"
                        } else {
                            ""
                        }
                    )
                },
            )?;
        }
        CartCommand::Rollback {
            cartridge,
            reason,
            actor: who,
        } => {
            let record = registry(global)?.rollback(cartridge, actor(who), reason)?;
            output.emit(json!({"type": "rolled-back", "record": record}), || {
                format!("{} is current again (the abandoned cartridge is deprecated; nothing was deleted)", record.id)
            })?;
        }
        CartCommand::Lineage { cartridge, png } => {
            let (chain, note) = registry(global)?.lineage(cartridge)?;
            if let Some(png) = png {
                pxos_pixel::durable::write_atomic(
                    png,
                    &pxos_cart::registry::lineage_png(&chain),
                    "lineage",
                )?;
            }
            output.emit(
                json!({"type": "lineage", "chain": chain, "note": note, "png": png}),
                || {
                    let mut text = String::new();
                    for (depth, record) in chain.iter().rev().enumerate() {
                        text.push_str(&format!(
                            "{}{}{} ({:?}, {:?} {})\n",
                            "  ".repeat(depth),
                            if depth == 0 { "" } else { "└─ " },
                            record.id,
                            record.status,
                            record.creator.kind,
                            record.creator.name
                        ));
                    }
                    if let Some(note) = &note {
                        text.push_str(&format!("note: {note}"));
                    }
                    text.trim_end().to_string()
                },
            )?;
        }
    }
    Ok(Outcome::Success)
}

fn registry(global: &Global) -> Result<pxos_cart::Registry> {
    let home = home(global)?;
    Ok(pxos_cart::Registry::open(
        &home.join("carts"),
        EvolutionLog::open(&home.join("log"))?,
    )?)
}

/// `pxos genesis check` and `pxos cart test` (which also records the result).
pub fn genesis(
    cartridge: &str,
    record_as: Option<Actor>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let registry = registry(global)?;
    let record = registry.find(cartridge)?;
    let report = pxos_boot::genesis::check(&home(global)?, &registry, &record)?;
    for check in &report.checks {
        output.emit(json!({"type": "genesis-check", "check": check}), || {
            format!(
                "{} {:<4} {:<28} {}: {}",
                if check.passed {
                    output.good("pass")
                } else {
                    output.bad("FAIL")
                },
                check.section,
                check.principle,
                check.name,
                check.evidence
            )
        })?;
    }
    for item in &report.needs_person {
        output.emit(json!({"type": "needs-person", "item": item}), || {
            format!(
                "  -  {:<4} {:<28} needs a person: {}",
                item.section, item.principle, item.why
            )
        })?;
    }
    let actor = record_as.unwrap_or_else(|| {
        actor(&ActorArgs {
            actor: None,
            llm: false,
        })
    });
    registry.record_genesis(&record, report.passed(), report.failed(), actor)?;
    output.emit(
        json!({"type": "genesis", "cartridge": record.id, "sha256": record.sha256, "passed": report.passed(), "failed": report.failed(), "compliance": report.compliance_file}),
        || format!("{}: Genesis {} on sha256 {}...; {}", record.id, if report.passed() { output.good("passed") } else { output.bad("FAILED") }, &record.sha256[..16], report.compliance_file.display()),
    )?;
    if !report.passed() {
        eprintln!(
            "pxos: error: {} does not pass Genesis: {}",
            record.id,
            report.failed().join(", ")
        );
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

pub fn log(args: &LogArgs, global: &Global, output: &Output) -> Result<Outcome> {
    let log = evolution_log(global)?;
    match &args.command {
        Some(LogCommand::Verify) => {
            let verification = log.verify()?;
            for problem in &verification.problems {
                output.emit(json!({"type": "problem", "message": problem}), || {
                    format!("{} {problem}", output.bad("TAMPERED"))
                })?;
            }
            output.emit(json!({"type": "log-verify", "ok": verification.is_ok(), "entries": verification.entries, "notes": verification.notes}), || {
                if verification.is_ok() {
                    format!("{} {} entries, chain intact", output.good("ok"), verification.entries)
                } else {
                    format!("the evolution log does NOT verify ({} problems)", verification.problems.len())
                }
            })?;
            if !verification.is_ok() {
                eprintln!(
                    "pxos: error: the evolution log does not verify: {}",
                    verification.problems.join("; ")
                );
                return Ok(Outcome::Negative);
            }
        }
        Some(LogCommand::Note {
            reason,
            action,
            actor: who,
        }) => {
            let entry = log.append(actor(who), action, Vec::new(), None, reason)?;
            output.emit(serde_json::to_value(&entry).unwrap_or(Value::Null), || {
                format!("logged #{} {}", entry.seq, entry.hash)
            })?;
        }
        None => {
            for entry in log.entries()? {
                if let Some(actor) = &args.actor {
                    let kind = format!("{:?}", entry.actor.kind).to_lowercase();
                    if *actor != kind && *actor != entry.actor.name {
                        continue;
                    }
                }
                if let Some(cart) = &args.cart {
                    let matches = entry
                        .cartridge
                        .as_deref()
                        .is_some_and(|c| c == cart || c.split('@').next() == Some(cart.as_str()));
                    if !matches {
                        continue;
                    }
                }
                output.emit(serde_json::to_value(&entry).unwrap_or(Value::Null), || {
                    format!(
                        "#{:<4} {}  {:<5} {:<12} {:<10} {:<20} {}",
                        entry.seq,
                        entry.time,
                        format!("{:?}", entry.actor.kind).to_lowercase(),
                        entry.actor.name,
                        entry.action,
                        entry.cartridge.as_deref().unwrap_or("-"),
                        entry.reason
                    )
                })?;
            }
        }
    }
    Ok(Outcome::Success)
}
