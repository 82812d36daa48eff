//! Damaged, hostile and foreign inputs give clear errors, never panics.

use pxos_pixel::{
    EncodeOptions, Error, Kind, Limits, decode_from_slice, encode_to_vec, fuzz, verify_file,
};

use crate::support::{Rng, TempDir};

fn decode_err(bytes: &[u8]) -> Error {
    match decode_from_slice(bytes, &Limits::default()) {
        Ok(_) => panic!("damaged input decoded"),
        Err(err) => err,
    }
}

fn sample() -> (Vec<u8>, Vec<u8>) {
    let payload = Rng(3).bytes(50_000);
    let png = encode_to_vec(&payload, &EncodeOptions::default()).unwrap();
    (payload, png)
}

use pxos_test_support::edit_pixels;

#[test]
fn every_truncation_is_an_error() {
    let (_, png) = sample();
    for len in (0..png.len())
        .step_by(997)
        .chain([png.len() - 1, png.len() - 12, 8, 33])
    {
        let err = decode_err(&png[..len]);
        assert!(err.is_bad_input(), "truncated at {len}: {err}");
    }
}

#[test]
fn a_flipped_payload_pixel_is_a_hash_mismatch_naming_the_file() {
    let (_, png) = sample();
    let damaged = edit_pixels(&png, |data, line| data[line * 5 + 17] ^= 0x01);
    assert!(matches!(decode_err(&damaged), Error::Integrity { .. }));
    let dir = TempDir::new("flip");
    let path = dir.join("damaged.png");
    std::fs::write(&path, &damaged).unwrap();
    let err = verify_file(&path, &Limits::default(), &mut |_| {}).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("damaged.png") && message.contains("hash mismatch"),
        "{message}"
    );
}

#[test]
fn a_flipped_file_byte_is_caught() {
    let (_, png) = sample();
    for at in [40, 60, 100, 1000, 20_000, png.len() - 30] {
        let mut damaged = png.clone();
        damaged[at] ^= 0x40;
        assert!(decode_err(&damaged).is_bad_input(), "flip at {at}");
    }
}

#[test]
fn a_corrupted_header_is_refused_as_such() {
    let (_, png) = sample();
    let damaged = edit_pixels(&png, |data, _| data[10] ^= 0xff);
    let message = decode_err(&damaged).to_string();
    assert!(message.contains("header is corrupted"), "{message}");
}

#[test]
fn an_ordinary_png_is_not_a_pxi() {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 64, 64);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&vec![200u8; 64 * 64 * 3]).unwrap();
    writer.finish().unwrap();
    let message = decode_err(&out).to_string();
    assert!(message.contains("not a pixel file"), "{message}");
    // Too narrow to hold a header.
    let mut out = Vec::new();
    let mut writer = png::Encoder::new(&mut out, 4, 4).write_header().unwrap();
    writer.write_image_data(&[0u8; 16]).unwrap();
    writer.finish().unwrap();
    assert!(decode_err(&out).to_string().contains("not a pixel file"));
}

#[test]
fn absurd_dimensions_hit_the_limits() {
    let (_, png) = sample();
    let mut huge = png[..33].to_vec();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    huge.extend_from_slice(&png[33..]);
    let err = decode_err(&huge);
    assert!(matches!(err, Error::LimitExceeded(_)), "{err}");
    assert!(err.to_string().contains("100000x100000"));
}

#[test]
fn empty_and_garbage_inputs_are_errors() {
    assert!(decode_err(&[]).is_bad_input());
    assert!(decode_err(b"hello").is_bad_input());
    let dir = TempDir::new("empty");
    let path = dir.join("empty.png");
    std::fs::write(&path, b"").unwrap();
    let message = verify_file(&path, &Limits::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("empty.png") && message.contains("empty"),
        "{message}"
    );
}

#[test]
fn fuzz_bodies_survive_seeded_inputs() {
    let (_, png) = sample();
    let text = encode_to_vec(
        b"some text for the fuzzer",
        &EncodeOptions::kind(Kind::Text),
    )
    .unwrap();
    let mut rng = Rng(2024);
    for round in 0..300 {
        let base = if round % 2 == 0 { &png } else { &text };
        let mut input = base.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(input.len() as u64) as usize;
            input[at] = rng.next_u64() as u8;
        }
        if rng.below(4) == 0 {
            input.truncate(rng.below(input.len() as u64) as usize);
        }
        fuzz::decode_bytes(&input);
        let len = rng.below(200) as usize;
        fuzz::decode_bytes(&rng.bytes(len));
    }
}

#[test]
fn every_single_byte_flip_of_a_file_is_an_error() {
    for options in [
        EncodeOptions::kind(Kind::Tensor),
        EncodeOptions::kind(Kind::Text),
    ] {
        let payload: Vec<u8> = (0..3000u32)
            .map(|i| (i % 251) as u8 ^ (i / 700) as u8)
            .collect();
        let png = encode_to_vec(&payload, &options).unwrap();
        for at in 0..png.len() {
            let mut damaged = png.clone();
            damaged[at] ^= 0x01;
            match decode_from_slice(&damaged, &Limits::default()) {
                Err(err) => assert!(err.is_bad_input(), "flip at {at}: {err}"),
                Ok(_) => panic!(
                    "{:?}: a flip at byte {at} of {} went unnoticed",
                    options.kind,
                    png.len()
                ),
            }
        }
    }
}
