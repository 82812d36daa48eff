//! Fuzz target: the cartridge registry's checkpoint decoder (the JSON inside
//! a valid pixel file). The body lives in the library so the test suite runs it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pxos_cart::fuzz::registry_json(data);
});
