//! Programs as pixel files: a PXI of kind `program`, layout `rgba`, one
//! instruction word per pixel (R = opcode), with JSON metadata naming the
//! entry point. The image *is* the program.

use std::path::Path;

use pxos_pixel::{Compression, EncodeOptions, Kind, Layout, Limits};

/// The metadata `format` value of program images.
pub const PROGRAM_FORMAT: &str = "pxvm-program";

/// A loaded program image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramImage {
    /// The words, loaded at address 0.
    pub words: Vec<u32>,
    /// Where execution starts.
    pub entry: u32,
}

/// Why a program image could not be read.
#[derive(Debug)]
pub enum ProgramError {
    /// The PXI layer failed (damaged file, not a PXI, ...).
    Pixel(pxos_pixel::Error),
    /// A valid PXI that is not a PXVM program.
    NotAProgram(String),
}

impl ProgramError {
    /// Who is at fault: the image, or the environment while reading it.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        match self {
            ProgramError::Pixel(err) => err.kind(),
            ProgramError::NotAProgram(_) => pxos_pixel::ErrorKind::BadInput,
        }
    }
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgramError::Pixel(err) => write!(f, "{err}"),
            ProgramError::NotAProgram(message) => write!(f, "not a PXVM program: {message}"),
        }
    }
}

impl std::error::Error for ProgramError {}

impl From<pxos_pixel::Error> for ProgramError {
    fn from(err: pxos_pixel::Error) -> ProgramError {
        ProgramError::Pixel(err)
    }
}

impl ProgramImage {
    /// Encodes as a PXI image (PNG bytes).
    pub fn to_png(&self) -> Vec<u8> {
        let payload: Vec<u8> = self
            .words
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        let metadata = format!(
            "{{\"format\":\"{PROGRAM_FORMAT}\",\"version\":1,\"entry\":{}}}",
            self.entry
        );
        let options = EncodeOptions {
            kind: Kind::Program,
            layout: Layout::Rgba,
            compression: Some(Compression::Best),
            width: None,
            metadata: metadata.into_bytes(),
        };
        pxos_pixel::encode_to_vec(&payload, &options)
            .expect("encoding a program in memory cannot fail")
    }

    /// Decodes a PXI image, checking that it is a program.
    pub fn from_png(bytes: &[u8]) -> Result<ProgramImage, ProgramError> {
        let limits = Limits {
            max_in_memory: 256 << 20,
            ..Limits::default()
        };
        let (decoded, payload) = pxos_pixel::decode_from_slice(bytes, &limits)?;
        if decoded.header.kind != Kind::Program {
            return Err(ProgramError::NotAProgram(format!(
                "its kind is {}",
                decoded.header.kind.name()
            )));
        }
        if payload.len() % 4 != 0 {
            return Err(ProgramError::NotAProgram(format!(
                "{} bytes is not a whole number of words",
                payload.len()
            )));
        }
        let entry = parse_entry(&decoded.metadata).map_err(ProgramError::NotAProgram)?;
        let words = payload
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(ProgramImage { words, entry })
    }

    /// Reads a program image file.
    pub fn read(path: &Path) -> Result<ProgramImage, ProgramError> {
        let bytes = pxos_pixel::text::read_input(path)?;
        if bytes.is_empty() {
            return Err(pxos_pixel::Error::Format("the file is empty".into())
                .with_path(path)
                .into());
        }
        ProgramImage::from_png(&bytes).map_err(|err| match err {
            ProgramError::Pixel(err) => ProgramError::Pixel(err.with_path(path)),
            ProgramError::NotAProgram(message) => {
                ProgramError::NotAProgram(format!("{}: {message}", path.display()))
            }
        })
    }
}

/// The entry point from the metadata JSON written by [`ProgramImage::to_png`]:
/// `format` must be a pxvm program and `entry` a whole number that fits a
/// word (`1.5`, `1e30`, `-1` and `"1"` are refused, not rounded).
fn parse_entry(metadata: &[u8]) -> Result<u32, String> {
    let value: serde_json::Value = serde_json::from_slice(metadata)
        .map_err(|err| format!("its metadata is not JSON ({err})"))?;
    if value["format"] != PROGRAM_FORMAT {
        return Err(format!(
            "its metadata does not say format \"{PROGRAM_FORMAT}\" (not a program image)"
        ));
    }
    let entry = &value["entry"];
    if entry.is_null() {
        return Err("its metadata has no entry point".into());
    }
    entry
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            let shown = entry.to_string();
            format!(
                "its entry point {} is not a whole number from 0 to 4294967295",
                pxos_pixel::text::escape_short(&shown)
            )
        })
}
