//! The error type of the simulated VRAM, roadmaps and the improvement loop.

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
    /// A roadmap, image or provenance file that is malformed or hostile.
    pub fn bad_input(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::BadInput,
            message: message.into(),
            path: None,
        }
    }

    /// Writing a generation's files failed.
    pub fn io(err: std::io::Error, path: &Path) -> Error {
        Error {
            kind: ErrorKind::Io,
            message: format!("i/o error: {err}"),
            path: Some(path.to_path_buf()),
        }
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
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
