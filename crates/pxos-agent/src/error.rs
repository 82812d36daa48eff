//! Agent errors: a kind (which picks the exit code) and a message that names
//! the task, file or endpoint at fault.

use std::fmt;
use std::path::Path;

pub use pxos_pixel::ErrorKind;

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn refused(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Refused, message)
    }

    pub fn bad_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadInput, message)
    }

    /// The network or an endpoint failed.
    pub fn network(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Io, format!("network: {}", message.into()))
    }

    pub fn io(err: std::io::Error, path: &Path) -> Error {
        Error::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }

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

macro_rules! from_kinded {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Error {
            fn from(err: $ty) -> Error {
                Error::new(err.kind(), err.to_string())
            }
        }
    )*};
}

from_kinded!(
    pxos_pixel::Error,
    pxos_fs::Error,
    pxos_cart::Error,
    pxos_boot::Error,
    pxos_llm::Error,
    pxos_vram::Error,
    pxos_remote::Error,
    pxos_map::Error
);
