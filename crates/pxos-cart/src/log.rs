//! The evolution log: append-only, hash-chained, pixel-native, typed.
//!
//! `evolution.png` (a PXI of kind `table`) holds every entry and a head
//! (count and last hash). Each entry records its sequence number, time, actor
//! (kind `human`, `llm` or `system`, and name), a typed [`Action`], a reason
//! written for people, the previous entry's hash and its own hash: SHA-256 of
//! the entry's JSON with `hash` set to zeros. Code never reads the reason back;
//! everything recovery needs is in the action's fields.
//!
//! `evolution.anchor` vouches for the end of the log. An append writes the
//! anchor with the new entry as *pending*, then the log, then the anchor with
//! the new entry as its head. So after a crash the anchor names either the
//! log's last entry or, as pending, exactly the entry that was being appended;
//! anything else (an entry appended or cut off by hand, a deleted or garbled
//! anchor) is tampering. The registry and the kernel store each record the
//! log position they reflect, so the log and their state vouch for each other
//! (see [`LogPosition::tail`]). See `docs/formats/evolution-log.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pxos_fs::WriteLock;
use pxos_pixel::{EncodeOptions, Hash256, Kind, Limits, durable};
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
            Action::Note { .. } | Action::Pack { .. } => Domain::History,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    format: String,
    version: u32,
    head: LogPosition,
    entries: Vec<LogEntry>,
}

/// `evolution.anchor`: the head the log must end at, and the entry being appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Anchor {
    format: String,
    head: LogPosition,
    pending: Option<LogPosition>,
}

/// The entries of a verified log, shared with the log's cache.
#[derive(Clone, Debug)]
pub struct Entries(Arc<LogFile>);

impl std::ops::Deref for Entries {
    type Target = [LogEntry];

    fn deref(&self) -> &[LogEntry] {
        &self.0.entries
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub problems: Vec<String>,
    /// Notes that are not problems (an append interrupted before its anchor).
    pub notes: Vec<String>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What identifies one version of a file on disk: both log files are only
/// ever replaced by rename, so a new version has a new inode.
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

/// The last verification in this process, kept while neither file changes.
#[derive(Debug)]
struct Verified {
    stamps: (Option<Stamp>, Option<Stamp>),
    file: Arc<LogFile>,
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
    pub fn open(dir: &Path) -> Result<EvolutionLog> {
        std::fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        Ok(EvolutionLog {
            dir: dir.to_path_buf(),
            cache: Arc::new(Mutex::new(None)),
        })
    }

    /// The log file (`evolution.png`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("evolution.png")
    }

    /// The anchor file (`evolution.anchor`).
    pub fn anchor_path(&self) -> PathBuf {
        self.dir.join("evolution.anchor")
    }

    fn load(&self) -> Result<LogFile> {
        let path = self.log_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LogFile {
                    format: LOG_FORMAT.into(),
                    version: LOG_VERSION,
                    head: LogPosition::default(),
                    entries: Vec::new(),
                });
            }
            Err(err) => return Err(Error::from(err).with_path(&path)),
        };
        decode_log(&bytes).map_err(|err| err.with_path(&path))
    }

    /// Reads and verifies the log, or reuses this process's last verification
    /// when neither file changed since.
    fn read_verified(&self) -> Result<(Arc<LogFile>, Verification)> {
        let stamps = (Stamp::of(&self.log_path()), Stamp::of(&self.anchor_path()));
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(verified) = cache.as_ref()
                && verified.stamps == stamps
                && stamps.0.is_some()
            {
                return Ok((verified.file.clone(), verified.report.clone()));
            }
        }
        let file = Arc::new(self.load()?);
        let report = self.check(&file)?;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(Verified {
            stamps,
            file: file.clone(),
            report: report.clone(),
        });
        Ok((file, report))
    }

    /// Every entry, in order (not verified; see [`EvolutionLog::verify`]).
    pub fn entries(&self) -> Result<Vec<LogEntry>> {
        Ok(self.read_verified()?.0.entries.clone())
    }

    /// Every entry, after checking the whole log; a log that does not verify
    /// is an error ([`Error::Tampered`]) naming its problems. Shared, not
    /// copied: one command reads the log once.
    pub fn verified_entries(&self) -> Result<Entries> {
        let (file, report) = self.read_verified()?;
        if !report.is_ok() {
            return Err(Error::Tampered(format!(
                "{}: the evolution log does not verify: {}",
                self.log_path().display(),
                report.problems.join("; ")
            )));
        }
        Ok(Entries(file))
    }

    /// Appends an entry. Refuses to build on a log that does not verify.
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
        let mut file = self.load()?;
        let report = self.check(&file)?;
        if !report.is_ok() {
            return Err(Error::Tampered(format!(
                "{}: the evolution log does not verify ({}); refusing to append to it",
                self.log_path().display(),
                report.problems.join("; ")
            )));
        }
        let old_head = LogPosition::end_of(&file.entries);
        let mut entry = LogEntry {
            seq: file.entries.len() as u64,
            time: pxos_fs::time::now_rfc3339(),
            actor,
            action,
            reason: reason.to_string(),
            prev: old_head.hash,
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        file.entries.push(entry.clone());
        file.head = LogPosition::end_of(&file.entries);
        let json = serde_json::to_vec_pretty(&file).expect("the log serializes");
        let png = pxos_pixel::encode_to_vec(&json, &EncodeOptions::kind(Kind::Table))?;
        self.write_anchor(
            old_head,
            Some(file.head),
            pxos_pixel::durable::label::EVOLUTION_ANCHOR_INTENT,
        )?;
        durable::write_atomic(
            self.log_path(),
            &png,
            pxos_pixel::durable::label::EVOLUTION_LOG,
        )
        .map_err(|err| Error::from(err).with_path(self.log_path()))?;
        self.write_anchor(
            file.head,
            None,
            pxos_pixel::durable::label::EVOLUTION_ANCHOR,
        )?;
        // What was verified plus one well-formed entry is verified: keep it.
        let stamps = (Stamp::of(&self.log_path()), Stamp::of(&self.anchor_path()));
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(Verified {
            stamps,
            report: Verification {
                entries: file.entries.len() as u64,
                ..Verification::default()
            },
            file: Arc::new(file),
        });
        Ok(entry)
    }

    fn write_anchor(
        &self,
        head: LogPosition,
        pending: Option<LogPosition>,
        label: durable::Label,
    ) -> Result<()> {
        let anchor = Anchor {
            format: ANCHOR_FORMAT.into(),
            head,
            pending,
        };
        let mut json = serde_json::to_vec(&anchor).expect("the anchor serializes");
        json.push(b'\n');
        durable::write_atomic(self.anchor_path(), &json, label)
            .map_err(|err| Error::from(err).with_path(self.anchor_path()))
    }

    /// Checks the chain, every hash, the head and the anchor.
    pub fn verify(&self) -> Result<Verification> {
        Ok(self.read_verified()?.1)
    }

    fn check(&self, file: &LogFile) -> Result<Verification> {
        let mut report = Verification {
            entries: file.entries.len() as u64,
            ..Verification::default()
        };
        let mut prev = Hash256::ZERO;
        for (index, entry) in file.entries.iter().enumerate() {
            if entry.seq != index as u64 {
                report.problems.push(format!("entry {index} carries sequence number {} (entries were removed, inserted or reordered)", entry.seq));
            }
            if entry.prev != prev {
                report.problems.push(format!("entry {index} does not chain to the entry before it (removed, inserted or reordered)"));
            }
            if entry.compute_hash() != entry.hash {
                report.problems.push(format!(
                    "entry {index} was edited (its hash does not match its contents)"
                ));
            }
            prev = entry.hash;
        }
        let end = LogPosition::end_of(&file.entries);
        if file.head != end {
            report.problems.push(format!(
                "the log head says {} entries ending in {}, but the entries end at {} ({}): entries were cut off or added",
                file.head.count,
                file.head.hash.short(),
                end.count,
                end.hash.short()
            ));
        }
        let anchor_path = self.anchor_path();
        match read_bounded(&anchor_path, MAX_ANCHOR_BYTES) {
            Ok(bytes) => match decode_anchor(&bytes) {
                Err(why) => report.problems.push(format!(
                    "{}: the anchor is damaged ({why}): it was edited or replaced",
                    anchor_path.display()
                )),
                Ok(anchor) if anchor.head == end => {}
                Ok(anchor) if anchor.pending == Some(end) => report.notes.push(format!(
                    "the last append (entry {}) was interrupted before the anchor named it; the next append completes it",
                    end.count.saturating_sub(1)
                )),
                Ok(anchor) => report.problems.push(format!(
                    "the anchor ({}) says the log ends after {} entries at {}, but {} ends after {} at {}: entries were appended, cut off or replaced by hand",
                    anchor_path.display(),
                    anchor.head.count,
                    anchor.head.hash.short(),
                    self.log_path().display(),
                    end.count,
                    end.hash.short()
                )),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !file.entries.is_empty() {
                    report.problems.push(format!(
                        "the anchor {} is missing, but the log has {} entries: it was deleted",
                        anchor_path.display(),
                        file.entries.len()
                    ));
                }
            }
            Err(err) => return Err(Error::from(err).with_path(&anchor_path)),
        }
        Ok(report)
    }
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

/// Decodes and validates a log file's bytes (a PXI of kind `table`). Every
/// field is checked: a damaged or hostile file is an error, never a panic.
pub fn decode_log_bytes(bytes: &[u8]) -> Result<Vec<LogEntry>> {
    Ok(decode_log(bytes)?.entries)
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
        entry
            .actor
            .check()
            .map_err(|why| Error::Format(format!("entry {}: {why}", entry.seq)))?;
        if let Some(cartridge) = entry.action.cartridge() {
            crate::cartridge::check_name(&cartridge.name)
                .and_then(|()| crate::cartridge::check_semver(&cartridge.version))
                .map_err(|err| Error::Format(format!("entry {}: {err}", entry.seq)))?;
        }
    }
    Ok(file)
}
