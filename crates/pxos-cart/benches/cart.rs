//! Cartridge pack/unpack throughput on stored (incompressible) payloads,
//! against a plain file copy of the same bytes measured in the same run.
//! `cargo bench -p pxos-cart`; CI runs it once with a small tree (`-- --test`).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pxos_cart::cartridge::{self, Limits};

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn setup(root: &Path, files: usize, size: usize) {
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(root.join("cartridge.json"), r#"{"name":"bench","version":"1.0.0","creator":{"kind":"human","name":"bench"},"created":"2026-11-23T00:00:00Z"}"#).unwrap();
    for index in 0..files {
        std::fs::write(
            root.join(format!("models/w{index:02}.bin")),
            random(size, index as u64 + 1),
        )
        .unwrap();
    }
}

fn cart(c: &mut Criterion) {
    let (files, size) = if quick() {
        (2, 1 << 20)
    } else {
        (16, 16 << 20)
    };
    let total = (files * size) as u64;
    let label = format!("{}MiB", total >> 20);
    let dir = std::env::temp_dir().join(format!("pxos-cart-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    setup(&src, files, size);
    let pxa = dir.join("bench.pxa");
    let mut group = c.benchmark_group("cart");
    group.throughput(Throughput::Bytes(total));
    group.sample_size(10);
    group.bench_function(format!("pack/stored/{label}"), |b| {
        b.iter(|| {
            let packed = cartridge::pack(black_box(&src), &pxa, &Limits::default()).unwrap();
            assert_eq!(packed.manifest.data_len(), total);
        })
    });
    let mut round = 0;
    group.bench_function(format!("unpack/stored/{label}"), |b| {
        b.iter(|| {
            round += 1;
            let out = dir.join(format!("out-{round}"));
            let manifest = cartridge::unpack(black_box(&pxa), &out, &Limits::default()).unwrap();
            assert_eq!(manifest.files.len(), files);
            std::fs::remove_dir_all(&out).unwrap();
        })
    });
    group.bench_function(format!("reference-copy/{label}"), |b| {
        b.iter(|| {
            let out = dir.join("copy");
            std::fs::create_dir_all(&out).unwrap();
            for index in 0..files {
                let name = format!("models/w{index:02}.bin");
                std::fs::copy(src.join(&name), out.join(format!("w{index:02}.bin"))).unwrap();
            }
            std::fs::remove_dir_all(&out).unwrap();
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, cart);
criterion_main!(benches);
