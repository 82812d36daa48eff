//! Writing PXI files.
//!
//! The writer produces a PNG with this chunk sequence:
//!
//! ```text
//! signature, IHDR,
//! IDAT  zlib header (2 bytes)
//! IDAT  header band: row 0 (the PXI header), stored
//! IDAT  one chunk per data band: deflate data ending on a full flush
//! IDAT  final empty stored block + Adler-32
//! pxIX  random-access index (ancillary, unsafe to copy)
//! IEND
//! ```
//!
//! Every band begins at a deflate restart point and its rows use filter None,
//! so a reader can inflate one band without touching the others.

use std::io::{Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::header::{
    Compression, Geometry, HEADER_LEN, HEADER_ROWS, Header, Kind, Layout, MAX_WIDTH, MIN_WIDTH,
    VERSION, default_band_rows, default_width,
};
use crate::index::{BandEntry, Index};
use crate::png_chunks::{PNG_SIGNATURE, adler32_combine, write_chunk};

/// What to write. `Default` gives a `blob` with the kind's default policy.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    /// The payload kind (recorded in the header; decides the default compression).
    pub kind: Kind,
    /// Bytes per pixel.
    pub layout: Layout,
    /// Overrides the kind's default compression.
    pub compression: Option<Compression>,
    /// Overrides the automatic width (must be within 24..=16384).
    pub width: Option<u32>,
    /// Free-form metadata bytes stored before the payload (JSON by convention).
    pub metadata: Vec<u8>,
}

impl Default for EncodeOptions {
    fn default() -> EncodeOptions {
        EncodeOptions {
            kind: Kind::Blob,
            layout: Layout::Rgb,
            compression: None,
            width: None,
            metadata: Vec::new(),
        }
    }
}

impl EncodeOptions {
    /// Options for `kind` with everything else default.
    pub fn kind(kind: Kind) -> EncodeOptions {
        EncodeOptions {
            kind,
            ..EncodeOptions::default()
        }
    }
}

/// What the writer produced.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The header written into row 0.
    pub header: Header,
    /// The image geometry.
    pub geometry: Geometry,
    /// Total bytes of the PNG file.
    pub file_len: u64,
}

/// Encodes `payload` into a PXI image in memory.
///
/// The SHA-256 runs on a second thread while the pixels are written.
pub fn encode_to_vec(payload: &[u8], options: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::with_capacity(
        payload.len() + payload.len() / 64 + 4096,
    ));
    std::thread::scope(|scope| {
        let hasher = scope.spawn(|| -> [u8; 32] { Sha256::digest(payload).into() });
        let sha = move || {
            hasher
                .join()
                .map_err(|_| Error::Usage("hash thread panicked".into()))
        };
        encode(
            payload,
            payload.len() as u64,
            Some(Box::new(sha)),
            &mut out,
            options,
            &mut |_| {},
        )
    })?;
    Ok(out.into_inner())
}

/// A deferred SHA-256 of the payload, computed by the caller (typically on another thread).
pub type ShaSource<'a> = Box<dyn FnOnce() -> Result<[u8; 32]> + Send + 'a>;

/// Encodes `payload_len` bytes read from `payload` into `out`.
///
/// `out` must be positioned at the start of an empty file; it needs `Seek`
/// because the header (which holds the hash) is patched after the payload is
/// written. When `sha` is `None` the hash is computed inline. `progress` is
/// called with the number of payload bytes written so far.
pub fn encode<R: Read, W: Write + Seek>(
    mut payload: R,
    payload_len: u64,
    sha: Option<ShaSource<'_>>,
    out: &mut W,
    options: &EncodeOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Encoded> {
    let layout = options.layout;
    let metadata_len = u32::try_from(options.metadata.len())
        .map_err(|_| Error::Usage("metadata is larger than 4 GiB".into()))?;
    let data_len = u64::from(metadata_len)
        .checked_add(payload_len)
        .ok_or_else(|| Error::Usage("payload length overflows".into()))?;
    let width = match options.width {
        Some(width) if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) => {
            return Err(Error::Usage(format!(
                "width {width} is outside {MIN_WIDTH}..={MAX_WIDTH} (row 0 must hold the header)"
            )));
        }
        Some(width) => width,
        None => default_width(data_len, layout),
    };
    let row_bytes = width as usize * layout.bytes_per_pixel();
    let geometry = Geometry::new(width, layout, data_len, default_band_rows(row_bytes))?;
    let mut header = Header {
        version: VERSION,
        layout,
        kind: options.kind,
        compression: options
            .compression
            .unwrap_or(options.kind.default_compression()),
        width,
        band_rows: geometry.band_rows,
        payload_len,
        metadata_len,
        metadata_crc32: crc32fast::hash(&options.metadata),
        sha256: [0; 32],
    };

    let mut writer = CountingWriter {
        inner: out,
        position: 0,
    };
    writer.write_all(&PNG_SIGNATURE)?;
    write_chunk(&mut writer, b"IHDR", &ihdr(&geometry, layout))?;
    // The zlib header gets a chunk of its own so that every band starts a chunk.
    write_chunk(&mut writer, b"IDAT", &[0x78, 0x01])?;
    let header_chunk_offset = writer.position;
    let placeholder = header_row(&header, &geometry);
    write_stored_chunk(&mut writer, &placeholder)?;

    let mut source = DataSource {
        metadata: &options.metadata,
        position: 0,
        payload: &mut payload,
        payload_remaining: payload_len,
        hasher: if sha.is_none() {
            Some(Sha256::new())
        } else {
            None
        },
    };
    let mut deflater = match header.compression {
        Compression::Stored => None,
        Compression::Fast | Compression::Auto => Some(Deflater::new(1)),
        Compression::Best => Some(Deflater::new(9)),
    };
    let mut adler = simd_adler32::Adler32::new();
    let mut body_len: u64 = 0;
    let mut entries = Vec::with_capacity(geometry.band_count() as usize);
    let mut band = Vec::with_capacity((row_bytes + 1) * geometry.band_rows as usize);
    for band_number in 0..geometry.band_count() {
        band.clear();
        for _ in 0..geometry.rows_in_band(band_number) {
            band.push(0); // Filter type None.
            let start = band.len();
            band.resize(start + row_bytes, 0);
            source.fill(&mut band[start..])?;
        }
        adler.write(&band);
        body_len += band.len() as u64;
        let offset = writer.position;
        let compressed = match deflater.as_mut() {
            Some(deflater) => deflater.compress_band(&band)?,
            None => None,
        };
        let chunk_len = match compressed {
            Some(data) => {
                write_chunk(&mut writer, b"IDAT", data)?;
                data.len()
            }
            None => {
                if band_number == 0 && header.compression == Compression::Auto {
                    // Fast deflate saved too little on the first band: go stored.
                    deflater = None;
                }
                write_stored_chunk(&mut writer, &band)?
            }
        };
        if band_number == 0 && header.compression == Compression::Auto {
            header.compression = if deflater.is_some() {
                Compression::Fast
            } else {
                Compression::Stored
            };
        }
        entries.push(BandEntry {
            chunk_offset: offset,
            chunk_len: chunk_len as u32,
        });
        progress(source.payload_done(payload_len));
    }
    if header.compression == Compression::Auto {
        header.compression = Compression::Stored;
    }
    if source.payload_remaining != 0 {
        return Err(Error::Usage(
            "payload reader produced fewer bytes than declared".into(),
        ));
    }
    header.sha256 = match sha {
        Some(sha) => sha()?,
        None => source
            .hasher
            .take()
            .expect("inline hasher")
            .finalize()
            .into(),
    };

    // Final empty stored block, then the Adler-32 of the whole zlib stream.
    let header_band = header_row(&header, &geometry);
    let header_adler = {
        let mut a = simd_adler32::Adler32::new();
        a.write(&header_band);
        a.finish()
    };
    let total_adler = adler32_combine(header_adler, adler.finish(), body_len);
    let mut tail = vec![0x01, 0x00, 0x00, 0xff, 0xff];
    tail.extend_from_slice(&total_adler.to_be_bytes());
    write_chunk(&mut writer, b"IDAT", &tail)?;

    let index = Index {
        band_rows: geometry.band_rows,
        header_chunk_offset,
        sha256: header.sha256,
        entries,
    };
    write_chunk(&mut writer, b"pxIX", &index.to_bytes())?;
    write_chunk(&mut writer, b"IEND", &[])?;
    let file_len = writer.position;

    // Patch the header row now that the hash is known (same length as the placeholder).
    out.seek(SeekFrom::Current(
        -((file_len - header_chunk_offset) as i64),
    ))?;
    let patched = {
        let mut patch = CountingWriter {
            inner: out,
            position: 0,
        };
        write_stored_chunk(&mut patch, &header_band)?;
        patch.position
    };
    out.seek(SeekFrom::Current(
        (file_len - header_chunk_offset - patched) as i64,
    ))?;
    out.flush()?;
    Ok(Encoded {
        header,
        geometry,
        file_len,
    })
}

/// Row 0 with its filter byte: the header in the RGB channels, alpha 255.
fn header_row(header: &Header, geometry: &Geometry) -> Vec<u8> {
    let bytes = header.to_bytes();
    let bpp = geometry.bytes_per_pixel;
    let mut row = vec![0u8; 1 + geometry.row_bytes];
    for pixel in 0..geometry.width as usize {
        for channel in 0..3 {
            let at = pixel * 3 + channel;
            row[1 + pixel * bpp + channel] = if at < HEADER_LEN { bytes[at] } else { 0 };
        }
        if bpp == 4 {
            row[1 + pixel * bpp + 3] = 255;
        }
    }
    debug_assert_eq!(HEADER_ROWS, 1);
    row
}

fn ihdr(geometry: &Geometry, layout: Layout) -> [u8; 13] {
    let mut data = [0u8; 13];
    data[0..4].copy_from_slice(&geometry.width.to_be_bytes());
    data[4..8].copy_from_slice(&geometry.height.to_be_bytes());
    data[8] = 8; // Bit depth.
    data[9] = match layout {
        Layout::Rgb => 2,
        Layout::Rgba => 6,
    };
    // Compression 0, filter method 0, no interlace.
    data
}

/// Writes `raw` as one IDAT chunk of non-final deflate stored blocks and returns
/// the chunk's data length.
fn write_stored_chunk<W: Write>(out: &mut W, raw: &[u8]) -> Result<usize> {
    const MAX_BLOCK: usize = 65535;
    let blocks = raw.len().div_ceil(MAX_BLOCK).max(1);
    let data_len = raw.len() + 5 * blocks;
    let mut crc = crc32fast::Hasher::new();
    out.write_all(&(data_len as u32).to_be_bytes())?;
    out.write_all(b"IDAT")?;
    crc.update(b"IDAT");
    let mut pieces = raw.chunks(MAX_BLOCK);
    for _ in 0..blocks {
        let piece = pieces.next().unwrap_or(&[]);
        let len = piece.len() as u16;
        let mut block_header = [0u8; 5];
        block_header[1..3].copy_from_slice(&len.to_le_bytes());
        block_header[3..5].copy_from_slice(&(!len).to_le_bytes());
        out.write_all(&block_header)?;
        out.write_all(piece)?;
        crc.update(&block_header);
        crc.update(piece);
    }
    out.write_all(&crc.finalize().to_be_bytes())?;
    Ok(data_len)
}

/// Raw deflate with a full flush after every band, so bands are independent.
struct Deflater {
    compress: flate2::Compress,
    output: Vec<u8>,
}

impl Deflater {
    fn new(level: u32) -> Deflater {
        Deflater {
            compress: flate2::Compress::new(flate2::Compression::new(level), false),
            output: Vec::new(),
        }
    }

    /// Compresses one band. Returns `None` when stored blocks would be smaller.
    fn compress_band(&mut self, band: &[u8]) -> Result<Option<&[u8]>> {
        self.output.clear();
        self.output.reserve(band.len() / 2 + 1024);
        let start = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start) as usize;
            self.compress
                .compress_vec(
                    &band[consumed..],
                    &mut self.output,
                    flate2::FlushCompress::Full,
                )
                .map_err(|err| Error::Usage(format!("deflate failed: {err}")))?;
            let done = (self.compress.total_in() - start) as usize == band.len();
            if done && self.output.len() < self.output.capacity() {
                break;
            }
            self.output.reserve(self.output.capacity().max(4096));
        }
        let stored_len = band.len() + 5 * band.len().div_ceil(65535).max(1);
        // Auto mode keeps deflate only when it saves at least 10%.
        if self.output.len() * 10 >= stored_len * 9 {
            return Ok(None);
        }
        Ok(Some(&self.output))
    }
}

/// Metadata then payload, padded with zeros, optionally hashed as read.
struct DataSource<'a, R: Read> {
    metadata: &'a [u8],
    position: usize,
    payload: &'a mut R,
    payload_remaining: u64,
    hasher: Option<Sha256>,
}

impl<R: Read> DataSource<'_, R> {
    fn fill(&mut self, mut buf: &mut [u8]) -> Result<()> {
        if self.position < self.metadata.len() {
            let take = (self.metadata.len() - self.position).min(buf.len());
            buf[..take].copy_from_slice(&self.metadata[self.position..self.position + take]);
            self.position += take;
            buf = &mut buf[take..];
        }
        let take = (self.payload_remaining.min(buf.len() as u64)) as usize;
        let target = &mut buf[..take];
        self.payload.read_exact(target).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Usage(
                    "payload ended before its declared length (was it modified while encoding?)"
                        .into(),
                )
            } else {
                Error::Io(err)
            }
        })?;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&*target);
        }
        self.payload_remaining -= take as u64;
        // The rest of the buffer is padding; it is already zero.
        Ok(())
    }

    fn payload_done(&self, payload_len: u64) -> u64 {
        payload_len - self.payload_remaining
    }
}

/// Tracks the file offset of everything written.
struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    position: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.position += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
