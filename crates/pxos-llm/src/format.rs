//! PXI-LLM: a model as one PXI of kind `tensor` (`docs/formats/pxi-llm.md`).
//!
//! The payload is
//!
//! ```text
//! "PXLM"  u32 format version (1)  u64 manifest length   (16 bytes, little-endian)
//! manifest (UTF-8 JSON)
//! zero padding to a multiple of 64
//! data: each tensor's exact bytes at its 64-aligned offset, zero padding between
//! ```
//!
//! The PXI's own SHA-256 covers the whole payload; the manifest also records
//! each tensor's SHA-256, so damage is pinned to a tensor. The loader decodes
//! the payload into one 8-byte-aligned buffer and the engine reads every row
//! from there in place: no tensor is copied or converted on load.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use pxos_pixel::{EncodeOptions, Hash256, Kind, Limits};
use serde::{Deserialize, Serialize};

use crate::dtype::DType;
use crate::error::{Error, Result};

/// The payload's first bytes.
pub const MAGIC: &[u8; 4] = b"PXLM";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Every tensor starts at a multiple of this many bytes of the data region.
pub const ALIGNMENT: usize = 64;
/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST: u64 = 16 << 20;
/// The most tensors a manifest may list.
pub const MAX_TENSORS: usize = 65_536;
/// The most elements one tensor may hold (2^36: 256 GiB of f32).
pub const MAX_ELEMENTS: u64 = 1 << 36;

/// A llama-style decoder's hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_theta: f32,
    pub norm_eps: f32,
    /// The output projection is the token embedding (no `output.weight`).
    pub tied_embeddings: bool,
}

/// Upper bounds on hyperparameters, so a hostile manifest cannot ask for
/// absurd allocations (a KV cache is `2 * layers * context * kv_dim` floats).
const MAX_DIM: usize = 1 << 16;
const MAX_LAYERS: usize = 1024;
const MAX_VOCAB: usize = 1 << 20;
const MAX_CONTEXT: usize = 1 << 20;
const MAX_KV_CACHE_FLOATS: u64 = 1 << 32;

impl LlamaConfig {
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }

    /// Checks every hyperparameter and their relations.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::bad_input(format!("architecture: {what}")));
        for (name, value, max) in [
            ("dim", self.dim, MAX_DIM),
            ("hidden_dim", self.hidden_dim, MAX_DIM * 8),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("n_heads", self.n_heads, MAX_DIM),
            ("n_kv_heads", self.n_kv_heads, MAX_DIM),
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("context_length", self.context_length, MAX_CONTEXT),
        ] {
            if value == 0 || value > max {
                return bad(format!("{name} is {value}; it must be within 1..={max}"));
            }
        }
        if !self.dim.is_multiple_of(self.n_heads) || !self.head_size().is_multiple_of(2) {
            return bad(format!(
                "dim {} must split into {} heads of an even size",
                self.dim, self.n_heads
            ));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(format!(
                "n_heads {} must be a multiple of n_kv_heads {}",
                self.n_heads, self.n_kv_heads
            ));
        }
        let cache = 2 * self.n_layers as u64 * self.context_length as u64 * self.kv_dim() as u64;
        if cache > MAX_KV_CACHE_FLOATS {
            return bad(format!("a KV cache of {cache} floats is too large"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("rope_theta {} must be positive", self.rope_theta));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return bad(format!("norm_eps {} must be within (0, 1)", self.norm_eps));
        }
        Ok(())
    }

    /// The tensors this architecture needs, with their shapes `[rows, cols]`.
    pub fn expected_tensors(&self) -> Vec<(String, [usize; 2])> {
        let (d, h, kv) = (self.dim, self.hidden_dim, self.kv_dim());
        let mut out = vec![("token_embd.weight".to_string(), [self.vocab_size, d])];
        for l in 0..self.n_layers {
            let t = |n: &str| format!("blk.{l}.{n}.weight");
            out.extend([
                (t("attn_norm"), [1, d]),
                (t("attn_q"), [d, d]),
                (t("attn_k"), [kv, d]),
                (t("attn_v"), [kv, d]),
                (t("attn_output"), [d, d]),
                (t("ffn_norm"), [1, d]),
                (t("ffn_gate"), [h, d]),
                (t("ffn_up"), [h, d]),
                (t("ffn_down"), [d, h]),
            ]);
        }
        out.push(("output_norm.weight".to_string(), [1, d]));
        if !self.tied_embeddings {
            out.push(("output.weight".to_string(), [self.vocab_size, d]));
        }
        out
    }

    /// Parameters in all tensors.
    pub fn parameter_count(&self) -> u64 {
        self.expected_tensors()
            .iter()
            .map(|(_, [r, c])| (*r * *c) as u64)
            .sum()
    }
}

/// The architecture a manifest describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Architecture {
    Llama(LlamaConfig),
}

/// How text becomes tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerSpec {
    /// Token `b` is byte `b` (0..=255); `bos` and `eos` follow.
    Bytes { bos: u32, eos: u32 },
    /// An imported model's own vocabulary (SentencePiece or byte-level BPE).
    Vocab(crate::vocab::VocabSpec),
}

/// One tensor's record in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorInfo {
    pub name: String,
    /// `[rows, cols]`, row-major; a vector is `[1, n]`. Rows are contiguous.
    pub shape: Vec<u64>,
    pub dtype: String,
    /// Byte offset from the start of the data region (a multiple of 64).
    pub offset: u64,
    /// Exact byte length.
    pub size: u64,
    pub sha256: Hash256,
}

/// The manifest at the start of the payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub architecture: Architecture,
    pub tokenizer: TokenizerSpec,
    pub tensors: Vec<TensorInfo>,
    /// How the weights were made (command, data, losses), free-form.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub provenance: serde_json::Value,
}

impl Manifest {
    pub fn llama(&self) -> &LlamaConfig {
        match &self.architecture {
            Architecture::Llama(config) => config,
        }
    }
}

/// A tensor to write: its name, shape `[rows, cols]`, type and exact bytes.
#[derive(Clone, Debug)]
pub struct TensorData {
    pub name: String,
    pub shape: [usize; 2],
    pub dtype: DType,
    pub bytes: Vec<u8>,
}

impl TensorData {
    /// An f32 tensor from values.
    pub fn f32(name: impl Into<String>, shape: [usize; 2], values: &[f32]) -> TensorData {
        TensorData {
            name: name.into(),
            shape,
            dtype: DType::F32,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Builds the payload of a PXI-LLM from a manifest's fields and tensors.
pub fn build_payload(
    name: &str,
    architecture: &Architecture,
    tokenizer: &TokenizerSpec,
    provenance: serde_json::Value,
    tensors: &[TensorData],
) -> Result<Vec<u8>> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    for tensor in tensors {
        let [rows, cols] = tensor.shape;
        let expected = tensor.dtype.row_bytes(cols)? * rows;
        if expected != tensor.bytes.len() {
            return Err(Error::bad_input(format!(
                "tensor {}: {} bytes given, {rows}x{cols} {} needs {expected}",
                tensor.name,
                tensor.bytes.len(),
                tensor.dtype
            )));
        }
        infos.push(TensorInfo {
            name: tensor.name.clone(),
            shape: vec![rows as u64, cols as u64],
            dtype: tensor.dtype.name().to_string(),
            offset,
            size: expected as u64,
            sha256: Hash256::of(&tensor.bytes),
        });
        offset = align(offset + expected as u64);
    }
    let manifest = Manifest {
        format: "pxi-llm".into(),
        name: name.into(),
        architecture: architecture.clone(),
        tokenizer: tokenizer.clone(),
        tensors: infos,
        provenance,
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::bad_input(e.to_string()))?;
    let mut payload = Vec::with_capacity(16 + json.len() + offset as usize + ALIGNMENT);
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    payload.extend_from_slice(&(json.len() as u64).to_le_bytes());
    payload.extend_from_slice(&json);
    payload.resize(align(payload.len() as u64) as usize, 0);
    let data_start = payload.len();
    for (tensor, info) in tensors.iter().zip(&manifest.tensors) {
        payload.resize(data_start + info.offset as usize, 0);
        payload.extend_from_slice(&tensor.bytes);
    }
    // The manifest was validated by construction; check it like a reader would.
    parse_payload_layout(&payload)?;
    Ok(payload)
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT as u64) * ALIGNMENT as u64
}

/// Encodes a payload as a PXI of kind `tensor`.
pub fn encode_png(payload: &[u8]) -> Result<Vec<u8>> {
    let options = EncodeOptions {
        metadata: br#"{"format":"pxi-llm"}"#.to_vec(),
        ..EncodeOptions::kind(Kind::Tensor)
    };
    Ok(pxos_pixel::encode_to_vec(payload, &options)?)
}

/// Writes a model PXI atomically.
pub fn write_model_file(path: &Path, payload: &[u8]) -> Result<()> {
    let png = encode_png(payload)?;
    pxos_pixel::durable::write_atomic(path, &png, pxos_pixel::durable::label::LLM_MODEL)
        .map_err(|err| Error::io(err, path))
}

/// A byte buffer aligned to 8 bytes, so f32 and f16 tensors can be viewed in place.
#[derive(Clone, Default)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
    cap: usize,
}

impl AlignedBytes {
    /// An empty buffer that refuses to grow past `cap` bytes.
    pub fn with_cap(cap: usize) -> AlignedBytes {
        AlignedBytes {
            words: Vec::new(),
            len: 0,
            cap,
        }
    }

    pub fn from_slice(bytes: &[u8]) -> AlignedBytes {
        let mut out = AlignedBytes::with_cap(usize::MAX);
        out.extend(bytes);
        out
    }

    fn extend(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end > self.words.len() * 8 {
            let want = end.div_ceil(8).max(self.words.len() * 2);
            self.words.resize(want, 0);
        }
        bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

impl Write for AlignedBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len + buf.len() > self.cap {
            return Err(std::io::Error::other(format!(
                "the payload passes the in-memory limit of {} bytes",
                self.cap
            )));
        }
        self.extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tensor as stored: a view into the model's payload.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    pub row_bytes: usize,
    pub bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// The whole tensor as f32 values (a copy; for tests, stats and training).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            crate::dtype::dequantize_row(self.dtype, self.row(r), &mut out);
        }
        out
    }
}

/// A checked tensor record: where its bytes are in the payload.
#[derive(Clone, Debug)]
struct Slot {
    dtype: DType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    start: usize,
    size: usize,
}

/// A loaded PXI-LLM: the manifest and the payload holding every tensor.
pub struct ModelFile {
    pub manifest: Manifest,
    payload: AlignedBytes,
    slots: BTreeMap<String, Slot>,
    /// The payload's SHA-256 (the PXI header's).
    pub payload_sha256: Hash256,
    /// The PNG file's size, when loaded from one.
    pub file_len: u64,
}

impl std::fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFile")
            .field("name", &self.manifest.name)
            .field("tensors", &self.slots.len())
            .finish()
    }
}

/// The checked layout of a payload: the manifest and each tensor's place.
fn parse_payload_layout(payload: &[u8]) -> Result<(Manifest, BTreeMap<String, Slot>)> {
    if payload.len() < 16 || &payload[..4] != MAGIC {
        return Err(Error::bad_input(
            "not a PXI-LLM payload (no PXLM magic): is this a model file?",
        ));
    }
    let version = u32::from_le_bytes(payload[4..8].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(Error::bad_input(format!(
            "PXI-LLM format version {version} is not supported (this pxOS reads version {FORMAT_VERSION})"
        )));
    }
    let manifest_len = u64::from_le_bytes(payload[8..16].try_into().unwrap());
    if manifest_len > MAX_MANIFEST || manifest_len > (payload.len() - 16) as u64 {
        return Err(Error::bad_input(format!(
            "manifest length {manifest_len} runs past the payload of {} bytes (or the {MAX_MANIFEST}-byte limit)",
            payload.len()
        )));
    }
    let json = &payload[16..16 + manifest_len as usize];
    let manifest: Manifest =
        serde_json::from_slice(json).map_err(|err| Error::bad_input(format!("manifest: {err}")))?;
    if manifest.format != "pxi-llm" {
        return Err(Error::bad_input(format!(
            "manifest format is {:?}, not \"pxi-llm\"",
            manifest.format
        )));
    }
    if manifest.tensors.len() > MAX_TENSORS {
        return Err(Error::bad_input(format!(
            "the manifest lists {} tensors (at most {MAX_TENSORS})",
            manifest.tensors.len()
        )));
    }
    let data_start = align(16 + manifest_len) as usize;
    if data_start > payload.len() {
        return Err(Error::bad_input("the payload ends before the data region"));
    }
    let data_len = (payload.len() - data_start) as u64;
    let mut slots = BTreeMap::new();
    let mut spans = Vec::with_capacity(manifest.tensors.len());
    for info in &manifest.tensors {
        let slot = check_tensor(info, data_len)
            .map_err(|err| err.context(format!("tensor {:?}", info.name)))?;
        spans.push((slot.start, slot.size, info.name.clone()));
        let slot = Slot {
            start: data_start + slot.start,
            ..slot
        };
        if slots.insert(info.name.clone(), slot).is_some() {
            return Err(Error::bad_input(format!(
                "tensor {:?} is listed twice",
                info.name
            )));
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            return Err(Error::bad_input(format!(
                "tensors {:?} and {:?} overlap",
                pair[0].2, pair[1].2
            )));
        }
    }
    match &manifest.architecture {
        Architecture::Llama(config) => {
            config.validate()?;
            for (name, shape) in config.expected_tensors() {
                let slot = slots.get(&name).ok_or_else(|| {
                    Error::bad_input(format!("the llama architecture needs tensor {name:?}"))
                })?;
                if [slot.rows, slot.cols] != shape {
                    return Err(Error::bad_input(format!(
                        "tensor {name:?} is {}x{}; the architecture needs {}x{}",
                        slot.rows, slot.cols, shape[0], shape[1]
                    )));
                }
                let norm = name.ends_with("norm.weight");
                if norm && slot.dtype != DType::F32 {
                    return Err(Error::bad_input(format!(
                        "norm tensor {name:?} must be f32, not {}",
                        slot.dtype
                    )));
                }
            }
        }
    }
    match &manifest.tokenizer {
        TokenizerSpec::Vocab(vocab) => vocab.validate(manifest.llama().vocab_size)?,
        &TokenizerSpec::Bytes { bos, eos } => {
            let vocab = manifest.llama().vocab_size as u32;
            if vocab < 256 || bos >= vocab || eos >= vocab || bos < 256 || eos < 256 || bos == eos {
                return Err(Error::bad_input(format!(
                    "byte tokenizer: bos {bos} and eos {eos} must be distinct ids in 256..{vocab}"
                )));
            }
        }
    }
    Ok((manifest, slots))
}

fn check_tensor(info: &TensorInfo, data_len: u64) -> Result<Slot> {
    let dtype = DType::parse(&info.dtype)?;
    if info.name.is_empty() || info.name.len() > 256 {
        return Err(Error::bad_input("a tensor name must have 1 to 256 bytes"));
    }
    let (rows, cols) = match info.shape.as_slice() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        other => {
            return Err(Error::bad_input(format!(
                "shape {other:?} must have one or two dimensions"
            )));
        }
    };
    let elements = rows
        .checked_mul(cols)
        .filter(|n| *n > 0 && *n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            Error::bad_input(format!(
                "shape {:?} has no elements or more than {MAX_ELEMENTS}",
                info.shape
            ))
        })?;
    let row_bytes = dtype.row_bytes(cols as usize)?;
    let size = (elements / cols) * row_bytes as u64;
    if size != info.size {
        return Err(Error::bad_input(format!(
            "size is {} bytes but {rows}x{cols} {dtype} needs {size}",
            info.size
        )));
    }
    if !info.offset.is_multiple_of(ALIGNMENT as u64) {
        return Err(Error::bad_input(format!(
            "offset {} is not a multiple of {ALIGNMENT}",
            info.offset
        )));
    }
    match info.offset.checked_add(size) {
        Some(end) if end <= data_len => {}
        _ => {
            return Err(Error::bad_input(format!(
                "bytes {}..+{size} run past the data region of {data_len} bytes",
                info.offset
            )));
        }
    }
    Ok(Slot {
        dtype,
        rows: rows as usize,
        cols: cols as usize,
        row_bytes,
        start: info.offset as usize,
        size: size as usize,
    })
}

impl ModelFile {
    /// Reads a model from a PXI-LLM file: decodes the pixels (checking the
    /// payload SHA-256), then checks the manifest and every tensor's hash.
    pub fn open(path: &Path, limits: &Limits) -> Result<ModelFile> {
        let file = pxos_pixel::open_nonempty(path).map_err(|e| Error::from(e).with_path(path))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut model = ModelFile::decode(std::io::BufReader::with_capacity(1 << 20, file), limits)
            .map_err(|err| err.with_path(path))?;
        model.file_len = file_len;
        Ok(model)
    }

    /// Reads a model from PNG bytes in memory.
    pub fn from_png(png: &[u8], limits: &Limits) -> Result<ModelFile> {
        let mut model = ModelFile::decode(std::io::Cursor::new(png), limits)?;
        model.file_len = png.len() as u64;
        Ok(model)
    }

    fn decode<R: std::io::BufRead + std::io::Seek>(input: R, limits: &Limits) -> Result<ModelFile> {
        let mut payload = AlignedBytes::with_cap(limits.max_in_memory);
        let decoded = pxos_pixel::decode(input, &mut payload, limits, &mut |_| {})?;
        if decoded.header.kind != Kind::Tensor {
            return Err(Error::bad_input(format!(
                "a model is a PXI of kind tensor; this one is {}",
                decoded.header.kind.name()
            )));
        }
        ModelFile::from_payload(payload, Hash256::from(decoded.header.sha256))
    }

    /// Checks a decoded payload and every tensor's hash.
    pub fn from_payload(payload: AlignedBytes, payload_sha256: Hash256) -> Result<ModelFile> {
        let (manifest, slots) = parse_payload_layout(payload.as_bytes())?;
        let bytes = payload.as_bytes();
        for info in &manifest.tensors {
            let slot = &slots[&info.name];
            let actual = Hash256::of(&bytes[slot.start..slot.start + slot.size]);
            if actual != info.sha256 {
                return Err(Error::tampered(format!(
                    "tensor {:?} does not match its recorded SHA-256 (stored {}, now {})",
                    info.name,
                    info.sha256.short(),
                    actual.short()
                )));
            }
        }
        Ok(ModelFile {
            manifest,
            payload,
            slots,
            payload_sha256,
            file_len: 0,
        })
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| Error::not_found(format!("no tensor named {name:?}")))?;
        Ok(TensorView {
            dtype: slot.dtype,
            rows: slot.rows,
            cols: slot.cols,
            row_bytes: slot.row_bytes,
            bytes: &self.payload.as_bytes()[slot.start..slot.start + slot.size],
        })
    }

    /// The whole decoded payload (8-byte aligned).
    pub fn payload(&self) -> &[u8] {
        self.payload.as_bytes()
    }

    /// Where a tensor's first byte is in [`ModelFile::payload`].
    pub fn tensor_start(&self, name: &str) -> Result<usize> {
        self.slots
            .get(name)
            .map(|slot| slot.start)
            .ok_or_else(|| Error::not_found(format!("no tensor named {name:?}")))
    }

    /// The payload's length in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.as_bytes().len()
    }

    /// Every tensor as data (for conversions).
    pub fn tensors(&self) -> Vec<TensorData> {
        self.manifest
            .tensors
            .iter()
            .map(|info| {
                let view = self.tensor(&info.name).expect("listed tensor");
                TensorData {
                    name: info.name.clone(),
                    shape: [view.rows, view.cols],
                    dtype: view.dtype,
                    bytes: view.bytes.to_vec(),
                }
            })
            .collect()
    }
}
