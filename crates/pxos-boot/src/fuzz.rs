//! Fuzz target bodies; the test suite runs them on seeded inputs.

/// Treats arbitrary bytes as a kernel store state file: must decode or refuse.
pub fn kernel_state_decode(data: &[u8]) {
    if let Ok(state) = crate::kernel_store::decode_state(data) {
        let _ = state.current_record();
    }
}

/// Treats arbitrary bytes as the JSON inside `state.png` (wrapped in a valid
/// PXI of kind `table`), so the fuzzer reaches the typed decoder itself.
pub fn kernel_state_json(data: &[u8]) {
    if let Ok(png) = pxos_pixel::encode_to_vec(
        data,
        &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
    ) {
        kernel_state_decode(&png);
    }
}
