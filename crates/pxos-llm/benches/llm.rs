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

/// A GGUF file in the stories shape `shape` (random weights in `dtype`, a
/// 32000-token SentencePiece vocabulary), as llama.cpp and pxOS both read it.
fn stories_gguf(shape: usize, dtype: DType) -> Vec<u8> {
    use pxos_llm::gguf::{Value, write};
    let (_, dim, hidden, layers, context) = SHAPES[shape];
    let config = config(dim, hidden, layers, context);
    let payload = random_model(&config, dtype);
    let file = ModelFile::from_payload(
        pxos_llm::format::AlignedBytes::from_slice(&payload),
        pxos_pixel::Hash256::of(&payload),
    )
    .unwrap();
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let first = tokens.len();
    tokens.extend((first..32000).map(|i| format!("\u{2581}t{i}")));
    let types: Vec<Value> = (0..32000)
        .map(|i| {
            Value::I32(match i {
                0 => 2,
                1 | 2 => 3,
                i if i < first => 6,
                _ => 1,
            })
        })
        .collect();
    let u32v = |v: usize| Value::U32(v as u32);
    let meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        (
            "general.name".into(),
            Value::String(format!("stories{}", SHAPES[shape].0)),
        ),
        ("llama.context_length".into(), u32v(context)),
        ("llama.embedding_length".into(), u32v(dim)),
        ("llama.feed_forward_length".into(), u32v(hidden)),
        ("llama.block_count".into(), u32v(layers)),
        ("llama.attention.head_count".into(), u32v(layers)),
        ("llama.attention.head_count_kv".into(), u32v(layers)),
        ("llama.rope.dimension_count".into(), u32v(dim / layers)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array((0..32000).map(|i| Value::F32(-(i as f32))).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
    ];
    let tensors: Vec<(String, Vec<u64>, DType, &[u8])> = file
        .manifest
        .tensors
        .iter()
        .map(|t| {
            let (r, c) = (t.shape[0], t.shape[1]);
            let dims = if r == 1 { vec![c] } else { vec![c, r] };
            let start = file.tensor_start(&t.name).unwrap();
            let bytes = &file.payload()[start..start + t.size as usize];
            (t.name.clone(), dims, DType::parse(&t.dtype).unwrap(), bytes)
        })
        .collect();
    write(&meta, &tensors, 32)
}

fn testing() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Imported GGUF models: import and load time, decode tokens/s, and (when
/// llama-cpp-python is installed, outside `--test`) llama.cpp on the same
/// file and thread count, measured in the same run.
fn gguf(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("pxos-bench-gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shapes: &[usize] = if testing() { &[0] } else { &[0, 1] };
    for &shape in shapes {
        for dtype in [DType::Q8_0, DType::Q4_0, DType::F32] {
            let name = format!("{}/{dtype}", SHAPES[shape].0);
            let bytes = stories_gguf(shape, dtype);
            let path = dir.join(format!("stories{}-{dtype}.gguf", SHAPES[shape].0));
            std::fs::write(&path, &bytes).unwrap();
            let mut group = c.benchmark_group("llm/gguf");
            group.sample_size(10);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            let options = pxos_llm::import::ImportOptions::default();
            group.bench_function(format!("import/{name}"), |b| {
                b.iter(|| {
                    black_box(
                        pxos_llm::import::import_gguf(&bytes, &options)
                            .unwrap()
                            .0
                            .len(),
                    )
                })
            });
            let (payload, _) = pxos_llm::import::import_gguf(&bytes, &options).unwrap();
            let png = encode_png(&payload).unwrap();
            group.throughput(Throughput::Bytes(png.len() as u64));
            group.bench_function(format!("load/{name}"), |b| {
                b.iter(|| {
                    let file = ModelFile::from_png(&png, &pxos_pixel::Limits::default()).unwrap();
                    black_box(Llama::new(Arc::new(file)).unwrap().config.dim)
                })
            });
            let llama = Llama::new(Arc::new(
                ModelFile::from_png(&png, &pxos_pixel::Limits::default()).unwrap(),
            ))
            .unwrap();
            let run = || {
                let mut state = llama.state();
                let mut token = 1u32;
                for _ in 0..256 {
                    token = pxos_llm::sample::argmax(llama.forward(&mut state, token).unwrap());
                }
                token
            };
            group.throughput(Throughput::Elements(256));
            group.bench_function(format!("decode-256/{name}"), |b| {
                b.iter(|| black_box(run()))
            });
            group.finish();
            if testing() {
                continue;
            }
            // The same-run anchor: llama.cpp on the same file, then pxOS again.
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/llama_cpp_anchor.py");
            let out = std::process::Command::new("python3")
                .args([
                    script,
                    &path.display().to_string(),
                    "--threads",
                    &threads.to_string(),
                ])
                .output();
            let best = (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    black_box(run());
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            let ours = 256.0 / best;
            match out {
                Ok(o) if o.status.success() => {
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    let theirs = v["tokens_per_second"].as_f64().unwrap();
                    println!(
                        "anchor llm/gguf {name}: pxOS {ours:.1} tok/s, llama.cpp {theirs:.1} tok/s ({threads} threads): ratio {:.2}",
                        ours / theirs
                    );
                }
                Ok(o) => println!(
                    "anchor llm/gguf {name}: llama.cpp did not run: {}",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ),
                Err(e) => println!("anchor llm/gguf {name}: no python3: {e}"),
            }
        }
    }
}

/// The GPU engine's decode speed on the stories shapes, on whatever adapter
/// wgpu finds (a software rasteriser in CI: correctness, not speed), with the
/// CPU engine in the same run.
#[cfg(feature = "gpu")]
fn gpu_decode(c: &mut Criterion) {
    let adapter = match pxos_llm::gpu::describe_adapter() {
        Ok(a) => a,
        Err(why) => {
            println!("llm/gpu: skipped: {why}");
            return;
        }
    };
    println!(
        "llm/gpu: adapter {} ({}, {})",
        adapter.name, adapter.backend, adapter.device_type
    );
    let software = adapter.device_type == "Cpu";
    // `--test` (CI) checks that the bench runs: 16 steps on a software adapter.
    let steps = if testing() { 16 } else { 256 };
    let mut group = c.benchmark_group("llm/gpu-decode-256");
    group.sample_size(10);
    group.throughput(Throughput::Elements(steps as u64));
    let shapes: &[usize] = if software { &[0] } else { &[0, 1, 2] };
    for &shape in shapes {
        for dtype in [DType::F32, DType::Q8_0] {
            let (name, dim, hidden, layers, context) = SHAPES[shape];
            let payload = random_model(&config(dim, hidden, layers, context), dtype);
            let file = Arc::new(
                ModelFile::from_payload(
                    pxos_llm::format::AlignedBytes::from_slice(&payload),
                    pxos_pixel::Hash256::of(&payload),
                )
                .unwrap(),
            );
            let mut gpu = pxos_llm::gpu::GpuLlama::new(file).unwrap();
            let mut logits = Vec::new();
            group.bench_function(format!("{name}/{dtype}"), |b| {
                b.iter(|| {
                    gpu.reset();
                    let mut token = 1u32;
                    for _ in 0..steps {
                        gpu.forward(token, &mut logits).unwrap();
                        token = pxos_llm::sample::argmax(&logits);
                    }
                    black_box(token)
                })
            });
        }
    }
    group.finish();
}

#[cfg(not(feature = "gpu"))]
fn gpu_decode(_: &mut Criterion) {
    println!("llm/gpu: skipped: built without the gpu feature");
}

criterion_group!(
    benches,
    decode,
    load,
    train_step,
    serve_first_token,
    gguf,
    gpu_decode
);
criterion_main!(benches);
