//! Fuzz target bodies. `fuzz/` calls these from cargo-fuzz; the test suite
//! runs them on seeded random and mutated inputs so they are exercised in CI.

use crate::{EncodeOptions, Kind, Layout, Limits, decode_from_slice, encode_to_vec};

/// Decodes arbitrary bytes as a PXI: must return, never panic or allocate without bound.
pub fn decode_bytes(data: &[u8]) {
    let limits = Limits {
        max_in_memory: 64 << 20,
        max_image_bytes: 256 << 20,
        max_payload: 64 << 20,
        ..Limits::default()
    };
    if let Ok((decoded, payload)) = decode_from_slice(data, &limits) {
        assert!(decoded.header.payload_len <= limits.max_payload);
        assert_eq!(payload.len() as u64, decoded.header.payload_len);
    }
}

/// Encodes `data`, corrupts one byte chosen from the data itself, and decodes:
/// the decode must succeed with the original bytes or fail cleanly.
pub fn mutate_and_decode(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let (control, payload) = data.split_at(1);
    let options = EncodeOptions {
        kind: Kind::ALL[usize::from(control[0]) % Kind::ALL.len()],
        layout: if control[0] & 0x80 != 0 {
            Layout::Rgba
        } else {
            Layout::Rgb
        },
        ..EncodeOptions::default()
    };
    let Ok(mut png) = encode_to_vec(payload, &options) else {
        return;
    };
    let position = usize::from(control[0]) * 7919 % png.len();
    png[position] ^= 1 | control[0];
    if let Ok((_, decoded)) = decode_from_slice(&png, &Limits::default()) {
        assert_eq!(
            decoded, payload,
            "a corrupted PXI decoded to different bytes without an error"
        );
    }
}
