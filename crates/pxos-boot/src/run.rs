//! Running programs for people and agents: `pxos run NAME`, `pxos run
//! --cartridge C NAME`, `pxos run FILE`, `pxos debug FILE`. Every path goes
//! through the hypervisor and is logged; only the programs of the current
//! cartridge run trusted. A program file runs sandboxed (writes confined to
//! `/sandbox/programs/<hash>/`, no kernel changes) unless it is byte for byte
//! a file of the current cartridge, or a person lifts the sandbox with
//! `--trusted`, which its execution record then says.

use std::path::{Path, PathBuf};

use pxos_pixel::Hash256;
use pxos_vm::{ProgramImage, Storage};
use serde::Serialize;

use crate::boot::{HomeStores, load_module, unpacked, world_hypervisor};
use crate::error::{Error, Result};
use crate::hypervisor::{Hypervisor, Launch, RunResult, Sandbox};

/// What a program run is allowed, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Placement {
    /// `trusted`, `sandboxed` or `trusted-by-request`.
    pub mode: &'static str,
    /// Why this mode.
    pub why: String,
}

/// A program ready to start under the hypervisor.
pub struct Prepared {
    pub hypervisor: Hypervisor,
    pub sandbox: Sandbox,
    pub storage: Box<dyn Storage>,
    pub name: String,
    pub placement: Placement,
    /// The model SYS_LLM reaches (the sandbox still decides whether it may).
    pub llm: Option<Box<dyn pxos_vm::LanguageModel>>,
}

impl Prepared {
    /// The launch for `image` with `args`.
    pub fn launch<'a>(
        self,
        image: &'a ProgramImage,
        args: &'a [String],
    ) -> (Hypervisor, Launch<'a>) {
        let mut launch = Launch::new(self.name, image, self.sandbox, self.storage);
        launch.args = args;
        launch.llm = self.llm;
        (self.hypervisor, launch)
    }
}

fn pixelfs_storage(home: &Path) -> Box<dyn Storage> {
    match pxos_fs::PixelFs::open(&home.join("fs")) {
        Ok(fs) => Box::new(crate::storage::FsStorage::new(fs, home.join("tmp"))),
        Err(_) => Box::new(crate::storage::NoPixelFs),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prepares program `name` of the current cartridge, or of `cartridge`
/// (`programs/NAME.png`, or `boot/NAME.png`). A cartridge that is not current
/// runs sandboxed.
pub fn prepare_named(
    home: &Path,
    name: &str,
    cartridge: Option<&str>,
    fuel: u64,
) -> Result<(Prepared, ProgramImage)> {
    if name.is_empty() || name.contains('/') || name.contains("..") || name.contains('\\') {
        return Err(Error::Usage(format!("'{name}' is not a program name")));
    }
    let stores = HomeStores::open(home)?;
    crate::world::ensure_current(home, &stores.registry)?;
    let record = match cartridge {
        Some(query) => stores.registry.find(query)?,
        None => stores
            .registry
            .current()?
            .ok_or_else(|| Error::NotFound("no current cartridge".into()))?,
    };
    let root = unpacked(home, &stores.registry.path_of(&record), &record.sha256)?;
    let path = ["programs", "boot"]
        .iter()
        .map(|dir| format!("{dir}/{name}.png"))
        .find(|path| root.join(path).is_file())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} has no program named '{name}' (looked in programs/ and boot/)",
                record.id
            ))
        })?;
    let image = load_module(&root, &path)?;
    let mut hypervisor = world_hypervisor(home, &root)?;
    hypervisor.time = now();
    let current = record.status == pxos_cart::Status::Current;
    let (sandbox, placement) = if current {
        (
            Sandbox::trusted(fuel),
            Placement {
                mode: "trusted",
                why: format!("a program of the current cartridge {}", record.id),
            },
        )
    } else {
        let prefix = format!("/sandbox/{}", record.id);
        (
            Sandbox::experimental(fuel, &prefix),
            Placement {
                mode: "sandboxed",
                why: format!(
                    "{} is {}, not current: writes confined to {prefix}",
                    record.id,
                    record.status.name()
                ),
            },
        )
    };
    let prepared = Prepared {
        hypervisor,
        sandbox,
        storage: pixelfs_storage(home),
        name: format!("{}:{path}", record.id),
        placement,
        llm: None,
    };
    Ok((prepared, image))
}

/// Runs program `name` (see [`prepare_named`]) with `args` (the calling convention of [`pxos_vm::Machine::pass_arguments`]).
pub fn run_named(
    home: &Path,
    name: &str,
    cartridge: Option<&str>,
    args: &[String],
    fuel: u64,
    on_print: Option<pxos_vm::PrintHook>,
) -> Result<(RunResult, Placement)> {
    let (prepared, image) = prepare_named(home, name, cartridge, fuel)?;
    let placement = prepared.placement.clone();
    let (hypervisor, mut launch) = prepared.launch(&image, args);
    launch.on_print = on_print;
    Ok((hypervisor.run_program(launch), placement))
}

/// Prepares a program file (`file_bytes` are the file as given, to recognise
/// a file of the current cartridge). Reads the registry, never installs.
pub fn prepare_file(
    home: &Path,
    path: &Path,
    file_bytes: &[u8],
    image: &ProgramImage,
    trusted: bool,
    fuel: u64,
) -> Result<Prepared> {
    let file_sha = Hash256::of(file_bytes);
    let mut root: Option<PathBuf> = None;
    let mut member_of = None;
    if let Ok(stores) = HomeStores::open(home)
        && let Ok(Some(current)) = stores.registry.current()
        && let Ok((manifest, _)) = pxos_cart::read_manifest(
            &stores.registry.path_of(&current),
            &pxos_cart::Limits::default(),
        )
    {
        if let Some(file) = manifest
            .files
            .iter()
            .find(|f| f.sha256 == file_sha.to_hex())
        {
            member_of = Some(format!("{}:{}", current.id, file.path));
        }
        root = unpacked(home, &stores.registry.path_of(&current), &current.sha256).ok();
    }
    let mut hypervisor = match &root {
        Some(root) => world_hypervisor(home, root)?,
        None => Hypervisor::new(
            &home.join("run").join("executions"),
            pxos_vm::default_messages(),
        ),
    };
    hypervisor.time = now();
    let program_sha = Hash256::of(
        &image
            .words
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let prefix = format!("/sandbox/programs/{}", program_sha.short());
    let (sandbox, placement) = match (&member_of, trusted) {
        (Some(member), _) => (
            Sandbox::trusted(fuel),
            Placement {
                mode: "trusted",
                why: format!("it is {member}, a file of the current cartridge"),
            },
        ),
        (None, true) => (
            Sandbox::lifted(fuel),
            Placement {
                mode: "trusted-by-request",
                why: "not part of the current cartridge; the sandbox was lifted by --trusted (recorded)".into(),
            },
        ),
        (None, false) => (
            Sandbox::program(fuel, &prefix),
            Placement {
                mode: "sandboxed",
                why: format!(
                    "not part of the current cartridge: PixelFS writes confined to {prefix}, no kernel changes (--trusted lifts this)"
                ),
            },
        ),
    };
    Ok(Prepared {
        hypervisor,
        sandbox,
        storage: pixelfs_storage(home),
        name: path.display().to_string(),
        placement,
        llm: None,
    })
}

/// The programs a cartridge unpacked at `root` offers to `pxos run NAME`
/// (`programs/NAME.png`), sorted.
pub fn program_names(root: &Path) -> Vec<String> {
    let mut programs: Vec<String> = std::fs::read_dir(root.join("programs"))
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
    programs.sort();
    programs
}

/// What the running system is: `inspect_self` of the hypervisor contract.
pub fn inspect_self(home: &Path) -> Result<serde_json::Value> {
    let stores = HomeStores::open(home)?;
    crate::world::ensure_current(home, &stores.registry)?;
    let record = stores
        .registry
        .current()?
        .ok_or_else(|| Error::NotFound("no current cartridge".into()))?;
    let stored = stores.registry.path_of(&record);
    let root = unpacked(home, &stored, &record.sha256)?;
    let (manifest, _) = pxos_cart::read_manifest(&stored, &pxos_cart::Limits::default())?;
    let programs = program_names(&root);
    let kernels = stores.kernels.state()?;
    Ok(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "home": home,
        "cartridge": record.id,
        "sha256": record.sha256,
        "status": record.status,
        "capabilities": manifest.capabilities,
        "programs": programs,
        "sandbox": {
            "current cartridge": Sandbox::trusted(0).describe(),
            "other cartridges": Sandbox::experimental(0, "/sandbox/NAME@VERSION").describe(),
            "program files": Sandbox::program(0, "/sandbox/programs/HASH").describe(),
            "kernel stage": Sandbox::kernel(0).describe(),
        },
        "kernel": kernels.current_record(),
        "gpu": "none: this build has no GPU backend",
        "network": "none: pxOS gives programs no network access",
    }))
}
