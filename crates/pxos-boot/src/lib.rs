//! Kernels and booting.
//!
//! The [`KernelStore`] keeps every kernel version as a pixel program with
//! boot counting and automatic revert; [`FsStorage`] backs PXVM syscalls with
//! PixelFS; [`evolve::demo_evolve`] runs the seed 002 self-evolution cycle.
//! (Issue 4 adds the boot sequence, cartridges and the hypervisor here.)

pub mod boot;
mod error;
pub mod evolve;
pub mod genesis;
pub mod hypervisor;
pub mod kernel_store;
mod storage;
pub mod world;

pub use error::{Error, Result};
pub use kernel_store::{BootReport, Event, KernelRecord, KernelStore, State, Status};
pub use storage::FsStorage;
