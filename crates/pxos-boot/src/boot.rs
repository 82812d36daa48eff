//! Booting a cartridge: the boot sequence, stage by stage.
//!
//! Stage 0 (`builtin:verify`) checks every file of the unpacked cartridge
//! against its manifest hash and mounts PixelFS read-only. Every other stage
//! names a program image in the cartridge, which runs in PXVM under the
//! hypervisor with its own fuel budget, drawing on a screen shared by all
//! stages. A required stage that fails halts the boot with a report; an
//! optional one is reported and skipped, and so is any stage whose `requires`
//! did not succeed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pxos_cart::Manifest;
use pxos_vm::{MemoryStorage, ProgramImage, Screen, Storage};
use serde::{Deserialize, Serialize};

use crate::hypervisor::{Hypervisor, Sandbox};
use crate::kernel_store::{Error, Result};

/// The `path` of the built-in verification stage.
pub const BUILTIN_VERIFY: &str = "builtin:verify";
/// Default instruction budget per stage.
pub const DEFAULT_STAGE_FUEL: u64 = 10_000_000;

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
}

/// A boot sequence (`boot/sequence.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    pub stages: Vec<Stage>,
}

impl Sequence {
    /// Parses and checks a sequence: increasing numbers, unique names, known
    /// earlier `requires`, safe paths, at most 64 stages.
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
            if stage.path != BUILTIN_VERIFY {
                pxos_cart::cartridge::check_entry_path(&stage.path, &pxos_cart::Limits::default())
                    .map_err(|err| Error::Format(format!("stage {}: {err}", stage.name)))?;
            }
        }
        Ok(sequence)
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

/// One line of the boot report.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub number: u32,
    pub name: String,
    pub required: bool,
    pub outcome: Outcome,
    pub detail: String,
    pub output: Vec<String>,
    pub cycles: u64,
    pub micros: u128,
}

/// The whole boot.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cartridge: String,
    pub sha256: String,
    pub dry_run: bool,
    pub stages: Vec<StageReport>,
    /// The required stage that halted the boot, if any.
    pub halted_at: Option<String>,
    pub micros: u128,
    #[serde(skip)]
    pub screen: Screen,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.halted_at.is_none()
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
}

/// Boots the cartridge unpacked at `root`.
pub fn boot(
    root: &Path,
    manifest: &Manifest,
    sha256: &str,
    options: &BootOptions<'_>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let sequence = match &options.sequence {
        Some(sequence) => sequence.clone(),
        None => Sequence::parse(&read_in(root, "boot/sequence.json")?)?,
    };
    let mut report = Report {
        cartridge: manifest.id(),
        sha256: sha256.to_string(),
        dry_run: options.dry_run,
        stages: Vec::new(),
        halted_at: None,
        micros: 0,
        screen: Screen::new(512, 512).map_err(Error::Usage)?,
    };
    let mut succeeded: BTreeSet<String> = BTreeSet::new();
    let mut screen = Some(report.screen.clone());
    for stage in &sequence.stages {
        let stage_started = std::time::Instant::now();
        let mut line = StageReport {
            number: stage.number,
            name: stage.name.clone(),
            required: stage.required,
            outcome: Outcome::Ok,
            detail: String::new(),
            output: Vec::new(),
            cycles: 0,
            micros: 0,
        };
        let missing: Vec<&String> = stage
            .requires
            .iter()
            .filter(|r| !succeeded.contains(*r))
            .collect();
        if !missing.is_empty() {
            line.outcome = if stage.required {
                Outcome::Failed
            } else {
                Outcome::Skipped
            };
            line.detail = format!(
                "requires {} which did not succeed",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
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
                    let result = options.hypervisor.run_program(
                        &format!("{}:{}", manifest.id(), stage.path),
                        &image,
                        &[],
                        &sandbox,
                        (options.storage)(),
                        screen.take(),
                    );
                    screen = result
                        .screen
                        .clone()
                        .or_else(|| Some(report.screen.clone()));
                    line.cycles = result.cycles;
                    line.output = result.output.clone();
                    if result.success {
                        line.detail = format!("{} cycles", result.cycles);
                    } else {
                        line.outcome = Outcome::Failed;
                        line.detail = result.trap.clone().unwrap_or_default();
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
    if let Some(screen) = screen {
        report.screen = screen;
    }
    report.micros = started.elapsed().as_micros();
    Ok(report)
}

fn read_in(root: &Path, path: &str) -> Result<Vec<u8>> {
    let full: PathBuf = root.join(path);
    std::fs::read(&full)
        .map_err(|err| Error::Format(format!("{path}: cannot read it from the cartridge ({err})")))
}

fn load_module(root: &Path, path: &str) -> Result<ProgramImage> {
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
}

/// What `boot_home` did.
pub struct HomeBoot {
    pub report: Report,
    /// The default world was installed by this boot.
    pub installed: bool,
    pub screen_file: PathBuf,
    pub log_file: PathBuf,
    pub status: pxos_cart::Status,
}

/// Boots a pxOS home: installs the default world on a fresh home, unpacks the
/// chosen cartridge once into `run/<sha256>/`, boots it (sandboxed unless it is
/// the current cartridge), and writes the boot log and the screen PNG.
pub fn boot_home(home: &Path, request: &BootRequest) -> Result<HomeBoot> {
    let cart = crate::world::cart_error;
    let log = pxos_cart::EvolutionLog::open(&home.join("log")).map_err(cart)?;
    let registry = pxos_cart::Registry::open(&home.join("carts"), log).map_err(cart)?;
    let (_, installed) = crate::world::ensure_current(home, &registry)?;
    let record = match &request.cartridge {
        Some(query) => registry.find(query).map_err(cart)?,
        None => registry
            .current()
            .map_err(cart)?
            .ok_or_else(|| Error::Usage("no current cartridge".into()))?,
    };
    let stored = registry.path_of(&record);
    let root = home.join("run").join(&record.sha256);
    if !root.is_dir() {
        pxos_cart::unpack(&stored, &root, &pxos_cart::Limits::default()).map_err(cart)?;
    }
    let (manifest, _) =
        pxos_cart::read_manifest(&stored, &pxos_cart::Limits::default()).map_err(cart)?;
    let sequence = match &request.sequence_file {
        Some(path) => {
            Some(Sequence::parse(&std::fs::read(path).map_err(|err| {
                Error::Usage(format!("{}: {err}", path.display()))
            })?)?)
        }
        None => None,
    };
    let fs = pxos_fs::PixelFs::open(&home.join("fs")).ok();
    let mounted = fs.as_ref().and_then(|fs| fs.table().ok()).map(|t| t.len());
    let storage = || -> Box<dyn Storage> {
        match &fs {
            Some(fs) => {
                let mut storage = crate::storage::FsStorage::new(fs.clone(), home.join("tmp"));
                // Read-only at boot: no path is writable.
                storage.writable_prefix = Some("/.read-only-at-boot".into());
                Box::new(storage)
            }
            None => no_storage(),
        }
    };
    let hypervisor = Hypervisor::new(&home.join("run").join("executions.log"), messages(&root)?);
    let sandbox = if record.status == pxos_cart::Status::Current {
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
    };
    let report = boot(&root, &manifest, &record.sha256, &options)?;
    let boot_dir = home.join("boot");
    std::fs::create_dir_all(&boot_dir)?;
    let screen_file = request
        .screen_file
        .clone()
        .unwrap_or_else(|| boot_dir.join("screen.png"));
    let log_file = request
        .log_file
        .clone()
        .unwrap_or_else(|| boot_dir.join("boot.log"));
    if !request.dry_run {
        pxos_pixel::durable::write_atomic(&screen_file, &report.screen.to_png(), "boot-screen")?;
    }
    let mut lines = String::new();
    lines.push_str(&serde_json::json!({"time": pxos_fs::time::now_rfc3339(), "cartridge": report.cartridge,
        "sha256": report.sha256, "dry_run": report.dry_run, "ok": report.ok(), "micros": report.micros}).to_string());
    lines.push('\n');
    for stage in &report.stages {
        lines.push_str(&serde_json::to_string(stage).map_err(|err| Error::Usage(err.to_string()))?);
        lines.push('\n');
    }
    pxos_pixel::durable::write_atomic(&log_file, lines.as_bytes(), "boot-log")?;
    Ok(HomeBoot {
        report,
        installed,
        screen_file,
        log_file,
        status: record.status,
    })
}

/// The unpacked tree and record of the current (or named) cartridge, unpacking it once.
fn open_cartridge(home: &Path, cartridge: Option<&str>) -> Result<(PathBuf, pxos_cart::Record)> {
    let cart = crate::world::cart_error;
    let log = pxos_cart::EvolutionLog::open(&home.join("log")).map_err(cart)?;
    let registry = pxos_cart::Registry::open(&home.join("carts"), log).map_err(cart)?;
    crate::world::ensure_current(home, &registry)?;
    let record = match cartridge {
        Some(query) => registry.find(query).map_err(cart)?,
        None => registry
            .current()
            .map_err(cart)?
            .ok_or_else(|| Error::Usage("no current cartridge".into()))?,
    };
    let root = home.join("run").join(&record.sha256);
    if !root.is_dir() {
        pxos_cart::unpack(
            &registry.path_of(&record),
            &root,
            &pxos_cart::Limits::default(),
        )
        .map_err(cart)?;
    }
    Ok((root, record))
}

/// Runs program `name` of the current cartridge (`programs/NAME.png`, or
/// `boot/NAME.png`) through the hypervisor, with `args` in R1...
pub fn run_named(
    home: &Path,
    name: &str,
    args: &[u32],
    fuel: u64,
) -> Result<crate::hypervisor::RunResult> {
    if name.contains('/') || name.contains("..") || name.is_empty() {
        return Err(Error::Usage(format!("'{name}' is not a program name")));
    }
    let (root, record) = open_cartridge(home, None)?;
    let path = ["programs", "boot"]
        .iter()
        .map(|dir| format!("{dir}/{name}.png"))
        .find(|path| root.join(path).is_file())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} has no program named '{name}' (looked in programs/ and boot/)",
                record.id
            ))
        })?;
    let image = load_module(&root, &path)?;
    let hypervisor = Hypervisor::new(&home.join("run").join("executions.log"), messages(&root)?);
    let sandbox = if record.status == pxos_cart::Status::Current {
        Sandbox::trusted(fuel)
    } else {
        Sandbox::experimental(fuel, &format!("/sandbox/{}", record.id))
    };
    let storage: Box<dyn Storage> = match pxos_fs::PixelFs::open(&home.join("fs")) {
        Ok(fs) => Box::new(crate::storage::FsStorage::new(fs, home.join("tmp"))),
        Err(_) => no_storage(),
    };
    Ok(hypervisor.run_program(
        &format!("{}:{path}", record.id),
        &image,
        args,
        &sandbox,
        storage,
        None,
    ))
}

/// What the running system is: `inspect_self` of the hypervisor contract.
pub fn inspect_self(home: &Path) -> Result<serde_json::Value> {
    let (root, record) = open_cartridge(home, None)?;
    let (manifest, _) = pxos_cart::read_manifest(
        &home.join("carts").join(format!("{}.pxa", record.sha256)),
        &pxos_cart::Limits::default(),
    )
    .map_err(crate::world::cart_error)?;
    let programs: Vec<String> = std::fs::read_dir(root.join("programs"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".png"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let kernels = crate::KernelStore::open(&home.join("kernels"))?.state()?;
    Ok(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "home": home,
        "cartridge": record.id,
        "sha256": record.sha256,
        "status": record.status,
        "capabilities": manifest.capabilities,
        "programs": programs,
        "sandbox": if record.status == pxos_cart::Status::Current { "trusted (current cartridge): all syscalls, fuel cap" } else { "experimental: allow-listed syscalls, fuel and memory caps, writes confined" },
        "kernel": kernels.current,
        "gpu": "none: this build has no GPU backend",
        "network": "none: pxOS gives programs no network access",
    }))
}
