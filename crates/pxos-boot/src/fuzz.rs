//! Fuzz target bodies; the test suite runs them on seeded inputs.

/// Fuzz target `kernel_state`: a kernel state built by applying generated
/// log entries, mutated at one layer, decoded.
pub fn kernel_state(data: &[u8]) -> pxos_pixel::fuzz::Reach {
    let mut u = pxos_pixel::fuzz::Unstructured::new(data);
    let json = pxos_cart::fuzz::state_json::<crate::kernel_store::State>(&mut u);
    pxos_pixel::fuzz::table_body(&mut u, &json, |png| {
        crate::kernel_store::decode_state(png).map(|state| {
            let _ = state.current_record();
        })
    })
}
