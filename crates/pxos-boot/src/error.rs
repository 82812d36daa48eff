//! The error type of booting, kernels, the hypervisor and Genesis.

/// Errors of this crate, grouped by who is at fault.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// The store's files are damaged.
    Format(String),
    /// The caller asked for something impossible.
    Usage(String),
    Fs(pxos_fs::Error),
    Pixel(pxos_pixel::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Format(message) | Error::Usage(message) => f.write_str(message),
            Error::Fs(err) => write!(f, "{err}"),
            Error::Pixel(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::Io(err)
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
