//! Random access into PXI files.
//!
//! [`PixelReader`] uses the `pxIX` index to inflate only the bands a read
//! touches. Without a usable index (the file was rewritten by another tool),
//! it falls back to decoding rows in order, which is correct but slower.
//! Random reads check the CRC of every chunk they read but cannot check the
//! payload SHA-256 (that needs the whole payload): use `verify` for that.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::decode::{RowReader, check_range};
use crate::error::{Error, Result};
use crate::header::{Geometry, HEADER_LEN, Header};
use crate::index::Index;
use crate::limits::Limits;
use crate::png_chunks::{PNG_SIGNATURE, read_chunk};

/// Something a [`PixelReader`] can read from: a file, or a remote object
/// fetched by ranges.
pub trait Source: Read + Seek + Send {}

impl<T: Read + Seek + Send> Source for T {}

/// An open PXI file for random reads.
pub struct PixelReader {
    path: PathBuf,
    file: Box<dyn Source>,
    file_len: u64,
    header: Header,
    geometry: Geometry,
    index: Option<Index>,
    limits: Limits,
    /// The most recently inflated band (band number, unfiltered rows).
    cached_band: Option<(u64, Vec<u8>)>,
}

impl PixelReader {
    /// Opens `path`, reading only the PNG header, the index and row 0.
    pub fn open(path: impl AsRef<Path>, limits: &Limits) -> Result<PixelReader> {
        let path = path.as_ref();
        Self::open_inner(path, limits).map_err(|err| err.with_path(path))
    }

    /// Opens a PXI held by `source` (`file_len` bytes), named `name` in errors.
    pub fn from_source(
        source: Box<dyn Source>,
        file_len: u64,
        name: &Path,
        limits: &Limits,
    ) -> Result<PixelReader> {
        Self::open_source(source, file_len, name, limits).map_err(|err| err.with_path(name))
    }

    fn open_inner(path: &Path, limits: &Limits) -> Result<PixelReader> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        Self::open_source(Box::new(file), file_len, path, limits)
    }

    fn open_source(
        mut file: Box<dyn Source>,
        file_len: u64,
        path: &Path,
        limits: &Limits,
    ) -> Result<PixelReader> {
        if file_len == 0 {
            return Err(Error::format("the file is empty"));
        }
        let fast = open_indexed(&mut file, file_len, limits);
        let (header, geometry, index) = match fast {
            Ok((header, geometry, index)) => (header, geometry, Some(index)),
            Err(_) => {
                file.seek(SeekFrom::Start(0))?;
                let rows = RowReader::open(BufReader::new(&mut file), limits)?;
                (rows.header.clone(), rows.geometry, None)
            }
        };
        Ok(PixelReader {
            path: path.to_path_buf(),
            file,
            file_len,
            header,
            geometry,
            index,
            limits: *limits,
            cached_band: None,
        })
    }

    /// The header from row 0.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The image geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// True when reads use the `pxIX` index (false after another tool rewrote the file).
    pub fn has_index(&self) -> bool {
        self.index.is_some()
    }

    /// Size of the PNG file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Reads `len` payload bytes starting at payload offset `offset`.
    pub fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>> {
        check_range(&self.header, offset, len).map_err(|err| err.with_path(&self.path))?;
        self.read_data(u64::from(self.header.metadata_len) + offset, len)
            .map_err(|err| err.with_path(&self.path))
    }

    /// Reads the metadata block.
    pub fn metadata(&mut self) -> Result<Vec<u8>> {
        let metadata = self
            .read_data(0, self.header.metadata_len as usize)
            .map_err(|err| err.with_path(&self.path))?;
        if crc32fast::hash(&metadata) != self.header.metadata_crc32 {
            return Err(
                Error::format("the metadata block is damaged (crc32 mismatch)")
                    .with_path(&self.path),
            );
        }
        Ok(metadata)
    }

    /// Reads `len` bytes at `start` of the data area (metadata, then payload).
    fn read_data(&mut self, start: u64, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if self.index.is_none() {
            return self.read_data_sequential(start, len);
        }
        let row_bytes = self.geometry.row_bytes as u64;
        let band_bytes = row_bytes * u64::from(self.geometry.band_rows);
        let mut out = Vec::with_capacity(len);
        let mut position = start;
        while out.len() < len {
            let band = position / band_bytes;
            let within = (position - band * band_bytes) as usize;
            let band_data = self.band(band)?;
            let take = (band_data.len() - within).min(len - out.len());
            out.extend_from_slice(&band_data[within..within + take]);
            position += take as u64;
        }
        Ok(out)
    }

    fn read_data_sequential(&mut self, start: u64, len: usize) -> Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(0))?;
        RowReader::open(BufReader::new(&mut self.file), &self.limits)?.read_data_range(start, len)
    }

    /// The unfiltered data bytes of band `band` (filter bytes removed).
    fn band(&mut self, band: u64) -> Result<&[u8]> {
        if self
            .cached_band
            .as_ref()
            .is_none_or(|(cached, _)| *cached != band)
        {
            let index = self.index.as_ref().expect("indexed read");
            let entry = *index
                .entries
                .get(band as usize)
                .ok_or_else(|| Error::format("read beyond the indexed bands"))?;
            let rows = self.geometry.rows_in_band(band) as usize;
            let row_bytes = self.geometry.row_bytes;
            let raw = read_band_chunk(
                &mut self.file,
                entry.chunk_offset,
                entry.chunk_len,
                rows * (row_bytes + 1),
            )?;
            let data = unfilter_band(&raw, rows, row_bytes, self.geometry.bytes_per_pixel)?;
            self.cached_band = Some((band, data));
        }
        Ok(&self.cached_band.as_ref().unwrap().1)
    }
}

/// The fast path: IHDR, then the index from the tail, then the header band.
pub(crate) fn open_indexed<R: Read + Seek>(
    file: &mut R,
    file_len: u64,
    limits: &Limits,
) -> Result<(Header, Geometry, Index)> {
    let mut start = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut start)?;
    if start != PNG_SIGNATURE {
        return Err(Error::format("not a PNG image (bad signature)"));
    }
    let (kind, ihdr) = read_chunk(file, 13)?;
    if &kind != b"IHDR" || ihdr.len() != 13 {
        return Err(Error::format("first chunk is not IHDR"));
    }
    let width = u32::from_be_bytes(ihdr[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
    limits.check_dimensions(width, height)?;
    let bytes_per_pixel = match (ihdr[8], ihdr[9], ihdr[12]) {
        (8, 2, 0) => 3,
        (8, 6, 0) => 4,
        _ => return Err(Error::format("not a layout the index can serve")),
    };
    // The chunk after IHDR holds only the zlib header.
    let (kind, zlib_header) = read_chunk(file, 2)?;
    let valid_zlib = zlib_header.len() == 2
        && zlib_header[0] & 0x0f == 8
        && (u16::from(zlib_header[0]) * 256 + u16::from(zlib_header[1])) % 31 == 0;
    if &kind != b"IDAT" || !valid_zlib {
        return Err(Error::format("no zlib header chunk after IHDR"));
    }
    let zlib_chunk_end = file.stream_position()?;
    if file_len < 8 + 25 + 12 + 20 {
        return Err(Error::format("file too short for an index"));
    }
    let mut tail = [0u8; 20];
    file.seek(SeekFrom::Start(file_len - 20))?;
    file.read_exact(&mut tail)?;
    if tail[8..20] != [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82] {
        return Err(Error::format("no IEND at the end"));
    }
    let index_len = u64::from(u32::from_le_bytes(tail[0..4].try_into().unwrap()));
    let chunk_start = (file_len - 12 - 4)
        .checked_sub(index_len + 8)
        .ok_or_else(|| Error::format("index length points before the file"))?;
    file.seek(SeekFrom::Start(chunk_start))?;
    let (kind, data) = read_chunk(file, index_len as usize)?;
    if &kind != b"pxIX" {
        return Err(Error::format("no pxIX index chunk"));
    }
    let index = Index::parse(&data, file_len)?;
    let max_chunk = file_len.min(u64::from(u32::MAX)) as u32;
    let header_band = read_band_chunk(
        file,
        index.header_chunk_offset,
        max_chunk,
        1 + width as usize * bytes_per_pixel,
    )?;
    let mut header_bytes = Vec::with_capacity(width as usize * 3);
    for pixel in header_band[1..].chunks_exact(bytes_per_pixel) {
        header_bytes.extend_from_slice(&pixel[..3]);
    }
    if header_bytes.len() < HEADER_LEN {
        return Err(Error::format("image too narrow for a PXI header"));
    }
    let header = Header::parse(&header_bytes)?;
    let geometry = header.geometry()?;
    limits.check_declared(
        header.payload_len,
        image_bytes(width, height, bytes_per_pixel),
        file_len,
    )?;
    let consistent = index.header_chunk_offset == zlib_chunk_end
        && header.width == width
        && geometry.height == height
        && geometry.bytes_per_pixel == bytes_per_pixel
        && index.band_rows == header.band_rows
        && index.sha256 == header.sha256
        && index.entries.len() as u64 == geometry.band_count()
        && header_band[0] == 0;
    if !consistent {
        return Err(Error::format("index does not match the image"));
    }
    // The indexed chunks must tile the file exactly, from the header band to the
    // final IDAT (9 bytes: empty stored block + Adler-32) before the index.
    let header_raw = 1 + width as u64 * bytes_per_pixel as u64;
    let mut next = index.header_chunk_offset + 12 + header_raw + 5 * header_raw.div_ceil(65535);
    for entry in &index.entries {
        if entry.chunk_offset != next {
            return Err(Error::format("index does not match the chunk layout"));
        }
        next = entry.chunk_offset + 12 + u64::from(entry.chunk_len);
    }
    if next + 12 + 9 != chunk_start {
        return Err(Error::format("index does not match the chunk layout"));
    }
    Ok((header, geometry, index))
}

/// Reads the IDAT chunk at `offset` and inflates exactly `raw_len` bytes from it.
pub(crate) fn read_band_chunk<R: Read + Seek>(
    file: &mut R,
    offset: u64,
    max_len: u32,
    raw_len: usize,
) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let (kind, data) = read_chunk(file, max_len.min(i32::MAX as u32) as usize)?;
    if &kind != b"IDAT" {
        return Err(Error::format("index points at a chunk that is not IDAT"));
    }
    if let Some(raw) = unstore(&data, raw_len) {
        return Ok(raw);
    }
    let mut inflate = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(raw_len);
    inflate
        .decompress_vec(&data, &mut out, flate2::FlushDecompress::Sync)
        .map_err(|err| Error::format(format!("band data does not inflate: {err}")))?;
    if out.len() != raw_len {
        return Err(Error::format(format!(
            "band inflated to {} bytes, expected {raw_len}",
            out.len()
        )));
    }
    Ok(out)
}

/// Copies out the contents of a run of deflate stored blocks, or returns `None`
/// when the data holds any other block type (then a real inflate is needed).
fn unstore(data: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw_len);
    let mut at = 0;
    while at < data.len() && out.len() < raw_len {
        // Bits 1-2 of the block header byte are BTYPE; 00 is a stored block,
        // whose remaining header bits are padding to the byte boundary.
        if data[at] & 0x06 != 0 || at + 5 > data.len() {
            return None;
        }
        let len = u16::from_le_bytes([data[at + 1], data[at + 2]]);
        let nlen = u16::from_le_bytes([data[at + 3], data[at + 4]]);
        if len != !nlen || at + 5 + usize::from(len) > data.len() {
            return None;
        }
        out.extend_from_slice(&data[at + 5..at + 5 + usize::from(len)]);
        at += 5 + usize::from(len);
    }
    (out.len() == raw_len && at == data.len()).then_some(out)
}

/// Undoes PNG filtering for the rows of one band. The first row of a band has
/// no previous row, so it may only use filter None or Sub.
pub(crate) fn unfilter_band(
    raw: &[u8],
    rows: usize,
    row_bytes: usize,
    bpp: usize,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; rows * row_bytes];
    for row in 0..rows {
        let line = &raw[row * (row_bytes + 1)..(row + 1) * (row_bytes + 1)];
        let (filter, source) = (line[0], &line[1..]);
        let (previous, current) = out.split_at_mut(row * row_bytes);
        let current = &mut current[..row_bytes];
        let above: Option<&[u8]> = if row == 0 {
            None
        } else {
            Some(&previous[(row - 1) * row_bytes..])
        };
        current.copy_from_slice(source);
        match (filter, above) {
            (0, _) => {}
            (1, _) => {
                for i in bpp..row_bytes {
                    current[i] = current[i].wrapping_add(current[i - bpp]);
                }
            }
            (2, Some(above)) => {
                for i in 0..row_bytes {
                    current[i] = current[i].wrapping_add(above[i]);
                }
            }
            (3, Some(above)) => {
                for i in 0..row_bytes {
                    let left = if i >= bpp { current[i - bpp] } else { 0 };
                    current[i] = current[i]
                        .wrapping_add(((u16::from(left) + u16::from(above[i])) / 2) as u8);
                }
            }
            (4, Some(above)) => {
                for i in 0..row_bytes {
                    let (left, upper_left) = if i >= bpp {
                        (current[i - bpp], above[i - bpp])
                    } else {
                        (0, 0)
                    };
                    current[i] = current[i].wrapping_add(paeth(left, above[i], upper_left));
                }
            }
            (filter, _) => {
                return Err(Error::format(format!(
                    "filter {filter} cannot start a band"
                )));
            }
        }
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// The decoded size of a `width` x `height` image.
pub(crate) fn image_bytes(width: u32, height: u32, bytes_per_pixel: usize) -> u64 {
    u64::from(width) * u64::from(height) * bytes_per_pixel as u64
}
