//! `pxos pixel ...`: raw PXI files.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, bail};
use pxos_pixel::{Compression, EncodeOptions, Header, Kind, Layout, Limits, PixelReader, hex};
use serde_json::json;

use crate::Outcome;
use crate::cli::{Global, PixelCommand};
use crate::output::{Output, human_bytes};

pub fn run(command: &PixelCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let limits = global.pixel_limits();
    match command {
        PixelCommand::Encode {
            input,
            output: target,
            kind,
            layout,
            compression,
            width,
            metadata,
        } => {
            let options = EncodeOptions {
                kind: kind.parse::<Kind>()?,
                layout: layout.parse::<Layout>()?,
                compression: compression
                    .as_deref()
                    .map(str::parse::<Compression>)
                    .transpose()?,
                width: *width,
                metadata: metadata.clone().unwrap_or_default().into_bytes(),
            };
            let target = target
                .clone()
                .unwrap_or_else(|| append_extension(input, "png"));
            encode(input, &target, &options, output)?;
            Ok(Outcome::Success)
        }
        PixelCommand::Decode {
            input,
            output: target,
        } => decode(input, target, &limits, output),
        PixelCommand::Info { input } => match url_of(input) {
            Some(url) => super::remote::pixel_info(url, global, output),
            None => info(input, &limits, output),
        },
        PixelCommand::Verify { inputs } => verify(inputs, global, output),
        PixelCommand::Read {
            input,
            offset,
            length,
            output: target,
            hex: as_hex,
            raw,
        } if url_of(input).is_some() => super::remote::pixel_read(
            url_of(input).expect("a URL"),
            *offset,
            *length,
            target.as_deref(),
            (*as_hex, *raw),
            global,
            output,
        ),
        PixelCommand::Read {
            input,
            offset,
            length,
            output: target,
            hex: as_hex,
            raw,
        } => read(
            input,
            *offset,
            *length,
            target.as_deref(),
            (*as_hex, *raw),
            &limits,
            output,
        ),
        PixelCommand::View {
            input,
            output: target,
            scale,
        } => {
            let (width, height) = pxos_pixel::render_view(input, target, *scale, &limits)?;
            output.emit(json!({"type": "view", "input": input, "output": target, "width": width, "height": height}), || {
                format!("wrote {} ({width}x{height})", target.display())
            })?;
            Ok(Outcome::Success)
        }
    }
}

/// Encodes one file, with a progress bar for big ones; shared with the tour.
pub fn encode(
    input: &Path,
    target: &Path,
    options: &EncodeOptions,
    output: &Output,
) -> Result<pxos_pixel::Encoded> {
    let size = std::fs::metadata(input)
        .with_context(|| format!("cannot read {}", input.display()))?
        .len();
    let progress = output.progress(size, "encoding");
    let encoded = pxos_pixel::encode_file(input, target, options, &mut |done| progress.set(done))?;
    drop(progress);
    let header = &encoded.header;
    output.emit(
        json!({
            "type": "encoded", "input": input, "output": target,
            "header": header_json(header), "file_len": encoded.file_len,
            "width": encoded.geometry.width, "height": encoded.geometry.height,
        }),
        || {
            format!(
                "{} -> {}: {} payload as {}x{} {} pixels, {} ({} PNG), file id {}",
                input.display(),
                target.display(),
                human_bytes(header.payload_len),
                encoded.geometry.width,
                encoded.geometry.height,
                header.layout.name(),
                header.compression.name(),
                human_bytes(encoded.file_len),
                pxos_fs::format_file_id(header.file_id())
            )
        },
    )?;
    Ok(encoded)
}

fn decode(input: &Path, target: &Path, limits: &Limits, output: &Output) -> Result<Outcome> {
    let limits = *limits;
    let decoded = if target.as_os_str() == "-" {
        let file = pxos_pixel::open_nonempty(input)?;
        let mut stdout = std::io::stdout().lock();
        let decoded = pxos_pixel::decode(
            std::io::BufReader::new(file),
            &mut stdout,
            &limits,
            &mut |_| {},
        )
        .map_err(|err| err.with_path(input))?;
        stdout.flush()?;
        return if output.json {
            bail!(
                Usage,
                "--json cannot be combined with -o - (the payload goes to stdout)"
            )
        } else {
            let _ = decoded;
            Ok(Outcome::Success)
        };
    } else {
        let reader = PixelReader::open(input, &limits)?;
        let progress = output.progress(reader.header().payload_len, "decoding");
        drop(reader);
        pxos_pixel::decode_file(input, target, &limits, &mut |done| progress.set(done))?
    };
    output.emit(
        json!({"type": "decoded", "input": input, "output": target, "header": header_json(&decoded.header), "verified": true}),
        || format!("{} -> {}: {} verified (sha256 {})", input.display(), target.display(),
            human_bytes(decoded.header.payload_len), hex(&decoded.header.sha256)),
    )?;
    Ok(Outcome::Success)
}

fn info(input: &Path, limits: &Limits, output: &Output) -> Result<Outcome> {
    let mut reader = PixelReader::open(input, limits)?;
    let metadata = reader.metadata()?;
    let header = reader.header().clone();
    let geometry = *reader.geometry();
    let metadata_text = String::from_utf8(metadata.clone()).ok();
    output.emit(
        json!({
            "type": "info", "input": input, "header": header_json(&header),
            "width": geometry.width, "height": geometry.height, "band_rows": geometry.band_rows,
            "bands": geometry.band_count(), "file_len": reader.file_len(), "indexed": reader.has_index(),
            "metadata": metadata_text, "metadata_hex": if metadata_text.is_none() { Some(hex(&metadata)) } else { None },
        }),
        || {
            let mut text = format!(
                "{}\n  kind         {}\n  layout       {}\n  compression  {}\n  payload      {} ({} bytes)\n  sha256       {}\n  file id      {} (colour #{})\n  image        {}x{} pixels, {} bands of {} rows, {} file\n  index        {}",
                input.display(),
                header.kind.name(),
                header.layout.name(),
                header.compression.name(),
                human_bytes(header.payload_len),
                header.payload_len,
                hex(&header.sha256),
                pxos_fs::format_file_id(header.file_id()),
                hex(&header.sha256[..4]),
                geometry.width,
                geometry.height,
                geometry.band_count(),
                geometry.band_rows,
                human_bytes(reader.file_len()),
                if reader.has_index() { "pxIX (random access)" } else { "none (sequential reads)" },
            );
            if !metadata.is_empty() {
                match &metadata_text {
                    Some(meta) => text.push_str(&format!("\n  metadata     {meta}")),
                    None => text.push_str(&format!("\n  metadata     {} bytes (binary)", metadata.len())),
                }
            }
            text
        },
    )?;
    Ok(Outcome::Success)
}

/// The URL a pixel command was given in place of a file, if it was.
fn url_of(input: &Path) -> Option<&str> {
    input
        .to_str()
        .filter(|text| pxos_remote::pixel::is_url(text))
}

fn verify(inputs: &[PathBuf], global: &Global, output: &Output) -> Result<Outcome> {
    let limits = &global.pixel_limits();
    let mut all_good = true;
    for input in inputs {
        if let Some(url) = url_of(input) {
            all_good &= super::remote::pixel_verify(url, global, output)?;
            continue;
        }
        let size = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
        let progress = output.progress(size, "verifying");
        let result = pxos_pixel::verify_file(input, limits, &mut |done| progress.set(done));
        drop(progress);
        match result {
            Ok(decoded) => output.emit(
                json!({"type": "verify", "input": input, "ok": true, "sha256": hex(&decoded.header.sha256), "size": decoded.header.payload_len}),
                || format!("{} {}", output.good("ok"), input.display()),
            )?,
            Err(err) if err.is_bad_input() => {
                all_good = false;
                output.emit(json!({"type": "verify", "input": input, "ok": false, "error": err.to_string()}), || {
                    format!("{} {}", output.bad("DAMAGED"), err)
                })?;
                if !output.json {
                    eprintln!("pxos: error: {err}");
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(if all_good {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

fn read(
    input: &Path,
    offset: u64,
    length: usize,
    target: Option<&Path>,
    (as_hex, raw): (bool, bool),
    limits: &Limits,
    output: &Output,
) -> Result<Outcome> {
    const MAX_READ: usize = 1 << 30;
    if length > MAX_READ {
        bail!(
            Usage,
            "--length {length} is larger than 1 GiB; use `pxos pixel decode` for whole files"
        );
    }
    let mut reader = PixelReader::open(input, limits)?;
    let bytes = reader.read_at(offset, length)?;
    if let Some(target) = target {
        pxos_pixel::durable::write_atomic(target, &bytes, pxos_pixel::durable::label::PIXEL_READ)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    if output.json {
        output.emit(json!({"type": "read", "input": input, "offset": offset, "length": length, "hex": hex(&bytes), "indexed": reader.has_index()}), String::new)?;
    } else if target.is_none() {
        print_bytes(&bytes, offset, as_hex, raw)?;
    }
    Ok(Outcome::Success)
}

/// What `pxos pixel read` prints: one hex string with `--hex`; raw bytes with
/// `--raw` or when stdout is not a terminal; a hex dump like `xxd` on a
/// terminal (offsets from `offset`), so binary never reaches one raw.
pub fn print_bytes(bytes: &[u8], offset: u64, as_hex: bool, raw: bool) -> std::io::Result<()> {
    use std::io::IsTerminal;
    let mut stdout = std::io::stdout().lock();
    if as_hex {
        writeln!(stdout, "{}", hex(bytes))?;
    } else if raw || !std::io::stdout().is_terminal() {
        stdout.write_all(bytes)?;
    } else {
        stdout.write_all(hex_dump(bytes, offset).as_bytes())?;
    }
    stdout.flush()
}

/// `xxd`'s layout: the offset, 16 bytes in groups of two, then the bytes as
/// ASCII with `.` for anything else.
pub fn hex_dump(bytes: &[u8], offset: u64) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("{:08x}:", offset + row as u64 * 16);
        for (index, byte) in chunk.iter().enumerate() {
            if index % 2 == 0 {
                line.push(' ');
            }
            line.push_str(&format!("{byte:02x}"));
        }
        let width = 10 + 16 * 2 + 8;
        while line.len() < width {
            line.push(' ');
        }
        line.push(' ');
        line.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The header as JSON.
pub fn header_json(header: &Header) -> serde_json::Value {
    json!({
        "version": header.version,
        "kind": header.kind.name(),
        "layout": header.layout.name(),
        "compression": header.compression.name(),
        "width": header.width,
        "payload_len": header.payload_len,
        "metadata_len": header.metadata_len,
        "sha256": hex(&header.sha256),
        "file_id": pxos_fs::format_file_id(header.file_id()),
    })
}

fn append_extension(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}
