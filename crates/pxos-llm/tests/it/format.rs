//! PXI-LLM round trips, damage and hostile manifests.

use pxos_llm::format::{ALIGNMENT, TensorData, build_payload, encode_png};
use pxos_llm::{DType, ErrorKind, ModelFile};
use pxos_pixel::Limits;
use serde_json::{Value, json};

use crate::{fits, model_with, random_tensors, small_config};

#[test]
fn every_dtype_round_trips_bit_exactly() {
    let config = small_config();
    // The k-quants' 256-wide blocks do not fit this small model; the GGUF
    // import tests check them against numpy (crates/pxos-cli/tests/it/gguf.rs).
    for dtype in DType::ALL.into_iter().filter(|d| fits(&config, *d)) {
        // Bytes made in that dtype (random bit patterns for the plain types).
        let mut rng = pxos_test_support::Rng::new(7);
        let tensors: Vec<TensorData> = random_tensors(&config, 1)
            .into_iter()
            .map(|t| {
                if t.name.ends_with("norm.weight") {
                    return t;
                }
                let values: Vec<f32> = (0..t.shape[0] * t.shape[1])
                    .map(|_| (rng.below(2001) as f32 - 1000.0) / 700.0)
                    .collect();
                let mut bytes = Vec::new();
                for row in values.chunks(t.shape[1]) {
                    pxos_llm::dtype::quantize_row(dtype, row, &mut bytes);
                }
                TensorData { dtype, bytes, ..t }
            })
            .collect();
        let payload = build_payload(
            "rt",
            &pxos_llm::Architecture::Llama(config.clone()),
            &pxos_llm::TokenizerSpec::Bytes { bos: 256, eos: 257 },
            Value::Null,
            &tensors,
        )
        .unwrap();
        let png = encode_png(&payload).unwrap();
        let model = ModelFile::from_png(&png, &Limits::default()).unwrap();
        for t in &tensors {
            let view = model.tensor(&t.name).unwrap();
            assert_eq!(view.dtype, t.dtype, "{dtype} {}", t.name);
            assert_eq!(view.bytes, t.bytes.as_slice(), "{dtype} {}", t.name);
            assert_eq!(
                model.tensor_start(&t.name).unwrap() % ALIGNMENT,
                0,
                "{} is not aligned",
                t.name
            );
        }
        // f32 rows are readable in place.
        if dtype == DType::F32 {
            let view = model.tensor("blk.0.attn_q.weight").unwrap();
            assert!(bytemuck::try_cast_slice::<u8, f32>(view.bytes).is_ok());
        }
    }
}

#[test]
fn a_flipped_byte_is_detected_and_named() {
    let model = model_with(&small_config(), DType::F32, 3);
    let name = "blk.1.ffn_up.weight";
    let start = model.tensor_start(name).unwrap();
    let mut payload = model.payload().to_vec();
    payload[start + 17] ^= 0x40;
    // The PXI's own hash is made to match: only the manifest's tensor hash can tell.
    let png = encode_png(&payload).unwrap();
    let err = ModelFile::from_png(&png, &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tampered);
    assert!(err.to_string().contains(name), "{err}");
    // A byte flipped in the PNG's pixels is caught by the PXI hash.
    let mut png = encode_png(model.payload()).unwrap();
    let at = png.len() / 2;
    png[at] ^= 0x01;
    assert!(ModelFile::from_png(&png, &Limits::default()).is_err());
}

/// A payload with the manifest replaced by `edit(manifest)`.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let model = model_with(&small_config(), DType::F32, 3);
    let payload = model.payload();
    let len = u64::from_le_bytes(payload[8..16].try_into().unwrap()) as usize;
    let mut manifest: Value = serde_json::from_slice(&payload[16..16 + len]).unwrap();
    edit(&mut manifest);
    let json = serde_json::to_vec(&manifest).unwrap();
    let data_start = (16 + len).div_ceil(ALIGNMENT) * ALIGNMENT;
    let mut out = Vec::new();
    out.extend_from_slice(&payload[..8]);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize((16 + json.len()).div_ceil(ALIGNMENT) * ALIGNMENT, 0);
    out.extend_from_slice(&payload[data_start..]);
    out
}

fn refused(payload: &[u8], expect: &str) {
    let png = encode_png(payload).unwrap();
    let err = ModelFile::from_png(&png, &Limits::default()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::BadInput | ErrorKind::Tampered),
        "{err}"
    );
    assert!(
        err.to_string().contains(expect),
        "expected {expect:?} in: {err}"
    );
}

#[test]
fn hostile_manifests_are_refused_with_clear_errors() {
    refused(
        &edited(|m| m["tensors"][1]["shape"] = json!([u64::MAX, 2])),
        "no elements or more than",
    );
    refused(
        &edited(|m| m["tensors"][1]["shape"] = json!([1u64 << 40, 1u64 << 40])),
        "no elements or more than",
    );
    refused(
        &edited(|m| m["tensors"][1]["shape"] = json!([2, 3, 4])),
        "one or two dimensions",
    );
    refused(
        &edited(|m| m["tensors"][1]["dtype"] = json!("q3_k")),
        "unknown dtype",
    );
    refused(
        &edited(|m| m["tensors"][1]["offset"] = json!(u64::MAX - 63)),
        "run past the data region",
    );
    refused(
        &edited(|m| m["tensors"][1]["offset"] = json!(1u64 << 40)),
        "run past the data region",
    );
    refused(
        &edited(|m| m["tensors"][1]["offset"] = json!(3)),
        "not a multiple of 64",
    );
    refused(&edited(|m| m["tensors"][1]["size"] = json!(12)), "needs");
    refused(
        &edited(|m| {
            let o = m["tensors"][0]["offset"].clone();
            m["tensors"][2]["offset"] = o;
        }),
        "overlap",
    );
    refused(
        &edited(|m| {
            m["tensors"].as_array_mut().unwrap().remove(3);
        }),
        "needs tensor",
    );
    refused(
        &edited(|m| m["architecture"]["n_heads"] = json!(0)),
        "n_heads is 0",
    );
    refused(
        &edited(|m| m["architecture"]["n_kv_heads"] = json!(3)),
        "multiple of n_kv_heads",
    );
    refused(
        &edited(|m| m["architecture"]["context_length"] = json!(1u64 << 40)),
        "context_length",
    );
    refused(&edited(|m| m["tokenizer"]["eos"] = json!(256)), "distinct");
    refused(&edited(|m| m["format"] = json!("gguf")), "not \"pxi-llm\"");
    refused(
        &edited(|m| {
            m["tensors"] = json!("x");
        }),
        "manifest",
    );
    // The whole layout: magic, version, a manifest length past the end, no data.
    let model = model_with(&small_config(), DType::F32, 3);
    let mut bad = model.payload().to_vec();
    bad[0] = b'X';
    refused(&bad, "no PXLM magic");
    let mut bad = model.payload().to_vec();
    bad[4] = 9;
    refused(&bad, "version 9");
    let mut bad = model.payload().to_vec();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    refused(&bad, "runs past the payload");
    let cut = model.payload().len() - 100;
    refused(&model.payload()[..cut], "run past the data region");
    refused(b"PXLM", "no PXLM magic");
}

#[test]
fn a_model_of_another_kind_is_refused() {
    let model = model_with(&small_config(), DType::F32, 3);
    let options = pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Blob);
    let png = pxos_pixel::encode_to_vec(model.payload(), &options).unwrap();
    let err = ModelFile::from_png(&png, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("kind tensor"), "{err}");
}

#[test]
fn quantize_reports_an_error_that_orders_the_types() {
    let model = model_with(&small_config(), DType::F32, 5);
    let mut errors = Vec::new();
    for dtype in [
        DType::F16,
        DType::Bf16,
        DType::Q8_0,
        DType::Q4_1,
        DType::Q4_0,
    ] {
        let (_, report) = pxos_llm::convert::quantize(&model, dtype).unwrap();
        assert!(report.relative_rmse > 0.0);
        assert!(report.bytes_after < report.bytes_before);
        errors.push((dtype, report.relative_rmse));
    }
    // f16 < bf16 < q8_0 < q4_1 < q4_0 on uniform weights.
    for pair in errors.windows(2) {
        assert!(pair[0].1 < pair[1].1, "{errors:?}");
    }
    assert!(errors[2].1 < 0.01, "{errors:?}");
    assert!(errors[4].1 < 0.2, "{errors:?}");
}
