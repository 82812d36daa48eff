//! Fuzz target bodies; the test suite runs them on seeded inputs.

use std::collections::BTreeMap;

use crate::build::{ORIGIN, Options, build};
use crate::disasm::{disassemble, render};

/// Builds arbitrary text in both modes, and disassembles what builds. Nothing may panic;
/// whatever builds is a sector (or a seed image) that ends in the signature.
pub fn build_source(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for compat_seed in [false, true] {
        let options = Options {
            compat_seed,
            allow_overwrite: false,
        };
        if let Ok(image) = build(&text, options) {
            assert!(image.bytes.len() >= 512);
            assert_eq!(image.boot_sector()[510..], crate::build::SIGNATURE);
            let listing = disassemble(image.boot_sector(), ORIGIN, &image.labels());
            let _ = render(&listing);
        }
    }
}

/// Disassembles arbitrary bytes as a sector.
pub fn disassemble_bytes(data: &[u8]) {
    let listing = disassemble(data, ORIGIN, &BTreeMap::new());
    let covered: usize = listing.entries.len();
    assert!(data.is_empty() || covered > 0);
    let _ = render(&listing);
}
