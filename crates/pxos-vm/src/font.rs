//! Bitmap fonts, and the console that draws what programs print.
//!
//! A font is a pixel file like everything else: a PXI (kind `blob`, layout
//! `rgb`) whose payload is the glyph atlas itself, lit pixels white on black,
//! 16 glyphs to a row. Its metadata (JSON, padded with spaces so the atlas
//! starts on a row of its own) names the glyph size and the first character.
//! Open the file in any viewer and the font is there to see. The built-in font
//! comes from `fonts/console-8x8.txt` (text art, one block per glyph); worlds
//! carry it as `fonts/console.png` and may ship another.

use std::sync::{Arc, OnceLock};

use crate::screen::Screen;
use pxos_pixel::{EncodeOptions, Kind, Layout, Limits};

/// The metadata `format` of font files.
pub const FONT_FORMAT: &str = "pxos-font";
/// The text source of the built-in console font.
pub const CONSOLE_FONT_SOURCE: &str = include_str!("../fonts/console-8x8.txt");
/// Glyphs per atlas row.
const COLUMNS: u32 = 16;
/// Largest glyph side.
const MAX_SIDE: u32 = 16;

/// Why a font could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FontError(pub String);

impl FontError {
    /// Who is at fault: the font file.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        pxos_pixel::ErrorKind::BadInput
    }
}

impl std::fmt::Display for FontError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a usable font: {}", self.0)
    }
}

impl std::error::Error for FontError {}

/// A bitmap font: `count` glyphs from character `first`, each `width` x
/// `height` pixels; bit `x` of row `y` is lit. The last glyph is drawn for
/// every character the font lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Font {
    pub width: u32,
    pub height: u32,
    pub first: u32,
    glyphs: Vec<Vec<u16>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FontMeta {
    format: String,
    version: u32,
    glyph_width: u32,
    glyph_height: u32,
    first: u32,
    count: u32,
    columns: u32,
}

impl Font {
    /// The built-in 8x8 console font.
    pub fn builtin() -> Arc<Font> {
        static FONT: OnceLock<Arc<Font>> = OnceLock::new();
        FONT.get_or_init(|| {
            Arc::new(Font::parse_text(CONSOLE_FONT_SOURCE).expect("the built-in font parses"))
        })
        .clone()
    }

    /// Parses the text form: `# ` comments, then blocks of `glyph 0xNN` and
    /// one line of `#`/`.` cells per row, for consecutive characters.
    pub fn parse_text(text: &str) -> Result<Font, FontError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with("# "));
        let mut glyphs: Vec<Vec<u16>> = Vec::new();
        let mut first = None;
        let (mut width, mut height) = (0u32, 0u32);
        while let Some((number, line)) = lines.next() {
            let code = line
                .strip_prefix("glyph ")
                .and_then(|hex| u32::from_str_radix(hex.trim().trim_start_matches("0x"), 16).ok())
                .ok_or_else(|| {
                    FontError(format!(
                        "line {number}: expected `glyph 0xNN`, found {line:?}"
                    ))
                })?;
            let expected = first.map_or(code, |f: u32| f + glyphs.len() as u32);
            if code != expected {
                return Err(FontError(format!(
                    "line {number}: glyph {code:#04x} is out of order (expected {expected:#04x})"
                )));
            }
            first.get_or_insert(code);
            let mut rows = Vec::new();
            while rows.len() < MAX_SIDE as usize {
                let Some((row_number, row)) = lines.clone().next() else {
                    break;
                };
                if row.starts_with("glyph ") {
                    break;
                }
                lines.next();
                if row.len() > MAX_SIDE as usize || !row.bytes().all(|b| b == b'#' || b == b'.') {
                    return Err(FontError(format!(
                        "line {row_number}: a glyph row is up to {MAX_SIDE} cells of `#` and `.`"
                    )));
                }
                if width == 0 {
                    width = row.len() as u32;
                } else if row.len() as u32 != width {
                    return Err(FontError(format!(
                        "line {row_number}: every row must be {width} cells wide"
                    )));
                }
                rows.push(
                    row.bytes()
                        .enumerate()
                        .fold(0u16, |bits, (x, b)| bits | u16::from(b == b'#') << x),
                );
            }
            if height == 0 {
                height = rows.len() as u32;
            }
            if rows.len() as u32 != height || height == 0 {
                return Err(FontError(format!(
                    "line {number}: glyph {code:#04x} has {} rows, expected {height}",
                    rows.len()
                )));
            }
            glyphs.push(rows);
        }
        let first = first.ok_or_else(|| FontError("it has no glyphs".into()))?;
        Font::new(width, height, first, glyphs)
    }

    fn new(width: u32, height: u32, first: u32, glyphs: Vec<Vec<u16>>) -> Result<Font, FontError> {
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(FontError(format!(
                "glyphs of {width}x{height} (1 to {MAX_SIDE} a side)"
            )));
        }
        if glyphs.is_empty() || glyphs.len() > 4096 || first > 0x10_ffff {
            return Err(FontError(format!(
                "{} glyphs from {first:#x}",
                glyphs.len()
            )));
        }
        Ok(Font {
            width,
            height,
            first,
            glyphs,
        })
    }

    /// The glyph rows of `ch` (the last glyph when the font lacks it).
    pub fn glyph(&self, ch: char) -> &[u16] {
        let index = (ch as u32)
            .checked_sub(self.first)
            .filter(|i| (*i as usize) < self.glyphs.len())
            .unwrap_or(self.glyphs.len() as u32 - 1);
        &self.glyphs[index as usize]
    }

    /// Whether pixel (`x`, `y`) of `ch`'s glyph is lit.
    pub fn lit(&self, ch: char, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.glyph(ch)[y as usize] >> x & 1 == 1
    }

    fn atlas_size(&self) -> (u32, u32) {
        let rows = (self.glyphs.len() as u32).div_ceil(COLUMNS);
        (COLUMNS * self.width, rows * self.height)
    }

    /// The font as a PXI whose payload is its glyph atlas.
    pub fn to_png(&self) -> Vec<u8> {
        let (atlas_width, atlas_height) = self.atlas_size();
        let mut atlas = vec![0u8; atlas_width as usize * atlas_height as usize * 3];
        for (index, rows) in self.glyphs.iter().enumerate() {
            let (column, row) = (index as u32 % COLUMNS, index as u32 / COLUMNS);
            for (y, bits) in rows.iter().enumerate() {
                for x in 0..self.width {
                    if bits >> x & 1 == 1 {
                        let px = column * self.width + x;
                        let py = row * self.height + y as u32;
                        let at = (py as usize * atlas_width as usize + px as usize) * 3;
                        atlas[at..at + 3].fill(255);
                    }
                }
            }
        }
        let meta = FontMeta {
            format: FONT_FORMAT.into(),
            version: 1,
            glyph_width: self.width,
            glyph_height: self.height,
            first: self.first,
            count: self.glyphs.len() as u32,
            columns: COLUMNS,
        };
        let mut metadata = serde_json::to_vec(&meta).expect("font metadata serializes");
        // Pad with spaces (still JSON) so the atlas starts on a row of its own.
        let row_bytes = atlas_width.max(pxos_pixel::MIN_WIDTH) as usize * 3;
        metadata.resize(metadata.len().div_ceil(row_bytes) * row_bytes, b' ');
        let options = EncodeOptions {
            kind: Kind::Blob,
            layout: Layout::Rgb,
            compression: Some(pxos_pixel::Compression::Best),
            width: Some(atlas_width.max(pxos_pixel::MIN_WIDTH)),
            metadata,
        };
        pxos_pixel::encode_to_vec(&atlas, &options).expect("encoding a font in memory works")
    }

    /// Reads a font file (untrusted: every field is checked).
    pub fn from_png(bytes: &[u8]) -> Result<Font, FontError> {
        let limits = Limits {
            max_in_memory: 16 << 20,
            ..Limits::default()
        };
        let (decoded, atlas) = pxos_pixel::decode_from_slice(bytes, &limits)
            .map_err(|err| FontError(err.to_string()))?;
        let meta: FontMeta = serde_json::from_slice(&decoded.metadata)
            .map_err(|err| FontError(format!("its metadata is not a font's ({err})")))?;
        if meta.format != FONT_FORMAT || meta.version != 1 || meta.columns != COLUMNS {
            return Err(FontError(format!(
                "format {:?} version {} with {} columns",
                meta.format, meta.version, meta.columns
            )));
        }
        let probe = Font::new(
            meta.glyph_width,
            meta.glyph_height,
            meta.first,
            vec![Vec::new(); meta.count.min(4097) as usize],
        )?;
        let (atlas_width, atlas_height) = probe.atlas_size();
        if atlas.len() != atlas_width as usize * atlas_height as usize * 3 {
            return Err(FontError(format!(
                "an atlas of {} bytes for {} glyphs of {}x{}",
                atlas.len(),
                meta.count,
                meta.glyph_width,
                meta.glyph_height
            )));
        }
        let glyphs = (0..meta.count)
            .map(|index| {
                let (column, row) = (index % COLUMNS, index / COLUMNS);
                (0..meta.glyph_height)
                    .map(|y| {
                        (0..meta.glyph_width).fold(0u16, |bits, x| {
                            let px = column * meta.glyph_width + x;
                            let py = row * meta.glyph_height + y;
                            let at = (py as usize * atlas_width as usize + px as usize) * 3;
                            let lit = atlas[at..at + 3].iter().any(|&c| c >= 128);
                            bits | u16::from(lit) << x
                        })
                    })
                    .collect()
            })
            .collect();
        Font::new(meta.glyph_width, meta.glyph_height, meta.first, glyphs)
    }
}

/// Where printed text goes on a screen, and in which colour. The cursor (the
/// next text row) lives in the [`Screen`], so it carries over between the
/// programs that share a screen, like the stages of a boot.
#[derive(Clone, Debug)]
pub struct Console {
    pub font: Arc<Font>,
    /// The text area: left, top, width, height in pixels.
    pub area: [u32; 4],
    /// Palette index of the text.
    pub colour: u8,
}

impl Default for Console {
    fn default() -> Console {
        Console {
            font: Font::builtin(),
            area: DEFAULT_CONSOLE_AREA,
            colour: 15,
        }
    }
}

/// The default text area on a 512x512 screen: below the kernel's marks and
/// above the shell's prompt bar (31 lines of 62 characters).
pub const DEFAULT_CONSOLE_AREA: [u32; 4] = [8, 216, 496, 248];

impl Console {
    /// The text area clipped to `screen`: (left, top, columns, rows).
    fn grid(&self, screen: &Screen) -> (u32, u32, u32, u32) {
        let [left, top, width, height] = self.area;
        let right = left.saturating_add(width).min(screen.width());
        let bottom = top.saturating_add(height).min(screen.height());
        let columns = right.saturating_sub(left) / self.font.width;
        let rows = bottom.saturating_sub(top) / self.font.height;
        (left, top, columns, rows)
    }

    /// Where line `row` of the console starts on the screen: (x, y).
    pub fn line_origin(&self, row: u32) -> (u32, u32) {
        (self.area[0], self.area[1] + row * self.font.height)
    }

    /// Clears the text area; the next line prints at its top.
    pub fn clear(&self, screen: &mut Screen) {
        let (left, top, columns, rows) = self.grid(screen);
        screen.fill_rect(
            left,
            top,
            columns * self.font.width,
            rows * self.font.height,
            0,
        );
        screen.text_row = 0;
    }

    /// Draws `text` as the next line, or lines when it holds newlines
    /// (wrapping long lines, scrolling the text area when it is full). Other
    /// control characters show as the font's box.
    pub fn print(&self, screen: &mut Screen, text: &str) {
        let (_, _, columns, rows) = self.grid(screen);
        if columns == 0 || rows == 0 {
            return;
        }
        // A text of many lines draws only the ones that stay on screen.
        let lines: Vec<&str> = text.split('\n').collect();
        let skip = lines.len().saturating_sub(rows as usize);
        for line in &lines[skip..] {
            self.print_line(screen, line);
        }
    }

    fn print_line(&self, screen: &mut Screen, text: &str) {
        let (left, top, columns, rows) = self.grid(screen);
        let chars: Vec<char> = text.chars().collect();
        let lines: Vec<&[char]> = if chars.is_empty() {
            vec![&[]]
        } else {
            chars.chunks(columns as usize).take(rows as usize).collect()
        };
        for line in lines {
            if screen.text_row >= rows {
                screen.scroll_up(
                    left,
                    top,
                    columns * self.font.width,
                    rows * self.font.height,
                    self.font.height,
                );
                screen.text_row = rows - 1;
            }
            let y = top + screen.text_row * self.font.height;
            screen.fill_rect(left, y, columns * self.font.width, self.font.height, 0);
            for (column, &ch) in line.iter().enumerate() {
                let ch = if ch.is_control() { '\u{7f}' } else { ch };
                let x = left + column as u32 * self.font.width;
                for gy in 0..self.font.height {
                    let bits = self.font.glyph(ch)[gy as usize];
                    for gx in 0..self.font.width {
                        if bits >> gx & 1 == 1 {
                            screen.set(x + gx, y + gy, self.colour);
                        }
                    }
                }
            }
            screen.text_row += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_font_round_trips_through_its_pixel_file() {
        let font = Font::builtin();
        assert_eq!((font.width, font.height, font.first), (8, 8, 0x20));
        assert!(font.lit('A', 2, 0) && !font.lit('A', 0, 0));
        let png = font.to_png();
        assert_eq!(Font::from_png(&png).unwrap(), *font);
        // Characters it lacks draw as its last glyph, the box.
        assert_eq!(font.glyph('é'), font.glyph('\u{7f}'));
    }

    #[test]
    fn the_console_wraps_and_scrolls() {
        let mut screen = Screen::new(64, 24).unwrap();
        let console = Console {
            font: Font::builtin(),
            area: [0, 0, 64, 24],
            colour: 15,
        };
        console.print(&mut screen, "0123456789"); // 8 columns: wraps onto a second row
        assert_eq!(screen.text_row, 2);
        console.print(&mut screen, "x");
        console.print(&mut screen, "y"); // scrolls
        assert_eq!(screen.text_row, 3);
        let lit = |screen: &Screen, ch: char, x0: u32, y0: u32| {
            (0..8).all(|y| {
                (0..8)
                    .all(|x| (screen.get(x0 + x, y0 + y) == Some(15)) == console.font.lit(ch, x, y))
            })
        };
        assert!(lit(&screen, '8', 0, 0), "the wrapped tail moved up one row");
        assert!(lit(&screen, 'y', 0, 16));
        for bad in ["", "glyph 0x20\n#\n\nglyph 0x22\n#\n", "glyph 0x20\n#x\n"] {
            assert!(Font::parse_text(bad).is_err(), "{bad:?}");
        }
    }
}
