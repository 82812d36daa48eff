//! The CPU inference engine: a llama-style decoder run from the weights in
//! place, with a KV cache. It is the reference for every other engine.
//!
//! The forward pass, per token at position `pos`:
//!
//! ```text
//! x = token_embd[token]
//! for each layer:
//!     h = rmsnorm(x) * attn_norm
//!     q, k, v = attn_q h, attn_k h, attn_v h      (k, v -> the cache at pos)
//!     rope(q, k, pos)                             (interleaved pairs, llama2.c order)
//!     a = softmax(q k^T / sqrt(head)) v           (per head; kv head = head / (heads / kv_heads))
//!     x += attn_output a
//!     h = rmsnorm(x) * ffn_norm
//!     x += ffn_down (silu(ffn_gate h) * ffn_up h)
//! logits = output (rmsnorm(x) * output_norm)      (output = token_embd when tied)
//! ```

use std::sync::{Arc, Mutex};

use crate::dtype::{DType, Input, dequantize_row, dot_f32, dot_input};
use crate::error::{Error, Result};
use crate::format::{LlamaConfig, ModelFile};
use crate::pool::{Pool, Rows};

/// Where a tensor's bytes are in the model's payload.
#[derive(Clone, Copy, Debug)]
struct Weight {
    dtype: DType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    start: usize,
}

struct Layer {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    q: Weight,
    k: Weight,
    v: Weight,
    o: Weight,
    gate: Weight,
    up: Weight,
    down: Weight,
}

/// A loaded llama model: the file plus each tensor's place in it.
pub struct Llama {
    pub file: Arc<ModelFile>,
    pub config: LlamaConfig,
    embed: Weight,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Weight,
    pool: Mutex<Pool>,
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("config", &self.config)
            .finish()
    }
}

impl Llama {
    /// Prepares a model file for inference (the manifest was checked on load).
    pub fn new(file: Arc<ModelFile>) -> Result<Llama> {
        let config = file.manifest.llama().clone();
        let weight = |name: &str| -> Result<Weight> {
            let view = file.tensor(name)?;
            Ok(Weight {
                dtype: view.dtype,
                rows: view.rows,
                cols: view.cols,
                row_bytes: view.row_bytes,
                start: file.tensor_start(name)?,
            })
        };
        let vector = |name: &str| -> Result<Vec<f32>> { Ok(file.tensor(name)?.to_f32()) };
        let mut layers = Vec::with_capacity(config.n_layers);
        for l in 0..config.n_layers {
            let t = |n: &str| format!("blk.{l}.{n}.weight");
            layers.push(Layer {
                attn_norm: vector(&t("attn_norm"))?,
                ffn_norm: vector(&t("ffn_norm"))?,
                q: weight(&t("attn_q"))?,
                k: weight(&t("attn_k"))?,
                v: weight(&t("attn_v"))?,
                o: weight(&t("attn_output"))?,
                gate: weight(&t("ffn_gate"))?,
                up: weight(&t("ffn_up"))?,
                down: weight(&t("ffn_down"))?,
            });
        }
        let embed = weight("token_embd.weight")?;
        let output = if config.tied_embeddings {
            embed
        } else {
            weight("output.weight")?
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(Llama {
            pool: Mutex::new(Pool::new(Arc::clone(&file), threads)),
            output_norm: vector("output_norm.weight")?,
            embed,
            output,
            layers,
            config,
            file,
        })
    }

    fn bytes(&self, w: &Weight) -> &[u8] {
        &self.file.payload()[w.start..w.start + w.rows * w.row_bytes]
    }

    /// A fresh KV cache and scratch space for one generation.
    pub fn state(&self) -> State {
        let c = &self.config;
        let kv = c.kv_dim();
        State {
            x: vec![0.0; c.dim],
            xb: vec![0.0; c.dim],
            xb2: vec![0.0; c.dim],
            hb: vec![0.0; c.hidden_dim],
            hb2: vec![0.0; c.hidden_dim],
            q: vec![0.0; c.dim],
            att: vec![0.0; c.n_heads * c.context_length],
            logits: vec![0.0; c.vocab_size],
            key_cache: vec![0.0; c.n_layers * c.context_length * kv],
            value_cache: vec![0.0; c.n_layers * c.context_length * kv],
            pos: 0,
        }
    }

    /// Runs one token at the state's position and returns the logits.
    pub fn forward<'s>(&self, state: &'s mut State, token: u32) -> Result<&'s [f32]> {
        let c = &self.config;
        let pos = state.pos;
        if pos >= c.context_length {
            return Err(Error::usage(format!(
                "the context of {} tokens is full",
                c.context_length
            )));
        }
        if token as usize >= c.vocab_size {
            return Err(Error::bad_input(format!(
                "token {token} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        let (kv_dim, hs) = (c.kv_dim(), c.head_size());
        let kv_mul = c.n_heads / c.n_kv_heads;
        state.x.clear();
        dequantize_row(
            self.embed.dtype,
            &self.bytes(&self.embed)[token as usize * self.embed.row_bytes..]
                [..self.embed.row_bytes],
            &mut state.x,
        );
        let layer_floats = c.context_length * kv_dim;
        let angles = rope_table(pos, hs, c.rope_theta);
        for (l, layer) in self.layers.iter().enumerate() {
            rmsnorm(&mut state.xb, &state.x, &layer.attn_norm, c.norm_eps);
            let cache_at = l * layer_floats + pos * kv_dim;
            {
                let k_out = &mut state.key_cache[cache_at..cache_at + kv_dim];
                let v_out = &mut state.value_cache[cache_at..cache_at + kv_dim];
                self.matvec3(
                    [&layer.q, &layer.k, &layer.v],
                    [&mut state.q, k_out, v_out],
                    &state.xb,
                );
            }
            rope_with(&mut state.q, &angles);
            rope_with(&mut state.key_cache[cache_at..cache_at + kv_dim], &angles);
            // Attention, head by head.
            let keys = &state.key_cache[l * layer_floats..(l + 1) * layer_floats];
            let values = &state.value_cache[l * layer_floats..(l + 1) * layer_floats];
            let q = &state.q;
            let scale = 1.0 / (hs as f32).sqrt();
            let ctx = c.context_length;
            state
                .xb
                .chunks_mut(hs)
                .zip(state.att.chunks_mut(ctx))
                .enumerate()
                .for_each(|(h, (out, att))| {
                    let qh = &q[h * hs..(h + 1) * hs];
                    let kvh = (h / kv_mul) * hs;
                    let att = &mut att[..=pos];
                    for (t, a) in att.iter_mut().enumerate() {
                        *a = dot_f32(qh, &keys[t * kv_dim + kvh..][..hs]) * scale;
                    }
                    softmax(att);
                    out.fill(0.0);
                    for (t, a) in att.iter().enumerate() {
                        let v = &values[t * kv_dim + kvh..][..hs];
                        for (o, vv) in out.iter_mut().zip(v) {
                            *o += a * vv;
                        }
                    }
                });
            self.matvec(&layer.o, &mut state.xb2, &state.xb);
            add(&mut state.x, &state.xb2);
            rmsnorm(&mut state.xb, &state.x, &layer.ffn_norm, c.norm_eps);
            self.matvec2(
                [&layer.gate, &layer.up],
                [&mut state.hb, &mut state.hb2],
                &state.xb,
            );
            for (h, u) in state.hb.iter_mut().zip(&state.hb2) {
                *h = silu(*h) * u;
            }
            self.matvec(&layer.down, &mut state.xb, &state.hb);
            add(&mut state.x, &state.xb);
        }
        let x = std::mem::take(&mut state.x);
        rmsnorm(&mut state.xb, &x, &self.output_norm, c.norm_eps);
        state.x = x;
        self.matvec(&self.output, &mut state.logits, &state.xb);
        state.pos += 1;
        Ok(&state.logits)
    }

    fn rows(w: &Weight) -> Rows {
        Rows {
            dtype: w.dtype,
            start: w.start,
            row_bytes: w.row_bytes,
            rows: w.rows,
        }
    }

    /// Runs products of `x` on the helper pool, or on this thread alone when
    /// another generation holds the pool.
    fn products(&self, ws: &[&Weight], outs: &mut [&mut [f32]], x: &[f32]) {
        let jobs: Vec<Rows> = ws.iter().map(|w| Llama::rows(w)).collect();
        match self.pool.try_lock() {
            Ok(pool) => pool.run(&jobs, outs, x),
            Err(_) => {
                let input = Input::new(x, ws.iter().any(|w| w.dtype.reads_q8_input()));
                for (w, out) in ws.iter().zip(outs.iter_mut()) {
                    let bytes = self.bytes(w);
                    for (o, row) in out.iter_mut().zip(bytes.chunks_exact(w.row_bytes)) {
                        *o = dot_input(w.dtype, row, &input);
                    }
                }
            }
        }
    }

    fn matvec(&self, w: &Weight, out: &mut [f32], x: &[f32]) {
        debug_assert_eq!(x.len(), w.cols);
        self.products(&[w], &mut [out], x);
    }

    fn matvec2(&self, ws: [&Weight; 2], outs: [&mut [f32]; 2], x: &[f32]) {
        let [a, b] = outs;
        self.products(&ws, &mut [a, b], x);
    }

    fn matvec3(&self, ws: [&Weight; 3], outs: [&mut [f32]; 3], x: &[f32]) {
        let [a, b, c] = outs;
        self.products(&ws, &mut [a, b, c], x);
    }
}

/// The state of one generation: position, KV cache and scratch space.
#[derive(Clone)]
pub struct State {
    x: Vec<f32>,
    xb: Vec<f32>,
    xb2: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    q: Vec<f32>,
    att: Vec<f32>,
    logits: Vec<f32>,
    key_cache: Vec<f32>,
    value_cache: Vec<f32>,
    /// The next position to fill.
    pub pos: usize,
}

/// `out = x / rms(x) * weight`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let ss = dot_f32(x, x) / x.len() as f32;
    let scale = 1.0 / (ss + eps).sqrt();
    for ((o, xv), w) in out.iter_mut().zip(x).zip(weight) {
        *o = w * (xv * scale);
    }
}

/// Rotates each pair `(v[i], v[i+1])` of every head by `pos * theta^(-i/head)`.
pub fn rope(v: &mut [f32], pos: usize, head_size: usize, theta: f32) {
    rope_with(v, &rope_table(pos, head_size, theta));
}

/// The `(sin, cos)` of each pair's angle at `pos`: computed once per token,
/// shared by every layer's queries and keys.
pub fn rope_table(pos: usize, head_size: usize, theta: f32) -> Vec<(f32, f32)> {
    (0..head_size)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / theta.powf(i as f32 / head_size as f32);
            (pos as f32 * freq).sin_cos()
        })
        .collect()
}

/// Rotates each head's pairs by the angles of [`rope_table`].
pub fn rope_with(v: &mut [f32], table: &[(f32, f32)]) {
    for head in v.chunks_exact_mut(2 * table.len()) {
        for (pair, &(sin, cos)) in head.chunks_exact_mut(2).zip(table) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * cos - b * sin;
            pair[1] = a * sin + b * cos;
        }
    }
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
