//! Fuzz target: the body lives in the library so the test suite runs it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pxos_vram::fuzz::roadmap_text(data);
    pxos_vram::fuzz::vram_image(data);
});
