//! Simulated VRAM: the running system as one RGBA texture with named regions
//! (metadata, opcode palette, kernel, syscall table, process table, program
//! area), built from declarative roadmaps, scored by an evaluator, and
//! improved generation by generation.

mod error;
pub mod evaluate;
pub mod fuzz;
pub mod improve;
pub mod os;
pub mod roadmap;
pub mod vram;

pub use error::{Error, ErrorKind, Result};
pub use evaluate::{CheckResult, Evaluation, evaluate};
pub use roadmap::{Roadmap, build};
pub use vram::{Region, Vram};

/// The default roadmap: a VRAM OS with a scheduling kernel and two processes.
pub const DEFAULT_ROADMAP: &str = include_str!("../roadmaps/ROADMAP_VRAM_OS.yaml");
/// A deliberately deficient roadmap the improvement loop repairs.
pub const DEFICIENT_ROADMAP: &str = include_str!("../roadmaps/deficient.yaml");
