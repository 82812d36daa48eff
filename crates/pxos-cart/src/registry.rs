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

/// The last Genesis run on one exact cartridge hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisRun {
    pub passed: bool,
    pub time: String,
    pub failed: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: String,
    version: u32,
    current: Option<String>,
    cartridges: Vec<Record>,
    #[serde(default)]
    genesis: std::collections::BTreeMap<String, GenesisRun>,
}

impl State {
    fn index(&self, id: &str) -> Option<usize> {
        self.cartridges.iter().position(|c| c.id == id)
    }

    /// Makes `id` current; the old current becomes `old_status`.
    fn make_current(&mut self, id: &str, old_status: Status) {
        if let Some(old) = self.current.take().and_then(|old| self.index(&old)) {
            self.cartridges[old].status = old_status;
        }
        if let Some(new) = self.index(id) {
            self.cartridges[new].status = Status::Current;
            self.current = Some(id.to_string());
        }
    }
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
        let mut state = if path.exists() {
            let bytes = std::fs::read(&path)?;
            let (_, json) = pxos_pixel::decode_from_slice(&bytes, &PixelLimits::default())
                .map_err(|err| Error::Pixel(err.with_path(&path)))?;
            serde_json::from_slice(&json).map_err(|err| {
                Error::Format(format!("{}: invalid registry: {err}", path.display()))
            })?
        } else {
            State {
                format: "pxos-cartridge-registry".into(),
                version: 1,
                ..State::default()
            }
        };
        self.reconcile(&mut state)?;
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

    /// Rolls the state forward to the last logged registry action. Every change
    /// is logged first and saved second, so after a crash between the two the
    /// log says what the state must become (the log is the write-ahead log).
    fn reconcile(&self, state: &mut State) -> Result<()> {
        let Some(last) = self.log.entries()?.pop() else {
            return Ok(());
        };
        let Some(id) = last.cartridge.clone() else {
            return Ok(());
        };
        match last.action.as_str() {
            "register" if state.index(&id).is_none() => {
                let Some(sha) = last.targets.first() else {
                    return Ok(());
                };
                let stored = self.dir.join(format!("{sha}.pxa"));
                let (manifest, _) = read_manifest(&stored, &Limits::default())?;
                let status = if last.reason.ends_with("(as current)") && state.current.is_none() {
                    Status::Current
                } else {
                    Status::Experimental
                };
                state.cartridges.push(record_of(
                    &manifest,
                    sha.clone(),
                    status,
                    std::fs::metadata(&stored)?.len(),
                ));
                if status == Status::Current {
                    state.current = Some(id);
                }
            }
            "promote" | "promote-forced" if state.current.as_deref() != Some(id.as_str()) => {
                state.make_current(&id, Status::Historical);
            }
            "rollback" if state.current.as_deref() != Some(id.as_str()) => {
                state.make_current(&id, Status::Deprecated);
            }
            "genesis-check" => {
                if let Some(sha) = last.targets.first()
                    && !state.genesis.contains_key(sha)
                {
                    let passed = last.reason.starts_with("passed");
                    state.genesis.insert(
                        sha.clone(),
                        GenesisRun {
                            passed,
                            time: last.time.clone(),
                            failed: Vec::new(),
                        },
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The Genesis run recorded for a cartridge hash.
    pub fn genesis_run(&self, sha256: &str) -> Result<Option<GenesisRun>> {
        Ok(self.state()?.genesis.get(sha256).cloned())
    }

    /// Records a Genesis run on `record`'s exact hash (logged).
    pub fn record_genesis(
        &self,
        record: &Record,
        passed: bool,
        failed: Vec<String>,
        actor: Actor,
    ) -> Result<()> {
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let mut state = self.state()?;
        let summary = if passed {
            "passed".to_string()
        } else {
            format!("failed: {}", failed.join(", "))
        };
        self.log.append(
            actor,
            "genesis-check",
            vec![record.sha256.clone()],
            Some(record.id.clone()),
            &summary,
        )?;
        state.genesis.insert(
            record.sha256.clone(),
            GenesisRun {
                passed,
                time: pxos_fs::time::now_rfc3339(),
                failed,
            },
        );
        self.save(&state)
    }

    /// Promotes a cartridge to current. Needs a passing Genesis run on its exact
    /// hash and a person's approval; `force` skips the Genesis requirement and
    /// is recorded as forced. An LLM can neither approve nor force.
    pub fn promote(
        &self,
        query: &str,
        approver: Option<Actor>,
        force: bool,
        reason: &str,
    ) -> Result<Record> {
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let mut state = self.state()?;
        let record = self.find_in(&state, query)?;
        if record.status == Status::Current {
            return Err(Error::Usage(format!("{} is already current", record.id)));
        }
        let approver = approver.ok_or_else(|| {
            Error::Refused(format!(
                "promoting {} needs a person's approval (--approved-by NAME)",
                record.id
            ))
        })?;
        if approver.kind == crate::cartridge::CreatorKind::Llm {
            return Err(Error::Refused(format!(
                "{} is an LLM; only a person can approve a promotion",
                approver.name
            )));
        }
        if !force {
            match state.genesis.get(&record.sha256) {
                Some(run) if run.passed => {}
                Some(run) => {
                    return Err(Error::Refused(format!(
                        "Genesis failed on {} ({}); fix it, or --force (recorded as forced)",
                        record.id,
                        run.failed.join(", ")
                    )));
                }
                None => {
                    return Err(Error::Refused(format!(
                        "Genesis has not run on this exact cartridge ({}, sha256 {}...); run `pxos cart test {}` first",
                        record.id,
                        &record.sha256[..16],
                        record.id
                    )));
                }
            }
        }
        let action = if force { "promote-forced" } else { "promote" };
        self.log.append(
            approver,
            action,
            vec![record.sha256.clone()],
            Some(record.id.clone()),
            reason,
        )?;
        state.make_current(&record.id, Status::Historical);
        self.save(&state)?;
        Ok(state.cartridges[state.index(&record.id).expect("exists")].clone())
    }

    /// Makes an earlier cartridge current again, as a new forward entry; the
    /// abandoned current one becomes deprecated. Nothing is deleted.
    pub fn rollback(&self, query: &str, actor: Actor, reason: &str) -> Result<Record> {
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let mut state = self.state()?;
        let record = self.find_in(&state, query)?;
        if record.status == Status::Current {
            return Err(Error::Usage(format!("{} is already current", record.id)));
        }
        self.log.append(
            actor,
            "rollback",
            vec![record.sha256.clone()],
            Some(record.id.clone()),
            reason,
        )?;
        state.make_current(&record.id, Status::Deprecated);
        self.save(&state)?;
        Ok(state.cartridges[state.index(&record.id).expect("exists")].clone())
    }

    /// The chain of parents from `query` back to its root (cycle-safe; a
    /// missing parent ends the chain with a note).
    pub fn lineage(&self, query: &str) -> Result<(Vec<Record>, Option<String>)> {
        let state = self.state()?;
        let mut chain = vec![self.find_in(&state, query)?];
        let mut seen = std::collections::BTreeSet::new();
        seen.insert(chain[0].id.clone());
        loop {
            let Some(parent) = chain.last().and_then(|r| r.parent.clone()) else {
                return Ok((chain, None));
            };
            if !seen.insert(parent.clone()) {
                return Ok((
                    chain,
                    Some(format!("cycle: {parent} appears twice in the lineage")),
                ));
            }
            match state.cartridges.iter().find(|c| c.id == parent) {
                Some(record) => chain.push(record.clone()),
                None => return Ok((chain, Some(format!("parent {parent} is not registered")))),
            }
        }
    }

    fn find_in(&self, state: &State, query: &str) -> Result<Record> {
        state
            .cartridges
            .iter()
            .rev()
            .find(|c| c.id == query || c.name == query)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("no cartridge '{query}' is registered")))
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

/// Renders a lineage (child first) as a PNG graph: one square per cartridge,
/// coloured by its hash, oldest at the top, joined by white edges.
pub fn lineage_png(chain: &[Record]) -> Vec<u8> {
    const SIDE: usize = 48;
    const GAP: usize = 24;
    const WIDTH: usize = 96;
    let height = (chain.len().max(1)) * (SIDE + GAP) + GAP;
    let mut rgb = vec![16u8; WIDTH * height * 3];
    let mut put = |x: usize, y: usize, colour: [u8; 3]| {
        if x < WIDTH && y < height {
            rgb[(y * WIDTH + x) * 3..(y * WIDTH + x) * 3 + 3].copy_from_slice(&colour);
        }
    };
    for (row, record) in chain.iter().rev().enumerate() {
        let top = GAP + row * (SIDE + GAP);
        let bytes: Vec<u8> = (0..3)
            .map(|i| u8::from_str_radix(&record.sha256[i * 2..i * 2 + 2], 16).unwrap_or(128))
            .collect();
        let colour = [bytes[0] | 0x40, bytes[1] | 0x40, bytes[2] | 0x40];
        for y in top..top + SIDE {
            for x in (WIDTH - SIDE) / 2..(WIDTH + SIDE) / 2 {
                put(x, y, colour);
            }
        }
        if row + 1 < chain.len() {
            for y in top + SIDE..top + SIDE + GAP {
                put(WIDTH / 2, y, [255, 255, 255]);
                put(WIDTH / 2 - 1, y, [255, 255, 255]);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header to memory cannot fail");
    writer
        .write_image_data(&rgb)
        .expect("the buffer matches the image");
    writer
        .finish()
        .expect("finishing a PNG in memory cannot fail");
    out
}
