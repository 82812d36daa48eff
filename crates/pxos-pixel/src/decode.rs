//! Reading PXI files sequentially.
//!
//! Decoding goes through the `png` crate so that any lossless re-encoding of a
//! PXI still decodes: other filters, other compression, extra or missing
//! ancillary chunks, RGB stored as RGBA, palette or grayscale images, 16-bit
//! samples and interlacing. Only the pixels matter.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hashing::PayloadHasher;
use crate::header::{Geometry, HEADER_LEN, Header};
use crate::index::Index;
use crate::limits::Limits;
use crate::png_chunks::read_chunk;
use crate::reader::{open_indexed, read_band_chunk, unfilter_band};

/// What a decode found.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The header from row 0.
    pub header: Header,
    /// The metadata bytes (checked against their CRC-32).
    pub metadata: Vec<u8>,
    /// The image geometry.
    pub geometry: Geometry,
}

/// Decodes a PXI from `input`, writing the payload to `sink`.
///
/// The SHA-256 is checked at the end: on a mismatch the sink has already
/// received the (damaged) bytes, so callers that must not keep bad output write
/// to a temporary file and keep it only on success. `progress` receives the
/// number of payload bytes written so far.
pub fn decode<R: BufRead + Seek, W: Write + ?Sized>(
    mut input: R,
    sink: &mut W,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<Decoded> {
    // Files as pxOS wrote them: inflate band by band through the index.
    let file_len = input.seek(SeekFrom::End(0))?;
    if let Ok((header, geometry, index)) = open_indexed(&mut input, file_len, limits) {
        return decode_indexed(&mut input, header, geometry, &index, sink, progress);
    }
    // Anything else (rewritten by another tool, no index): the general PNG path.
    input.seek(SeekFrom::Start(0))?;
    let mut rows = RowReader::open(input, limits)?;
    let header = rows.header.clone();
    let geometry = rows.geometry;
    let mut metadata = Vec::with_capacity(header.metadata_len as usize);
    let mut metadata_left = header.metadata_len as usize;
    let mut payload_left = header.payload_len;
    let mut hasher = PayloadHasher::new(header.payload_len);
    let mut done: u64 = 0;
    let mut since_progress: u64 = 0;
    while let Some(mut row) = rows.next_data_row()? {
        if metadata_left > 0 {
            let take = metadata_left.min(row.len());
            metadata.extend_from_slice(&row[..take]);
            metadata_left -= take;
            row = &row[take..];
        }
        let take = payload_left.min(row.len() as u64) as usize;
        let bytes = &row[..take];
        hasher.update(bytes);
        sink.write_all(bytes)?;
        payload_left -= take as u64;
        done += take as u64;
        since_progress += take as u64;
        if since_progress >= 1 << 20 {
            progress(done);
            since_progress = 0;
        }
    }
    progress(done);
    rows.finish()?;
    finish_decode(header, metadata, geometry, hasher, sink)
}

/// Decodes through the `pxIX` index: reads each band's chunk (CRC checked),
/// undoes stored blocks without an inflater, and hashes shared buffers on the
/// hash thread, so the payload is copied as little as possible.
fn decode_indexed<R: Read + Seek, W: Write + ?Sized>(
    input: &mut R,
    header: Header,
    geometry: Geometry,
    index: &Index,
    sink: &mut W,
    progress: &mut dyn FnMut(u64),
) -> Result<Decoded> {
    let metadata_len = u64::from(header.metadata_len);
    let payload_end = metadata_len + header.payload_len;
    let band_bytes = geometry.row_bytes as u64 * u64::from(geometry.band_rows);
    let mut metadata = Vec::with_capacity(header.metadata_len as usize);
    let mut hasher = PayloadHasher::new(header.payload_len);
    let header_raw = 1 + geometry.row_bytes;
    let mut adler = simd_adler32::Adler32::new();
    adler.write(&read_band_chunk(
        input,
        index.header_chunk_offset,
        u32::MAX,
        header_raw,
    )?);
    for (band, entry) in index.entries.iter().enumerate() {
        let rows = geometry.rows_in_band(band as u64) as usize;
        let raw = read_band_chunk(
            input,
            entry.chunk_offset,
            entry.chunk_len,
            rows * (geometry.row_bytes + 1),
        )?;
        adler.write(&raw);
        let data = unfilter_band(&raw, rows, geometry.row_bytes, geometry.bytes_per_pixel)?;
        let start = band as u64 * band_bytes;
        let end = start + data.len() as u64;
        if start < metadata_len {
            let take = (metadata_len.min(end) - start) as usize;
            metadata.extend_from_slice(&data[..take]);
        }
        let from = (metadata_len.max(start).min(end) - start) as usize;
        let to = (payload_end.max(start).min(end) - start) as usize;
        if from < to {
            sink.write_all(&data[from..to])?;
            hasher.update_shared(Arc::new(data), from..to);
        }
        progress(payload_end.min(end).saturating_sub(metadata_len));
    }
    // The final IDAT: an empty final stored block and the zlib Adler-32.
    let final_offset = match index.entries.last() {
        Some(last) => last.chunk_offset + 12 + u64::from(last.chunk_len),
        None => {
            index.header_chunk_offset
                + 12
                + header_raw as u64
                + 5 * (header_raw as u64).div_ceil(65535)
        }
    };
    input.seek(SeekFrom::Start(final_offset))?;
    let (kind, tail) = read_chunk(input, 9)?;
    if &kind != b"IDAT" || tail.len() != 9 || tail[..5] != [0x01, 0x00, 0x00, 0xff, 0xff] {
        return Err(Error::format(
            "the image data does not end as a PXI writer ends it",
        ));
    }
    if u32::from_be_bytes(tail[5..9].try_into().unwrap()) != adler.finish() {
        return Err(Error::format(
            "the zlib Adler-32 of the image data does not match (damaged file)",
        ));
    }
    finish_decode(header, metadata, geometry, hasher, sink)
}

/// The checks every decode ends with: metadata CRC, payload SHA-256.
fn finish_decode<W: Write + ?Sized>(
    header: Header,
    metadata: Vec<u8>,
    geometry: Geometry,
    hasher: PayloadHasher,
    sink: &mut W,
) -> Result<Decoded> {
    check_metadata(&header, &metadata)?;
    let actual = hasher.finalize();
    if actual != header.sha256 {
        return Err(Error::Integrity {
            expected: hex(&header.sha256),
            actual: hex(&actual),
        });
    }
    sink.flush()?;
    Ok(Decoded {
        header,
        metadata,
        geometry,
    })
}

/// Decodes a PXI held in memory, returning the metadata and the verified payload.
pub fn decode_from_slice(bytes: &[u8], limits: &Limits) -> Result<(Decoded, Vec<u8>)> {
    let mut payload = Vec::new();
    let decoded = {
        let input = std::io::Cursor::new(bytes);
        let mut sink = CappedSink {
            inner: &mut payload,
            cap: limits.max_in_memory,
        };
        decode(input, &mut sink, limits, &mut |_| {})?
    };
    Ok((decoded, payload))
}

/// Reads only the header and metadata (row 0 and the rows metadata spans).
pub fn read_header<R: BufRead + Seek>(input: R, limits: &Limits) -> Result<(Header, Vec<u8>)> {
    let mut rows = RowReader::open(input, limits)?;
    let header = rows.header.clone();
    let mut metadata = Vec::with_capacity(header.metadata_len as usize);
    while metadata.len() < header.metadata_len as usize {
        let Some(row) = rows.next_data_row()? else {
            break;
        };
        let take = (header.metadata_len as usize - metadata.len()).min(row.len());
        metadata.extend_from_slice(&row[..take]);
    }
    check_metadata(&header, &metadata)?;
    Ok((header, metadata))
}

/// Reads `len` payload bytes at `offset` by decoding rows in order (no index needed).
pub fn read_range_sequential<R: BufRead + Seek>(
    input: R,
    offset: u64,
    len: usize,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let mut rows = RowReader::open(input, limits)?;
    let header = rows.header.clone();
    check_range(&header, offset, len)?;
    rows.read_data_range(u64::from(header.metadata_len) + offset, len)
}

pub(crate) fn check_range(header: &Header, offset: u64, len: usize) -> Result<()> {
    if offset
        .checked_add(len as u64)
        .is_none_or(|end| end > header.payload_len)
    {
        return Err(Error::Usage(format!(
            "range {offset}+{len} is past the end of the {}-byte payload",
            header.payload_len
        )));
    }
    Ok(())
}

fn check_metadata(header: &Header, metadata: &[u8]) -> Result<()> {
    if metadata.len() != header.metadata_len as usize
        || crc32fast::hash(metadata) != header.metadata_crc32
    {
        return Err(Error::format(
            "the metadata block is damaged (crc32 mismatch)",
        ));
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A sink that refuses to grow past `cap` bytes (for in-memory decodes of untrusted input).
struct CappedSink<'a> {
    inner: &'a mut Vec<u8>,
    cap: usize,
}

impl Write for CappedSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.inner.len() + buf.len() > self.cap {
            return Err(std::io::Error::other(
                "payload exceeds the in-memory decode limit",
            ));
        }
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Yields the data rows of a PXI image as payload-layout bytes.
pub(crate) struct RowReader<R: BufRead + Seek> {
    reader: png::Reader<R>,
    color: png::ColorType,
    /// The whole image, for interlaced PNGs (which cannot be read row by row).
    deinterlaced: Option<(Vec<u8>, usize)>,
    next_row: u32,
    pub(crate) header: Header,
    pub(crate) geometry: Geometry,
    row: Vec<u8>,
}

impl<R: BufRead + Seek> RowReader<R> {
    pub(crate) fn open(mut input: R, limits: &Limits) -> Result<RowReader<R>> {
        let start = input.stream_position()?;
        let file_len = input.seek(SeekFrom::End(0))?.saturating_sub(start);
        input.seek(SeekFrom::Start(start))?;
        let png_limits = png::Limits {
            bytes: limits.max_in_memory.min(isize::MAX as usize),
        };
        let mut options = png::DecodeOptions::default();
        options.set_ignore_adler32(false);
        options.set_skip_ancillary_crc_failures(false);
        options.set_ignore_text_chunk(true);
        let mut decoder = png::Decoder::new_with_options(input, options);
        decoder.set_limits(png_limits);
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let info = decoder.read_header_info().map_err(|err| match err {
            png::DecodingError::Format(_) => Error::format(format!(
                "not a PNG image ({})",
                crate::error::png_error_text(&err)
            )),
            other => Error::from(other),
        })?;
        limits.check_dimensions(info.width, info.height)?;
        let interlaced = info.interlaced;
        let mut reader = decoder.read_info()?;
        let (color, _) = reader.output_color_type();
        let width = reader.info().width;
        let height = reader.info().height;
        let deinterlaced = if interlaced {
            let size = reader.output_buffer_size().ok_or_else(|| {
                Error::LimitExceeded("interlaced image too large to decode".into())
            })?;
            if size > limits.max_in_memory {
                return Err(Error::LimitExceeded(format!(
                    "interlaced image needs {size} bytes in memory, limit is {}",
                    limits.max_in_memory
                )));
            }
            let mut buffer = vec![0u8; size];
            let frame = reader.next_frame(&mut buffer)?;
            Some((buffer, frame.line_size))
        } else {
            None
        };
        let mut rows = RowReader {
            reader,
            color,
            deinterlaced,
            next_row: 0,
            header: placeholder_header(),
            geometry: Geometry::new(width.max(1), crate::Layout::Rgb, 0, 1)?,
            row: Vec::new(),
        };
        // Row 0: the header, in the RGB channels whatever the layout.
        let mut header_bytes = vec![0u8; width as usize * 3];
        {
            let color = rows.color;
            let raw = rows
                .next_raw_row()?
                .ok_or_else(|| Error::format("image has no rows"))?;
            convert_row(raw, color, 3, &mut header_bytes)?;
        }
        if header_bytes.len() < HEADER_LEN {
            return Err(Error::format(
                "this PNG is too narrow to hold a PXI header (it is an ordinary image, not a pixel file)",
            ));
        }
        let header = Header::parse(&header_bytes)?;
        if header.width != width {
            return Err(Error::format(format!(
                "header says width {}, image is {width} pixels wide (was it resized?)",
                header.width
            )));
        }
        if header.metadata_len > limits.max_metadata_len {
            return Err(Error::LimitExceeded(format!(
                "metadata of {} bytes exceeds the limit of {}",
                header.metadata_len, limits.max_metadata_len
            )));
        }
        let geometry = header.geometry()?;
        limits.check_declared(
            header.payload_len,
            crate::reader::image_bytes(width, height, geometry.bytes_per_pixel),
            file_len,
        )?;
        if geometry.height != height {
            return Err(Error::format(format!(
                "the image has {height} rows but the header needs {} for {} bytes (truncated or altered image)",
                geometry.height, geometry.data_len
            )));
        }
        rows.row = vec![0u8; geometry.row_bytes];
        rows.header = header;
        rows.geometry = geometry;
        Ok(rows)
    }

    fn next_raw_row(&mut self) -> Result<Option<&[u8]>> {
        let height = self.reader.info().height;
        if self.next_row >= height {
            return Ok(None);
        }
        let row_index = self.next_row as usize;
        self.next_row += 1;
        match &self.deinterlaced {
            Some((buffer, line)) => Ok(Some(&buffer[row_index * line..(row_index + 1) * line])),
            None => match self.reader.next_row()? {
                Some(row) => Ok(Some(row.data())),
                None => Err(Error::format("image ended early (truncated)")),
            },
        }
    }

    /// Reads `len` bytes at position `start` of the data area by decoding rows
    /// in order from where the reader stands (a fresh reader starts at 0).
    pub(crate) fn read_data_range(&mut self, start: u64, len: usize) -> Result<Vec<u8>> {
        let end = start + len as u64;
        let mut out = Vec::with_capacity(len);
        let mut position: u64 = 0;
        while out.len() < len {
            let Some(row) = self.next_data_row()? else {
                return Err(Error::format("image ended before the requested range"));
            };
            let row_end = position + row.len() as u64;
            if row_end > start {
                let from = start.saturating_sub(position) as usize;
                let to = (end.min(row_end) - position) as usize;
                out.extend_from_slice(&row[from..to]);
            }
            position = row_end;
        }
        Ok(out)
    }

    /// Reads the rest of the file up to `IEND`, checking every chunk.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.reader.finish()?;
        Ok(())
    }

    /// The next data row in layout bytes, or `None` after the last row.
    pub(crate) fn next_data_row(&mut self) -> Result<Option<&[u8]>> {
        let bpp = self.geometry.bytes_per_pixel;
        let color = self.color;
        let direct = matches!(
            (color, bpp),
            (png::ColorType::Rgb, 3) | (png::ColorType::Rgba, 4)
        );
        if direct {
            // The decoded row already is the data row: no copy.
            return self.next_raw_row();
        }
        let mut row = std::mem::take(&mut self.row);
        let result = match self.next_raw_row() {
            Ok(Some(raw)) => convert_row(raw, color, bpp, &mut row).map(|()| true),
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        self.row = row;
        match result? {
            true => Ok(Some(&self.row)),
            false => Ok(None),
        }
    }
}

fn placeholder_header() -> Header {
    Header {
        version: crate::header::VERSION,
        layout: crate::Layout::Rgb,
        kind: crate::Kind::Blob,
        compression: crate::Compression::Stored,
        width: crate::header::MIN_WIDTH,
        band_rows: 1,
        payload_len: 0,
        metadata_len: 0,
        metadata_crc32: 0,
        sha256: [0; 32],
    }
}

/// Converts one decoded row (8-bit, after `EXPAND`) into `bpp` bytes per pixel.
/// A missing alpha channel reads as 255; gray reads as equal R, G and B.
fn convert_row(raw: &[u8], color: png::ColorType, bpp: usize, out: &mut [u8]) -> Result<()> {
    use png::ColorType::*;
    let channels = match color {
        Grayscale => 1,
        GrayscaleAlpha => 2,
        Rgb => 3,
        Rgba => 4,
        Indexed => return Err(Error::format("palette was not expanded")),
    };
    let pixels = out.len() / bpp;
    if raw.len() < pixels * channels {
        return Err(Error::format("row shorter than the image width"));
    }
    match (channels, bpp) {
        (3, 3) | (4, 4) => out.copy_from_slice(&raw[..out.len()]),
        _ => {
            for (source, target) in raw.chunks_exact(channels).zip(out.chunks_exact_mut(bpp)) {
                let (r, g, b, a) = match channels {
                    1 => (source[0], source[0], source[0], 255),
                    2 => (source[0], source[0], source[0], source[1]),
                    3 => (source[0], source[1], source[2], 255),
                    _ => (source[0], source[1], source[2], source[3]),
                };
                target[0] = r;
                target[1] = g;
                target[2] = b;
                if bpp == 4 {
                    target[3] = a;
                }
            }
        }
    }
    Ok(())
}
