//! pxOS v1: a real x86 boot sector built from WRITE/DEFINE primitives.
//!
//! * [`source`]: the primitive language (strict dialect) and its diagnostics.
//! * [`build`](mod@build): the boot builder (origin 0x7C00, one checked sector) and the
//!   seed-compatible builder.
//! * [`flow`]: tracing 16-bit code from the entry point; branch checks.
//! * [`disasm`]: the labelled listing of a sector.
//! * [`qemu`]: booting a sector in QEMU, typing into it and reading the VGA text screen.
//!
//! The pxOS v1 shell, written in the primitive language, is [`SHELL_SOURCE`].

pub mod build;
pub mod disasm;
pub mod flow;
pub mod fuzz;
pub mod qemu;
pub mod source;

pub use build::{BuildError, Image, Mode, Options, build};
pub use source::{Diagnostic, Problem};

/// The pxOS v1 shell's primitive source (`programs/pxos-v1-shell.txt`).
pub const SHELL_SOURCE: &str = include_str!("../programs/pxos-v1-shell.txt");
