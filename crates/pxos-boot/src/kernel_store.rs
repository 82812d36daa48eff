//! The kernel store: every kernel version as a PXI program image, one current
//! kernel, boot counting, automatic revert, rollback to any version.
//!
//! On disk (`$PXOS_HOME/kernels/`): `images/<sha256>.png` holds each kernel's
//! program image (content-addressed, never deleted) and `state.png` (a PXI of
//! kind `table`, JSON inside) holds the versions, the current pointer, the
//! last good kernel and an append-only event log. Every change writes images
//! first and then replaces `state.png` atomically, so a crash at any write
//! point leaves the old state or the new one.
//!
//! Boot counting: a newly switched-to kernel is on *trial* with a number of
//! tries. A boot that halts cleanly and passes the health check makes it
//! *good*. A boot that traps, runs out of fuel or fails the health check uses
//! up a try; when none are left the kernel is marked *failed* and the store
//! reverts to the last good kernel, recording why.

use std::path::{Path, PathBuf};

use pxos_fs::WriteLock;
use pxos_pixel::{EncodeOptions, Kind, Limits, durable};
use pxos_vm::{Config, Exit, KernelRequest, Machine, ProgramImage, Screen, StdHost, Storage, Trap};
use serde::{Deserialize, Serialize};

/// The message a kernel prints to report a failed health check.
pub const HEALTH_FAILED_MESSAGE: u32 = 6;
/// Default instruction budget of one kernel boot.
pub const DEFAULT_BOOT_FUEL: u64 = 10_000_000;

pub use crate::error::{Error, Result};

/// Where a kernel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Installed, never made current.
    Installed,
    /// Current and not yet proven by a successful boot.
    Trial,
    /// Booted successfully at least once.
    Good,
    /// Used up its tries; reverted away from.
    Failed,
}

/// One kernel version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRecord {
    pub id: u32,
    pub version: String,
    pub parent: Option<u32>,
    pub date: String,
    /// Program size in bytes (4 per word).
    pub size: u64,
    /// SHA-256 of the program image file.
    pub sha256: String,
    pub status: Status,
    pub tries_left: u32,
    /// Why it last failed, if it did.
    pub failure: Option<String>,
}

/// One event in the store's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub time: String,
    /// install, switch, rollback, boot-ok, boot-failed, revert.
    pub event: String,
    pub kernel: u32,
    pub detail: String,
}

/// The whole store state (what `state.png` holds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub version: u32,
    pub current: Option<u32>,
    pub last_good: Option<u32>,
    pub next_id: u32,
    pub kernels: Vec<KernelRecord>,
    pub log: Vec<Event>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: "pxos-kernel-store".into(),
            version: 1,
            current: None,
            last_good: None,
            next_id: 1,
            kernels: Vec::new(),
            log: Vec::new(),
        }
    }
}

impl State {
    /// The record with `id`.
    pub fn kernel(&self, id: u32) -> Option<&KernelRecord> {
        self.kernels.iter().find(|k| k.id == id)
    }

    fn kernel_mut(&mut self, id: u32) -> Option<&mut KernelRecord> {
        self.kernels.iter_mut().find(|k| k.id == id)
    }

    /// The record with version name `version`.
    pub fn by_version(&self, version: &str) -> Option<&KernelRecord> {
        self.kernels.iter().find(|k| k.version == version)
    }

    fn record(&mut self, event: &str, kernel: u32, detail: impl Into<String>) {
        self.log.push(Event {
            time: pxos_fs::time::now_rfc3339(),
            event: event.into(),
            kernel,
            detail: detail.into(),
        });
    }

    fn validate(&self) -> Result<()> {
        let known = |id: Option<u32>| id.is_none_or(|id| self.kernel(id).is_some());
        if self.format != "pxos-kernel-store" || self.version != 1 {
            return Err(Error::Format(
                "kernel store state has an unknown format".into(),
            ));
        }
        if !known(self.current) || !known(self.last_good) {
            return Err(Error::Format(
                "kernel store state points at a kernel it does not list".into(),
            ));
        }
        for kernel in &self.kernels {
            if pxos_fs::parse_sha(&kernel.sha256).is_none() || kernel.id >= self.next_id {
                return Err(Error::Format(format!(
                    "kernel store record {} is malformed",
                    kernel.id
                )));
            }
        }
        Ok(())
    }
}

/// How one boot ended.
#[derive(Clone, Debug)]
pub struct BootReport {
    pub kernel: u32,
    pub version: String,
    /// `None` when the kernel halted and passed its health check.
    pub failure: Option<String>,
    pub trap: Option<Trap>,
    pub cycles: u64,
    pub output: Vec<String>,
    pub warnings: Vec<String>,
    pub screen: Screen,
    /// What the kernel asked for (SELF_MODIFY or VERSION_SWITCH), if it booted cleanly.
    pub request: Option<KernelRequest>,
    /// Set when this boot made the store revert: (from, to).
    pub reverted: Option<(u32, u32)>,
}

/// The kernel store in a directory.
pub struct KernelStore {
    dir: PathBuf,
}

impl KernelStore {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: &Path) -> Result<KernelStore> {
        std::fs::create_dir_all(dir.join("images"))?;
        Ok(KernelStore {
            dir: dir.to_path_buf(),
        })
    }

    fn lock(&self) -> Result<WriteLock> {
        Ok(WriteLock::acquire(&self.dir.join("lock"))?)
    }

    /// The current state (empty for a new store).
    pub fn state(&self) -> Result<State> {
        let path = self.dir.join("state.png");
        if !path.exists() {
            return Ok(State::default());
        }
        let bytes = std::fs::read(&path)?;
        let (decoded, json) = pxos_pixel::decode_from_slice(&bytes, &Limits::default())
            .map_err(|err| Error::Pixel(err.with_path(&path)))?;
        if decoded.header.kind != Kind::Table {
            return Err(Error::Format(format!(
                "{} is not a kernel store state",
                path.display()
            )));
        }
        let state: State = serde_json::from_slice(&json)
            .map_err(|err| Error::Format(format!("{}: invalid state: {err}", path.display())))?;
        state.validate()?;
        Ok(state)
    }

    fn save(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).map_err(|err| Error::Usage(err.to_string()))?;
        let png = pxos_pixel::encode_to_vec(&json, &EncodeOptions::kind(Kind::Table))?;
        durable::write_atomic(self.dir.join("state.png"), &png, "kernel-state")?;
        Ok(())
    }

    fn image_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("images").join(format!("{sha256}.png"))
    }

    /// The program image of kernel `id`, verified against its recorded hash.
    pub fn image(&self, id: u32) -> Result<ProgramImage> {
        let state = self.state()?;
        let record = state
            .kernel(id)
            .ok_or_else(|| Error::Usage(format!("no kernel with id {id}")))?;
        let path = self.image_path(&record.sha256);
        let bytes = std::fs::read(&path)?;
        if pxos_pixel::hex(&pxos_pixel::sha256(&bytes)) != record.sha256 {
            return Err(Error::Format(format!(
                "{}: kernel image does not match its hash",
                path.display()
            )));
        }
        ProgramImage::from_png(&bytes)
            .map_err(|err| Error::Format(format!("{}: {err}", path.display())))
    }

    /// Installs a kernel. With `make_current` it becomes current on trial with `tries` tries.
    pub fn install(
        &self,
        image: &ProgramImage,
        version: &str,
        parent: Option<u32>,
        make_current: bool,
        tries: u32,
    ) -> Result<KernelRecord> {
        if image.words.is_empty() {
            return Err(Error::Usage("refusing an empty kernel".into()));
        }
        if version.is_empty() || version.len() > 64 || version.chars().any(char::is_control) {
            return Err(Error::Usage(format!(
                "'{version}' is not a usable version name"
            )));
        }
        let _lock = self.lock()?;
        let mut state = self.state()?;
        if state.by_version(version).is_some() {
            return Err(Error::Usage(format!(
                "kernel version {version} already exists"
            )));
        }
        if let Some(parent) = parent
            && state.kernel(parent).is_none()
        {
            return Err(Error::Usage(format!(
                "parent kernel {parent} does not exist"
            )));
        }
        let png = image.to_png();
        let sha256 = pxos_pixel::hex(&pxos_pixel::sha256(&png));
        let path = self.image_path(&sha256);
        if !path.exists() {
            durable::write_atomic(&path, &png, "kernel-image")?;
        }
        let id = state.next_id;
        state.next_id += 1;
        let record = KernelRecord {
            id,
            version: version.to_string(),
            parent,
            date: pxos_fs::time::now_rfc3339(),
            size: image.words.len() as u64 * 4,
            sha256,
            status: Status::Installed,
            tries_left: tries.max(1),
            failure: None,
        };
        state.kernels.push(record);
        state.record(
            "install",
            id,
            format!(
                "version {version}, parent {}",
                parent.map_or("none".into(), |p| p.to_string())
            ),
        );
        if make_current {
            Self::make_current(&mut state, id, "installed as current");
        }
        self.save(&state)?;
        Ok(state.kernel(id).cloned().expect("just added"))
    }

    fn make_current(state: &mut State, id: u32, why: &str) {
        let record = state.kernel_mut(id).expect("caller checked");
        if record.status != Status::Good {
            record.status = Status::Trial;
            record.tries_left = record.tries_left.max(1);
        }
        state.current = Some(id);
        state.record("switch", id, why);
    }

    /// Makes kernel `id` current (on trial unless it has booted well before).
    pub fn switch(&self, id: u32, reason: &str) -> Result<KernelRecord> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        if state.kernel(id).is_none() {
            return Err(Error::Usage(format!("no kernel with id {id}")));
        }
        Self::make_current(&mut state, id, reason);
        self.save(&state)?;
        Ok(state.kernel(id).cloned().expect("exists"))
    }

    /// Rolls back to `to`, or to the last good kernel before the current one.
    pub fn rollback(&self, to: Option<u32>, reason: &str) -> Result<KernelRecord> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let target = match to {
            Some(id) => state
                .kernel(id)
                .map(|k| k.id)
                .ok_or_else(|| Error::Usage(format!("no kernel with id {id}")))?,
            None => state
                .kernels
                .iter()
                .rev()
                .find(|k| k.status == Status::Good && Some(k.id) != state.current)
                .map(|k| k.id)
                .ok_or_else(|| Error::Usage("no earlier good kernel to roll back to".into()))?,
        };
        let from = state.current;
        Self::make_current(&mut state, target, reason);
        state.record(
            "rollback",
            target,
            format!(
                "from {}: {reason}",
                from.map_or("none".into(), |f| f.to_string())
            ),
        );
        self.save(&state)?;
        Ok(state.kernel(target).cloned().expect("exists"))
    }

    /// Boots the current kernel once under `host`, records the outcome
    /// (good, a used try, or failed and reverted) and returns the report.
    pub fn boot(&self, storage: Box<dyn Storage>, fuel: u64) -> Result<BootReport> {
        let state = self.state()?;
        let id = state
            .current
            .ok_or_else(|| Error::Usage("no current kernel (install one first)".into()))?;
        let image = self.image(id)?;
        let mut host = StdHost::new(storage);
        host.versions = state.kernels.iter().map(|k| k.id).collect();
        host.current_version = id;
        let mut machine = Machine::with_program(Config::default(), &image.words, image.entry)
            .map_err(|err| Error::Format(format!("kernel {id} does not load: {err}")))?;
        let result = machine.run(&mut host, fuel);
        let (failure, trap) = match &result {
            Ok(Exit::Halted { .. }) => {
                let health_failed = host.output.iter().any(|line| {
                    Some(line) == pxos_vm::default_messages().get(&HEALTH_FAILED_MESSAGE)
                });
                if health_failed {
                    (Some("failed its health check".to_string()), None)
                } else {
                    (None, None)
                }
            }
            Ok(Exit::Yielded { .. }) => (Some("yielded instead of halting".to_string()), None),
            Err(trap) if trap.kind() == "fuel-exhausted" => (
                Some(format!(
                    "did not halt within {fuel} instructions (runs forever?)"
                )),
                Some(trap.clone()),
            ),
            Err(trap) => (Some(format!("trapped: {trap}")), Some(trap.clone())),
        };
        let reverted = self.record_boot(id, failure.as_deref())?;
        let request = if failure.is_none() {
            host.request.take()
        } else {
            None
        };
        let version = state
            .kernel(id)
            .map(|k| k.version.clone())
            .unwrap_or_default();
        Ok(BootReport {
            kernel: id,
            version,
            failure,
            trap,
            cycles: machine.cycles,
            output: host.output,
            warnings: host.warnings,
            screen: machine.screen().clone(),
            request,
            reverted,
        })
    }

    /// Carries out what a cleanly booted kernel asked for: VERSION_SWITCH makes
    /// that version current; SELF_MODIFY installs the module as a new version
    /// (child of the kernel that asked; an identical installed image is reused)
    /// and makes it current on trial. Returns the new current kernel.
    pub fn apply_request(&self, report: &BootReport) -> Result<Option<KernelRecord>> {
        match &report.request {
            None => Ok(None),
            Some(KernelRequest::Switch { version }) => Ok(Some(self.switch(
                *version,
                &format!("VERSION_SWITCH from kernel {}", report.kernel),
            )?)),
            Some(KernelRequest::Replace { id, words }) => {
                let image = ProgramImage {
                    words: words.clone(),
                    entry: 0,
                };
                let reason = format!("SELF_MODIFY from kernel {} (module {id})", report.kernel);
                let state = self.state()?;
                for kernel in &state.kernels {
                    if self.image(kernel.id)? == image {
                        return Ok(Some(self.switch(kernel.id, &reason)?));
                    }
                }
                let name = format!("{}-evolved-{}", report.version, state.next_id);
                let record = self.install(&image, &name, Some(report.kernel), false, 1)?;
                Ok(Some(self.switch(record.id, &reason)?))
            }
        }
    }

    /// Records a boot outcome; returns (from, to) when it reverted.
    fn record_boot(&self, id: u32, failure: Option<&str>) -> Result<Option<(u32, u32)>> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let mut reverted = None;
        match failure {
            None => {
                let record = state.kernel_mut(id).expect("current exists");
                record.status = Status::Good;
                record.failure = None;
                state.last_good = Some(id);
                state.record("boot-ok", id, "halted cleanly, health check passed");
            }
            Some(why) => {
                let record = state.kernel_mut(id).expect("current exists");
                record.failure = Some(why.to_string());
                record.tries_left = record.tries_left.saturating_sub(1);
                let exhausted = record.tries_left == 0 || record.status == Status::Good;
                state.record("boot-failed", id, why);
                if exhausted {
                    if let Some(record) = state.kernel_mut(id) {
                        record.status = Status::Failed;
                    }
                    if let Some(good) = state.last_good.filter(|good| *good != id) {
                        state.current = Some(good);
                        state.record("revert", good, format!("kernel {id} {why}"));
                        reverted = Some((id, good));
                    } else {
                        state.last_good = None;
                    }
                }
            }
        }
        self.save(&state)?;
        Ok(reverted)
    }
}
