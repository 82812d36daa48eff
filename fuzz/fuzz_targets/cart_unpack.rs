//! Fuzz target: the body lives in the library so the test suite runs it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pxos_cart::fuzz::unpack_payload(data);
});
