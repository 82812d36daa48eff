//! The simulated VRAM: an RGBA texture with named regions and per-pixel
//! provenance ("who wrote this pixel, when").

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The seed's regions of the VRAM, top to bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Region {
    Metadata,
    OpcodePalette,
    Kernel,
    SyscallTable,
    ProcessTable,
    ProgramArea,
}

impl Region {
    /// Every region, top to bottom.
    pub const ALL: [Region; 6] = [
        Region::Metadata,
        Region::OpcodePalette,
        Region::Kernel,
        Region::SyscallTable,
        Region::ProcessTable,
        Region::ProgramArea,
    ];

    /// The name roadmaps use.
    pub fn name(self) -> &'static str {
        match self {
            Region::Metadata => "metadata",
            Region::OpcodePalette => "opcode_palette",
            Region::Kernel => "kernel",
            Region::SyscallTable => "syscall_table",
            Region::ProcessTable => "process_table",
            Region::ProgramArea => "program_area",
        }
    }

    /// First row and end row; the program area runs to the bottom.
    pub fn rows(self) -> (u32, u32) {
        match self {
            Region::Metadata => (0, 16),
            Region::OpcodePalette => (16, 32),
            Region::Kernel => (32, 128),
            Region::SyscallTable => (128, 160),
            Region::ProcessTable => (160, 224),
            Region::ProgramArea => (224, u32::MAX),
        }
    }

    /// The region holding row `y`.
    pub fn of_row(y: u32) -> Option<Region> {
        Region::ALL.into_iter().find(|r| {
            let (start, end) = r.rows();
            y >= start && y < end
        })
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Region {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Region, String> {
        Region::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown region '{text}' (known: {})",
                    Region::ALL.map(Region::name).join(", ")
                )
            })
    }
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Region, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Largest VRAM side accepted.
pub const MAX_SIDE: u32 = 4096;

/// Who wrote a pixel: the writer, the roadmap step and a global sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub writer: String,
    pub step: String,
    pub seq: u64,
}

/// The texture and its history.
#[derive(Clone, Debug)]
pub struct Vram {
    width: u32,
    height: u32,
    pixels: Vec<[u8; 4]>,
    /// Per pixel: index + 1 into `writes` of its last write (0: never written).
    provenance: Vec<u32>,
    writes: Vec<Write>,
    current: Option<u32>,
}

/// A region's rows, clipped to the texture.
pub fn region_rows(region: Region, height: u32) -> (u32, u32) {
    let (start, end) = region.rows();
    (start.min(height), end.min(height))
}

impl Vram {
    /// A black, transparent texture. The seed layout needs at least 225 rows.
    pub fn new(width: u32, height: u32) -> Result<Vram> {
        if !(16..=MAX_SIDE).contains(&width) || !(225..=MAX_SIDE).contains(&height) {
            return Err(Error::bad_input(format!(
                "VRAM of {width}x{height} is outside 16..={MAX_SIDE} wide and 225..={MAX_SIDE} high"
            )));
        }
        let count = width as usize * height as usize;
        Ok(Vram {
            width,
            height,
            pixels: vec![[0; 4]; count],
            provenance: vec![0; count],
            writes: Vec::new(),
            current: None,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        (x < self.width && y < self.height).then(|| self.pixels[(y * self.width + x) as usize])
    }

    /// Starts a new write batch by `writer` for roadmap step `step`.
    pub fn begin(&mut self, writer: &str, step: &str) {
        self.writes.push(Write {
            writer: writer.into(),
            step: step.into(),
            seq: self.writes.len() as u64 + 1,
        });
        self.current = Some(self.writes.len() as u32);
    }

    fn mark(&mut self, index: usize) {
        if self.current.is_none() {
            self.begin("host", "direct");
        }
        self.provenance[index] = self.current.unwrap_or(0);
    }

    /// Writes one pixel; `false` off the texture.
    pub fn write_pixel(&mut self, x: u32, y: u32, rgba: [u8; 4]) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let index = (y * self.width + x) as usize;
        self.pixels[index] = rgba;
        self.mark(index);
        true
    }

    /// Fills a rectangle (clipped); returns the pixels written.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, rgba: [u8; 4]) -> u64 {
        let (x1, y1) = (
            x.saturating_add(w).min(self.width),
            y.saturating_add(h).min(self.height),
        );
        let mut count = 0;
        for row in y.min(y1)..y1 {
            for column in x.min(x1)..x1 {
                self.write_pixel(column, row, rgba);
                count += 1;
            }
        }
        count
    }

    /// Fills a named region.
    pub fn fill_region(&mut self, region: Region, rgba: [u8; 4]) -> u64 {
        let (start, end) = region_rows(region, self.height);
        self.fill_rect(0, start, self.width, end - start, rgba)
    }

    /// Address of pixel (x, y) as a PXVM word address.
    pub fn address(&self, x: u32, y: u32) -> u32 {
        y * self.width + x
    }

    /// First word address of a region.
    pub fn region_address(&self, region: Region) -> u32 {
        region_rows(region, self.height).0 * self.width
    }

    /// Writes 32-bit words (one per pixel, R = low byte) into `region` from word `offset`.
    pub fn write_words(&mut self, region: Region, offset: u32, words: &[u32]) -> Result<()> {
        let (start, end) = region_rows(region, self.height);
        let capacity = u64::from(end - start) * u64::from(self.width);
        if u64::from(offset) + words.len() as u64 > capacity {
            return Err(Error::bad_input(format!(
                "{} words at {offset} do not fit region {region} ({capacity} pixels)",
                words.len()
            )));
        }
        let base = start * self.width + offset;
        for (i, word) in words.iter().enumerate() {
            let index = base as usize + i;
            self.pixels[index] = word.to_le_bytes();
            self.mark(index);
        }
        Ok(())
    }

    /// Reads the words of a region.
    pub fn region_words(&self, region: Region) -> Vec<u32> {
        let (start, end) = region_rows(region, self.height);
        let range = (start * self.width) as usize..(end * self.width) as usize;
        self.pixels[range]
            .iter()
            .map(|p| u32::from_le_bytes(*p))
            .collect()
    }

    /// Writes bytes packed four per pixel (zero padded) into `region` at word `offset`.
    pub fn write_bytes(&mut self, region: Region, offset: u32, bytes: &[u8]) -> Result<()> {
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| {
                let mut word = [0u8; 4];
                word[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(word)
            })
            .collect();
        self.write_words(region, offset, &words)
    }

    /// Memory for PXVM: every pixel as a word, address = y * width + x.
    pub fn as_words(&self) -> Vec<u32> {
        self.pixels.iter().map(|p| u32::from_le_bytes(*p)).collect()
    }

    /// Who last wrote pixel (x, y).
    pub fn who_wrote(&self, x: u32, y: u32) -> Option<&Write> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let id = self.provenance[(y * self.width + x) as usize];
        (id > 0).then(|| &self.writes[id as usize - 1])
    }

    /// The region holding row `y` (`None` below the texture).
    pub fn region_of(&self, y: u32) -> Option<Region> {
        if y >= self.height {
            return None;
        }
        Region::of_row(y)
    }

    /// Encodes the texture as an RGBA PNG.
    pub fn to_png(&self) -> Vec<u8> {
        encode_rgba(self.width, self.height, &self.pixels.concat())
    }

    /// Loads a texture from a PNG (any 8-bit colour type; provenance is empty).
    pub fn from_png(bytes: &[u8]) -> Result<Vram> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let info = decoder.read_header_info().map_err(|err| {
            Error::bad_input(format!("not a PNG: {}", pxos_pixel::png_error_text(&err)))
        })?;
        let (width, height) = (info.width, info.height);
        let mut vram = Vram::new(width, height)?;
        let mut reader = decoder.read_info().map_err(|err| {
            Error::bad_input(format!("not a PNG: {}", pxos_pixel::png_error_text(&err)))
        })?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::bad_input("image too large"))?;
        let mut buffer = vec![0u8; size];
        let frame = reader.next_frame(&mut buffer).map_err(|err| {
            Error::bad_input(format!("damaged PNG: {}", pxos_pixel::png_error_text(&err)))
        })?;
        let channels = frame.color_type.samples();
        for (index, pixel) in buffer
            .chunks_exact(channels)
            .take(vram.pixels.len())
            .enumerate()
        {
            vram.pixels[index] = match channels {
                4 => [pixel[0], pixel[1], pixel[2], pixel[3]],
                3 => [pixel[0], pixel[1], pixel[2], 255],
                2 => [pixel[0], pixel[0], pixel[0], pixel[1]],
                _ => [pixel[0], pixel[0], pixel[0], 255],
            };
        }
        Ok(vram)
    }

    /// The provenance as JSON: the writes, and runs of (first pixel, count, write id).
    pub fn provenance_json(&self) -> serde_json::Value {
        let mut runs: Vec<[u32; 3]> = Vec::new();
        for (index, &id) in self.provenance.iter().enumerate() {
            match runs.last_mut() {
                Some(run) if run[2] == id && (run[0] + run[1]) as usize == index => run[1] += 1,
                _ => runs.push([index as u32, 1, id]),
            }
        }
        runs.retain(|run| run[2] != 0);
        serde_json::json!({"width": self.width, "height": self.height, "writes": self.writes, "runs": runs})
    }

    /// Restores provenance saved by [`Vram::provenance_json`].
    pub fn load_provenance(&mut self, value: &serde_json::Value) -> Result<()> {
        let invalid =
            |err: serde_json::Error| Error::bad_input(format!("invalid provenance: {err}"));
        let writes: Vec<Write> =
            serde_json::from_value(value["writes"].clone()).map_err(invalid)?;
        let runs: Vec<[u32; 3]> = serde_json::from_value(value["runs"].clone()).map_err(invalid)?;
        for [start, count, id] in runs {
            if id as usize > writes.len()
                || u64::from(start) + u64::from(count) > self.provenance.len() as u64
            {
                return Err(Error::bad_input("provenance does not fit this texture"));
            }
            self.provenance[start as usize..(start + count) as usize].fill(id);
        }
        self.writes = writes;
        Ok(())
    }

    /// Pixels changed between `self` and `other`, per region, and a PNG that
    /// shows unchanged pixels dimmed and changed ones in magenta.
    pub fn diff(&self, other: &Vram) -> Result<Diff> {
        if (self.width, self.height) != (other.width, other.height) {
            return Err(Error::bad_input(format!(
                "the two VRAM images differ in size ({}x{} and {}x{})",
                self.width, self.height, other.width, other.height
            )));
        }
        let mut counts: Vec<(Region, u64)> = Region::ALL.iter().map(|r| (*r, 0)).collect();
        let mut image = Vec::with_capacity(self.pixels.len() * 4);
        for (index, (a, b)) in self.pixels.iter().zip(&other.pixels).enumerate() {
            let y = index as u32 / self.width;
            if a != b {
                let region = self.region_of(y);
                if let Some(entry) = counts.iter_mut().find(|(n, _)| Some(*n) == region) {
                    entry.1 += 1;
                }
                image.extend_from_slice(&[255, 0, 255, 255]);
            } else {
                image.extend_from_slice(&[b[0] / 4, b[1] / 4, b[2] / 4, 255]);
            }
        }
        Ok(Diff {
            changed: counts,
            png: encode_rgba(self.width, self.height, &image),
        })
    }
}

/// Changed pixels per region, and the diff image.
pub struct Diff {
    pub changed: Vec<(Region, u64)>,
    pub png: Vec<u8>,
}

fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    pxos_pixel::plain_png(width, height, pxos_pixel::PlainColor::Rgba, rgba)
}
