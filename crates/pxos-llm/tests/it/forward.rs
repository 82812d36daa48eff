//! The engine against a plain scalar reference, for f32 and every quantized type.

use pxos_llm::model::Llama;
use pxos_llm::train::{Batch, Params};
use pxos_llm::{DType, ModelFile};
use std::sync::Arc;

use crate::{fits, model_with, params_model, small_config, trained_params_config};

/// The forward pass written as plainly as possible: every weight dequantized
/// to f64 (and, for q8_0 models, each product's input rounded to q8_0 blocks), loops in the obvious order, no cache tricks (all positions recomputed).
fn reference_logits(model: &ModelFile, tokens: &[u32]) -> Vec<Vec<f64>> {
    let c = model.manifest.llama().clone();
    let w = |name: &str| -> Vec<f64> {
        model
            .tensor(name)
            .unwrap()
            .to_f32()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let (d, hs, kvd) = (c.dim, c.head_size(), c.kv_dim());
    let matvec = |m: &[f64], x: &[f64], rows: usize| -> Vec<f64> {
        (0..rows)
            .map(|r| (0..x.len()).map(|i| m[r * x.len() + i] * x[i]).sum())
            .collect()
    };
    let norm = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + c.norm_eps as f64).sqrt();
        x.iter().zip(g).map(|(v, g)| v * s * g).collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for head in v.chunks_mut(hs) {
            for i in (0..hs).step_by(2) {
                let freq = 1.0 / (c.rope_theta as f64).powf(i as f64 / hs as f64);
                let a = pos as f64 * freq;
                let (x0, x1) = (head[i], head[i + 1]);
                head[i] = x0 * a.cos() - x1 * a.sin();
                head[i + 1] = x0 * a.sin() + x1 * a.cos();
            }
        }
    };
    let embed = w("token_embd.weight");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| embed[t as usize * d..][..d].to_vec())
        .collect();
    for l in 0..c.n_layers {
        let n = |s: &str| w(&format!("blk.{l}.{s}.weight"));
        let (wq, wk, wv, wo) = (n("attn_q"), n("attn_k"), n("attn_v"), n("attn_output"));
        let (g1, g2) = (n("attn_norm"), n("ffn_norm"));
        let (gate, up, down) = (n("ffn_gate"), n("ffn_up"), n("ffn_down"));
        let hn: Vec<Vec<f64>> = xs.iter().map(|x| norm(x, &g1)).collect();
        let mut qs: Vec<Vec<f64>> = hn.iter().map(|h| matvec(&wq, h, d)).collect();
        let mut ks: Vec<Vec<f64>> = hn.iter().map(|h| matvec(&wk, h, kvd)).collect();
        let vs: Vec<Vec<f64>> = hn.iter().map(|h| matvec(&wv, h, kvd)).collect();
        for (pos, (q, k)) in qs.iter_mut().zip(ks.iter_mut()).enumerate() {
            rope(q, pos);
            rope(k, pos);
        }
        for t in 0..xs.len() {
            let mut att_out = vec![0f64; d];
            for h in 0..c.n_heads {
                let kvh = h / (c.n_heads / c.n_kv_heads);
                let scores: Vec<f64> = (0..=t)
                    .map(|u| {
                        (0..hs)
                            .map(|i| qs[t][h * hs + i] * ks[u][kvh * hs + i])
                            .sum::<f64>()
                            / (hs as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for u in 0..=t {
                    for i in 0..hs {
                        att_out[h * hs + i] += exps[u] / sum * vs[u][kvh * hs + i];
                    }
                }
            }
            let o = matvec(&wo, &att_out, d);
            xs[t].iter_mut().zip(o).for_each(|(x, o)| *x += o);
            let h2 = norm(&xs[t], &g2);
            let g = matvec(&gate, &h2, c.hidden_dim);
            let u = matvec(&up, &h2, c.hidden_dim);
            let act: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let f = matvec(&down, &act, d);
            xs[t].iter_mut().zip(f).for_each(|(x, f)| *x += f);
        }
    }
    let gf = w("output_norm.weight");
    let out = if c.tied_embeddings {
        embed.clone()
    } else {
        w("output.weight")
    };
    xs.iter()
        .map(|x| matvec(&out, &norm(x, &gf), c.vocab_size))
        .collect()
}

fn engine_logits(model: ModelFile, tokens: &[u32]) -> Vec<Vec<f32>> {
    let llama = Llama::new(Arc::new(model)).unwrap();
    let mut state = llama.state();
    tokens
        .iter()
        .map(|&t| llama.forward(&mut state, t).unwrap().to_vec())
        .collect()
}

#[test]
fn the_engine_matches_the_scalar_reference_for_every_dtype() {
    let config = small_config();
    let tokens: Vec<u32> = [256u32]
        .into_iter()
        .chain(b"pixels all the way down".iter().map(|&b| b as u32))
        .collect();
    // Tolerances: the engine runs in f32 (f64 in the reference) on the same stored weights.
    // The k-quants' 256-wide blocks do not fit this small model; the GGUF
    // import tests check them against numpy (crates/pxos-cli/tests/it/gguf.rs).
    for dtype in DType::ALL.into_iter().filter(|d| fits(&config, *d)) {
        let model = model_with(&config, dtype, 11);
        let expected = reference_logits(&model, &tokens);
        let got = engine_logits(model, &tokens);
        let mut worst = 0f64;
        for (e, g) in expected.iter().zip(&got) {
            for (a, b) in e.iter().zip(g) {
                worst = worst.max((a - *b as f64).abs());
            }
        }
        let scale = expected.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
        // q8_0 and q4_0 products round their input to int8 blocks; the reference rounds
        // its f64 input, which sits a hair away from the engine's f32 one, so
        // a value on a rounding boundary may land one step apart. The kernel
        // itself is checked exactly in `dtype::tests`.
        let tolerance = if dtype.reads_q8_input() { 2e-2 } else { 1e-4 };
        assert!(
            worst < tolerance * scale.max(1.0),
            "{dtype}: max abs error {worst} (logit scale {scale})"
        );
    }
}

#[test]
fn quantized_engines_stay_close_to_f32() {
    let config = small_config();
    let tokens: Vec<u32> = [256u32]
        .into_iter()
        .chain(b"the kernel boots".iter().map(|&b| b as u32))
        .collect();
    let base = engine_logits(model_with(&config, DType::F32, 13), &tokens);
    for (dtype, bound) in [
        (DType::F16, 0.002),
        (DType::Bf16, 0.02),
        (DType::Q8_0, 0.02),
        (DType::Q4_1, 0.3),
        (DType::Q4_0, 0.3),
    ] {
        let got = engine_logits(model_with(&config, dtype, 13), &tokens);
        let (mut err, mut norm) = (0f64, 0f64);
        for (a, b) in base.iter().flatten().zip(got.iter().flatten()) {
            err += ((a - b) as f64).powi(2);
            norm += (*a as f64).powi(2);
        }
        let rel = (err / norm).sqrt();
        eprintln!("{dtype}: relative logit error {rel:.4}");
        assert!(rel < bound, "{dtype}: relative logit error {rel}");
    }
}

#[test]
fn training_and_inference_compute_the_same_loss() {
    let params = Params::init(&trained_params_config(), 21);
    let text = b"Every file is stored losslessly as pixels.";
    let seq = 24;
    let inputs: Vec<u32> = [256]
        .into_iter()
        .chain(text[..seq - 1].iter().map(|&b| b as u32))
        .collect();
    let targets: Vec<u32> = text[..seq].iter().map(|&b| b as u32).collect();
    let batch = Batch {
        batch: 1,
        seq_len: seq,
        inputs: inputs.clone(),
        targets: targets.clone(),
    };
    let train_loss = params.loss(&batch);
    let logits = engine_logits(params_model(&params), &inputs);
    let mut loss = 0f64;
    for (row, &t) in logits.iter().zip(&targets) {
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let sum: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
        loss -= row[t as usize] as f64 - max - sum.ln();
    }
    loss /= seq as f64;
    assert!(
        (loss - train_loss).abs() < 1e-4,
        "inference {loss} vs training {train_loss}"
    );
}
