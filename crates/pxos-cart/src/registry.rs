//! The cartridge registry: every cartridge ever registered, its status, and
//! which one is current. Cartridges are copied into the registry by content
//! (`carts/<sha256>.pxa`) and never deleted.
//!
//! Statuses: `experimental` (registered, not promoted), `current` (exactly
//! one), `historical` (was current, replaced by a promotion), `deprecated`
//! (abandoned by a rollback). Every change is appended to the evolution log.

use std::path::{Path, PathBuf};

use pxos_fs::WriteLock;
use pxos_pixel::{EncodeOptions, Kind, Limits as PixelLimits, durable};
use serde::{Deserialize, Serialize};

use crate::cartridge::{Creator, Limits, Manifest, read_manifest};
use crate::error::{Error, Result};
use crate::log::{Actor, EvolutionLog};

/// Where a cartridge stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Experimental,
    Current,
    Historical,
    Deprecated,
}

/// One registered cartridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `name@version`.
    pub id: String,
    pub name: String,
    pub version: String,
    pub parent: Option<String>,
    pub creator: Creator,
    /// SHA-256 of the cartridge payload.
    pub sha256: String,
    pub status: Status,
    pub registered: String,
    /// Bytes of the stored `.pxa`.
    pub file_len: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: String,
    version: u32,
    current: Option<String>,
    cartridges: Vec<Record>,
}

/// The registry in `$PXOS_HOME/carts`.
pub struct Registry {
    dir: PathBuf,
    log: EvolutionLog,
}

impl Registry {
    /// Opens the registry at `dir`, logging to `log`.
    pub fn open(dir: &Path, log: EvolutionLog) -> Result<Registry> {
        std::fs::create_dir_all(dir)?;
        Ok(Registry {
            dir: dir.to_path_buf(),
            log,
        })
    }

    /// The evolution log this registry writes to.
    pub fn log(&self) -> &EvolutionLog {
        &self.log
    }

    fn state(&self) -> Result<State> {
        let path = self.dir.join("registry.png");
        if !path.exists() {
            return Ok(State {
                format: "pxos-cartridge-registry".into(),
                version: 1,
                ..State::default()
            });
        }
        let bytes = std::fs::read(&path)?;
        let (_, json) = pxos_pixel::decode_from_slice(&bytes, &PixelLimits::default())
            .map_err(|err| Error::Pixel(err.with_path(&path)))?;
        let state: State = serde_json::from_slice(&json)
            .map_err(|err| Error::Format(format!("{}: invalid registry: {err}", path.display())))?;
        let currents = state
            .cartridges
            .iter()
            .filter(|c| c.status == Status::Current)
            .count();
        if state.format != "pxos-cartridge-registry"
            || currents > 1
            || (currents == 1) != state.current.is_some()
        {
            return Err(Error::Format(format!(
                "{}: the registry is inconsistent",
                path.display()
            )));
        }
        Ok(state)
    }

    fn save(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).map_err(|err| Error::Usage(err.to_string()))?;
        let png = pxos_pixel::encode_to_vec(&json, &EncodeOptions::kind(Kind::Table))?;
        durable::write_atomic(self.dir.join("registry.png"), &png, "registry")?;
        Ok(())
    }

    /// Every registered cartridge, oldest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        Ok(self.state()?.cartridges)
    }

    /// The current cartridge, if any.
    pub fn current(&self) -> Result<Option<Record>> {
        let state = self.state()?;
        Ok(state
            .current
            .and_then(|id| state.cartridges.into_iter().find(|c| c.id == id)))
    }

    /// A cartridge by `name@version`, or by name alone (its newest registration).
    pub fn find(&self, query: &str) -> Result<Record> {
        let cartridges = self.state()?.cartridges;
        cartridges
            .iter()
            .rev()
            .find(|c| c.id == query || c.name == query)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("no cartridge '{query}' is registered")))
    }

    /// The stored `.pxa` of a record.
    pub fn path_of(&self, record: &Record) -> PathBuf {
        self.dir.join(format!("{}.pxa", record.sha256))
    }

    /// Registers the cartridge at `path` as experimental (or as current when
    /// `make_current` and nothing is current yet). The file is copied into the
    /// registry and the registration is logged.
    pub fn register(
        &self,
        path: &Path,
        actor: Actor,
        reason: &str,
        make_current: bool,
    ) -> Result<Record> {
        let (manifest, sha) = read_manifest(path, &Limits::default())?;
        // A full decode: never register a damaged cartridge.
        pxos_pixel::verify_file(path, &PixelLimits::default(), &mut |_| {})?;
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let mut state = self.state()?;
        let id = manifest.id();
        if state.cartridges.iter().any(|c| c.id == id) {
            return Err(Error::Usage(format!(
                "{id} is already registered (bump the version)"
            )));
        }
        let sha = pxos_pixel::hex(&sha);
        let stored = self.dir.join(format!("{sha}.pxa"));
        if !stored.exists() {
            let bytes = std::fs::read(path)?;
            durable::write_atomic(&stored, &bytes, "registry-cartridge")?;
        }
        let status = if make_current && state.current.is_none() {
            Status::Current
        } else {
            Status::Experimental
        };
        let record = record_of(
            &manifest,
            sha.clone(),
            status,
            std::fs::metadata(&stored)?.len(),
        );
        self.log
            .append(actor, "register", vec![sha], Some(id.clone()), reason)?;
        if status == Status::Current {
            state.current = Some(id);
        }
        state.cartridges.push(record.clone());
        self.save(&state)?;
        Ok(record)
    }
}

fn record_of(manifest: &Manifest, sha256: String, status: Status, file_len: u64) -> Record {
    Record {
        id: manifest.id(),
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        parent: manifest.parent.clone(),
        creator: manifest.creator.clone(),
        sha256,
        status,
        registered: pxos_fs::time::now_rfc3339(),
        file_len,
    }
}
