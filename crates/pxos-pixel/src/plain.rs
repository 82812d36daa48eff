//! Plain PNGs for people to look at (screens, graphs, diffs, boot pixels):
//! the one place outside the PXI codec that encodes a PNG.

/// The channels of a plain PNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainColor {
    /// 3 bytes a pixel.
    Rgb,
    /// 4 bytes a pixel.
    Rgba,
}

impl PlainColor {
    fn channels(self) -> usize {
        match self {
            PlainColor::Rgb => 3,
            PlainColor::Rgba => 4,
        }
    }
}

/// Encodes `pixels` (row-major, 8 bits a channel) as a PNG in memory.
///
/// # Panics
/// When `pixels` does not hold exactly `width * height` pixels: a caller bug,
/// never a property of untrusted input.
pub fn plain_png(width: u32, height: u32, color: PlainColor, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(
        pixels.len(),
        width as usize * height as usize * color.channels(),
        "plain_png: the buffer does not match a {width}x{height} image"
    );
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(match color {
        PlainColor::Rgb => png::ColorType::Rgb,
        PlainColor::Rgba => png::ColorType::Rgba,
    });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header to memory cannot fail");
    writer
        .write_image_data(pixels)
        .expect("the buffer matches the image");
    writer
        .finish()
        .expect("finishing a PNG in memory cannot fail");
    out
}
