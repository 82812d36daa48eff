//! The screen device: palette-indexed pixels, rendered to PNG.

use crate::isa::PALETTE;

/// Largest screen side accepted.
pub const MAX_SCREEN_SIDE: u32 = 8192;

/// A screen size outside `1..=MAX_SCREEN_SIDE` per side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenSizeError {
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Display for ScreenSizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "screen of {}x{} is outside 1..={MAX_SCREEN_SIDE} per side",
            self.width, self.height
        )
    }
}

impl std::error::Error for ScreenSizeError {}

/// A screen of 16-colour pixels (indices into [`PALETTE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screen {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    /// The console's next text row (see [`crate::Console`]).
    pub text_row: u32,
}

impl Screen {
    /// A black screen.
    pub fn new(width: u32, height: u32) -> Result<Screen, ScreenSizeError> {
        if width == 0 || height == 0 || width > MAX_SCREEN_SIDE || height > MAX_SCREEN_SIDE {
            return Err(ScreenSizeError { width, height });
        }
        Ok(Screen {
            width,
            height,
            pixels: vec![0; width as usize * height as usize],
            text_row: 0,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Colour indices, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Sets a pixel; `false` when (x, y) is off screen.
    #[inline]
    pub fn set(&mut self, x: u32, y: u32, colour: u8) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        self.pixels[y as usize * self.width as usize + x as usize] = colour & 15;
        true
    }

    /// The colour index at (x, y), or `None` off screen.
    #[inline]
    pub fn get(&self, x: u32, y: u32) -> Option<u8> {
        if x >= self.width || y >= self.height {
            return None;
        }
        Some(self.pixels[y as usize * self.width as usize + x as usize])
    }

    /// Fills a rectangle, clipped to the screen. Returns the pixels painted.
    pub fn fill_rect(&mut self, x: u32, y: u32, width: u32, height: u32, colour: u8) -> u64 {
        let x_end = x.saturating_add(width).min(self.width);
        let y_end = y.saturating_add(height).min(self.height);
        let mut painted = 0;
        for row in y.min(y_end)..y_end {
            let start = row as usize * self.width as usize;
            self.pixels[start + x.min(x_end) as usize..start + x_end as usize].fill(colour & 15);
            painted += u64::from(x_end.saturating_sub(x));
        }
        painted
    }

    /// Moves the pixels of a rectangle (clipped to the screen) up by `by`
    /// rows, filling the rows it uncovers with colour 0.
    pub fn scroll_up(&mut self, x: u32, y: u32, width: u32, height: u32, by: u32) {
        let x_end = x.saturating_add(width).min(self.width) as usize;
        let y_end = y.saturating_add(height).min(self.height);
        let x = (x as usize).min(x_end);
        let row_len = self.width as usize;
        for row in y..y_end {
            let target = row as usize * row_len;
            match row.checked_add(by).filter(|source| *source < y_end) {
                Some(source) => {
                    let source = source as usize * row_len;
                    self.pixels
                        .copy_within(source + x..source + x_end, target + x);
                }
                None => self.pixels[target + x..target + x_end].fill(0),
            }
        }
    }

    /// RGB bytes of the whole screen.
    pub fn to_rgb(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .flat_map(|&index| PALETTE[usize::from(index & 15)])
            .collect()
    }

    /// Encodes the screen as an RGB PNG.
    pub fn to_png(&self) -> Vec<u8> {
        pxos_pixel::plain_png(
            self.width,
            self.height,
            pxos_pixel::PlainColor::Rgb,
            &self.to_rgb(),
        )
    }

    /// Reads a screen back from a PNG that [`Screen::to_png`] wrote (or any
    /// 8-bit RGB or RGBA PNG whose every pixel is a palette colour).
    pub fn from_png(bytes: &[u8]) -> Result<Screen, String> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().map_err(|err| err.to_string())?;
        let (width, height) = {
            let info = reader.info();
            (info.width, info.height)
        };
        let mut screen = Screen::new(width, height).map_err(|err| err.to_string())?;
        let mut buffer = vec![
            0;
            reader
                .output_buffer_size()
                .ok_or("the image is too large")?
        ];
        let frame = reader
            .next_frame(&mut buffer)
            .map_err(|err| err.to_string())?;
        let channels = match (frame.color_type, frame.bit_depth) {
            (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
            (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
            (color, depth) => {
                return Err(format!(
                    "a {color:?} image of {depth:?} bits is not a screen (8-bit RGB or RGBA)"
                ));
            }
        };
        for (index, pixel) in buffer[..frame.buffer_size()]
            .chunks_exact(channels)
            .enumerate()
        {
            let colour = PALETTE
                .iter()
                .position(|rgb| rgb[..] == pixel[..3])
                .ok_or_else(|| {
                    format!(
                        "pixel {index} (#{:02x}{:02x}{:02x}) is not a palette colour",
                        pixel[0], pixel[1], pixel[2]
                    )
                })?;
            screen.pixels[index] = colour as u8;
        }
        Ok(screen)
    }

    /// A short content hash (FNV-1a of the colour indices), for spec files.
    pub fn hash(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in &self.pixels {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}
