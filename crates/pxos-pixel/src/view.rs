//! A viewable rendering of a PXI file.

use std::io::BufReader;
use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::Limits;

/// Writes `target`: the pixels of `source` as an opaque RGB PNG, each pixel
/// scaled to a `scale` x `scale` square. Alpha is dropped so that `rgba`
/// payloads (where alpha is data, often 0) are visible in any viewer.
pub fn render_view(
    source: &Path,
    target: &Path,
    scale: u32,
    limits: &Limits,
) -> Result<(u32, u32)> {
    let input = crate::open_nonempty(source)?;
    let mut decoder = png::Decoder::new_with_limits(
        BufReader::new(input),
        png::Limits {
            bytes: limits.max_in_memory,
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let with_path = |err: Error| err.with_path(source);
    let info = decoder
        .read_header_info()
        .map_err(|err| with_path(err.into()))?;
    limits
        .check_dimensions(info.width, info.height)
        .map_err(with_path)?;
    let scale = scale.clamp(1, 64);
    let (width, height) = (info.width, info.height);
    let (out_width, out_height) = (
        width
            .checked_mul(scale)
            .ok_or_else(|| Error::Usage("scaled view too large".into()))?,
        height
            .checked_mul(scale)
            .ok_or_else(|| Error::Usage("scaled view too large".into()))?,
    );
    limits
        .check_dimensions(out_width, out_height)
        .map_err(with_path)?;
    let mut reader = decoder.read_info().map_err(|err| with_path(err.into()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::LimitExceeded("image too large".into()))?;
    if size > limits.max_in_memory {
        return Err(with_path(Error::LimitExceeded(format!(
            "image needs {size} bytes in memory"
        ))));
    }
    let mut buffer = vec![0u8; size];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|err| with_path(err.into()))?;
    let channels = frame.color_type.samples();
    let mut rgb = Vec::with_capacity(out_width as usize * out_height as usize * 3);
    for y in 0..height as usize {
        let line = &buffer[y * frame.line_size..(y + 1) * frame.line_size];
        let mut out_line = Vec::with_capacity(out_width as usize * 3);
        for x in 0..width as usize {
            let pixel = &line[x * channels..(x + 1) * channels];
            let (r, g, b) = if channels >= 3 {
                (pixel[0], pixel[1], pixel[2])
            } else {
                (pixel[0], pixel[0], pixel[0])
            };
            for _ in 0..scale {
                out_line.extend_from_slice(&[r, g, b]);
            }
        }
        for _ in 0..scale {
            rgb.extend_from_slice(&out_line);
        }
    }
    let png = crate::plain_png(out_width, out_height, crate::PlainColor::Rgb, &rgb);
    crate::durable::write_atomic(target, &png, crate::durable::label::PIXEL_VIEW)
        .map_err(|err| Error::from(err).with_path(target))?;
    Ok((out_width, out_height))
}
