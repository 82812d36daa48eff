//! Boot pixels: 1x1 PNGs whose colour is a `file_id`.
//!
//! A boot pixel is an address, not a compressed file: it names content by the
//! first four bytes of its SHA-256 and is resolved through a store.

use std::io::BufReader;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a 1x1 RGBA PNG whose pixel is `rgba`.
pub fn write_boot_pixel(path: &Path, rgba: [u8; 4]) -> Result<()> {
    let bytes = pxos_pixel::plain_png(1, 1, pxos_pixel::PlainColor::Rgba, &rgba);
    pxos_pixel::durable::write_atomic(path, &bytes, pxos_pixel::durable::label::BOOT_PIXEL)
        .map_err(|err| Error::from(err).with_path(path))
}

/// Reads the file id from a boot pixel PNG (any lossless re-encoding works).
pub fn read_boot_pixel(path: &Path) -> Result<u32> {
    let file = pxos_pixel::open_nonempty(path)?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let not_pixel = |why: String| Error::Format(format!("not a boot pixel: {why}")).with_path(path);
    let info = decoder
        .read_header_info()
        .map_err(|err| not_pixel(err.to_string()))?;
    if (info.width, info.height) != (1, 1) {
        return Err(not_pixel(format!(
            "it is {}x{} pixels, a boot pixel is 1x1",
            info.width, info.height
        )));
    }
    let mut reader = decoder
        .read_info()
        .map_err(|err| not_pixel(err.to_string()))?;
    let mut buffer = vec![0u8; reader.output_buffer_size().unwrap_or(8).min(64)];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|err| not_pixel(err.to_string()))?;
    let rgba = match frame.color_type {
        png::ColorType::Rgba => [buffer[0], buffer[1], buffer[2], buffer[3]],
        png::ColorType::Rgb => [buffer[0], buffer[1], buffer[2], 255],
        png::ColorType::GrayscaleAlpha => [buffer[0], buffer[0], buffer[0], buffer[1]],
        png::ColorType::Grayscale => [buffer[0], buffer[0], buffer[0], 255],
        png::ColorType::Indexed => return Err(not_pixel("palette was not expanded".into())),
    };
    Ok(u32::from_be_bytes(rgba))
}
