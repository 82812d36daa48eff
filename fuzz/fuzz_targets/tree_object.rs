//! Fuzz target `tree_object`: the body lives in the library, where the test suite
//! runs it on seeded inputs (`crates/pxos-cli/tests/it/fuzz_reach.rs`). The
//! bytes drive structured generators and a layered mutator, not the parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pxos_fs::fuzz::tree_object(data);
});
