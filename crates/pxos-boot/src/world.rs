//! The embedded default world: its sources are compiled into the binary, and
//! on a fresh home they are assembled, packed as cartridge `default@1.0.0`
//! (creator human) and registered as the current cartridge.

use std::path::Path;

use pxos_cart::{Actor, CreatorKind, Record, Registry};
use pxos_vm::{ProgramImage, asm};

use crate::kernel_store::{Error, Result};

/// (path in the world, contents) of every source file.
pub const SOURCES: &[(&str, &str)] = &[
    ("cartridge.json", include_str!("../world/cartridge.json")),
    ("messages.json", include_str!("../world/messages.json")),
    (
        "boot/sequence.json",
        include_str!("../world/boot/sequence.json"),
    ),
    ("boot/bios.pxasm", include_str!("../world/boot/bios.pxasm")),
    (
        "boot/kernel.pxasm",
        include_str!("../world/boot/kernel.pxasm"),
    ),
    (
        "boot/policy.pxasm",
        include_str!("../world/boot/policy.pxasm"),
    ),
    (
        "boot/shell.pxasm",
        include_str!("../world/boot/shell.pxasm"),
    ),
    (
        "programs/hello.pxasm",
        include_str!("../world/programs/hello.pxasm"),
    ),
];

/// Writes the default world into `dir`: every source, plus each `.pxasm`
/// assembled into the program image next to it (`.png`).
pub fn write_default_world(dir: &Path) -> Result<()> {
    for (path, contents) in SOURCES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, contents)?;
        if let Some(stem) = path.strip_suffix(".pxasm") {
            let program =
                asm::assemble(path, contents).map_err(|err| Error::Format(err.to_string()))?;
            let image = ProgramImage {
                words: program.words,
                entry: program.entry,
            };
            std::fs::write(dir.join(format!("{stem}.png")), image.to_png())?;
        }
    }
    Ok(())
}

/// Makes sure a current cartridge exists: on a fresh home, builds the default
/// world, packs it and registers it as current. Returns the current record and
/// whether it was installed now.
pub fn ensure_current(home: &Path, registry: &Registry) -> Result<(Record, bool)> {
    if let Some(current) = registry.current().map_err(cart_error)? {
        return Ok((current, false));
    }
    let build = home
        .join("tmp")
        .join(format!("world-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&build);
    let world = build.join("default");
    write_default_world(&world)?;
    let cartridge = build.join("default-1.0.0.pxa");
    let result = (|| {
        pxos_cart::pack(&world, &cartridge, &pxos_cart::Limits::default()).map_err(cart_error)?;
        let actor = Actor {
            kind: CreatorKind::Human,
            name: "pxos".into(),
        };
        registry
            .register(
                &cartridge,
                actor,
                "install the built-in default world",
                true,
            )
            .map_err(cart_error)
    })();
    let _ = std::fs::remove_dir_all(&build);
    Ok((result?, true))
}

/// Cartridge errors in the boot crate's error type.
pub fn cart_error(err: pxos_cart::Error) -> Error {
    if err.is_bad_input() {
        Error::Format(err.to_string())
    } else {
        Error::Usage(err.to_string())
    }
}
