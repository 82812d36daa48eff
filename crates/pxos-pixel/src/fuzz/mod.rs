//! Fuzz target bodies. `fuzz/` calls them from cargo-fuzz, and the test
//! suite runs every body on a fixed number of seeded inputs and reports how
//! deep the inputs got (`crates/pxos-cli/tests/it/fuzz_reach.rs`).
//!
//! The bodies of the other crates build on the two tools here: [`layers`]
//! makes mutants one layer below the PNG container and says where an input
//! stops, and [`json`] mutates the JSON inside pxOS files structurally.

mod json;
mod layers;

pub use arbitrary::Unstructured;
pub use json::{mutate_json, mutate_value};
pub use layers::{
    Layer, Mutant, PayloadMutator, Reach, fuzz_limits, mutate_at, mutate_bytes, mutate_png,
    mutate_pxi, stage,
};

use crate::{EncodeOptions, Kind, Layout, decode_from_slice};

/// Decodes arbitrary bytes as a PXI: must return, never panic or allocate without bound.
pub fn decode_bytes(data: &[u8]) {
    let limits = fuzz_limits();
    if let Ok((decoded, payload)) = decode_from_slice(data, &limits) {
        assert!(decoded.header.payload_len <= limits.max_payload);
        assert_eq!(payload.len() as u64, decoded.header.payload_len);
    }
}

/// Fuzz target `pxi_decode`: a generated payload (any kind, layout and
/// metadata) is encoded, mutated at one layer and decoded. Whatever the
/// mutant, a decode that succeeds returns exactly the bytes that were
/// encoded: a damaged PXI never decodes to other bytes.
pub fn pxi_decode(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let kind = *u.choose(Kind::ALL).unwrap_or(&Kind::Blob);
    let layout = if u.arbitrary().unwrap_or(false) {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let metadata_len = usize::from(u.int_in_range(0..=32u8).unwrap_or(0));
    let metadata = u.bytes(metadata_len).unwrap_or_default().to_vec();
    let payload_len = u.int_in_range(0..=2048usize).unwrap_or(0);
    let payload = u.bytes(payload_len).unwrap_or_default().to_vec();
    let options = EncodeOptions {
        kind,
        layout,
        metadata,
        ..EncodeOptions::default()
    };
    let mutant = mutate_pxi(&mut u, &payload, &options, &mut |u, bytes| {
        mutate_bytes(u, bytes)
    });
    decode_bytes(&mutant.png);
    match stage(&mutant.png, &fuzz_limits()) {
        Ok(decoded) => {
            assert_eq!(
                decoded,
                mutant.payload,
                "a mutant at the {} layer decoded to other bytes without an error",
                mutant.layer.name()
            );
            Reach::Accepted
        }
        Err(reach) => reach,
    }
}

/// Wraps a table's JSON, mutates it at one layer and decodes it with
/// `decode`: the reach of the mutant. A decoder may accept only what the
/// pixel layers accept.
pub fn table_body<T, E>(
    u: &mut Unstructured<'_>,
    json: &[u8],
    decode: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
) -> Reach {
    let mutant = mutate_pxi(
        u,
        json,
        &EncodeOptions::kind(Kind::Table),
        // One time in six the generated document goes in as it is, so the
        // code behind a successful decode runs too.
        &mut |u, bytes| {
            if !u.ratio(1, 6).unwrap_or(false) {
                mutate_json(u, bytes);
            }
        },
    );
    let staged = stage(&mutant.png, &fuzz_limits());
    let parsed = decode(&mutant.png).is_ok();
    match staged {
        Ok(_) => Reach::parsed(parsed),
        Err(reach) => {
            assert!(!parsed, "accepted a file the pixel layers refuse");
            reach
        }
    }
}
