//! PXI: lossless bytes <-> pixels in ordinary PNG files.
//!
//! A PXI file is a valid 8-bit RGB or RGBA PNG whose first row carries a
//! header (magic, version, layout, kind, lengths, SHA-256) and whose following
//! rows carry the metadata and payload bytes, three or four per pixel. Any
//! image viewer opens it; any lossless PNG tool may rewrite it and it still
//! decodes, because everything needed lives in the pixels. An optional `pxIX`
//! chunk indexes deflate restart points so a reader can fetch a few bytes from
//! the middle of a multi-gigabyte file without inflating the rest.
//!
//! ```
//! use pxos_pixel::{EncodeOptions, Kind, Limits, decode_from_slice, encode_to_vec};
//!
//! let png = encode_to_vec(b"hello, pixels", &EncodeOptions::kind(Kind::Text))?;
//! let (decoded, payload) = decode_from_slice(&png, &Limits::default())?;
//! assert_eq!(payload, b"hello, pixels");
//! assert_eq!(decoded.header.kind, Kind::Text);
//! # Ok::<(), pxos_pixel::Error>(())
//! ```
//!
//! The byte-level format is documented in `docs/formats/pxi.md`.

mod decode;
pub mod durable;
mod encode;
mod error;
pub mod fuzz;
mod hash256;
mod hashing;
mod header;
mod index;
mod limits;
mod plain;
mod png_chunks;
mod reader;
pub mod text;
mod view;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use decode::{Decoded, decode, decode_from_slice, hex, read_header, read_range_sequential};
pub use encode::{EncodeOptions, Encoded, ShaSource, encode, encode_to_vec};
pub use error::{Error, ErrorKind, Result, png_error_text};
pub use hash256::{BadHash, Hash256};
pub use header::{
    Compression, Geometry, HEADER_LEN, HEADER_PIXELS, Header, Kind, Layout, MAGIC, MAX_WIDTH,
    MIN_WIDTH, VERSION,
};
pub use index::{BandEntry, Index};
pub use limits::Limits;
pub use plain::{PlainColor, plain_png};
pub use reader::{PixelReader, Source};
pub use view::render_view;

/// The 32-bit content identifier of a payload: the first four bytes of its SHA-256.
pub fn file_id(sha256: &[u8; 32]) -> u32 {
    u32::from_be_bytes(sha256[0..4].try_into().unwrap())
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of a whole file, streamed.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|err| Error::from(err).with_path(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = std::io::Read::read(&mut file, &mut buffer)
            .map_err(|err| Error::from(err).with_path(path))?;
        if read == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..read]);
    }
}

/// Encodes the file at `source` into a PXI at `target`.
///
/// The source is read twice at once: one thread hashes it while this thread
/// writes pixels, so the payload is never held in memory. The target appears
/// atomically (temporary file, fsync, rename).
pub fn encode_file(
    source: &Path,
    target: &Path,
    options: &EncodeOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Encoded> {
    let input = File::open(source).map_err(|err| Error::from(err).with_path(source))?;
    let metadata = input
        .metadata()
        .map_err(|err| Error::from(err).with_path(source))?;
    // A device or a pipe has no size to put in the header, and /dev/zero would
    // be hashed forever: only regular files are encoded.
    if !metadata.is_file() {
        return Err(Error::Usage(
            "not a regular file (a device or a pipe has no fixed size; copy it into a file first)"
                .into(),
        )
        .with_path(source));
    }
    let payload_len = metadata.len();
    let mut output = durable::AtomicFile::create(target, crate::durable::label::PIXEL_ENCODE)
        .map_err(|err| Error::from(err).with_path(target))?;
    let encoded = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| sha256_file(source));
        let sha: ShaSource<'_> = Box::new(move || {
            hasher
                .join()
                .map_err(|_| Error::Usage("hash thread panicked".into()))?
        });
        let mut writer = BufWriter::with_capacity(1 << 20, output.file());
        let encoded = encode(
            BufReader::with_capacity(1 << 20, input),
            payload_len,
            Some(sha),
            &mut writer,
            options,
            progress,
        )?;
        writer
            .into_inner()
            .map_err(|err| Error::Io(err.into_error()))?;
        Ok::<_, Error>(encoded)
    })
    .map_err(|err| err.with_path(target))?;
    output.after_write();
    output
        .commit()
        .map_err(|err| Error::from(err).with_path(target))?;
    Ok(encoded)
}

/// Decodes the PXI at `source` into the file `target`, which is written only
/// when the payload verifies (nothing is left behind on failure).
pub fn decode_file(
    source: &Path,
    target: &Path,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<Decoded> {
    let input = open_nonempty(source)?;
    // The header first: its limits, and room for the payload, before any write.
    let declared = PixelReader::open(source, limits)?.header().payload_len;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    durable::check_free_space(dir, declared).map_err(|err| err.with_path(target))?;
    let mut output = durable::AtomicFile::create(target, crate::durable::label::PIXEL_DECODE)
        .map_err(|err| Error::from(err).with_path(target))?;
    let decoded = {
        let mut writer = BufWriter::with_capacity(1 << 20, output.file());
        let decoded = decode(
            BufReader::with_capacity(1 << 20, input),
            &mut writer,
            limits,
            progress,
        )
        .map_err(|err| err.with_path(source))?;
        writer
            .into_inner()
            .map_err(|err| Error::Io(err.into_error()).with_path(target))?;
        decoded
    };
    output.after_write();
    output
        .commit()
        .map_err(|err| Error::from(err).with_path(target))?;
    Ok(decoded)
}

/// Decodes the PXI at `path` completely and checks its hash, keeping nothing.
pub fn verify_file(path: &Path, limits: &Limits, progress: &mut dyn FnMut(u64)) -> Result<Decoded> {
    let input = open_nonempty(path)?;
    decode(
        BufReader::with_capacity(1 << 20, input),
        &mut std::io::sink(),
        limits,
        progress,
    )
    .map_err(|err| err.with_path(path))
}

/// Opens a file for decoding, refusing an empty one with a clear message.
pub fn open_nonempty(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|err| Error::from(err).with_path(path))?;
    let len = file
        .metadata()
        .map_err(|err| Error::from(err).with_path(path))?
        .len();
    if len == 0 {
        return Err(Error::Format("the file is empty".into()).with_path(path));
    }
    Ok(file)
}
