//! The simulated VRAM: an RGBA texture with named regions and per-pixel
//! provenance ("who wrote this pixel, when").

use serde::{Deserialize, Serialize};

/// The seed's regions: (name, first row, end row); the program area runs to the bottom.
pub const REGIONS: &[(&str, u32, u32)] = &[
    ("metadata", 0, 16),
    ("opcode_palette", 16, 32),
    ("kernel", 32, 128),
    ("syscall_table", 128, 160),
    ("process_table", 160, 224),
    ("program_area", 224, u32::MAX),
];

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
pub fn region_rows(name: &str, height: u32) -> Option<(u32, u32)> {
    REGIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, start, end)| (*start.min(&height), (*end).min(height)))
}

impl Vram {
    /// A black, transparent texture. The seed layout needs at least 225 rows.
    pub fn new(width: u32, height: u32) -> Result<Vram, String> {
        if !(16..=MAX_SIDE).contains(&width) || !(225..=MAX_SIDE).contains(&height) {
            return Err(format!(
                "VRAM of {width}x{height} is outside 16..={MAX_SIDE} wide and 225..={MAX_SIDE} high"
            ));
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
    pub fn fill_region(&mut self, region: &str, rgba: [u8; 4]) -> Result<u64, String> {
        let (start, end) =
            region_rows(region, self.height).ok_or_else(|| format!("unknown region '{region}'"))?;
        Ok(self.fill_rect(0, start, self.width, end - start, rgba))
    }

    /// Address of pixel (x, y) as a PXVM word address.
    pub fn address(&self, x: u32, y: u32) -> u32 {
        y * self.width + x
    }

    /// First word address of a region.
    pub fn region_address(&self, region: &str) -> Result<u32, String> {
        let (start, _) =
            region_rows(region, self.height).ok_or_else(|| format!("unknown region '{region}'"))?;
        Ok(start * self.width)
    }

    /// Writes 32-bit words (one per pixel, R = low byte) into `region` from word `offset`.
    pub fn write_words(&mut self, region: &str, offset: u32, words: &[u32]) -> Result<(), String> {
        let (start, end) =
            region_rows(region, self.height).ok_or_else(|| format!("unknown region '{region}'"))?;
        let capacity = u64::from(end - start) * u64::from(self.width);
        if u64::from(offset) + words.len() as u64 > capacity {
            return Err(format!(
                "{} words at {offset} do not fit region {region} ({capacity} pixels)",
                words.len()
            ));
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
    pub fn region_words(&self, region: &str) -> Result<Vec<u32>, String> {
        let (start, end) =
            region_rows(region, self.height).ok_or_else(|| format!("unknown region '{region}'"))?;
        let range = (start * self.width) as usize..(end * self.width) as usize;
        Ok(self.pixels[range]
            .iter()
            .map(|p| u32::from_le_bytes(*p))
            .collect())
    }

    /// Writes bytes packed four per pixel (zero padded) into `region` at word `offset`.
    pub fn write_bytes(&mut self, region: &str, offset: u32, bytes: &[u8]) -> Result<(), String> {
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

    /// The name of the region holding row `y`.
    pub fn region_of(&self, y: u32) -> &'static str {
        REGIONS
            .iter()
            .find(|(_, start, end)| y >= *start && y < *end)
            .map_or("outside", |(name, _, _)| name)
    }

    /// Encodes the texture as an RGBA PNG.
    pub fn to_png(&self) -> Vec<u8> {
        encode_rgba(self.width, self.height, &self.pixels.concat())
    }

    /// Loads a texture from a PNG (any 8-bit colour type; provenance is empty).
    pub fn from_png(bytes: &[u8]) -> Result<Vram, String> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let info = decoder
            .read_header_info()
            .map_err(|err| format!("not a PNG: {err}"))?;
        let (width, height) = (info.width, info.height);
        let mut vram = Vram::new(width, height)?;
        let mut reader = decoder
            .read_info()
            .map_err(|err| format!("not a PNG: {err}"))?;
        let mut buffer = vec![0u8; reader.output_buffer_size().ok_or("image too large")?];
        let frame = reader
            .next_frame(&mut buffer)
            .map_err(|err| format!("damaged PNG: {err}"))?;
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
    pub fn load_provenance(&mut self, value: &serde_json::Value) -> Result<(), String> {
        let writes: Vec<Write> =
            serde_json::from_value(value["writes"].clone()).map_err(|err| err.to_string())?;
        let runs: Vec<[u32; 3]> =
            serde_json::from_value(value["runs"].clone()).map_err(|err| err.to_string())?;
        for [start, count, id] in runs {
            if id as usize > writes.len()
                || u64::from(start) + u64::from(count) > self.provenance.len() as u64
            {
                return Err("provenance does not fit this texture".into());
            }
            self.provenance[start as usize..(start + count) as usize].fill(id);
        }
        self.writes = writes;
        Ok(())
    }

    /// Pixels changed between `self` and `other`, per region, and a PNG that
    /// shows unchanged pixels dimmed and changed ones in magenta.
    pub fn diff(&self, other: &Vram) -> Result<Diff, String> {
        if (self.width, self.height) != (other.width, other.height) {
            return Err("the two VRAM images differ in size".into());
        }
        let mut counts: Vec<(String, u64)> =
            REGIONS.iter().map(|(n, _, _)| (n.to_string(), 0)).collect();
        let mut image = Vec::with_capacity(self.pixels.len() * 4);
        for (index, (a, b)) in self.pixels.iter().zip(&other.pixels).enumerate() {
            let y = index as u32 / self.width;
            if a != b {
                let region = self.region_of(y);
                if let Some(entry) = counts.iter_mut().find(|(n, _)| n == region) {
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
    pub changed: Vec<(String, u64)>,
    pub png: Vec<u8>,
}

fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    pxos_pixel::plain_png(width, height, pxos_pixel::PlainColor::Rgba, rgba)
}
