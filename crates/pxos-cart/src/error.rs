//! The error type of cartridges and the evolution log.

use std::fmt;
use std::path::PathBuf;

/// Errors grouped by who is at fault.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// A cartridge, manifest or log is malformed, damaged or hostile.
    Format(String),
    /// The caller asked for something invalid.
    Usage(String),
    /// A policy said no (promotion without approval or without a passing Genesis run).
    Refused(String),
    /// Something asked for is not there (no such cartridge).
    NotFound(String),
    /// Persisted state was changed behind pxOS's back: the log does not
    /// verify, or the log and the registry disagree.
    Tampered(String),
    /// A declared size or count exceeds the limits.
    LimitExceeded(String),
    Pixel(pxos_pixel::Error),
    Fs(pxos_fs::Error),
    WithPath {
        path: PathBuf,
        source: Box<Error>,
    },
}

impl Error {
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        match self {
            Error::WithPath { .. } => self,
            other => Error::WithPath {
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// Who is at fault.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        use pxos_pixel::ErrorKind;
        match self {
            Error::Io(_) => ErrorKind::Io,
            Error::Format(_) | Error::LimitExceeded(_) => ErrorKind::BadInput,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Refused(_) => ErrorKind::Refused,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Tampered(_) => ErrorKind::Tampered,
            Error::Pixel(err) => err.kind(),
            Error::Fs(err) => err.kind(),
            Error::WithPath { source, .. } => source.kind(),
        }
    }

    /// True when a policy refused the request (a clean "no").
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Refused(_) => true,
            Error::WithPath { source, .. } => source.is_refusal(),
            _ => false,
        }
    }

    /// True when the input is bad (damaged, hostile, refused by limits).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Format(_)
            | Error::LimitExceeded(_)
            | Error::Tampered(_)
            | Error::NotFound(_) => true,
            Error::Pixel(err) => err.is_bad_input(),
            Error::Fs(err) => err.is_bad_input(),
            Error::WithPath { source, .. } => source.is_bad_input(),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Format(message) => write!(f, "{message}"),
            Error::Usage(message)
            | Error::Refused(message)
            | Error::NotFound(message)
            | Error::Tampered(message) => write!(f, "{message}"),
            Error::LimitExceeded(message) => write!(f, "refused by limits: {message}"),
            Error::Pixel(err) => write!(f, "{err}"),
            Error::Fs(err) => write!(f, "{err}"),
            Error::WithPath { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::Io(err)
    }
}

impl From<pxos_pixel::Error> for Error {
    fn from(err: pxos_pixel::Error) -> Error {
        Error::Pixel(err)
    }
}

impl From<pxos_fs::Error> for Error {
    fn from(err: pxos_fs::Error) -> Error {
        Error::Fs(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
