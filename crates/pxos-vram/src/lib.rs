//! Simulated VRAM: the running system as one RGBA texture with named regions
//! (metadata, opcode palette, kernel, syscall table, process table, program
//! area), built from declarative roadmaps, scored by an evaluator, and
//! improved generation by generation.

mod error;
pub mod evaluate;
pub mod fuzz;
pub mod improve;
pub mod roadmap;
pub mod vram;

pub use error::{Error, ErrorKind, Result};
pub use evaluate::{CheckResult, Evaluation, evaluate};
pub use roadmap::{Roadmap, build};
pub use vram::{Region, Vram};
