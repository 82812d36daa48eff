//! Shared helpers: the project's test-support crate.

pub use pxos_test_support::{Rng, TempDir, require_tool};
