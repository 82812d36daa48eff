//! llama2.c checkpoints, both ways (`docs/formats/llama2c.md`).
//!
//! * Version 0 ("legacy", what `run.c` reads): seven i32 (`dim, hidden_dim,
//!   n_layers, n_heads, n_kv_heads, vocab_size, seq_len`, a negative vocabulary
//!   meaning an unshared classifier), then f32 arrays: embedding, attention
//!   norms, wq, wk, wv, wo, FFN norms, w1, w2, w3, final norm, two unused RoPE
//!   tables, and the classifier when unshared.
//! * Version 1: a 256-byte header (`ak42` magic, version, the seven ints, a
//!   shared-classifier byte), norms first, then the same f32 matrices.
//! * Version 2 (`runq.c`): the version-1 header plus an i32 group size at
//!   byte 37; f32 norms first, then each matrix (embedding, each layer's wq,
//!   then wk, wv, wo, w1, w2, w3, then the classifier) as int8 values followed
//!   by one f32 scale per group.
//!
//! llama2.c's w1, w2, w3 are pxOS's `ffn_gate`, `ffn_down`, `ffn_up`; its
//! query and key rows are in the interleaved-pair RoPE order pxOS uses, so
//! tensors carry over unchanged. llama2.c fixes RoPE theta at 10000 and the
//! norm epsilon at 1e-5.

use crate::dtype::{DType, QK};
use crate::error::{Error, Result};
use crate::format::{
    Architecture, LlamaConfig, ModelFile, TensorData, TokenizerSpec, build_payload,
};
use crate::vocab::{TYPE_BYTE, TYPE_CONTROL, TYPE_NORMAL, TYPE_UNKNOWN, VocabModel, VocabSpec};

const MAGIC: u32 = 0x616b_3432;
const HEADER: usize = 256;
const THETA: f32 = 10_000.0;
const EPS: f32 = 1e-5;

/// Which checkpoint version to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Version 0, f32 (`run.c`).
    Legacy,
    /// Version 2, int8 groups of `group_size` with f32 scales (`runq.c`).
    Q8 { group_size: usize },
}

/// The matrices in checkpoint order, per layer: (pxOS name, llama2.c name).
const MATRICES: [(&str, &str); 7] = [
    ("attn_q", "wq"),
    ("attn_k", "wk"),
    ("attn_v", "wv"),
    ("attn_output", "wo"),
    ("ffn_gate", "w1"),
    ("ffn_down", "w2"),
    ("ffn_up", "w3"),
];

fn f32s(file: &ModelFile, name: &str) -> Result<Vec<f32>> {
    Ok(file.tensor(name)?.to_f32())
}

fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Writes a model as a llama2.c checkpoint.
pub fn export(file: &ModelFile, version: Version) -> Result<Vec<u8>> {
    let c = file.manifest.llama();
    if c.rope_theta != THETA || c.norm_eps != EPS {
        return Err(Error::usage(format!(
            "llama2.c fixes RoPE theta at 10000 and the norm epsilon at 1e-5; this model uses {} and {}",
            c.rope_theta, c.norm_eps
        )));
    }
    let to_i32 = |v: usize| {
        i32::try_from(v)
            .map_err(|_| Error::usage(format!("{v} does not fit llama2.c's i32 header")))
    };
    let header = [
        to_i32(c.dim)?,
        to_i32(c.hidden_dim)?,
        to_i32(c.n_layers)?,
        to_i32(c.n_heads)?,
        to_i32(c.n_kv_heads)?,
        to_i32(c.vocab_size)?,
        to_i32(c.context_length)?,
    ];
    let layer = |l: usize, n: &str| format!("blk.{l}.{n}.weight");
    let mut out = Vec::new();
    match version {
        Version::Legacy => {
            for (i, v) in header.iter().enumerate() {
                let v = if i == 5 && !c.tied_embeddings { -v } else { *v };
                out.extend_from_slice(&v.to_le_bytes());
            }
            put_f32s(&mut out, &f32s(file, "token_embd.weight")?);
            for l in 0..c.n_layers {
                put_f32s(&mut out, &f32s(file, &layer(l, "attn_norm"))?);
            }
            for (n, _) in &MATRICES[..4] {
                for l in 0..c.n_layers {
                    put_f32s(&mut out, &f32s(file, &layer(l, n))?);
                }
            }
            for l in 0..c.n_layers {
                put_f32s(&mut out, &f32s(file, &layer(l, "ffn_norm"))?);
            }
            for (n, _) in &MATRICES[4..] {
                for l in 0..c.n_layers {
                    put_f32s(&mut out, &f32s(file, &layer(l, n))?);
                }
            }
            put_f32s(&mut out, &f32s(file, "output_norm.weight")?);
            // The two legacy RoPE tables run.c skips.
            let table = c.context_length * c.head_size() / 2;
            out.resize(out.len() + 2 * table * 4, 0);
            if !c.tied_embeddings {
                put_f32s(&mut out, &f32s(file, "output.weight")?);
            }
        }
        Version::Q8 { group_size } => {
            if group_size == 0
                || !c.dim.is_multiple_of(group_size)
                || !c.hidden_dim.is_multiple_of(group_size)
            {
                return Err(Error::usage(format!(
                    "group size {group_size} must divide dim {} and hidden_dim {}",
                    c.dim, c.hidden_dim
                )));
            }
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&2i32.to_le_bytes());
            for v in header {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.push(u8::from(c.tied_embeddings));
            out.extend_from_slice(&to_i32(group_size)?.to_le_bytes());
            out.resize(HEADER, 0);
            for l in 0..c.n_layers {
                put_f32s(&mut out, &f32s(file, &layer(l, "attn_norm"))?);
            }
            for l in 0..c.n_layers {
                put_f32s(&mut out, &f32s(file, &layer(l, "ffn_norm"))?);
            }
            put_f32s(&mut out, &f32s(file, "output_norm.weight")?);
            let mut names = vec!["token_embd.weight".to_string()];
            for (n, _) in MATRICES {
                names.extend((0..c.n_layers).map(|l| layer(l, n)));
            }
            if !c.tied_embeddings {
                names.push("output.weight".into());
            }
            for name in names {
                q8_tensor(file, &name, group_size, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// One matrix as int8 groups and f32 scales. A q8_0 tensor exported with
/// groups of 32 keeps its exact values (f16 scales widen exactly); others are
/// quantized as `runq`'s export does (`scale = max|w| / 127`).
fn q8_tensor(file: &ModelFile, name: &str, gs: usize, out: &mut Vec<u8>) -> Result<()> {
    let view = file.tensor(name)?;
    let mut qs = Vec::with_capacity(view.rows * view.cols);
    let mut scales = Vec::with_capacity(view.rows * view.cols / gs);
    if view.dtype == DType::Q8_0 && gs == QK {
        for r in 0..view.rows {
            for block in view.row(r).chunks_exact(34) {
                scales.push(crate::dtype::f16_to_f32(u16::from_le_bytes([
                    block[0], block[1],
                ])));
                qs.extend_from_slice(&block[2..]);
            }
        }
    } else {
        let values = view.to_f32();
        for group in values.chunks_exact(gs) {
            let amax = group.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            scales.push(scale);
            qs.extend(group.iter().map(|v| {
                let q = if scale > 0.0 {
                    (v / scale).round()
                } else {
                    0.0
                };
                q as i8 as u8
            }));
        }
    }
    out.extend_from_slice(&qs);
    put_f32s(out, &scales);
    Ok(())
}

/// What reading a checkpoint found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Imported {
    pub version: u32,
    pub config: LlamaConfig,
    pub group_size: Option<usize>,
    pub notes: Vec<String>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(bad(format!(
                "the file ends at byte {} while reading {what} ({n} bytes from byte {})",
                self.bytes.len(),
                self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let bytes = self.take(
            n.checked_mul(4).ok_or_else(|| bad("a size overflows"))?,
            what,
        )?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_input(format!("llama2.c checkpoint: {}", message.into()))
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads a llama2.c checkpoint (versions 0, 1 and 2) and, optionally, its
/// `tokenizer.bin`; returns a PXI-LLM payload.
pub fn import(
    bytes: &[u8],
    tokenizer: Option<&[u8]>,
    name: &str,
    source: &str,
) -> Result<(Vec<u8>, Imported)> {
    if bytes.len() < 28 {
        return Err(bad(format!(
            "{} bytes is too short for a header",
            bytes.len()
        )));
    }
    let magic = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let (version, ints_at, shared, group_size, data_at) = if magic == MAGIC {
        if bytes.len() < HEADER {
            return Err(bad("the 256-byte header is truncated"));
        }
        let version = i32_at(bytes, 4);
        match version {
            1 => (1, 8, bytes[36] != 0, None, HEADER),
            2 => {
                let gs = i32_at(bytes, 37);
                if gs <= 0 {
                    return Err(bad(format!("group size {gs} must be positive")));
                }
                (2, 8, bytes[36] != 0, Some(gs as usize), HEADER)
            }
            v => {
                return Err(bad(format!(
                    "version {v} is not supported (0, 1 and 2 are)"
                )));
            }
        }
    } else {
        (0, 0, i32_at(bytes, 20) > 0, None, 28)
    };
    let ints: Vec<i32> = (0..7).map(|i| i32_at(bytes, ints_at + 4 * i)).collect();
    let positive = |i: usize, what: &str| -> Result<usize> {
        let v = if i == 5 {
            ints[i].unsigned_abs() as i64
        } else {
            i64::from(ints[i])
        };
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| bad(format!("{what} is {}; it must be positive", ints[i])))
    };
    let config = LlamaConfig {
        dim: positive(0, "dim")?,
        hidden_dim: positive(1, "hidden_dim")?,
        n_layers: positive(2, "n_layers")?,
        n_heads: positive(3, "n_heads")?,
        n_kv_heads: positive(4, "n_kv_heads")?,
        vocab_size: positive(5, "vocab_size")?,
        context_length: positive(6, "seq_len")?,
        rope_theta: THETA,
        norm_eps: EPS,
        tied_embeddings: shared,
    };
    config.validate()?;
    let expected: std::collections::HashMap<String, [usize; 2]> =
        config.expected_tensors().into_iter().collect();
    let shape = |n: &str| expected[n];
    let mut cur = Cursor { bytes, at: data_at };
    let layer = |l: usize, n: &str| format!("blk.{l}.{n}.weight");
    let mut tensors: Vec<TensorData> = Vec::new();
    let mut notes = Vec::new();
    let read_f32 =
        |cur: &mut Cursor<'_>, tensors: &mut Vec<TensorData>, name: String| -> Result<()> {
            let [r, c] = shape(&name);
            let values = cur.f32s(r * c, &name)?;
            tensors.push(TensorData::f32(name, [r, c], &values));
            Ok(())
        };
    let l = config.n_layers;
    match group_size {
        None => {
            if version == 1 {
                (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "attn_norm")))?;
                (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "ffn_norm")))?;
                read_f32(&mut cur, &mut tensors, "output_norm.weight".into())?;
                read_f32(&mut cur, &mut tensors, "token_embd.weight".into())?;
                for (n, _) in MATRICES {
                    (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, n)))?;
                }
            } else {
                read_f32(&mut cur, &mut tensors, "token_embd.weight".into())?;
                (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "attn_norm")))?;
                for (n, _) in &MATRICES[..4] {
                    (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, n)))?;
                }
                (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "ffn_norm")))?;
                for (n, _) in &MATRICES[4..] {
                    (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, n)))?;
                }
                read_f32(&mut cur, &mut tensors, "output_norm.weight".into())?;
                let table = config.context_length * config.head_size() / 2;
                cur.take(2 * table * 4, "the legacy RoPE tables")?;
            }
            if !shared {
                read_f32(&mut cur, &mut tensors, "output.weight".into())?;
            }
        }
        Some(gs) => {
            if !config.dim.is_multiple_of(gs) || !config.hidden_dim.is_multiple_of(gs) {
                return Err(bad(format!(
                    "group size {gs} does not divide dim and hidden_dim"
                )));
            }
            (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "attn_norm")))?;
            (0..l).try_for_each(|i| read_f32(&mut cur, &mut tensors, layer(i, "ffn_norm")))?;
            read_f32(&mut cur, &mut tensors, "output_norm.weight".into())?;
            let mut names = vec!["token_embd.weight".to_string()];
            for (n, _) in MATRICES {
                names.extend((0..l).map(|i| layer(i, n)));
            }
            if !shared {
                names.push("output.weight".into());
            }
            let mut widened = 0;
            for name in names {
                let [r, c] = shape(&name);
                let n = r * c;
                let qs = cur.take(n, &name)?.to_vec();
                let scales = cur.f32s(n / gs, &name)?;
                // Exact as q8_0 when groups are 32 and every scale is an f16.
                let exact = gs == QK
                    && scales
                        .iter()
                        .all(|s| half::f16::from_f32(*s).to_f32().to_bits() == s.to_bits());
                if exact {
                    let mut bytes = Vec::with_capacity(n / QK * 34);
                    for (group, s) in qs.chunks_exact(QK).zip(&scales) {
                        bytes.extend_from_slice(&half::f16::from_f32(*s).to_le_bytes());
                        bytes.extend_from_slice(group);
                    }
                    tensors.push(TensorData {
                        name,
                        shape: [r, c],
                        dtype: DType::Q8_0,
                        bytes,
                    });
                } else {
                    widened += 1;
                    let values: Vec<f32> = qs
                        .chunks_exact(gs)
                        .zip(&scales)
                        .flat_map(|(g, s)| g.iter().map(move |&q| f32::from(q as i8) * s))
                        .collect();
                    tensors.push(TensorData::f32(name, [r, c], &values));
                }
            }
            if widened > 0 {
                notes.push(format!(
                    "{widened} matrices have groups of {gs} or scales that are not f16 values; they are stored as the exact f32 values runq computes (q8_0 keeps groups of 32 with f16 scales)"
                ));
            }
        }
    }
    if cur.at != bytes.len() {
        return Err(bad(format!(
            "{} bytes follow the last tensor (wrong header?)",
            bytes.len() - cur.at
        )));
    }
    let tokenizer_spec = match tokenizer {
        Some(t) => TokenizerSpec::Vocab(read_tokenizer(t, config.vocab_size)?),
        None if config.vocab_size >= 258 => {
            notes.push("no tokenizer given: bytes 0-255, BOS 256, EOS 257".into());
            TokenizerSpec::Bytes { bos: 256, eos: 257 }
        }
        None => {
            return Err(bad(format!(
                "a vocabulary of {} needs its tokenizer.bin (--tokenizer)",
                config.vocab_size
            )));
        }
    };
    tensors.sort_by_key(|t| {
        config
            .expected_tensors()
            .iter()
            .position(|(n, _)| *n == t.name)
            .unwrap_or(usize::MAX)
    });
    let provenance = serde_json::json!({
        "imported_from": "llama2.c",
        "version": version,
        "source": source,
        "sha256": pxos_pixel::Hash256::of(bytes).to_string(),
        "notes": notes,
    });
    let payload = build_payload(
        name,
        &Architecture::Llama(config.clone()),
        &tokenizer_spec,
        provenance,
        &tensors,
    )?;
    Ok((
        payload,
        Imported {
            version,
            config,
            group_size,
            notes,
        },
    ))
}

/// Reads llama2.c's `tokenizer.bin`: i32 max token length, then per token an
/// f32 score, an i32 length and the bytes (spaces stand for `▁`).
pub fn read_tokenizer(bytes: &[u8], vocab_size: usize) -> Result<VocabSpec> {
    let bad = |m: String| Error::bad_input(format!("tokenizer.bin: {m}"));
    let mut cur = Cursor { bytes, at: 0 };
    let max_len = i32::from_le_bytes(cur.take(4, "the header")?.try_into().expect("4"));
    let mut tokens = Vec::with_capacity(vocab_size);
    let mut scores = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for i in 0..vocab_size {
        let score = f32::from_le_bytes(cur.take(4, "a score")?.try_into().expect("4"));
        let len = i32::from_le_bytes(cur.take(4, "a length")?.try_into().expect("4"));
        if len < 0 || len > max_len.max(0) {
            return Err(bad(format!("token {i} has length {len} (max {max_len})")));
        }
        let text =
            String::from_utf8_lossy(cur.take(len as usize, "a token")?).replace(' ', "\u{2581}");
        types.push(match i {
            0 => TYPE_UNKNOWN,
            1 | 2 => TYPE_CONTROL,
            _ if text.len() == 6 && text.starts_with("<0x") && text.ends_with('>') => TYPE_BYTE,
            _ => TYPE_NORMAL,
        });
        tokens.push(text);
        scores.push(score);
    }
    if cur.at != bytes.len() {
        return Err(bad(format!(
            "{} bytes follow the {vocab_size} tokens the model has",
            bytes.len() - cur.at
        )));
    }
    Ok(VocabSpec {
        model: VocabModel::Spm,
        tokens,
        scores,
        token_types: types,
        merges: Vec::new(),
        pre: None,
        bos: Some(1),
        eos: 2,
        end_of_turn: Vec::new(),
        unknown: Some(0),
        add_bos: true,
        add_space_prefix: true,
        chat_template: None,
    })
}

/// Writes a SentencePiece vocabulary as llama2.c's `tokenizer.bin`.
pub fn write_tokenizer(spec: &VocabSpec) -> Result<Vec<u8>> {
    if spec.model != VocabModel::Spm {
        return Err(Error::usage(
            "llama2.c's tokenizer.bin holds SentencePiece vocabularies; this model's is byte-level BPE",
        ));
    }
    let texts: Vec<String> = spec
        .tokens
        .iter()
        .map(|t| t.replace('\u{2581}', " "))
        .collect();
    let max = texts.iter().map(String::len).max().unwrap_or(0) as i32;
    let mut out = max.to_le_bytes().to_vec();
    for (t, s) in texts.iter().zip(&spec.scores) {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(t.len() as i32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    Ok(out)
}
