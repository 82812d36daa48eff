//! Training pixellm: a llama-style decoder, forward and backward by hand.
//!
//! No autograd framework: each layer has a forward that saves what its
//! backward needs, and a backward checked against finite differences in the
//! tests. Every reduction has a fixed order and work is split by output
//! rows, so a run is deterministic whatever the thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dtype::{DType, dot_f32};
use crate::error::{Error, Result};
use crate::format::{Architecture, LlamaConfig, TensorData, TokenizerSpec, build_payload};
use crate::rng::Rng;

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: LlamaConfig,
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence (at most the model's context).
    pub seq_len: usize,
    pub steps: usize,
    pub learning_rate: f32,
    pub warmup_steps: usize,
    pub weight_decay: f32,
    pub seed: u64,
    /// Held-out windows scored at each evaluation.
    pub eval_windows: usize,
    /// Evaluate every this many steps (and at the end).
    pub eval_every: usize,
}

impl TrainConfig {
    /// The committed pixellm: about 0.8M parameters, byte-level.
    pub fn pixellm() -> TrainConfig {
        TrainConfig {
            model: LlamaConfig {
                dim: 128,
                hidden_dim: 352,
                n_layers: 4,
                n_heads: 4,
                n_kv_heads: 2,
                vocab_size: 258,
                context_length: 256,
                rope_theta: 10000.0,
                norm_eps: 1e-5,
                tied_embeddings: true,
            },
            batch: 16,
            seq_len: 128,
            steps: 1500,
            learning_rate: 3e-3,
            warmup_steps: 50,
            weight_decay: 0.1,
            seed: 1,
            eval_windows: 128,
            eval_every: 250,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if !self.model.tied_embeddings || self.model.vocab_size < 258 {
            return Err(Error::usage(
                "training needs tied embeddings and a vocabulary of at least 258 (bytes, BOS, EOS)",
            ));
        }
        if self.batch == 0 || self.seq_len < 2 || self.seq_len > self.model.context_length {
            return Err(Error::usage(format!(
                "batch must be positive and seq_len within 2..={}",
                self.model.context_length
            )));
        }
        if self.steps == 0 || self.eval_windows == 0 || self.eval_every == 0 {
            return Err(Error::usage(
                "steps, eval windows and eval interval must be positive",
            ));
        }
        Ok(())
    }
}

/// Where each tensor sits in the flat parameter vector.
#[derive(Clone, Debug)]
struct Layout {
    names: Vec<(String, [usize; 2], usize)>,
    total: usize,
}

impl Layout {
    fn new(config: &LlamaConfig) -> Layout {
        let mut names = Vec::new();
        let mut at = 0;
        for (name, shape) in config.expected_tensors() {
            names.push((name, shape, at));
            at += shape[0] * shape[1];
        }
        Layout { names, total: at }
    }
}

/// Offsets of one layer's tensors.
#[derive(Clone, Copy, Debug)]
struct LayerAt {
    attn_norm: usize,
    q: usize,
    k: usize,
    v: usize,
    o: usize,
    ffn_norm: usize,
    gate: usize,
    up: usize,
    down: usize,
}

/// The parameters of a model being trained, as one flat f32 vector.
#[derive(Clone, Debug)]
pub struct Params {
    pub config: LlamaConfig,
    pub values: Vec<f32>,
    layout: Layout,
}

impl Params {
    /// Random initial weights: N(0, 0.02), output projections scaled by
    /// 1/sqrt(2 * layers), norms 1.
    pub fn init(config: &LlamaConfig, seed: u64) -> Params {
        let layout = Layout::new(config);
        let mut values = vec![0f32; layout.total];
        let mut rng = Rng::new(seed);
        let out_scale = 1.0 / (2.0 * config.n_layers as f32).sqrt();
        for (name, [r, c], at) in &layout.names {
            let slice = &mut values[*at..*at + r * c];
            if name.ends_with("norm.weight") {
                slice.fill(1.0);
            } else {
                let scale = if name.contains("attn_output") || name.contains("ffn_down") {
                    0.02 * out_scale
                } else {
                    0.02
                };
                slice.iter_mut().for_each(|v| *v = rng.normal() * scale);
            }
        }
        Params {
            config: config.clone(),
            values,
            layout,
        }
    }

    fn at(&self, name: &str) -> usize {
        self.layout
            .names
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, at)| *at)
            .expect("layout has every tensor")
    }

    fn layer(&self, l: usize) -> LayerAt {
        let t = |n: &str| self.at(&format!("blk.{l}.{n}.weight"));
        LayerAt {
            attn_norm: t("attn_norm"),
            q: t("attn_q"),
            k: t("attn_k"),
            v: t("attn_v"),
            o: t("attn_output"),
            ffn_norm: t("ffn_norm"),
            gate: t("ffn_gate"),
            up: t("ffn_up"),
            down: t("ffn_down"),
        }
    }

    /// Whether weight decay applies at each parameter (matrices yes, norms no).
    fn decay_mask(&self) -> Vec<(usize, usize, bool)> {
        self.layout
            .names
            .iter()
            .map(|(n, [r, c], at)| (*at, r * c, !n.ends_with("norm.weight")))
            .collect()
    }

    /// The tensors in f32, ready for [`build_payload`].
    pub fn tensors(&self) -> Vec<TensorData> {
        self.layout
            .names
            .iter()
            .map(|(name, shape, at)| {
                TensorData::f32(
                    name.clone(),
                    *shape,
                    &self.values[*at..*at + shape[0] * shape[1]],
                )
            })
            .collect()
    }

    /// A PXI-LLM payload of these weights, in f32.
    pub fn to_payload(&self, name: &str, provenance: serde_json::Value) -> Result<Vec<u8>> {
        build_payload(
            name,
            &Architecture::Llama(self.config.clone()),
            &TokenizerSpec::Bytes { bos: 256, eos: 257 },
            provenance,
            &self.tensors(),
        )
    }

    /// Takes the weights of a loaded f32 model (to continue training it).
    pub fn from_model(file: &crate::format::ModelFile) -> Result<Params> {
        let config = file.manifest.llama().clone();
        let layout = Layout::new(&config);
        let mut values = vec![0f32; layout.total];
        for (name, [r, c], at) in &layout.names {
            let view = file.tensor(name)?;
            if view.dtype != DType::F32 {
                return Err(Error::usage(format!(
                    "training continues only from f32 weights; {name} is {}",
                    view.dtype
                )));
            }
            values[*at..*at + r * c].copy_from_slice(&view.to_f32());
        }
        Ok(Params {
            config,
            values,
            layout,
        })
    }
}

/// One batch: `inputs[b][t]` predicts `targets[b][t]`.
#[derive(Clone, Debug)]
pub struct Batch {
    pub batch: usize,
    pub seq_len: usize,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

/// A window of text as training tokens: BOS then the bytes, predicting the bytes.
fn window(
    text: &[u8],
    start: usize,
    seq_len: usize,
    bos: u32,
    inputs: &mut Vec<u32>,
    targets: &mut Vec<u32>,
) {
    let bytes = &text[start..start + seq_len];
    inputs.push(bos);
    inputs.extend(bytes[..seq_len - 1].iter().map(|&b| b as u32));
    targets.extend(bytes.iter().map(|&b| b as u32));
}

/// A random batch of windows from `text`.
pub fn random_batch(text: &[u8], batch: usize, seq_len: usize, rng: &mut Rng) -> Batch {
    let mut inputs = Vec::with_capacity(batch * seq_len);
    let mut targets = Vec::with_capacity(batch * seq_len);
    for _ in 0..batch {
        let start = rng.below(text.len() - seq_len + 1);
        window(text, start, seq_len, 256, &mut inputs, &mut targets);
    }
    Batch {
        batch,
        seq_len,
        inputs,
        targets,
    }
}

/// The held-out windows every evaluation scores: up to `count` windows
/// spread evenly over `text`.
pub fn eval_windows(text: &[u8], count: usize, seq_len: usize) -> Vec<Batch> {
    let available = text.len() / seq_len;
    let count = count.min(available).max(usize::from(text.len() >= seq_len));
    (0..count)
        .map(|i| {
            let start = i * available / count * seq_len;
            let (mut inputs, mut targets) = (Vec::new(), Vec::new());
            window(text, start, seq_len, 256, &mut inputs, &mut targets);
            Batch {
                batch: 1,
                seq_len,
                inputs,
                targets,
            }
        })
        .collect()
}

/// The (previous byte, target) pairs of evaluation windows, for the baselines.
pub fn eval_targets(windows: &[Batch]) -> Vec<(Option<u8>, u8)> {
    windows
        .iter()
        .flat_map(|w| {
            w.inputs
                .iter()
                .zip(&w.targets)
                .map(|(&i, &t)| (if i < 256 { Some(i as u8) } else { None }, t as u8))
        })
        .collect()
}

/// Saved activations of one layer.
#[derive(Default)]
struct LayerActs {
    x_in: Vec<f32>,
    rstd1: Vec<f32>,
    xn1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    ao: Vec<f32>,
    x_mid: Vec<f32>,
    rstd2: Vec<f32>,
    xn2: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
}

/// The forward pass of a batch, keeping what the backward pass needs.
struct Forward {
    layers: Vec<LayerActs>,
    x_out: Vec<f32>,
    rstdf: Vec<f32>,
    xnf: Vec<f32>,
    /// Softmax probabilities, `n x vocab`.
    probs: Vec<f32>,
    loss: f64,
}

/// `out[n] = W x[n]` for `x: n x i`, `w: o x i`.
fn mm(out: &mut [f32], x: &[f32], w: &[f32], i: usize, o: usize) {
    out.par_chunks_mut(o)
        .zip(x.par_chunks(i))
        .with_min_len(8)
        .for_each(|(out, x)| {
            for (r, v) in out.iter_mut().enumerate() {
                *v = dot_f32(&w[r * i..(r + 1) * i], x);
            }
        });
}

/// `dx[n] += dout[n] W` (the input gradient of [`mm`]).
fn mm_back_input(dx: &mut [f32], dout: &[f32], w: &[f32], i: usize, o: usize) {
    dx.par_chunks_mut(i)
        .zip(dout.par_chunks(o))
        .with_min_len(8)
        .for_each(|(dx, dout)| {
            for (r, g) in dout.iter().enumerate() {
                for (d, wv) in dx.iter_mut().zip(&w[r * i..(r + 1) * i]) {
                    *d += g * wv;
                }
            }
        });
}

/// `dw[r] += sum_n dout[n][r] x[n]` (the weight gradient of [`mm`]).
fn mm_back_weight(dw: &mut [f32], dout: &[f32], x: &[f32], i: usize, o: usize) {
    let n = x.len() / i;
    dw.par_chunks_mut(i)
        .enumerate()
        .with_min_len(4)
        .for_each(|(r, dw)| {
            for t in 0..n {
                let g = dout[t * o + r];
                if g != 0.0 {
                    for (d, xv) in dw.iter_mut().zip(&x[t * i..(t + 1) * i]) {
                        *d += g * xv;
                    }
                }
            }
        });
}

fn rmsnorm_forward(out: &mut [f32], rstd: &mut [f32], x: &[f32], g: &[f32], d: usize, eps: f32) {
    out.par_chunks_mut(d)
        .zip(rstd.par_iter_mut())
        .zip(x.par_chunks(d))
        .for_each(|((out, r), x)| {
            let ss = dot_f32(x, x) / d as f32;
            *r = 1.0 / (ss + eps).sqrt();
            for ((o, xv), gv) in out.iter_mut().zip(x).zip(g) {
                *o = gv * (xv * *r);
            }
        });
}

/// `dx += d rmsnorm`, `dg += sum over rows`.
fn rmsnorm_backward(
    dx: &mut [f32],
    dg: &mut [f32],
    dout: &[f32],
    x: &[f32],
    rstd: &[f32],
    g: &[f32],
    d: usize,
) {
    dx.par_chunks_mut(d)
        .zip(dout.par_chunks(d))
        .zip(x.par_chunks(d))
        .zip(rstd.par_iter())
        .for_each(|(((dx, dout), x), &r)| {
            let mut dot = 0f32;
            for j in 0..d {
                dot += dout[j] * g[j] * x[j] * r;
            }
            let mean = dot / d as f32;
            for j in 0..d {
                dx[j] += r * (dout[j] * g[j] - x[j] * r * mean);
            }
        });
    // The norm weights' gradient, one column per task.
    let n = x.len() / d;
    dg.par_iter_mut().enumerate().for_each(|(j, dgj)| {
        let mut s = 0f32;
        for t in 0..n {
            s += dout[t * d + j] * x[t * d + j] * rstd[t];
        }
        *dgj += s;
    });
}

/// Rotary embedding over rows of `width` (heads of `hs`), at position `t % seq_len`.
fn rope_rows(x: &mut [f32], width: usize, hs: usize, seq_len: usize, theta: f32, inverse: bool) {
    x.par_chunks_mut(width).enumerate().for_each(|(row, v)| {
        let pos = row % seq_len;
        for head in v.chunks_exact_mut(hs) {
            for i in (0..hs).step_by(2) {
                let freq = 1.0 / theta.powf(i as f32 / hs as f32);
                let (mut sin, cos) = (pos as f32 * freq).sin_cos();
                if inverse {
                    sin = -sin;
                }
                let (a, b) = (head[i], head[i + 1]);
                head[i] = a * cos - b * sin;
                head[i + 1] = a * sin + b * cos;
            }
        }
    });
}

impl Params {
    fn forward(&self, batch: &Batch) -> Forward {
        let c = &self.config;
        let (d, h, kv, hs) = (c.dim, c.hidden_dim, c.kv_dim(), c.head_size());
        let (b, t) = (batch.batch, batch.seq_len);
        let n = b * t;
        let nh = c.n_heads;
        let kv_mul = c.n_heads / c.n_kv_heads;
        let p = &self.values;
        let embed = &p[self.at("token_embd.weight")..][..c.vocab_size * d];
        let mut x = vec![0f32; n * d];
        for (row, &tok) in x.chunks_exact_mut(d).zip(&batch.inputs) {
            row.copy_from_slice(&embed[tok as usize * d..][..d]);
        }
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let at = self.layer(l);
            let mut a = LayerActs {
                rstd1: vec![0.0; n],
                xn1: vec![0.0; n * d],
                q: vec![0.0; n * d],
                k: vec![0.0; n * kv],
                v: vec![0.0; n * kv],
                att: vec![0.0; b * nh * t * t],
                ao: vec![0.0; n * d],
                rstd2: vec![0.0; n],
                xn2: vec![0.0; n * d],
                gate: vec![0.0; n * h],
                up: vec![0.0; n * h],
                act: vec![0.0; n * h],
                ..LayerActs::default()
            };
            rmsnorm_forward(
                &mut a.xn1,
                &mut a.rstd1,
                &x,
                &p[at.attn_norm..][..d],
                d,
                c.norm_eps,
            );
            mm(&mut a.q, &a.xn1, &p[at.q..][..d * d], d, d);
            mm(&mut a.k, &a.xn1, &p[at.k..][..kv * d], d, kv);
            mm(&mut a.v, &a.xn1, &p[at.v..][..kv * d], d, kv);
            rope_rows(&mut a.q, d, hs, t, c.rope_theta, false);
            rope_rows(&mut a.k, kv, hs, t, c.rope_theta, false);
            let scale = 1.0 / (hs as f32).sqrt();
            let (q, k, v) = (&a.q, &a.k, &a.v);
            // One sequence per task: attention probabilities and outputs.
            a.att
                .par_chunks_mut(nh * t * t)
                .zip(a.ao.par_chunks_mut(t * d))
                .enumerate()
                .for_each(|(bi, (att, ao))| {
                    for head in 0..nh {
                        let kvh = (head / kv_mul) * hs;
                        for ti in 0..t {
                            let qv = &q[(bi * t + ti) * d + head * hs..][..hs];
                            let row = &mut att[(head * t + ti) * t..][..t];
                            for (u, r) in row.iter_mut().enumerate().take(ti + 1) {
                                *r = dot_f32(qv, &k[(bi * t + u) * kv + kvh..][..hs]) * scale;
                            }
                            crate::model::softmax(&mut row[..=ti]);
                            let out = &mut ao[ti * d + head * hs..][..hs];
                            for u in 0..=ti {
                                let w = row[u];
                                for (o, vv) in
                                    out.iter_mut().zip(&v[(bi * t + u) * kv + kvh..][..hs])
                                {
                                    *o += w * vv;
                                }
                            }
                        }
                    }
                });
            let mut x_mid = vec![0f32; n * d];
            mm(&mut x_mid, &a.ao, &p[at.o..][..d * d], d, d);
            x_mid.iter_mut().zip(&x).for_each(|(m, xv)| *m += xv);
            rmsnorm_forward(
                &mut a.xn2,
                &mut a.rstd2,
                &x_mid,
                &p[at.ffn_norm..][..d],
                d,
                c.norm_eps,
            );
            mm(&mut a.gate, &a.xn2, &p[at.gate..][..h * d], d, h);
            mm(&mut a.up, &a.xn2, &p[at.up..][..h * d], d, h);
            a.act
                .par_iter_mut()
                .zip(a.gate.par_iter().zip(&a.up))
                .for_each(|(s, (g, u))| *s = crate::model::silu(*g) * u);
            let mut x_out = vec![0f32; n * d];
            mm(&mut x_out, &a.act, &p[at.down..][..d * h], h, d);
            x_out.iter_mut().zip(&x_mid).for_each(|(o, m)| *o += m);
            a.x_in = std::mem::replace(&mut x, x_out);
            a.x_mid = x_mid;
            layers.push(a);
        }
        let mut rstdf = vec![0f32; n];
        let mut xnf = vec![0f32; n * d];
        let gf = &p[self.at("output_norm.weight")..][..d];
        rmsnorm_forward(&mut xnf, &mut rstdf, &x, gf, d, c.norm_eps);
        let v = c.vocab_size;
        let mut probs = vec![0f32; n * v];
        mm(&mut probs, &xnf, embed, d, v);
        let losses: Vec<f64> = probs
            .par_chunks_mut(v)
            .zip(batch.targets.par_iter())
            .map(|(row, &target)| {
                crate::model::softmax(row);
                -(row[target as usize].max(1e-30) as f64).ln()
            })
            .collect();
        let loss = losses.iter().sum::<f64>() / n as f64;
        Forward {
            layers,
            x_out: x,
            rstdf,
            xnf,
            probs,
            loss,
        }
    }

    /// The mean cross-entropy of `batch` in nats per token.
    pub fn loss(&self, batch: &Batch) -> f64 {
        self.forward(batch).loss
    }

    /// The loss and the gradient of the mean cross-entropy.
    pub fn loss_and_gradient(&self, batch: &Batch) -> (f64, Vec<f32>) {
        let fw = self.forward(batch);
        let c = &self.config;
        let (d, h, kv, hs) = (c.dim, c.hidden_dim, c.kv_dim(), c.head_size());
        let (b, t) = (batch.batch, batch.seq_len);
        let n = b * t;
        let nh = c.n_heads;
        let kv_mul = c.n_heads / c.n_kv_heads;
        let vocab = c.vocab_size;
        let p = &self.values;
        let mut grad = vec![0f32; p.len()];
        let e_at = self.at("token_embd.weight");
        let gf_at = self.at("output_norm.weight");

        // Cross-entropy and the tied output projection.
        let mut dlogits = fw.probs;
        dlogits
            .par_chunks_mut(vocab)
            .zip(batch.targets.par_iter())
            .for_each(|(row, &target)| {
                row[target as usize] -= 1.0;
                row.iter_mut().for_each(|g| *g /= n as f32);
            });
        let mut dxnf = vec![0f32; n * d];
        mm_back_input(&mut dxnf, &dlogits, &p[e_at..][..vocab * d], d, vocab);
        mm_back_weight(&mut grad[e_at..][..vocab * d], &dlogits, &fw.xnf, d, vocab);
        let mut dx = vec![0f32; n * d];
        rmsnorm_backward(
            &mut dx,
            &mut grad[gf_at..][..d],
            &dxnf,
            &fw.x_out,
            &fw.rstdf,
            &p[gf_at..][..d],
            d,
        );

        for (l, a) in fw.layers.iter().enumerate().rev() {
            let at = self.layer(l);
            // The feed-forward block: x_out = x_mid + down(silu(gate) * up).
            let mut dact = vec![0f32; n * h];
            mm_back_input(&mut dact, &dx, &p[at.down..][..d * h], h, d);
            mm_back_weight(&mut grad[at.down..][..d * h], &dx, &a.act, h, d);
            let mut dgate = vec![0f32; n * h];
            let mut dup = vec![0f32; n * h];
            dgate
                .par_iter_mut()
                .zip(dup.par_iter_mut())
                .enumerate()
                .for_each(|(i, (dg, du))| {
                    let g = a.gate[i];
                    let s = 1.0 / (1.0 + (-g).exp());
                    *du = dact[i] * g * s;
                    *dg = dact[i] * a.up[i] * s * (1.0 + g * (1.0 - s));
                });
            let mut dxn2 = vec![0f32; n * d];
            mm_back_input(&mut dxn2, &dgate, &p[at.gate..][..h * d], d, h);
            mm_back_input(&mut dxn2, &dup, &p[at.up..][..h * d], d, h);
            mm_back_weight(&mut grad[at.gate..][..h * d], &dgate, &a.xn2, d, h);
            mm_back_weight(&mut grad[at.up..][..h * d], &dup, &a.xn2, d, h);
            let mut dx_mid = dx;
            {
                let (left, right) = grad.split_at_mut(at.ffn_norm + d);
                let _ = right;
                rmsnorm_backward(
                    &mut dx_mid,
                    &mut left[at.ffn_norm..],
                    &dxn2,
                    &a.x_mid,
                    &a.rstd2,
                    &p[at.ffn_norm..][..d],
                    d,
                );
            }
            // The attention block: x_mid = x_in + o(attention(q, k, v)).
            let mut dao = vec![0f32; n * d];
            mm_back_input(&mut dao, &dx_mid, &p[at.o..][..d * d], d, d);
            mm_back_weight(&mut grad[at.o..][..d * d], &dx_mid, &a.ao, d, d);
            let mut dq = vec![0f32; n * d];
            let mut dk = vec![0f32; n * kv];
            let mut dv = vec![0f32; n * kv];
            let scale = 1.0 / (hs as f32).sqrt();
            dq.par_chunks_mut(t * d)
                .zip(dk.par_chunks_mut(t * kv))
                .zip(dv.par_chunks_mut(t * kv))
                .enumerate()
                .for_each(|(bi, ((dq, dk), dv))| {
                    let mut dp = vec![0f32; t];
                    for head in 0..nh {
                        let kvh = (head / kv_mul) * hs;
                        for ti in 0..t {
                            let row = &a.att[((bi * nh + head) * t + ti) * t..][..t];
                            let dout = &dao[(bi * t + ti) * d + head * hs..][..hs];
                            let mut sum = 0f32;
                            for u in 0..=ti {
                                let vu = &a.v[(bi * t + u) * kv + kvh..][..hs];
                                dp[u] = dot_f32(dout, vu);
                                sum += row[u] * dp[u];
                                for (g, o) in dv[u * kv + kvh..][..hs].iter_mut().zip(dout) {
                                    *g += row[u] * o;
                                }
                            }
                            let qv = &a.q[(bi * t + ti) * d + head * hs..][..hs];
                            for u in 0..=ti {
                                let ds = row[u] * (dp[u] - sum) * scale;
                                if ds == 0.0 {
                                    continue;
                                }
                                let ku = &a.k[(bi * t + u) * kv + kvh..][..hs];
                                for (g, kval) in dq[ti * d + head * hs..][..hs].iter_mut().zip(ku) {
                                    *g += ds * kval;
                                }
                                for (g, qval) in dk[u * kv + kvh..][..hs].iter_mut().zip(qv) {
                                    *g += ds * qval;
                                }
                            }
                        }
                    }
                });
            rope_rows(&mut dq, d, hs, t, c.rope_theta, true);
            rope_rows(&mut dk, kv, hs, t, c.rope_theta, true);
            let mut dxn1 = vec![0f32; n * d];
            mm_back_input(&mut dxn1, &dq, &p[at.q..][..d * d], d, d);
            mm_back_input(&mut dxn1, &dk, &p[at.k..][..kv * d], d, kv);
            mm_back_input(&mut dxn1, &dv, &p[at.v..][..kv * d], d, kv);
            mm_back_weight(&mut grad[at.q..][..d * d], &dq, &a.xn1, d, d);
            mm_back_weight(&mut grad[at.k..][..kv * d], &dk, &a.xn1, d, kv);
            mm_back_weight(&mut grad[at.v..][..kv * d], &dv, &a.xn1, d, kv);
            let mut dx_in = dx_mid;
            rmsnorm_backward(
                &mut dx_in,
                &mut grad[at.attn_norm..][..d],
                &dxn1,
                &a.x_in,
                &a.rstd1,
                &p[at.attn_norm..][..d],
                d,
            );
            dx = dx_in;
        }
        // The embedding rows the inputs looked up.
        let ge = &mut grad[e_at..][..vocab * d];
        for (row, &tok) in dx.chunks_exact(d).zip(&batch.inputs) {
            for (g, v) in ge[tok as usize * d..][..d].iter_mut().zip(row) {
                *g += v;
            }
        }
        (fw.loss, grad)
    }
}

/// AdamW with a warmup and a cosine decay to a tenth of the peak rate.
pub struct AdamW {
    m: Vec<f32>,
    v: Vec<f32>,
    step: usize,
    mask: Vec<(usize, usize, bool)>,
}

impl AdamW {
    pub fn new(params: &Params) -> AdamW {
        AdamW {
            m: vec![0.0; params.values.len()],
            v: vec![0.0; params.values.len()],
            step: 0,
            mask: params.decay_mask(),
        }
    }

    /// The learning rate at step `step` (0-based).
    pub fn rate(config: &TrainConfig, step: usize) -> f32 {
        let peak = config.learning_rate;
        if step < config.warmup_steps {
            return peak * (step + 1) as f32 / config.warmup_steps as f32;
        }
        let span = (config.steps - config.warmup_steps).max(1) as f32;
        let progress = ((step - config.warmup_steps) as f32 / span).min(1.0);
        let min = peak * 0.1;
        min + 0.5 * (peak - min) * (1.0 + (std::f32::consts::PI * progress).cos())
    }

    /// Clips the gradient to norm 1, then takes one step. Returns the norm before clipping.
    pub fn update(&mut self, params: &mut Params, grad: &[f32], lr: f32, weight_decay: f32) -> f32 {
        let norm = grad
            .iter()
            .map(|g| (*g as f64) * (*g as f64))
            .sum::<f64>()
            .sqrt() as f32;
        let clip = if norm > 1.0 { 1.0 / norm } else { 1.0 };
        self.step += 1;
        let (b1, b2, eps) = (0.9f32, 0.95f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.step as i32);
        let c2 = 1.0 - b2.powi(self.step as i32);
        for &(at, len, decay) in &self.mask {
            let wd = if decay { weight_decay } else { 0.0 };
            let range = at..at + len;
            params.values[range.clone()]
                .par_iter_mut()
                .zip(self.m[range.clone()].par_iter_mut())
                .zip(self.v[range.clone()].par_iter_mut())
                .zip(grad[range].par_iter())
                .with_min_len(1024)
                .for_each(|(((w, m), v), g)| {
                    let g = g * clip;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let update = (*m / c1) / ((*v / c2).sqrt() + eps);
                    *w -= lr * (update + wd * *w);
                });
        }
        norm
    }
}

/// The held-out loss: the mean over `windows`, in nats per byte.
pub fn evaluate(params: &Params, windows: &[Batch]) -> f64 {
    // Windows are scored in batches of 16 for speed; the mean is the same.
    let mut total = 0f64;
    let mut count = 0usize;
    for group in windows.chunks(16) {
        let batch = Batch {
            batch: group.len(),
            seq_len: group[0].seq_len,
            inputs: group
                .iter()
                .flat_map(|w| w.inputs.iter().copied())
                .collect(),
            targets: group
                .iter()
                .flat_map(|w| w.targets.iter().copied())
                .collect(),
        };
        let n = batch.inputs.len();
        total += params.loss(&batch) * n as f64;
        count += n;
    }
    total / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        LlamaConfig {
            dim: 8,
            hidden_dim: 12,
            n_layers: 2,
            n_heads: 2,
            n_kv_heads: 1,
            vocab_size: 258,
            context_length: 8,
            rope_theta: 10000.0,
            norm_eps: 1e-5,
            tied_embeddings: true,
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut params = Params::init(&tiny(), 3);
        // Larger weights than the init, so every path carries signal.
        let mut rng = Rng::new(9);
        params
            .values
            .iter_mut()
            .for_each(|v| *v += rng.normal() * 0.3);
        let text: Vec<u8> = b"pixels all the way down, pixels all the way".to_vec();
        let batch = random_batch(&text, 2, 6, &mut Rng::new(5));
        let (_, grad) = params.loss_and_gradient(&batch);
        let mut checked = 0;
        let mut worst = 0f64;
        for (name, [r, c], at) in params.layout.names.clone() {
            // A few entries of every tensor (embedding rows that the batch uses).
            let len = r * c;
            for k in 0..3 {
                let mut i = at + (k * 7919) % len;
                if name == "token_embd.weight" {
                    i = at + batch.inputs[k] as usize * c + k;
                }
                let eps = 1e-2f32;
                let orig = params.values[i];
                params.values[i] = orig + eps;
                let up = params.loss(&batch);
                params.values[i] = orig - eps;
                let down = params.loss(&batch);
                params.values[i] = orig;
                let numeric = (up - down) / (2.0 * eps as f64);
                let analytic = grad[i] as f64;
                let err = (numeric - analytic).abs() / (numeric.abs() + analytic.abs()).max(1e-3);
                worst = worst.max(err);
                assert!(
                    err < 0.05,
                    "{name}[{}]: numeric {numeric} analytic {analytic}",
                    i - at
                );
                checked += 1;
            }
        }
        assert!(checked >= 3 * 20, "{checked}");
        assert!(worst < 0.05);
    }

    #[test]
    fn loss_falls_when_training_on_a_phrase() {
        let config = TrainConfig {
            model: tiny(),
            batch: 4,
            seq_len: 8,
            steps: 60,
            learning_rate: 1e-2,
            warmup_steps: 5,
            weight_decay: 0.0,
            seed: 1,
            eval_windows: 4,
            eval_every: 60,
        };
        let text = b"pxos pxos pxos pxos pxos pxos pxos pxos pxos pxos ".repeat(4);
        let mut params = Params::init(&config.model, 1);
        let mut opt = AdamW::new(&params);
        let mut rng = Rng::new(2);
        let first = params.loss(&random_batch(&text, 8, 8, &mut Rng::new(99)));
        for step in 0..config.steps {
            let batch = random_batch(&text, config.batch, config.seq_len, &mut rng);
            let (_, grad) = params.loss_and_gradient(&batch);
            opt.update(&mut params, &grad, AdamW::rate(&config, step), 0.0);
        }
        let last = params.loss(&random_batch(&text, 8, 8, &mut Rng::new(99)));
        assert!(last < first * 0.5, "{first} -> {last}");
    }
}

/// What a training run reports as it goes.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub learning_rate: f32,
    pub grad_norm: f32,
    pub tokens_per_second: f64,
    /// Held-out loss, at evaluation steps.
    pub val_loss: Option<f64>,
}

/// What a finished run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    pub config: TrainConfig,
    pub steps: usize,
    pub tokens: u64,
    pub seconds: f64,
    pub final_train_loss: f64,
    /// Held-out loss in nats per byte, and the baselines on the same windows.
    pub val_loss: f64,
    pub baselines: crate::corpus::Baselines,
    pub eval_windows: usize,
    pub train_bytes: u64,
    pub val_bytes: u64,
}

/// Trains from `params` (fresh or loaded) on `corpus`, calling `progress`
/// after every step.
pub fn run(
    config: &TrainConfig,
    mut params: Params,
    corpus: &crate::corpus::Corpus,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Params, TrainReport)> {
    config.validate()?;
    if params.config != config.model {
        return Err(Error::usage(
            "the starting weights have another architecture",
        ));
    }
    if corpus.train.len() <= config.seq_len || corpus.val.len() < config.seq_len {
        return Err(Error::bad_input(format!(
            "the corpus is too small for windows of {} bytes",
            config.seq_len
        )));
    }
    let windows = eval_windows(&corpus.val, config.eval_windows, config.seq_len);
    let baselines = crate::corpus::baselines(&corpus.train, &eval_targets(&windows));
    let mut opt = AdamW::new(&params);
    let mut rng = Rng::new(config.seed);
    let started = std::time::Instant::now();
    let mut last_loss = f64::NAN;
    let mut val_loss = f64::NAN;
    for step in 0..config.steps {
        let step_started = std::time::Instant::now();
        let batch = random_batch(&corpus.train, config.batch, config.seq_len, &mut rng);
        let (loss, grad) = params.loss_and_gradient(&batch);
        if !loss.is_finite() {
            return Err(Error::bad_input(format!(
                "the loss diverged at step {step}; lower the learning rate"
            )));
        }
        let lr = AdamW::rate(config, step);
        let grad_norm = opt.update(&mut params, &grad, lr, config.weight_decay);
        last_loss = loss;
        let eval_now = (step + 1) % config.eval_every == 0 || step + 1 == config.steps;
        let val = eval_now.then(|| evaluate(&params, &windows));
        if let Some(v) = val {
            val_loss = v;
        }
        progress(&Progress {
            step: step + 1,
            steps: config.steps,
            loss,
            learning_rate: lr,
            grad_norm,
            tokens_per_second: (config.batch * config.seq_len) as f64
                / step_started.elapsed().as_secs_f64().max(1e-9),
            val_loss: val,
        });
    }
    let report = TrainReport {
        config: config.clone(),
        steps: config.steps,
        tokens: (config.steps * config.batch * config.seq_len) as u64,
        seconds: started.elapsed().as_secs_f64(),
        final_train_loss: last_loss,
        val_loss,
        baselines,
        eval_windows: windows.len(),
        train_bytes: corpus.train.len() as u64,
        val_bytes: corpus.val.len() as u64,
    };
    Ok((params, report))
}
