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
    // The k-quants need rows of 256; smaller models fall back to q8_0.
    let fits = config.dim.is_multiple_of(dtype.block_elems())
        && config.hidden_dim.is_multiple_of(dtype.block_elems());
    let dtype = if fits { dtype } else { DType::Q8_0 };
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

/// A small, valid llama GGUF file chosen by the fuzzer's bytes.
fn gguf_seed(u: &mut Unstructured<'_>) -> Vec<u8> {
    use crate::gguf::{Value, write};
    let mut config = config(u);
    if u.int_in_range(0..=3u8).unwrap_or(0) == 0 {
        // Wide enough for the k-quants.
        config.dim = 256;
        config.hidden_dim = 256;
    }
    let bpe: bool = u.arbitrary().unwrap_or(false);
    let mut tokens: Vec<String> = Vec::new();
    let mut types = Vec::new();
    let mut merges = Vec::new();
    if bpe {
        tokens.extend(
            (0..=255u8).map(|b| format!("{}", char::from_u32(0x100 + u32::from(b)).unwrap_or('?'))),
        );
        tokens.extend(["ab", "<|end|>"].map(String::from));
        merges.push("a b".to_string());
        types.resize(tokens.len(), 1);
        types[tokens.len() - 1] = 3;
    } else {
        tokens.extend(["<unk>", "<s>", "</s>"].map(String::from));
        tokens.extend((0..=254u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([2, 3, 3]);
        types.resize(tokens.len(), 6);
    }
    tokens.truncate(config.vocab_size);
    types.truncate(config.vocab_size);
    let n = tokens.len() as u32;
    let s = |v: &str| Value::String(v.to_string());
    let u32v = |v: usize| Value::U32(v as u32);
    let mut meta = vec![
        ("general.architecture".to_string(), s("llama")),
        ("llama.context_length".into(), u32v(config.context_length)),
        ("llama.embedding_length".into(), u32v(config.dim)),
        ("llama.feed_forward_length".into(), u32v(config.hidden_dim)),
        ("llama.block_count".into(), u32v(config.n_layers)),
        ("llama.attention.head_count".into(), u32v(config.n_heads)),
        (
            "llama.attention.head_count_kv".into(),
            u32v(config.n_kv_heads),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        (
            "tokenizer.ggml.model".into(),
            s(if bpe { "gpt2" } else { "llama" }),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2 % n)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1 % n)),
        (
            "tokenizer.chat_template".into(),
            s("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"),
        ),
    ];
    if bpe {
        meta.push((
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        ));
    } else {
        meta.push((
            "tokenizer.ggml.scores".into(),
            Value::Array(tokens.iter().map(|_| Value::F32(0.0)).collect()),
        ));
    }
    let data = tensors(u, &config);
    let owned: Vec<(String, Vec<u64>, DType, &[u8])> = data
        .iter()
        .map(|t| {
            let dims = if t.shape[0] == 1 {
                vec![t.shape[1] as u64]
            } else {
                vec![t.shape[1] as u64, t.shape[0] as u64]
            };
            (t.name.clone(), dims, t.dtype, t.bytes.as_slice())
        })
        .collect();
    write(&meta, &owned, 32)
}

/// The GGUF reader and importer (`fuzz/fuzz_targets/gguf_import.rs`): a
/// valid small file, mutated (bytes flipped, spliced, truncated), parsed and
/// imported; what imports is tokenized, templated and run for a few tokens.
pub fn gguf_file(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let mut file = gguf_seed(&mut u);
    if u.arbitrary::<bool>().unwrap_or(true) {
        mutate_bytes(&mut u, &mut file);
    }
    let parsed = crate::gguf::Gguf::parse(&file);
    let imported = crate::import::import_gguf(&file, &crate::import::ImportOptions::default());
    if parsed.is_err() {
        assert!(imported.is_err(), "imported a file the reader refuses");
        return Reach::parsed(false);
    }
    let Ok((payload, _)) = imported else {
        return Reach::parsed(false);
    };
    let model = crate::format::ModelFile::from_payload(
        crate::format::AlignedBytes::from_slice(&payload),
        pxos_pixel::Hash256::of(&payload),
    )
    .expect("an imported payload loads");
    let generator =
        crate::generate::Generator::new(Arc::new(model)).expect("an imported model prepares");
    for text in ["", "ab ab", "<|end|>x</s>", "\u{1F642} é"] {
        let tokens = generator.tokenizer.encode(text);
        let mut stream = generator.tokenizer.stream();
        tokens.iter().for_each(|&t| {
            stream.push(t);
        });
    }
    let _ = crate::chat::render(
        &generator.tokenizer,
        &[crate::chat::Message::new("user", "hi")],
    );
    let sampling = crate::sample::Sampling {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
    };
    generator
        .generate("ab", 3, &sampling, &[], &mut |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("an imported model generates");
    Reach::parsed(true)
}
