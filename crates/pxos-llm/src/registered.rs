//! Models as cartridges: a model is packed with a `cartridge.json` into a
//! `.pxa` whose manifest says `"metrics": {"kind": "model", ...}`, and
//! registered (and logged) like any cartridge, with lineage: a fine-tune
//! names its parent.

use std::path::Path;

use pxos_cart::{Actor, ActorKind, Record, Registry};
use pxos_pixel::{Hash256, PixelReader};
use serde_json::json;

use crate::error::{Error, Result};
use crate::format::ModelFile;

/// The file name of the weights inside a model cartridge.
pub const MODEL_FILE: &str = "model.png";

/// What to register.
#[derive(Clone, Debug)]
pub struct Registration<'a> {
    pub name: Option<&'a str>,
    pub version: &'a str,
    /// `NAME@VERSION` of the parent model; found from the weights' own
    /// provenance when not given.
    pub parent: Option<&'a str>,
    pub reason: &'a str,
    pub actor: Actor,
}

fn cart_error(err: pxos_cart::Error) -> Error {
    Error::from_kind(err.kind(), err.to_string())
}

/// Whether a registered cartridge is a model, and its manifest's model hash.
pub fn model_of(
    registry: &Registry,
    record: &Record,
) -> Result<Option<(pxos_cart::Manifest, Hash256)>> {
    let path = registry.path_of(record);
    let (manifest, _) =
        pxos_cart::read_manifest(&path, &pxos_cart::Limits::default()).map_err(cart_error)?;
    if manifest.metrics.get("kind").and_then(|k| k.as_str()) != Some("model") {
        return Ok(None);
    }
    let hash = manifest
        .metrics
        .get("model_sha256")
        .and_then(|h| h.as_str())
        .and_then(Hash256::parse)
        .ok_or_else(|| {
            Error::bad_input(format!("model cartridge {} has no model_sha256", record.id))
        })?;
    Ok(Some((manifest, hash)))
}

/// Every registered model, oldest first.
pub fn list(registry: &Registry) -> Result<Vec<(Record, pxos_cart::Manifest)>> {
    let mut out = Vec::new();
    for record in registry.list().map_err(cart_error)? {
        if let Some((manifest, _)) = model_of(registry, &record)? {
            out.push((record, manifest));
        }
    }
    Ok(out)
}

/// Packs `model_path` as a model cartridge in `staging_parent` and registers it.
pub fn register(
    registry: &Registry,
    staging_parent: &Path,
    model_path: &Path,
    registration: &Registration<'_>,
    limits: &pxos_pixel::Limits,
) -> Result<Record> {
    let model = ModelFile::open(model_path, limits)?;
    let name = registration.name.unwrap_or(&model.manifest.name);
    // The parent: named, or the registered model whose weights this one was made from.
    let parent = match registration.parent {
        Some(parent) => Some(registry.find(parent).map_err(cart_error)?.id),
        None => {
            let from = model
                .manifest
                .provenance
                .get("parent")
                .and_then(|p| p.as_str())
                .and_then(Hash256::parse);
            match from {
                None => None,
                Some(hash) => list(registry)?
                    .into_iter()
                    .find(|(_, m)| {
                        m.metrics.get("model_sha256").and_then(|h| h.as_str())
                            == Some(&hash.to_hex())
                    })
                    .map(|(record, _)| record.id),
            }
        }
    };
    let config = model.manifest.llama();
    let mut metrics = json!({
        "kind": "model",
        "model_sha256": model.payload_sha256,
        "architecture": "llama",
        "parameters": config.parameter_count(),
        "dtypes": model.manifest.tensors.iter().map(|t| t.dtype.clone()).collect::<std::collections::BTreeSet<_>>(),
    });
    if let Some(val) = model.manifest.provenance.pointer("/report/val_loss") {
        metrics["val_loss"] = val.clone();
    }
    let source = json!({
        "name": name,
        "version": registration.version,
        "parent": parent,
        "creator": {"kind": match registration.actor.kind { ActorKind::Llm => "llm", _ => "human" }, "name": registration.actor.name},
        "notes": format!("model {} ({} parameters)", model.manifest.name, config.parameter_count()),
        "reason": registration.reason,
        "capabilities": ["model"],
        "metrics": metrics,
    });
    let staging_path = staging_parent.join(format!(".pxos-tmp-model-{}", std::process::id()));
    let (staging, ()) =
        pxos_pixel::durable::Temporary::create(staging_path, |p| std::fs::create_dir_all(p))
            .map_err(|e| Error::io(e, staging_parent))?;
    let dir = staging.path().join("cart");
    std::fs::create_dir(&dir).map_err(|e| Error::io(e, &dir))?;
    // Scratch files inside a fresh staging directory (the invariant's exception).
    std::fs::copy(model_path, dir.join(MODEL_FILE)).map_err(|e| Error::io(e, model_path))?;
    std::fs::write(dir.join("cartridge.json"), source.to_string())
        .map_err(|e| Error::io(e, &dir))?;
    let pxa = staging.path().join("model.pxa");
    pxos_cart::pack(&dir, &pxa, &pxos_cart::Limits::default()).map_err(cart_error)?;
    registry
        .register(&pxa, registration.actor.clone(), registration.reason, false)
        .map_err(cart_error)
}

/// Loads a registered model (`NAME` or `NAME@VERSION`): reads `model.png`
/// from the cartridge by random access and checks it against the manifest.
pub fn load(registry: &Registry, query: &str, limits: &pxos_pixel::Limits) -> Result<ModelFile> {
    let record = registry.find(query).map_err(cart_error)?;
    let Some((manifest, hash)) = model_of(registry, &record)? else {
        return Err(Error::usage(format!(
            "{} is a cartridge but not a model",
            record.id
        )));
    };
    let entry = manifest
        .files
        .iter()
        .find(|f| f.path == MODEL_FILE)
        .ok_or_else(|| {
            Error::bad_input(format!("model cartridge {} has no {MODEL_FILE}", record.id))
        })?;
    let path = registry.path_of(&record);
    let mut reader = PixelReader::open(&path, &limits.clone())?;
    let head = reader.read_at(4, 4)?;
    let manifest_len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as u64;
    let size = usize::try_from(entry.size).map_err(|_| Error::bad_input("model too large"))?;
    if size > limits.max_in_memory {
        return Err(Error::bad_input(format!(
            "{MODEL_FILE} of {size} bytes passes the in-memory limit"
        )));
    }
    let png = reader.read_at(8 + manifest_len + entry.offset, size)?;
    if Hash256::of(&png).to_hex() != entry.sha256 {
        return Err(Error::tampered(format!(
            "{MODEL_FILE} in {} does not match its manifest hash",
            record.id
        ))
        .with_path(&path));
    }
    let model = ModelFile::from_png(&png, limits)?;
    if model.payload_sha256 != hash {
        return Err(Error::tampered(format!(
            "the weights in {} are not the registered ones",
            record.id
        ))
        .with_path(&path));
    }
    Ok(model)
}
