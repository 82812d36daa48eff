//! `pxos x86 ...`: pxOS v1, real x86 boot sectors built from primitives.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{CliError, Context, Result};
use pxos_x86::build::Symbol;
use pxos_x86::qemu::{self, Display, Machine, Screen};
use pxos_x86::{Image, Mode, Options, disasm};
use serde_json::{Value, json};

use crate::Outcome;
use crate::cli::X86Command;
use crate::output::Output;

/// The `format` a PXI written by `x86 build --png` records in its metadata.
const PNG_FORMAT: &str = "pxos-x86-boot-sector";

/// Bad input (sources, images) is exit code 1.
fn bad(message: String) -> CliError {
    CliError::bad_input(message)
}

pub fn run(command: &X86Command, output: &Output) -> Result<Outcome> {
    match command {
        X86Command::Build {
            src,
            output: target,
            compat_seed,
            png,
            allow_overwrite,
        } => build(
            src.as_deref(),
            target,
            Options {
                compat_seed: *compat_seed,
                allow_overwrite: *allow_overwrite,
            },
            png.as_deref(),
            output,
        ),
        X86Command::Disasm {
            image,
            src,
            offset,
            length,
        } => disassemble(image, src.as_deref(), *offset, *length, output),
        X86Command::Run {
            image,
            curses,
            headless,
            keys,
            wait_for,
            timeout,
        } => {
            let (bytes, _) = load_image(image)?;
            // Errors about the image name it.
            let named = || image.display().to_string();
            if *headless {
                headless_run(
                    &bytes,
                    keys,
                    wait_for.as_deref(),
                    Duration::from_secs(*timeout),
                    output,
                )
                .with_context(named)
            } else {
                let display = pick_display(*curses)?;
                if display == Display::Curses && !output.json {
                    eprintln!(
                        "pxos: booting in this terminal; to quit, press Alt+2 (or Esc then 2) for the QEMU monitor and type quit"
                    );
                }
                let status = qemu::run_interactive(&bytes, display).with_context(named)?;
                output.emit(json!({"type": "exited", "status": status.code()}), || {
                    format!("QEMU exited ({status})")
                })?;
                Ok(Outcome::Success)
            }
        }
        X86Command::Source => {
            output.emit(
                json!({"type": "source", "text": pxos_x86::SHELL_SOURCE}),
                || pxos_x86::SHELL_SOURCE.trim_end().to_string(),
            )?;
            Ok(Outcome::Success)
        }
    }
}

/// A window where there is a desktop, else this terminal; refuses when there is neither.
fn pick_display(curses: bool) -> Result<Display> {
    use std::io::IsTerminal;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if curses || !desktop {
        if !terminal {
            return Err(bad(
                "no display and no terminal to show the machine in; use --headless (with --keys) \
                 to type into it and read its screen"
                    .into(),
            ));
        }
        return Ok(Display::Curses);
    }
    Ok(Display::Window)
}

fn read_source(src: Option<&Path>) -> Result<(String, String)> {
    match src {
        None => Ok((
            "the built-in pxOS v1 shell".into(),
            pxos_x86::SHELL_SOURCE.into(),
        )),
        Some(path) => {
            let text = pxos_pixel::text::read_input_text(path)?;
            Ok((path.display().to_string(), text))
        }
    }
}

fn build(
    src: Option<&Path>,
    target: &Path,
    options: Options,
    png: Option<&Path>,
    output: &Output,
) -> Result<Outcome> {
    let (name, text) = read_source(src)?;
    let image = match pxos_x86::build(&text, options) {
        Ok(image) => image,
        Err(err) => {
            for diagnostic in &err.diagnostics {
                output.emit(
                    json!({"type": "diagnostic", "source": name, "diagnostic": diagnostic}),
                    String::new,
                )?;
            }
            return Err(CliError::bad_input(format!("{name}: {err}")));
        }
    };
    crate::output::write_output(target, &image.bytes, pxos_pixel::durable::label::X86_IMAGE)?;
    if let Some(png) = png {
        let metadata = json!({
            "format": PNG_FORMAT,
            "mode": image.mode,
            "origin": image.origin,
            "symbols": image.symbols,
        });
        let options = pxos_pixel::EncodeOptions {
            metadata: metadata.to_string().into_bytes(),
            ..pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Blob)
        };
        let encoded = pxos_pixel::encode_to_vec(&image.bytes, &options)?;
        crate::output::write_output(png, &encoded, pxos_pixel::durable::label::X86_PNG)?;
    }
    for warning in &image.warnings {
        if !output.json && !output.quiet {
            eprintln!("{} {warning}", output.bad("warning:"));
        }
    }
    let value = json!({
        "type": "built",
        "source": name,
        "output": target,
        "png": png,
        "mode": image.mode,
        "size": image.bytes.len(),
        "origin": image.origin,
        "writes": image.writes,
        "used": image.used,
        "free": pxos_x86::build::CAPACITY.saturating_sub(image.used),
        "sha256": image.sha256(),
        "symbols": image.symbols,
        "warnings": image.warnings,
    });
    output.emit(value, || summary(&image, target, png))?;
    Ok(Outcome::Success)
}

fn summary(image: &Image, target: &Path, png: Option<&Path>) -> String {
    let mut lines = Vec::new();
    match image.mode {
        Mode::Boot => {
            lines.push(format!(
                "built {}: a 512-byte boot sector for 0x7C00, signature 55 AA",
                target.display()
            ));
            lines.push(format!(
                "  {} of {} program bytes used ({} free), {} labels",
                image.used,
                pxos_x86::build::CAPACITY,
                pxos_x86::build::CAPACITY - image.used,
                image.symbols.len()
            ));
        }
        Mode::CompatSeed => {
            lines.push(format!(
                "built {} in seed compatibility mode: {} bytes, {} operations, {} labels",
                target.display(),
                image.bytes.len(),
                image.writes,
                image.symbols.len()
            ));
        }
    }
    lines.push(format!("  sha256 {}", image.sha256()));
    if let Some(png) = png {
        lines.push(format!("  also as pixels: {}", png.display()));
    }
    if image.mode == Mode::Boot {
        lines.push(format!("  boot it: pxos x86 run {}", target.display()));
    }
    lines.join("\n")
}

/// Reads a raw image or a PXI PNG; a PNG written by `x86 build --png` brings its labels.
fn load_image(path: &Path) -> Result<(Vec<u8>, Vec<Symbol>)> {
    let bytes = pxos_pixel::text::read_input(path)?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok((bytes, Vec::new()));
    }
    let (decoded, payload) = pxos_pixel::decode_from_slice(&bytes, &pxos_pixel::Limits::default())
        .with_context(|| format!("{} is a PNG but not a readable PXI", path.display()))?;
    let metadata: Value = serde_json::from_slice(&decoded.metadata).unwrap_or(Value::Null);
    let symbols = if metadata["format"] == PNG_FORMAT {
        serde_json::from_value(metadata["symbols"].clone()).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((payload, symbols))
}

fn labels_from_source(path: &Path) -> Result<Vec<Symbol>> {
    let (_, text) = read_source(Some(path))?;
    // Labels come from a source that builds, or failing that from the seed dialect, which
    // reads any file (the seed's own source does not build in the checked mode).
    match pxos_x86::build(&text, Options::default()) {
        Ok(image) => Ok(image.symbols),
        Err(_) => pxos_x86::build::build_compat(&text)
            .map(|image| image.symbols)
            .map_err(|err| {
                CliError::bad_input(format!("cannot take labels from {}: {err}", path.display()))
            }),
    }
}

fn disassemble(
    path: &Path,
    src: Option<&Path>,
    offset: u32,
    length: u32,
    output: &Output,
) -> Result<Outcome> {
    let (bytes, mut symbols) = load_image(path)?;
    if let Some(src) = src {
        symbols = labels_from_source(src)?;
    }
    let start = offset as usize;
    if start >= bytes.len() {
        return Err(bad(format!(
            "{}: offset 0x{offset:X} is past the end of the file ({} bytes)",
            path.display(),
            bytes.len()
        )));
    }
    let end = start.saturating_add(length as usize).min(bytes.len());
    let code = &bytes[start..end];
    let mut labels = BTreeMap::new();
    for symbol in &symbols {
        labels
            .entry(symbol.address)
            .or_insert_with(|| symbol.name.clone());
    }
    let listing = disasm::disassemble(code, pxos_x86::build::ORIGIN, &labels);
    let mut notes = Vec::new();
    if bytes.len() > 512 && offset == 0 {
        notes.push(format!(
            "the file is {} bytes; a BIOS loads only the first 512, listed here at 0x7C00",
            bytes.len()
        ));
    }
    if code.len() < 512 || code[510..512] != pxos_x86::build::SIGNATURE {
        notes.push("these bytes do not end in the boot signature 55 AA".to_string());
    }
    if output.json {
        output.emit(
            json!({"type": "listing", "image": path, "offset": offset, "notes": notes, "listing": listing}),
            String::new,
        )?;
    } else if !output.quiet {
        print!(
            "; {}: {} bytes from offset 0x{offset:X}, loaded at 0x7C00; {} instructions ({} bytes) reached from 0x7C00\n{}{}",
            path.display(),
            code.len(),
            listing.instructions,
            listing.code_bytes,
            notes
                .iter()
                .map(|n| format!("; note: {n}\n"))
                .collect::<String>(),
            disasm::render(&listing)
        );
    }
    Ok(Outcome::Success)
}

fn emit_screen(output: &Output, step: &str, keys: Option<&str>, screen: &Screen) -> Result<()> {
    let rows = screen.rows();
    output.emit(
        json!({"type": "screen", "step": step, "keys": keys, "rows": rows, "cursor": screen.cursor}),
        || {
            format!(
                "--- {step}{} (cursor row {}, column {}) ---\n{}",
                keys.map(|k| format!(" \"{k}\"")).unwrap_or_default(),
                screen.cursor.0,
                screen.cursor.1,
                screen.text()
            )
        },
    )?;
    Ok(())
}

fn headless_run(
    image: &[u8],
    steps: &[String],
    wait_for: Option<&str>,
    timeout: Duration,
    output: &Output,
) -> Result<Outcome> {
    // Check every key script before booting anything.
    let scripts = steps
        .iter()
        .map(|keys| qemu::parse_keys(keys))
        .collect::<Result<Vec<_>, _>>()?;
    let mut machine = Machine::boot_headless(image)?;
    let screen = match wait_for {
        Some(text) => {
            machine.wait_for(&format!("{text:?}"), timeout, |s| s.text().contains(text))?
        }
        None => machine.settle(Duration::from_millis(800), timeout)?,
    };
    emit_screen(output, "boot", None, &screen)?;
    let mut before = screen;
    for (keys, script) in steps.iter().zip(&scripts) {
        machine.type_keys(script)?;
        // A loaded machine may take a moment to show the first change; wait for one (keys
        // that change nothing give up after two seconds), then for the screen to be still.
        let _ = machine.wait_for("a change", Duration::from_secs(2).min(timeout), |s| {
            *s != before
        });
        let screen = machine.settle(Duration::from_millis(300), timeout)?;
        before = screen.clone();
        emit_screen(output, "keys", Some(keys), &screen)?;
    }
    machine.quit();
    Ok(Outcome::Success)
}
