//! Kernels and booting.
//!
//! The [`KernelStore`] keeps every kernel version as a pixel program with
//! boot counting and automatic revert; [`FsStorage`] backs PXVM syscalls with
//! PixelFS; [`evolve::demo_evolve`] runs the seed 002 self-evolution cycle.
//! [`boot`] runs boot sequences, with the kernel stage booting the kernel
//! store's current kernel; [`hypervisor`] is the only way programs run;
//! [`run`] places program runs (trusted or sandboxed); [`shell`] is the host's
//! side of the world's interactive shell; [`genesis`] holds the
//! executable constitution; [`world`] the embedded default world.

pub mod boot;
mod error;
pub mod evolve;
pub mod fuzz;
pub mod genesis;
pub mod hypervisor;
pub mod kernel_store;
pub mod run;
pub mod shell;
mod storage;
pub mod world;

pub use error::{Error, ErrorKind, Result};
pub use kernel_store::{BootReport, KernelRecord, KernelStore, RequestOutcome, State, Status};
pub use storage::{CartridgeStorage, FsStorage};
