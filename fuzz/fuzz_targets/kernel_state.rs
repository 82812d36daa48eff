//! Fuzz target: the kernel store's state decoder, on raw files and on the JSON
//! inside a valid pixel file. The bodies live in the library so the test suite runs them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.first().is_some_and(|b| b & 1 == 0) {
        pxos_boot::fuzz::kernel_state_json(&data[1..]);
    } else {
        pxos_boot::fuzz::kernel_state_decode(data);
    }
});
