//! The PXI header and image geometry.
//!
//! The header is 68 bytes stored in the RGB channels of the first pixels of
//! row 0 (alpha, when present, is 255 there). Byte `i` of the header is
//! channel `i % 3` of pixel `i / 3`. Every multi-byte field is little-endian.
//! See `docs/formats/pxi.md` for the table and a worked example.

use crate::error::{Error, Result};

/// The four magic bytes that open every PXI header.
pub const MAGIC: [u8; 4] = *b"PXI\x1a";
/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Length of the serialized header in bytes.
pub const HEADER_LEN: usize = 68;
/// Pixels of row 0 that carry the header (3 bytes each).
pub const HEADER_PIXELS: u32 = HEADER_LEN.div_ceil(3) as u32;
/// The narrowest image a PXI may be (row 0 must hold the header).
pub const MIN_WIDTH: u32 = 24;
/// The widest image this crate writes or accepts.
pub const MAX_WIDTH: u32 = 16384;
/// Rows above the data area (only the header row).
pub const HEADER_ROWS: u32 = 1;
/// Raw bytes aimed at per random-access band (filter bytes included).
pub const BAND_TARGET_BYTES: usize = 128 * 1024;

/// How payload bytes are packed into pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Three bytes per pixel (R, G, B). The default: survives tools that touch alpha.
    Rgb,
    /// Four bytes per pixel (R, G, B, A): one 32-bit word per pixel.
    Rgba,
}

impl Layout {
    /// Payload bytes carried by one pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Rgb => "rgb",
            Layout::Rgba => "rgba",
        }
    }

    fn code(self) -> u8 {
        match self {
            Layout::Rgb => 0,
            Layout::Rgba => 1,
        }
    }

    fn from_code(code: u8) -> Option<Layout> {
        match code {
            0 => Some(Layout::Rgb),
            1 => Some(Layout::Rgba),
            _ => None,
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = Error;
    fn from_str(text: &str) -> Result<Layout> {
        match text {
            "rgb" => Ok(Layout::Rgb),
            "rgba" => Ok(Layout::Rgba),
            _ => Err(Error::Usage(format!(
                "unknown layout '{text}' (expected rgb or rgba)"
            ))),
        }
    }
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// What a PXI payload is. Decides the default compression policy.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($(#[$doc])* $variant = $code,)*
        }

        impl Kind {
            /// Every kind, in code order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The name used on the command line, in JSON and in PixelFS entries.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name,)* }
            }

            /// The kind with header code `code`.
            pub fn from_code(code: u8) -> Option<Kind> {
                match code { $($code => Some(Kind::$variant),)* _ => None }
            }

            /// The header code.
            pub fn code(self) -> u8 {
                self as u8
            }
        }

        impl std::str::FromStr for Kind {
            type Err = Error;
            fn from_str(text: &str) -> Result<Kind> {
                match text {
                    $($name => Ok(Kind::$variant),)*
                    _ => Err(Error::Usage(format!(
                        "unknown kind '{text}' (expected one of: {})",
                        [$($name),*].join(", ")
                    ))),
                }
            }
        }
    };
}

kinds! {
    /// Arbitrary bytes.
    Blob = 0, "blob";
    /// UTF-8 text (documents, sources).
    Text = 1, "text";
    /// A PXVM program image.
    Program = 2, "program";
    /// A cartridge or other archive.
    Archive = 3, "archive";
    /// Model weights or other numeric tensors.
    Tensor = 4, "tensor";
    /// A structured table (for example the PixelFS path table).
    Table = 5, "table";
}

impl Kind {
    /// The compression a writer picks for this kind when the caller does not say.
    pub fn default_compression(self) -> Compression {
        match self {
            Kind::Text | Kind::Program | Kind::Table => Compression::Best,
            Kind::Tensor => Compression::Stored,
            Kind::Blob | Kind::Archive => Compression::Auto,
        }
    }
}

/// The deflate policy of the image data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Deflate stored blocks: no compression, fastest, for incompressible payloads.
    Stored,
    /// Fast deflate (level 1).
    Fast,
    /// Thorough deflate (level 9); text and code.
    Best,
    /// Try fast deflate on the first band and keep it only if it saves at least 10%.
    Auto,
}

impl Compression {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Stored => "stored",
            Compression::Fast => "fast",
            Compression::Best => "best",
            Compression::Auto => "auto",
        }
    }

    fn code(self) -> u8 {
        match self {
            Compression::Stored => 0,
            Compression::Fast => 1,
            Compression::Best => 2,
            Compression::Auto => 3,
        }
    }

    fn from_code(code: u8) -> Option<Compression> {
        match code {
            0 => Some(Compression::Stored),
            1 => Some(Compression::Fast),
            2 => Some(Compression::Best),
            _ => None,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;
    fn from_str(text: &str) -> Result<Compression> {
        match text {
            "stored" => Ok(Compression::Stored),
            "fast" => Ok(Compression::Fast),
            "best" => Ok(Compression::Best),
            "auto" => Ok(Compression::Auto),
            _ => Err(Error::Usage(format!(
                "unknown compression '{text}' (expected stored, fast, best or auto)"
            ))),
        }
    }
}

/// The decoded PXI header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version (always [`VERSION`] for files this crate accepts).
    pub version: u8,
    /// How bytes are packed into pixels.
    pub layout: Layout,
    /// What the payload is.
    pub kind: Kind,
    /// The compression the writer used (never `Auto`: the resolved choice).
    pub compression: Compression,
    /// Image width in pixels.
    pub width: u32,
    /// Data rows per random-access band.
    pub band_rows: u32,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Metadata length in bytes (metadata precedes the payload in the data area).
    pub metadata_len: u32,
    /// CRC-32 of the metadata bytes.
    pub metadata_crc32: u32,
    /// SHA-256 of the payload.
    pub sha256: [u8; 32],
}

impl Header {
    /// Serializes the header, including its trailing CRC-32.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = self.version;
        out[5] = self.layout.code();
        out[6] = self.kind.code();
        out[7] = self.compression.code();
        out[8..12].copy_from_slice(&self.width.to_le_bytes());
        out[12..16].copy_from_slice(&self.band_rows.to_le_bytes());
        out[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.metadata_len.to_le_bytes());
        out[28..32].copy_from_slice(&self.metadata_crc32.to_le_bytes());
        out[32..64].copy_from_slice(&self.sha256);
        let crc = crc32fast::hash(&out[0..64]);
        out[64..68].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// True when `bytes` starts with the PXI magic.
    pub fn has_magic(bytes: &[u8]) -> bool {
        bytes.len() >= 4 && bytes[0..4] == MAGIC
    }

    /// Parses and checks a header. Distinguishes "not a PXI" (no magic) from a
    /// damaged header (magic present, CRC or fields wrong).
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::format(format!(
                "header needs {HEADER_LEN} bytes, found {}",
                bytes.len()
            )));
        }
        if !Header::has_magic(bytes) {
            return Err(Error::format(
                "this PNG has no PXI header in its first row (it is an ordinary image, not a pixel file)",
            ));
        }
        let stored_crc = u32::from_le_bytes(bytes[64..68].try_into().unwrap());
        let actual_crc = crc32fast::hash(&bytes[0..64]);
        if stored_crc != actual_crc {
            return Err(Error::format(format!(
                "the PXI header is corrupted (header crc32 {stored_crc:08x}, computed {actual_crc:08x})"
            )));
        }
        let version = bytes[4];
        if version != VERSION {
            return Err(Error::format(format!(
                "PXI version {version} is not supported (this build reads version {VERSION})"
            )));
        }
        let layout = Layout::from_code(bytes[5])
            .ok_or_else(|| Error::format(format!("unknown layout code {}", bytes[5])))?;
        let kind = Kind::from_code(bytes[6])
            .ok_or_else(|| Error::format(format!("unknown kind code {}", bytes[6])))?;
        let compression = Compression::from_code(bytes[7])
            .ok_or_else(|| Error::format(format!("unknown compression code {}", bytes[7])))?;
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let header = Header {
            version,
            layout,
            kind,
            compression,
            width: u32_at(8),
            band_rows: u32_at(12),
            payload_len: u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            metadata_len: u32_at(24),
            metadata_crc32: u32_at(28),
            sha256: bytes[32..64].try_into().unwrap(),
        };
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&header.width) {
            return Err(Error::format(format!(
                "header width {} is outside {MIN_WIDTH}..={MAX_WIDTH}",
                header.width
            )));
        }
        if header.band_rows == 0 {
            return Err(Error::format("header band_rows is 0"));
        }
        Ok(header)
    }

    /// The image geometry this header describes, or an error when it overflows.
    pub fn geometry(&self) -> Result<Geometry> {
        Geometry::new(
            self.width,
            self.layout,
            u64::from(self.metadata_len)
                .checked_add(self.payload_len)
                .ok_or_else(|| Error::format("payload length overflows"))?,
            self.band_rows,
        )
    }

    /// The first four bytes of the payload hash: the content's `file_id`.
    pub fn file_id(&self) -> u32 {
        u32::from_be_bytes(self.sha256[0..4].try_into().unwrap())
    }
}

/// Where things are in a PXI image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels (header rows plus data rows, at least 1).
    pub height: u32,
    /// Bytes per pixel in the data area.
    pub bytes_per_pixel: usize,
    /// Data bytes per row (`width * bytes_per_pixel`).
    pub row_bytes: usize,
    /// Metadata plus payload bytes.
    pub data_len: u64,
    /// Rows holding data (after the header row).
    pub data_rows: u64,
    /// Data rows per band.
    pub band_rows: u32,
}

impl Geometry {
    /// Computes the geometry for `data_len` bytes at `width`.
    pub fn new(width: u32, layout: Layout, data_len: u64, band_rows: u32) -> Result<Geometry> {
        let bytes_per_pixel = layout.bytes_per_pixel();
        let row_bytes = width as usize * bytes_per_pixel;
        let data_rows = data_len.div_ceil(row_bytes as u64);
        let height = data_rows + u64::from(HEADER_ROWS);
        // PNG allows heights up to 2^31 - 1.
        if height > i32::MAX as u64 {
            return Err(Error::LimitExceeded(format!(
                "{data_len} bytes need {height} rows at width {width}; PNG allows at most {}",
                i32::MAX
            )));
        }
        Ok(Geometry {
            width,
            height: height as u32,
            bytes_per_pixel,
            row_bytes,
            data_len,
            data_rows,
            band_rows: band_rows.max(1),
        })
    }

    /// Number of data bands (0 for an empty data area).
    pub fn band_count(&self) -> u64 {
        self.data_rows.div_ceil(u64::from(self.band_rows))
    }

    /// Data rows in band `band`.
    pub fn rows_in_band(&self, band: u64) -> u64 {
        let start = band * u64::from(self.band_rows);
        (self.data_rows - start).min(u64::from(self.band_rows))
    }
}

/// The band height that keeps a band near [`BAND_TARGET_BYTES`].
pub fn default_band_rows(row_bytes: usize) -> u32 {
    (BAND_TARGET_BYTES / (row_bytes + 1)).clamp(1, 1 << 16) as u32
}

/// The width a writer picks for `data_len` bytes: about square, a power of
/// two between 32 and 4096 pixels.
pub fn default_width(data_len: u64, layout: Layout) -> u32 {
    let pixels = data_len.div_ceil(layout.bytes_per_pixel() as u64).max(1);
    let side = (pixels as f64).sqrt().ceil() as u64;
    side.next_power_of_two().clamp(32, 4096) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: VERSION,
            layout: Layout::Rgb,
            kind: Kind::Text,
            compression: Compression::Best,
            width: 32,
            band_rows: 1337,
            payload_len: 12,
            metadata_len: 0,
            metadata_crc32: 0,
            sha256: [7; 32],
        }
    }

    #[test]
    fn header_round_trips() {
        let header = sample();
        assert_eq!(Header::parse(&header.to_bytes()).unwrap(), header);
    }

    #[test]
    fn every_flipped_header_byte_is_refused() {
        let bytes = sample().to_bytes();
        for at in 0..HEADER_LEN {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(
                Header::parse(&damaged).is_err(),
                "byte {at} flipped was accepted"
            );
        }
    }

    #[test]
    fn widths_are_powers_of_two_in_range() {
        assert_eq!(default_width(0, Layout::Rgb), 32);
        assert_eq!(default_width(10 << 20, Layout::Rgb), 2048);
        assert_eq!(default_width(1 << 40, Layout::Rgb), 4096);
    }
}
