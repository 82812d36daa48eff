//! Test helpers: the project's test-support crate.

pub use pxos_test_support::Rng;

/// Compares `actual` with the golden file at `path` (relative to this crate);
/// `UPDATE_EXPECT=1` rewrites it (refused under `CI=true`).
pub fn check_golden(path: &str, actual: &str) {
    pxos_test_support::check_golden(env!("CARGO_MANIFEST_DIR"), path, actual);
}
