//! The error type of PixelFS.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in PixelFS, grouped by who is at fault.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing the store failed.
    Io(std::io::Error),
    /// A stored file (path table, object) is damaged or not what it should be.
    Format(String),
    /// The caller asked for something invalid (bad path, missing entry, ...).
    Usage(String),
    /// No entry or object matches.
    NotFound(String),
    /// Another process holds the store's write lock.
    Locked {
        path: PathBuf,
        holder: Option<u32>,
        waited: std::time::Duration,
    },
    /// The store has not been initialized.
    NotInitialized(PathBuf),
    /// An error of the PXI codec.
    Pixel(pxos_pixel::Error),
    /// Another error, with the file it happened on.
    WithPath { path: PathBuf, source: Box<Error> },
}

impl Error {
    /// Attaches `path` unless the error already names a file.
    pub fn with_path(self, path: impl Into<PathBuf>) -> Error {
        match self {
            Error::WithPath { .. } | Error::Pixel(pxos_pixel::Error::WithPath { .. }) => self,
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

    /// True when stored data is damaged or hostile (as opposed to I/O or usage errors).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Format(_) => true,
            Error::Pixel(err) => err.is_bad_input(),
            Error::WithPath { source, .. } => source.is_bad_input(),
            _ => false,
        }
    }

    /// Who is at fault.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        use pxos_pixel::ErrorKind;
        match self {
            Error::Io(_) | Error::Locked { .. } => ErrorKind::Io,
            Error::Format(_) => ErrorKind::BadInput,
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::NotInitialized(_) => ErrorKind::Usage,
            Error::Pixel(err) => err.kind(),
            Error::WithPath { source, .. } => source.kind(),
        }
    }

    /// The I/O error kind, when this is an I/O error.
    pub fn root_io_kind(&self) -> Option<std::io::ErrorKind> {
        match self.root() {
            Error::Io(err) => Some(err.kind()),
            _ => None,
        }
    }

    /// True when the answer is a clean "no such thing".
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::WithPath { source, .. } => source.is_not_found(),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Format(message) => write!(f, "{message}"),
            Error::Usage(message) => write!(f, "{message}"),
            Error::NotFound(message) => write!(f, "{message}"),
            Error::Locked {
                path,
                holder,
                waited,
            } => write!(
                f,
                "another pxos process{} is writing here (it holds the lock {}); gave up after waiting {:.1} s \
                 (wait longer with --lock-timeout SECONDS)",
                holder
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default(),
                path.display(),
                waited.as_secs_f64()
            ),
            Error::NotInitialized(path) => {
                write!(
                    f,
                    "no PixelFS at {} (run `pxos fs init` first)",
                    path.display()
                )
            }
            Error::Pixel(err) => write!(f, "{err}"),
            Error::WithPath { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::Pixel(err) => Some(err),
            Error::WithPath { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

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

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
