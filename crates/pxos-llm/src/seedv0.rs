//! The seed's PixelLM v0 format, read so old seed models still run.
//!
//! A v0 model is a plain RGB PNG plus `NAME.meta.json` beside it. The PNG's
//! bytes, row-major, hold each tensor quantized to uint8 with its own range:
//! `w = q / 255 * (w_max - w_min) + w_min` (lossy; PXI-LLM stores exact
//! bytes). The architecture is the seed's MLP: the mean of the prompt's
//! embeddings, one ReLU layer, and an output layer; its tokenizer maps each
//! code point to `c % 1024` and decodes ids below 128 as ASCII, others as `?`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct Meta {
    model_name: String,
    architecture: MetaArchitecture,
    quantization: String,
    tensors: Vec<MetaTensor>,
}

#[derive(Debug, Deserialize)]
struct MetaArchitecture {
    #[serde(rename = "type")]
    kind: String,
    vocab_size: usize,
    model_dim: usize,
}

#[derive(Debug, Deserialize)]
struct MetaTensor {
    name: String,
    shape: Vec<usize>,
    w_min: f64,
    w_max: f64,
    offset: usize,
    length: usize,
}

/// A loaded v0 model, dequantized to f32.
#[derive(Clone, Debug)]
pub struct SeedV0 {
    pub name: String,
    pub vocab: usize,
    pub dim: usize,
    embed: Vec<f32>,
    hidden: Vec<f32>,
    b_hidden: Vec<f32>,
    out: Vec<f32>,
    b_out: Vec<f32>,
}

/// The state of one v0 generation: the running sum of embeddings.
#[derive(Clone, Debug)]
pub struct V0State {
    sum: Vec<f32>,
    count: usize,
    logits: Vec<f32>,
}

/// The `.meta.json` that belongs to a v0 PNG (`NAME.meta.json` for `NAME.pxi` or `NAME.png`).
pub fn meta_path(png: &Path) -> PathBuf {
    png.with_extension("meta.json")
}

impl SeedV0 {
    /// Loads `png` and the `.meta.json` beside it, checking every field.
    pub fn open(png: &Path) -> Result<SeedV0> {
        let meta_file = meta_path(png);
        let meta_text = pxos_pixel::text::read_input(&meta_file)
            .map_err(|e| Error::from(e).with_path(&meta_file))?;
        let bytes = pxos_pixel::text::read_input(png).map_err(|e| Error::from(e).with_path(png))?;
        SeedV0::from_parts(&bytes, &meta_text).map_err(|e| e.with_path(png))
    }

    pub fn from_parts(png: &[u8], meta_json: &[u8]) -> Result<SeedV0> {
        let meta: Meta = serde_json::from_slice(meta_json)
            .map_err(|e| Error::bad_input(format!("v0 meta.json: {e}")))?;
        if meta.quantization != "uint8_per_tensor" || meta.architecture.kind != "mlp" {
            return Err(Error::bad_input(format!(
                "v0 meta.json: quantization {:?} / architecture {:?} (expected uint8_per_tensor / mlp)",
                meta.quantization, meta.architecture.kind
            )));
        }
        let (vocab, dim) = (meta.architecture.vocab_size, meta.architecture.model_dim);
        if vocab == 0 || dim == 0 || vocab > 1 << 20 || dim > 1 << 14 {
            return Err(Error::bad_input(format!(
                "v0 meta.json: vocab {vocab} and dim {dim} out of range"
            )));
        }
        let data = decode_rgb(png)?;
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = meta
                .tensors
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::bad_input(format!("v0 meta.json has no tensor {name:?}")))?;
            if t.shape != shape || t.length != shape.iter().product::<usize>() {
                return Err(Error::bad_input(format!(
                    "v0 tensor {name:?} has shape {:?} and length {}; the MLP needs {shape:?}",
                    t.shape, t.length
                )));
            }
            let end = t
                .offset
                .checked_add(t.length)
                .filter(|e| *e <= data.len())
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "v0 tensor {name:?} runs past the image's {} bytes",
                        data.len()
                    ))
                })?;
            if !(t.w_min.is_finite() && t.w_max.is_finite() && t.w_max >= t.w_min) {
                return Err(Error::bad_input(format!(
                    "v0 tensor {name:?} has a bad range"
                )));
            }
            let span = (t.w_max - t.w_min) as f32;
            Ok(data[t.offset..end]
                .iter()
                .map(|&q| {
                    if span == 0.0 {
                        t.w_min as f32
                    } else {
                        q as f32 / 255.0 * span + t.w_min as f32
                    }
                })
                .collect())
        };
        Ok(SeedV0 {
            name: meta.model_name.clone(),
            embed: tensor("embed", &[vocab, dim])?,
            hidden: tensor("hidden", &[dim, dim])?,
            b_hidden: tensor("b_hidden", &[dim])?,
            out: tensor("out", &[dim, vocab])?,
            b_out: tensor("b_out", &[vocab])?,
            vocab,
            dim,
        })
    }

    pub fn state(&self) -> V0State {
        V0State {
            sum: vec![0.0; self.dim],
            count: 0,
            logits: vec![0.0; self.vocab],
        }
    }

    /// Adds a token to the pooled input and returns the next-token logits.
    pub fn forward<'s>(&self, state: &'s mut V0State, token: u32) -> Result<&'s [f32]> {
        let t = token as usize;
        if t >= self.vocab {
            return Err(Error::bad_input(format!(
                "token {token} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        for (s, e) in state
            .sum
            .iter_mut()
            .zip(&self.embed[t * self.dim..(t + 1) * self.dim])
        {
            *s += e;
        }
        state.count += 1;
        let x: Vec<f32> = state.sum.iter().map(|s| s / state.count as f32).collect();
        // x @ hidden: hidden is [in, out].
        let mut h = self.b_hidden.clone();
        for (i, xv) in x.iter().enumerate() {
            for (hv, w) in h
                .iter_mut()
                .zip(&self.hidden[i * self.dim..(i + 1) * self.dim])
            {
                *hv += xv * w;
            }
        }
        h.iter_mut().for_each(|v| *v = v.max(0.0));
        state.logits.copy_from_slice(&self.b_out);
        for (i, hv) in h.iter().enumerate() {
            for (l, w) in state
                .logits
                .iter_mut()
                .zip(&self.out[i * self.vocab..(i + 1) * self.vocab])
            {
                *l += hv * w;
            }
        }
        Ok(&state.logits)
    }
}

fn decode_rgb(png: &[u8]) -> Result<Vec<u8>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| Error::bad_input(format!("v0 image: {e}")))?;
    let info = reader.info();
    let pixels = info.width as u64 * info.height as u64;
    if pixels > 1 << 28 {
        return Err(Error::bad_input(format!(
            "v0 image of {pixels} pixels is too large"
        )));
    }
    let mut buf = vec![
        0u8;
        reader
            .output_buffer_size()
            .ok_or_else(|| Error::bad_input("v0 image too large"))?
    ];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::bad_input(format!("v0 image: {e}")))?;
    buf.truncate(frame.buffer_size());
    // The seed's bytes are the RGB channels; drop alpha, expand grey.
    Ok(match frame.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        png::ColorType::Indexed => {
            return Err(Error::bad_input(
                "v0 image: palette images are not supported",
            ));
        }
    })
}

/// Writes tensors in the seed's v0 format, as the seed's `model_to_pixels.py`
/// did: tensors sorted by name, each quantized to uint8 over its own range,
/// concatenated, zero-padded to whole RGB pixels in a near-square image.
/// Returns the PNG and the meta.json. (Used by tests, and to hand a model
/// back to the seed's tools.)
pub fn write_seed_format(
    name: &str,
    vocab: usize,
    dim: usize,
    tensors: &[(&str, Vec<usize>, Vec<f32>)],
) -> (Vec<u8>, String) {
    let mut sorted: Vec<_> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut bytes = Vec::new();
    let mut entries = Vec::new();
    for (tname, shape, values) in sorted {
        let min = values.iter().copied().fold(f32::INFINITY, f32::min);
        let mut max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == min {
            max = min + 1e-6;
        }
        let offset = bytes.len();
        bytes.extend(values.iter().map(|v| {
            (((v - min) / (max - min)) * 255.0)
                .round_ties_even()
                .clamp(0.0, 255.0) as u8
        }));
        entries.push(
            serde_json::json!({"name": tname, "shape": shape, "dtype": "float32",
            "w_min": min as f64, "w_max": max as f64, "offset": offset, "length": values.len()}),
        );
    }
    let total = bytes.len();
    bytes.resize(total.div_ceil(3) * 3, 0);
    let pixels = bytes.len() / 3;
    let width = (pixels as f64).sqrt().ceil().max(1.0) as usize;
    let height = pixels.div_ceil(width);
    bytes.resize(width * height * 3, 0);
    let png = pxos_pixel::plain_png(
        width as u32,
        height as u32,
        pxos_pixel::PlainColor::Rgb,
        &bytes,
    );
    let meta = serde_json::json!({"model_name": name, "version": "0.0.1",
        "architecture": {"type": "mlp", "vocab_size": vocab, "model_dim": dim, "layers": ["embed", "hidden", "out"]},
        "image_width": width, "image_height": height, "total_bytes": total.div_ceil(3) * 3,
        "total_params": total, "quantization": "uint8_per_tensor", "tensors": entries});
    (png, meta.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Tensors = Vec<(&'static str, Vec<usize>, Vec<f32>)>;

    fn tiny() -> (Vec<u8>, String, Tensors) {
        let (v, d) = (1024, 8);
        let values = |n: usize, k: f32| {
            (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * k)
                .collect::<Vec<f32>>()
        };
        let tensors = vec![
            ("embed", vec![v, d], values(v * d, 0.004)),
            ("hidden", vec![d, d], values(d * d, 0.01)),
            ("b_hidden", vec![d], vec![0.0; d]),
            ("out", vec![d, v], values(d * v, 0.012)),
            ("b_out", vec![v], vec![0.0; v]),
        ];
        let (png, meta) = write_seed_format("pixellm_v0", v, d, &tensors);
        (png, meta, tensors)
    }

    #[test]
    fn a_seed_model_runs_with_the_seeds_arithmetic() {
        let (png, meta, tensors) = tiny();
        let model = SeedV0::from_parts(&png, meta.as_bytes()).unwrap();
        // Dequantized weights are within half a step of the originals.
        let (_, _, embed) = &tensors[0];
        let step = (embed.iter().cloned().fold(f32::MIN, f32::max)
            - embed.iter().cloned().fold(f32::MAX, f32::min))
            / 255.0;
        assert!(
            model
                .embed
                .iter()
                .zip(embed)
                .all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6)
        );
        // "hello pixels" is 12 tokens, code points mod 1024.
        let tok = crate::tokenizer::Tokenizer::seed_v0(1024);
        assert_eq!(
            tok.encode("hello pixels"),
            [104, 101, 108, 108, 111, 32, 112, 105, 120, 101, 108, 115]
        );
        // The forward pass: mean embedding, ReLU layer, output layer.
        let mut state = model.state();
        let mut logits = Vec::new();
        for t in tok.encode("pxOS") {
            logits = model.forward(&mut state, t).unwrap().to_vec();
        }
        let ids = tok.encode("pxOS");
        let mean: Vec<f32> = (0..8)
            .map(|j| {
                ids.iter()
                    .map(|&t| model.embed[t as usize * 8 + j])
                    .sum::<f32>()
                    / 4.0
            })
            .collect();
        let h: Vec<f32> = (0..8)
            .map(|o| {
                (0..8)
                    .map(|i| mean[i] * model.hidden[i * 8 + o])
                    .sum::<f32>()
                    .max(0.0)
            })
            .collect();
        let expect: Vec<f32> = (0..1024)
            .map(|o| (0..8).map(|i| h[i] * model.out[i * 1024 + o]).sum::<f32>())
            .collect();
        for (a, b) in logits.iter().zip(&expect) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn broken_seed_files_are_refused() {
        let (png, meta, _) = tiny();
        let mut m: serde_json::Value = serde_json::from_str(&meta).unwrap();
        m["tensors"][2]["offset"] = serde_json::json!(usize::MAX);
        assert!(
            SeedV0::from_parts(&png, m.to_string().as_bytes())
                .unwrap_err()
                .to_string()
                .contains("runs past")
        );
        let mut m: serde_json::Value = serde_json::from_str(&meta).unwrap();
        m["tensors"][0]["shape"] = serde_json::json!([3, 3]);
        assert!(SeedV0::from_parts(&png, m.to_string().as_bytes()).is_err());
        assert!(SeedV0::from_parts(&png[..100], meta.as_bytes()).is_err());
        assert!(SeedV0::from_parts(&png, b"{").is_err());
    }
}
