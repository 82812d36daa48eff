//! Structure-aware mutants of PXI files, and where each one stops.
//!
//! Flipping bytes of a PNG mostly tests its chunk CRCs: the mutant dies at the
//! container and never reaches a pxOS parser. [`mutate_pxi`] instead mutates
//! one layer *below* the container and rebuilds everything above it (zlib
//! streams, chunk CRCs, the header CRC, the payload SHA-256), so the mutant
//! reaches the layer it was made for. [`stage`] then says where a file stops.

use std::io::{Cursor, Read, Write};

use arbitrary::Unstructured;

use crate::header::{HEADER_LEN, Layout};
use crate::png_chunks::{PNG_SIGNATURE, write_chunk};
use crate::{EncodeOptions, Limits, decode_from_slice, encode_to_vec, read_header};

/// The layer a mutant was made at, from the outside in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Bytes of the PNG file itself: signature, chunk lengths, CRCs, order.
    Container,
    /// The decompressed image stream: PNG filter bytes and filtered rows
    /// (zlib and CRCs recomputed).
    Scanlines,
    /// The PXI header in row 0: one field at a time (its CRC recomputed, mostly).
    Header,
    /// The data area's pixels or the image's geometry (the PNG rebuilt).
    Pixels,
    /// The payload itself, mutated by the target's structured mutator and
    /// re-encoded by pxOS: always a well-formed PXI.
    Payload,
}

impl Layer {
    /// Every layer, outside in.
    pub const ALL: [Layer; 5] = [
        Layer::Container,
        Layer::Scanlines,
        Layer::Header,
        Layer::Pixels,
        Layer::Payload,
    ];

    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Container => "container",
            Layer::Scanlines => "scanlines",
            Layer::Header => "header",
            Layer::Pixels => "pixels",
            Layer::Payload => "payload",
        }
    }
}

/// Where an input stopped: the deepest layer that looked at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    /// The PNG decoder refused it (signature, chunks, CRC, zlib, filters).
    Container,
    /// The PXI header reader refused it (magic, CRC, fields, geometry, limits).
    PxiHeader,
    /// The data area failed its checks (metadata CRC, payload SHA-256, size).
    PxiData,
    /// The target's own pxOS parser got the payload (or the text) and refused it.
    Parser,
    /// The target's parser accepted it.
    Accepted,
}

impl Reach {
    /// Every reach, outside in.
    pub const ALL: [Reach; 5] = [
        Reach::Container,
        Reach::PxiHeader,
        Reach::PxiData,
        Reach::Parser,
        Reach::Accepted,
    ];

    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Reach::Container => "container",
            Reach::PxiHeader => "pxi-header",
            Reach::PxiData => "pxi-data",
            Reach::Parser => "parser",
            Reach::Accepted => "accepted",
        }
    }

    /// True when the input got to the target's own parser.
    pub fn reached_parser(self) -> bool {
        matches!(self, Reach::Parser | Reach::Accepted)
    }

    /// The reach of an input that got past the pixel layers: `Accepted` when
    /// the target's parser said yes.
    pub fn parsed(ok: bool) -> Reach {
        if ok { Reach::Accepted } else { Reach::Parser }
    }
}

/// A mutant PXI file and the layer it was made at.
#[derive(Clone, Debug)]
pub struct Mutant {
    pub png: Vec<u8>,
    pub layer: Layer,
    /// The payload a correct decoder returns when it accepts the mutant:
    /// the mutated payload at the payload layer, the original otherwise.
    pub payload: Vec<u8>,
}

/// The limits the fuzz bodies decode under: small enough that no mutant
/// can make a body allocate much.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_in_memory: 64 << 20,
        max_image_bytes: 256 << 20,
        max_payload: 64 << 20,
        ..Limits::default()
    }
}

/// Where `png` stops on its way through the pixel layers: `Ok(payload)` when
/// every layer accepted it, else the layer that refused it.
pub fn stage(png: &[u8], limits: &Limits) -> Result<Vec<u8>, Reach> {
    if !png_decodes(png, limits) {
        return Err(Reach::Container);
    }
    if read_header(Cursor::new(png), limits).is_err() {
        return Err(Reach::PxiHeader);
    }
    match decode_from_slice(png, limits) {
        Ok((_, payload)) => Ok(payload),
        Err(_) => Err(Reach::PxiData),
    }
}

/// True when an ordinary PNG decoder reads every row of `png`.
fn png_decodes(png: &[u8], limits: &Limits) -> bool {
    let mut options = png::DecodeOptions::default();
    // The options pxOS's own reader uses (`decode.rs`), so the two agree on
    // what the container layer refuses.
    options.set_ignore_adler32(false);
    options.set_skip_ancillary_crc_failures(false);
    options.set_ignore_text_chunk(true);
    let mut decoder = png::Decoder::new_with_options(Cursor::new(png), options);
    decoder.set_limits(png::Limits {
        bytes: limits.max_in_memory,
    });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let Ok(mut reader) = decoder.read_info() else {
        return false;
    };
    let Some(size) = reader.output_buffer_size() else {
        return false;
    };
    if size > limits.max_in_memory {
        return false;
    }
    let mut buffer = vec![0u8; size];
    reader.next_frame(&mut buffer).is_ok() && reader.finish().is_ok()
}

/// A structured mutator of a payload, supplied by the target.
pub type PayloadMutator<'m> = &'m mut dyn FnMut(&mut Unstructured<'_>, &mut Vec<u8>);

/// Encodes `payload` with `options` and mutates the result at one layer,
/// chosen by `u`: the payload (60%), the header (12%), the scanlines (12%),
/// the pixels (8%) or the container (8%).
pub fn mutate_pxi(
    u: &mut Unstructured<'_>,
    payload: &[u8],
    options: &EncodeOptions,
    mutate_payload: PayloadMutator<'_>,
) -> Mutant {
    let roll: u8 = u.int_in_range(0..=99).unwrap_or(0);
    let layer = match roll {
        0..60 => Layer::Payload,
        60..72 => Layer::Header,
        72..84 => Layer::Scanlines,
        84..92 => Layer::Pixels,
        _ => Layer::Container,
    };
    mutate_at(u, layer, payload, options, mutate_payload)
}

/// Like [`mutate_pxi`], at a given layer.
pub fn mutate_at(
    u: &mut Unstructured<'_>,
    layer: Layer,
    payload: &[u8],
    options: &EncodeOptions,
    mutate_payload: PayloadMutator<'_>,
) -> Mutant {
    let mut options = options.clone();
    // The writer's choices are part of what is fuzzed.
    if u.ratio(1, 4).unwrap_or(false) {
        options.layout = if u.arbitrary().unwrap_or(false) {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        options.compression = Some(
            *u.choose(&[
                crate::Compression::Stored,
                crate::Compression::Fast,
                crate::Compression::Best,
            ])
            .unwrap_or(&crate::Compression::Stored),
        );
        if u.arbitrary().unwrap_or(false) {
            options.width = Some(u.int_in_range(24..=96).unwrap_or(24));
        }
    }
    if layer == Layer::Payload {
        let mut mutated = payload.to_vec();
        mutate_payload(u, &mut mutated);
        if let Ok(png) = encode_to_vec(&mutated, &options) {
            return Mutant {
                png,
                layer,
                payload: mutated,
            };
        }
    }
    let png = encode_to_vec(payload, &options).unwrap_or_default();
    let png = match layer {
        Layer::Container | Layer::Payload => mutate_container(u, png),
        Layer::Scanlines => mutate_scanlines(u, &png).unwrap_or(png),
        Layer::Header => mutate_image(u, &png, mutate_header).unwrap_or(png),
        Layer::Pixels => mutate_image(u, &png, mutate_pixels).unwrap_or(png),
    };
    Mutant {
        png,
        layer,
        payload: payload.to_vec(),
    }
}

/// Mutates any PNG (not only a PXI) at the container, the scanlines or the
/// pixels, rebuilding what lies above the changed layer.
pub fn mutate_png(u: &mut Unstructured<'_>, png: &[u8]) -> Mutant {
    let layer = *u
        .choose(&[Layer::Container, Layer::Scanlines, Layer::Pixels])
        .unwrap_or(&Layer::Container);
    let mutated = match layer {
        Layer::Scanlines => mutate_scanlines(u, png),
        Layer::Pixels => mutate_image(u, png, mutate_pixels),
        _ => Some(mutate_container(u, png.to_vec())),
    };
    Mutant {
        png: mutated.unwrap_or_else(|| png.to_vec()),
        layer,
        payload: Vec::new(),
    }
}

/// Generic byte-level mutations of a buffer: flips, interesting bytes,
/// insertions, deletions, truncation and repeats. Used for payloads that
/// have no structured mutator, and as one of the structured mutators' moves.
pub fn mutate_bytes(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) {
    let count: u8 = u.int_in_range(1..=4).unwrap_or(1);
    for _ in 0..count {
        let len = bytes.len();
        let at = if len == 0 {
            0
        } else {
            u.int_in_range(0..=len - 1).unwrap_or(0)
        };
        match u.int_in_range(0..=6u8).unwrap_or(0) {
            0 if len > 0 => bytes[at] ^= 1 << u.int_in_range(0..=7u8).unwrap_or(0),
            1 if len > 0 => {
                bytes[at] = *u
                    .choose(&[0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'{', b'}', b'\n', b'/'])
                    .unwrap_or(&0)
            }
            2 => {
                let byte: u8 = u.arbitrary().unwrap_or(0);
                bytes.insert(at.min(len), byte);
            }
            3 if len > 0 => {
                let end = (at + usize::from(u.int_in_range(1..=16u8).unwrap_or(1))).min(len);
                bytes.drain(at..end);
            }
            4 => bytes.truncate(at),
            5 if len > 0 => {
                let end = (at + usize::from(u.int_in_range(1..=32u8).unwrap_or(1))).min(len);
                let copy = bytes[at..end].to_vec();
                let to = u.int_in_range(0..=len).unwrap_or(len);
                bytes.splice(to..to, copy);
            }
            _ => {
                if len >= 4 {
                    let value: u32 = *u
                        .choose(&[0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 64 << 20])
                        .unwrap_or(&0);
                    let at = at.min(len - 4);
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
}

fn mutate_container(u: &mut Unstructured<'_>, mut png: Vec<u8>) -> Vec<u8> {
    if png.is_empty() {
        return png;
    }
    match u.int_in_range(0..=3u8).unwrap_or(0) {
        // A chunk dropped or repeated, CRCs intact: the order of chunks is what is tested.
        0 => {
            let chunks = split_chunks(&png);
            if chunks.len() > 2 {
                let pick = u.int_in_range(0..=chunks.len() - 1).unwrap_or(0);
                let mut out = PNG_SIGNATURE.to_vec();
                for (i, (start, end)) in chunks.iter().enumerate() {
                    if i != pick || u.arbitrary().unwrap_or(false) {
                        out.extend_from_slice(&png[*start..*end]);
                    }
                    if i == pick {
                        out.extend_from_slice(&png[*start..*end]);
                    }
                }
                return out;
            }
            mutate_bytes(u, &mut png);
        }
        _ => mutate_bytes(u, &mut png),
    }
    png
}

/// `(start, end)` of each whole chunk after the signature.
fn split_chunks(png: &[u8]) -> Vec<(usize, usize)> {
    let mut chunks = Vec::new();
    let mut at = PNG_SIGNATURE.len();
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]) as usize;
        let end = at.saturating_add(12).saturating_add(len);
        if end > png.len() {
            break;
        }
        chunks.push((at, end));
        at = end;
    }
    chunks
}

/// Inflates the IDAT stream, changes filter bytes or filtered rows, and
/// writes a PNG with one fresh IDAT (zlib and CRC recomputed).
fn mutate_scanlines(u: &mut Unstructured<'_>, png: &[u8]) -> Option<Vec<u8>> {
    let chunks = split_chunks(png);
    let kind = |&(start, _): &(usize, usize)| &png[start + 4..start + 8];
    let data = |&(start, end): &(usize, usize)| &png[start + 8..end - 4];
    let ihdr = chunks.iter().find(|c| kind(c) == b"IHDR")?;
    let header = data(ihdr);
    let width = u32::from_be_bytes(header[0..4].try_into().ok()?) as usize;
    let channels = if header[9] == 6 { 4 } else { 3 };
    let stride = 1 + width * channels;
    let mut compressed = Vec::new();
    for chunk in chunks.iter().filter(|c| kind(c) == b"IDAT") {
        compressed.extend_from_slice(data(chunk));
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .take(64 << 20)
        .read_to_end(&mut raw)
        .ok()?;
    let rows = raw.len() / stride;
    if rows == 0 {
        return None;
    }
    match u.int_in_range(0..=4u8).unwrap_or(0) {
        0 | 1 => {
            let row = u.int_in_range(0..=rows - 1).unwrap_or(0);
            raw[row * stride] = u.int_in_range(0..=6u8).unwrap_or(0);
        }
        2 => {
            let at = u.int_in_range(0..=raw.len() - 1).unwrap_or(0);
            raw[at] = raw[at].wrapping_add(u.int_in_range(1..=255u8).unwrap_or(1));
        }
        3 => {
            let keep = u.int_in_range(0..=raw.len() - 1).unwrap_or(0);
            raw.truncate(keep);
        }
        _ => {
            let extra: u8 = u.int_in_range(1..=255).unwrap_or(1);
            raw.extend(std::iter::repeat_n(0u8, usize::from(extra)));
        }
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&raw).ok()?;
    let idat = encoder.finish().ok()?;
    let mut out = PNG_SIGNATURE.to_vec();
    write_chunk(&mut out, b"IHDR", header).ok()?;
    write_chunk(&mut out, b"IDAT", &idat).ok()?;
    write_chunk(&mut out, b"IEND", &[]).ok()?;
    Some(out)
}

/// The decoded pixels of a PNG pxOS wrote (8-bit RGB or RGBA).
struct Image {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    fn decode(png: &[u8]) -> Option<Image> {
        let decoder = png::Decoder::new(Cursor::new(png));
        let mut reader = decoder.read_info().ok()?;
        let mut data = vec![0u8; reader.output_buffer_size()?];
        let frame = reader.next_frame(&mut data).ok()?;
        let channels = match frame.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            _ => return None,
        };
        data.truncate(frame.buffer_size());
        Some(Image {
            width: frame.width,
            height: frame.height,
            channels,
            data,
        })
    }

    fn encode(&self, u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(if self.channels == 4 {
            png::ColorType::Rgba
        } else {
            png::ColorType::Rgb
        });
        encoder.set_depth(png::BitDepth::Eight);
        // Another writer's filters: the decoder's unfiltering is fuzzed too.
        encoder.set_filter(
            *u.choose(&[
                png::Filter::NoFilter,
                png::Filter::Sub,
                png::Filter::Up,
                png::Filter::Avg,
                png::Filter::Paeth,
            ])
            .unwrap_or(&png::Filter::NoFilter),
        );
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&self.data).ok()?;
        writer.finish().ok()?;
        Some(out)
    }

    fn header_position(&self, i: usize) -> usize {
        (i / 3) * self.channels + i % 3
    }
}

fn mutate_image(
    u: &mut Unstructured<'_>,
    png: &[u8],
    change: fn(&mut Unstructured<'_>, &mut Image),
) -> Option<Vec<u8>> {
    let mut image = Image::decode(png)?;
    change(u, &mut image);
    image.encode(u)
}

/// One header field set to an interesting value; the header CRC recomputed
/// seven times in eight, so most mutants reach the field checks.
fn mutate_header(u: &mut Unstructured<'_>, image: &mut Image) {
    let mut header = [0u8; HEADER_LEN];
    for (i, byte) in header.iter_mut().enumerate() {
        *byte = image.data[image.header_position(i)];
    }
    // (offset, size) of each field; the CRC last.
    const FIELDS: [(usize, usize); 12] = [
        (0, 4),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 4),
        (12, 4),
        (16, 8),
        (24, 4),
        (28, 4),
        (32, 32),
        (64, 4),
    ];
    let fields: u8 = u.int_in_range(1..=2).unwrap_or(1);
    for _ in 0..fields {
        let (offset, size) = *u.choose(&FIELDS).unwrap_or(&FIELDS[0]);
        let field = &mut header[offset..offset + size];
        let mut old = [0u8; 8];
        let n = size.min(8);
        old[..n].copy_from_slice(&field[..n]);
        let old = u64::from_le_bytes(old);
        let value: u64 = match u.int_in_range(0..=5u8).unwrap_or(0) {
            0 => 0,
            1 => old.wrapping_add(1),
            2 => old.wrapping_sub(1),
            3 => old.wrapping_mul(2),
            4 => u64::MAX,
            _ => u.arbitrary().unwrap_or(0),
        };
        field[..n].copy_from_slice(&value.to_le_bytes()[..n]);
    }
    if !u.ratio(1, 8).unwrap_or(false) {
        let crc = crc32fast::hash(&header[..64]);
        header[64..68].copy_from_slice(&crc.to_le_bytes());
    }
    for (i, byte) in header.iter().enumerate() {
        let at = image.header_position(i);
        image.data[at] = *byte;
    }
}

/// Pixels of the data area changed, or the image made shorter or taller.
fn mutate_pixels(u: &mut Unstructured<'_>, image: &mut Image) {
    let row_bytes = image.width as usize * image.channels;
    match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 if image.height > 1 => {
            image.height -= 1;
            image.data.truncate(image.height as usize * row_bytes);
        }
        1 => {
            image.height += 1;
            let fill: u8 = u.arbitrary().unwrap_or(0);
            image.data.extend(std::iter::repeat_n(fill, row_bytes));
        }
        2 if image.channels == 4 => {
            let at = u.int_in_range(0..=image.data.len() / 4 - 1).unwrap_or(0);
            image.data[at * 4 + 3] = u.int_in_range(0..=254u8).unwrap_or(0);
        }
        _ if image.data.len() > row_bytes => {
            let at = u
                .int_in_range(row_bytes..=image.data.len() - 1)
                .unwrap_or(row_bytes);
            image.data[at] ^= u.int_in_range(1..=255u8).unwrap_or(1);
        }
        _ => {}
    }
}
