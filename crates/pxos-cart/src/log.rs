//! The evolution log: append-only, hash-chained, pixel-native.
//!
//! `evolution.png` (a PXI of kind `table`) holds every entry and a head
//! (count and last hash). Each entry records its sequence number, time, actor
//! (kind `human` or `llm`, and name), action, target hashes, cartridge, reason,
//! the previous entry's hash and its own hash: SHA-256 of the entry's JSON with
//! `hash` empty. `evolution.anchor` repeats the head hash, written after the
//! log, so that cutting entries off the end is caught even when the file's own
//! head is rewritten to match. See `docs/formats/evolution-log.md`.

use std::path::{Path, PathBuf};

use pxos_fs::WriteLock;
use pxos_pixel::{EncodeOptions, Kind, Limits, durable};
use serde::{Deserialize, Serialize};

use crate::cartridge::CreatorKind;
use crate::error::{Error, Result};

/// The `prev` of the first entry.
pub const ROOT_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub kind: CreatorKind,
    pub name: String,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub seq: u64,
    pub time: String,
    pub actor: Actor,
    pub action: String,
    pub targets: Vec<String>,
    pub cartridge: Option<String>,
    pub reason: String,
    pub prev: String,
    pub hash: String,
}

impl LogEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let json = serde_json::to_vec(&unhashed).expect("entries serialize");
        pxos_pixel::hex(&pxos_pixel::sha256(&json))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    count: u64,
    hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    format: String,
    version: u32,
    head: Head,
    entries: Vec<LogEntry>,
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

/// The log in a directory (`$PXOS_HOME/log`).
pub struct EvolutionLog {
    dir: PathBuf,
}

impl EvolutionLog {
    pub fn open(dir: &Path) -> Result<EvolutionLog> {
        std::fs::create_dir_all(dir)?;
        Ok(EvolutionLog {
            dir: dir.to_path_buf(),
        })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("evolution.png")
    }

    fn anchor_path(&self) -> PathBuf {
        self.dir.join("evolution.anchor")
    }

    fn load(&self) -> Result<LogFile> {
        let path = self.log_path();
        if !path.exists() {
            return Ok(LogFile {
                format: "pxos-evolution-log".into(),
                version: 1,
                head: Head {
                    count: 0,
                    hash: ROOT_HASH.into(),
                },
                entries: Vec::new(),
            });
        }
        let bytes = std::fs::read(&path)?;
        let (decoded, json) = pxos_pixel::decode_from_slice(&bytes, &Limits::default())
            .map_err(|err| Error::Pixel(err.with_path(&path)))?;
        if decoded.header.kind != Kind::Table {
            return Err(Error::Format(format!(
                "{} is not an evolution log",
                path.display()
            )));
        }
        let file: LogFile = serde_json::from_slice(&json).map_err(|err| {
            Error::Format(format!("{}: the log is not valid: {err}", path.display()))
        })?;
        if file.format != "pxos-evolution-log" || file.version != 1 {
            return Err(Error::Format(format!(
                "{}: unknown log format",
                path.display()
            )));
        }
        Ok(file)
    }

    /// Every entry, in order (not verified; see [`EvolutionLog::verify`]).
    pub fn entries(&self) -> Result<Vec<LogEntry>> {
        Ok(self.load()?.entries)
    }

    /// Appends an entry. Refuses to build on a log that does not verify.
    pub fn append(
        &self,
        actor: Actor,
        action: &str,
        targets: Vec<String>,
        cartridge: Option<String>,
        reason: &str,
    ) -> Result<LogEntry> {
        if actor.name.trim().is_empty() || action.trim().is_empty() {
            return Err(Error::Usage(
                "a log entry needs an actor name and an action".into(),
            ));
        }
        let _lock = WriteLock::acquire(&self.dir.join("lock"))?;
        let verification = self.verify()?;
        if !verification.is_ok() {
            return Err(Error::Format(format!(
                "the evolution log does not verify ({}); refusing to append to it",
                verification.problems.join("; ")
            )));
        }
        let mut file = self.load()?;
        let prev = file
            .entries
            .last()
            .map_or(ROOT_HASH.to_string(), |e| e.hash.clone());
        let mut entry = LogEntry {
            seq: file.entries.len() as u64,
            time: pxos_fs::time::now_rfc3339(),
            actor,
            action: action.to_string(),
            targets,
            cartridge,
            reason: reason.to_string(),
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        file.entries.push(entry.clone());
        file.head = Head {
            count: file.entries.len() as u64,
            hash: entry.hash.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|err| Error::Usage(err.to_string()))?;
        let png = pxos_pixel::encode_to_vec(&json, &EncodeOptions::kind(Kind::Table))?;
        durable::write_atomic(self.log_path(), &png, "evolution-log")?;
        durable::write_atomic(
            self.anchor_path(),
            format!("{}\n", entry.hash).as_bytes(),
            "evolution-anchor",
        )?;
        Ok(entry)
    }

    /// Checks the chain, every hash, the head and the anchor.
    pub fn verify(&self) -> Result<Verification> {
        let file = self.load()?;
        let mut report = Verification {
            entries: file.entries.len() as u64,
            ..Verification::default()
        };
        let mut prev = ROOT_HASH.to_string();
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
            prev = entry.hash.clone();
        }
        let last = file
            .entries
            .last()
            .map_or(ROOT_HASH.to_string(), |e| e.hash.clone());
        if file.head.count != file.entries.len() as u64 || file.head.hash != last {
            report.problems.push(format!(
                "the log head says {} entries ending in {}, but the entries end at {} ({}): entries were cut off or added",
                file.head.count,
                short(&file.head.hash),
                file.entries.len(),
                short(&last)
            ));
        }
        match std::fs::read_to_string(self.anchor_path()) {
            Ok(anchor) => {
                let anchor = anchor.trim();
                let before_last = file
                    .entries
                    .len()
                    .checked_sub(2)
                    .map_or(ROOT_HASH.to_string(), |i| file.entries[i].hash.clone());
                if anchor == last {
                } else if !file.entries.is_empty() && anchor == before_last {
                    report.notes.push(
                        "the last append was interrupted before its anchor was written".into(),
                    );
                } else {
                    report.problems.push(format!(
                        "the anchor names {} but the log ends at {}: the log was truncated or replaced",
                        short(anchor),
                        short(&last)
                    ));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if file.entries.len() > 1 {
                    report.problems.push("the anchor file is missing".into());
                }
            }
            Err(err) => return Err(err.into()),
        }
        Ok(report)
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}
