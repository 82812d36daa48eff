//! Booting a cartridge: the boot sequence, stage by stage.
//!
//! Stage 0 (`builtin:verify`) checks every file of the unpacked cartridge
//! against its manifest hash and mounts PixelFS read-only. Every other stage
//! names a program image in the cartridge, which runs in PXVM under the
//! hypervisor with its own fuel budget, drawing on a screen shared by all
//! stages. A required stage that fails halts the boot with a report; an
//! optional one is reported and skipped, and so is any stage whose `requires`
//! did not succeed.
//!
//! The stage marked `"kernel": true` is where the kernel store and the boot
//! meet. Booting the current cartridge, that stage runs the kernel store's
//! current kernel, not the module in the cartridge: the cartridge's kernel is
//! installed into the store the first time the cartridge boots as current.
//! Boot counting applies: a trial kernel that fails uses a try, and when it
//! has none left the store reverts and the stage runs again with the previous
//! kernel, so the boot goes on. SELF_MODIFY and VERSION_SWITCH requests the
//! kernel makes are applied after a clean boot: the next boot runs the new
//! kernel, on trial.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pxos_cart::{EvolutionLog, Manifest, Registry};
use pxos_vm::{Console, Font, MemoryStorage, ProgramImage, Screen, Storage};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hypervisor::{Hypervisor, Launch, Sandbox};
use crate::kernel_store::{KernelStore, RequestOutcome};
use crate::storage::CartridgeStorage;

/// The `path` of the built-in verification stage.
pub const BUILTIN_VERIFY: &str = "builtin:verify";
/// The LLM control plane: a host step that discovers the configured models
/// and writes the home's routing table (`HOME/agents/routing.json`).
pub const BUILTIN_MODELS: &str = "builtin:models";

/// Host steps a boot stage may ask for (`"host": NAME`, or the path
/// [`BUILTIN_MODELS`]): what only the host can do at boot, supplied by the
/// caller (the CLI's agents). A boot without them says each step did not run.
pub trait HostSteps {
    /// Runs step `name` (`policy`, `models`); `dry_run` writes nothing.
    /// The line for the boot report, or why it failed.
    fn run(&self, name: &str, dry_run: bool) -> std::result::Result<String, String>;
}

/// The host steps of a boot (a handle the request can carry).
#[derive(Clone)]
pub struct Host(pub std::rc::Rc<dyn HostSteps>);

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host(..)")
    }
}
/// Default instruction budget per stage.
pub const DEFAULT_STAGE_FUEL: u64 = 10_000_000;
/// Where a world keeps its console font.
pub const FONT_PATH: &str = "fonts/console.png";
/// Most kernels one boot tries (each revert tries the previous one).
const MAX_KERNEL_TRIES: usize = 8;

/// One boot stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub number: u32,
    pub name: String,
    pub path: String,
    pub required: bool,
    pub description: String,
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub fuel: Option<u64>,
    /// The kernel stage: booting the current cartridge, it runs the kernel
    /// store's current kernel (at most one stage has this).
    #[serde(default)]
    pub kernel: bool,
    /// The shell stage: `pxos shell`, and `pxos boot` on a terminal, run its
    /// program interactively (at most one stage has this).
    #[serde(default)]
    pub shell: bool,
    /// A host step run after the stage's program halts cleanly (`policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A boot sequence (`boot/sequence.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    pub stages: Vec<Stage>,
}

impl Sequence {
    /// Parses and checks a sequence: increasing numbers, unique names, known
    /// earlier `requires`, safe paths, at most one kernel stage, at most 64 stages.
    pub fn parse(json: &[u8]) -> Result<Sequence> {
        let sequence: Sequence = serde_json::from_slice(json)
            .map_err(|err| Error::Format(format!("boot sequence is invalid: {err}")))?;
        if sequence.stages.is_empty() || sequence.stages.len() > 64 {
            return Err(Error::Format("a boot sequence has 1 to 64 stages".into()));
        }
        let mut names = BTreeSet::new();
        let mut previous = None;
        for stage in &sequence.stages {
            if previous.is_some_and(|p| stage.number <= p) {
                return Err(Error::Format(format!(
                    "stage {} ({}) is out of order",
                    stage.number, stage.name
                )));
            }
            previous = Some(stage.number);
            for required in &stage.requires {
                if !names.contains(required.as_str()) {
                    return Err(Error::Format(format!(
                        "stage {} requires '{required}', which does not come before it",
                        stage.name
                    )));
                }
            }
            if !names.insert(stage.name.as_str()) {
                return Err(Error::Format(format!(
                    "two stages are named '{}'",
                    stage.name
                )));
            }
            if stage.kernel && stage.shell {
                return Err(Error::Format(format!(
                    "stage {} cannot be both the kernel and the shell stage",
                    stage.name
                )));
            }
            if let Some(step) = &stage.host
                && !HOST_STEPS.contains(&step.as_str())
            {
                return Err(Error::Format(format!(
                    "stage {}: unknown host step {step:?} (one of: {})",
                    stage.name,
                    HOST_STEPS.join(", ")
                )));
            }
            if stage.path == BUILTIN_VERIFY || stage.path == BUILTIN_MODELS {
                if stage.kernel || stage.shell {
                    return Err(Error::Format(format!(
                        "stage {} cannot be both the verification stage and the kernel or shell stage",
                        stage.name
                    )));
                }
            } else {
                pxos_cart::cartridge::check_entry_path(&stage.path, &pxos_cart::Limits::default())
                    .map_err(|err| Error::Format(format!("stage {}: {err}", stage.name)))?;
            }
        }
        if sequence.stages.iter().filter(|s| s.kernel).count() > 1 {
            return Err(Error::Format(
                "a boot sequence has at most one kernel stage".into(),
            ));
        }
        if sequence.stages.iter().filter(|s| s.shell).count() > 1 {
            return Err(Error::Format(
                "a boot sequence has at most one shell stage".into(),
            ));
        }
        Ok(sequence)
    }

    /// The kernel stage, if the sequence has one.
    pub fn kernel_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|s| s.kernel)
    }

    /// The shell stage, if the sequence has one.
    pub fn shell_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|s| s.shell)
    }
}

/// How a stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Skipped,
    Checked,
}

/// One kernel boot within the kernel stage.
#[derive(Clone, Debug, Serialize)]
pub struct KernelAttempt {
    pub kernel: u32,
    pub version: String,
    pub ok: bool,
    pub failure: Option<String>,
    /// The kernel the store reverted to after this failure.
    pub reverted_to: Option<u32>,
    /// Its execution record.
    pub log_id: u64,
}

/// One line of the boot report.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub number: u32,
    pub name: String,
    pub required: bool,
    pub outcome: Outcome,
    pub detail: String,
    pub output: Vec<String>,
    pub warnings: Vec<String>,
    pub cycles: u64,
    pub micros: u128,
    /// The kernels the kernel stage booted (from the kernel store).
    pub kernels: Vec<KernelAttempt>,
}

/// A kernel change applied after the boot, for the next one.
#[derive(Clone, Debug, Serialize)]
pub struct KernelChange {
    pub kernel: u32,
    pub version: String,
    /// False when the request was refused (the kernel it asked for already failed).
    pub applied: bool,
    pub detail: String,
}

/// The whole boot.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cartridge: String,
    pub sha256: pxos_pixel::Hash256,
    pub dry_run: bool,
    pub stages: Vec<StageReport>,
    /// The required stage that halted the boot, if any.
    pub halted_at: Option<String>,
    pub micros: u128,
    /// The kernel change the kernel asked for, applied after this clean boot.
    pub kernel_change: Option<KernelChange>,
    #[serde(skip)]
    pub screen: Screen,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.halted_at.is_none()
    }

    /// Every kernel revert during this boot: (from, to, why).
    pub fn reverts(&self) -> Vec<(u32, u32, String)> {
        self.stages
            .iter()
            .flat_map(|s| &s.kernels)
            .filter_map(|k| {
                k.reverted_to
                    .map(|to| (k.kernel, to, k.failure.clone().unwrap_or_default()))
            })
            .collect()
    }
}

/// The host steps a stage may name.
pub const HOST_STEPS: &[&str] = &["policy", "models"];

/// Runs host step `step` for `line`: through the caller's host steps, or
/// says plainly that it did not run.
fn host_step(host: Option<&Host>, step: &str, dry_run: bool, line: &mut StageReport, alone: bool) {
    let joined = |line: &mut StageReport, text: String| {
        line.detail = if line.detail.is_empty() {
            text
        } else {
            format!("{}; {text}", line.detail)
        };
    };
    match host {
        Some(host) => match host.0.run(step, dry_run) {
            Ok(text) => joined(line, text),
            Err(why) => {
                line.outcome = Outcome::Failed;
                joined(line, format!("host step {step} failed: {why}"));
            }
        },
        None => {
            if alone {
                line.outcome = Outcome::Skipped;
            }
            joined(
                line,
                format!("host step {step} not run: only `pxos boot` of the current world runs it"),
            );
        }
    }
}

/// What `boot` needs besides the unpacked cartridge.
pub struct BootOptions<'a> {
    pub dry_run: bool,
    pub sequence: Option<Sequence>,
    pub hypervisor: &'a Hypervisor,
    pub sandbox: Sandbox,
    /// Storage for file syscalls (PixelFS, read-only at boot).
    pub storage: &'a dyn Fn() -> Box<dyn Storage>,
    /// PixelFS entries mounted (for the report), when there is a PixelFS.
    pub mounted: Option<usize>,
    /// The kernel store whose current kernel the kernel stage boots; `None`
    /// runs the cartridge's own kernel module like any other stage.
    pub kernels: Option<&'a KernelStore>,
    /// The host steps (`None`: every host step says it did not run).
    pub host: Option<Host>,
}

fn stage_line(stage: &Stage) -> StageReport {
    StageReport {
        number: stage.number,
        name: stage.name.clone(),
        required: stage.required,
        outcome: Outcome::Ok,
        detail: String::new(),
        output: Vec::new(),
        warnings: Vec::new(),
        cycles: 0,
        micros: 0,
        kernels: Vec::new(),
    }
}

/// Boots the cartridge unpacked at `root`.
pub fn boot(
    root: &Path,
    manifest: &Manifest,
    sha256: &pxos_pixel::Hash256,
    options: &BootOptions<'_>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let sequence = match &options.sequence {
        Some(sequence) => sequence.clone(),
        None => Sequence::parse(&read_in(root, "boot/sequence.json")?)?,
    };
    let mut report = Report {
        cartridge: manifest.id(),
        sha256: *sha256,
        dry_run: options.dry_run,
        stages: Vec::new(),
        halted_at: None,
        micros: 0,
        kernel_change: None,
        screen: Screen::new(512, 512).expect("a 512x512 screen is in range"),
    };
    let mut succeeded: BTreeSet<String> = BTreeSet::new();
    let mut screen = report.screen.clone();
    let mut kernel_request = None;
    for stage in &sequence.stages {
        let stage_started = std::time::Instant::now();
        let mut line = stage_line(stage);
        let missing: Vec<&str> = stage
            .requires
            .iter()
            .filter(|r| !succeeded.contains(*r))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            line.outcome = if stage.required {
                Outcome::Failed
            } else {
                Outcome::Skipped
            };
            line.detail = format!("requires {} which did not succeed", missing.join(", "));
        } else if stage.path == BUILTIN_VERIFY {
            match verify_files(root, manifest) {
                Ok(count) => {
                    line.detail = match options.mounted {
                        Some(entries) => format!(
                            "{count} files verified; PixelFS mounted read-only ({entries} entries)"
                        ),
                        None => format!("{count} files verified; no PixelFS in this home"),
                    };
                }
                Err(err) => {
                    line.outcome = Outcome::Failed;
                    line.detail = err.to_string();
                }
            }
        } else if stage.path == BUILTIN_MODELS {
            host_step(
                options.host.as_ref(),
                "models",
                options.dry_run,
                &mut line,
                true,
            );
        } else if let (true, Some(store), false) = (stage.kernel, options.kernels, options.dry_run)
        {
            let fuel = stage
                .fuel
                .map_or(options.sandbox.fuel, |f| f.min(options.sandbox.fuel));
            let storage = || -> Box<dyn Storage> {
                Box::new(CartridgeStorage::new(
                    root.to_path_buf(),
                    (options.storage)(),
                ))
            };
            kernel_request = boot_kernel(
                store,
                options.hypervisor,
                &storage,
                fuel,
                &mut screen,
                &mut line,
            )?;
        } else {
            match load_module(root, &stage.path) {
                Err(err) => {
                    line.outcome = Outcome::Failed;
                    line.detail = err.to_string();
                }
                Ok(image) if options.dry_run => {
                    line.outcome = Outcome::Checked;
                    line.detail = format!(
                        "{} words, entry {} (not run: dry run)",
                        image.words.len(),
                        image.entry
                    );
                }
                Ok(image) => {
                    let mut sandbox = options.sandbox.clone();
                    if let Some(fuel) = stage.fuel {
                        sandbox.fuel = sandbox.fuel.min(fuel);
                    }
                    let storage = CartridgeStorage::new(root.to_path_buf(), (options.storage)());
                    let mut launch = Launch::new(
                        format!("{}:{}", manifest.id(), stage.path),
                        &image,
                        sandbox,
                        Box::new(storage),
                    );
                    launch.screen = Some(screen.clone());
                    let result = options.hypervisor.run_program(launch);
                    if let Some(after) = &result.screen {
                        screen = after.clone();
                    }
                    line.cycles = result.cycles;
                    line.output = result.output;
                    line.warnings = result.warnings;
                    if result.success {
                        line.detail = format!("{} cycles", result.cycles);
                        if let Some(step) = &stage.host {
                            host_step(options.host.as_ref(), step, false, &mut line, false);
                        }
                    } else {
                        line.outcome = Outcome::Failed;
                        line.detail = result.trap.unwrap_or_default();
                    }
                }
            }
        }
        line.micros = stage_started.elapsed().as_micros();
        match line.outcome {
            Outcome::Ok | Outcome::Checked => {
                succeeded.insert(stage.name.clone());
            }
            Outcome::Failed if !stage.required => line.outcome = Outcome::Skipped,
            _ => {}
        }
        let halt = line.outcome == Outcome::Failed;
        report.stages.push(line);
        if halt {
            report.halted_at = Some(stage.name.clone());
            break;
        }
    }
    if let (Some(store), Some(kernel_report), true) = (options.kernels, kernel_request, report.ok())
    {
        let detail = match &kernel_report.request {
            Some(pxos_vm::KernelRequest::Replace { id, .. }) => {
                format!(
                    "SELF_MODIFY (module {id:#010x}) from kernel {}",
                    kernel_report.kernel
                )
            }
            Some(pxos_vm::KernelRequest::Switch { version }) => {
                format!(
                    "VERSION_SWITCH to kernel {version} from kernel {}",
                    kernel_report.kernel
                )
            }
            None => String::new(),
        };
        match store.apply_request(&kernel_report)? {
            RequestOutcome::None => {}
            RequestOutcome::Applied(next) => {
                report.kernel_change = Some(KernelChange {
                    kernel: next.id,
                    version: next.version.clone(),
                    applied: true,
                    detail,
                });
            }
            RequestOutcome::Refused { kernel, why } => {
                report.kernel_change = Some(KernelChange {
                    kernel,
                    version: String::new(),
                    applied: false,
                    detail: format!("{detail}: not applied: {why}"),
                });
            }
        }
    }
    report.screen = screen;
    report.micros = started.elapsed().as_micros();
    Ok(report)
}

/// The kernel stage with the kernel store: boots the current kernel, and on a
/// revert the previous one, until one boots or none is left to revert to.
/// Returns the report of the kernel that booted cleanly (its request is
/// applied after the whole boot).
fn boot_kernel(
    store: &KernelStore,
    hypervisor: &Hypervisor,
    storage: &dyn Fn() -> Box<dyn Storage>,
    fuel: u64,
    screen: &mut Screen,
    line: &mut StageReport,
) -> Result<Option<crate::kernel_store::BootReport>> {
    let before = screen.clone();
    for _ in 0..MAX_KERNEL_TRIES {
        let report = store.boot(hypervisor, storage(), Some(before.clone()), fuel)?;
        line.cycles += report.cycles;
        line.output.extend(report.output.iter().cloned());
        line.warnings.extend(report.warnings.iter().cloned());
        line.kernels.push(KernelAttempt {
            kernel: report.kernel,
            version: report.version.clone(),
            ok: report.failure.is_none(),
            failure: report.failure.clone(),
            reverted_to: report.reverted.map(|(_, to)| to),
            log_id: report.log_id,
        });
        match (&report.failure, report.reverted) {
            (None, _) => {
                *screen = report.screen.clone();
                let reverts = line.kernels.len() - 1;
                line.detail = format!(
                    "kernel {} ({}) booted, {} cycles{}",
                    report.kernel,
                    report.version,
                    report.cycles,
                    if reverts > 0 {
                        format!(" after {reverts} revert(s)")
                    } else {
                        String::new()
                    }
                );
                return Ok(Some(report));
            }
            (Some(_), Some(_)) => {}
            (Some(why), None) => {
                *screen = report.screen.clone();
                line.outcome = Outcome::Failed;
                line.detail = format!(
                    "kernel {} ({}) {why}; {}",
                    report.kernel,
                    report.version,
                    match store.state()?.kernel(report.kernel) {
                        Some(record) if record.tries_left > 0 => {
                            format!("{} tries left before it is reverted", record.tries_left)
                        }
                        _ => "no good kernel to revert to".to_string(),
                    }
                );
                return Ok(None);
            }
        }
    }
    line.outcome = Outcome::Failed;
    line.detail = format!("{MAX_KERNEL_TRIES} kernels failed in a row");
    Ok(None)
}

pub(crate) fn read_in(root: &Path, path: &str) -> Result<Vec<u8>> {
    let full: PathBuf = root.join(path);
    std::fs::read(&full)
        .map_err(|err| Error::Format(format!("{path}: cannot read it from the cartridge ({err})")))
}

/// Loads a program image of an unpacked cartridge.
pub fn load_module(root: &Path, path: &str) -> Result<ProgramImage> {
    let bytes = read_in(root, path)?;
    ProgramImage::from_png(&bytes).map_err(|err| Error::Format(format!("{path}: {err}")))
}

/// Stage 0: every file on disk matches its manifest hash.
pub fn verify_files(root: &Path, manifest: &Manifest) -> Result<usize> {
    for file in &manifest.files {
        let path = root.join(&file.path);
        let sha = pxos_pixel::sha256_file(&path)
            .map_err(|err| Error::Format(format!("{}: {err}", file.path)))?;
        if pxos_pixel::hex(&sha) != file.sha256 {
            return Err(Error::Format(format!(
                "{} does not match its hash in the manifest",
                file.path
            )));
        }
    }
    Ok(manifest.files.len())
}

/// Reads a world's message table (`messages.json`: id -> text), if it has one.
pub fn messages(root: &Path) -> Result<BTreeMap<u32, String>> {
    let mut table = pxos_vm::default_messages();
    if let Ok(bytes) = std::fs::read(root.join("messages.json")) {
        let parsed: BTreeMap<String, String> = serde_json::from_slice(&bytes)
            .map_err(|err| Error::Format(format!("messages.json is invalid: {err}")))?;
        for (id, text) in parsed {
            let id: u32 = id
                .parse()
                .map_err(|_| Error::Format(format!("messages.json: '{id}' is not a number")))?;
            table.insert(id, text);
        }
    }
    Ok(table)
}

/// A world's console: its own font (`fonts/console.png`) when it has one.
pub fn console(root: &Path) -> Result<Console> {
    let mut console = Console::default();
    match std::fs::read(root.join(FONT_PATH)) {
        Ok(bytes) => {
            console.font = std::sync::Arc::new(
                Font::from_png(&bytes)
                    .map_err(|err| Error::Format(format!("{FONT_PATH}: {err}")))?,
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io(err, &root.join(FONT_PATH))),
    }
    Ok(console)
}

/// The hypervisor for a world unpacked at `root`: its messages and font.
pub fn world_hypervisor(home: &Path, root: &Path) -> Result<Hypervisor> {
    Ok(
        Hypervisor::new(&home.join("run").join("executions"), messages(root)?)
            .with_console(console(root)?),
    )
}

/// An empty storage for programs that get no files.
pub fn no_storage() -> Box<dyn Storage> {
    Box::new(MemoryStorage::default())
}

/// What `pxos boot` asks for.
#[derive(Clone, Debug, Default)]
pub struct BootRequest {
    pub dry_run: bool,
    pub sequence_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub screen_file: Option<PathBuf>,
    /// `name` or `name@version`; the current cartridge when `None`.
    pub cartridge: Option<String>,
    /// The host steps (the policy, the model control plane), run only when
    /// the current world boots.
    pub host: Option<Host>,
}

impl BootRequest {
    /// The sequence `--sequence FILE` gives, if any.
    fn sequence(&self) -> Result<Option<Sequence>> {
        self.sequence_file
            .as_ref()
            .map(|path| {
                Sequence::parse(&pxos_pixel::text::read_input(path)?)
                    .map_err(|err| err.with_path(path))
            })
            .transpose()
    }
}

/// What `boot_home` did.
pub struct HomeBoot {
    pub report: Report,
    /// The default world was installed by this boot.
    pub installed: bool,
    /// A dry run on a fresh home: the default world a boot would install (it
    /// was built and checked in a scratch folder outside the home).
    pub would_install: bool,
    /// Genesis ran on the current cartridge for the first time: (passed, failed checks).
    pub genesis: Option<(bool, Vec<String>)>,
    pub screen_file: PathBuf,
    pub log_file: Option<PathBuf>,
    pub status: pxos_cart::Status,
    /// Why the boot ran read-only: the evolution log does not verify, or
    /// disagrees with the registry. Nothing was installed, counted or changed.
    pub degraded: Option<String>,
    /// The kernel store's current kernel was switched to this cartridge's kernel.
    pub adopted_kernel: Option<(u32, String)>,
}

/// The open stores of a home.
pub struct HomeStores {
    pub log: EvolutionLog,
    pub registry: Registry,
    pub kernels: KernelStore,
}

impl HomeStores {
    /// Opens the log, the registry and the kernel store of `home`.
    pub fn open(home: &Path) -> Result<HomeStores> {
        let log = EvolutionLog::open(&home.join("log"))?;
        Ok(HomeStores {
            registry: Registry::open(&home.join("carts"), log.clone())?,
            kernels: KernelStore::open(&home.join("kernels"), log.clone())?,
            log,
        })
    }
}

/// Boots a pxOS home: installs the default world on a fresh home, unpacks the
/// chosen cartridge once into `run/<sha256>/`, boots it (sandboxed unless it is
/// the current cartridge), and writes the boot log and the screen PNG.
///
/// When the evolution log does not verify, or the registry disagrees with
/// it, the boot still runs, read-only: the registry's checkpoint names the
/// cartridge, its own kernel module runs, and nothing is installed, counted
/// or changed. [`HomeBoot::degraded`] says why.
pub fn boot_home(home: &Path, request: &BootRequest) -> Result<HomeBoot> {
    if request.dry_run && is_fresh(home) {
        return dry_run_fresh(home, request);
    }
    let stores = HomeStores::open(home)?;
    let trusted = stores
        .log
        .verify()
        .map_err(Error::from)
        .and_then(|v| {
            if v.is_ok() {
                Ok(())
            } else {
                Err(Error::Tampered(v.problems.join("; ")))
            }
        })
        .and_then(|()| stores.registry.check_against_log().map_err(Error::from))
        .and_then(|()| stores.kernels.state().map(|_| ()));
    let degraded = match trusted {
        Ok(()) => None,
        Err(err) if err.kind() == pxos_pixel::ErrorKind::Tampered => Some(err.to_string()),
        Err(err) => return Err(err),
    };
    let mut installed = false;
    let mut genesis = None;
    let record = if degraded.is_none() {
        let (current, fresh) = crate::world::ensure_current(home, &stores.registry)?;
        installed = fresh;
        if !request.dry_run {
            genesis = crate::world::ensure_genesis(home, &stores.registry, &current)?;
        }
        match &request.cartridge {
            Some(query) => stores.registry.find(query)?,
            None => stores.registry.current()?.unwrap_or(current),
        }
    } else {
        let state = stores.registry.checkpoint()?.ok_or_else(|| {
            Error::Tampered(format!(
                "{}; and there is no registry to boot from",
                degraded.clone().unwrap_or_default()
            ))
        })?;
        let found = match &request.cartridge {
            Some(query) => state
                .cartridges
                .iter()
                .rev()
                .find(|c| c.id == *query || c.name == *query)
                .cloned(),
            None => state.current_record().cloned(),
        };
        found.ok_or_else(|| {
            Error::NotFound("no such cartridge in the registry's checkpoint".into())
        })?
    };
    let stored = stores.registry.path_of(&record);
    let root = unpacked(home, &stored, &record.sha256)?;
    let (manifest, _) = pxos_cart::read_manifest(&stored, &pxos_cart::Limits::default())?;
    let sequence = request.sequence()?;
    let is_current = record.status == pxos_cart::Status::Current;
    let use_store = is_current && degraded.is_none() && !request.dry_run;
    let mut adopted_kernel = None;
    if use_store {
        let own = match &sequence {
            Some(sequence) => sequence.clone(),
            None => Sequence::parse(&read_in(&root, "boot/sequence.json")?)?,
        };
        if let Some(stage) = own.kernel_stage()
            && let Ok(image) = load_module(&root, &stage.path)
            && let Some(kernel) = stores
                .kernels
                .adopt_cartridge_kernel(&record.cart_ref(), &image)?
        {
            adopted_kernel = Some((kernel.id, kernel.version));
        }
    }
    let fs = pxos_fs::PixelFs::open(&home.join("fs")).ok();
    let mounted = fs.as_ref().and_then(|fs| fs.table().ok()).map(|t| t.len());
    let storage = || -> Box<dyn Storage> {
        match &fs {
            // Read-only at boot: no path is writable.
            Some(fs) => Box::new(crate::storage::FsStorage::read_only(
                fs.clone(),
                home.join("tmp"),
            )),
            None => Box::new(crate::storage::NoPixelFs),
        }
    };
    let hypervisor = world_hypervisor(home, &root)?;
    let sandbox = if is_current {
        Sandbox::trusted(DEFAULT_STAGE_FUEL)
    } else {
        Sandbox::experimental(DEFAULT_STAGE_FUEL, &format!("/sandbox/{}", record.id))
    };
    let options = BootOptions {
        dry_run: request.dry_run,
        sequence,
        hypervisor: &hypervisor,
        sandbox,
        storage: &storage,
        mounted,
        kernels: use_store.then_some(&stores.kernels),
        host: if is_current && degraded.is_none() {
            request.host.clone()
        } else {
            None
        },
    };
    let report = boot(&root, &manifest, &record.sha256, &options)?;
    let boot_dir = home.join("boot");
    // A dry run writes nothing to the home (it works on a read-only one); it
    // writes a log only where --log asks.
    let writes_home = !request.dry_run;
    if writes_home {
        std::fs::create_dir_all(&boot_dir).map_err(|err| Error::io(err, &boot_dir))?;
    }
    let screen_file = request
        .screen_file
        .clone()
        .unwrap_or_else(|| boot_dir.join("screen.png"));
    let log_file = request
        .log_file
        .clone()
        .unwrap_or_else(|| boot_dir.join("boot.log"));
    if !request.dry_run {
        pxos_pixel::durable::write_atomic(
            &screen_file,
            &report.screen.to_png(),
            pxos_pixel::durable::label::BOOT_SCREEN,
        )
        .map_err(|err| Error::io(err, &screen_file))?;
    }
    let mut lines = String::new();
    lines.push_str(&serde_json::json!({"time": pxos_fs::time::now_rfc3339(), "cartridge": report.cartridge,
        "sha256": report.sha256, "dry_run": report.dry_run, "ok": report.ok(), "micros": report.micros,
        "degraded": degraded, "kernel_change": report.kernel_change}).to_string());
    lines.push('\n');
    for stage in &report.stages {
        lines.push_str(&serde_json::to_string(stage).expect("a stage report serializes"));
        lines.push('\n');
    }
    let log_file = if writes_home || request.log_file.is_some() {
        pxos_pixel::durable::write_atomic(
            &log_file,
            lines.as_bytes(),
            pxos_pixel::durable::label::BOOT_LOG,
        )
        .map_err(|err| Error::io(err, &log_file))?;
        Some(log_file)
    } else {
        None
    };
    Ok(HomeBoot {
        report,
        installed,
        would_install: false,
        genesis,
        screen_file,
        log_file,
        status: record.status,
        degraded,
        adopted_kernel,
    })
}

/// A home with no evolution log and no registry: nothing was installed yet.
fn is_fresh(home: &Path) -> bool {
    !home.join("log").exists() && !home.join("carts").exists()
}

/// `pxos boot --dry-run` on a fresh home: builds and packs the default world
/// in a scratch folder outside the home, checks its sequence and modules, and
/// writes nothing to the home (not even the home folder).
fn dry_run_fresh(home: &Path, request: &BootRequest) -> Result<HomeBoot> {
    let scratch = std::env::temp_dir().join(format!("pxos-dry-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (_temporary, ()) =
        pxos_pixel::durable::Temporary::create(scratch.clone(), |path| std::fs::create_dir(path))
            .map_err(|err| Error::io(err, &scratch))?;
    let world = scratch.join("default");
    crate::world::write_default_world(&world)?;
    let packed = scratch.join("default.pxa");
    pxos_cart::pack(&world, &packed, &pxos_cart::Limits::default())?;
    let sha256 =
        pxos_pixel::Hash256::of(&std::fs::read(&packed).map_err(|err| Error::io(err, &packed))?);
    let root = scratch.join("unpacked");
    pxos_cart::unpack(&packed, &root, &pxos_cart::Limits::default())?;
    let (manifest, _) = pxos_cart::read_manifest(&packed, &pxos_cart::Limits::default())?;
    let sequence = request.sequence()?;
    let hypervisor = world_hypervisor(&scratch, &root)?;
    let options = BootOptions {
        dry_run: true,
        sequence,
        hypervisor: &hypervisor,
        sandbox: Sandbox::trusted(DEFAULT_STAGE_FUEL),
        storage: &no_storage,
        mounted: None,
        kernels: None,
        host: None,
    };
    let report = boot(&root, &manifest, &sha256, &options)?;
    let log_file = match &request.log_file {
        Some(path) => {
            let mut lines = serde_json::json!({"time": pxos_fs::time::now_rfc3339(), "cartridge": report.cartridge,
                "sha256": report.sha256, "dry_run": true, "ok": report.ok(), "micros": report.micros,
                "would_install": true}).to_string();
            lines.push('\n');
            for stage in &report.stages {
                lines.push_str(&serde_json::to_string(stage).expect("a stage report serializes"));
                lines.push('\n');
            }
            pxos_pixel::durable::write_atomic(
                path,
                lines.as_bytes(),
                pxos_pixel::durable::label::BOOT_LOG,
            )
            .map_err(|err| Error::io(err, path))?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(HomeBoot {
        report,
        installed: false,
        would_install: true,
        genesis: None,
        screen_file: home.join("boot").join("screen.png"),
        log_file,
        status: pxos_cart::Status::Current,
        degraded: None,
        adopted_kernel: None,
    })
}

/// The cartridge stored at `stored`, unpacked once into `run/<sha256>/`.
pub fn unpacked(home: &Path, stored: &Path, sha256: &pxos_pixel::Hash256) -> Result<PathBuf> {
    let root = home.join("run").join(sha256.to_hex());
    if !root.is_dir() {
        let run = home.join("run");
        std::fs::create_dir_all(&run).map_err(|err| Error::io(err, &run))?;
        pxos_cart::unpack(stored, &root, &pxos_cart::Limits::default())?;
    }
    Ok(root)
}
