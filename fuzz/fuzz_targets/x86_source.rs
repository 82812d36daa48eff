//! Fuzz target: primitive sources through both builders, and raw bytes through the
//! disassembler. The bodies live in the library so the test suite runs them too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pxos_x86::fuzz::build_source(data);
    pxos_x86::fuzz::disassemble_bytes(&data[..data.len().min(512)]);
});
