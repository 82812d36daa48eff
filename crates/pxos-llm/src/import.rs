//! Importing GGUF models into PXI-LLM: the tensors keep their exact bytes
//! (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K), the hyperparameters come
//! from the metadata and the tokenizer is the file's own.

use serde::Serialize;

use crate::dtype::{DType, dequantize_row};
use crate::error::{Error, Result};
use crate::format::{self, Architecture, LlamaConfig, TensorData, TokenizerSpec};
use crate::gguf::{Gguf, Value};
use crate::vocab::{PreTokenizer, TYPE_CONTROL, VocabModel, VocabSpec};

/// The context an import keeps by default: real models declare up to 128k
/// positions, and the KV cache is allocated for all of them.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;

/// Choices for an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The model's name (default: `general.name`, else the file's stem).
    pub name: Option<String>,
    /// The most positions to keep (default [`DEFAULT_MAX_CONTEXT`]).
    pub max_context: Option<usize>,
    /// Where the file came from, for the provenance.
    pub source: String,
}

/// What an import did.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub name: String,
    pub gguf_version: u32,
    pub architecture: LlamaConfig,
    /// The context the file declares (the model keeps `architecture.context_length`).
    pub declared_context: u64,
    pub tokenizer: String,
    pub vocab: usize,
    pub chat_template: bool,
    pub tensors: Vec<ImportedTensor>,
    pub parameters: u64,
    /// Anything converted or approximated, said plainly.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImportedTensor {
    pub name: String,
    pub shape: [usize; 2],
    pub dtype: DType,
    pub bytes: usize,
}

/// Imports a llama-architecture GGUF file held in memory; returns the
/// PXI-LLM payload and a report.
pub fn import_gguf(bytes: &[u8], options: &ImportOptions) -> Result<(Vec<u8>, ImportReport)> {
    let g = Gguf::parse(bytes)?;
    let arch = g
        .str_of("general.architecture")?
        .ok_or_else(|| bad("metadata key general.architecture is missing"))?;
    if arch != "llama" {
        return Err(bad(format!(
            "architecture {arch:?} is not supported: pxOS runs the llama architecture"
        )));
    }
    let mut notes = Vec::new();
    let key = |k: &str| format!("llama.{k}");
    let usize_of = |k: &str| -> Result<usize> {
        let v = g.require_u64(&key(k))?;
        usize::try_from(v).map_err(|_| bad(format!("{} = {v} is too large", key(k))))
    };
    let embd = g
        .tensor("token_embd.weight")
        .ok_or_else(|| bad("tensor token_embd.weight is missing"))?;
    let [vocab_size, _] = embd.shape();
    let n_heads = usize_of("attention.head_count")?;
    let declared_context = g.require_u64(&key("context_length"))?;
    let max_context = options.max_context.unwrap_or(DEFAULT_MAX_CONTEXT).max(1);
    let context_length = (declared_context.min(max_context as u64) as usize).max(1);
    if (context_length as u64) < declared_context {
        notes.push(format!(
            "context kept at {context_length} of the {declared_context} positions the file declares (--context to change)"
        ));
    }
    let config = LlamaConfig {
        dim: usize_of("embedding_length")?,
        hidden_dim: usize_of("feed_forward_length")?,
        n_layers: usize_of("block_count")?,
        n_heads,
        n_kv_heads: match g.get(&key("attention.head_count_kv")) {
            None => n_heads,
            Some(_) => usize_of("attention.head_count_kv")?,
        },
        vocab_size,
        context_length,
        rope_theta: g.f64_or(&key("rope.freq_base"), 10_000.0)? as f32,
        norm_eps: g.f64_or(&key("attention.layer_norm_rms_epsilon"), 1e-5)? as f32,
        tied_embeddings: g.tensor("output.weight").is_none(),
    };
    config.validate()?;
    if let Some(v) = g.get(&key("rope.dimension_count")) {
        let dims = v.as_u64();
        if dims != Some(config.head_size() as u64) {
            return Err(bad(format!(
                "llama.rope.dimension_count is {v:?}; pxOS rotates whole heads of {}",
                config.head_size()
            )));
        }
    }
    match g.str_of(&key("rope.scaling.type"))? {
        None | Some("none") => {}
        Some(other) => {
            return Err(bad(format!(
                "RoPE scaling {other:?} is not supported (pxOS runs unscaled RoPE)"
            )));
        }
    }
    let expected = config.expected_tensors();
    let wanted: std::collections::HashSet<&str> =
        expected.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(extra) = g.tensors.iter().find(|t| !wanted.contains(t.name.as_str())) {
        return Err(bad(format!(
            "tensor {} is not part of the llama architecture pxOS runs (biases, RoPE factors and other extras would change the results)",
            extra.name
        )));
    }
    let mut tensors = Vec::with_capacity(expected.len());
    let mut report_tensors = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        let t = g
            .tensor(name)
            .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
        if t.shape() != *shape {
            return Err(bad(format!(
                "tensor {name} is {:?} (GGUF dims {:?}); the metadata implies {}x{}",
                t.shape(),
                t.dims,
                shape[0],
                shape[1]
            )));
        }
        let raw = g.tensor_bytes(bytes, t);
        let (dtype, data) = if name.ends_with("norm.weight") && t.dtype != DType::F32 {
            notes.push(format!("{name}: {} norm widened to f32 (exact)", t.dtype));
            let mut values = Vec::with_capacity(shape[1]);
            dequantize_row(t.dtype, raw, &mut values);
            (
                DType::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        } else {
            (t.dtype, raw.to_vec())
        };
        report_tensors.push(ImportedTensor {
            name: name.clone(),
            shape: *shape,
            dtype,
            bytes: data.len(),
        });
        tensors.push(TensorData {
            name: name.clone(),
            shape: *shape,
            dtype,
            bytes: data,
        });
    }
    let vocab = vocab_of(&g, &mut notes)?;
    vocab.validate(config.vocab_size)?;
    let name = options
        .name
        .clone()
        .or_else(|| g.str_of("general.name").ok().flatten().map(str::to_string))
        .unwrap_or_else(|| "imported".to_string());
    let report = ImportReport {
        name: name.clone(),
        gguf_version: g.version,
        architecture: config.clone(),
        declared_context,
        tokenizer: match vocab.model {
            VocabModel::Spm => "sentencepiece".into(),
            VocabModel::Bpe => format!(
                "byte-level BPE ({})",
                match vocab.pre {
                    Some(PreTokenizer::Llama3) => "llama3 split",
                    _ => "gpt2 split",
                }
            ),
        },
        vocab: vocab.tokens.len(),
        chat_template: vocab.chat_template.is_some(),
        parameters: config.parameter_count(),
        tensors: report_tensors,
        notes: notes.clone(),
    };
    let provenance = serde_json::json!({
        "imported_from": "gguf",
        "source": options.source,
        "gguf_sha256": pxos_pixel::Hash256::of(bytes).to_string(),
        "gguf_version": g.version,
        "general.name": g.str_of("general.name").ok().flatten(),
        "notes": notes,
    });
    let payload = format::build_payload(
        &name,
        &Architecture::Llama(config),
        &TokenizerSpec::Vocab(vocab),
        provenance,
        &tensors,
    )?;
    Ok((payload, report))
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_input(format!("GGUF import: {}", message.into()))
}

fn strings(g: &Gguf, key: &str) -> Result<Option<Vec<String>>> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("{key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(bad(format!("{key} must be an array of strings"))),
    }
}

fn numbers<T>(g: &Gguf, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>> {
    match g.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| f(v).ok_or_else(|| bad(format!("{key} must be an array of numbers"))))
            .collect(),
        Some(_) => Err(bad(format!("{key} must be an array"))),
    }
}

fn token_id(g: &Gguf, key: &str) -> Result<Option<u32>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a token id"))),
    }
}

fn vocab_of(g: &Gguf, notes: &mut Vec<String>) -> Result<VocabSpec> {
    let model = match g.str_of("tokenizer.ggml.model")? {
        Some("llama") => VocabModel::Spm,
        Some("gpt2") => VocabModel::Bpe,
        Some(other) => {
            return Err(bad(format!(
                "tokenizer model {other:?} is not supported (pxOS reads \"llama\" SentencePiece and \"gpt2\" byte-level BPE vocabularies)"
            )));
        }
        None => {
            return Err(bad(
                "the file has no tokenizer (tokenizer.ggml.model is missing)",
            ));
        }
    };
    let tokens = strings(g, "tokenizer.ggml.tokens")?
        .ok_or_else(|| bad("tokenizer.ggml.tokens is missing"))?;
    let scores = numbers(g, "tokenizer.ggml.scores", |v| v.as_f64().map(|f| f as f32))?;
    let token_types = numbers(g, "tokenizer.ggml.token_type", |v| {
        v.as_i64().and_then(|n| i32::try_from(n).ok())
    })?;
    let merges = strings(g, "tokenizer.ggml.merges")?.unwrap_or_default();
    if model == VocabModel::Bpe && merges.is_empty() {
        return Err(bad(
            "a byte-level BPE vocabulary needs tokenizer.ggml.merges",
        ));
    }
    let scores = if model == VocabModel::Spm && scores.is_empty() {
        notes.push("the vocabulary has no scores: every merge scores 0 (leftmost first)".into());
        vec![0.0; tokens.len()]
    } else {
        scores
    };
    let pre = match (model, g.str_of("tokenizer.ggml.pre")?) {
        (VocabModel::Spm, _) => None,
        (VocabModel::Bpe, None | Some("default" | "gpt2" | "gpt-2")) => Some(PreTokenizer::Gpt2),
        (VocabModel::Bpe, Some("llama3" | "llama-bpe" | "llama-v3" | "smaug-bpe")) => {
            Some(PreTokenizer::Llama3)
        }
        (VocabModel::Bpe, Some(other)) => {
            notes.push(format!(
                "pre-tokenizer {other:?} is not one pxOS knows; words are split by GPT-2's rules, so some texts may tokenize differently from llama.cpp"
            ));
            Some(PreTokenizer::Gpt2)
        }
    };
    let bool_or = |k: &str, default: bool| -> Result<bool> {
        match g.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad(format!("{k} must be a bool"))),
        }
    };
    let eos = token_id(g, "tokenizer.ggml.eos_token_id")?
        .ok_or_else(|| bad("tokenizer.ggml.eos_token_id is missing"))?;
    let mut end_of_turn: Vec<u32> = token_id(g, "tokenizer.ggml.eot_token_id")?
        .into_iter()
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let control = token_types.get(i) == Some(&TYPE_CONTROL);
        if control
            && matches!(
                t.as_str(),
                "<|eot_id|>" | "<|im_end|>" | "<|end|>" | "<end_of_turn>" | "<|endoftext|>"
            )
            && !end_of_turn.contains(&(i as u32))
            && i as u32 != eos
        {
            end_of_turn.push(i as u32);
        }
    }
    Ok(VocabSpec {
        model,
        tokens,
        scores: if model == VocabModel::Spm {
            scores
        } else {
            Vec::new()
        },
        token_types,
        merges,
        pre,
        bos: token_id(g, "tokenizer.ggml.bos_token_id")?,
        eos,
        end_of_turn,
        unknown: token_id(g, "tokenizer.ggml.unknown_token_id")?,
        add_bos: bool_or("tokenizer.ggml.add_bos_token", model == VocabModel::Spm)?,
        add_space_prefix: bool_or("tokenizer.ggml.add_space_prefix", model == VocabModel::Spm)?,
        chat_template: g.str_of("tokenizer.chat_template")?.map(str::to_string),
    })
}
