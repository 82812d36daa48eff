//! The evolution log: append-only, hash-chained, pixel-native, typed.
//!
//! Each entry records its sequence number, time, actor (kind `human`, `llm`
//! or `system`, and name), a typed [`Action`], a reason written for people,
//! the previous entry's hash and its own hash: SHA-256 of the entry's JSON
//! with `hash` set to zeros. Code never reads the reason back; everything
//! recovery needs is in the action's fields.
//!
//! The entries live in a segmented log (`log/evolution/`, see
//! [`pxos_fs::seglog`]): one record per entry, appended in place and synced,
//! sealed into PXI segments of 256. An append costs the same at any length.
//! The segmented log's head is the anchor: it names the end of the log and,
//! while an append is under way, the entry being appended, so after a crash
//! the log ends at its head or, as pending, exactly at the entry that was
//! being appended; anything else (an entry appended or cut off by hand, a
//! deleted or garbled head) is tampering. The registry and the kernel store
//! each record the log position they reflect, so the log and their state
//! vouch for each other (see [`LogPosition::tail`]): cutting the log, its
//! head and its anchor back together is still caught. A log written by
//! pxOS 0.1 (`evolution.png` and `evolution.anchor`) is verified and migrated
//! on first use. See `docs/formats/evolution-log.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pxos_fs::WriteLock;
use pxos_fs::seglog::{self, SegLog};
use pxos_pixel::{Hash256, Kind, Limits, durable};
use serde::{Deserialize, Serialize};

use crate::cartridge::Creator;
use crate::error::{Error, Result};

/// The `format` of the log file.
pub const LOG_FORMAT: &str = "pxos-evolution-log";
/// The log format version this code reads and writes.
pub const LOG_VERSION: u32 = 2;
/// The `format` of the anchor file.
pub const ANCHOR_FORMAT: &str = "pxos-evolution-anchor";
/// Longest actor name accepted.
pub const MAX_ACTOR_NAME: usize = 256;

/// What kind of actor did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A person.
    Human,
    /// A language model (it may propose and request, never approve).
    Llm,
    /// pxOS itself, acting on its own rules (first install, boot counting).
    System,
}

impl ActorKind {
    /// `human`, `llm` or `system`.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Human => "human",
            ActorKind::Llm => "llm",
            ActorKind::System => "system",
        }
    }
}

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
}

impl Actor {
    /// A person.
    pub fn human(name: &str) -> Actor {
        Actor {
            kind: ActorKind::Human,
            name: name.to_string(),
        }
    }

    /// pxOS acting on its own rules.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            name: "pxos".into(),
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty()
            || self.name.len() > MAX_ACTOR_NAME
            || self.name.chars().any(char::is_control)
        {
            return Err(format!(
                "actor name {:?} is empty, longer than {MAX_ACTOR_NAME} bytes or has control characters",
                self.name.chars().take(40).collect::<String>()
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.kind.name())
    }
}

/// A cartridge as the log names it: name, version and exact hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartRef {
    pub name: String,
    pub version: String,
    pub sha256: Hash256,
}

impl CartRef {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Why the current kernel changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum SwitchCause {
    /// A person switched by hand.
    Manual,
    /// A person rolled back.
    Rollback,
    /// The running kernel called SELF_MODIFY with this module.
    SelfModify { module: u32 },
    /// The running kernel called VERSION_SWITCH.
    VersionSwitch,
    /// The current cartridge (this hash) brings its own kernel.
    Cartridge { sha256: Hash256 },
}

/// How a kernel boot ended, as far as boot counting cares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum KernelOutcome {
    /// It halted cleanly: it is good now.
    Good,
    /// It failed (`why` is for people); `tries_left` after this boot, and the
    /// kernel the store reverted to when it used up its tries.
    Failed {
        why: String,
        tries_left: u32,
        reverted_to: Option<u32>,
    },
}

/// Where a registered cartridge came from: the remote it was pulled from,
/// and what that remote said of it (for people; locally it is experimental
/// until a local Genesis pass and a person promote it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The remote's name in this home.
    pub remote: String,
    /// The remote's URL (never with credentials).
    pub url: String,
    /// The Genesis result recorded where it was pushed from, if any.
    pub genesis_passed: Option<bool>,
    /// Its status where it was pushed from (`current`, `experimental`, ...).
    pub status: String,
}

/// What an entry records. Recovery replays these fields; it never reads prose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// A free-form note (`pxos log note`).
    Note { label: String },
    /// A cartridge was packed.
    Pack { cartridge: CartRef },
    /// A cartridge entered the registry (as current only on a home with none).
    Register {
        cartridge: CartRef,
        parent: Option<String>,
        creator: Creator,
        file_len: u64,
        as_current: bool,
        /// Where it came from, when it was pulled from a remote.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// Genesis ran on one exact cartridge.
    GenesisCheck {
        cartridge: CartRef,
        passed: bool,
        failed: Vec<String>,
    },
    /// A cartridge became current (the actor is the approving person).
    Promote {
        cartridge: CartRef,
        from: Option<CartRef>,
        forced: bool,
    },
    /// Someone who may not approve (an LLM) asked for a rollback; nothing changed.
    RollbackRequest { cartridge: CartRef, from: CartRef },
    /// An earlier current cartridge became current again (the actor approved it).
    Rollback {
        cartridge: CartRef,
        from: CartRef,
        requested_by: Option<Actor>,
    },
    /// A kernel version entered the kernel store, and became current at once
    /// when `current` names why.
    KernelInstall {
        kernel: u32,
        version: String,
        parent: Option<u32>,
        image: Hash256,
        size: u64,
        tries: u32,
        current: Option<SwitchCause>,
    },
    /// The current kernel changed.
    KernelSwitch {
        kernel: u32,
        from: Option<u32>,
        cause: SwitchCause,
    },
    /// A boot that changed a kernel's standing (proved it good, used a try, reverted).
    KernelBoot { kernel: u32, outcome: KernelOutcome },
    /// An agent task ended (the actor is the model that worked on it): its
    /// artefact was accepted (review score >= 8 and every check passed) or
    /// the task failed. Changes no state; the task queue holds the task.
    Task {
        task: String,
        title: String,
        accepted: bool,
        rounds: u32,
        score: Option<u8>,
        /// The SHA-256 of the accepted (or best) artefact.
        artefact: Option<Hash256>,
    },
}

/// Which state an action belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Changes the cartridge registry.
    Registry,
    /// Changes the kernel store.
    Kernels,
    /// Changes no state (notes and packs are history only).
    History,
}

impl Action {
    /// The action's name, as `pxos log` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Note { .. } => "note",
            Action::Pack { .. } => "pack",
            Action::Register { .. } => "register",
            Action::GenesisCheck { .. } => "genesis-check",
            Action::Promote { forced: false, .. } => "promote",
            Action::Promote { forced: true, .. } => "promote-forced",
            Action::RollbackRequest { .. } => "rollback-request",
            Action::Rollback { .. } => "rollback",
            Action::KernelInstall { .. } => "kernel-install",
            Action::KernelSwitch { .. } => "kernel-switch",
            Action::KernelBoot { .. } => "kernel-boot",
            Action::Task { accepted: true, .. } => "task-accepted",
            Action::Task {
                accepted: false, ..
            } => "task-failed",
        }
    }

    /// The state this action changes.
    pub fn domain(&self) -> Domain {
        match self {
            Action::Register { .. }
            | Action::GenesisCheck { .. }
            | Action::Promote { .. }
            | Action::RollbackRequest { .. }
            | Action::Rollback { .. } => Domain::Registry,
            Action::KernelInstall { .. }
            | Action::KernelSwitch { .. }
            | Action::KernelBoot { .. } => Domain::Kernels,
            Action::Note { .. } | Action::Pack { .. } | Action::Task { .. } => Domain::History,
        }
    }

    /// The cartridge this action is about, if any.
    pub fn cartridge(&self) -> Option<&CartRef> {
        match self {
            Action::Pack { cartridge }
            | Action::Register { cartridge, .. }
            | Action::GenesisCheck { cartridge, .. }
            | Action::Promote { cartridge, .. }
            | Action::RollbackRequest { cartridge, .. }
            | Action::Rollback { cartridge, .. } => Some(cartridge),
            _ => None,
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub seq: u64,
    pub time: String,
    pub actor: Actor,
    pub action: Action,
    pub reason: String,
    pub prev: Hash256,
    pub hash: Hash256,
}

impl LogEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> Hash256 {
        let mut unhashed = self.clone();
        unhashed.hash = Hash256::ZERO;
        let json = serde_json::to_vec(&unhashed).expect("entries serialize");
        Hash256::of(&json)
    }
}

/// A point in the log: how many entries, and the hash of the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPosition {
    pub count: u64,
    pub hash: Hash256,
}

impl LogPosition {
    /// The end of `entries`.
    pub fn end_of(entries: &[LogEntry]) -> LogPosition {
        LogPosition {
            count: entries.len() as u64,
            hash: entries.last().map_or(Hash256::ZERO, |e| e.hash),
        }
    }

    /// The entries after this position, when `entries` really passes through it.
    /// `Err` says how the two disagree (for a tamper report).
    pub fn tail<'a>(&self, entries: &'a [LogEntry]) -> std::result::Result<&'a [LogEntry], String> {
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        if count > entries.len() {
            return Err(format!(
                "it reflects {} log entries, but the log has only {}: the log was cut short, deleted or replaced",
                self.count,
                entries.len()
            ));
        }
        let at = if count == 0 {
            Hash256::ZERO
        } else {
            entries[count - 1].hash
        };
        if at != self.hash {
            return Err(format!(
                "it reflects log entry {} with hash {}, but that entry's hash is {}: the log was rewritten",
                self.count.saturating_sub(1),
                self.hash.short(),
                at.short()
            ));
        }
        Ok(&entries[count..])
    }
}

/// The single-file log of pxOS 0.1 (`evolution.png`), read only to migrate it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    format: String,
    version: u32,
    head: LogPosition,
    entries: Vec<LogEntry>,
}

/// The anchor of pxOS 0.1 (`evolution.anchor`), read only to migrate it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Anchor {
    format: String,
    head: LogPosition,
    pending: Option<LogPosition>,
}

/// The entries of a verified log, shared with the log's cache.
#[derive(Clone, Debug)]
pub struct Entries(Arc<Vec<LogEntry>>);

impl std::ops::Deref for Entries {
    type Target = [LogEntry];

    fn deref(&self) -> &[LogEntry] {
        &self.0
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// Entries checked by this run (all with `--full`; otherwise those since
    /// the last verified checkpoint).
    pub checked: u64,
    /// The entry this run started from.
    pub from: u64,
    pub problems: Vec<String>,
    /// Notes that are not problems (an append interrupted before its anchor).
    pub notes: Vec<String>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What identifies one version of a file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Stamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        })
    }
}

/// The last full read in this process, kept while the head and the open
/// segment stay the same files (the head is only ever replaced by rename,
/// and sealed segments are checked against it).
#[derive(Debug)]
struct Verified {
    stamps: (Option<Stamp>, Option<Stamp>),
    entries: Arc<Vec<LogEntry>>,
    report: Verification,
}

/// The log in a directory (`$PXOS_HOME/log`).
#[derive(Clone, Debug)]
pub struct EvolutionLog {
    dir: PathBuf,
    /// Shared by the clones a process hands to the registry and the kernel
    /// store, so one command reads and verifies the whole log once.
    cache: Arc<Mutex<Option<Verified>>>,
}

impl EvolutionLog {
    /// Opens the log in `dir`, migrating a pxOS 0.1 log first (which must verify).
    pub fn open(dir: &Path) -> Result<EvolutionLog> {
        std::fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        let log = EvolutionLog {
            dir: dir.to_path_buf(),
            cache: Arc::new(Mutex::new(None)),
        };
        if log.legacy_path().is_file() || log.legacy_anchor_path().is_file() {
            let _lock = WriteLock::acquire(&dir.join("lock"))?;
            log.migrate()?;
        }
        Ok(log)
    }

    /// The segmented log's folder (`evolution/`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("evolution")
    }

    /// The anchor: the segmented log's head (`evolution/head.json`).
    pub fn anchor_path(&self) -> PathBuf {
        self.segments().head_path()
    }

    fn legacy_path(&self) -> PathBuf {
        self.dir.join("evolution.png")
    }

    fn legacy_anchor_path(&self) -> PathBuf {
        self.dir.join("evolution.anchor")
    }

    /// The segmented log the entries live in.
    pub fn segments(&self) -> SegLog {
        SegLog::new(&self.log_path())
    }

    fn stamps(&self) -> (Option<Stamp>, Option<Stamp>) {
        let log = self.segments();
        let head = Stamp::of(&log.head_path());
        let sealed = log.head().map(|h| h.sealed).unwrap_or(0);
        (head, Stamp::of(&log.open_path(sealed)))
    }

    /// Reads every entry and checks the whole log, or reuses this process's
    /// last reading when neither the head nor the open segment changed since.
    fn read_verified(&self) -> Result<(Arc<Vec<LogEntry>>, Verification)> {
        let stamps = self.stamps();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(verified) = cache.as_ref()
                && verified.stamps == stamps
            {
                return Ok((verified.entries.clone(), verified.report.clone()));
            }
        }
        let mut entries = Vec::new();
        let mut checker = Checker::default();
        let report = self.segments().verify(true, &mut |record| {
            let entry = checker.check(record)?;
            entries.push(entry);
            Ok(())
        })?;
        let report = self.to_report(report);
        let entries = Arc::new(entries);
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(Verified {
            stamps,
            entries: entries.clone(),
            report: report.clone(),
        });
        Ok((entries, report))
    }

    fn to_report(&self, report: seglog::Verification) -> Verification {
        Verification {
            entries: report.records,
            checked: report.checked,
            from: report.from,
            problems: report
                .problems
                .into_iter()
                .map(|p| format!("{}: {p}", self.log_path().display()))
                .collect(),
            notes: report.notes,
        }
    }

    /// Every entry, in order (not verified; see [`EvolutionLog::verify`]).
    pub fn entries(&self) -> Result<Vec<LogEntry>> {
        Ok(self.read_verified()?.0.as_ref().clone())
    }

    /// Every entry, after checking the whole log; a log that does not verify
    /// is an error ([`Error::Tampered`]) naming its problems. Shared, not
    /// copied: one command reads the log once.
    pub fn verified_entries(&self) -> Result<Entries> {
        let (entries, report) = self.read_verified()?;
        if !report.is_ok() {
            return Err(Error::Tampered(format!(
                "the evolution log does not verify: {}",
                report.problems.join("; ")
            )));
        }
        Ok(Entries(entries))
    }

    /// Appends an entry. Refuses to build on a log that does not verify: the
    /// head, the open segment's chain and the last entry are checked (the
    /// sealed segments are checked by [`EvolutionLog::verify`]); the cost
    /// does not grow with the log.
    pub fn append(&self, actor: Actor, action: Action, reason: &str) -> Result<LogEntry> {
        actor.check().map_err(Error::Usage)?;
        if let Action::Note { label } = &action
            && (label.trim().is_empty() || label.len() > 64 || label.chars().any(char::is_control))
        {
            return Err(Error::Usage(format!(
                "a note's action name must be 1-64 printable characters, not {label:?}"
            )));
        }
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let log = self.segments();
        let refuse = |why: String| {
            Error::Tampered(format!(
                "{}: the evolution log does not verify ({why}); refusing to append to it",
                self.log_path().display()
            ))
        };
        // Every entry of the last segment (at most 256) is checked.
        let tail = log.tail().map_err(|err| refuse(err.to_string()))?;
        let mut checker = Checker::default();
        let mut last = None;
        for record in &tail {
            last = Some(checker.check(record).map_err(refuse)?);
        }
        let (seq, prev) = match &last {
            None => (0, Hash256::ZERO),
            Some(entry) => (entry.seq + 1, entry.hash),
        };
        let mut entry = LogEntry {
            seq,
            time: pxos_fs::time::now_rfc3339(),
            actor,
            action,
            reason: reason.to_string(),
            prev,
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        let body = serde_json::to_vec(&entry).expect("entries serialize");
        let record = log.append(&body).map_err(|err| match err.is_bad_input() {
            true => refuse(err.to_string()),
            false => Error::from(err),
        })?;
        if record.index != entry.seq {
            return Err(refuse(format!(
                "entry {} landed as record {}",
                entry.seq, record.index
            )));
        }
        // What was read plus one well-formed entry is still verified: keep it.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(verified) = cache.as_mut()
            && verified.report.is_ok()
            && verified.entries.len() as u64 == entry.seq
        {
            let mut entries = verified.entries.as_ref().clone();
            entries.push(entry.clone());
            verified.entries = Arc::new(entries);
            verified.report.entries += 1;
            // The append completed any interrupted one and dropped a torn tail.
            verified.report.notes.clear();
            verified.stamps = self.stamps();
        } else {
            *cache = None;
        }
        Ok(entry)
    }

    /// The entries from `seq` on, reading from the segment that holds it.
    pub fn entries_from(&self, seq: u64) -> Result<Vec<LogEntry>> {
        let mut checker = Checker::default();
        self.segments()
            .read_from(seq)?
            .iter()
            .map(|record| {
                checker
                    .check(record)
                    .map_err(|why| Error::Tampered(format!("{}: {why}", self.log_path().display())))
            })
            .collect()
    }

    /// Where the log ends, reading only its head and its last segment.
    pub fn end(&self) -> Result<LogPosition> {
        match self.segments().last()? {
            None => Ok(LogPosition::default()),
            Some(record) => {
                let entry = decode_entry(&record.body)?;
                Ok(LogPosition {
                    count: record.index + 1,
                    hash: entry.hash,
                })
            }
        }
    }

    /// Checks that the log still passes through `position` (what a state
    /// built from it recorded), reading one segment: a log cut back, even
    /// with its head, or rewritten below that point fails. `Err` says how.
    pub fn check_position(
        &self,
        position: &LogPosition,
    ) -> Result<std::result::Result<(), String>> {
        let end = self.end()?;
        if position.count > end.count {
            return Ok(Err(format!(
                "it reflects {} log entries, but the log has only {}: the log was cut short, deleted or replaced",
                position.count, end.count
            )));
        }
        if position.count == 0 {
            return Ok(Ok(()));
        }
        let records = self.segments().read_from(position.count - 1)?;
        let at = match records.first() {
            Some(record) => decode_entry(&record.body)?.hash,
            None => Hash256::ZERO,
        };
        if at != position.hash {
            return Ok(Err(format!(
                "it reflects log entry {} with hash {}, but that entry's hash is {}: the log was rewritten",
                position.count - 1,
                position.hash.short(),
                at.short()
            )));
        }
        Ok(Ok(()))
    }

    /// Checks the chain, every hash, every segment and the head.
    pub fn verify(&self) -> Result<Verification> {
        Ok(self.read_verified()?.1)
    }

    /// Checks the log from the last verified checkpoint on (`full`: from the
    /// start), and moves the checkpoint when it is clean.
    pub fn verify_from_checkpoint(&self, full: bool) -> Result<Verification> {
        let mut checker = Checker::default();
        let report = self
            .segments()
            .verify(full, &mut |record| checker.check(record).map(drop))?;
        Ok(self.to_report(report))
    }

    /// Turns a pxOS 0.1 log into the segmented log (the caller holds the
    /// lock). The old log must verify; it is kept under `legacy/`. The new
    /// log is built in a staging folder and renamed into place, so a crash
    /// leaves the old log (migrated again next time) or the new one.
    fn migrate(&self) -> Result<()> {
        let label = durable::label::EVOLUTION_MIGRATE;
        if !self.log_path().exists() && self.legacy_path().is_file() {
            let file = self.load_legacy()?;
            let report = self.check_legacy(&file)?;
            if !report.is_ok() {
                return Err(Error::Tampered(format!(
                    "{}: the evolution log written by pxOS 0.1 does not verify, so it is not upgraded: {}",
                    self.legacy_path().display(),
                    report.problems.join("; ")
                )));
            }
            durable::crash_point(&format!("{label}.create-temp"));
            let staging = self.dir.join(format!(
                "{}{}-evolution",
                durable::TEMP_PREFIX,
                std::process::id()
            ));
            // A staging folder a crashed migration left goes first.
            durable::remove_stale_temporaries_beside(&staging);
            let (temp, ()) =
                durable::Temporary::create(staging.clone(), |path| std::fs::create_dir(path))
                    .map_err(|err| Error::from(err).with_path(&staging))?;
            let mut bodies = file
                .entries
                .iter()
                .map(|entry| serde_json::to_vec(entry).expect("entries serialize"));
            SegLog::new(&staging).create_from(&mut bodies)?;
            durable::crash_point(&format!("{label}.write-temp"));
            durable::crash_point(&format!("{label}.fsync-temp"));
            durable::crash_point(&format!("{label}.rename"));
            temp.persist(&self.log_path())
                .map_err(|err| Error::from(err).with_path(self.log_path()))?;
            durable::sync_dir(&self.dir).map_err(|err| Error::from(err).with_path(&self.dir))?;
            durable::crash_point(&format!("{label}.fsync-dir"));
        }
        // Keep the old files, out of the way.
        let legacy = self.dir.join("legacy");
        for old in [self.legacy_path(), self.legacy_anchor_path()] {
            if old.is_file() {
                std::fs::create_dir_all(&legacy)
                    .map_err(|err| Error::from(err).with_path(&legacy))?;
                let name = old.file_name().expect("a file name");
                std::fs::rename(&old, legacy.join(name))
                    .map_err(|err| Error::from(err).with_path(&old))?;
            }
        }
        if legacy.is_dir() {
            durable::sync_dir(&legacy).map_err(|err| Error::from(err).with_path(&legacy))?;
            durable::sync_dir(&self.dir).map_err(|err| Error::from(err).with_path(&self.dir))?;
        }
        Ok(())
    }

    fn load_legacy(&self) -> Result<LogFile> {
        let path = self.legacy_path();
        let bytes = std::fs::read(&path).map_err(|err| Error::from(err).with_path(&path))?;
        decode_log(&bytes).map_err(|err| err.with_path(&path))
    }

    fn check_legacy(&self, file: &LogFile) -> Result<Verification> {
        let mut report = Verification {
            entries: file.entries.len() as u64,
            ..Verification::default()
        };
        let mut checker = Checker::default();
        for entry in &file.entries {
            if let Err(why) = checker.check_entry(entry) {
                report.problems.push(why);
            }
        }
        let end = LogPosition::end_of(&file.entries);
        if file.head != end {
            report.problems.push(format!(
                "the log head says {} entries, but the entries end at {}",
                file.head.count, end.count
            ));
        }
        let anchor_path = self.legacy_anchor_path();
        match read_bounded(&anchor_path, MAX_ANCHOR_BYTES) {
            Ok(bytes) => match decode_anchor(&bytes) {
                Err(why) => report
                    .problems
                    .push(format!("the anchor is damaged ({why})")),
                Ok(anchor) if anchor.head == end || anchor.pending == Some(end) => {}
                Ok(anchor) => report.problems.push(format!(
                    "the anchor says the log ends after {} entries, but it ends after {}",
                    anchor.head.count, end.count
                )),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !file.entries.is_empty() {
                    report
                        .problems
                        .push("the anchor is missing, but the log has entries".into());
                }
            }
            Err(err) => return Err(Error::from(err).with_path(&anchor_path)),
        }
        Ok(report)
    }
}

/// Checks entries one after another: each parses, carries its sequence
/// number, its own hash, and chains to the one before.
#[derive(Default)]
struct Checker {
    prev: Option<(u64, Hash256)>,
}

impl Checker {
    fn check(&mut self, record: &seglog::Record) -> std::result::Result<LogEntry, String> {
        let entry = decode_entry(&record.body).map_err(|err| err.to_string())?;
        let chained = self.check_entry(&entry);
        if entry.seq != record.index {
            let seq = format!(
                "entry {} carries sequence number {} (entries were removed, inserted or reordered)",
                record.index, entry.seq
            );
            return Err(match chained {
                Ok(()) => seq,
                Err(more) => format!("{seq}; {more}"),
            });
        }
        chained.map(|()| entry)
    }

    fn check_entry(&mut self, entry: &LogEntry) -> std::result::Result<(), String> {
        let index = entry.seq;
        let mut problems = Vec::new();
        match self.prev {
            Some((seq, hash)) => {
                if seq + 1 != index {
                    problems.push(format!(
                        "entry {index} follows entry {seq} (entries were removed, inserted or reordered)"
                    ));
                }
                if entry.prev != hash {
                    problems.push(format!(
                        "entry {index} does not chain to the entry before it (removed, inserted or reordered)"
                    ));
                }
            }
            None if index == 0 && entry.prev != Hash256::ZERO => problems.push(
                "entry 0 does not start the chain (entries were removed before it)".to_string(),
            ),
            None => {}
        }
        if entry.compute_hash() != entry.hash {
            problems.push(format!(
                "entry {index} was edited (its hash does not match its contents)"
            ));
        }
        self.prev = Some((index, entry.hash));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Decodes and validates one entry's JSON.
fn decode_entry(bytes: &[u8]) -> Result<LogEntry> {
    let entry: LogEntry = serde_json::from_slice(bytes)
        .map_err(|err| Error::Format(format!("a log entry is not valid: {err}")))?;
    check_fields(&entry)?;
    Ok(entry)
}

fn check_fields(entry: &LogEntry) -> Result<()> {
    entry
        .actor
        .check()
        .map_err(|why| Error::Format(format!("entry {}: {why}", entry.seq)))?;
    if let Some(cartridge) = entry.action.cartridge() {
        crate::cartridge::check_name(&cartridge.name)
            .and_then(|()| crate::cartridge::check_semver(&cartridge.version))
            .map_err(|err| Error::Format(format!("entry {}: {err}", entry.seq)))?;
    }
    Ok(())
}

/// Largest anchor file read (a real one is about 250 bytes).
const MAX_ANCHOR_BYTES: u64 = 64 << 10;

/// Reads a small file; a larger one reads as `limit + 1` bytes, which no
/// decoder accepts, instead of filling memory.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn decode_anchor(bytes: &[u8]) -> std::result::Result<Anchor, String> {
    if bytes.len() as u64 > MAX_ANCHOR_BYTES {
        return Err(format!("it is larger than {MAX_ANCHOR_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    let anchor: Anchor = serde_json::from_str(text).map_err(|err| err.to_string())?;
    if anchor.format != ANCHOR_FORMAT {
        return Err(format!("unknown format {:?}", anchor.format));
    }
    Ok(anchor)
}

/// Decodes and validates a pxOS 0.1 log file's bytes (a PXI of kind
/// `table`). Every field is checked: a damaged or hostile file is an error,
/// never a panic.
pub fn decode_log_bytes(bytes: &[u8]) -> Result<Vec<LogEntry>> {
    Ok(decode_log(bytes)?.entries)
}

/// Decodes and validates one record of the segmented log.
pub fn decode_entry_bytes(bytes: &[u8]) -> Result<LogEntry> {
    decode_entry(bytes)
}

fn decode_log(bytes: &[u8]) -> Result<LogFile> {
    let (decoded, json) = pxos_pixel::decode_from_slice(bytes, &Limits::default())?;
    if decoded.header.kind != Kind::Table {
        return Err(Error::Format(format!(
            "not an evolution log (a PXI of kind {})",
            decoded.header.kind.name()
        )));
    }
    let file: LogFile = serde_json::from_slice(&json)
        .map_err(|err| Error::Format(format!("the log is not valid: {err}")))?;
    if file.format != LOG_FORMAT {
        return Err(Error::Format(format!(
            "not an evolution log (format {:?})",
            file.format
        )));
    }
    if file.version != LOG_VERSION {
        return Err(Error::Format(format!(
            "an evolution log of format version {} (this pxOS reads version {LOG_VERSION}); use the pxOS that wrote it, or start a new home",
            file.version
        )));
    }
    for entry in &file.entries {
        check_fields(entry)?;
    }
    Ok(file)
}
