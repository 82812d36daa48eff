//! A picture of a model's weights: every tensor as a block of pixels, blue
//! for negative, red for positive, scaled by the tensor's own spread.

use crate::error::{Error, Result};
use crate::format::ModelFile;

/// The widest picture drawn.
const MAX_WIDTH: usize = 2048;
/// A tensor larger than this on a side is averaged down.
const MAX_SIDE: usize = 512;
const GAP: usize = 4;

struct Block {
    w: usize,
    h: usize,
    /// Values already scaled to [-1, 1].
    values: Vec<f32>,
}

fn block(model: &ModelFile, name: &str) -> Result<Block> {
    let view = model.tensor(name)?;
    let values = view.to_f32();
    let (rows, cols) = (view.rows, view.cols);
    // Vectors (norms) are drawn as a strip 4 pixels high.
    let (rows, cols, values) = if rows == 1 {
        (4, cols, values.repeat(4))
    } else {
        (rows, cols, values)
    };
    let fy = rows.div_ceil(MAX_SIDE);
    let fx = cols.div_ceil(MAX_SIDE);
    let (h, w) = (rows.div_ceil(fy), cols.div_ceil(fx));
    let mut out = vec![0f32; w * h];
    let mut count = vec![0u32; w * h];
    for r in 0..rows {
        for c in 0..cols {
            let i = (r / fy) * w + c / fx;
            out[i] += values[r * cols + c];
            count[i] += 1;
        }
    }
    for (v, n) in out.iter_mut().zip(&count) {
        *v /= (*n).max(1) as f32;
    }
    let n = out.len() as f64;
    let mean = out.iter().map(|v| *v as f64).sum::<f64>() / n;
    let std = (out.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    // Norm weights sit around 1: show their deviation from the mean instead.
    let center = if view.rows == 1 { mean as f32 } else { 0.0 };
    let scale = (3.0 * std).max(1e-12) as f32;
    for v in &mut out {
        *v = ((*v - center) / scale).clamp(-1.0, 1.0);
    }
    Ok(Block { w, h, values: out })
}

fn color(v: f32) -> [u8; 3] {
    // Near black at zero, red up, blue down: weights glow by magnitude.
    let m = v.abs().sqrt();
    let hi = (40.0 + 215.0 * m) as u8;
    let lo = (24.0 * (1.0 - m)) as u8;
    if v >= 0.0 {
        [hi, lo + (m * 60.0) as u8, lo]
    } else {
        [lo, lo + (m * 90.0) as u8, hi]
    }
}

/// Renders every tensor in manifest order, packed on shelves, as a plain PNG.
pub fn render(model: &ModelFile) -> Result<Vec<u8>> {
    let blocks = model
        .manifest
        .tensors
        .iter()
        .map(|t| block(model, &t.name))
        .collect::<Result<Vec<_>>>()?;
    // Shelf packing: left to right, a new shelf when the row is full.
    let mut places = Vec::with_capacity(blocks.len());
    let (mut x, mut y, mut shelf, mut width) = (GAP, GAP, 0, 0);
    for b in &blocks {
        if x + b.w + GAP > MAX_WIDTH && x > GAP {
            x = GAP;
            y += shelf + GAP;
            shelf = 0;
        }
        places.push((x, y));
        x += b.w + GAP;
        width = width.max(x);
        shelf = shelf.max(b.h);
    }
    let height = y + shelf + GAP;
    if width == 0 || height > 1 << 16 {
        return Err(Error::bad_input("the model is too large to draw"));
    }
    let mut pixels = vec![12u8; width * height * 3];
    for (b, (px, py)) in blocks.iter().zip(places) {
        for r in 0..b.h {
            for c in 0..b.w {
                let at = ((py + r) * width + px + c) * 3;
                pixels[at..at + 3].copy_from_slice(&color(b.values[r * b.w + c]));
            }
        }
    }
    Ok(pxos_pixel::plain_png(
        width as u32,
        height as u32,
        pxos_pixel::PlainColor::Rgb,
        &pixels,
    ))
}
