use pxos_pixel::{
    Compression, EncodeOptions, Kind, Layout, Limits, PixelReader, decode_file, decode_from_slice,
    encode_file, encode_to_vec,
};

use crate::support::{Rng, TempDir, require_tool};

fn round_trip(payload: &[u8], options: &EncodeOptions) {
    let png = encode_to_vec(payload, options).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let (decoded, bytes) = decode_from_slice(&png, &Limits::default()).unwrap();
    assert_eq!(
        bytes,
        payload,
        "payload of {} bytes with {options:?}",
        payload.len()
    );
    assert_eq!(decoded.header.kind, options.kind);
    assert_eq!(decoded.metadata, options.metadata);
    assert_eq!(decoded.header.payload_len, payload.len() as u64);
}

#[test]
fn edge_sizes_round_trip_in_every_kind_layout_and_compression() {
    let mut rng = Rng(1);
    for len in [
        0usize, 1, 2, 3, 4, 5, 71, 72, 73, 4096, 4097, 65535, 65536, 200_003,
    ] {
        let payload = rng.bytes(len);
        for &kind in Kind::ALL {
            for layout in [Layout::Rgb, Layout::Rgba] {
                for compression in [None, Some(Compression::Stored), Some(Compression::Best)] {
                    let options = EncodeOptions {
                        kind,
                        layout,
                        compression,
                        ..EncodeOptions::default()
                    };
                    round_trip(&payload, &options);
                }
            }
        }
    }
}

#[test]
fn random_payloads_with_metadata_and_widths_round_trip() {
    // Property test with fixed seeds: any bytes, any width, any metadata.
    for seed in 0..64u64 {
        let mut rng = Rng(seed);
        let len = rng.below(50_000) as usize;
        // Half the cases are compressible text-like data.
        let payload = if seed % 2 == 0 {
            rng.bytes(len)
        } else {
            (0..len).map(|i| b"pixels are bytes "[i % 17]).collect()
        };
        let metadata_len = rng.below(300) as usize;
        let options = EncodeOptions {
            kind: Kind::ALL[rng.below(6) as usize],
            layout: if rng.below(2) == 0 {
                Layout::Rgb
            } else {
                Layout::Rgba
            },
            compression: [
                None,
                Some(Compression::Stored),
                Some(Compression::Fast),
                Some(Compression::Best),
                Some(Compression::Auto),
            ][rng.below(5) as usize],
            width: if rng.below(2) == 0 {
                None
            } else {
                Some(24 + rng.below(3000) as u32)
            },
            metadata: rng.bytes(metadata_len),
        };
        round_trip(&payload, &options);
    }
}

#[test]
fn ten_mebibytes_round_trip_through_files_and_file_reports_png() {
    let dir = TempDir::new("10mib");
    let payload = Rng(10).bytes(10 << 20);
    let source = dir.join("payload.bin");
    std::fs::write(&source, &payload).unwrap();
    let pxi = dir.join("payload.png");
    let encoded = encode_file(&source, &pxi, &EncodeOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(
        encoded.header.compression,
        Compression::Stored,
        "random data is stored by auto"
    );
    let back = dir.join("back.bin");
    decode_file(&pxi, &back, &Limits::default(), &mut |_| {}).unwrap();
    assert!(std::fs::read(&back).unwrap() == payload);
    let mut reader = PixelReader::open(&pxi, &Limits::default()).unwrap();
    assert!(reader.has_index());
    assert_eq!(
        reader.read_at(5_000_000, 4096).unwrap(),
        &payload[5_000_000..5_004_096]
    );

    for small in [0usize, 1, 2, 3, 4096] {
        let path = dir.join(format!("small-{small}.png"));
        std::fs::write(
            &path,
            encode_to_vec(&payload[..small], &EncodeOptions::default()).unwrap(),
        )
        .unwrap();
    }
    if let Some(file) = require_tool("file") {
        for name in [
            "payload.png",
            "small-0.png",
            "small-1.png",
            "small-2.png",
            "small-3.png",
            "small-4096.png",
        ] {
            let output = std::process::Command::new(&file)
                .arg(dir.join(name))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(text.contains("PNG image data"), "file says: {text}");
        }
    }
}

#[test]
fn text_compresses_and_the_policy_is_recorded() {
    let line = b"fn main() { println!(\"pixels\"); }\n";
    let text: Vec<u8> = (0..100_000).map(|i| line[i % line.len()]).collect();
    let png = encode_to_vec(&text, &EncodeOptions::kind(Kind::Text)).unwrap();
    assert!(
        png.len() < text.len() / 10,
        "text should deflate well: {} bytes",
        png.len()
    );
    let (decoded, _) = decode_from_slice(&png, &Limits::default()).unwrap();
    assert_eq!(decoded.header.compression, Compression::Best);
    let tensor = encode_to_vec(&text, &EncodeOptions::kind(Kind::Tensor)).unwrap();
    assert!(tensor.len() > text.len(), "tensors are stored");
}
