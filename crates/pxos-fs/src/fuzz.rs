//! Fuzz target bodies (see `fuzz/`); the test suite runs them on seeded inputs.

/// Decodes arbitrary bytes as a path table: must return, never panic.
pub fn decode_path_table(data: &[u8]) {
    let _ = crate::PathTable::decode(data);
}

/// Wraps arbitrary bytes as the JSON payload of a table PXI and decodes it,
/// reaching the JSON and entry validation that random PNG bytes rarely reach.
pub fn decode_path_table_json(json: &[u8]) {
    let options = pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table);
    if let Ok(png) = pxos_pixel::encode_to_vec(json, &options) {
        let _ = crate::PathTable::decode(&png);
    }
}
