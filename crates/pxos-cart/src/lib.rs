//! Cartridges and the evolution log.
//!
//! A cartridge (`.pxa`) is a whole pxOS world in one pixel archive: a
//! manifest (name, semver version, parent, creator kind and name, notes,
//! reason, capabilities, metrics, Genesis version, per-file hashes) and a file
//! tree, stored as one PXI image of kind `archive`. The evolution log is an
//! append-only, hash-chained record of every action, stored as a PXI.

pub mod cartridge;
pub mod checkpoint;
mod error;
pub mod fuzz;
pub mod log;
pub mod registry;

pub use cartridge::{
    Creator, CreatorKind, FileEntry, Limits, Manifest, Packed, pack, read_manifest, unpack,
};
pub use checkpoint::{Checkpointed, FsckReport, Intent};
pub use error::{Error, Result};
pub use log::{
    Action, Actor, ActorKind, CartRef, Domain, Entries, EvolutionLog, KernelOutcome, LogEntry,
    LogPosition, Origin, SwitchCause,
};
pub use registry::{GenesisRun, Record, Registry, RollbackOutcome, Status};
