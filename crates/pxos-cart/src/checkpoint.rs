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

use std::path::{Path, PathBuf};

use pxos_pixel::durable;
use serde::{Deserialize, Serialize};

use crate::log::{Action, Actor, Domain, LogEntry, LogPosition};

/// A change about to be logged, saved in the checkpoint before the append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub actor: Actor,
    pub action: Action,
}

/// State that the log's entries of one domain build, entry by entry.
pub trait Checkpointed: Default {
    /// The entries this state is made of.
    const DOMAIN: Domain;

    /// Applies one entry of [`Self::DOMAIN`]; `Err` says why it cannot follow.
    fn apply(&mut self, entry: &LogEntry) -> Result<(), String>;
    /// The same state, ignoring the position and the intent.
    fn same_as(&self, other: &Self) -> bool;
    /// The log position this state reflects.
    fn position(&self) -> LogPosition;
    fn set_position(&mut self, position: LogPosition);
    /// The change under way when the checkpoint was saved.
    fn intent(&self) -> Option<&Intent>;
    fn set_intent(&mut self, intent: Option<Intent>);
}

/// Replays every entry of the state's domain onto an empty state.
pub fn replay<S: Checkpointed>(entries: &[LogEntry]) -> Result<S, String> {
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
