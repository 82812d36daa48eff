//! The map's error type.

use std::fmt;
use std::path::Path;

pub use pxos_pixel::ErrorKind;

/// What went wrong, and who is at fault.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Reading or writing `path` failed.
    pub fn io(err: std::io::Error, path: &Path) -> Error {
        Error::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
