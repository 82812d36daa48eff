//! The cartridge registry: every cartridge ever registered, its status, and
//! which one is current. Cartridges are copied into the registry by content
//! (`carts/<sha256>.pxa`) and never deleted.
//!
//! Statuses: `experimental` (registered, not promoted), `current` (exactly
//! one), `historical` (was current, replaced by a promotion), `deprecated`
//! (abandoned by a rollback).
//!
//! The evolution log is the registry's write-ahead log: every change is a
//! typed log entry, appended first, and `registry.png` is a checkpoint that
//! records the log position it reflects. Reading the registry verifies the
//! log, checks that the log passes through that position, and replays at
//! most one registry entry after it (the one a crash between the two writes
//! can leave). More than one, or a log that does not pass through the
//! checkpoint, is reported as tampering; `fsck --repair` rebuilds the
//! checkpoint from the log and the stored cartridges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pxos_fs::WriteLock;
use pxos_pixel::{Hash256, durable};
use serde::{Deserialize, Serialize};

use crate::cartridge::{Creator, Limits, read_manifest};
use crate::checkpoint::{self, CheckpointFile, Checkpointed, FsckReport, Intent};
use crate::error::{Error, Result};
use crate::log::{Action, Actor, ActorKind, CartRef, Domain, EvolutionLog, LogEntry, LogPosition};

/// The `format` of `registry.png`.
pub const REGISTRY_FORMAT: &str = "pxos-cartridge-registry";
/// Its version.
pub const REGISTRY_VERSION: u32 = 2;

/// Where a cartridge stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Experimental,
    Current,
    Historical,
    Deprecated,
}

impl Status {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Experimental => "experimental",
            Status::Current => "current",
            Status::Historical => "historical",
            Status::Deprecated => "deprecated",
        }
    }
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
    pub sha256: Hash256,
    pub status: Status,
    /// When it was registered (the time of its log entry).
    pub registered: String,
    /// Bytes of the stored `.pxa`.
    pub file_len: u64,
}

impl Record {
    /// The log's name for this cartridge.
    pub fn cart_ref(&self) -> CartRef {
        CartRef {
            name: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256,
        }
    }
}

/// The last Genesis run on one exact cartridge hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisRun {
    pub passed: bool,
    pub time: String,
    pub failed: Vec<String>,
}

/// A rollback an LLM asked for, waiting for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The log entry of the request.
    pub seq: u64,
    pub cartridge: String,
    pub by: Actor,
    pub reason: String,
}

/// What the registry knows (what `registry.png` holds).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub version: u32,
    /// The log position this state reflects.
    pub log: LogPosition,
    pub current: Option<String>,
    pub cartridges: Vec<Record>,
    pub genesis: BTreeMap<Hash256, GenesisRun>,
    pub requests: Vec<RollbackRequest>,
    /// The change being made when this checkpoint was saved: the one log
    /// entry a crash may leave unapplied must be exactly this.
    pub pending: Option<Intent>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: REGISTRY_FORMAT.into(),
            version: REGISTRY_VERSION,
            log: LogPosition::default(),
            current: None,
            cartridges: Vec::new(),
            genesis: BTreeMap::new(),
            requests: Vec::new(),
            pending: None,
        }
    }
}

impl Checkpointed for State {
    const DOMAIN: Domain = Domain::Registry;
    const WHAT: &'static str = "registry";
    const FSCK: &'static str = "pxos cart fsck";
    const LABELS: (durable::Label, durable::Label) =
        (durable::label::REGISTRY_INTENT, durable::label::REGISTRY);

    fn validate(&self) -> std::result::Result<(), String> {
        State::validate(self)
    }

    fn records(&self) -> usize {
        self.cartridges.len()
    }

    fn apply(&mut self, entry: &LogEntry) -> std::result::Result<(), String> {
        State::apply(self, entry)
    }

    fn same_as(&self, other: &State) -> bool {
        self.current == other.current
            && self.cartridges == other.cartridges
            && self.genesis == other.genesis
            && self.requests == other.requests
    }

    crate::checkpoint_fields!(log, pending);
}

impl State {
    fn index(&self, id: &str) -> Option<usize> {
        self.cartridges.iter().position(|c| c.id == id)
    }

    fn record(&self, id: &str) -> Option<&Record> {
        self.cartridges.iter().find(|c| c.id == id)
    }

    /// The current record.
    pub fn current_record(&self) -> Option<&Record> {
        self.current.as_deref().and_then(|id| self.record(id))
    }

    /// The record `cartridge` names, if its hash matches.
    fn named(&self, cartridge: &CartRef) -> std::result::Result<usize, String> {
        let index = self
            .index(&cartridge.id())
            .ok_or_else(|| format!("{} is not registered", cartridge.id()))?;
        if self.cartridges[index].sha256 != cartridge.sha256 {
            return Err(format!(
                "{} is registered with sha256 {}, not {}",
                cartridge.id(),
                self.cartridges[index].sha256.short(),
                cartridge.sha256.short()
            ));
        }
        Ok(index)
    }

    /// Makes `index` current; the old current becomes `old_status`.
    fn make_current(&mut self, index: usize, old_status: Status) {
        if let Some(old) = self.current.take().and_then(|old| self.index(&old)) {
            self.cartridges[old].status = old_status;
        }
        self.cartridges[index].status = Status::Current;
        self.current = Some(self.cartridges[index].id.clone());
    }

    /// Applies one registry entry. `Err` says why the entry cannot follow this
    /// state (the log and the registry disagree).
    pub fn apply(&mut self, entry: &LogEntry) -> std::result::Result<(), String> {
        match &entry.action {
            Action::Register {
                cartridge,
                parent,
                creator,
                file_len,
                as_current,
                ..
            } => {
                if self.index(&cartridge.id()).is_some() {
                    return Err(format!("it registers {} a second time", cartridge.id()));
                }
                if *as_current && self.current.is_some() {
                    return Err(format!(
                        "it registers {} as current while {} is current",
                        cartridge.id(),
                        self.current.as_deref().unwrap_or_default()
                    ));
                }
                self.cartridges.push(Record {
                    id: cartridge.id(),
                    name: cartridge.name.clone(),
                    version: cartridge.version.clone(),
                    parent: parent.clone(),
                    creator: creator.clone(),
                    sha256: cartridge.sha256,
                    status: if *as_current {
                        Status::Current
                    } else {
                        Status::Experimental
                    },
                    registered: entry.time.clone(),
                    file_len: *file_len,
                });
                if *as_current {
                    self.current = Some(cartridge.id());
                }
            }
            Action::GenesisCheck {
                cartridge,
                passed,
                failed,
            } => {
                self.named(cartridge)?;
                self.genesis.insert(
                    cartridge.sha256,
                    GenesisRun {
                        passed: *passed,
                        time: entry.time.clone(),
                        failed: failed.clone(),
                    },
                );
            }
            Action::Promote {
                cartridge, from, ..
            } => {
                let index = self.named(cartridge)?;
                self.check_from(from.as_ref())?;
                if self.cartridges[index].status == Status::Current {
                    return Err(format!(
                        "it promotes {}, which is already current",
                        cartridge.id()
                    ));
                }
                self.make_current(index, Status::Historical);
            }
            Action::Rollback {
                cartridge, from, ..
            } => {
                let index = self.named(cartridge)?;
                self.check_from(Some(from))?;
                if !matches!(
                    self.cartridges[index].status,
                    Status::Historical | Status::Deprecated
                ) {
                    return Err(format!(
                        "it rolls back to {}, which was never current",
                        cartridge.id()
                    ));
                }
                self.make_current(index, Status::Deprecated);
                self.requests.retain(|r| r.cartridge != cartridge.id());
            }
            Action::RollbackRequest { cartridge, .. } => {
                self.requests.push(RollbackRequest {
                    seq: entry.seq,
                    cartridge: cartridge.id(),
                    by: entry.actor.clone(),
                    reason: entry.reason.clone(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn check_from(&self, from: Option<&CartRef>) -> std::result::Result<(), String> {
        let current = self.current_record().map(Record::cart_ref);
        if current.as_ref() != from {
            return Err(format!(
                "it replaces {} as current, but the current cartridge is {}",
                from.map_or("nothing".into(), CartRef::id),
                current.map_or("none".into(), |c| c.id())
            ));
        }
        Ok(())
    }

    /// Checks the invariants a decoded state must hold.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != REGISTRY_FORMAT {
            return Err(format!("unknown format {:?}", self.format));
        }
        if self.version != REGISTRY_VERSION {
            return Err(format!(
                "format version {} (this pxOS reads version {REGISTRY_VERSION})",
                self.version
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for record in &self.cartridges {
            crate::cartridge::check_name(&record.name)
                .and_then(|()| crate::cartridge::check_semver(&record.version))
                .map_err(|err| format!("record {:?}: {err}", record.id))?;
            if record.id != format!("{}@{}", record.name, record.version) {
                return Err(format!(
                    "record {:?} does not match its name and version",
                    record.id
                ));
            }
            if !ids.insert(record.id.as_str()) {
                return Err(format!("{} is listed twice", record.id));
            }
        }
        let currents: Vec<&Record> = self
            .cartridges
            .iter()
            .filter(|c| c.status == Status::Current)
            .collect();
        let consistent = match (&self.current, currents.as_slice()) {
            (None, []) => true,
            (Some(id), [record]) => record.id == *id,
            _ => false,
        };
        if !consistent {
            return Err("it does not name exactly one current cartridge consistently".into());
        }
        Ok(())
    }
}

/// How a rollback request ended.
#[derive(Clone, Debug)]
pub enum RollbackOutcome {
    /// The rollback took effect.
    Applied(Record),
    /// It was recorded as a request; it waits for a person's approval.
    Requested { seq: u64 },
}

/// The registry in `$PXOS_HOME/carts`.
pub struct Registry {
    dir: PathBuf,
    file: CheckpointFile<State>,
    /// The limits a cartridge to register is read under.
    limits: Limits,
}

impl Registry {
    /// Opens the registry at `dir`, logging to `log`.
    pub fn open(dir: &Path, log: EvolutionLog) -> Result<Registry> {
        std::fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        Ok(Registry {
            dir: dir.to_path_buf(),
            file: CheckpointFile::new(dir.join("registry.png"), log),
            limits: Limits::default(),
        })
    }

    /// The same registry, reading cartridges to register under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Registry {
        self.limits = limits;
        self
    }

    /// The evolution log this registry writes to.
    pub fn log(&self) -> &EvolutionLog {
        self.file.log()
    }

    /// The checkpoint file.
    pub fn state_path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    fn lock(&self) -> Result<WriteLock> {
        Ok(WriteLock::acquire(&self.dir.join("lock"))?)
    }

    /// The checkpoint as saved, validated, or `None` when there is none.
    /// It is not checked against the log (see [`Registry::state`]).
    pub fn checkpoint(&self) -> Result<Option<State>> {
        self.file.load()
    }

    /// The state: the checkpoint, checked against the verified log, with the
    /// one registry entry a crash may have left unapplied replayed.
    pub fn state(&self) -> Result<State> {
        self.file.state()
    }

    /// Checks, reading only the end of the log, that it still passes through
    /// the registry's checkpoint and holds no change the registry never began.
    pub fn check_tail(&self) -> Result<()> {
        self.file.check_tail()
    }

    /// Checks that the registry and the log agree, without changing anything.
    pub fn check_against_log(&self) -> Result<()> {
        self.state().map(|_| ())
    }

    fn commit(
        &self,
        state: &mut State,
        actor: Actor,
        action: Action,
        reason: &str,
    ) -> Result<LogEntry> {
        self.file.commit(state, actor, action, reason)
    }

    /// The Genesis run recorded for a cartridge hash.
    pub fn genesis_run(&self, sha256: &Hash256) -> Result<Option<GenesisRun>> {
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
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let summary = if passed {
            "Genesis passed".to_string()
        } else {
            format!("Genesis failed: {}", failed.join(", "))
        };
        let action = Action::GenesisCheck {
            cartridge: record.cart_ref(),
            passed,
            failed,
        };
        self.commit(&mut state, actor, action, &summary)?;
        Ok(())
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
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let record = find_in(&state, query)?;
        if record.status == Status::Current {
            return Err(Error::Refused(format!("{} is already current", record.id)));
        }
        let approver = approver.ok_or_else(|| {
            Error::Refused(format!(
                "promoting {} needs a person's approval (--approved-by NAME)",
                record.id
            ))
        })?;
        check_person(&approver, "approve a promotion")?;
        if !force {
            check_genesis_pass(&state, &record)?;
        }
        let action = Action::Promote {
            cartridge: record.cart_ref(),
            from: state.current_record().map(Record::cart_ref),
            forced: force,
        };
        self.commit(&mut state, approver, action, reason)?;
        Ok(state.record(&record.id).cloned().expect("just promoted"))
    }

    /// Makes an earlier current cartridge current again, as a new forward
    /// entry; the abandoned current one becomes deprecated. Nothing is deleted.
    ///
    /// The target must have been current before and have a Genesis pass on
    /// record, and the rollback needs a reason. It takes effect with a person's
    /// approval: `approver`, or `actor` when the actor is a person. An LLM
    /// actor without an approver only records a request.
    pub fn rollback(
        &self,
        query: &str,
        actor: Actor,
        approver: Option<Actor>,
        reason: &str,
    ) -> Result<RollbackOutcome> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let record = find_in(&state, query)?;
        if reason.trim().is_empty() {
            return Err(Error::Refused(format!(
                "rolling back to {} needs a reason (--reason TEXT)",
                record.id
            )));
        }
        let Some(current) = state.current_record().cloned() else {
            return Err(Error::Refused(
                "there is no current cartridge to roll back from".into(),
            ));
        };
        if record.status == Status::Current {
            return Err(Error::Refused(format!("{} is already current", record.id)));
        }
        if !matches!(record.status, Status::Historical | Status::Deprecated) {
            return Err(Error::Refused(format!(
                "{} was never current: a rollback goes only to a cartridge that was current before (promote it instead: Genesis and a person's approval)",
                record.id
            )));
        }
        check_genesis_pass(&state, &record)?;
        let approver = match approver {
            Some(approver) => approver,
            None if actor.kind == ActorKind::Human => actor.clone(),
            None => {
                let action = Action::RollbackRequest {
                    cartridge: record.cart_ref(),
                    from: current.cart_ref(),
                };
                let entry = self.commit(&mut state, actor, action, reason)?;
                return Ok(RollbackOutcome::Requested { seq: entry.seq });
            }
        };
        check_person(&approver, "approve a rollback")?;
        let requested_by = (approver != actor).then_some(actor);
        let action = Action::Rollback {
            cartridge: record.cart_ref(),
            from: current.cart_ref(),
            requested_by,
        };
        self.commit(&mut state, approver, action, reason)?;
        Ok(RollbackOutcome::Applied(
            state.record(&record.id).cloned().expect("just rolled back"),
        ))
    }

    /// The chain of parents from `query` back to its root (cycle-safe; a
    /// missing parent ends the chain with a note).
    pub fn lineage(&self, query: &str) -> Result<(Vec<Record>, Option<String>)> {
        let state = self.state()?;
        let mut chain = vec![find_in(&state, query)?];
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
            match state.record(&parent) {
                Some(record) => chain.push(record.clone()),
                None => return Ok((chain, Some(format!("parent {parent} is not registered")))),
            }
        }
    }

    /// Every registered cartridge, oldest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        Ok(self.state()?.cartridges)
    }

    /// The current cartridge, if any.
    pub fn current(&self) -> Result<Option<Record>> {
        Ok(self.state()?.current_record().cloned())
    }

    /// A cartridge by `name@version`, or by name alone (its newest registration).
    pub fn find(&self, query: &str) -> Result<Record> {
        find_in(&self.state()?, query)
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
        self.register_from(path, actor, reason, make_current, None)
    }

    /// [`Registry::register`], recording where the cartridge came from
    /// (a pull from a remote registers it experimental, whatever it was there).
    pub fn register_from(
        &self,
        path: &Path,
        actor: Actor,
        reason: &str,
        make_current: bool,
        origin: Option<crate::log::Origin>,
    ) -> Result<Record> {
        let (manifest, sha) = read_manifest(path, &self.limits)?;
        // A full decode: never register a damaged cartridge.
        pxos_pixel::verify_file(path, &self.limits.pixel, &mut |_| {})?;
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let id = manifest.id();
        if state.index(&id).is_some() {
            return Err(Error::Refused(format!(
                "{id} is already registered (bump the version)"
            )));
        }
        let sha = Hash256(sha);
        let stored = self.dir.join(format!("{sha}.pxa"));
        if !stored.exists() {
            // Streamed, not read whole: a cartridge may be large.
            let copied = (|| -> std::io::Result<()> {
                let mut source = std::fs::File::open(path)?;
                let mut target = durable::AtomicFile::create(
                    &stored,
                    pxos_pixel::durable::label::REGISTRY_CARTRIDGE,
                )?;
                std::io::copy(&mut source, target.file())?;
                target.after_write();
                target.commit()
            })();
            copied.map_err(|err| Error::from(err).with_path(&stored))?;
        }
        let action = Action::Register {
            cartridge: CartRef {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                sha256: sha,
            },
            parent: manifest.parent.clone(),
            creator: manifest.creator.clone(),
            file_len: std::fs::metadata(&stored)
                .map_err(|err| Error::from(err).with_path(&stored))?
                .len(),
            as_current: make_current && state.current.is_none(),
            origin,
        };
        self.commit(&mut state, actor, action, reason)?;
        Ok(state.record(&id).cloned().expect("just registered"))
    }

    /// Checks the registry against the log and the stored cartridges. With
    /// `repair`, rebuilds `registry.png` from the log (the damaged one is kept
    /// beside it as `registry.png.damaged-<time>`). Nothing is deleted.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport> {
        // A check only reads (on a read-only home too); a repair writes.
        let _write_lock = if repair { Some(self.lock()?) } else { None };
        let _read_lock = if repair {
            None
        } else {
            pxos_fs::ReadLock::acquire(&self.dir.join("lock"))?
        };
        let mut report = FsckReport::default();
        let Some(rebuilt) = self.file.fsck_log(&mut report) else {
            return Ok(report);
        };
        // Every recorded cartridge is stored and intact.
        let mut known = std::collections::BTreeSet::new();
        for record in &rebuilt.cartridges {
            known.insert(record.sha256);
            let path = self.path_of(record);
            match read_manifest(&path, &Limits::default()) {
                Ok((_, sha)) if Hash256(sha) == record.sha256 => {}
                Ok(_) => report.unrecovered.push(format!(
                    "{}: the stored cartridge of {} does not match its hash",
                    path.display(),
                    record.id
                )),
                Err(err) => report.unrecovered.push(format!(
                    "{}: the stored cartridge of {} is missing or damaged ({err})",
                    path.display(),
                    record.id
                )),
            }
        }
        // Stored cartridges no log entry registers.
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            let names: Vec<String> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect();
            report.leftovers = checkpoint::leftovers(&self.dir);
            let mut strays: Vec<String> = names
                .into_iter()
                .filter(|name| !name.starts_with(durable::TEMP_PREFIX))
                .filter(|name| {
                    name.strip_suffix(".pxa").is_some_and(|stem| {
                        Hash256::parse(stem).is_none_or(|hash| !known.contains(&hash))
                    })
                })
                .collect();
            strays.sort();
            for name in strays {
                report.orphans.push(format!(
                    "{}: a stored cartridge that no log entry registers (kept; `pxos cart register` it to use it)",
                    self.dir.join(name).display()
                ));
            }
        }
        if repair {
            self.file.repair(&rebuilt, &mut report)?;
        }
        Ok(report)
    }
}

fn find_in(state: &State, query: &str) -> Result<Record> {
    state
        .cartridges
        .iter()
        .rev()
        .find(|c| c.id == query || c.name == query)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("no cartridge '{query}' is registered")))
}

fn check_person(approver: &Actor, what: &str) -> Result<()> {
    match approver.kind {
        ActorKind::Human => Ok(()),
        ActorKind::Llm => Err(Error::Refused(format!(
            "{} is an LLM; only a person can {what}",
            approver.name
        ))),
        ActorKind::System => Err(Error::Refused(format!(
            "{} is pxOS itself; only a person can {what}",
            approver.name
        ))),
    }
}

fn check_genesis_pass(state: &State, record: &Record) -> Result<()> {
    match state.genesis.get(&record.sha256) {
        Some(run) if run.passed => Ok(()),
        Some(run) => Err(Error::Refused(format!(
            "Genesis failed on {} ({}); fix it, or --force a promotion (recorded as forced)",
            record.id,
            run.failed.join(", ")
        ))),
        None => Err(Error::Refused(format!(
            "Genesis has not run on this exact cartridge ({}, sha256 {}...); run `pxos cart test {}` first",
            record.id,
            record.sha256.short(),
            record.id
        ))),
    }
}

/// Decodes and validates `registry.png`'s bytes. A damaged or hostile file is
/// an error, never a panic.
pub fn decode_state(bytes: &[u8]) -> Result<State> {
    checkpoint::decode(bytes)
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
        let [r, g, b] = [record.sha256.0[0], record.sha256.0[1], record.sha256.0[2]];
        let colour = [r | 0x40, g | 0x40, b | 0x40];
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
    pxos_pixel::plain_png(
        WIDTH as u32,
        height as u32,
        pxos_pixel::PlainColor::Rgb,
        &rgb,
    )
}
