//! Agents inside pxOS.
//!
//! * [`queue`]: the one task queue (a PXI, replaced atomically under a lock).
//! * [`provider`]: the built-in pixel model, OpenAI-compatible endpoints and
//!   replays, behind the model policy ([`provider::Gate`]), every exchange logged.
//! * [`coach`]: generate -> review -> real checks -> accept, at most 3 rounds.
//! * [`evolve`]: guardrails, proposals and world rebuilds from a template.
//! * [`workspace`]: the sandbox folders agents write into, and nowhere else.
//! * [`bridge`]: the configured model for SYS_LLM and the shell's `ask`.
//! * [`proposer`]: a model as the VRAM improvement loop's proposer.

pub mod bridge;
pub mod chat;
pub mod check;
pub mod coach;
pub mod config;
pub mod control;
pub mod error;
pub mod evolve;
pub mod http;
pub mod proposer;
pub mod provider;
pub mod queue;
pub mod workspace;
pub mod world;

pub use error::{Error, Result};
