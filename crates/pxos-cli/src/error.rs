//! The CLI's one error type. Every library error has a kind (who is at
//! fault); converting it here keeps the kind, so the exit code follows from
//! the kind alone: 1 for a clean "no" (bad input, not found, refused,
//! tampered), 2 for usage and environment errors. No downcasting.

use std::fmt;

pub use pxos_pixel::ErrorKind;

/// An error the CLI reports.
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
    /// A hint printed as `help: ...`.
    pub help: Option<&'static str>,
    /// Stdout went away (`pxos ... | head`): not an error, exit 0.
    pub broken_pipe: bool,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            help: None,
            broken_pipe: false,
        }
    }

    /// Input the command refuses (a bad source, image or option): exit 1.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::BadInput, message)
    }

    /// A request that cannot be carried out: exit 2.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::Usage, message)
    }

    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        if self.broken_pipe {
            0
        } else {
            self.kind.exit_code()
        }
    }

    fn with_help(mut self, help: &'static str) -> CliError {
        self.help = Some(help);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// `return Err(...)` with a kind and a formatted message.
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::CliError::new(
            $crate::error::ErrorKind::$kind,
            format!($($arg)*),
        ))
    };
}
pub(crate) use bail;

/// Adds what the command was doing to an error, keeping its kind.
pub trait Context<T> {
    fn context(self, message: impl fmt::Display) -> Result<T>;
    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T>;
}

impl<T, E: Into<CliError>> Context<T> for std::result::Result<T, E> {
    fn context(self, message: impl fmt::Display) -> Result<T> {
        self.map_err(|err| {
            let mut err = err.into();
            err.message = format!("{message}: {}", err.message);
            err
        })
    }

    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T> {
        self.map_err(|err| {
            let mut err = err.into();
            err.message = format!("{}: {}", message(), err.message);
            err
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, message: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| CliError::usage(message.to_string()))
    }

    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T> {
        self.ok_or_else(|| CliError::usage(message().to_string()))
    }
}

fn is_broken_pipe(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::BrokenPipe
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> CliError {
        let mut out = CliError::new(ErrorKind::Io, format!("i/o error: {err}"));
        out.broken_pipe = is_broken_pipe(&err);
        out
    }
}

impl From<pxos_pixel::Error> for CliError {
    fn from(err: pxos_pixel::Error) -> CliError {
        let mut out = CliError::new(err.kind(), err.to_string());
        out.broken_pipe = err.io_error().is_some_and(is_broken_pipe);
        if matches!(err.root(), pxos_pixel::Error::Integrity { .. }) {
            out =
                out.with_help("the file was altered after it was written; restore it from a copy");
        }
        out
    }
}

impl From<pxos_fs::Error> for CliError {
    fn from(err: pxos_fs::Error) -> CliError {
        let not_initialized = matches!(err, pxos_fs::Error::NotInitialized(_));
        let out = CliError::new(err.kind(), err.to_string());
        if not_initialized {
            out.with_help(
                "create it with `pxos fs init`, or point --home / PXOS_HOME at an existing home",
            )
        } else {
            out
        }
    }
}

fn tamper_help(kind: ErrorKind) -> Option<&'static str> {
    (kind == ErrorKind::Tampered).then_some(
        "`pxos log verify` lists what does not agree; `pxos cart fsck` and `pxos kernel fsck` can rebuild state from an intact log",
    )
}

impl From<pxos_cart::Error> for CliError {
    fn from(err: pxos_cart::Error) -> CliError {
        let mut out = CliError::new(err.kind(), err.to_string());
        out.help = tamper_help(out.kind);
        out
    }
}

impl From<pxos_boot::Error> for CliError {
    fn from(err: pxos_boot::Error) -> CliError {
        let mut out = CliError::new(err.kind(), err.to_string());
        out.help = tamper_help(out.kind);
        out
    }
}

impl From<pxos_vm::asm::AsmError> for CliError {
    fn from(err: pxos_vm::asm::AsmError) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

impl From<pxos_vm::ProgramError> for CliError {
    fn from(err: pxos_vm::ProgramError) -> CliError {
        match err {
            pxos_vm::ProgramError::Pixel(err) => err.into(),
            other => CliError::new(other.kind(), other.to_string()),
        }
    }
}

impl From<pxos_vm::LoadError> for CliError {
    fn from(err: pxos_vm::LoadError) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

impl From<pxos_llm::Error> for CliError {
    fn from(err: pxos_llm::Error) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

impl From<pxos_map::Error> for CliError {
    fn from(err: pxos_map::Error) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

impl From<pxos_vram::Error> for CliError {
    fn from(err: pxos_vram::Error) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

impl From<pxos_x86::BuildError> for CliError {
    fn from(err: pxos_x86::BuildError) -> CliError {
        CliError::bad_input(err.to_string())
    }
}

impl From<pxos_x86::qemu::QemuError> for CliError {
    fn from(err: pxos_x86::qemu::QemuError) -> CliError {
        use pxos_x86::qemu::QemuError;
        let kind = match err {
            QemuError::NotFound(_) | QemuError::Failed(_) => ErrorKind::Io,
            _ => ErrorKind::BadInput,
        };
        CliError::new(kind, err.to_string())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(err: serde_json::Error) -> CliError {
        if err.is_io() {
            let mut out = CliError::new(ErrorKind::Io, format!("i/o error: {err}"));
            out.broken_pipe = err.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe);
            out
        } else {
            CliError::usage(format!("internal: {err}"))
        }
    }
}

impl From<std::num::ParseIntError> for CliError {
    fn from(err: std::num::ParseIntError) -> CliError {
        CliError::usage(format!("not a number: {err}"))
    }
}
