//! The error type of the LLM crate.

use std::fmt;
use std::path::{Path, PathBuf};

pub use pxos_pixel::ErrorKind;

/// What went wrong, and who is at fault.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
}

impl Error {
    /// A model, manifest, corpus or request that is malformed or hostile.
    pub fn bad_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadInput, message)
    }

    /// A request the caller should not have made (a bad flag combination, say).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    /// Something named that does not exist.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Stored bytes that no longer match their recorded hash.
    pub fn tampered(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Tampered, message)
    }

    /// Reading or writing a file failed.
    pub fn io(err: std::io::Error, path: &Path) -> Error {
        Error::new(ErrorKind::Io, format!("i/o error: {err}")).with_path(path)
    }

    /// An error of a given kind (from another crate's error).
    pub fn from_kind(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message)
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            path: None,
        }
    }

    /// Names the file this error is about (kept if one is named already).
    pub fn with_path(mut self, path: &Path) -> Error {
        if self.path.is_none() {
            self.path = Some(path.to_path_buf());
        }
        self
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<pxos_pixel::Error> for Error {
    fn from(err: pxos_pixel::Error) -> Error {
        Error::new(err.kind(), err.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
