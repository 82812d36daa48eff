//! PXI throughput against the `png` crate on the same pixels and settings.
//!
//! `cargo bench -p pxos-pixel` measures; `cargo bench -p pxos-pixel -- --test`
//! (run by `cargo xtask ci`) runs each benchmark once with smaller inputs.
//! Set `PXOS_BENCH_BIG=1` for the 1 GiB random-read benchmark.

use std::hint::black_box;
use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pxos_pixel::{Compression, EncodeOptions, Kind, Limits, PixelReader, decode, encode_to_vec};

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

fn payload(len: usize) -> Vec<u8> {
    let mut state = 0x1234_5678_9abc_def0u64;
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

/// The same pixels as the PXI (header row + data rows), encoded by the `png`
/// crate with filter None and no compression: the reference.
fn png_crate_encode(pixels: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() + pixels.len() / 64 + 4096);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_filter(png::Filter::NoFilter);
    encoder.set_compression(png::Compression::NoCompression);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
    writer.finish().unwrap();
    out
}

fn png_crate_decode(png_bytes: &[u8], buffer: &mut [u8]) -> usize {
    let mut reader = png::Decoder::new(Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    reader.next_frame(buffer).unwrap().buffer_size()
}

fn throughput(c: &mut Criterion) {
    let len = if quick() { 1 << 20 } else { 64 << 20 };
    let label = if quick() { "1MiB" } else { "64MiB" };
    let data = payload(len);
    let options = EncodeOptions {
        kind: Kind::Tensor,
        compression: Some(Compression::Stored),
        ..EncodeOptions::default()
    };
    let pxi = encode_to_vec(&data, &options).unwrap();
    let (width, height, pixels) = {
        let mut reader = png::Decoder::new(Cursor::new(&pxi[..]))
            .read_info()
            .unwrap();
        let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        (info.width, info.height, pixels)
    };
    let reference = png_crate_encode(&pixels, width, height);

    let mut group = c.benchmark_group("pixel");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    group.bench_function(format!("encode/stored/{label}"), |b| {
        b.iter(|| {
            let out = encode_to_vec(black_box(&data), &options).unwrap();
            // Encoding is deterministic: the same bytes as the file decoded below.
            assert_eq!(out.len(), pxi.len());
            out
        })
    });
    group.bench_function(format!("png-crate-encode/stored/{label}"), |b| {
        b.iter(|| {
            let out = png_crate_encode(black_box(&pixels), width, height);
            assert!(out.len() > len);
            out
        })
    });
    let mut sink = Vec::with_capacity(len);
    group.bench_function(format!("decode/stored/{label}"), |b| {
        b.iter(|| {
            sink.clear();
            let decoded = decode(
                Cursor::new(black_box(&pxi[..])),
                &mut sink,
                &Limits::default(),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(decoded.header.payload_len as usize, sink.len());
        })
    });
    let mut buffer = vec![0u8; pixels.len()];
    group.bench_function(format!("png-crate-decode/stored/{label}"), |b| {
        b.iter(|| {
            assert_eq!(
                png_crate_decode(black_box(&reference), &mut buffer),
                pixels.len()
            )
        })
    });
    let pixels_sha = pxos_pixel::sha256(&pixels);
    group.bench_function(format!("png-crate-decode+sha256/stored/{label}"), |b| {
        b.iter(|| {
            assert_eq!(
                png_crate_decode(black_box(&reference), &mut buffer),
                pixels.len()
            );
            assert_eq!(pxos_pixel::sha256(&buffer), pixels_sha);
        })
    });
    let data_sha = pxos_pixel::sha256(&data);
    group.bench_function(format!("sha256-alone/{label}"), |b| {
        b.iter(|| assert_eq!(pxos_pixel::sha256(black_box(&data)), data_sha))
    });
    group.finish();
}

fn random_read(c: &mut Criterion) {
    let big = std::env::var_os("PXOS_BENCH_BIG").is_some() && !quick();
    let len: usize = if big { 1 << 30 } else { 64 << 20 };
    let label = if big { "1GiB" } else { "64MiB" };
    let dir = std::env::temp_dir().join(format!("pxos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.png");
    let data = payload(len);
    let options = EncodeOptions {
        kind: Kind::Tensor,
        ..EncodeOptions::default()
    };
    std::fs::write(&path, encode_to_vec(&data, &options).unwrap()).unwrap();
    let mut group = c.benchmark_group("pixel");
    let mut offset = 0u64;
    let mut reader = PixelReader::open(&path, &Limits::default()).unwrap();
    group.bench_function(format!("read-4KiB/open-reader/{label}"), |b| {
        b.iter(|| {
            offset = (offset + 7_777_777_777) % (len as u64 - 4096);
            let got = reader.read_at(offset, 4096).unwrap();
            assert!(got == data[offset as usize..offset as usize + 4096]);
        })
    });
    group.bench_function(format!("read-4KiB/cold-open/{label}"), |b| {
        b.iter(|| {
            offset = (offset + 7_777_777_777) % (len as u64 - 4096);
            let mut reader = PixelReader::open(&path, &Limits::default()).unwrap();
            let got = reader.read_at(offset, 4096).unwrap();
            assert!(got == data[offset as usize..offset as usize + 4096]);
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Refusing a bomb costs the same whatever it declares (10^8 to 4.8 * 10^10
/// bytes): the header is checked before anything past row 0 is inflated.
fn bombs(c: &mut Criterion) {
    let mut group = c.benchmark_group("pixel/refuse-bomb");
    for declared in [100_000_000u64, 48_000_000_000] {
        let png = pxos_test_support::pxi_bomb(declared);
        group.bench_function(format!("declared/{declared}"), |b| {
            b.iter(|| assert!(pxos_pixel::decode_from_slice(&png, &Limits::default()).is_err()))
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, random_read, bombs);
criterion_main!(benches);
