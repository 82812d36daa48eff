//! The embedded default world: its sources are compiled into the binary, and
//! on a fresh home they are assembled, packed as cartridge `default@1.0.0`
//! (creator human, installed by pxOS itself) and registered as the current
//! cartridge; Genesis then runs on it, so a rollback to it has a pass on record.

use std::path::Path;

use pxos_cart::{Actor, Record, Registry};
use pxos_vm::{Font, ProgramImage, asm};

use crate::error::{Error, Result};

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
    ("fonts/console-8x8.txt", pxos_vm::CONSOLE_FONT_SOURCE),
];

/// Writes the default world into `dir`: every source, each `.pxasm`
/// assembled into the program image next to it (`.png`), and the console
/// font as a pixel file (`fonts/console.png`).
pub fn write_default_world(dir: &Path) -> Result<()> {
    let write = |path: &Path, bytes: &[u8]| -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io(err, parent))?;
        }
        std::fs::write(path, bytes).map_err(|err| Error::io(err, path))
    };
    for (path, contents) in SOURCES {
        write(&dir.join(path), contents.as_bytes())?;
        if let Some(stem) = path.strip_suffix(".pxasm") {
            let program =
                asm::assemble(path, contents).map_err(|err| Error::Format(err.to_string()))?;
            let image = ProgramImage {
                words: program.words,
                entry: program.entry,
            };
            write(&dir.join(format!("{stem}.png")), &image.to_png())?;
        }
    }
    let font = Font::parse_text(pxos_vm::CONSOLE_FONT_SOURCE)
        .map_err(|err| Error::Format(format!("fonts/console-8x8.txt: {err}")))?;
    write(&dir.join(crate::boot::FONT_PATH), &font.to_png())?;
    Ok(())
}

/// Makes sure a current cartridge exists: on a fresh home, builds the default
/// world, packs it and registers it as current. Returns the current record and
/// whether it was installed now.
pub fn ensure_current(home: &Path, registry: &Registry) -> Result<(Record, bool)> {
    if let Some(current) = registry.current()? {
        return Ok((current, false));
    }
    let build = home
        .join("tmp")
        .join(format!("world-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&build);
    let world = build.join("default");
    let result = (|| -> Result<Record> {
        write_default_world(&world)?;
        let cartridge = build.join("default-1.0.0.pxa");
        pxos_cart::pack(&world, &cartridge, &pxos_cart::Limits::default())?;
        Ok(registry.register(
            &cartridge,
            Actor::system(),
            "install the built-in default world",
            true,
        )?)
    })();
    let _ = std::fs::remove_dir_all(&build);
    Ok((result?, true))
}

/// Runs Genesis on the current cartridge when none is on record for its exact
/// hash (the default world right after its install, or after a crash cut the
/// install short). Returns (passed, failed checks) when it ran.
pub fn ensure_genesis(
    home: &Path,
    registry: &Registry,
    current: &Record,
) -> Result<Option<(bool, Vec<String>)>> {
    if registry.genesis_run(&current.sha256)?.is_some() {
        return Ok(None);
    }
    let report = crate::genesis::check(home, registry, current)?;
    registry.record_genesis(current, report.passed(), report.failed(), Actor::system())?;
    Ok(Some((report.passed(), report.failed())))
}
