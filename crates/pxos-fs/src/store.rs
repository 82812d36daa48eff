//! The object store: loose objects (one PXI each, `objects/ab/cdef....png`)
//! and packs (`packs/SHA.png`, many small objects in one PXI, with an index
//! `packs/SHA.idx` that is only an accelerator: it is rebuilt from the pack
//! when missing or wrong). Objects are named by the SHA-256 of their bytes;
//! every read checks it. See `docs/formats/pixelfs.md`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pxos_pixel::{EncodeOptions, Hash256, Kind, Limits, PixelReader, durable};

use crate::error::{Error, Result};

/// The first bytes of a pack's payload and of its index.
pub const PACK_MAGIC: &[u8; 8] = b"PXPACK1\n";
pub const INDEX_MAGIC: &[u8; 8] = b"PXPKIX1\n";
/// Bytes of one index entry: SHA-256, kind, offset, length.
pub const INDEX_ENTRY: usize = 32 + 1 + 8 + 8;
/// Objects up to this size go into a batch's pack; larger ones stay loose.
pub const PACK_MAX_OBJECT: u64 = 256 << 10;
/// Most objects in one pack.
pub const PACK_MAX_OBJECTS: u64 = 1 << 24;

/// Where an object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Loose(PathBuf),
    Packed {
        pack: PathBuf,
        kind: Kind,
        offset: u64,
        len: u64,
    },
}

/// One entry of a pack index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub sha: Hash256,
    pub kind: Kind,
    pub offset: u64,
    pub len: u64,
}

fn entry_bytes(entry: &PackEntry) -> [u8; INDEX_ENTRY] {
    let mut out = [0u8; INDEX_ENTRY];
    out[..32].copy_from_slice(&entry.sha.0);
    out[32] = entry.kind.code();
    out[33..41].copy_from_slice(&entry.offset.to_le_bytes());
    out[41..49].copy_from_slice(&entry.len.to_le_bytes());
    out
}

fn parse_entry(bytes: &[u8]) -> Option<PackEntry> {
    Some(PackEntry {
        sha: Hash256(bytes.get(..32)?.try_into().ok()?),
        kind: Kind::from_code(*bytes.get(32)?)?,
        offset: u64::from_le_bytes(bytes.get(33..41)?.try_into().ok()?),
        len: u64::from_le_bytes(bytes.get(41..49)?.try_into().ok()?),
    })
}

/// An opened pack index: binary search by positioned reads, so a lookup
/// costs O(log n) reads whatever the pack's size.
#[derive(Debug)]
struct PackIndex {
    pack: PathBuf,
    file: File,
    count: u64,
}

impl PackIndex {
    fn entry(&self, i: u64) -> Option<PackEntry> {
        let mut buf = [0u8; INDEX_ENTRY];
        self.file
            .read_exact_at(&mut buf, 16 + i * INDEX_ENTRY as u64)
            .ok()?;
        parse_entry(&buf)
    }

    fn find(&self, sha: &Hash256) -> Option<PackEntry> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.entry(mid)?;
            match entry.sha.cmp(sha) {
                std::cmp::Ordering::Equal => return Some(entry),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }
}

/// The object store under a PixelFS root.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    limits: Limits,
    packs: Arc<Mutex<Option<Vec<Arc<PackIndex>>>>>,
}

impl Store {
    pub fn new(root: &Path, limits: Limits) -> Store {
        Store {
            root: root.to_path_buf(),
            limits,
            packs: Arc::new(Mutex::new(None)),
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The loose object file for `sha`.
    pub fn loose_path(&self, sha: &Hash256) -> PathBuf {
        let hex = sha.to_hex();
        self.root
            .join("objects")
            .join(&hex[0..2])
            .join(format!("{}.png", &hex[2..]))
    }

    pub fn packs_dir(&self) -> PathBuf {
        self.root.join("packs")
    }

    /// Every pack file, sorted.
    pub fn pack_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.packs_dir();
        let mut out = Vec::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.starts_with(durable::TEMP_PREFIX) && name.ends_with(".png") {
                        out.push(entry.path());
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::from(err).with_path(&dir)),
        }
        out.sort();
        Ok(out)
    }

    fn indexes(&self) -> Result<Vec<Arc<PackIndex>>> {
        let mut cache = self.packs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(packs) = cache.as_ref() {
            return Ok(packs.clone());
        }
        let mut packs = Vec::new();
        for pack in self.pack_files()? {
            packs.push(Arc::new(self.open_index(&pack)?));
        }
        *cache = Some(packs.clone());
        Ok(packs)
    }

    /// Forgets the cached pack list (after a new pack).
    fn forget_packs(&self) {
        *self.packs.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Opens a pack's index, rebuilding it from the pack when it is missing
    /// or does not match the pack.
    fn open_index(&self, pack: &Path) -> Result<PackIndex> {
        let idx = pack.with_extension("idx");
        if let Ok(index) = self.try_index(pack, &idx) {
            return Ok(index);
        }
        let entries = self.read_pack_table(pack)?;
        write_index(&idx, &entries)?;
        self.try_index(pack, &idx)
    }

    /// The object count a pack's own table declares (one band read).
    fn pack_count(&self, pack: &Path) -> Result<u64> {
        let mut reader = PixelReader::open(pack, &self.limits)
            .map_err(|err| Error::Pixel(err).with_path(pack))?;
        let head = reader
            .read_at(0, 16)
            .map_err(|err| Error::Pixel(err).with_path(pack))?;
        if head.get(..8) != Some(&PACK_MAGIC[..]) {
            return Err(Error::Format("not a PixelFS pack".into()).with_path(pack));
        }
        Ok(u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")))
    }

    /// True when `pack`'s index lists exactly the pack's own table.
    pub fn index_matches(&self, pack: &Path, entries: &[PackEntry]) -> bool {
        let Ok(index) = self.try_index(pack, &pack.with_extension("idx")) else {
            return false;
        };
        index.count == entries.len() as u64
            && entries
                .iter()
                .enumerate()
                .all(|(i, entry)| index.entry(i as u64) == Some(*entry))
    }

    fn try_index(&self, pack: &Path, idx: &Path) -> Result<PackIndex> {
        let mut file = File::open(idx).map_err(|err| Error::from(err).with_path(idx))?;
        let mut head = [0u8; 16];
        file.read_exact(&mut head)
            .map_err(|err| Error::from(err).with_path(idx))?;
        let count = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let len = file.seek(SeekFrom::End(0))?;
        if &head[..8] != INDEX_MAGIC
            || count > PACK_MAX_OBJECTS
            || len != 16 + count * INDEX_ENTRY as u64
            || self.pack_count(pack)? != count
        {
            return Err(Error::Format("the pack index does not match".into()).with_path(idx));
        }
        Ok(PackIndex {
            pack: pack.to_path_buf(),
            file,
            count,
        })
    }

    /// The object table at the start of a pack's payload, checked.
    pub fn read_pack_table(&self, pack: &Path) -> Result<Vec<PackEntry>> {
        let mut reader = PixelReader::open(pack, &self.limits)
            .map_err(|err| Error::Pixel(err).with_path(pack))?;
        let payload_len = reader.header().payload_len;
        let bad = |why: String| Error::Format(why).with_path(pack);
        let head = reader
            .read_at(0, 16)
            .map_err(|err| Error::Pixel(err).with_path(pack))?;
        if head.get(..8) != Some(&PACK_MAGIC[..]) {
            return Err(bad("not a PixelFS pack".into()));
        }
        let count = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let table_len = count
            .checked_mul(INDEX_ENTRY as u64)
            .and_then(|n| n.checked_add(16))
            .filter(|&n| count <= PACK_MAX_OBJECTS && n <= payload_len)
            .ok_or_else(|| bad(format!("the pack claims {count} objects")))?;
        let table = reader
            .read_at(16, (table_len - 16) as usize)
            .map_err(|err| Error::Pixel(err).with_path(pack))?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous: Option<Hash256> = None;
        for chunk in table.chunks_exact(INDEX_ENTRY) {
            let entry =
                parse_entry(chunk).ok_or_else(|| bad("a pack entry has an unknown kind".into()))?;
            let end = entry.offset.checked_add(entry.len);
            if entry.offset < table_len || end.is_none_or(|end| end > payload_len) {
                return Err(bad(format!(
                    "pack entry {} lies outside the pack",
                    entry.sha.short()
                )));
            }
            if previous.is_some_and(|p| p >= entry.sha) {
                return Err(bad("the pack's entries are not sorted".into()));
            }
            previous = Some(entry.sha);
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Where `sha` is stored, if anywhere.
    pub fn locate(&self, sha: &Hash256) -> Result<Option<Location>> {
        let loose = self.loose_path(sha);
        if loose.is_file() {
            return Ok(Some(Location::Loose(loose)));
        }
        for index in self.indexes()? {
            if let Some(entry) = index.find(sha) {
                return Ok(Some(Location::Packed {
                    pack: index.pack.clone(),
                    kind: entry.kind,
                    offset: entry.offset,
                    len: entry.len,
                }));
            }
        }
        Ok(None)
    }

    /// True when the store holds `sha`.
    pub fn contains(&self, sha: &Hash256) -> Result<bool> {
        Ok(self.locate(sha)?.is_some())
    }

    /// Reads a whole object and checks its hash. For trees and small files;
    /// large files stream through [`Store::read_to`].
    pub fn read(&self, sha: &Hash256) -> Result<(Kind, Vec<u8>)> {
        let mut out = Vec::new();
        let kind = self.read_to(sha, &mut out)?;
        Ok((kind, out))
    }

    /// Writes an object's checked bytes to `sink`; returns its kind.
    pub fn read_to(&self, sha: &Hash256, sink: &mut dyn std::io::Write) -> Result<Kind> {
        match self.locate(sha)? {
            None => Err(Error::Format(format!(
                "object {} is missing from the store (run `pxos fs fsck`)",
                sha.short()
            ))),
            Some(Location::Loose(path)) => {
                let file = pxos_pixel::open_nonempty(&path)
                    .map_err(|err| Error::Pixel(err).with_path(&path))?;
                // The decoder checks the payload against the header's hash.
                let decoded = pxos_pixel::decode(
                    std::io::BufReader::new(file),
                    sink,
                    &self.limits,
                    &mut |_| {},
                )
                .map_err(|err| Error::Pixel(err).with_path(&path))?;
                if decoded.header.sha256 != sha.0 {
                    return Err(Error::Format(format!(
                        "object {} holds other content than its name says",
                        sha.short()
                    ))
                    .with_path(&path));
                }
                Ok(decoded.header.kind)
            }
            Some(Location::Packed {
                pack,
                kind,
                offset,
                len,
            }) => {
                if len > self.limits.max_payload {
                    return Err(Error::Format(format!(
                        "packed object {} is larger than the payload limit",
                        sha.short()
                    ))
                    .with_path(&pack));
                }
                let mut reader = PixelReader::open(&pack, &self.limits)
                    .map_err(|err| Error::Pixel(err).with_path(&pack))?;
                if offset
                    .checked_add(len)
                    .is_none_or(|end| end > reader.header().payload_len)
                {
                    return Err(Error::Format(format!(
                        "the index of this pack places object {} outside it (remove {} and it is rebuilt)",
                        sha.short(),
                        pack.with_extension("idx").display()
                    ))
                    .with_path(&pack));
                }
                let bytes = reader
                    .read_at(offset, len as usize)
                    .map_err(|err| Error::Pixel(err).with_path(&pack))?;
                if Hash256::of(&bytes) != *sha {
                    return Err(Error::Format(format!(
                        "packed object {} holds other content than its name says",
                        sha.short()
                    ))
                    .with_path(&pack));
                }
                sink.write_all(&bytes)?;
                Ok(kind)
            }
        }
    }

    /// Stores `bytes` as a loose object (when not stored yet); true when written.
    pub fn put_loose(
        &self,
        bytes: &[u8],
        kind: Kind,
        label: durable::Label,
    ) -> Result<(Hash256, bool)> {
        let sha = Hash256::of(bytes);
        if self.contains(&sha)? {
            return Ok((sha, false));
        }
        let path = self.loose_path(&sha);
        let dir = path.parent().expect("object has a parent");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        let png = pxos_pixel::encode_to_vec(bytes, &EncodeOptions::kind(kind))?;
        durable::write_atomic(&path, &png, label)
            .map_err(|err| Error::from(err).with_path(&path))?;
        Ok((sha, true))
    }

    /// Stores host file `source` as a loose object; returns its hash, size and whether it was new.
    pub fn put_file(&self, source: &Path, kind: Kind) -> Result<(Hash256, u64, bool)> {
        let sha = Hash256(pxos_pixel::sha256_file(source)?);
        let size = fs::metadata(source)
            .map_err(|err| Error::from(err).with_path(source))?
            .len();
        if self.contains(&sha)? {
            return Ok((sha, size, false));
        }
        let object = self.loose_path(&sha);
        let dir = object.parent().expect("object has a parent");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        let encoded =
            pxos_pixel::encode_file(source, &object, &EncodeOptions::kind(kind), &mut |_| {})?;
        if encoded.header.sha256 != sha.0 {
            let _ = fs::remove_file(&object);
            return Err(Error::Usage(format!(
                "{} changed while it was being added",
                source.display()
            )));
        }
        durable::sync_dir(dir).map_err(|err| Error::from(err).with_path(dir))?;
        Ok((sha, size, true))
    }

    /// Where a download in progress is kept (`incoming/NAME.part`): it
    /// survives an interrupted pull, which then resumes from its length.
    pub fn incoming_path(&self, name: &str) -> PathBuf {
        self.root.join("incoming").join(format!("{name}.part"))
    }

    /// Checks a loose object fetched from elsewhere (a full decode: the
    /// payload must hash to `sha`) and moves it into the store. Nothing
    /// enters the store unchecked.
    pub fn import_loose(&self, sha: &Hash256, part: &Path) -> Result<()> {
        let decoded = pxos_pixel::verify_file(part, &self.limits, &mut |_| {})
            .map_err(|err| Error::Format(format!("object {} is damaged: {err}", sha.short())))?;
        if decoded.header.sha256 != sha.0 {
            return Err(Error::Format(format!(
                "object {} holds other content than its name says ({})",
                sha.short(),
                Hash256(decoded.header.sha256).short()
            )));
        }
        let target = self.loose_path(sha);
        let dir = target.parent().expect("object has a parent");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        durable::persist_file(part, &target, durable::label::FS_IMPORT)
            .map_err(|err| Error::from(err).with_path(&target))
    }

    /// Moves a loose object fetched from elsewhere into the store when the
    /// caller already decoded it in full (as it arrived) and found payload
    /// hash `decoded`, which must be `sha`.
    pub fn import_loose_decoded(
        &self,
        sha: &Hash256,
        part: &Path,
        decoded: [u8; 32],
    ) -> Result<()> {
        if decoded != sha.0 {
            return Err(Error::Format(format!(
                "object {} holds other content than its name says ({})",
                sha.short(),
                Hash256(decoded).short()
            )));
        }
        let target = self.loose_path(sha);
        let dir = target.parent().expect("object has a parent");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        durable::persist_file(part, &target, durable::label::FS_IMPORT)
            .map_err(|err| Error::from(err).with_path(&target))
    }

    /// Checks a pack fetched from elsewhere (a full decode, its table, and
    /// every object's hash) and moves it into the store with a new index.
    pub fn import_pack(&self, sha: &Hash256, part: &Path) -> Result<PathBuf> {
        let decoded = pxos_pixel::verify_file(part, &self.limits, &mut |_| {})
            .map_err(|err| Error::Format(format!("pack {} is damaged: {err}", sha.short())))?;
        if decoded.header.sha256 != sha.0 {
            return Err(Error::Format(format!(
                "pack {} holds other content than its name says",
                sha.short()
            )));
        }
        let entries = self.read_pack_table(part)?;
        let mut reader = PixelReader::open(part, &self.limits)
            .map_err(|err| Error::Pixel(err).with_path(part))?;
        for entry in &entries {
            let bytes = reader
                .read_at(entry.offset, entry.len as usize)
                .map_err(|err| Error::Pixel(err).with_path(part))?;
            if Hash256::of(&bytes) != entry.sha {
                return Err(Error::Format(format!(
                    "pack {} lists object {} but holds other bytes for it",
                    sha.short(),
                    entry.sha.short()
                )));
            }
        }
        let dir = self.packs_dir();
        fs::create_dir_all(&dir).map_err(|err| Error::from(err).with_path(&dir))?;
        let target = dir.join(format!("{}.png", sha.to_hex()));
        durable::persist_file(part, &target, durable::label::FS_IMPORT)
            .map_err(|err| Error::from(err).with_path(&target))?;
        write_index(&target.with_extension("idx"), &entries)?;
        self.forget_packs();
        Ok(target)
    }

    /// Writes one pack holding `objects` (sorted and deduplicated here) and
    /// its index. Returns the pack's path.
    pub fn write_pack(&self, objects: &BTreeMap<Hash256, (Kind, Vec<u8>)>) -> Result<PathBuf> {
        let count = objects.len() as u64;
        let table_len = 16 + count * INDEX_ENTRY as u64;
        let data_len: u64 = objects.values().map(|(_, b)| b.len() as u64).sum();
        let mut payload = Vec::with_capacity((table_len + data_len) as usize);
        payload.extend_from_slice(PACK_MAGIC);
        payload.extend_from_slice(&count.to_le_bytes());
        let mut entries = Vec::with_capacity(objects.len());
        let mut offset = table_len;
        for (sha, (kind, bytes)) in objects {
            let entry = PackEntry {
                sha: *sha,
                kind: *kind,
                offset,
                len: bytes.len() as u64,
            };
            payload.extend_from_slice(&entry_bytes(&entry));
            entries.push(entry);
            offset += bytes.len() as u64;
        }
        for (_, bytes) in objects.values() {
            payload.extend_from_slice(bytes);
        }
        let dir = self.packs_dir();
        fs::create_dir_all(&dir).map_err(|err| Error::from(err).with_path(&dir))?;
        let pack = dir.join(format!("{}.png", Hash256::of(&payload).to_hex()));
        let png = pxos_pixel::encode_to_vec(&payload, &EncodeOptions::kind(Kind::Blob))?;
        durable::write_atomic(&pack, &png, durable::label::FS_PACK)
            .map_err(|err| Error::from(err).with_path(&pack))?;
        write_index(&pack.with_extension("idx"), &entries)?;
        self.forget_packs();
        Ok(pack)
    }
}

fn write_index(idx: &Path, entries: &[PackEntry]) -> Result<()> {
    let mut bytes = Vec::with_capacity(16 + entries.len() * INDEX_ENTRY);
    bytes.extend_from_slice(INDEX_MAGIC);
    bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for entry in entries {
        bytes.extend_from_slice(&entry_bytes(entry));
    }
    durable::write_atomic(idx, &bytes, durable::label::FS_PACK_INDEX)
        .map_err(|err| Error::from(err).with_path(idx))
}
