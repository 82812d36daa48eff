//! The kernel store: every kernel version as a PXI program image, one current
//! kernel, boot counting, automatic revert, rollback to any version.
//!
//! On disk (`$PXOS_HOME/kernels/`): `images/<sha256>.png` holds each kernel's
//! program image (content-addressed, never deleted) and `state.png` (a PXI of
//! kind `table`) is a checkpoint of the kernel entries of the evolution log,
//! which is the store's write-ahead log. Every change writes any new image,
//! then the intent into `state.png`, then the typed log entry, then the new
//! state; reading replays the log and checks the checkpoint against it, so
//! a crash at any write point leaves the old state or the new one, and a hand
//! edit of either file is reported as tampering. `fsck --repair` rebuilds
//! the state from the log and the images.
//!
//! Boot counting: a newly switched-to kernel is on *trial* with a number of
//! tries. A boot that halts cleanly and passes the health check makes it
//! *good*. A boot that traps, runs out of fuel or fails the health check uses
//! up a try; when none are left the kernel is marked *failed* and the store
//! reverts to the last good kernel, recording why.

use std::path::{Path, PathBuf};

use pxos_cart::checkpoint::{self, CheckpointFile, Checkpointed};
use pxos_cart::{
    Action, Actor, CartRef, Domain, EvolutionLog, FsckReport, Intent, KernelOutcome, LogEntry,
    LogPosition, SwitchCause,
};
use pxos_fs::WriteLock;
use pxos_pixel::{Hash256, durable};
use pxos_vm::{KernelRequest, ProgramImage, Screen, Storage};
use serde::{Deserialize, Serialize};

use crate::hypervisor::{Hypervisor, KernelInfo, Launch, Sandbox};

/// The message a kernel prints to report a failed health check.
pub const HEALTH_FAILED_MESSAGE: u32 = 6;
/// Default instruction budget of one kernel boot.
pub const DEFAULT_BOOT_FUEL: u64 = 10_000_000;
/// The `format` of `state.png`.
pub const STATE_FORMAT: &str = "pxos-kernel-store";
/// Its version.
pub const STATE_VERSION: u32 = 2;
/// Longest kernel version name.
const MAX_VERSION_NAME: usize = 64;

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

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Installed => "installed",
            Status::Trial => "trial",
            Status::Good => "good",
            Status::Failed => "failed",
        }
    }
}

/// One kernel version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRecord {
    pub id: u32,
    pub version: String,
    pub parent: Option<u32>,
    /// When it was installed (its log entry's time).
    pub date: String,
    /// Program size in bytes (4 per word).
    pub size: u64,
    /// SHA-256 of the program image file.
    pub sha256: Hash256,
    pub status: Status,
    pub tries_left: u32,
    /// Why it last failed, if it did (for people; never parsed).
    pub failure: Option<String>,
}

/// The whole store state (what `state.png` holds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub version: u32,
    /// The log position this state reflects.
    pub log: LogPosition,
    pub current: Option<u32>,
    pub last_good: Option<u32>,
    pub next_id: u32,
    /// The cartridge whose kernel was last installed as current.
    pub cartridge: Option<Hash256>,
    pub kernels: Vec<KernelRecord>,
    /// The change being made when this checkpoint was saved.
    pub pending: Option<Intent>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            log: LogPosition::default(),
            current: None,
            last_good: None,
            next_id: 1,
            cartridge: None,
            kernels: Vec::new(),
            pending: None,
        }
    }
}

impl State {
    /// The record with `id`.
    pub fn kernel(&self, id: u32) -> Option<&KernelRecord> {
        self.kernels.iter().find(|k| k.id == id)
    }

    fn kernel_mut(&mut self, id: u32) -> std::result::Result<&mut KernelRecord, String> {
        self.kernels
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| format!("it names kernel {id}, which was never installed"))
    }

    /// The record with version name `version`.
    pub fn by_version(&self, version: &str) -> Option<&KernelRecord> {
        self.kernels.iter().find(|k| k.version == version)
    }

    /// The current kernel's record.
    pub fn current_record(&self) -> Option<&KernelRecord> {
        self.current.and_then(|id| self.kernel(id))
    }

    /// What boot counting decides when kernel `id` fails: its tries left
    /// afterwards, and the kernel to revert to when it used them up.
    fn failure_outcome(&self, id: u32) -> std::result::Result<(u32, bool, Option<u32>), String> {
        let record = self
            .kernel(id)
            .ok_or_else(|| format!("kernel {id} does not exist"))?;
        let tries_left = record.tries_left.saturating_sub(1);
        let exhausted = tries_left == 0 || record.status == Status::Good;
        let reverted_to = if exhausted {
            self.last_good.filter(|good| *good != id)
        } else {
            None
        };
        Ok((tries_left, exhausted, reverted_to))
    }

    /// Applies one kernel entry. `Err` says why it cannot follow this state.
    pub fn apply(&mut self, entry: &LogEntry) -> std::result::Result<(), String> {
        match &entry.action {
            Action::KernelInstall {
                kernel,
                version,
                parent,
                image,
                size,
                tries,
                current,
            } => {
                if *kernel != self.next_id {
                    return Err(format!(
                        "it installs kernel {kernel}, but the next id is {}",
                        self.next_id
                    ));
                }
                if self.by_version(version).is_some() {
                    return Err(format!("it installs version {version} a second time"));
                }
                if let Some(parent) = parent
                    && self.kernel(*parent).is_none()
                {
                    return Err(format!("its parent kernel {parent} does not exist"));
                }
                self.kernels.push(KernelRecord {
                    id: *kernel,
                    version: version.clone(),
                    parent: *parent,
                    date: entry.time.clone(),
                    size: *size,
                    sha256: *image,
                    status: Status::Installed,
                    tries_left: (*tries).max(1),
                    failure: None,
                });
                self.next_id += 1;
                if let Some(cause) = current {
                    self.make_current(*kernel, cause)?;
                }
            }
            Action::KernelSwitch {
                kernel,
                from,
                cause,
            } => {
                if *from != self.current {
                    return Err(format!(
                        "it switches from kernel {from:?}, but kernel {:?} is current",
                        self.current
                    ));
                }
                self.make_current(*kernel, cause)?;
            }
            Action::KernelBoot { kernel, outcome } => {
                if self.current != Some(*kernel) {
                    return Err(format!(
                        "it records a boot of kernel {kernel}, but kernel {:?} is current",
                        self.current
                    ));
                }
                match outcome {
                    KernelOutcome::Good => {
                        let record = self.kernel_mut(*kernel)?;
                        record.status = Status::Good;
                        record.failure = None;
                        self.last_good = Some(*kernel);
                    }
                    KernelOutcome::Failed {
                        why,
                        tries_left,
                        reverted_to,
                    } => {
                        let (expected_tries, exhausted, expected_revert) =
                            self.failure_outcome(*kernel)?;
                        if (*tries_left, *reverted_to) != (expected_tries, expected_revert) {
                            return Err(format!(
                                "it records {tries_left} tries left and a revert to {reverted_to:?}, but boot counting gives {expected_tries} and {expected_revert:?}"
                            ));
                        }
                        let record = self.kernel_mut(*kernel)?;
                        record.failure = Some(why.clone());
                        record.tries_left = *tries_left;
                        if exhausted {
                            record.status = Status::Failed;
                            if self.last_good == Some(*kernel) {
                                self.last_good = None;
                            }
                        }
                        if let Some(good) = reverted_to {
                            self.current = Some(*good);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn make_current(&mut self, id: u32, cause: &SwitchCause) -> std::result::Result<(), String> {
        let record = self.kernel_mut(id)?;
        if record.status != Status::Good {
            record.status = Status::Trial;
            record.tries_left = record.tries_left.max(1);
        }
        self.current = Some(id);
        if let SwitchCause::Cartridge { sha256 } = cause {
            self.cartridge = Some(*sha256);
        }
        Ok(())
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!("unknown format {:?}", self.format));
        }
        if self.version != STATE_VERSION {
            return Err(format!(
                "format version {} (this pxOS reads version {STATE_VERSION})",
                self.version
            ));
        }
        let known = |id: Option<u32>| id.is_none_or(|id| self.kernel(id).is_some());
        if !known(self.current) || !known(self.last_good) {
            return Err("it points at a kernel it does not list".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for kernel in &self.kernels {
            if kernel.id >= self.next_id || !ids.insert(kernel.id) {
                return Err(format!(
                    "kernel record {} is malformed or repeated",
                    kernel.id
                ));
            }
            check_version_name(&kernel.version).map_err(|err| err.to_string())?;
        }
        Ok(())
    }
}

impl Checkpointed for State {
    const DOMAIN: Domain = Domain::Kernels;
    const WHAT: &'static str = "kernel state";
    const FSCK: &'static str = "pxos kernel fsck";
    const LABELS: (durable::Label, durable::Label) =
        (durable::label::KERNEL_INTENT, durable::label::KERNEL_STATE);

    fn validate(&self) -> std::result::Result<(), String> {
        State::validate(self)
    }

    fn records(&self) -> usize {
        self.kernels.len()
    }

    fn apply(&mut self, entry: &LogEntry) -> std::result::Result<(), String> {
        State::apply(self, entry)
    }

    fn same_as(&self, other: &State) -> bool {
        self.current == other.current
            && self.last_good == other.last_good
            && self.next_id == other.next_id
            && self.cartridge == other.cartridge
            && self.kernels == other.kernels
    }

    pxos_cart::checkpoint_fields!(log, pending);
}

fn check_version_name(version: &str) -> Result<()> {
    if version.is_empty()
        || version.len() > MAX_VERSION_NAME
        || version.chars().any(char::is_control)
    {
        return Err(Error::Usage(format!(
            "{:?} is not a usable kernel version name (1-{MAX_VERSION_NAME} printable characters)",
            version.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// How one boot ended.
#[derive(Clone, Debug)]
pub struct BootReport {
    pub kernel: u32,
    pub version: String,
    /// `None` when the kernel halted and passed its health check.
    pub failure: Option<String>,
    pub trap: Option<String>,
    pub cycles: u64,
    pub output: Vec<String>,
    pub warnings: Vec<String>,
    pub screen: Screen,
    /// What the kernel asked for (SELF_MODIFY or VERSION_SWITCH), if it booted cleanly.
    pub request: Option<KernelRequest>,
    /// Set when this boot made the store revert: (from, to).
    pub reverted: Option<(u32, u32)>,
    /// The execution record of this boot.
    pub log_id: u64,
}

/// What became of a kernel's SELF_MODIFY or VERSION_SWITCH request.
#[derive(Clone, Debug)]
pub enum RequestOutcome {
    /// Nothing was asked, or it asked for the kernel already current.
    None,
    /// The kernel it asked for is current now, on trial (unless already good).
    Applied(KernelRecord),
    /// Not applied: the kernel it asked for already failed.
    Refused { kernel: u32, why: String },
}

/// A kernel about to be installed.
struct NewKernel<'a> {
    image: &'a ProgramImage,
    version: &'a str,
    parent: Option<u32>,
    tries: u32,
    /// Make it current at once, for this reason.
    current: Option<SwitchCause>,
}

/// The kernel store in a directory.
pub struct KernelStore {
    dir: PathBuf,
    file: CheckpointFile<State>,
}

impl KernelStore {
    /// Opens (creating if needed) the store at `dir`, logging to `log`.
    pub fn open(dir: &Path, log: EvolutionLog) -> Result<KernelStore> {
        let images = dir.join("images");
        std::fs::create_dir_all(&images).map_err(|err| Error::io(err, &images))?;
        Ok(KernelStore {
            dir: dir.to_path_buf(),
            file: CheckpointFile::new(dir.join("state.png"), log),
        })
    }

    /// The checkpoint file.
    pub fn state_path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    fn lock(&self) -> Result<WriteLock> {
        Ok(WriteLock::acquire(&self.dir.join("lock"))?)
    }

    /// The checkpoint as saved, validated (`None` for a new store), not
    /// checked against the log.
    pub fn checkpoint(&self) -> Result<Option<State>> {
        Ok(self.file.load()?)
    }

    /// Checks, reading only the end of the log, that it still passes through
    /// the kernel store's checkpoint and holds no change it never began.
    pub fn check_tail(&self) -> Result<()> {
        Ok(self.file.check_tail()?)
    }

    /// The current state: the checkpoint checked against the verified log,
    /// with the one kernel entry a crash may have left unapplied replayed.
    pub fn state(&self) -> Result<State> {
        Ok(self.file.state()?)
    }

    /// Intent, log entry, new state.
    fn commit(
        &self,
        state: &mut State,
        actor: Actor,
        action: Action,
        reason: &str,
    ) -> Result<LogEntry> {
        Ok(self.file.commit(state, actor, action, reason)?)
    }

    fn image_path(&self, sha256: &Hash256) -> PathBuf {
        self.dir.join("images").join(format!("{sha256}.png"))
    }

    /// The program image of kernel `id`, verified against its recorded hash.
    pub fn image(&self, id: u32) -> Result<ProgramImage> {
        let state = self.state()?;
        let record = state
            .kernel(id)
            .ok_or_else(|| Error::NotFound(format!("no kernel with id {id}")))?;
        self.read_image(record)
    }

    fn read_image(&self, record: &KernelRecord) -> Result<ProgramImage> {
        let path = self.image_path(&record.sha256);
        let bytes = std::fs::read(&path).map_err(|err| Error::io(err, &path))?;
        if Hash256::of(&bytes) != record.sha256 {
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
        actor: Actor,
    ) -> Result<KernelRecord> {
        if image.words.is_empty() {
            return Err(Error::Usage("refusing an empty kernel".into()));
        }
        check_version_name(version)?;
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let new = NewKernel {
            image,
            version,
            parent,
            tries,
            current: make_current.then_some(SwitchCause::Manual),
        };
        self.install_locked(&mut state, new, actor)
    }

    fn install_locked(
        &self,
        state: &mut State,
        new: NewKernel<'_>,
        actor: Actor,
    ) -> Result<KernelRecord> {
        let NewKernel {
            image,
            version,
            parent,
            tries,
            current,
        } = new;
        if state.by_version(version).is_some() {
            return Err(Error::Refused(format!(
                "kernel version {version} already exists"
            )));
        }
        if let Some(parent) = parent
            && state.kernel(parent).is_none()
        {
            return Err(Error::NotFound(format!(
                "parent kernel {parent} does not exist"
            )));
        }
        let png = image.to_png();
        let sha256 = Hash256::of(&png);
        let path = self.image_path(&sha256);
        if !path.exists() {
            durable::write_atomic(&path, &png, pxos_pixel::durable::label::KERNEL_IMAGE)
                .map_err(|err| Error::io(err, &path))?;
        }
        let id = state.next_id;
        let action = Action::KernelInstall {
            kernel: id,
            version: version.to_string(),
            parent,
            image: sha256,
            size: image.words.len() as u64 * 4,
            tries: tries.max(1),
            current: current.clone(),
        };
        let reason = format!(
            "kernel {id} ({version}), child of {}{}",
            parent.map_or("none".into(), |p| format!("kernel {p}")),
            if current.is_some() {
                "; now current, on trial"
            } else {
                ""
            }
        );
        self.commit(state, actor, action, &reason)?;
        Ok(state.kernel(id).cloned().expect("just installed"))
    }

    fn switch_locked(
        &self,
        state: &mut State,
        id: u32,
        cause: SwitchCause,
        actor: Actor,
        reason: &str,
    ) -> Result<KernelRecord> {
        if state.kernel(id).is_none() {
            return Err(Error::NotFound(format!("no kernel with id {id}")));
        }
        let action = Action::KernelSwitch {
            kernel: id,
            from: state.current,
            cause,
        };
        self.commit(state, actor, action, reason)?;
        Ok(state.kernel(id).cloned().expect("exists"))
    }

    /// Makes kernel `id` current (on trial unless it has booted well before).
    pub fn switch(&self, id: u32, actor: Actor, reason: &str) -> Result<KernelRecord> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        self.switch_locked(&mut state, id, SwitchCause::Manual, actor, reason)
    }

    /// Rolls back to `to`, or to the last good kernel before the current one.
    pub fn rollback(&self, to: Option<u32>, actor: Actor, reason: &str) -> Result<KernelRecord> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let target = match to {
            Some(id) => state
                .kernel(id)
                .map(|k| k.id)
                .ok_or_else(|| Error::NotFound(format!("no kernel with id {id}")))?,
            None => state
                .kernels
                .iter()
                .rev()
                .find(|k| k.status == Status::Good && Some(k.id) != state.current)
                .map(|k| k.id)
                .ok_or_else(|| Error::Refused("no earlier good kernel to roll back to".into()))?,
        };
        self.switch_locked(&mut state, target, SwitchCause::Rollback, actor, reason)
    }

    /// Makes the current cartridge's kernel current, once per cartridge: the
    /// first boot of a home, and the first after the current cartridge
    /// changed. An identical image already installed is reused. Returns the
    /// kernel it switched to, or `None` when nothing had to change.
    pub fn adopt_cartridge_kernel(
        &self,
        cartridge: &CartRef,
        image: &ProgramImage,
    ) -> Result<Option<KernelRecord>> {
        if self.state()?.cartridge == Some(cartridge.sha256) {
            return Ok(None);
        }
        let _lock = self.lock()?;
        let mut state = self.state()?;
        if state.cartridge == Some(cartridge.sha256) {
            return Ok(None);
        }
        let sha256 = Hash256::of(&image.to_png());
        let cause = SwitchCause::Cartridge {
            sha256: cartridge.sha256,
        };
        match state
            .kernels
            .iter()
            .find(|k| k.sha256 == sha256)
            .map(|k| k.id)
        {
            Some(existing) => {
                let reason = format!(
                    "the kernel of {} (sha256 {}...)",
                    cartridge.id(),
                    cartridge.sha256.short()
                );
                Ok(Some(self.switch_locked(
                    &mut state,
                    existing,
                    cause,
                    Actor::system(),
                    &reason,
                )?))
            }
            None => {
                let mut version = cartridge.id();
                let mut n = 2;
                while state.by_version(&version).is_some() {
                    version = format!("{}#{n}", cartridge.id());
                    n += 1;
                }
                let parent = state.current;
                Ok(Some(self.install_locked(
                    &mut state,
                    NewKernel {
                        image,
                        version: &version,
                        parent,
                        tries: 1,
                        current: Some(cause),
                    },
                    Actor::system(),
                )?))
            }
        }
    }

    /// Boots the current kernel once through `hypervisor`, records the outcome
    /// (good, a used try, or failed and reverted) and returns the report.
    pub fn boot(
        &self,
        hypervisor: &Hypervisor,
        storage: Box<dyn Storage>,
        screen: Option<Screen>,
        fuel: u64,
    ) -> Result<BootReport> {
        let state = self.state()?;
        let record = state
            .current_record()
            .cloned()
            .ok_or_else(|| Error::NotFound("no current kernel (install one first)".into()))?;
        let (result, failure) = match self.read_image(&record) {
            Ok(image) => {
                let result = hypervisor.run_program(Launch {
                    name: format!("kernel {} ({})", record.id, record.version),
                    image: &image,
                    args: &[],
                    sandbox: Sandbox::kernel(fuel),
                    storage,
                    screen,
                    on_print: None,
                    kernel: Some(KernelInfo {
                        versions: state.kernels.iter().map(|k| k.id).collect(),
                        current: record.id,
                    }),
                    session: None,
                    llm: None,
                });
                let failure = match (&result.trap_kind, &result.trap) {
                    (None, _) => {
                        let unhealthy = result.output.iter().any(|line| {
                            Some(line) == pxos_vm::default_messages().get(&HEALTH_FAILED_MESSAGE)
                        });
                        unhealthy.then(|| "failed its health check".to_string())
                    }
                    (Some("fuel-exhausted"), _) => Some(format!(
                        "did not halt within {fuel} instructions (runs forever?)"
                    )),
                    (_, trap) => Some(format!("trapped: {}", trap.clone().unwrap_or_default())),
                };
                (Some(result), failure)
            }
            Err(err) => (None, Some(format!("does not load: {err}"))),
        };
        let reverted = self.record_boot(record.id, failure.as_deref())?;
        let result = result.unwrap_or_else(crate::hypervisor::RunResult::not_run);
        Ok(BootReport {
            kernel: record.id,
            version: record.version.clone(),
            request: if failure.is_none() {
                result.request.clone()
            } else {
                None
            },
            failure,
            trap: result.trap.clone(),
            cycles: result.cycles,
            output: result.output.clone(),
            warnings: result.warnings.clone(),
            screen: result
                .screen
                .clone()
                .unwrap_or_else(|| Screen::new(512, 512).expect("a 512x512 screen")),
            reverted,
            log_id: result.log_id,
        })
    }

    /// Records a boot outcome; returns (from, to) when it reverted. A clean
    /// boot of a kernel that is already good changes nothing and logs nothing.
    fn record_boot(&self, id: u32, failure: Option<&str>) -> Result<Option<(u32, u32)>> {
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let record = state
            .kernel(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("kernel {id} vanished during its boot")))?;
        if state.current != Some(id) {
            return Err(Error::Usage(format!(
                "kernel {id} is no longer current (another process switched kernels during the boot)"
            )));
        }
        match failure {
            None if record.status == Status::Good && state.last_good == Some(id) => Ok(None),
            None => {
                let action = Action::KernelBoot {
                    kernel: id,
                    outcome: KernelOutcome::Good,
                };
                let reason = format!("kernel {id} ({}) halted cleanly: good", record.version);
                self.commit(&mut state, Actor::system(), action, &reason)?;
                Ok(None)
            }
            Some(why) => {
                let (tries_left, _, reverted_to) =
                    state.failure_outcome(id).map_err(Error::Usage)?;
                let reason = match reverted_to {
                    Some(good) => format!("kernel {id} {why}; reverted to kernel {good}"),
                    None if tries_left > 0 => format!("kernel {id} {why}; {tries_left} tries left"),
                    None => format!("kernel {id} {why}; no good kernel to revert to"),
                };
                let action = Action::KernelBoot {
                    kernel: id,
                    outcome: KernelOutcome::Failed {
                        why: why.to_string(),
                        tries_left,
                        reverted_to,
                    },
                };
                self.commit(&mut state, Actor::system(), action, &reason)?;
                Ok(reverted_to.map(|good| (id, good)))
            }
        }
    }

    /// Carries out what a cleanly booted kernel asked for: VERSION_SWITCH makes
    /// that version current; SELF_MODIFY installs the module as a new version
    /// (child of the kernel that asked; an identical installed image is reused)
    /// and makes it current on trial. A kernel that already failed is not
    /// tried again on a kernel's request (a person can still switch to it).
    pub fn apply_request(&self, report: &BootReport) -> Result<RequestOutcome> {
        let Some(request) = &report.request else {
            return Ok(RequestOutcome::None);
        };
        let _lock = self.lock()?;
        let mut state = self.state()?;
        let refuse_failed = |state: &State, id: u32| -> Option<RequestOutcome> {
            state
                .kernel(id)
                .filter(|k| k.status == Status::Failed)
                .map(|k| RequestOutcome::Refused {
                    kernel: k.id,
                    why: format!(
                        "kernel {} ({}) already failed ({}); a kernel's request does not retry it",
                        k.id,
                        k.version,
                        k.failure.as_deref().unwrap_or("failed")
                    ),
                })
        };
        match request {
            KernelRequest::Switch { version } => {
                if let Some(refused) = refuse_failed(&state, *version) {
                    return Ok(refused);
                }
                let reason = format!(
                    "VERSION_SWITCH from kernel {} to kernel {version}",
                    report.kernel
                );
                Ok(RequestOutcome::Applied(self.switch_locked(
                    &mut state,
                    *version,
                    SwitchCause::VersionSwitch,
                    Actor::system(),
                    &reason,
                )?))
            }
            KernelRequest::Replace { id, words } => {
                let image = ProgramImage {
                    words: words.clone(),
                    entry: 0,
                };
                let sha256 = Hash256::of(&image.to_png());
                let reason = format!(
                    "SELF_MODIFY from kernel {} (module {id:#010x})",
                    report.kernel
                );
                let cause = SwitchCause::SelfModify { module: *id };
                match state
                    .kernels
                    .iter()
                    .find(|k| k.sha256 == sha256)
                    .map(|k| k.id)
                {
                    Some(existing) => {
                        if let Some(refused) = refuse_failed(&state, existing) {
                            return Ok(refused);
                        }
                        if state.current == Some(existing) {
                            return Ok(RequestOutcome::None);
                        }
                        Ok(RequestOutcome::Applied(self.switch_locked(
                            &mut state,
                            existing,
                            cause,
                            Actor::system(),
                            &reason,
                        )?))
                    }
                    None => {
                        let name = format!("{}+{}", report.version, state.next_id);
                        let name = if name.len() > MAX_VERSION_NAME {
                            format!("evolved-{}", state.next_id)
                        } else {
                            name
                        };
                        Ok(RequestOutcome::Applied(self.install_locked(
                            &mut state,
                            NewKernel {
                                image: &image,
                                version: &name,
                                parent: Some(report.kernel),
                                tries: 1,
                                current: Some(cause),
                            },
                            Actor::system(),
                        )?))
                    }
                }
            }
        }
    }

    /// Checks the kernel state against the log and the images. With `repair`,
    /// rebuilds `state.png` from the log (the damaged one is kept beside it as
    /// `state.png.damaged-<time>`). Nothing is deleted.
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
        let mut known = std::collections::BTreeSet::new();
        for record in &rebuilt.kernels {
            known.insert(record.sha256);
            if let Err(err) = self.read_image(record) {
                report.unrecovered.push(format!(
                    "kernel {} ({}): its image is missing or damaged ({err})",
                    record.id, record.version
                ));
            }
        }
        report.leftovers = checkpoint::leftovers(&self.dir);
        report
            .leftovers
            .extend(checkpoint::leftovers(&self.dir.join("images")));
        if let Ok(dir) = std::fs::read_dir(self.dir.join("images")) {
            let mut strays: Vec<PathBuf> = dir
                .flatten()
                .map(|e| e.path())
                .filter(|path| {
                    !path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(durable::TEMP_PREFIX))
                })
                .filter(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".png"))
                        .is_none_or(|stem| Hash256::parse(stem).is_none_or(|h| !known.contains(&h)))
                })
                .collect();
            strays.sort();
            for path in strays {
                report.orphans.push(format!(
                    "{}: an image no log entry installs (kept; `pxos kernel install` it to use it)",
                    path.display()
                ));
            }
        }
        if repair {
            self.file.repair(&rebuilt, &mut report)?;
        }
        Ok(report)
    }

    /// The kernel entries of the evolution log, oldest first.
    pub fn history(&self) -> Result<Vec<LogEntry>> {
        Ok(self
            .file
            .log()
            .verified_entries()?
            .iter()
            .filter(|e| e.action.domain() == Domain::Kernels)
            .cloned()
            .collect())
    }
}

/// Decodes and validates `state.png`'s bytes (damage is an error, never a panic).
pub fn decode_state(bytes: &[u8]) -> Result<State> {
    Ok(checkpoint::decode(bytes)?)
}
