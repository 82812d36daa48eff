//! The error type of the PXI codec.

use std::fmt;
use std::path::PathBuf;

/// Who is at fault, for every pxOS library error. The CLI turns a kind into
/// its exit code: the four "clean no" kinds exit 1, the rest 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed, damaged or hostile (exit 1).
    BadInput,
    /// Something asked for is not there (exit 1).
    NotFound,
    /// A policy said no: approval, Genesis, sandbox (exit 1).
    Refused,
    /// Persisted state was changed behind pxOS's back (exit 1).
    Tampered,
    /// The caller asked for something impossible (exit 2).
    Usage,
    /// The environment failed: disk, permissions, a held lock (exit 2).
    Io,
}

impl ErrorKind {
    /// The `pxos` exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadInput
            | ErrorKind::NotFound
            | ErrorKind::Refused
            | ErrorKind::Tampered => 1,
            ErrorKind::Usage | ErrorKind::Io => 2,
        }
    }
}

/// Everything that can go wrong while encoding or decoding a PXI file.
///
/// Variants are grouped by who is at fault: the environment (`Io`), the input
/// (`Format`, `Integrity`, `LimitExceeded`) or the caller (`Usage`).
#[derive(Debug)]
pub enum Error {
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The input is not a valid PXI file (or not a PNG at all).
    Format(String),
    /// The file decoded, but the payload does not match its SHA-256.
    Integrity { expected: String, actual: String },
    /// The input asks for more than the configured [`crate::Limits`] allow.
    LimitExceeded(String),
    /// The caller asked for something impossible (e.g. a read past the end).
    Usage(String),
    /// Another error, with the file it happened on.
    WithPath { path: PathBuf, source: Box<Error> },
}

impl Error {
    /// Attaches `path` to this error, unless it already names one.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        match self {
            Error::WithPath { .. } => self,
            other => Error::WithPath {
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// The innermost error, without path context.
    pub fn root(&self) -> &Error {
        match self {
            Error::WithPath { source, .. } => source.root(),
            other => other,
        }
    }

    /// True when the input itself is bad (damaged, hostile or not a PXI), as
    /// opposed to an I/O failure or a caller mistake.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self.root(),
            Error::Format(_) | Error::Integrity { .. } | Error::LimitExceeded(_)
        )
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self.root() {
            Error::Io(_) => ErrorKind::Io,
            Error::Format(_) | Error::Integrity { .. } | Error::LimitExceeded(_) => {
                ErrorKind::BadInput
            }
            Error::Usage(_) | Error::WithPath { .. } => ErrorKind::Usage,
        }
    }

    /// The underlying I/O error, if that is what this is.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self.root() {
            Error::Io(err) => Some(err),
            _ => None,
        }
    }

    pub(crate) fn format(message: impl Into<String>) -> Error {
        Error::Format(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Format(message) => write!(f, "not a valid PXI file: {message}"),
            Error::Integrity { expected, actual } => write!(
                f,
                "payload hash mismatch: header says sha256 {expected}, pixels give {actual}; the file is damaged"
            ),
            Error::LimitExceeded(message) => write!(f, "refused by limits: {message}"),
            Error::Usage(message) => write!(f, "{message}"),
            Error::WithPath { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::WithPath { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        // An unexpected end of file while parsing means the input is truncated,
        // which is bad input rather than an environment failure.
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Format("unexpected end of file (the file is truncated)".into())
        } else {
            Error::Io(err)
        }
    }
}

impl From<png::DecodingError> for Error {
    fn from(err: png::DecodingError) -> Error {
        match err {
            png::DecodingError::IoError(io) => Error::from(io),
            png::DecodingError::LimitsExceeded => {
                Error::LimitExceeded("the PNG decoder's memory limit was exceeded".into())
            }
            other => Error::Format(format!("png: {}", png_error_text(&other))),
        }
    }
}

/// A PNG decoder error as a sentence: the `png` crate prints chunk types as
/// Rust debug structs (`ChunkType { type: IHDR, critical: true, ... }`); this
/// names the chunk (`the IHDR chunk`) instead.
pub fn png_error_text(err: &png::DecodingError) -> String {
    let text = err.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("ChunkType {") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let name = after
            .split_once("type: ")
            .and_then(|(_, tail)| tail.split([',', ' ', '}']).next())
            .unwrap_or("a");
        out.push_str(&format!("the {name}"));
        match after.find('}') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("the the ", "the ")
        .replace(" chunk chunk", " chunk")
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
