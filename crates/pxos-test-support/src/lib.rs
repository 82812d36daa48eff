//! Test helpers shared by every pxOS crate. A dev-dependency only: nothing
//! here ships in the `pxos` binary.
//!
//! * [`TempDir`]: a fresh directory per test, removed on drop.
//! * [`Rng`]: SplitMix64, so a failing seed reproduces on every machine.
//! * [`check_golden`]: golden files with `UPDATE_EXPECT=1` to rewrite them
//!   (refused under `CI=true`, so CI never regenerates what it checks).
//! * [`edit_table`], [`read_table`]: hand edits of the JSON inside a PXI table
//!   (the evolution log, the registry, the kernel state), written back as a
//!   valid pixel file so that only pxOS's own checks can tell.
//! * [`read_png_rgb`]: the pixels of a plain PNG (screens); [`edit_pixels`]:
//!   a PNG rewritten with altered pixels.
//! * [`require_tool`]: a tool on PATH; under `CI=true` a missing one fails.

use std::path::{Path, PathBuf};

pub mod garage;
pub mod tmux;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `$TMPDIR/pxos-test-NAME-PID-N`, emptied first.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pxos-test-{name}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("the temporary directory is writable");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` at `root/path`, creating directories.
pub fn write_file(root: &Path, path: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the test directory is writable");
    }
    std::fs::write(&path, bytes).expect("the test directory is writable");
    path
}

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Flips bits of one byte of `bytes` (a damaged file).
    pub fn flip_byte(&mut self, bytes: &mut [u8]) {
        if !bytes.is_empty() {
            let at = self.below(bytes.len() as u64) as usize;
            bytes[at] ^= self.next_u64() as u8 | 1;
        }
    }

    /// Overwrites one to four bytes of a JSON text with JSON's own punctuation,
    /// digits, a NUL or an invalid UTF-8 byte (a hostile hand edit).
    pub fn scramble_json(&mut self, text: &mut [u8]) {
        const BYTES: &[u8] = b"{}[]\",:0a-\\ \x00\xff";
        for _ in 0..1 + self.below(4) {
            if text.is_empty() {
                return;
            }
            let at = self.below(text.len() as u64) as usize;
            text[at] = BYTES[self.below(BYTES.len() as u64) as usize];
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// `len` bytes from a seeded generator.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Compares `actual` with the golden file at `path` (relative to `crate_dir`,
/// the caller's `env!("CARGO_MANIFEST_DIR")`). With `UPDATE_EXPECT=1` it
/// rewrites the file instead, except under `CI=true`.
pub fn check_golden(crate_dir: &str, path: &str, actual: &str) {
    let path = Path::new(crate_dir).join(path);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "UPDATE_EXPECT is refused under CI=true: golden files are never regenerated in CI"
        );
        std::fs::write(&path, actual).expect("the golden file is writable");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_EXPECT=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            assert_eq!(
                e,
                a,
                "{} differs at line {} (UPDATE_EXPECT=1 rewrites it)",
                path.display(),
                i + 1
            );
        }
        panic!(
            "{} differs in length (UPDATE_EXPECT=1 rewrites it)",
            path.display()
        );
    }
}

/// The JSON inside a PXI table file.
pub fn read_table(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, json) = pxos_pixel::decode_from_slice(&bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `value` as the JSON of a PXI table at `path` (a valid pixel file).
pub fn write_table(path: &Path, value: &serde_json::Value) {
    write_table_bytes(
        path,
        &serde_json::to_vec_pretty(value).expect("JSON serializes"),
    );
}

/// Writes raw bytes as the payload of a PXI table at `path`.
pub fn write_table_bytes(path: &Path, payload: &[u8]) {
    let options = pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table);
    let png = pxos_pixel::encode_to_vec(payload, &options).expect("encoding in memory works");
    std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Edits the JSON inside a PXI table by hand and writes it back as a valid
/// pixel file: only pxOS's own checks (hashes, chains, cross-checks) can tell.
pub fn edit_table(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = read_table(path);
    edit(&mut value);
    write_table(path, &value);
}

/// Replaces text inside a PXI table's JSON (asserting it is there).
pub fn replace_in_table(path: &Path, from: &str, to: &str) {
    let value = read_table(path);
    let text = serde_json::to_string_pretty(&value).expect("JSON serializes");
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    write_table_bytes(path, text.replace(from, to).as_bytes());
}

/// The records of a segmented log (`log/evolution`, `fs/snapshots`) whose
/// records all sit in its open segment, as JSON values.
pub fn read_log_records(dir: &Path) -> Vec<serde_json::Value> {
    let open = dir.join("open-00000000.log");
    let text = std::fs::read_to_string(&open).unwrap_or_else(|e| panic!("{}: {e}", open.display()));
    text.lines()
        .map(|line| serde_json::from_str(&line[65..]).expect("a record is JSON"))
        .collect()
}

/// Edits a segmented log by hand the way a careful attacker would: `edit`
/// gets `{"entries": [...], "head": {"count": N}}`; the records are written
/// back with their chain hashes recomputed, so only pxOS's own checks (entry
/// hashes, the head, cross-checks) can tell. When `edit` changes `head`
/// (its `count`, or adds `"fix": true`), the head is rewritten to end after
/// `count` records, consistently (the attacker fixed the head too);
/// otherwise the head is left alone. The log
/// must not have sealed segments.
pub fn edit_log(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let head_path = dir.join("head.json");
    let mut head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head_path).unwrap()).unwrap();
    assert_eq!(head["sealed"], 0, "edit_log edits open segments only");
    let count = head["end"]["count"].clone();
    let mut value = serde_json::json!({"entries": read_log_records(dir), "head": {"count": count}});
    edit(&mut value);
    let mut prev = [0u8; 32];
    let mut text = String::new();
    let mut chain = vec![prev];
    for entry in value["entries"].as_array().expect("entries") {
        let body = serde_json::to_string(entry).unwrap();
        let mut bytes = prev.to_vec();
        bytes.extend_from_slice(body.as_bytes());
        prev = pxos_pixel::sha256(&bytes);
        chain.push(prev);
        text.push_str(&format!("{} {body}\n", pxos_pixel::hex(&prev)));
    }
    std::fs::write(dir.join("open-00000000.log"), text).unwrap();
    if value["head"] != serde_json::json!({"count": count}) {
        let n = value["head"]["count"].as_u64().expect("a count") as usize;
        head["end"] = serde_json::json!({"count": n, "hash": pxos_pixel::hex(&chain[n])});
        head["pending"] = serde_json::Value::Null;
        std::fs::write(&head_path, serde_json::to_vec(&head).unwrap()).unwrap();
    }
}

/// Replaces text inside a segmented log's records (asserting it is there),
/// chain recomputed and head left alone, as [`edit_log`] does.
pub fn replace_in_log(dir: &Path, from: &str, to: &str) {
    edit_log(dir, |value| {
        let text = value["entries"].to_string();
        assert!(
            text.contains(from),
            "{} does not contain {from:?}",
            dir.display()
        );
        value["entries"] = serde_json::from_str(&text.replace(from, to)).expect("still JSON");
    });
}

/// Width, height and RGB bytes of a PNG (expanded to 8-bit RGB).
pub fn read_png_rgb(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0u8; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let channels = info.color_type.samples();
    let rgb = buffer[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| {
            if channels >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0]; 3]
            }
        })
        .collect();
    (info.width, info.height, rgb)
}

/// Rewrites a PNG with `edit` applied to its decoded pixels (given with the
/// row length in bytes): valid CRCs and chunks, altered pixels, so only a
/// payload hash can tell.
pub fn edit_pixels(png_bytes: &[u8], edit: impl FnOnce(&mut [u8], usize)) -> Vec<u8> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .expect("a PNG");
    let mut data = vec![0u8; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut data).expect("a frame");
    edit(&mut data, frame.line_size);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
    encoder.set_color(frame.color_type);
    let mut writer = encoder.write_header().expect("writing to memory works");
    writer
        .write_image_data(&data)
        .expect("the buffer matches the image");
    writer.finish().expect("writing to memory works");
    out
}

/// Finds a program on PATH. Under `CI=true` a missing tool fails the test;
/// elsewhere the caller skips with a message.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required under CI=true (installed by `cargo xtask setup`)"
        );
        eprintln!("skipping: {name} not installed (run `cargo xtask setup`)");
    }
    found
}

/// CRC-32 (IEEE), for PNG chunks built by hand.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One PNG chunk.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    chunk
}

/// A decompression bomb: a valid PNG signature and IHDR for a 16384-pixel-wide
/// RGB image tall enough for `payload_len` bytes, and a valid PXI header in
/// row 0 that declares them, and nothing more (the refusal must come first).
pub fn pxi_bomb(payload_len: u64) -> Vec<u8> {
    const WIDTH: u32 = 16384;
    let row_bytes = u64::from(WIDTH) * 3;
    let height = 1 + payload_len.div_ceil(row_bytes);
    let header = pxos_pixel::Header {
        version: pxos_pixel::VERSION,
        layout: pxos_pixel::Layout::Rgb,
        kind: pxos_pixel::Kind::Blob,
        compression: pxos_pixel::Compression::Best,
        width: WIDTH,
        band_rows: 64,
        payload_len,
        metadata_len: 0,
        metadata_crc32: 0,
        sha256: [0; 32],
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = WIDTH.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend(png_chunk(b"IHDR", &ihdr));
    // Row 0 (filter byte, then the header, then zeros) as one stored deflate block.
    let mut row = vec![0u8; 1 + row_bytes as usize];
    row[1..1 + pxos_pixel::HEADER_LEN].copy_from_slice(&header.to_bytes());
    let mut zlib = vec![0x78, 0x01, 0x00];
    zlib.extend_from_slice(&(row.len() as u16).to_le_bytes());
    zlib.extend_from_slice(&(!(row.len() as u16)).to_le_bytes());
    zlib.extend_from_slice(&row);
    png.extend(png_chunk(b"IDAT", &zlib));
    png
}
