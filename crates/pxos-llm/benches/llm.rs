//! LLM benchmarks: decode tokens/s on random weights with the llama2.c
//! "stories" shapes (15M, 42M, 110M) in f32 and q8_0, model load time from a
//! PXI, one training step of pixellm, and the time to first token of
//! `pxos llm serve`. `cargo bench -p pxos-llm`; CI runs each once (`-- --test`).
//!
//! Each decode iteration runs 256 steps from position 0, as the llama2.c
//! figures in DESIGN.md section 12 were measured; the throughput is tokens/s.
//! Sampling is greedy on the logits (llama2.c sampled at temperature 1).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pxos_llm::format::{
    Architecture, LlamaConfig, TensorData, TokenizerSpec, build_payload, encode_png,
};
use pxos_llm::model::Llama;
use pxos_llm::{DType, ModelFile};

/// llama2.c's stories shapes: (name, dim, hidden, layers = heads, context).
const SHAPES: [(&str, usize, usize, usize, usize); 3] = [
    ("15M", 288, 768, 6, 256),
    ("42M", 512, 1376, 8, 1024),
    ("110M", 768, 2048, 12, 1024),
];

fn config(dim: usize, hidden: usize, layers: usize, context: usize) -> LlamaConfig {
    LlamaConfig {
        dim,
        hidden_dim: hidden,
        n_layers: layers,
        n_heads: layers,
        n_kv_heads: layers,
        vocab_size: 32000,
        context_length: context,
        rope_theta: 10000.0,
        norm_eps: 1e-5,
        tied_embeddings: true,
    }
}

/// Random weights in `dtype` (norms f32), built straight into the payload.
fn random_model(config: &LlamaConfig, dtype: DType) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let tensors: Vec<TensorData> = config
        .expected_tensors()
        .into_iter()
        .map(|(name, [rows, cols])| {
            let norm = name.ends_with("norm.weight");
            let dtype = if norm { DType::F32 } else { dtype };
            let mut bytes = Vec::with_capacity(dtype.row_bytes(cols).unwrap() * rows);
            let mut row = vec![0f32; cols];
            for _ in 0..rows {
                for v in row.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *v = if norm {
                        1.0
                    } else {
                        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
                    };
                }
                pxos_llm::dtype::quantize_row(dtype, &row, &mut bytes);
            }
            TensorData {
                name,
                shape: [rows, cols],
                dtype,
                bytes,
            }
        })
        .collect();
    build_payload(
        "bench",
        &Architecture::Llama(config.clone()),
        &TokenizerSpec::Bytes { bos: 256, eos: 257 },
        serde_json::Value::Null,
        &tensors,
    )
    .unwrap()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm/decode-256");
    group.sample_size(10);
    group.throughput(Throughput::Elements(256));
    for (name, dim, hidden, layers, context) in SHAPES {
        for dtype in [DType::F32, DType::Q8_0] {
            let config = config(dim, hidden, layers, context);
            let payload = random_model(&config, dtype);
            let model = ModelFile::from_payload(
                pxos_llm::format::AlignedBytes::from_slice(&payload),
                pxos_pixel::Hash256::of(&payload),
            )
            .unwrap();
            drop(payload);
            let llama = Llama::new(Arc::new(model)).unwrap();
            group.bench_function(format!("{name}/{dtype}"), |b| {
                b.iter(|| {
                    let mut state = llama.state();
                    let mut token = 1u32;
                    for _ in 0..256 {
                        let logits = llama.forward(&mut state, token).unwrap();
                        token = pxos_llm::sample::argmax(logits);
                    }
                    black_box(token)
                })
            });
        }
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm/load");
    group.sample_size(10);
    let pixellm = pxos_llm::BUILTIN_PIXELLM;
    group.throughput(Throughput::Bytes(pixellm.len() as u64));
    group.bench_function("pixellm-png", |b| {
        b.iter(|| black_box(ModelFile::from_png(pixellm, &pxos_pixel::Limits::default()).unwrap()))
    });
    let (_, dim, hidden, layers, context) = SHAPES[0];
    let png = encode_png(&random_model(
        &config(dim, hidden, layers, context),
        DType::F32,
    ))
    .unwrap();
    group.throughput(Throughput::Bytes(png.len() as u64));
    group.bench_function("15M-f32-png", |b| {
        b.iter(|| black_box(ModelFile::from_png(&png, &pxos_pixel::Limits::default()).unwrap()))
    });
    group.finish();
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm/train");
    group.sample_size(10);
    let config = pxos_llm::train::TrainConfig::pixellm();
    let params = pxos_llm::train::Params::init(&config.model, 1);
    let text: Vec<u8> = include_str!("../../../ARCHITECTURE.md").bytes().collect();
    let batch = pxos_llm::train::random_batch(
        &text,
        config.batch,
        config.seq_len,
        &mut pxos_llm::rng::Rng::new(3),
    );
    group.throughput(Throughput::Elements((config.batch * config.seq_len) as u64));
    group.bench_function("pixellm-step", |b| {
        b.iter(|| black_box(params.loss_and_gradient(&batch).0))
    });
    group.finish();
}

/// The time from sending a streaming request to its first content chunk.
fn serve_first_token(c: &mut Criterion) {
    let generator = pxos_llm::Generator::new(Arc::new(pxos_llm::builtin().unwrap())).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let options = pxos_llm::serve::ServeOptions {
            port: 0,
            ..Default::default()
        };
        pxos_llm::serve::serve(generator, options, |addr| tx.send(addr).unwrap(), |_| {}).unwrap();
    });
    let addr = rx.recv().unwrap();
    let body = r#"{"model":"pixellm","messages":[{"role":"user","content":"What is a cartridge?"}],"max_tokens":8,"stream":true}"#;
    let mut group = c.benchmark_group("llm/serve");
    group.sample_size(20);
    group.bench_function("time-to-first-token", |b| {
        b.iter(|| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
            // Read until the first chunk that carries content.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended without content");
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(11).any(|w| w == b"\"content\":\"") && seen.windows(12).filter(|w| w.starts_with(b"\"content\":\"") && w[11] != b'"').count() > 0 {
                    break;
                }
            }
            black_box(seen.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode, load, train_step, serve_first_token);
criterion_main!(benches);
