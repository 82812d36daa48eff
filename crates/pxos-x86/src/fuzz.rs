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

/// Tokens the source generator puts in place of others.
const COMMANDS: [&str; 9] = [
    "WRITE",
    "WORD",
    "DEFINE",
    "CALL",
    "COMMENT",
    "REL8",
    "REL16",
    "TEXT",
    "OVERWRITE",
];
const NUMBERS: [&str; 12] = [
    "0x7C00",
    "0x7DFD",
    "0x7DFE",
    "0x7DFF",
    "0x7E00",
    "0",
    "0xFF",
    "0x100",
    "0xFFFF",
    "-1",
    "0b1_0000_0000",
    "99999999999999999999",
];

/// A generated primitive-language source: the built-in shell, edited line
/// by line and token by token (lines dropped, repeated or moved, commands
/// swapped, numbers and labels replaced by ones at the edges or undefined).
pub fn source(u: &mut arbitrary::Unstructured<'_>) -> String {
    let mut lines: Vec<String> = crate::SHELL_SOURCE.lines().map(str::to_string).collect();
    let edits: u8 = u.int_in_range(0..=4).unwrap_or(0);
    for _ in 0..edits {
        if lines.is_empty() {
            break;
        }
        let at = u.int_in_range(0..=lines.len() - 1).unwrap_or(0);
        let mut tokens: Vec<String> = lines[at].split_whitespace().map(str::to_string).collect();
        match u.int_in_range(0..=5u8).unwrap_or(0) {
            0 => {
                lines.remove(at);
                continue;
            }
            1 => {
                let to = u.int_in_range(0..=lines.len() - 1).unwrap_or(0);
                let line = lines[at].clone();
                lines.insert(to, line);
                continue;
            }
            2 if !tokens.is_empty() => {
                tokens[0] = (*u.choose(&COMMANDS).unwrap_or(&"WRITE")).into();
            }
            3 if tokens.len() > 1 => {
                let i = u.int_in_range(1..=tokens.len() - 1).unwrap_or(1);
                tokens[i] = (*u.choose(&NUMBERS).unwrap_or(&"0")).into();
            }
            4 if tokens.len() > 1 => {
                let i = u.int_in_range(1..=tokens.len() - 1).unwrap_or(1);
                tokens[i] = (*u
                    .choose(&["main", "nowhere", "start", "\"text\"", "\""])
                    .unwrap_or(&"main"))
                .into();
            }
            _ => tokens.truncate(u.int_in_range(0..=tokens.len()).unwrap_or(0)),
        }
        lines[at] = tokens.join(" ");
    }
    lines.join("\n")
}

/// Fuzz target `x86_source`: a generated source is built in both modes (and
/// what builds is disassembled); the sector's bytes are also disassembled as
/// they are. True when the source built (this crate stands alone, so it
/// answers a bool rather than `pxos_pixel::fuzz::Reach`).
pub fn x86_source(data: &[u8]) -> bool {
    let mut u = arbitrary::Unstructured::new(data);
    let text = source(&mut u);
    let built = build(&text, Options::default()).ok();
    build_source(text.as_bytes());
    let sector: Vec<u8> = match &built {
        Some(image) => image.boot_sector().to_vec(),
        None => u.bytes(512.min(u.len())).unwrap_or_default().to_vec(),
    };
    disassemble_bytes(&sector);
    built.is_some()
}
