//! A PXI must survive any lossless rewrite of its PNG: other filters and
//! compression, dropped ancillary chunks, RGB as RGBA, palette, 16-bit.

use std::collections::HashMap;
use std::process::Command;

use pxos_pixel::{
    EncodeOptions, Kind, Layout, Limits, PixelReader, decode_from_slice, encode_to_vec,
};

use crate::support::{Rng, TempDir, require_tool};

/// Decoded pixels of a PNG: width, height, channels (3 or 4), RGB(A) bytes.
struct Pixels {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

fn pixels_of(png_bytes: &[u8]) -> Pixels {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0u8; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut data).unwrap();
    data.truncate(frame.buffer_size());
    Pixels {
        width: frame.width,
        height: frame.height,
        channels: frame.color_type.samples(),
        data,
    }
}

enum Target {
    /// Same colour type, another filter and compression level.
    Refilter(png::Filter, png::Compression),
    /// RGB pixels written as RGBA with opaque alpha.
    AddAlpha,
    /// A palette image (only for images with at most 256 colours).
    Palette,
    /// 16 bits per sample (each 8-bit value v written as v * 257).
    Sixteen,
}

/// Our own lossless re-encoder, built on the `png` crate: writes only IHDR,
/// (PLTE, tRNS,) IDAT and IEND, so every ancillary chunk is dropped.
fn reencode(png_bytes: &[u8], target: Target) -> Vec<u8> {
    let pixels = pixels_of(png_bytes);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, pixels.width, pixels.height);
        let data = match target {
            Target::Refilter(filter, compression) => {
                encoder.set_color(if pixels.channels == 4 {
                    png::ColorType::Rgba
                } else {
                    png::ColorType::Rgb
                });
                encoder.set_filter(filter);
                encoder.set_compression(compression);
                pixels.data.clone()
            }
            Target::AddAlpha => {
                assert_eq!(pixels.channels, 3);
                encoder.set_color(png::ColorType::Rgba);
                pixels
                    .data
                    .chunks(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect()
            }
            Target::Palette => {
                let mut palette: Vec<Vec<u8>> = Vec::new();
                let mut lookup: HashMap<Vec<u8>, u8> = HashMap::new();
                let mut indices = Vec::new();
                for pixel in pixels.data.chunks(pixels.channels) {
                    let next = palette.len();
                    let index = *lookup.entry(pixel.to_vec()).or_insert_with(|| {
                        palette.push(pixel.to_vec());
                        next as u8
                    });
                    assert!(palette.len() <= 256, "too many colours for a palette");
                    indices.push(index);
                }
                encoder.set_color(png::ColorType::Indexed);
                encoder.set_palette(
                    palette
                        .iter()
                        .flat_map(|c| c[..3].to_vec())
                        .collect::<Vec<u8>>(),
                );
                if pixels.channels == 4 {
                    encoder.set_trns(palette.iter().map(|c| c[3]).collect::<Vec<u8>>());
                }
                indices
            }
            Target::Sixteen => {
                encoder.set_color(if pixels.channels == 4 {
                    png::ColorType::Rgba
                } else {
                    png::ColorType::Rgb
                });
                encoder.set_depth(png::BitDepth::Sixteen);
                pixels.data.iter().flat_map(|&v| [v, v]).collect()
            }
        };
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&data).unwrap();
    }
    out
}

fn assert_decodes(png_bytes: &[u8], payload: &[u8], what: &str) {
    let (_, bytes) = decode_from_slice(png_bytes, &Limits::default())
        .unwrap_or_else(|err| panic!("{what}: re-encoded PXI failed to decode: {err}"));
    assert!(
        bytes == payload,
        "{what}: re-encoded PXI decoded to different bytes"
    );
}

#[test]
fn rewrites_by_our_reencoder_still_decode() {
    let mut rng = Rng(7);
    for layout in [Layout::Rgb, Layout::Rgba] {
        let payload = rng.bytes(100_000);
        let options = EncodeOptions {
            layout,
            metadata: b"{\"name\":\"x\"}".to_vec(),
            ..EncodeOptions::default()
        };
        let original = encode_to_vec(&payload, &options).unwrap();
        for (filter, compression) in [
            (png::Filter::Paeth, png::Compression::High),
            (png::Filter::Up, png::Compression::Fastest),
            (png::Filter::Adaptive, png::Compression::Balanced),
            (png::Filter::Sub, png::Compression::NoCompression),
        ] {
            let rewritten = reencode(&original, Target::Refilter(filter, compression));
            assert_ne!(rewritten, original);
            assert_decodes(
                &rewritten,
                &payload,
                &format!("{layout:?} {filter:?} {compression:?}"),
            );
        }
        assert_decodes(&reencode(&original, Target::Sixteen), &payload, "16-bit");
        if layout == Layout::Rgb {
            assert_decodes(
                &reencode(&original, Target::AddAlpha),
                &payload,
                "rgb as rgba",
            );
        }
    }
}

#[test]
fn palette_rewrite_of_a_few_coloured_pxi_still_decodes() {
    // Text made of few distinct 3-byte groups gives few colours.
    let payload: Vec<u8> = (0..30_000).map(|i| b"abcabcxyzxyz"[i % 12]).collect();
    let original = encode_to_vec(&payload, &EncodeOptions::kind(Kind::Text)).unwrap();
    let palette = reencode(&original, Target::Palette);
    assert_eq!(palette[25], 3, "colour type byte of IHDR is 3 (palette)");
    assert_decodes(&palette, &payload, "palette");
    // Random access falls back to sequential decoding when the index is gone.
    let dir = TempDir::new("palette");
    let path = dir.join("palette.png");
    std::fs::write(&path, &palette).unwrap();
    let mut reader = PixelReader::open(&path, &Limits::default()).unwrap();
    assert!(!reader.has_index());
    assert_eq!(
        reader.read_at(12_345, 100).unwrap(),
        &payload[12_345..12_445]
    );
}

#[test]
fn optipng_rewrites_still_decode() {
    let Some(optipng) = require_tool("optipng") else {
        return;
    };
    let dir = TempDir::new("optipng");
    let mut rng = Rng(99);
    let cases: Vec<(&str, Vec<u8>, EncodeOptions)> = vec![
        ("random-rgb", rng.bytes(300_000), EncodeOptions::default()),
        (
            "random-rgba",
            rng.bytes(70_000),
            EncodeOptions {
                layout: Layout::Rgba,
                ..EncodeOptions::default()
            },
        ),
        // Few colours: optipng turns it into a palette image.
        (
            "few-colours",
            (0..20_000).map(|i| b"aaabbbccc"[i % 9]).collect(),
            EncodeOptions::kind(Kind::Text),
        ),
    ];
    for (name, payload, options) in cases {
        let path = dir.join(format!("{name}.png"));
        let original = encode_to_vec(&payload, &options).unwrap();
        std::fs::write(&path, &original).unwrap();
        for args in [
            &["-o2", "-strip", "all"][..],
            &["-o1", "-f0-5", "-zc9", "-force"][..],
        ] {
            let status = Command::new(&optipng)
                .args(args)
                .arg("-quiet")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success(), "optipng {args:?} failed on {name}");
            let rewritten = std::fs::read(&path).unwrap();
            assert_decodes(&rewritten, &payload, &format!("optipng {args:?} {name}"));
        }
        let rewritten = std::fs::read(&path).unwrap();
        assert!(
            !rewritten.windows(4).any(|w| w == b"pxIX"),
            "optipng dropped the index chunk"
        );
        if name == "few-colours" {
            assert_eq!(rewritten[25], 3, "optipng made a palette image");
        }
    }
}
