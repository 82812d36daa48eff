//! Fuzz target `gguf_import`: the GGUF reader and importer, then the
//! tokenizer, chat template and engine on whatever imports. The body lives
//! in the library (`pxos_llm::fuzz::gguf_file`), where the test suite runs it
//! on seeded inputs (`crates/pxos-cli/tests/it/fuzz_reach.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pxos_llm::fuzz::gguf_file(data);
});
