//! Remote errors, by who is at fault. Messages name the remote and the key,
//! never a credential.

use std::fmt;
use std::path::Path;

use pxos_pixel::ErrorKind;

#[derive(Debug)]
pub enum Error {
    /// A request that cannot be carried out (a bad URL, no remote, no credentials).
    Usage(String),
    /// Something asked for is not there.
    NotFound(String),
    /// A policy said no.
    Refused(String),
    /// A compare-and-swap lost: the remote's reference is not what this
    /// home expected (another push won). Nothing changed.
    Moved(String),
    /// A local file is malformed.
    BadInput(String),
    /// The remote sent something that fails verification: it is refused and
    /// nothing of it enters the home.
    Remote(String),
    /// The network or the remote failed (a timeout, a refused connection, a 5xx).
    Network(String),
    Io(String),
    Fs(pxos_fs::Error),
    Cart(pxos_cart::Error),
    Pixel(pxos_pixel::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(err: std::io::Error, path: &Path) -> Error {
        Error::Io(format!("{}: {err}", path.display()))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Refused(_) | Error::Moved(_) => ErrorKind::Refused,
            Error::BadInput(_) | Error::Remote(_) => ErrorKind::BadInput,
            Error::Network(_) | Error::Io(_) => ErrorKind::Io,
            Error::Fs(err) => err.kind(),
            Error::Cart(err) => err.kind(),
            Error::Pixel(err) => err.kind(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m)
            | Error::NotFound(m)
            | Error::Refused(m)
            | Error::BadInput(m)
            | Error::Io(m) => f.write_str(m),
            Error::Moved(m) => write!(f, "the remote moved: {m}"),
            Error::Remote(m) => write!(f, "the remote sent bad data: {m}"),
            Error::Network(m) => write!(f, "network: {m}"),
            Error::Fs(err) => err.fmt(f),
            Error::Cart(err) => err.fmt(f),
            Error::Pixel(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<pxos_fs::Error> for Error {
    fn from(err: pxos_fs::Error) -> Error {
        Error::Fs(err)
    }
}

impl From<pxos_cart::Error> for Error {
    fn from(err: pxos_cart::Error) -> Error {
        Error::Cart(err)
    }
}

impl From<pxos_pixel::Error> for Error {
    fn from(err: pxos_pixel::Error) -> Error {
        Error::Pixel(err)
    }
}
