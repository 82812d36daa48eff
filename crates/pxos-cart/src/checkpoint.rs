//! State kept as a checkpoint of the evolution log: the one mechanism behind
//! the cartridge registry and the kernel store.
//!
//! The log is the write-ahead log. A change is committed in three steps: the
//! state file is saved with the change as its *intent*, the typed entry is
//! appended to the log, and the state file is saved with the change applied.
//! Reading reconciles the checkpoint with the verified log:
//!
//! * the log must pass through the position the checkpoint records, and the
//!   checkpoint must be exactly what replaying the log up to there gives
//!   (a hand edit of either file is a disagreement);
//! * after that position there may be at most one entry of the state's
//!   domain, and only the one the intent names (a crash between the append
//!   and the final save): it is replayed. Anything else is a disagreement.
//!
//! `fsck` replays the whole log to rebuild a damaged checkpoint; the damaged
//! file is kept beside it, never deleted.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Kind, Limits, durable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::log::{Action, Actor, Domain, EvolutionLog, LogEntry, LogPosition};

/// A change about to be logged, saved in the checkpoint before the append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub actor: Actor,
    pub action: Action,
}

/// State that the log's entries of one domain build, entry by entry, kept in
/// a PXI table file as its checkpoint.
pub trait Checkpointed: Default + Serialize + DeserializeOwned {
    /// The entries this state is made of.
    const DOMAIN: Domain;
    /// What it is, in messages ("registry", "kernel state").
    const WHAT: &'static str;
    /// The command that checks and repairs it.
    const FSCK: &'static str;
    /// Crash-point labels of the intent write and of the final write.
    const LABELS: (durable::Label, durable::Label);

    /// Checks what a decoded file must hold (format, version, consistency).
    fn validate(&self) -> Result<(), String>;
    /// How many records (cartridges, kernels) it holds.
    fn records(&self) -> usize;
    /// Applies one entry of [`Self::DOMAIN`]; `Err` says why it cannot follow.
    fn apply(&mut self, entry: &LogEntry) -> std::result::Result<(), String>;
    /// The same state, ignoring the position and the intent.
    fn same_as(&self, other: &Self) -> bool;
    /// The log position this state reflects.
    fn position(&self) -> LogPosition;
    fn set_position(&mut self, position: LogPosition);
    /// The change under way when the checkpoint was saved.
    fn intent(&self) -> Option<&Intent>;
    fn set_intent(&mut self, intent: Option<Intent>);
}

/// Implements the position and intent accessors of [`Checkpointed`] over two
/// fields of the state: `checkpoint_fields!(log, pending);` inside the impl.
#[macro_export]
macro_rules! checkpoint_fields {
    ($position:ident, $intent:ident) => {
        fn position(&self) -> $crate::LogPosition {
            self.$position
        }

        fn set_position(&mut self, position: $crate::LogPosition) {
            self.$position = position;
        }

        fn intent(&self) -> Option<&$crate::Intent> {
            self.$intent.as_ref()
        }

        fn set_intent(&mut self, intent: Option<$crate::Intent>) {
            self.$intent = intent;
        }
    };
}

/// Replays every entry of the state's domain onto an empty state.
pub fn replay<S: Checkpointed>(entries: &[LogEntry]) -> std::result::Result<S, String> {
    let mut state = S::default();
    for entry in entries.iter().filter(|e| e.action.domain() == S::DOMAIN) {
        state
            .apply(entry)
            .map_err(|why| format!("log entry {} does not apply: {why}", entry.seq))?;
    }
    state.set_position(LogPosition::end_of(entries));
    Ok(state)
}

/// The state as of the end of `entries`: the checkpoint (or an empty state),
/// checked against the log, with the one entry its intent names replayed.
/// `Err` says how the checkpoint and the log disagree.
pub fn reconcile<S: Checkpointed>(
    checkpoint: Option<S>,
    entries: &[LogEntry],
) -> Result<S, String> {
    let mut state = checkpoint.unwrap_or_default();
    let tail = state.position().tail(entries)?;
    let seen = &entries[..entries.len() - tail.len()];
    let replayed: S = replay(seen)?;
    if !replayed.same_as(&state) {
        return Err(format!(
            "it does not match what the log's first {} entries record (it was edited by hand)",
            seen.len()
        ));
    }
    let unapplied: Vec<&LogEntry> = tail
        .iter()
        .filter(|e| e.action.domain() == S::DOMAIN)
        .collect();
    match unapplied.as_slice() {
        [] => {}
        [entry] => {
            let expected = state
                .intent()
                .is_some_and(|intent| intent.actor == entry.actor && intent.action == entry.action);
            if !expected {
                return Err(format!(
                    "log entry {} ({} by {}) changes it, but it never began that change",
                    entry.seq,
                    entry.action.name(),
                    entry.actor
                ));
            }
            state
                .apply(entry)
                .map_err(|why| format!("log entry {} cannot follow it: {why}", entry.seq))?;
        }
        many => {
            return Err(format!(
                "the log has {} changes for it after its checkpoint (entries {}), but a crash leaves at most one",
                many.len(),
                many.iter()
                    .map(|e| e.seq.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    state.set_intent(None);
    state.set_position(LogPosition::end_of(entries));
    Ok(state)
}

/// The half of [`reconcile`] that reads only the end of the log: the log
/// still passes through the checkpoint's position, and the entries after it
/// hold at most the one change of this state's domain that its intent
/// began. A hand-edited checkpoint needs the full replay to be caught.
pub fn check_tail<S: Checkpointed>(
    state: &S,
    log: &EvolutionLog,
) -> Result<std::result::Result<(), String>> {
    let position = state.position();
    if let Err(why) = log.check_position(&position)? {
        return Ok(Err(why));
    }
    let tail = log.entries_from(position.count)?;
    let unapplied: Vec<&LogEntry> = tail
        .iter()
        .filter(|e| e.action.domain() == S::DOMAIN)
        .collect();
    Ok(match unapplied.as_slice() {
        [] => Ok(()),
        [entry]
            if state.intent().is_some_and(|intent| {
                intent.actor == entry.actor && intent.action == entry.action
            }) =>
        {
            Ok(())
        }
        [entry] => Err(format!(
            "log entry {} ({} by {}) changes it, but it never began that change",
            entry.seq,
            entry.action.name(),
            entry.actor
        )),
        many => Err(format!(
            "the log has {} changes for it after its checkpoint, but a crash leaves at most one",
            many.len()
        )),
    })
}

/// Moves a damaged checkpoint aside as `NAME.damaged-<unix seconds>`; returns
/// where it went. Nothing is deleted.
pub fn keep_aside(path: &Path) -> std::io::Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_file_name(format!("{name}.damaged-{seconds}"));
    std::fs::rename(path, &aside)?;
    if let Some(dir) = path.parent() {
        durable::sync_dir(dir)?;
    }
    Ok(aside)
}

/// The temporary files of interrupted writes in `dir` (harmless; listed by fsck).
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(durable::TEMP_PREFIX)
                })
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// What an fsck of a checkpointed state found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    /// Disagreements and damage found.
    pub problems: Vec<String>,
    /// What could not be recovered (listed, never deleted).
    pub unrecovered: Vec<String>,
    /// What `--repair` did.
    pub repaired: Vec<String>,
    /// Temporary files of interrupted writes (harmless, listed, kept).
    pub leftovers: Vec<String>,
    /// Stored files no log entry names: an interrupted registration or
    /// install, or a file copied in by hand (not damage; listed, kept).
    pub orphans: Vec<String>,
    /// Records (cartridges or kernels) the log gives.
    pub records: usize,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.unrecovered.is_empty()
    }
}

/// Largest checkpoint file read: a registry of a million cartridges is far smaller.
pub const MAX_CHECKPOINT_BYTES: u64 = 256 << 20;

/// Decodes and validates a checkpoint file's bytes (a PXI of kind `table`). A
/// damaged or hostile file is an error, never a panic.
pub fn decode<S: Checkpointed>(bytes: &[u8]) -> Result<S> {
    let (decoded, json) = pxos_pixel::decode_from_slice(bytes, &Limits::default())?;
    if decoded.header.kind != Kind::Table {
        return Err(Error::Format(format!(
            "not a {} (a PXI of kind {})",
            S::WHAT,
            decoded.header.kind.name()
        )));
    }
    let state: S = serde_json::from_slice(&json)
        .map_err(|err| Error::Format(format!("invalid {}: {err}", S::WHAT)))?;
    state
        .validate()
        .map_err(|why| Error::Format(format!("invalid {}: {why}", S::WHAT)))?;
    Ok(state)
}

/// A checkpoint file of the evolution log: how the state is loaded, checked,
/// changed and repaired, the same for every state built from the log.
#[derive(Clone, Debug)]
pub struct CheckpointFile<S> {
    path: PathBuf,
    log: EvolutionLog,
    state: PhantomData<fn() -> S>,
}

impl<S: Checkpointed> CheckpointFile<S> {
    pub fn new(path: PathBuf, log: EvolutionLog) -> CheckpointFile<S> {
        CheckpointFile {
            path,
            log,
            state: PhantomData,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log it is a checkpoint of.
    pub fn log(&self) -> &EvolutionLog {
        &self.log
    }

    /// The checkpoint as saved, validated (`None` when there is none), not
    /// checked against the log.
    pub fn load(&self) -> Result<Option<S>> {
        if let Ok(metadata) = std::fs::metadata(&self.path)
            && metadata.len() > MAX_CHECKPOINT_BYTES
        {
            return Err(Error::LimitExceeded(format!(
                "a {} of {} bytes (at most {MAX_CHECKPOINT_BYTES})",
                S::WHAT,
                metadata.len()
            ))
            .with_path(&self.path));
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::from(err).with_path(&self.path)),
        };
        decode(&bytes)
            .map(Some)
            .map_err(|err| err.with_path(&self.path))
    }

    /// Saves `state` atomically, with the crash-point `label`.
    pub fn save(&self, state: &S, label: durable::Label) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).expect("a checkpoint serializes");
        let png = pxos_pixel::encode_to_vec(&json, &EncodeOptions::kind(Kind::Table))?;
        durable::write_atomic(&self.path, &png, label)
            .map_err(|err| Error::from(err).with_path(&self.path))
    }

    fn disagree(&self, why: String) -> Error {
        Error::Tampered(format!(
            "{} and {} disagree: the {}: {why}; `{}` shows the damage and `--repair` rebuilds it from the log",
            self.path.display(),
            self.log.log_path().display(),
            S::WHAT,
            S::FSCK
        ))
    }

    /// [`check_tail`] on the saved checkpoint (nothing to check when there is none).
    pub fn check_tail(&self) -> Result<()> {
        let Some(state) = self.load()? else {
            return Ok(());
        };
        check_tail(&state, &self.log)?.map_err(|why| self.disagree(why))
    }

    /// The state: the checkpoint, checked against the verified log.
    pub fn state(&self) -> Result<S> {
        let entries = self.log.verified_entries()?;
        self.state_with(&entries)
    }

    /// The state as of the end of `entries` (a verified log).
    pub fn state_with(&self, entries: &[LogEntry]) -> Result<S> {
        reconcile(self.load()?, entries).map_err(|why| self.disagree(why))
    }

    /// Commits one change: the intent, the typed log entry, the new state.
    /// A crash anywhere leaves the old state or the new one.
    pub fn commit(
        &self,
        state: &mut S,
        actor: Actor,
        action: Action,
        reason: &str,
    ) -> Result<LogEntry> {
        let (intent_label, state_label) = S::LABELS;
        state.set_intent(Some(Intent {
            actor: actor.clone(),
            action: action.clone(),
        }));
        self.save(state, intent_label)?;
        let entry = self.log.append(actor, action, reason)?;
        state.apply(&entry).map_err(|why| {
            Error::Usage(format!(
                "internal: a change does not apply to its own state: {why}"
            ))
        })?;
        state.set_intent(None);
        state.set_position(LogPosition {
            count: entry.seq + 1,
            hash: entry.hash,
        });
        self.save(state, state_label)?;
        Ok(entry)
    }

    /// The log side of an fsck: replays the whole log and compares the
    /// checkpoint with it. Returns the rebuilt state when the log allows one.
    pub fn fsck_log(&self, report: &mut FsckReport) -> Option<S> {
        let entries = match self.log.verified_entries() {
            Ok(entries) => entries,
            Err(err) => {
                report.problems.push(err.to_string());
                report.unrecovered.push(format!(
                    "the {} cannot be rebuilt while the evolution log does not verify",
                    S::WHAT
                ));
                return None;
            }
        };
        let rebuilt: S = match replay(&entries) {
            Ok(state) => state,
            Err(why) => {
                report.problems.push(why);
                report.unrecovered.push(format!(
                    "the log's {} entries do not replay; nothing was rebuilt",
                    S::WHAT
                ));
                return None;
            }
        };
        report.records = rebuilt.records();
        match self.load() {
            Err(err) => report.problems.push(err.to_string()),
            Ok(None) if rebuilt.records() == 0 => {}
            Ok(None) => report.problems.push(format!(
                "{} is missing, but the log records {} of its records",
                self.path.display(),
                rebuilt.records()
            )),
            Ok(Some(checkpoint)) => {
                if let Err(why) = reconcile(Some(checkpoint), &entries) {
                    report.problems.push(self.disagree(why).to_string());
                }
            }
        }
        Some(rebuilt)
    }

    /// With damage found, saves `rebuilt` and keeps the damaged file aside.
    pub fn repair(&self, rebuilt: &S, report: &mut FsckReport) -> Result<()> {
        if report.problems.is_empty() {
            return Ok(());
        }
        if self.path.exists() {
            let aside =
                keep_aside(&self.path).map_err(|err| Error::from(err).with_path(&self.path))?;
            report.repaired.push(format!(
                "kept the damaged checkpoint as {}",
                aside.display()
            ));
        }
        self.save(rebuilt, S::LABELS.1)?;
        report.repaired.push(format!(
            "rebuilt {} from the evolution log ({} records)",
            self.path.display(),
            rebuilt.records()
        ));
        Ok(())
    }
}
