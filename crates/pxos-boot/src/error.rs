//! The error type of booting, kernels, the hypervisor and Genesis.

use std::path::{Path, PathBuf};

pub use pxos_pixel::ErrorKind;

/// Errors of this crate, grouped by who is at fault.
#[derive(Debug)]
pub enum Error {
    /// The environment failed (with the file, when there is one).
    Io {
        path: Option<PathBuf>,
        source: std::io::Error,
    },
    /// Stored or given data is damaged, malformed or hostile.
    Format(String),
    /// The caller asked for something impossible.
    Usage(String),
    /// Something asked for is not there.
    NotFound(String),
    /// A policy said no.
    Refused(String),
    /// Persisted state was changed behind pxOS's back.
    Tampered(String),
    Fs(pxos_fs::Error),
    Pixel(pxos_pixel::Error),
    Cart(pxos_cart::Error),
    /// Another error, with the file it happened on.
    WithPath {
        path: PathBuf,
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(source: std::io::Error, path: &Path) -> Error {
        Error::Io {
            path: Some(path.to_path_buf()),
            source,
        }
    }

    /// Attaches `path` unless the error already names a file.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        match self {
            Error::WithPath { .. } | Error::Io { path: Some(_), .. } => self,
            other => Error::WithPath {
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Format(_) => ErrorKind::BadInput,
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Tampered(_) => ErrorKind::Tampered,
            Error::Fs(err) => err.kind(),
            Error::Pixel(err) => err.kind(),
            Error::Cart(err) => err.kind(),
            Error::WithPath { source, .. } => source.kind(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io {
                path: Some(path),
                source,
            } => {
                write!(f, "{}: i/o error: {source}", path.display())
            }
            Error::Io { path: None, source } => write!(f, "i/o error: {source}"),
            Error::Format(message)
            | Error::Usage(message)
            | Error::NotFound(message)
            | Error::Refused(message)
            | Error::Tampered(message) => f.write_str(message),
            Error::Fs(err) => write!(f, "{err}"),
            Error::Pixel(err) => write!(f, "{err}"),
            Error::Cart(err) => write!(f, "{err}"),
            Error::WithPath { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Fs(err) => Some(err),
            Error::Pixel(err) => Some(err),
            Error::Cart(err) => Some(err),
            Error::WithPath { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::Io { path: None, source }
    }
}

impl From<pxos_fs::Error> for Error {
    fn from(err: pxos_fs::Error) -> Error {
        Error::Fs(err)
    }
}

impl From<pxos_pixel::Error> for Error {
    fn from(err: pxos_pixel::Error) -> Error {
        Error::Pixel(err)
    }
}

impl From<pxos_cart::Error> for Error {
    fn from(err: pxos_cart::Error) -> Error {
        Error::Cart(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
