//! Cartridges on a remote: `carts/NAME@VERSION.json` (the record, its
//! lineage and its Genesis result where it was pushed from) and
//! `carts/SHA.pxa` (the cartridge itself). A pull checks the cartridge's
//! hash and registers it as experimental, naming the remote in the log:
//! it becomes current only through the local rules (a local Genesis pass
//! and a person's promote).

use std::path::Path;

use pxos_cart::{Actor, GenesisRun, Origin, Record, Registry};
use pxos_pixel::Hash256;
use serde::{Deserialize, Serialize};

use crate::client::Remote;
use crate::error::{Error, Result};
use crate::fs::Meter;

const CART_FORMAT: &str = "pxos-remote-cart";

/// What the remote keeps beside a cartridge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartMeta {
    pub format: String,
    pub version: u32,
    pub record: Record,
    /// Its ancestors, nearest first, as registered where it was pushed from.
    pub lineage: Vec<Record>,
    pub genesis: Option<GenesisRun>,
    pub pushed: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CartReport {
    pub remote: String,
    pub cartridge: String,
    pub sha256: Hash256,
    pub bytes: u64,
    pub up_to_date: bool,
    /// After a pull: its status here (always experimental when new).
    pub status: Option<String>,
    pub genesis_passed_there: Option<bool>,
}

fn meta_key(id: &str) -> String {
    format!("carts/{id}.json")
}

fn pxa_key(sha: &Hash256) -> String {
    format!("carts/{}.pxa", sha.to_hex())
}

fn read_meta(remote: &Remote, id: &str) -> Result<Option<CartMeta>> {
    let key = meta_key(id);
    let Some(bytes) = remote.get(&key)? else {
        return Ok(None);
    };
    let meta: CartMeta = serde_json::from_slice(&bytes)
        .map_err(|err| Error::Remote(format!("{key}: not a cartridge record: {err}")))?;
    if meta.format != CART_FORMAT || meta.version != 1 || meta.record.id != id {
        return Err(Error::Remote(format!("{key}: not the record of {id}")));
    }
    Ok(Some(meta))
}

/// Pushes cartridge `query` (NAME@VERSION) of `registry` to `remote`.
pub fn push(
    home: &Path,
    registry: &Registry,
    remote: &Remote,
    query: &str,
    meter: &dyn Meter,
) -> Result<CartReport> {
    remote.require_s3("take a cartridge")?;
    let record = registry.find(query)?;
    let path = registry.path_of(&record);
    let bytes = std::fs::metadata(&path)
        .map_err(|err| Error::io(err, &path))?
        .len();
    let mut report = CartReport {
        remote: remote.config.name.clone(),
        cartridge: record.id.clone(),
        sha256: record.sha256,
        bytes,
        up_to_date: false,
        status: None,
        genesis_passed_there: None,
    };
    if let Some(theirs) = read_meta(remote, &record.id)? {
        if theirs.record.sha256 != record.sha256 {
            return Err(Error::Refused(format!(
                "remote {:?} holds another {} (hash {}); a version is never replaced: bump the version",
                remote.config.name,
                record.id,
                theirs.record.sha256.short()
            )));
        }
        if remote.head(&pxa_key(&record.sha256))? == Some(bytes) {
            report.up_to_date = true;
            return Ok(report);
        }
    }
    meter.phase("push", bytes);
    // A large cartridge goes in parts; an interrupted push resumes them.
    let resume = home
        .join("remotes")
        .join(&remote.config.name)
        .join("uploads")
        .join(format!("{}.pxa.json", record.sha256.to_hex()));
    remote.upload_file(&pxa_key(&record.sha256), &path, &resume, &|n| {
        meter.position(n)
    })?;
    let (mut lineage, _) = registry.lineage(&record.id)?;
    lineage.retain(|r| r.id != record.id);
    let genesis = registry.genesis_run(&record.sha256)?;
    report.genesis_passed_there = genesis.as_ref().map(|g| g.passed);
    let meta = CartMeta {
        format: CART_FORMAT.into(),
        version: 1,
        record,
        lineage,
        genesis,
        pushed: pxos_fs::time::now_rfc3339(),
    };
    // The record goes last: a cartridge is on the remote once it is there.
    remote.put(
        &meta_key(&meta.record.id),
        serde_json::to_vec_pretty(&meta).expect("records serialize"),
    )?;
    Ok(report)
}

/// Pulls cartridge `id` (NAME@VERSION) from `remote` into `registry`, as
/// experimental. `home` keeps the download while it is under way.
pub fn pull(
    home: &Path,
    registry: &Registry,
    remote: &Remote,
    id: &str,
    actor: Actor,
    meter: &dyn Meter,
) -> Result<CartReport> {
    if !id.contains('@') {
        return Err(Error::Usage(format!(
            "{id}: name the version to pull (NAME@VERSION)"
        )));
    }
    let meta = read_meta(remote, id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "remote {:?} has no cartridge {id}",
            remote.config.name
        ))
    })?;
    let sha = meta.record.sha256;
    let mut report = CartReport {
        remote: remote.config.name.clone(),
        cartridge: id.to_string(),
        sha256: sha,
        bytes: meta.record.file_len,
        up_to_date: false,
        status: None,
        genesis_passed_there: meta.genesis.as_ref().map(|g| g.passed),
    };
    if let Ok(mine) = registry.find(id) {
        if mine.sha256 != sha {
            return Err(Error::Refused(format!(
                "this home has another {id} (hash {}) than remote {:?} (hash {})",
                mine.sha256.short(),
                remote.config.name,
                sha.short()
            )));
        }
        report.up_to_date = true;
        report.status = Some(mine.status.name().to_string());
        return Ok(report);
    }
    let key = pxa_key(&sha);
    let size = remote.head(&key)?.ok_or_else(|| {
        Error::Remote(format!("{key} is missing though {} names it", meta_key(id)))
    })?;
    meter.phase("pull", size);
    let part = home
        .join("remotes")
        .join(&remote.config.name)
        .join("incoming")
        .join(format!("{}.pxa.part", sha.to_hex()));
    remote.download(&key, size, &part, &|n| meter.position(n))?;
    let checked = pxos_pixel::verify_file(&part, &pxos_pixel::Limits::default(), &mut |_| {});
    match checked {
        Ok(decoded) if decoded.header.sha256 == sha.0 => {}
        Ok(decoded) => {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Remote(format!(
                "{key} holds a cartridge with hash {}, not {}",
                Hash256(decoded.header.sha256).short(),
                sha.short()
            )));
        }
        Err(err) => {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Remote(format!("{key}: {err}")));
        }
    }
    let origin = Origin {
        remote: remote.config.name.clone(),
        url: remote.config.url.clone(),
        genesis_passed: meta.genesis.as_ref().map(|g| g.passed),
        status: meta.record.status.name().to_string(),
    };
    let reason = format!(
        "pulled from remote {} ({})",
        remote.config.name, remote.config.url
    );
    let record = registry.register_from(&part, actor, &reason, false, Some(origin))?;
    let _ = std::fs::remove_file(&part);
    report.status = Some(record.status.name().to_string());
    Ok(report)
}
