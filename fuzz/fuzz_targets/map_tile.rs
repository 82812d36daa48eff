//! Fuzz target `map_tile`: the body lives in the library, where the test suite
//! runs it on seeded inputs (`crates/pxos-cli/tests/it/fuzz_reach.rs`). The
//! bytes drive a generated tile, a layered mutator and the index chunk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pxos_map::fuzz::map_tile(data);
});
