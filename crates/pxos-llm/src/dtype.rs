//! Tensor element types: their byte layouts, conversions and dot products.
//!
//! The block-quantized types use GGUF's block layouts byte for byte
//! (`docs/formats/pxi-llm.md`), so an imported model keeps its bytes:
//!
//! | type | block | bytes | layout |
//! |---|---|---|---|
//! | `q8_0` | 32 | 34 | `f16 d; i8 qs[32]`, `x = qs[j] * d` |
//! | `q4_0` | 32 | 18 | `f16 d; u8 qs[16]`, `x[j] = (lo(qs[j]) - 8) * d`, `x[j+16] = (hi(qs[j]) - 8) * d` |
//! | `q4_1` | 32 | 20 | `f16 d, m; u8 qs[16]`, `x[j] = lo(qs[j]) * d + m`, `x[j+16] = hi(qs[j]) * d + m` |
//! | `q4_k` | 256 | 144 | `f16 d, dmin; u8 scales[12]; u8 qs[128]`: 8 sub-blocks of 32 with 6-bit scale and min |
//! | `q6_k` | 256 | 210 | `u8 ql[128], qh[64]; i8 scales[16]; f16 d`: 16 sub-blocks of 16, 6-bit values |
//!
//! Every reduction here adds in a fixed order (fixed lanes, then the lanes in
//! order), so a result does not depend on the thread count.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Elements in one quantization block.
pub const QK: usize = 32;
/// Elements in one k-quant super-block.
pub const QK_K: usize = 256;

/// The element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    #[serde(rename = "q4_k")]
    Q4K,
    #[serde(rename = "q6_k")]
    Q6K,
}

impl DType {
    /// Every type, in the order the format lists them.
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F16,
        DType::Bf16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q4K,
        DType::Q6K,
    ];

    /// The name used in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q4K => "q4_k",
            DType::Q6K => "q6_k",
        }
    }

    /// Parses a name as [`DType::name`] writes it.
    pub fn parse(name: &str) -> Result<DType> {
        DType::ALL
            .into_iter()
            .find(|dtype| dtype.name() == name)
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "unknown dtype {name:?} (known: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k)"
                ))
            })
    }

    /// Elements per block (1 for the plain types).
    pub fn block_elems(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::Bf16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 => QK,
            DType::Q4K | DType::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q4K => 144,
            DType::Q6K => 210,
        }
    }

    /// Whether products with this type's rows use the input quantized to
    /// q8_0 (integer block sums, as llama.cpp multiplies q8_0 and q4_0).
    pub fn reads_q8_input(self) -> bool {
        matches!(self, DType::Q8_0 | DType::Q4_0)
    }

    /// Whether this is a block-quantized type.
    pub fn is_quantized(self) -> bool {
        self.block_elems() > 1
    }

    /// Bytes of a row of `cols` elements, or an error when `cols` is not a
    /// whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Result<usize> {
        if !cols.is_multiple_of(self.block_elems()) {
            return Err(Error::bad_input(format!(
                "a {} row must hold a multiple of {} elements, not {cols}",
                self.name(),
                self.block_elems()
            )));
        }
        (cols / self.block_elems())
            .checked_mul(self.block_bytes())
            .ok_or_else(|| Error::bad_input(format!("a row of {cols} elements overflows")))
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[inline]
fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// IEEE binary16 to binary32, exactly, in plain inlinable code (the `half`
/// crate checks the CPU for F16C on every call, which cost 14% of a q8_0
/// token step).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        // Zero and subnormals: man * 2^-24, exact in f32.
        0 => {
            let magnitude = man as f32 * (1.0 / 16_777_216.0);
            f32::from_bits(sign | magnitude.to_bits())
        }
        31 => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// Converts one row of f32 values into `dtype`'s bytes (explicit and lossy
/// for every type but f32).
pub fn quantize_row(dtype: DType, values: &[f32], out: &mut Vec<u8>) {
    match dtype {
        DType::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        DType::Bf16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        DType::Q8_0 => {
            for block in values.chunks_exact(QK) {
                let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        DType::Q4_0 => {
            for block in values.chunks_exact(QK) {
                // The value with the largest magnitude, keeping its sign.
                let max = block
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i8).clamp(0, 15) as u8;
                for j in 0..QK / 2 {
                    out.push(q(block[j]) | (q(block[j + QK / 2]) << 4));
                }
            }
        }
        DType::Q4_1 => {
            for block in values.chunks_exact(QK) {
                let min = block.iter().copied().fold(f32::INFINITY, f32::min);
                let max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i8).clamp(0, 15) as u8;
                for j in 0..QK / 2 {
                    out.push(q(block[j]) | (q(block[j + QK / 2]) << 4));
                }
            }
        }
        DType::Q4K => values
            .chunks_exact(QK_K)
            .for_each(|b| quantize_q4_k(b.try_into().expect("a whole block"), out)),
        DType::Q6K => values
            .chunks_exact(QK_K)
            .for_each(|b| quantize_q6_k(b.try_into().expect("a whole block"), out)),
    }
}

/// A plain q4_k quantizer: each sub-block of 32 takes `scale = (max - min) / 15`
/// and `min`, both rounded to 6 bits against the super-block's `d` and
/// `dmin`. (ggml's own quantizer searches for better scales; any valid
/// block decodes the same way, and imported blocks are kept as they are.)
fn quantize_q4_k(x: &[f32; QK_K], out: &mut Vec<u8>) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        let min = sub.iter().copied().fold(0f32, f32::min);
        let max = sub.iter().copied().fold(0f32, f32::max);
        scales[j] = (max - min) / 15.0;
        mins[j] = -min;
    }
    let d = scales.iter().copied().fold(0f32, f32::max) / 63.0;
    let dmin = mins.iter().copied().fold(0f32, f32::max) / 63.0;
    let d = f16::from_f32(d);
    let dmin = f16::from_f32(dmin);
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    let six = |v: f32, by: f32| {
        if by > 0.0 {
            (v / by).round().clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    let sc: [u8; 8] = std::array::from_fn(|j| six(scales[j], df));
    let m: [u8; 8] = std::array::from_fn(|j| six(mins[j], dminf));
    out.extend_from_slice(&d.to_le_bytes());
    out.extend_from_slice(&dmin.to_le_bytes());
    let mut packed = [0u8; 12];
    for j in 0..4 {
        packed[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        packed[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        packed[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
    out.extend_from_slice(&packed);
    let mut q = [0u8; QK_K];
    for (i, v) in x.iter().enumerate() {
        let j = i / 32;
        let step = df * f32::from(sc[j]);
        let offset = dminf * f32::from(m[j]);
        q[i] = if step > 0.0 {
            ((v + offset) / step).round().clamp(0.0, 15.0) as u8
        } else {
            0
        };
    }
    for chunk in q.chunks_exact(64) {
        for l in 0..32 {
            out.push(chunk[l] | (chunk[l + 32] << 4));
        }
    }
}

/// A plain q6_k quantizer: each sub-block of 16 takes `scale = max|x| / 31`,
/// rounded to an int8 multiple of the super-block's `d`.
fn quantize_q6_k(x: &[f32; QK_K], out: &mut Vec<u8>) {
    let scales: [f32; 16] = std::array::from_fn(|j| {
        x[j * 16..(j + 1) * 16]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()))
            / 31.0
    });
    let d = f16::from_f32(scales.iter().copied().fold(0f32, f32::max) / 127.0);
    let df = d.to_f32();
    let sc: [i8; 16] = std::array::from_fn(|j| {
        if df > 0.0 {
            (scales[j] / df).round().clamp(-128.0, 127.0) as i8
        } else {
            0
        }
    });
    let mut q = [0u8; QK_K];
    for (i, v) in x.iter().enumerate() {
        let step = df * f32::from(sc[i / 16]);
        let level = if step != 0.0 {
            (v / step).round().clamp(-32.0, 31.0)
        } else {
            0.0
        };
        q[i] = (level as i32 + 32) as u8;
    }
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for n in 0..2 {
        let l6 = &q[n * 128..(n + 1) * 128];
        for l in 0..32 {
            let (q1, q2, q3, q4) = (l6[l], l6[l + 32], l6[l + 64], l6[l + 96]);
            ql[n * 64 + l] = (q1 & 0x0F) | ((q3 & 0x0F) << 4);
            ql[n * 64 + l + 32] = (q2 & 0x0F) | ((q4 & 0x0F) << 4);
            qh[n * 32 + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
    out.extend_from_slice(&ql);
    out.extend_from_slice(&qh);
    out.extend(sc.iter().map(|&s| s as u8));
    out.extend_from_slice(&d.to_le_bytes());
}

/// The `(scale, min)` of q4_k sub-block `j` from its 12 packed bytes.
#[inline]
fn q4_k_scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Decodes one q4_k block (144 bytes) into 256 values.
#[inline]
pub fn dequantize_q4_k(block: &[u8], y: &mut [f32; QK_K]) {
    let d = half_at(block, 0);
    let dmin = half_at(block, 2);
    let scales = &block[4..16];
    let qs = &block[16..144];
    for c in 0..4 {
        let (sc1, m1) = q4_k_scale_min(2 * c, scales);
        let (sc2, m2) = q4_k_scale_min(2 * c + 1, scales);
        let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
        let (d2, min2) = (d * f32::from(sc2), dmin * f32::from(m2));
        let q = &qs[c * 32..(c + 1) * 32];
        let out = &mut y[c * 64..(c + 1) * 64];
        for l in 0..32 {
            out[l] = d1 * f32::from(q[l] & 0x0F) - min1;
            out[l + 32] = d2 * f32::from(q[l] >> 4) - min2;
        }
    }
}

/// Decodes one q6_k block (210 bytes) into 256 values.
#[inline]
pub fn dequantize_q6_k(block: &[u8], y: &mut [f32; QK_K]) {
    let ql = &block[0..128];
    let qh = &block[128..192];
    let sc = &block[192..208];
    let d = half_at(block, 208);
    for n in 0..2 {
        let (ql, qh, sc) = (&ql[n * 64..], &qh[n * 32..], &sc[n * 8..]);
        let out = &mut y[n * 128..(n + 1) * 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| d * f32::from(sc[is + k] as i8);
            out[l] = s(0) * q1 as f32;
            out[l + 32] = s(2) * q2 as f32;
            out[l + 64] = s(4) * q3 as f32;
            out[l + 96] = s(6) * q4 as f32;
        }
    }
}

/// Converts one row of `dtype`'s bytes back to f32 values (appending to `out`).
/// `bytes` must be a whole number of blocks.
pub fn dequantize_row(dtype: DType, bytes: &[u8], out: &mut Vec<f32>) {
    match dtype {
        DType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        DType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        DType::Bf16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        DType::Q8_0 => {
            for block in bytes.chunks_exact(34) {
                let d = half_at(block, 0);
                out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        DType::Q4_0 => {
            for block in bytes.chunks_exact(18) {
                let d = half_at(block, 0);
                let qs = &block[2..];
                out.extend(qs.iter().map(|q| ((q & 0x0F) as i32 - 8) as f32 * d));
                out.extend(qs.iter().map(|q| ((q >> 4) as i32 - 8) as f32 * d));
            }
        }
        DType::Q4_1 => {
            for block in bytes.chunks_exact(20) {
                let d = half_at(block, 0);
                let m = half_at(block, 2);
                let qs = &block[4..];
                out.extend(qs.iter().map(|q| (q & 0x0F) as f32 * d + m));
                out.extend(qs.iter().map(|q| (q >> 4) as f32 * d + m));
            }
        }
        DType::Q4K | DType::Q6K => {
            let mut y = [0f32; QK_K];
            for block in bytes.chunks_exact(dtype.block_bytes()) {
                if dtype == DType::Q4K {
                    dequantize_q4_k(block, &mut y);
                } else {
                    dequantize_q6_k(block, &mut y);
                }
                out.extend_from_slice(&y);
            }
        }
    }
}

const LANES: usize = 16;

/// `sum(a[i] * b[i])` in 16 lanes, then the lanes in order: vectorizable,
/// and the same result however the caller splits its work.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (ca, cb) in (&mut a_chunks).zip(&mut b_chunks) {
        let ca: &[f32; LANES] = ca.try_into().expect("a whole chunk");
        let cb: &[f32; LANES] = cb.try_into().expect("a whole chunk");
        for i in 0..LANES {
            lanes[i] += ca[i] * cb[i];
        }
    }
    let mut sum = 0f32;
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        sum += x * y;
    }
    lanes.iter().sum::<f32>() + sum
}

/// The dot product of a stored row (`dtype`'s bytes) with `x`.
///
/// `row` is `dtype.row_bytes(x.len())` bytes. For f32 rows the bytes must be
/// 4-aligned and for f16/bf16 2-aligned, which the PXI-LLM layout guarantees
/// (64-byte aligned tensors in an aligned buffer); other rows fall back to an
/// unaligned read.
#[inline]
pub fn dot_row(dtype: DType, row: &[u8], x: &[f32]) -> f32 {
    match dtype {
        DType::F32 => match bytemuck::try_cast_slice::<u8, f32>(row) {
            Ok(w) => dot_f32(w, x),
            Err(_) => {
                let mut w = Vec::with_capacity(x.len());
                dequantize_row(dtype, row, &mut w);
                dot_f32(&w, x)
            }
        },
        DType::F16 => dot_half(row, x, f16_to_f32),
        DType::Bf16 => dot_half(row, x, |bits| f32::from_bits((bits as u32) << 16)),
        DType::Q8_0 => {
            let mut sum = 0f32;
            for (block, xs) in row.chunks_exact(34).zip(x.chunks_exact(QK)) {
                let d = half_at(block, 0);
                let mut lanes = [0f32; LANES];
                for half in 0..2 {
                    let qs = &block[2 + half * LANES..2 + (half + 1) * LANES];
                    let xh = &xs[half * LANES..(half + 1) * LANES];
                    for i in 0..LANES {
                        lanes[i] += (qs[i] as i8) as f32 * xh[i];
                    }
                }
                sum += d * lanes.iter().sum::<f32>();
            }
            sum
        }
        DType::Q4_0 => {
            let mut sum = 0f32;
            for (block, xs) in row.chunks_exact(18).zip(x.chunks_exact(QK)) {
                let d = half_at(block, 0);
                let qs = &block[2..18];
                let mut lanes = [0f32; LANES];
                for i in 0..LANES {
                    lanes[i] += ((qs[i] & 0x0F) as i32 - 8) as f32 * xs[i]
                        + ((qs[i] >> 4) as i32 - 8) as f32 * xs[i + LANES];
                }
                sum += d * lanes.iter().sum::<f32>();
            }
            sum
        }
        DType::Q4_1 => {
            let mut sum = 0f32;
            for (block, xs) in row.chunks_exact(20).zip(x.chunks_exact(QK)) {
                let d = half_at(block, 0);
                let m = half_at(block, 2);
                let qs = &block[4..20];
                let mut lanes = [0f32; LANES];
                let mut xsum = [0f32; LANES];
                for i in 0..LANES {
                    lanes[i] += (qs[i] & 0x0F) as f32 * xs[i] + (qs[i] >> 4) as f32 * xs[i + LANES];
                    xsum[i] += xs[i] + xs[i + LANES];
                }
                sum += d * lanes.iter().sum::<f32>() + m * xsum.iter().sum::<f32>();
            }
            sum
        }
        DType::Q4K => dot_k(row, x, 144, dequantize_q4_k),
        DType::Q6K => dot_k(row, x, 210, dequantize_q6_k),
    }
}

/// A row of k-quant super-blocks against `x`: each block decoded on the stack
/// (256 values, in L1), then the 16-lane product.
#[inline]
fn dot_k(row: &[u8], x: &[f32], block_bytes: usize, decode: fn(&[u8], &mut [f32; QK_K])) -> f32 {
    let mut y = [0f32; QK_K];
    let mut sum = 0f32;
    for (block, xs) in row.chunks_exact(block_bytes).zip(x.chunks_exact(QK_K)) {
        decode(block, &mut y);
        sum += dot_f32(&y, xs);
    }
    sum
}

/// An input vector prepared for every kernel: as f32, and, when q8_0
/// weights will read it, quantized to q8_0 blocks too. A q8_0 product
/// multiplies the weights' int8 values by the input's (exact integer sums),
/// then scales each block by both `d`s: llama.cpp's q8_0 x q8_0 arithmetic.
#[derive(Clone, Debug)]
pub struct Input {
    pub x: Vec<f32>,
    q8: Vec<u8>,
    /// The q8_0 values widened to i16 once, and each block's `d`, so a row
    /// product widens only the weights.
    q8_wide: Vec<i16>,
    q8_d: Vec<f32>,
}

impl Input {
    pub fn new(x: &[f32], with_q8: bool) -> Input {
        let mut q8 = Vec::new();
        if with_q8 && x.len().is_multiple_of(QK) {
            quantize_row(DType::Q8_0, x, &mut q8);
        }
        let q8_d = q8.chunks_exact(34).map(|b| half_at(b, 0)).collect();
        let q8_wide = q8
            .chunks_exact(34)
            .flat_map(|b| b[2..].iter().map(|&q| i16::from(q as i8)))
            .collect();
        Input {
            x: x.to_vec(),
            q8,
            q8_wide,
            q8_d,
        }
    }

    /// The input as its q8_0 blocks (empty unless prepared for q8_0 weights).
    pub fn q8_0(&self) -> &[u8] {
        &self.q8
    }
}

/// [`dot_row`] against a prepared input (q8_0 rows use the quantized input).
#[inline]
pub fn dot_input(dtype: DType, row: &[u8], input: &Input) -> f32 {
    match dtype {
        DType::Q8_0 if !input.q8.is_empty() => dot_q8_wide(row, &input.q8_wide, &input.q8_d),
        DType::Q4_0 if !input.q8.is_empty() => dot_q4_wide(row, &input.q8_wide, &input.q8_d),
        _ => dot_row(dtype, row, &input.x),
    }
}

/// A row of q4_0 blocks against an input quantized to q8_0 and widened:
/// `(nibble - 8) * q` summed exactly in integers per block, then scaled by
/// both `d`s (llama.cpp's q4_0 x q8_0 arithmetic).
#[inline]
fn dot_q4_wide(row: &[u8], x: &[i16], xd: &[f32]) -> f32 {
    let mut sum = 0f32;
    for ((a, xq), d) in row.chunks_exact(18).zip(x.chunks_exact(QK)).zip(xd) {
        let qs: &[u8; 16] = a[2..18].try_into().expect("a whole block");
        let xq: &[i16; 32] = xq.try_into().expect("a whole block");
        let mut acc = [0i32; 16];
        for i in 0..16 {
            let lo = i16::from(qs[i] & 0x0F) - 8;
            let hi = i16::from(qs[i] >> 4) - 8;
            acc[i] += i32::from(lo * xq[i] + hi * xq[i + 16]);
        }
        sum += half_at(a, 0) * d * acc.iter().sum::<i32>() as f32;
    }
    sum
}

/// A row of q8_0 blocks against an input already widened to i16: the same
/// integer sums as [`dot_q8_q8`].
#[inline]
fn dot_q8_wide(row: &[u8], x: &[i16], xd: &[f32]) -> f32 {
    let mut sum = 0f32;
    for ((a, xq), d) in row.chunks_exact(34).zip(x.chunks_exact(QK)).zip(xd) {
        let qa: &[u8; 32] = a[2..].try_into().expect("a whole block");
        let xq: &[i16; 32] = xq.try_into().expect("a whole block");
        let mut acc = [0i32; 16];
        for i in 0..16 {
            acc[i] += i32::from(i16::from(qa[2 * i] as i8) * xq[2 * i])
                + i32::from(i16::from(qa[2 * i + 1] as i8) * xq[2 * i + 1]);
        }
        sum += half_at(a, 0) * d * acc.iter().sum::<i32>() as f32;
    }
    sum
}

/// Two rows of q8_0 blocks: integer sums per block, scaled by both `d`s.
pub fn dot_q8_q8(row: &[u8], x: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (a, b) in row.chunks_exact(34).zip(x.chunks_exact(34)) {
        let scale = half_at(a, 0) * half_at(b, 0);
        let qa: &[u8; 32] = a[2..].try_into().expect("a whole block");
        let qb: &[u8; 32] = b[2..].try_into().expect("a whole block");
        let mut acc = [0i32; 16];
        for i in 0..16 {
            acc[i] += i32::from(qa[i] as i8) * i32::from(qb[i] as i8)
                + i32::from(qa[i + 16] as i8) * i32::from(qb[i + 16] as i8);
        }
        sum += scale * acc.iter().sum::<i32>() as f32;
    }
    sum
}

fn dot_half(row: &[u8], x: &[f32], to_f32: impl Fn(u16) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut rest = 0f32;
    let mut row_chunks = row.chunks_exact(2 * LANES);
    let mut x_chunks = x.chunks_exact(LANES);
    for (cr, cx) in (&mut row_chunks).zip(&mut x_chunks) {
        for i in 0..LANES {
            lanes[i] += to_f32(u16::from_le_bytes([cr[2 * i], cr[2 * i + 1]])) * cx[i];
        }
    }
    for (b, xv) in row_chunks
        .remainder()
        .chunks_exact(2)
        .zip(x_chunks.remainder())
    {
        rest += to_f32(u16::from_le_bytes([b[0], b[1]])) * xv;
    }
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_is_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let ours = f16_to_f32(bits);
            let theirs = f16::from_bits(bits).to_f32();
            assert!(
                ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()),
                "{bits:#06x}: {ours} vs {theirs}"
            );
        }
    }

    #[test]
    fn ggml_block_sizes() {
        let sizes: Vec<_> = DType::ALL
            .iter()
            .map(|d| (d.block_elems(), d.block_bytes()))
            .collect();
        assert_eq!(
            sizes,
            [
                (1, 4),
                (1, 2),
                (1, 2),
                (32, 34),
                (32, 18),
                (32, 20),
                (256, 144),
                (256, 210)
            ]
        );
        assert!(DType::Q8_0.row_bytes(33).is_err());
        assert_eq!(DType::Q4_1.row_bytes(64).unwrap(), 40);
    }

    #[test]
    fn q4_0_matches_the_ggml_reference_on_a_known_block() {
        // max |x| is -16 at j = 0: d = 2, so x / d + 8.5 truncates to j - 8 offsets.
        let values: Vec<f32> = (0..32).map(|j| if j == 0 { -16.0 } else { 2.0 }).collect();
        let mut bytes = Vec::new();
        quantize_row(DType::Q4_0, &values, &mut bytes);
        assert_eq!(bytes.len(), 18);
        assert_eq!(f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), 2.0);
        // -16 / 2 + 8.5 = 0.5 -> 0; 2 / 2 + 8.5 = 9.5 -> 9.
        assert_eq!(bytes[2], 0x90);
        assert_eq!(bytes[3], 0x99);
        let mut back = Vec::new();
        dequantize_row(DType::Q4_0, &bytes, &mut back);
        assert_eq!(back[0], -16.0);
        assert_eq!(back[1], 2.0);
    }

    #[test]
    fn q8_0_products_are_llama_cpp_integer_arithmetic() {
        let w: Vec<f32> = (0..128)
            .map(|i| ((i * 29 % 31) as f32 - 15.0) / 9.0)
            .collect();
        let x: Vec<f32> = (0..128)
            .map(|i| ((i * 17 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let mut row = Vec::new();
        quantize_row(DType::Q8_0, &w, &mut row);
        let input = Input::new(&x, true);
        let xq = input.q8_0();
        assert_eq!(xq.len(), 4 * 34);
        let mut exact = 0f64;
        for (a, b) in row.chunks(34).zip(xq.chunks(34)) {
            let isum: i64 = a[2..]
                .iter()
                .zip(&b[2..])
                .map(|(p, q)| i64::from(*p as i8) * i64::from(*q as i8))
                .sum();
            exact += f64::from(half_at(a, 0)) * f64::from(half_at(b, 0)) * isum as f64;
        }
        let got = dot_input(DType::Q8_0, &row, &input) as f64;
        assert!(
            (got - exact).abs() < 1e-5 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
        // Other types ignore the quantized copy.
        let mut f = Vec::new();
        quantize_row(DType::F32, &w, &mut f);
        assert_eq!(
            dot_input(DType::F32, &f, &input),
            dot_row(DType::F32, &f, &x)
        );
    }

    #[test]
    fn dot_row_agrees_with_dequantized_dot() {
        let values: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
            .collect();
        for dtype in DType::ALL {
            let mut bytes = Vec::new();
            quantize_row(dtype, &values, &mut bytes);
            assert_eq!(bytes.len(), dtype.row_bytes(512).unwrap());
            let mut deq = Vec::new();
            dequantize_row(dtype, &bytes, &mut deq);
            let plain: f64 = deq.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let fast = dot_row(dtype, &bytes, &x) as f64;
            assert!((plain - fast).abs() < 1e-2, "{dtype}: {plain} vs {fast}");
            // The quantizers are explicit and lossy, but close.
            let rms = (values
                .iter()
                .zip(&deq)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / 512.0)
                .sqrt();
            assert!(rms < 0.12, "{dtype}: rms error {rms}");
            // Products against the q8_0-quantized input are the integer sums
            // over the input as q8_0 dequantizes it.
            let input = Input::new(&x, dtype.reads_q8_input());
            if dtype.reads_q8_input() {
                let mut xq = Vec::new();
                dequantize_row(DType::Q8_0, input.q8_0(), &mut xq);
                let exact: f64 = deq
                    .iter()
                    .zip(&xq)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
                let got = dot_input(dtype, &bytes, &input) as f64;
                assert!(
                    (exact - got).abs() < 1e-2,
                    "{dtype} x q8_0: {exact} vs {got}"
                );
            }
        }
    }
}
