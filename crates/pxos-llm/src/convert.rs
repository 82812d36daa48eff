//! Explicit conversions between dtypes (`pxos llm quantize`), with the error they cost.

use serde::Serialize;

use crate::dtype::{DType, dequantize_row, quantize_row};
use crate::error::Result;
use crate::format::{ModelFile, TensorData, build_payload};

/// The error one tensor's conversion introduced.
#[derive(Clone, Debug, Serialize)]
pub struct TensorError {
    pub name: String,
    pub from: DType,
    pub to: DType,
    /// Root-mean-square error, and relative to the tensor's own RMS.
    pub rmse: f64,
    pub relative_rmse: f64,
    pub max_abs_error: f64,
}

/// What a conversion did.
#[derive(Clone, Debug, Serialize)]
pub struct QuantizeReport {
    pub dtype: DType,
    pub tensors: Vec<TensorError>,
    /// Over every converted element.
    pub relative_rmse: f64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Converts every matrix of `model` to `dtype` (norm vectors stay f32, as
/// the format requires) and returns the new payload with the error report.
/// The manifest's provenance records the parent model and the conversion.
pub fn quantize(model: &ModelFile, dtype: DType) -> Result<(Vec<u8>, QuantizeReport)> {
    let mut tensors = Vec::new();
    let mut errors = Vec::new();
    let (mut err_sq, mut ref_sq) = (0f64, 0f64);
    let (mut before, mut after) = (0u64, 0u64);
    for data in model.tensors() {
        before += data.bytes.len() as u64;
        let is_norm = data.name.ends_with("norm.weight") || data.shape[0] == 1;
        if is_norm || data.dtype == dtype {
            after += data.bytes.len() as u64;
            tensors.push(data);
            continue;
        }
        let [rows, cols] = data.shape;
        let src_row = data.dtype.row_bytes(cols)?;
        dtype.row_bytes(cols)?;
        let mut bytes = Vec::with_capacity(rows * dtype.row_bytes(cols)?);
        let (mut e2, mut r2, mut max) = (0f64, 0f64, 0f64);
        let mut original = Vec::with_capacity(cols);
        let mut back = Vec::with_capacity(cols);
        for r in 0..rows {
            original.clear();
            dequantize_row(
                data.dtype,
                &data.bytes[r * src_row..(r + 1) * src_row],
                &mut original,
            );
            let at = bytes.len();
            quantize_row(dtype, &original, &mut bytes);
            back.clear();
            dequantize_row(dtype, &bytes[at..], &mut back);
            for (a, b) in original.iter().zip(&back) {
                let e = (*a as f64 - *b as f64).abs();
                e2 += e * e;
                r2 += (*a as f64) * (*a as f64);
                max = max.max(e);
            }
        }
        let n = (rows * cols) as f64;
        err_sq += e2;
        ref_sq += r2;
        errors.push(TensorError {
            name: data.name.clone(),
            from: data.dtype,
            to: dtype,
            rmse: (e2 / n).sqrt(),
            relative_rmse: (e2 / r2.max(f64::MIN_POSITIVE)).sqrt(),
            max_abs_error: max,
        });
        after += bytes.len() as u64;
        tensors.push(TensorData {
            name: data.name,
            shape: data.shape,
            dtype,
            bytes,
        });
    }
    let report = QuantizeReport {
        dtype,
        relative_rmse: (err_sq / ref_sq.max(f64::MIN_POSITIVE)).sqrt(),
        tensors: errors,
        bytes_before: before,
        bytes_after: after,
    };
    let m = &model.manifest;
    let provenance = serde_json::json!({
        "converted_by": "pxos llm quantize",
        "parent": model.payload_sha256,
        "dtype": dtype,
        "relative_rmse": report.relative_rmse,
        "parent_provenance": m.provenance,
    });
    let payload = build_payload(&m.name, &m.architecture, &m.tokenizer, provenance, &tensors)?;
    Ok((payload, report))
}
