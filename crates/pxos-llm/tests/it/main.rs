//! Integration tests of pxos-llm: the format, the engine against a plain
//! reference, and the committed pixellm.

mod format;
mod forward;
mod pixellm;

use pxos_llm::format::{Architecture, LlamaConfig, TensorData, TokenizerSpec, build_payload};
use pxos_llm::train::Params;
use pxos_llm::{DType, ModelFile};

pub fn small_config() -> LlamaConfig {
    LlamaConfig {
        dim: 64,
        hidden_dim: 96,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        vocab_size: 258,
        context_length: 32,
        rope_theta: 10000.0,
        norm_eps: 1e-5,
        tied_embeddings: false,
    }
}

/// Random weights (larger than an init, so every path matters), as f32 tensors.
pub fn random_tensors(config: &LlamaConfig, seed: u64) -> Vec<TensorData> {
    let mut rng = pxos_test_support::Rng::new(seed);
    config
        .expected_tensors()
        .into_iter()
        .map(|(name, shape)| {
            let n = shape[0] * shape[1];
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    if name.ends_with("norm.weight") {
                        1.0 + (rng.below(1000) as f32 / 1000.0 - 0.5) * 0.4
                    } else {
                        (rng.below(20001) as f32 / 10000.0 - 1.0) * 0.15
                    }
                })
                .collect();
            TensorData::f32(name, shape, &values)
        })
        .collect()
}

/// A model file in memory with `dtype` matrices.
pub fn model_with(config: &LlamaConfig, dtype: DType, seed: u64) -> ModelFile {
    let f32_payload = build_payload(
        "test",
        &Architecture::Llama(config.clone()),
        &TokenizerSpec::Bytes { bos: 256, eos: 257 },
        serde_json::Value::Null,
        &random_tensors(config, seed),
    )
    .unwrap();
    let png = pxos_llm::format::encode_png(&f32_payload).unwrap();
    let model = ModelFile::from_png(&png, &pxos_pixel::Limits::default()).unwrap();
    if dtype == DType::F32 {
        return model;
    }
    let (payload, _) = pxos_llm::convert::quantize(&model, dtype).unwrap();
    ModelFile::from_png(
        &pxos_llm::format::encode_png(&payload).unwrap(),
        &pxos_pixel::Limits::default(),
    )
    .unwrap()
}

pub fn trained_params_config() -> LlamaConfig {
    LlamaConfig {
        tied_embeddings: true,
        ..small_config()
    }
}

pub fn params_model(params: &Params) -> ModelFile {
    let payload = params.to_payload("p", serde_json::Value::Null).unwrap();
    ModelFile::from_png(
        &pxos_llm::format::encode_png(&payload).unwrap(),
        &pxos_pixel::Limits::default(),
    )
    .unwrap()
}

/// Whether `dtype`'s blocks fit `config`'s rows.
pub fn fits(config: &LlamaConfig, dtype: pxos_llm::DType) -> bool {
    config.dim.is_multiple_of(dtype.block_elems())
        && config.hidden_dim.is_multiple_of(dtype.block_elems())
}
