//! `pxos demo evolve`: the seed 002 self-evolution cycle, for real.
//!
//! Kernel v1.0 boots, prints, draws its blue square and calls SELF_MODIFY
//! with module 301. Module 301 is kernel v2.0's program image, stored in
//! PixelFS at `/kernels/v2.0.png` and registered under the seed's number. After
//! v1.0 halts, the host installs v2.0 in the kernel store (parent v1.0), makes
//! it current on trial and reboots; v2.0 draws its light-blue square and, by
//! booting cleanly, becomes good.

use std::path::{Path, PathBuf};

use pxos_cart::{Actor, EvolutionLog};
use pxos_fs::{AddOptions, PixelFs};
use pxos_pixel::Kind;
use pxos_vm::{KernelRequest, ProgramImage, asm};

use crate::error::{Error, Result};
use crate::hypervisor::Hypervisor;
use crate::kernel_store::{BootReport, DEFAULT_BOOT_FUEL, KernelRecord, KernelStore};
use crate::storage::FsStorage;

/// Kernel v1.0 of seed 002, verbatim.
pub const KERNEL_V1: &str = include_str!("../../pxos-vm/kernels/v1.0.pxasm");
/// Kernel v2.0 of seed 002, verbatim.
pub const KERNEL_V2: &str = include_str!("../../pxos-vm/kernels/v2.0.pxasm");
/// The module number kernel v1.0 asks SELF_MODIFY for.
pub const V2_MODULE_ID: u32 = 301;

/// What the demo did.
pub struct EvolveReport {
    pub v1: KernelRecord,
    pub v2: KernelRecord,
    pub boots: Vec<BootReport>,
    pub screens: Vec<PathBuf>,
}

fn assemble(name: &str, source: &str) -> Result<ProgramImage> {
    let program = asm::assemble(name, source).map_err(|err| Error::Format(err.to_string()))?;
    Ok(ProgramImage {
        words: program.words,
        entry: program.entry,
    })
}

/// Runs the demo with the kernel store and PixelFS under `home`, writing
/// `evolution_v1.png` and `evolution_v2.png` into `out_dir`. `actor` is who
/// ran it (the kernel changes are logged under that name).
pub fn demo_evolve(home: &Path, out_dir: &Path, actor: Actor) -> Result<EvolveReport> {
    let log = EvolutionLog::open(&home.join("log"))?;
    let store = KernelStore::open(&home.join("kernels"), log)?;
    let hypervisor = Hypervisor::new(
        &home.join("run").join("executions"),
        pxos_vm::default_messages(),
    );
    let fs = PixelFs::open_or_init(&home.join("fs"))?;
    let v1_image = assemble("v1.0.pxasm", KERNEL_V1)?;
    let v2_image = assemble("v2.0.pxasm", KERNEL_V2)?;

    // Kernel v2.0's image lives in PixelFS, where SELF_MODIFY finds it.
    std::fs::create_dir_all(out_dir).map_err(|err| Error::io(err, out_dir))?;
    let staged = out_dir.join(".kernel-v2.0.png");
    std::fs::write(&staged, v2_image.to_png()).map_err(|err| Error::io(err, &staged))?;
    let options = AddOptions {
        kind: Some(Kind::Program),
        description: Some("kernel v2.0 (seed 002), module 301".into()),
        replace: true,
    };
    let added = fs.add_file("/kernels/v2.0.png", &staged, &options);
    let _ = std::fs::remove_file(&staged);
    added?;

    let v1 = match store.state()?.by_version("v1.0").cloned() {
        Some(record) => store.switch(record.id, actor.clone(), "demo evolve: start from v1.0")?,
        None => store.install(&v1_image, "v1.0", None, true, 1, actor.clone())?,
    };
    let storage = || {
        let mut storage = FsStorage::new(fs.clone(), home.join("tmp"));
        storage
            .registered
            .insert(V2_MODULE_ID, "/kernels/v2.0.png".into());
        Box::new(storage)
    };
    let mut boots = Vec::new();
    let first = store.boot(&hypervisor, storage(), None, DEFAULT_BOOT_FUEL)?;
    if let Some(why) = &first.failure {
        return Err(Error::Usage(format!("kernel v1.0 {why}")));
    }
    let Some(KernelRequest::Replace { id, words }) = first.request.clone() else {
        return Err(Error::Usage("kernel v1.0 did not ask to evolve".into()));
    };
    let replacement = ProgramImage { words, entry: 0 };
    let v2 = match store.state()?.by_version("v2.0").cloned() {
        Some(record) if store.image(record.id)? == replacement => store.switch(
            record.id,
            actor.clone(),
            &format!("SELF_MODIFY from v1.0 (module {id})"),
        )?,
        Some(_) => {
            return Err(Error::Usage(
                "a different kernel v2.0 is already installed".into(),
            ));
        }
        None => {
            let record =
                store.install(&replacement, "v2.0", Some(v1.id), false, 1, actor.clone())?;
            store.switch(
                record.id,
                actor,
                &format!("SELF_MODIFY from v1.0 (module {id})"),
            )?
        }
    };
    boots.push(first);
    let second = store.boot(&hypervisor, storage(), None, DEFAULT_BOOT_FUEL)?;
    boots.push(second);
    let mut screens = Vec::new();
    for (boot, name) in boots.iter().zip(["evolution_v1.png", "evolution_v2.png"]) {
        let path = out_dir.join(name);
        pxos_pixel::durable::write_atomic(
            &path,
            &boot.screen.to_png(),
            pxos_pixel::durable::label::SCREEN,
        )
        .map_err(|err| Error::io(err, &path))?;
        screens.push(path);
    }
    let v2 = store.state()?.kernel(v2.id).cloned().unwrap_or(v2);
    Ok(EvolveReport {
        v1,
        v2,
        boots,
        screens,
    })
}
