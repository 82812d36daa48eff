//! The map's on-disk index, cut into chunks of 64x64 tiles so that the cost of
//! one write does not grow with the map.
//!
//! `index/CX_CY.json` lists the tiles of chunk (CX, CY) that have a saved PXI,
//! the notes of those tiles, and the byte writes that start there. A write
//! loads and rewrites only the chunks it touches; a region query loads the
//! chunks under it (small regions by name; large ones through a quadtree of
//! the chunk files, built from one directory listing the first time one is
//! asked for).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quadtree::QuadTree;
use crate::{Error, ErrorKind, Result, WriteRecord};

/// Tiles per chunk side.
pub const CHUNK_TILES: i64 = 64;
/// Largest chunk file read.
const MAX_CHUNK_FILE: u64 = 64 << 20;
/// Chunks a region query loads by name before it lists the directory instead.
const BY_NAME: i128 = 64;

/// The chunk holding tile (tx, ty).
pub fn chunk_of(tx: i64, ty: i64) -> (i64, i64) {
    (tx.div_euclid(CHUNK_TILES), ty.div_euclid(CHUNK_TILES))
}

/// One chunk file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    #[serde(default)]
    pub tiles: BTreeSet<(i64, i64)>,
    /// Notes per tile, keyed "tx,ty".
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
    /// Byte writes whose first pixel lies in this chunk.
    #[serde(default)]
    pub writes: Vec<WriteRecord>,
}

struct Loaded {
    chunk: Chunk,
    dirty: bool,
    /// It holds a write record not yet saved (saved after every other chunk).
    records: bool,
}

pub struct Index {
    dir: PathBuf,
    tile_size: u32,
    chunks: HashMap<(i64, i64), Loaded>,
    /// Chunks that have a file (or will at the next flush), once listed.
    known: Option<QuadTree>,
}

impl Index {
    pub fn new(root: &Path, tile_size: u32) -> Index {
        Index {
            dir: root.join("index"),
            tile_size,
            chunks: HashMap::new(),
            known: None,
        }
    }

    fn path(&self, (cx, cy): (i64, i64)) -> PathBuf {
        self.dir.join(format!("{cx}_{cy}.json"))
    }

    /// The chunk, loaded on first use (a chunk with no file is empty).
    fn chunk(&mut self, key: (i64, i64)) -> Result<&mut Loaded> {
        if !self.chunks.contains_key(&key) {
            let chunk = self.read(key)?;
            self.chunks.insert(
                key,
                Loaded {
                    chunk,
                    dirty: false,
                    records: false,
                },
            );
        }
        Ok(self.chunks.get_mut(&key).expect("just inserted"))
    }

    fn read(&self, key: (i64, i64)) -> Result<Chunk> {
        let path = self.path(key);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Chunk::default()),
            Err(err) => return Err(Error::io(err, &path)),
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_CHUNK_FILE + 1),
            &mut text,
        )
        .map_err(|err| Error::io(err, &path))?;
        if text.len() as u64 > MAX_CHUNK_FILE {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "{}: a map index chunk over {MAX_CHUNK_FILE} bytes",
                    path.display()
                ),
            ));
        }
        let damaged = |why: String| {
            Error::new(
                ErrorKind::Tampered,
                format!("{}: damaged map index: {why}", path.display()),
            )
        };
        let chunk: Chunk = serde_json::from_slice(&text).map_err(|err| damaged(err.to_string()))?;
        if let Some(&(tx, ty)) = chunk
            .tiles
            .iter()
            .find(|&&(tx, ty)| chunk_of(tx, ty) != key)
        {
            return Err(damaged(format!(
                "it lists tile ({tx}, {ty}), which is not in it"
            )));
        }
        for name in chunk.notes.keys() {
            let parsed = name
                .split_once(',')
                .and_then(|(x, y)| Some((x.parse::<i64>().ok()?, y.parse::<i64>().ok()?)));
            if parsed.is_none_or(|(tx, ty)| chunk_of(tx, ty) != key) {
                return Err(damaged(format!(
                    "a note for '{name}', which is not a tile of it"
                )));
            }
        }
        let size = i64::from(self.tile_size);
        if let Some(w) = chunk.writes.iter().find(|w| {
            chunk_of(w.x.div_euclid(size), w.y.div_euclid(size)) != key
                || w.width < 3
                || w.width > self.tile_size
                || w.len > crate::MAX_WRITE
        }) {
            return Err(damaged(format!(
                "a write at ({}, {}) that does not belong here or has a bad size",
                w.x, w.y
            )));
        }
        Ok(chunk)
    }

    /// Whether tile (tx, ty) has a saved PXI.
    pub fn has_tile(&mut self, tx: i64, ty: i64) -> Result<bool> {
        Ok(self
            .chunk(chunk_of(tx, ty))?
            .chunk
            .tiles
            .contains(&(tx, ty)))
    }

    /// Records that tile (tx, ty) now has a saved PXI.
    pub fn add_tile(&mut self, tx: i64, ty: i64) -> Result<()> {
        let key = chunk_of(tx, ty);
        let loaded = self.chunk(key)?;
        if loaded.chunk.tiles.insert((tx, ty)) {
            loaded.dirty = true;
        }
        if let Some(known) = &mut self.known {
            known.insert(key.0, key.1);
        }
        Ok(())
    }

    /// Replaces the write record starting at (x, y).
    pub fn record(&mut self, record: WriteRecord) -> Result<()> {
        let size = i64::from(self.tile_size);
        let key = chunk_of(record.x.div_euclid(size), record.y.div_euclid(size));
        let loaded = self.chunk(key)?;
        loaded
            .chunk
            .writes
            .retain(|w| (w.x, w.y) != (record.x, record.y));
        loaded.chunk.writes.push(record);
        loaded.dirty = true;
        loaded.records = true;
        if let Some(known) = &mut self.known {
            known.insert(key.0, key.1);
        }
        Ok(())
    }

    /// The write record starting at (x, y).
    pub fn find_record(&mut self, x: i64, y: i64) -> Result<Option<WriteRecord>> {
        let size = i64::from(self.tile_size);
        let key = chunk_of(x.div_euclid(size), y.div_euclid(size));
        Ok(self
            .chunk(key)?
            .chunk
            .writes
            .iter()
            .find(|w| (w.x, w.y) == (x, y))
            .cloned())
    }

    /// Sets (or, with an empty text, removes) the note of tile (tx, ty).
    pub fn set_note(&mut self, tx: i64, ty: i64, text: &str) -> Result<()> {
        let key = chunk_of(tx, ty);
        let loaded = self.chunk(key)?;
        let name = format!("{tx},{ty}");
        if text.is_empty() {
            loaded.chunk.notes.remove(&name);
        } else {
            loaded.chunk.notes.insert(name, text.to_string());
        }
        loaded.dirty = true;
        if let Some(known) = &mut self.known {
            known.insert(key.0, key.1);
        }
        Ok(())
    }

    pub fn note(&mut self, tx: i64, ty: i64) -> Result<Option<String>> {
        Ok(self
            .chunk(chunk_of(tx, ty))?
            .chunk
            .notes
            .get(&format!("{tx},{ty}"))
            .cloned())
    }

    /// The chunks that have a file or unsaved changes, from one listing.
    fn known(&mut self) -> Result<&QuadTree> {
        if self.known.is_none() {
            let mut tree = QuadTree::new();
            match std::fs::read_dir(&self.dir) {
                Ok(entries) => {
                    for entry in entries {
                        let entry = entry.map_err(|err| Error::io(err, &self.dir))?;
                        let name = entry.file_name();
                        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                            continue;
                        };
                        if let Some((cx, cy)) = stem
                            .split_once('_')
                            .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
                        {
                            tree.insert(cx, cy);
                        }
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io(err, &self.dir)),
            }
            for key in self.chunks.keys() {
                tree.insert(key.0, key.1);
            }
            self.known = Some(tree);
        }
        Ok(self.known.as_ref().expect("just built"))
    }

    /// Chunks overlapping tiles [tx0, tx1) x [ty0, ty1).
    fn chunks_in(&mut self, tx0: i64, ty0: i64, tx1: i64, ty1: i64) -> Result<Vec<(i64, i64)>> {
        if tx0 >= tx1 || ty0 >= ty1 {
            return Ok(Vec::new());
        }
        let (cx0, cy0) = chunk_of(tx0, ty0);
        let (cx1, cy1) = chunk_of(tx1 - 1, ty1 - 1);
        let (w, h) = (
            i128::from(cx1) - i128::from(cx0) + 1,
            i128::from(cy1) - i128::from(cy0) + 1,
        );
        if w * h <= BY_NAME {
            let mut out = Vec::new();
            for cy in cy0..=cy1 {
                for cx in cx0..=cx1 {
                    out.push((cx, cy));
                }
            }
            return Ok(out);
        }
        Ok(self.known()?.query(
            cx0.into(),
            cy0.into(),
            i128::from(cx1) + 1,
            i128::from(cy1) + 1,
        ))
    }

    /// Tiles with a saved PXI in [tx0, tx1) x [ty0, ty1), sorted by (ty, tx).
    pub fn tiles_in(&mut self, tx0: i64, ty0: i64, tx1: i64, ty1: i64) -> Result<Vec<(i64, i64)>> {
        let mut found = Vec::new();
        for key in self.chunks_in(tx0, ty0, tx1, ty1)? {
            found.extend(
                self.chunk(key)?
                    .chunk
                    .tiles
                    .iter()
                    .copied()
                    .filter(|&(tx, ty)| tx >= tx0 && tx < tx1 && ty >= ty0 && ty < ty1),
            );
        }
        found.sort_by_key(|&(tx, ty)| (ty, tx));
        Ok(found)
    }

    /// Every chunk, loaded (for stats).
    pub fn all(&mut self) -> Result<Vec<&Chunk>> {
        let keys = self.known()?.all();
        for key in &keys {
            self.chunk(*key)?;
        }
        Ok(keys
            .iter()
            .filter_map(|key| self.chunks.get(key).map(|l| &l.chunk))
            .collect())
    }

    /// Saves the changed chunks; those holding new write records go last, so a
    /// record never names pixels whose tiles are not listed yet.
    pub fn flush(&mut self) -> Result<()> {
        let mut dirty: Vec<((i64, i64), bool)> = self
            .chunks
            .iter()
            .filter(|(_, l)| l.dirty)
            .map(|(k, l)| (*k, l.records))
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        dirty.sort_by_key(|&(key, records)| (records, key));
        std::fs::create_dir_all(&self.dir).map_err(|err| Error::io(err, &self.dir))?;
        for (key, _) in dirty {
            let path = self.path(key);
            let loaded = self.chunks.get_mut(&key).expect("listed above");
            let text = serde_json::to_vec(&loaded.chunk).unwrap_or_default();
            pxos_pixel::durable::write_atomic(
                &path,
                &text,
                pxos_pixel::durable::label::MAP_MANIFEST,
            )
            .map_err(|err| Error::io(err, &path))?;
            loaded.dirty = false;
            loaded.records = false;
        }
        Ok(())
    }
}
