//! The fuzz body of the PXI-LLM reader (`fuzz/fuzz_targets/llm_model.rs`),
//! also run on seeded inputs by the test suite. The fuzzer's bytes choose a
//! small model (architecture, dtypes, weights), then a mutation at one layer:
//! the manifest as JSON, the payload's bytes, or the PXI below it. Whatever
//! loads is then run for a few tokens, so the tensor reader and the engine
//! see every accepted layout.

use std::sync::Arc;

use pxos_pixel::fuzz::{
    Reach, Unstructured, fuzz_limits, mutate_bytes, mutate_json, mutate_pxi, stage,
};
use pxos_pixel::{EncodeOptions, Kind};

use crate::dtype::{DType, quantize_row};
use crate::format::{
    ALIGNMENT, Architecture, LlamaConfig, TensorData, TokenizerSpec, build_payload,
};
use crate::model::Llama;

fn config(u: &mut Unstructured<'_>) -> LlamaConfig {
    let heads = *u.choose(&[1usize, 2, 4]).unwrap_or(&2);
    let kv = *u.choose(&[1usize, heads]).unwrap_or(&1);
    LlamaConfig {
        dim: 32 * u.int_in_range(1..=2).unwrap_or(1),
        hidden_dim: 32 * u.int_in_range(1..=3).unwrap_or(1),
        n_layers: u.int_in_range(1..=2).unwrap_or(1),
        n_heads: heads,
        n_kv_heads: kv,
        vocab_size: 258 + u.int_in_range(0..=6).unwrap_or(0),
        context_length: u.int_in_range(4..=16).unwrap_or(8),
        rope_theta: 10000.0,
        norm_eps: 1e-5,
        tied_embeddings: u.arbitrary().unwrap_or(true),
    }
}

fn tensors(u: &mut Unstructured<'_>, config: &LlamaConfig) -> Vec<TensorData> {
    let dtype = *u.choose(&DType::ALL).unwrap_or(&DType::F32);
    config
        .expected_tensors()
        .into_iter()
        .map(|(name, [rows, cols])| {
            let seed: u8 = u.arbitrary().unwrap_or(1);
            let values: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 31 + seed as usize) % 97) as f32 / 97.0 - 0.5)
                .collect();
            let dtype = if name.ends_with("norm.weight") {
                DType::F32
            } else {
                dtype
            };
            let mut bytes = Vec::new();
            for row in values.chunks(cols) {
                quantize_row(dtype, row, &mut bytes);
            }
            TensorData {
                name,
                shape: [rows, cols],
                dtype,
                bytes,
            }
        })
        .collect()
}

/// The manifest JSON and the data region of a payload, rebuilt as one.
fn reassemble(json: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + json.len() + data.len() + ALIGNMENT);
    out.extend_from_slice(crate::format::MAGIC);
    out.extend_from_slice(&crate::format::FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json);
    out.resize((16 + json.len()).div_ceil(ALIGNMENT) * ALIGNMENT, 0);
    out.extend_from_slice(data);
    out
}

/// Generates, mutates and loads one model; runs what loads.
pub fn model_file(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let config = config(&mut u);
    let tensors = tensors(&mut u, &config);
    let payload = build_payload(
        "fuzz",
        &Architecture::Llama(config),
        &TokenizerSpec::Bytes { bos: 256, eos: 257 },
        serde_json::Value::Null,
        &tensors,
    )
    .expect("generated models are valid");
    let manifest_len = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes")) as usize;
    let json = payload[16..16 + manifest_len].to_vec();
    let region = payload[(16 + manifest_len).div_ceil(ALIGNMENT) * ALIGNMENT..].to_vec();
    let mutant = mutate_pxi(
        &mut u,
        &payload,
        &EncodeOptions::kind(Kind::Tensor),
        &mut |u, payload| match u.int_in_range(0..=3u8).unwrap_or(0) {
            0 => mutate_bytes(u, payload),
            1 => {
                let mut data = region.clone();
                mutate_bytes(u, &mut data);
                *payload = reassemble(&json, &data);
            }
            _ => {
                let mut manifest = json.clone();
                mutate_json(u, &mut manifest);
                *payload = reassemble(&manifest, &region);
            }
        },
    );
    let limits = fuzz_limits();
    let loaded = crate::format::ModelFile::from_png(&mutant.png, &limits);
    match stage(&mutant.png, &limits) {
        Err(reach) => {
            assert!(loaded.is_err(), "loaded a model the pixel layers refuse");
            reach
        }
        Ok(_) => match loaded {
            Err(_) => Reach::parsed(false),
            Ok(model) => {
                let llama = Llama::new(Arc::new(model)).expect("a checked model prepares");
                let mut state = llama.state();
                for token in [256u32, 0, 255] {
                    if state.pos < llama.config.context_length {
                        llama
                            .forward(&mut state, token)
                            .expect("tokens in the vocabulary run");
                    }
                }
                Reach::parsed(true)
            }
        },
    }
}
