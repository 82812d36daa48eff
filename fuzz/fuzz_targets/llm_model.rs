//! Fuzz target `llm_model`: the PXI-LLM manifest and tensor reader, then the
//! engine on whatever loads. The body lives in the library, where the test
//! suite runs it on seeded inputs (`crates/pxos-cli/tests/it/fuzz_reach.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pxos_llm::fuzz::model_file(data);
});
