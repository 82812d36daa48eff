//! InfiniteMap: a sparse, unbounded 2D pixel space (`docs/formats/infinite-map.md`).
//!
//! Pixels are RGB at `i64` coordinates. Space is cut into square tiles
//! (default 256x256) by floor division, so (-1, -1) is the last pixel of tile
//! (-1, -1). Tiles that were never written do not exist and read as black.
//! Each tile is a PXI file (`tiles/TX_TY.png`, one payload byte triple per
//! pixel, the image as wide as the tile, so any viewer shows the tile). Tiles
//! are held in an LRU cache; a dirty tile is saved when it is evicted and on
//! [`InfiniteMap::flush`] (called on drop too). A quadtree over tile
//! coordinates answers region queries. Byte writes carry a header with their
//! length and row width, so `get` reads back exactly what `put` wrote.

mod error;
pub mod fuzz;
pub(crate) mod index;
pub mod quadtree;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Kind, Limits};
use serde::{Deserialize, Serialize};

pub use error::{Error, ErrorKind, Result};
use index::Index;

/// The default tile side.
pub const DEFAULT_TILE_SIZE: u32 = 256;
/// Allowed tile sides (a PXI image is at least 24 pixels wide).
pub const TILE_SIZES: std::ops::RangeInclusive<u32> = 32..=4096;
/// Tiles kept in memory by default.
pub const DEFAULT_CACHE_TILES: usize = 64;
/// Magic of a byte write's header.
pub const WRITE_MAGIC: &[u8; 3] = b"PXM";
/// Header bytes of a byte write: magic, u32 length, u16 row width (3 pixels).
pub const WRITE_HEADER: usize = 9;
/// Largest byte write.
pub const MAX_WRITE: u64 = 256 << 20;
/// Largest region `render` or `read_region` makes (pixels).
pub const MAX_REGION_PIXELS: u64 = 64 << 20;
/// Longest note.
pub const MAX_NOTE: usize = 4096;
/// The format name in `map.json`.
pub const FORMAT: &str = "pxos-map/1";

/// The tile holding pixel (x, y), and the pixel's place in it (floor division).
pub fn tile_of(x: i64, y: i64, tile_size: u32) -> ((i64, i64), (u32, u32)) {
    let size = i64::from(tile_size);
    (
        (x.div_euclid(size), y.div_euclid(size)),
        (x.rem_euclid(size) as u32, y.rem_euclid(size) as u32),
    )
}

/// `map.json`: what the map is (its index lives in `index/`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    tile_size: u32,
}

/// One byte write (recorded in the index; the pixels carry their own header too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    pub x: i64,
    pub y: i64,
    pub len: u64,
    pub width: u32,
    pub sha256: String,
}

struct Tile {
    rgb: Vec<u8>,
    dirty: bool,
    /// The LRU stamp of its last use.
    used: u64,
}

/// Counters for `pxos map stats`.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub tile_size: u32,
    pub tiles_on_disk: usize,
    pub tiles_in_memory: usize,
    pub dirty_tiles: usize,
    pub cache_capacity: usize,
    pub notes: usize,
    pub writes: usize,
    pub loads: u64,
    pub evictions: u64,
    pub saves: u64,
    /// The bounding box of the saved and cached tiles, in pixels: [x0, y0, x1, y1) .
    pub bounds: Option<[i64; 4]>,
}

/// The map: its directory, the cache and the index.
pub struct InfiniteMap {
    root: PathBuf,
    tile_size: u32,
    capacity: usize,
    /// `map.json` must be written at the next flush (a new map).
    header_new: bool,
    tiles: HashMap<(i64, i64), Tile>,
    /// LRU order: stamp -> tile.
    order: BTreeMap<u64, (i64, i64)>,
    clock: u64,
    index: Index,
    loads: u64,
    evictions: u64,
    saves: u64,
    _lock: Option<pxos_fs::WriteLock>,
}

impl std::fmt::Debug for InfiniteMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfiniteMap")
            .field("root", &self.root)
            .field("tile_size", &self.tile_size)
            .finish_non_exhaustive()
    }
}

impl InfiniteMap {
    /// Opens the map at `root` for writing (taking its lock), creating it with
    /// `tile_size` when it does not exist.
    pub fn open(root: &Path, tile_size: u32) -> Result<InfiniteMap> {
        std::fs::create_dir_all(root.join("tiles")).map_err(|err| Error::io(err, root))?;
        let lock = pxos_fs::WriteLock::acquire(&root.join("lock"))
            .map_err(|err| Error::new(ErrorKind::Io, err.to_string()))?;
        let mut map = InfiniteMap::load(root, tile_size)?;
        map._lock = Some(lock);
        Ok(map)
    }

    /// Opens the map at `root` to read: no lock, nothing is ever saved. A
    /// missing map reads as empty space.
    pub fn open_read_only(root: &Path) -> Result<InfiniteMap> {
        InfiniteMap::load(root, DEFAULT_TILE_SIZE)
    }

    fn load(root: &Path, tile_size: u32) -> Result<InfiniteMap> {
        let header_path = root.join("map.json");
        let (header, header_new) = match std::fs::read(&header_path) {
            Ok(bytes) => {
                let header: Header = serde_json::from_slice(&bytes).map_err(|err| {
                    Error::new(
                        ErrorKind::Tampered,
                        format!("{}: not a map header: {err}", header_path.display()),
                    )
                })?;
                if header.format != FORMAT || !TILE_SIZES.contains(&header.tile_size) {
                    return Err(Error::new(
                        ErrorKind::Tampered,
                        format!(
                            "{}: format '{}' with tiles of {} (expected {FORMAT}, tiles of {}..={})",
                            header_path.display(),
                            header.format,
                            header.tile_size,
                            TILE_SIZES.start(),
                            TILE_SIZES.end()
                        ),
                    ));
                }
                (header, false)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !TILE_SIZES.contains(&tile_size) {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!(
                            "a tile size of {tile_size} is outside {}..={}",
                            TILE_SIZES.start(),
                            TILE_SIZES.end()
                        ),
                    ));
                }
                let header = Header {
                    format: FORMAT.into(),
                    tile_size,
                };
                (header, true)
            }
            Err(err) => return Err(Error::io(err, &header_path)),
        };
        Ok(InfiniteMap {
            root: root.to_path_buf(),
            tile_size: header.tile_size,
            capacity: DEFAULT_CACHE_TILES,
            header_new,
            tiles: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            index: Index::new(root, header.tile_size),
            loads: 0,
            evictions: 0,
            saves: 0,
            _lock: None,
        })
    }

    /// Sets how many tiles stay in memory (at least 1); evicts down to it.
    pub fn set_cache_capacity(&mut self, tiles: usize) -> Result<()> {
        self.capacity = tiles.max(1);
        self.evict()
    }

    pub fn tile_size(&self) -> u32 {
        self.tile_size
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of tile (tx, ty).
    pub fn tile_path(&self, tx: i64, ty: i64) -> PathBuf {
        self.root.join("tiles").join(format!("{tx}_{ty}.png"))
    }

    fn tile_bytes(&self) -> usize {
        self.tile_size as usize * self.tile_size as usize * 3
    }

    /// Loads tile (tx, ty) from disk: `None` when the index does not list it.
    /// A tile file the index does not list (left by a write that crashed
    /// before its index) does not exist; the next save of that tile replaces it.
    fn read_tile(&mut self, tx: i64, ty: i64) -> Result<Option<Vec<u8>>> {
        if !self.index.has_tile(tx, ty)? {
            return Ok(None);
        }
        let path = self.tile_path(tx, ty);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::Tampered,
                    format!(
                        "tile ({tx}, {ty}) is in the map's index but {} is missing",
                        path.display()
                    ),
                ));
            }
            Err(err) => return Err(Error::io(err, &path)),
        };
        let damaged = |why: String| {
            Error::new(
                ErrorKind::Tampered,
                format!("tile ({tx}, {ty}) at {} is damaged: {why}", path.display()),
            )
        };
        let limits = Limits {
            max_in_memory: self.tile_bytes(),
            ..Limits::default()
        };
        let (decoded, payload) = pxos_pixel::decode_from_slice(&bytes, &limits)
            .map_err(|err| damaged(err.to_string()))?;
        let expected =
            serde_json::json!({"map_tile": [tx, ty], "tile_size": self.tile_size}).to_string();
        if decoded.metadata != expected.as_bytes() {
            return Err(damaged(format!(
                "its metadata says {} (expected {expected})",
                String::from_utf8_lossy(&decoded.metadata)
            )));
        }
        if payload.len() != self.tile_bytes() {
            return Err(damaged(format!(
                "{} bytes of pixels, expected {}",
                payload.len(),
                self.tile_bytes()
            )));
        }
        Ok(Some(payload))
    }

    fn save_tile(&mut self, tx: i64, ty: i64, rgb: &[u8]) -> Result<()> {
        let options = tile_options(tx, ty, self.tile_size);
        let png = pxos_pixel::encode_to_vec(rgb, &options)
            .map_err(|err| Error::new(ErrorKind::Io, err.to_string()))?;
        let path = self.tile_path(tx, ty);
        pxos_pixel::durable::write_atomic(&path, &png, pxos_pixel::durable::label::MAP_TILE)
            .map_err(|err| Error::io(err, &path))?;
        self.saves += 1;
        self.index.add_tile(tx, ty)
    }

    fn touch(&mut self, key: (i64, i64)) {
        self.clock += 1;
        if let Some(tile) = self.tiles.get_mut(&key) {
            self.order.remove(&tile.used);
            tile.used = self.clock;
            self.order.insert(self.clock, key);
        }
    }

    /// The cached tile (tx, ty), loaded from disk or (with `create`) made
    /// black; `None` for a tile that does not exist when not creating.
    fn tile(&mut self, tx: i64, ty: i64, create: bool) -> Result<Option<&mut Tile>> {
        let key = (tx, ty);
        if !self.tiles.contains_key(&key) {
            let rgb = match self.read_tile(tx, ty)? {
                Some(rgb) => {
                    self.loads += 1;
                    rgb
                }
                None if create => vec![0; self.tile_bytes()],
                None => return Ok(None),
            };
            self.tiles.insert(
                key,
                Tile {
                    rgb,
                    dirty: false,
                    used: 0,
                },
            );
            self.touch(key);
            // Make room, keeping the tile just loaded.
            self.evict_except(Some(key))?;
        } else {
            self.touch(key);
        }
        Ok(self.tiles.get_mut(&key))
    }

    fn evict(&mut self) -> Result<()> {
        self.evict_except(None)
    }

    fn evict_except(&mut self, keep: Option<(i64, i64)>) -> Result<()> {
        while self.tiles.len() > self.capacity {
            let Some((&stamp, &key)) = self.order.iter().find(|(_, k)| Some(**k) != keep) else {
                break;
            };
            self.order.remove(&stamp);
            if let Some(tile) = self.tiles.remove(&key) {
                self.evictions += 1;
                if tile.dirty {
                    self.save_tile(key.0, key.1, &tile.rgb)?;
                }
            }
        }
        Ok(())
    }

    /// The pixel at (x, y); black where nothing was written.
    pub fn get_pixel(&mut self, x: i64, y: i64) -> Result<[u8; 3]> {
        let ((tx, ty), (lx, ly)) = tile_of(x, y, self.tile_size);
        let size = self.tile_size as usize;
        Ok(match self.tile(tx, ty, false)? {
            Some(tile) => {
                let at = (ly as usize * size + lx as usize) * 3;
                [tile.rgb[at], tile.rgb[at + 1], tile.rgb[at + 2]]
            }
            None => [0; 3],
        })
    }

    /// Sets the pixel at (x, y).
    pub fn set_pixel(&mut self, x: i64, y: i64, rgb: [u8; 3]) -> Result<()> {
        let ((tx, ty), (lx, ly)) = tile_of(x, y, self.tile_size);
        let size = self.tile_size as usize;
        if let Some(tile) = self.tile(tx, ty, true)? {
            let at = (ly as usize * size + lx as usize) * 3;
            tile.rgb[at..at + 3].copy_from_slice(&rgb);
            tile.dirty = true;
        }
        Ok(())
    }

    /// Writes `w x h` RGB pixels (row-major) with their top-left corner at (x, y).
    pub fn write_pixels(&mut self, x: i64, y: i64, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
        if rgb.len() as u64 != u64::from(w) * u64::from(h) * 3 {
            return Err(Error::new(
                ErrorKind::BadInput,
                format!("{} bytes are not {w}x{h} RGB pixels", rgb.len()),
            ));
        }
        let size = i64::from(self.tile_size);
        checked_region(x, y, w, h)?;
        for row in 0..i64::from(h) {
            let py = y + row;
            let mut column = 0i64;
            while column < i64::from(w) {
                let px = x + column;
                let ((tx, ty), (lx, ly)) = tile_of(px, py, self.tile_size);
                let run = (size - i64::from(lx)).min(i64::from(w) - column) as usize;
                let from = ((row * i64::from(w) + column) * 3) as usize;
                let tile_size = self.tile_size as usize;
                if let Some(tile) = self.tile(tx, ty, true)? {
                    let at = (ly as usize * tile_size + lx as usize) * 3;
                    tile.rgb[at..at + run * 3].copy_from_slice(&rgb[from..from + run * 3]);
                    tile.dirty = true;
                }
                column += run as i64;
            }
        }
        Ok(())
    }

    /// Reads `w x h` RGB pixels at (x, y); space never written is black.
    pub fn read_region(&mut self, x: i64, y: i64, w: u32, h: u32) -> Result<Vec<u8>> {
        checked_region(x, y, w, h)?;
        let (width, size) = (w as usize, i64::from(self.tile_size));
        let mut out = vec![0u8; width * h as usize * 3];
        let ((tx0, ty0), _) = tile_of(x, y, self.tile_size);
        let ((tx1, ty1), _) = tile_of(x + i64::from(w) - 1, y + i64::from(h) - 1, self.tile_size);
        // Only tiles that exist (the index, or the cache for unsaved ones) are visited.
        let present = self.tiles_in(tx0, ty0, tx1.saturating_add(1), ty1.saturating_add(1))?;
        let tile_size = self.tile_size as usize;
        for (tx, ty) in present {
            let (left, top) = (tx * size, ty * size);
            let x0 = x.max(left);
            let x1 = (x + i64::from(w)).min(left + size);
            let y0 = y.max(top);
            let y1 = (y + i64::from(h)).min(top + size);
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let Some(tile) = self.tile(tx, ty, false)? else {
                continue;
            };
            let run = (x1 - x0) as usize * 3;
            for py in y0..y1 {
                let src = ((py - top) as usize * tile_size + (x0 - left) as usize) * 3;
                let dst = ((py - y) as usize * width + (x0 - x) as usize) * 3;
                out[dst..dst + run].copy_from_slice(&tile.rgb[src..src + run]);
            }
        }
        Ok(out)
    }

    /// The region as an RGB PNG.
    pub fn render(&mut self, x: i64, y: i64, w: u32, h: u32) -> Result<Vec<u8>> {
        let rgb = self.read_region(x, y, w, h)?;
        Ok(pxos_pixel::plain_png(
            w,
            h,
            pxos_pixel::PlainColor::Rgb,
            &rgb,
        ))
    }

    /// The 8 (radius 1) or (2r+1)^2 - 1 pixels around (x, y), rows top to bottom.
    pub fn neighbors(&mut self, x: i64, y: i64, radius: u32) -> Result<Vec<(i64, i64, [u8; 3])>> {
        let r = i64::from(radius.min(64));
        let mut out = Vec::new();
        for dy in -r..=r {
            for dx in -r..=r {
                if dx == 0 && dy == 0 {
                    continue;
                }
                let (Some(px), Some(py)) = (x.checked_add(dx), y.checked_add(dy)) else {
                    continue;
                };
                out.push((px, py, self.get_pixel(px, py)?));
            }
        }
        Ok(out)
    }

    /// Stores `bytes` at (x, y) with a header holding their length and row
    /// width, so [`InfiniteMap::get`] reads them back exactly. Rows are at
    /// most a tile wide.
    pub fn put(&mut self, x: i64, y: i64, bytes: &[u8]) -> Result<WriteRecord> {
        if bytes.len() as u64 > MAX_WRITE {
            return Err(Error::new(
                ErrorKind::BadInput,
                format!(
                    "{} bytes are more than a map write holds ({MAX_WRITE})",
                    bytes.len()
                ),
            ));
        }
        let total = WRITE_HEADER + bytes.len();
        let pixels = total.div_ceil(3) as u64;
        let width = pixels.min(u64::from(self.tile_size)).max(3) as u32;
        let height = pixels.div_ceil(u64::from(width)) as u32;
        let mut stream = Vec::with_capacity(width as usize * height as usize * 3);
        stream.extend_from_slice(WRITE_MAGIC);
        stream.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        stream.extend_from_slice(&(width as u16).to_le_bytes());
        stream.extend_from_slice(bytes);
        stream.resize(width as usize * height as usize * 3, 0);
        self.write_pixels(x, y, width, height, &stream)?;
        let record = WriteRecord {
            x,
            y,
            len: bytes.len() as u64,
            width,
            sha256: pxos_pixel::Hash256::of(bytes).to_string(),
        };
        self.index.record(record.clone())?;
        Ok(record)
    }

    /// Reads back the bytes a [`InfiniteMap::put`] stored at (x, y).
    pub fn get(&mut self, x: i64, y: i64) -> Result<Vec<u8>> {
        let header = self.read_region(x, y, 3, 1)?;
        if &header[..3] != WRITE_MAGIC {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no data written at ({x}, {y}) (no PXM header there)"),
            ));
        }
        let len = u32::from_le_bytes(header[3..7].try_into().unwrap_or_default()) as usize;
        let width = u32::from(u16::from_le_bytes([header[7], header[8]]));
        if width < 3 || width > self.tile_size || len as u64 > MAX_WRITE {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "the write at ({x}, {y}) has a damaged header (length {len}, width {width})"
                ),
            ));
        }
        let pixels = (WRITE_HEADER + len).div_ceil(3) as u64;
        let height = pixels.div_ceil(u64::from(width)) as u32;
        let stream = self.read_region(x, y, width, height)?;
        let bytes = stream[WRITE_HEADER..WRITE_HEADER + len].to_vec();
        // The index's record is what makes a write real: a put that crashed
        // before its record was saved never happened.
        let record = self.index.find_record(x, y)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no data written at ({x}, {y}) (the map's index records no write there)"),
            )
        })?;
        if record.sha256 != pxos_pixel::Hash256::of(&bytes).to_string() {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "the write at ({x}, {y}) no longer matches its SHA-256 {} (pixels under it were overwritten)",
                    record.sha256
                ),
            ));
        }
        Ok(bytes)
    }

    /// Every byte write the index records (reads the whole index).
    pub fn writes(&mut self) -> Result<Vec<WriteRecord>> {
        Ok(self
            .index
            .all()?
            .into_iter()
            .flat_map(|chunk| chunk.writes.iter().cloned())
            .collect())
    }

    /// Sets the note of the tile holding (x, y); an empty text removes it.
    pub fn note(&mut self, x: i64, y: i64, text: &str) -> Result<(i64, i64)> {
        if text.len() > MAX_NOTE {
            return Err(Error::new(
                ErrorKind::BadInput,
                format!(
                    "a note holds at most {MAX_NOTE} bytes, this one has {}",
                    text.len()
                ),
            ));
        }
        let ((tx, ty), _) = tile_of(x, y, self.tile_size);
        self.index.set_note(tx, ty, text)?;
        Ok((tx, ty))
    }

    /// The note of tile (tx, ty).
    pub fn tile_note(&mut self, tx: i64, ty: i64) -> Result<Option<String>> {
        self.index.note(tx, ty)
    }

    /// Tiles that exist with tile coordinates in [tx0, tx1) x [ty0, ty1), sorted by (ty, tx).
    pub fn tiles_in(&mut self, tx0: i64, ty0: i64, tx1: i64, ty1: i64) -> Result<Vec<(i64, i64)>> {
        let mut found = self.index.tiles_in(tx0, ty0, tx1, ty1)?;
        for key in self.tiles.keys() {
            if (tx0..tx1).contains(&key.0) && (ty0..ty1).contains(&key.1) && !found.contains(key) {
                found.push(*key);
            }
        }
        found.sort_by_key(|&(tx, ty)| (ty, tx));
        Ok(found)
    }

    /// Tiles that exist under the pixel rectangle (x, y, w, h).
    pub fn find_tiles_in_region(
        &mut self,
        x: i64,
        y: i64,
        w: u32,
        h: u32,
    ) -> Result<Vec<(i64, i64)>> {
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let ((tx0, ty0), _) = tile_of(x, y, self.tile_size);
        let x1 = x.saturating_add(i64::from(w) - 1);
        let y1 = y.saturating_add(i64::from(h) - 1);
        let ((tx1, ty1), _) = tile_of(x1, y1, self.tile_size);
        self.tiles_in(tx0, ty0, tx1.saturating_add(1), ty1.saturating_add(1))
    }

    /// One tile's pixels as an RGB PNG (black when it does not exist).
    pub fn tile_png(&mut self, tx: i64, ty: i64) -> Result<Option<Vec<u8>>> {
        let size = self.tile_size;
        Ok(self
            .tile(tx, ty, false)?
            .map(|tile| pxos_pixel::plain_png(size, size, pxos_pixel::PlainColor::Rgb, &tile.rgb)))
    }

    /// Counters and bounds (reads the whole index).
    pub fn stats(&mut self) -> Result<Stats> {
        let all = self.tiles_in(i64::MIN, i64::MIN, i64::MAX, i64::MAX)?;
        let (mut on_disk, mut notes, mut writes) = (0, 0, 0);
        for chunk in self.index.all()? {
            on_disk += chunk.tiles.len();
            notes += chunk.notes.len();
            writes += chunk.writes.len();
        }
        let size = i64::from(self.tile_size);
        let bounds = (!all.is_empty()).then(|| {
            let (mut x0, mut y0, mut x1, mut y1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
            for (tx, ty) in &all {
                x0 = x0.min(*tx);
                y0 = y0.min(*ty);
                x1 = x1.max(*tx);
                y1 = y1.max(*ty);
            }
            [
                x0.saturating_mul(size),
                y0.saturating_mul(size),
                x1.saturating_add(1).saturating_mul(size),
                y1.saturating_add(1).saturating_mul(size),
            ]
        });
        Ok(Stats {
            tile_size: self.tile_size,
            tiles_on_disk: on_disk,
            tiles_in_memory: self.tiles.len(),
            dirty_tiles: self.tiles.values().filter(|t| t.dirty).count(),
            cache_capacity: self.capacity,
            notes,
            writes,
            loads: self.loads,
            evictions: self.evictions,
            saves: self.saves,
            bounds,
        })
    }

    /// Saves every dirty tile and the manifest. A read-only map saves nothing.
    pub fn flush(&mut self) -> Result<()> {
        if self._lock.is_none() {
            return Ok(());
        }
        let mut dirty: Vec<(i64, i64)> = self
            .tiles
            .iter()
            .filter(|(_, t)| t.dirty)
            .map(|(k, _)| *k)
            .collect();
        dirty.sort();
        for key in dirty {
            let rgb = self
                .tiles
                .get(&key)
                .map(|t| t.rgb.clone())
                .unwrap_or_default();
            self.save_tile(key.0, key.1, &rgb)?;
            if let Some(tile) = self.tiles.get_mut(&key) {
                tile.dirty = false;
            }
        }
        if self.header_new {
            let path = self.root.join("map.json");
            let text =
                serde_json::json!({"format": FORMAT, "tile_size": self.tile_size}).to_string();
            pxos_pixel::durable::write_atomic(
                &path,
                text.as_bytes(),
                pxos_pixel::durable::label::MAP_MANIFEST,
            )
            .map_err(|err| Error::io(err, &path))?;
            self.header_new = false;
        }
        self.index.flush()
    }
}

impl Drop for InfiniteMap {
    fn drop(&mut self) {
        // Dirty tiles are saved on exit; callers that care about errors call flush first.
        let _ = self.flush();
    }
}

/// How tile (tx, ty) is encoded: a blob PXI as wide as the tile, naming itself in its metadata.
pub fn tile_options(tx: i64, ty: i64, tile_size: u32) -> EncodeOptions {
    EncodeOptions {
        kind: Kind::Blob,
        compression: Some(pxos_pixel::Compression::Fast),
        width: Some(tile_size),
        metadata: serde_json::json!({"map_tile": [tx, ty], "tile_size": tile_size})
            .to_string()
            .into_bytes(),
        ..EncodeOptions::default()
    }
}

/// Refuses empty regions, regions larger than [`MAX_REGION_PIXELS`] and regions
/// that would run off the i64 plane.
fn checked_region(x: i64, y: i64, w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::new(
            ErrorKind::Usage,
            "a region needs a width and a height",
        ));
    }
    if u64::from(w) * u64::from(h) > MAX_REGION_PIXELS {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("a {w}x{h} region is more than {MAX_REGION_PIXELS} pixels"),
        ));
    }
    if x.checked_add(i64::from(w)).is_none() || y.checked_add(i64::from(h)).is_none() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("a {w}x{h} region at ({x}, {y}) runs off the map's i64 coordinates"),
        ));
    }
    Ok(())
}
