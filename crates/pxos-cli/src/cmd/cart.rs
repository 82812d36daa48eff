//! `pxos cart ...` and `pxos log ...`.

use pxos_cart::{Action, Actor, ActorKind, CartRef, EvolutionLog, LogEntry, RollbackOutcome};
use serde_json::{Value, json};

use super::actor;
use crate::Outcome;
use crate::cli::{ActorArgs, CartCommand, Global, LogArgs, LogCommand};
use crate::error::Result;
use crate::home::home;
use crate::output::{Output, esc, human_bytes};

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
            let (source, _) = pxos_cart::cartridge::scan(dir, &global.cart_limits())?;
            let target = target
                .clone()
                .unwrap_or_else(|| format!("{}-{}.pxa", source.name, source.version).into());
            let packed = pxos_cart::pack(dir, &target, &global.cart_limits())?;
            let sha = pxos_pixel::Hash256(packed.sha256);
            let action = Action::Pack {
                cartridge: CartRef {
                    name: packed.manifest.name.clone(),
                    version: packed.manifest.version.clone(),
                    sha256: sha,
                },
            };
            let entry =
                evolution_log(global)?.append(actor(who), action, &packed.manifest.reason)?;
            output.emit(
                json!({"type": "packed", "cartridge": target, "id": packed.manifest.id(), "sha256": sha,
                       "files": packed.manifest.files.len(), "file_len": packed.file_len, "log_seq": entry.seq}),
                || format!(
                    "packed {} ({} files, {}) into {} (sha256 {}...)",
                    packed.manifest.id(), packed.manifest.files.len(), human_bytes(packed.manifest.data_len()),
                    target.display(), sha.short()
                ),
            )?;
        }
        CartCommand::Unpack { cartridge, dir } => {
            let manifest = pxos_cart::unpack(cartridge, dir, &global.cart_limits())?;
            output.emit(json!({"type": "unpacked", "cartridge": cartridge, "dir": dir, "id": manifest.id(), "files": manifest.files.len()}), || {
                format!("unpacked {} ({} files, all verified) into {}", manifest.id(), manifest.files.len(), dir.display())
            })?;
        }
        CartCommand::Info { cartridge } => {
            let (manifest, sha) = pxos_cart::read_manifest(cartridge, &global.cart_limits())?;
            let mut value = serde_json::to_value(&manifest).unwrap_or(Value::Null);
            value["type"] = json!("cartridge");
            value["sha256"] = json!(pxos_pixel::hex(&sha));
            output.emit(value, || {
                let mut text = format!(
                    "{}\n  version      {}\n  parent       {}\n  creator      {} ({:?})\n  created      {}\n  genesis      {}\n  sha256       {}\n  notes        {}\n  reason       {}\n  files        {} ({})",
                    esc(&manifest.name), esc(&manifest.version), esc(manifest.parent.as_deref().unwrap_or("none")),
                    esc(&manifest.creator.name), manifest.creator.kind, esc(&manifest.created), manifest.genesis_version,
                    pxos_pixel::hex(&sha), esc(&manifest.notes), esc(&manifest.reason), manifest.files.len(), human_bytes(manifest.data_len())
                );
                for file in &manifest.files {
                    text.push_str(&format!("\n    {:<40} {:>10}", esc(&file.path), human_bytes(file.size)));
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
                    "registered {} as {} (sha256 {}...)",
                    record.id,
                    record.status.name(),
                    record.sha256.short()
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
                            esc(&record.id),
                            record.status.name(),
                            format!("{:?}", record.creator.kind).to_lowercase(),
                            esc(&record.creator.name),
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
        } => return genesis(cartridge.as_deref(), Some(actor(who)), global, output),
        CartCommand::Promote {
            cartridge,
            approved_by,
            force,
            reason,
            llm,
        } => {
            let approver = approved_by.clone().map(|name| Actor {
                kind: if *llm {
                    ActorKind::Llm
                } else {
                    ActorKind::Human
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
            approved_by,
        } => {
            let requester = actor(who);
            // `--llm` marks the one acting: an approver named alone is that one.
            let approver = approved_by.clone().map(|name| Actor {
                kind: if who.llm && who.actor.is_none() {
                    ActorKind::Llm
                } else {
                    ActorKind::Human
                },
                name,
            });
            let requester = match (&who.actor, &approver) {
                (None, Some(approver)) => approver.clone(),
                _ => requester,
            };
            match registry(global)?.rollback(cartridge, requester.clone(), approver, reason)? {
                RollbackOutcome::Applied(record) => {
                    output.emit(json!({"type": "rolled-back", "applied": true, "record": record}), || {
                        format!("{} is current again (the abandoned cartridge is deprecated; nothing was deleted)", record.id)
                    })?;
                }
                RollbackOutcome::Requested { seq } => {
                    output.emit(
                        json!({"type": "rollback-requested", "applied": false, "cartridge": cartridge, "by": requester, "log_seq": seq}),
                        || format!(
                            "rollback to {cartridge} requested by {requester} and recorded (log #{seq}); it takes effect only when a person approves it: `pxos cart rollback {cartridge} --approved-by NAME --reason ...`"
                        ),
                    )?;
                }
            }
        }
        CartCommand::Lineage { cartridge, png } => {
            let registry = registry(global)?;
            let query = match cartridge {
                Some(query) => query.clone(),
                None => current_id(&registry)?,
            };
            let (chain, note) = registry.lineage(&query)?;
            if let Some(png) = png {
                crate::output::write_output(
                    png,
                    &pxos_cart::registry::lineage_png(&chain),
                    pxos_pixel::durable::label::LINEAGE,
                )?;
            }
            output.emit(
                json!({"type": "lineage", "chain": chain, "note": note, "png": png}),
                || {
                    let mut text = String::new();
                    for (depth, record) in chain.iter().rev().enumerate() {
                        text.push_str(&format!(
                            "{}{}{} ({}, {:?} {})\n",
                            "  ".repeat(depth),
                            if depth == 0 { "" } else { "└─ " },
                            record.id,
                            record.status.name(),
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
        CartCommand::Push { cartridge, remote } => {
            return super::remote::cart_push(cartridge, remote.as_deref(), global, output);
        }
        CartCommand::Pull {
            cartridge,
            remote,
            actor: who,
        } => {
            return super::remote::cart_pull(
                cartridge,
                remote.as_deref(),
                actor(who),
                global,
                output,
            );
        }
        CartCommand::Fsck { repair } => {
            let report = registry(global)?.fsck(*repair)?;
            return fsck_report(
                "registry",
                &FsckLists {
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

/// The current cartridge's id (the default for `cart test` and `cart lineage`).
fn current_id(registry: &pxos_cart::Registry) -> Result<String> {
    Ok(registry
        .current()?
        .ok_or_else(|| {
            crate::error::CliError::new(
                crate::error::ErrorKind::NotFound,
                "no current cartridge yet (`pxos boot` installs the default world); name one",
            )
        })?
        .id)
}

/// What an fsck found, for printing.
pub struct FsckLists<'a> {
    pub problems: &'a [String],
    pub unrecovered: &'a [String],
    pub repaired: &'a [String],
    pub leftovers: &'a [String],
    pub orphans: &'a [String],
}

/// Prints what an fsck found; exit 1 while damage remains.
pub fn fsck_report(
    what: &str,
    lists: &FsckLists<'_>,
    repair: bool,
    output: &Output,
) -> Result<Outcome> {
    let FsckLists {
        problems,
        unrecovered,
        repaired,
        leftovers,
        orphans,
    } = *lists;
    for item in orphans {
        output.emit(json!({"type": "orphan", "message": item}), || {
            format!("{} {item}", output.dim("note"))
        })?;
    }
    for item in leftovers {
        output.emit(json!({"type": "leftover", "path": item}), || {
            format!(
                "{} {item}: a temporary file of an interrupted write (harmless; kept)",
                output.dim("note")
            )
        })?;
    }
    for problem in problems {
        output.emit(json!({"type": "problem", "message": problem}), || {
            format!("{} {problem}", output.bad("DAMAGE"))
        })?;
    }
    for item in unrecovered {
        output.emit(json!({"type": "unrecovered", "message": item}), || {
            format!("{} {item}", output.bad("NOT RECOVERED"))
        })?;
    }
    for item in repaired {
        output.emit(json!({"type": "repaired", "message": item}), || {
            format!("{} {item}", output.good("repaired"))
        })?;
    }
    let clean = problems.is_empty() && unrecovered.is_empty();
    let fixed = repair && !repaired.is_empty() && unrecovered.is_empty();
    output.emit(
        json!({"type": "fsck", "what": what, "clean": clean, "repaired": !repaired.is_empty(),
               "problems": problems.len(), "unrecovered": unrecovered.len()}),
        || {
            if clean {
                format!("{} the {what} agrees with the evolution log", output.good("ok"))
            } else if fixed {
                format!("the {what} was rebuilt from the evolution log; nothing was deleted")
            } else if repair {
                format!("the {what} has damage that repair could not undo (listed above); nothing was deleted")
            } else {
                format!("the {what} is damaged; `--repair` rebuilds it from the evolution log (nothing is deleted)")
            }
        },
    )?;
    if clean || fixed {
        Ok(Outcome::Success)
    } else {
        eprintln!(
            "pxos: error: the {what} is damaged ({} problems, {} not recovered)",
            problems.len(),
            unrecovered.len()
        );
        Ok(Outcome::Negative)
    }
}

pub fn registry(global: &Global) -> Result<pxos_cart::Registry> {
    let home = home(global)?;
    Ok(
        pxos_cart::Registry::open(&home.join("carts"), EvolutionLog::open(&home.join("log"))?)?
            .with_limits(global.cart_limits()),
    )
}

/// `pxos genesis check` and `pxos cart test` (which also records the result).
pub fn genesis(
    cartridge: Option<&str>,
    record_as: Option<Actor>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let registry = registry(global)?;
    let query = match cartridge {
        Some(query) => query.to_string(),
        None => current_id(&registry)?,
    };
    let record = registry.find(&query)?;
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
        || format!("{}: Genesis {} on sha256 {}...; {}", record.id, if report.passed() { output.good("passed") } else { output.bad("FAILED") }, record.sha256.short(), report.compliance_file.display()),
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
        Some(LogCommand::Verify { full }) => {
            let mut verification = log.verify_from_checkpoint(*full)?;
            if verification.is_ok() {
                // The log and the state built from it must vouch for each
                // other: a log cut back with its head is caught here.
                let stores = pxos_boot::boot::HomeStores::open(&home(global)?)?;
                if *full {
                    if let Err(err) = stores.registry.check_against_log() {
                        verification.problems.push(err.to_string());
                    }
                    if let Err(err) = stores.kernels.state() {
                        verification.problems.push(err.to_string());
                    }
                } else {
                    if let Err(err) = stores.registry.check_tail() {
                        verification.problems.push(err.to_string());
                    }
                    if let Err(err) = stores.kernels.check_tail() {
                        verification.problems.push(err.to_string());
                    }
                }
            }
            for problem in &verification.problems {
                output.emit(json!({"type": "problem", "message": problem}), || {
                    format!("{} {problem}", output.bad("TAMPERED"))
                })?;
            }
            output.emit(json!({"type": "log-verify", "ok": verification.is_ok(), "entries": verification.entries, "checked": verification.checked, "from": verification.from, "full": full, "notes": verification.notes}), || {
                if verification.is_ok() {
                    format!("{} {} entries, chain intact ({} checked from entry {})", output.good("ok"), verification.entries, verification.checked, verification.from)
                } else {
                    format!("the evolution log does NOT verify, or the state disagrees with it ({} problems)", verification.problems.len())
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
            let entry = log.append(
                actor(who),
                Action::Note {
                    label: action.clone(),
                },
                reason,
            )?;
            output.emit(entry_json(&entry), || {
                format!("logged #{} {}", entry.seq, entry.hash)
            })?;
        }
        None => {
            let mut shown = 0usize;
            for entry in log.entries()? {
                if let Some(actor) = &args.actor
                    && *actor != entry.actor.kind.name()
                    && *actor != entry.actor.name
                {
                    continue;
                }
                if let Some(cart) = &args.cart {
                    let matches = entry
                        .action
                        .cartridge()
                        .is_some_and(|c| c.id() == *cart || c.name == *cart);
                    if !matches {
                        continue;
                    }
                }
                shown += 1;
                output.emit(entry_json(&entry), || {
                    format!(
                        "#{:<4} {}  {:<6} {:<12} {:<16} {:<20} {}",
                        entry.seq,
                        entry.time,
                        entry.actor.kind.name(),
                        esc(&entry.actor.name),
                        entry.action.name(),
                        esc(&entry
                            .action
                            .cartridge()
                            .map_or("-".to_string(), CartRef::id)),
                        esc(&entry.reason)
                    )
                })?;
            }
            // JSON Lines of nothing is an empty stream; text says so.
            if shown == 0 && !output.json {
                let mut filters = Vec::new();
                if let Some(actor) = &args.actor {
                    filters.push(format!("actor {}", esc(actor)));
                }
                if let Some(cart) = &args.cart {
                    filters.push(format!("cartridge {}", esc(cart)));
                }
                output.emit(json!({}), || {
                    if filters.is_empty() {
                        "no entries: the evolution log is empty".to_string()
                    } else {
                        format!("no entries for {}", filters.join(" and "))
                    }
                })?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// A log entry as `pxos log --json` prints it: the stored entry, with the
/// action's name and cartridge id flattened for filtering.
pub fn entry_json(entry: &LogEntry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    value["details"] = value["action"].clone();
    value["action"] = json!(entry.action.name());
    value["cartridge"] = json!(entry.action.cartridge().map(CartRef::id));
    value
}
