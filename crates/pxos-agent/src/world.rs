//! Building a world from the default world's sources plus changes, and
//! registering it: packed, registered as an experimental cartridge with the
//! model as its creator, Genesis-checked, the result recorded. Nothing here
//! promotes: a person does that with `pxos cart promote`.

use std::path::{Path, PathBuf};

use pxos_boot::boot::HomeStores;
use pxos_cart::{Actor, ActorKind, Record};
use serde_json::json;

use crate::check::{CheckReport, assemble};
use crate::error::{Error, Result};
use crate::workspace::check_artefact_name;

/// The cartridge a built world becomes.
#[derive(Clone, Debug)]
pub struct WorldIdentity {
    pub name: String,
    pub version: String,
    /// The model that made it (the creator and the acting `llm`).
    pub model: String,
    pub notes: String,
    pub reason: String,
}

impl WorldIdentity {
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Llm,
            name: self.model.clone(),
        }
    }
}

/// Writes the default world into `dir` with `changes` (path, contents)
/// applied: each `.pxasm` is assembled next to itself. Returns the problems
/// (a change that does not assemble, a refused path); the world is usable
/// only when there are none.
pub fn build_world(
    dir: &Path,
    changes: &[(String, String)],
    identity: &WorldIdentity,
    parent: Option<&str>,
) -> Result<Vec<String>> {
    pxos_boot::world::write_default_world(dir)?;
    let mut problems = Vec::new();
    for (path, contents) in changes {
        if let Err(err) = check_artefact_name(path) {
            problems.push(err.to_string());
            continue;
        }
        if path == "cartridge.json" {
            problems.push("cartridge.json is written by pxOS, not by a change".into());
            continue;
        }
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io(err, parent))?;
        }
        std::fs::write(&target, contents).map_err(|err| Error::io(err, &target))?;
        if let Some(stem) = path.strip_suffix(".pxasm") {
            match assemble(path, contents) {
                Ok(image) => {
                    let png = dir.join(format!("{stem}.png"));
                    std::fs::write(&png, image.to_png()).map_err(|err| Error::io(err, &png))?;
                }
                Err(err) => problems.push(format!("{path} does not assemble: {err}")),
            }
        }
    }
    let manifest = json!({
        "name": identity.name,
        "version": identity.version,
        "parent": parent,
        "creator": {"kind": "llm", "name": identity.model},
        "created": pxos_fs::time::now_rfc3339(),
        "notes": identity.notes,
        "reason": identity.reason,
        "capabilities": ["pxvm", "pixelfs-read"],
        "metrics": {},
        "genesis_version": "1.0",
    });
    let path = dir.join("cartridge.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&manifest).expect("json"),
    )
    .map_err(|err| Error::io(err, &path))?;
    Ok(problems)
}

/// What registering a built world did.
#[derive(Clone, Debug)]
pub struct Registered {
    pub record: Record,
    pub cartridge: PathBuf,
    pub genesis: CheckReport,
    pub compliance: PathBuf,
}

/// Packs the world in `dir` into `out`, registers it as experimental (the
/// model acting), runs Genesis on it and records the result.
pub fn register_world(
    home: &Path,
    dir: &Path,
    out: &Path,
    identity: &WorldIdentity,
) -> Result<Registered> {
    let stores = HomeStores::open(home)?;
    pxos_boot::world::ensure_current(home, &stores.registry)?;
    pxos_cart::pack(dir, out, &pxos_cart::Limits::default())?;
    let actor = identity.actor();
    let record = stores.registry.register(
        out,
        actor.clone(),
        &format!(
            "{} (built by an agent; experimental until a person promotes it)",
            identity.reason
        ),
        false,
    )?;
    let report = pxos_boot::genesis::check(home, &stores.registry, &record)?;
    stores
        .registry
        .record_genesis(&record, report.passed(), report.failed(), actor)?;
    let compliance = home
        .join("genesis")
        .join(format!("{}-{}", record.id, record.sha256.short()))
        .join("GENESIS_COMPLIANCE.md");
    let genesis = CheckReport {
        passed: report.passed(),
        summary: if report.passed() {
            format!("Genesis passes {}", record.id)
        } else {
            format!(
                "Genesis fails {}: {}",
                record.id,
                report.failed().join("; ")
            )
        },
        details: report.failed(),
        executions: Vec::new(),
    };
    Ok(Registered {
        record,
        cartridge: out.to_path_buf(),
        genesis,
        compliance,
    })
}

/// The current cartridge's id (`name@version`), installing the default world
/// on a fresh home.
pub fn current_id(home: &Path) -> Result<String> {
    let stores = HomeStores::open(home)?;
    let (record, _) = pxos_boot::world::ensure_current(home, &stores.registry)?;
    Ok(record.id)
}
