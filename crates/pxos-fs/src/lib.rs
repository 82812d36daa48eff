//! PixelFS: a content-addressed store of PXI pixel files plus a path table.
//!
//! Objects are PXI images named by the SHA-256 of their payload, so the same
//! content is stored once. The path table (itself a PXI) maps paths such as
//! `/boot/00_kernel` to objects, with a type, description, size, `file_id`
//! and colour per entry. Unlinking a path keeps its object; only an explicit
//! garbage collection removes unreferenced objects. Every change replaces the
//! table atomically under a write lock.
//!
//! ```no_run
//! use pxos_fs::{AddOptions, PixelFs};
//!
//! let fs = PixelFs::open_or_init("/tmp/pxos-home/fs".as_ref())?;
//! fs.add_file("/docs/readme", "README.md".as_ref(), &AddOptions::default())?;
//! let entry = fs.get("/docs/readme")?;
//! println!("{} {}", entry.file_id, entry.size);
//! # Ok::<(), pxos_fs::Error>(())
//! ```

mod bootpixel;
pub mod discover;
mod error;
mod fsck;
pub mod fuzz;
pub mod lock;
mod table;
pub mod time;

use std::fs;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Kind, Limits, durable};

pub use bootpixel::{read_boot_pixel, write_boot_pixel};
pub use error::{Error, Result};
pub use fsck::{FsckReport, Problem};
pub use lock::{ReadLock, WriteLock};
pub use table::{Entry, PathTable, check_path, format_file_id, parse_sha};

/// The marker file that identifies a PixelFS directory.
const MARKER: &str = "PIXELFS";
const MARKER_CONTENT: &str = "pxos pixelfs 1\n";
/// The path table's file name.
pub const TABLE_FILE: &str = "paths.png";

/// Options for adding files.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// The object kind; guessed from the file when `None`.
    pub kind: Option<Kind>,
    /// The entry description.
    pub description: Option<String>,
    /// Replace an existing entry at the same path (its object is kept).
    pub replace: bool,
}

/// What happened to one path during an add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddStatus {
    /// A new path.
    Added,
    /// The path existed with other content and was replaced.
    Replaced,
    /// The path already held exactly this content and type.
    Unchanged,
}

/// The result of adding one file.
#[derive(Clone, Debug)]
pub struct Added {
    /// The entry now in the table.
    pub entry: Entry,
    /// What happened to the path.
    pub status: AddStatus,
    /// False when the object already existed (deduplicated).
    pub new_object: bool,
}

/// An object file in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The payload SHA-256, hex.
    pub sha256: String,
    /// The object file.
    pub path: PathBuf,
    /// Size of the object file in bytes.
    pub file_len: u64,
}

/// An opened PixelFS directory.
#[derive(Clone, Debug)]
pub struct PixelFs {
    root: PathBuf,
    /// The limits objects are decoded under (the CLI's `--max-payload` and `--max-ratio`).
    limits: Limits,
}

impl PixelFs {
    /// Opens an existing store.
    pub fn open(root: &Path) -> Result<PixelFs> {
        if !root.join(MARKER).is_file() || !root.join(TABLE_FILE).is_file() {
            return Err(Error::NotInitialized(root.to_path_buf()));
        }
        Ok(PixelFs {
            root: root.to_path_buf(),
            limits: Limits::default(),
        })
    }

    /// The same store, decoding its objects under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> PixelFs {
        self.limits = limits;
        self
    }

    /// The limits objects are decoded under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Creates the store if needed (idempotent) and opens it.
    pub fn open_or_init(root: &Path) -> Result<PixelFs> {
        if let Ok(fs) = PixelFs::open(root) {
            return Ok(fs);
        }
        Self::init(root)
    }

    /// Creates an empty store at `root`; an existing store is left as it is.
    pub fn init(root: &Path) -> Result<PixelFs> {
        let with = |err: std::io::Error| Error::from(err).with_path(root);
        fs::create_dir_all(root.join("objects")).map_err(with)?;
        let fs = PixelFs {
            root: root.to_path_buf(),
            limits: Limits::default(),
        };
        let _lock = fs.lock()?;
        if !root.join(TABLE_FILE).is_file() {
            fs.write_table(&PathTable::default())?;
        }
        if !root.join(MARKER).is_file() {
            durable::write_atomic(
                root.join(MARKER),
                MARKER_CONTENT.as_bytes(),
                pxos_pixel::durable::label::MARKER,
            )
            .map_err(with)?;
        }
        Ok(fs)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the write lock.
    pub fn lock(&self) -> Result<WriteLock> {
        WriteLock::acquire(&self.root.join("lock"))
    }

    /// Loads the path table.
    pub fn table(&self) -> Result<PathTable> {
        let path = self.root.join(TABLE_FILE);
        let bytes = fs::read(&path).map_err(|err| Error::from(err).with_path(&path))?;
        PathTable::decode(&bytes).map_err(|err| err.with_path(&path))
    }

    /// Replaces the path table atomically (the caller holds the lock).
    fn write_table(&self, table: &PathTable) -> Result<()> {
        let path = self.root.join(TABLE_FILE);
        let bytes = table.encode()?;
        self.remove_stale_temporaries();
        durable::write_atomic(&path, &bytes, pxos_pixel::durable::label::PATH_TABLE)
            .map_err(|err| Error::from(err).with_path(&path))
    }

    /// Removes temporary files left by a crashed writer (the caller holds the lock).
    fn remove_stale_temporaries(&self) {
        for leftover in self.temporaries() {
            let _ = fs::remove_file(leftover);
        }
    }

    /// Temporary files left by interrupted writers, in the store and its object shards.
    pub fn temporaries(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.root.clone(), self.root.join("objects")];
        if let Ok(shards) = fs::read_dir(self.root.join("objects")) {
            dirs.extend(
                shards
                    .flatten()
                    .filter(|s| s.path().is_dir())
                    .map(|s| s.path()),
            );
        }
        let mut found = Vec::new();
        for dir in dirs {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with(durable::TEMP_PREFIX)
                    {
                        found.push(entry.path());
                    }
                }
            }
        }
        found.sort();
        found
    }

    /// The object file for a payload hash.
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        self.root
            .join("objects")
            .join(&sha256[0..2])
            .join(format!("{}.png", &sha256[2..]))
    }

    /// Stores the file at `source` as an object and returns (sha, size, newly written).
    fn store_object(&self, source: &Path, kind: Kind) -> Result<([u8; 32], u64, bool)> {
        let sha = pxos_pixel::sha256_file(source)?;
        let size = fs::metadata(source)
            .map_err(|err| Error::from(err).with_path(source))?
            .len();
        let hex = pxos_pixel::hex(&sha);
        let object = self.object_path(&hex);
        if object.is_file() {
            return Ok((sha, size, false));
        }
        let dir = object.parent().expect("object has a parent");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        let encoded =
            pxos_pixel::encode_file(source, &object, &EncodeOptions::kind(kind), &mut |_| {})?;
        if encoded.header.sha256 != sha {
            let _ = fs::remove_file(&object);
            return Err(Error::Usage(format!(
                "{} changed while it was being added",
                source.display()
            )));
        }
        durable::sync_dir(dir).map_err(|err| Error::from(err).with_path(dir))?;
        Ok((sha, size, true))
    }

    /// Adds one host file at `path`.
    pub fn add_file(&self, path: &str, source: &Path, options: &AddOptions) -> Result<Added> {
        check_path(path)?;
        let _lock = self.lock()?;
        let mut table = self.table()?;
        let added = self.stage(&mut table, path, source, options, None)?;
        if added.status != AddStatus::Unchanged {
            table.generation += 1;
            self.write_table(&table)?;
        }
        Ok(added)
    }

    /// Adds every file under host directory `dir` below `prefix`, in one table update.
    pub fn add_tree(
        &self,
        dir: &Path,
        prefix: &str,
        options: &AddOptions,
        include_hidden: bool,
        progress: &mut dyn FnMut(&Added),
    ) -> Result<Vec<Added>> {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            check_path(prefix)?;
        }
        let found = discover::walk(dir, include_hidden)?;
        let _lock = self.lock()?;
        let mut table = self.table()?;
        let mut results = Vec::with_capacity(found.len());
        for file in found {
            let path = format!("{prefix}/{}", file.relative);
            let description = options
                .description
                .clone()
                .unwrap_or_else(|| format!("{} (from {})", file.relative, dir.display()));
            let added = self.stage(&mut table, &path, &file.source, options, Some(description))?;
            progress(&added);
            results.push(added);
        }
        if results
            .iter()
            .any(|added| added.status != AddStatus::Unchanged)
        {
            table.generation += 1;
            self.write_table(&table)?;
        }
        Ok(results)
    }

    fn stage(
        &self,
        table: &mut PathTable,
        path: &str,
        source: &Path,
        options: &AddOptions,
        default_description: Option<String>,
    ) -> Result<Added> {
        check_path(path)?;
        let metadata = fs::metadata(source).map_err(|err| Error::from(err).with_path(source))?;
        if !metadata.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a regular file",
                source.display()
            )));
        }
        let kind = options.kind.unwrap_or_else(|| discover::guess_kind(source));
        let (sha, size, new_object) = self.store_object(source, kind)?;
        let description = options
            .description
            .clone()
            .or(default_description)
            .unwrap_or_default();
        let entry = Entry::new(path, kind, &description, size, &sha, time::now_rfc3339());
        let status = match table.get(path) {
            Some(existing) if existing.sha256 == entry.sha256 && existing.kind == entry.kind => {
                return Ok(Added {
                    entry: existing.clone(),
                    status: AddStatus::Unchanged,
                    new_object,
                });
            }
            Some(_) if !options.replace => {
                return Err(Error::Usage(format!(
                    "{path} already exists with other content (use --replace; the old object is kept)"
                )));
            }
            Some(_) => AddStatus::Replaced,
            None => AddStatus::Added,
        };
        table.insert(entry.clone())?;
        Ok(Added {
            entry,
            status,
            new_object,
        })
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Result<Entry> {
        check_path(path)?;
        self.table()?
            .get(path)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no such path in PixelFS: {path}")))
    }

    /// Writes the verified payload of `entry` to `sink`.
    pub fn read_to(&self, entry: &Entry, sink: &mut dyn Write) -> Result<()> {
        let object = self.object_path(&entry.sha256);
        let file = pxos_pixel::open_nonempty(&object).map_err(|err| self.missing(err, entry))?;
        let decoded =
            pxos_pixel::decode(BufReader::new(file), &mut *sink, &self.limits, &mut |_| {})
                .map_err(|err| err.with_path(&object))?;
        if pxos_pixel::hex(&decoded.header.sha256) != entry.sha256 {
            return Err(
                Error::Format(format!("object for {} holds other content", entry.path))
                    .with_path(&object),
            );
        }
        Ok(())
    }

    /// Copies the verified payload of `entry` to host file `target` (atomically).
    pub fn export(&self, entry: &Entry, target: &Path) -> Result<()> {
        let object = self.object_path(&entry.sha256);
        pxos_pixel::decode_file(&object, target, &self.limits, &mut |_| {})
            .map_err(|err| self.missing(err, entry))?;
        Ok(())
    }

    fn missing(&self, err: pxos_pixel::Error, entry: &Entry) -> Error {
        match err.root() {
            pxos_pixel::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                Error::Format(format!(
                    "the object of {} is missing from the store (run `pxos fs fsck`)",
                    entry.path
                ))
            }
            _ => Error::Pixel(err),
        }
    }

    /// Resolves a path, a file id (`0x1234abcd` or eight hex digits) or a boot-pixel PNG to entries.
    pub fn resolve(&self, query: &str) -> Result<Vec<Entry>> {
        let table = self.table()?;
        if let Some(entry) = table.get(query) {
            return Ok(vec![entry.clone()]);
        }
        let hex = query.strip_prefix("0x").unwrap_or(query);
        let file_id = if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            u32::from_str_radix(hex, 16).ok()
        } else {
            None
        };
        let file_id = match file_id {
            Some(id) => id,
            None if Path::new(query).is_file() => read_boot_pixel(Path::new(query))?,
            None if query.starts_with('/') => {
                return Err(Error::NotFound(format!("no such path in PixelFS: {query}")));
            }
            None => {
                return Err(Error::Usage(format!(
                    "'{query}' is not a PixelFS path, a file id (0x12345678) or a boot-pixel PNG"
                )));
            }
        };
        let matches: Vec<Entry> = table
            .entries()
            .filter(|entry| entry.file_id_value() == file_id)
            .cloned()
            .collect();
        if matches.is_empty() {
            return Err(Error::NotFound(format!(
                "no entry has file id {}",
                format_file_id(file_id)
            )));
        }
        Ok(matches)
    }

    /// Unlinks `path`. The object stays in the store until an explicit gc.
    pub fn remove(&self, path: &str) -> Result<Entry> {
        check_path(path)?;
        let _lock = self.lock()?;
        let mut table = self.table()?;
        let entry = table
            .remove(path)
            .ok_or_else(|| Error::NotFound(format!("no such path in PixelFS: {path}")))?;
        table.generation += 1;
        self.write_table(&table)?;
        Ok(entry)
    }

    /// Every object file in the store.
    pub fn objects(&self) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let objects = self.root.join("objects");
        let read = |dir: &Path| fs::read_dir(dir).map_err(|err| Error::from(err).with_path(dir));
        for shard in read(&objects)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for object in read(&shard.path())? {
                let object = object?;
                let name = object.file_name().to_string_lossy().into_owned();
                if name.starts_with(durable::TEMP_PREFIX) {
                    continue; // An interrupted write; see `temporaries`.
                }
                let Some(rest) = name.strip_suffix(".png") else {
                    continue;
                };
                let sha256 = format!("{}{rest}", shard.file_name().to_string_lossy());
                out.push(ObjectInfo {
                    sha256,
                    path: object.path(),
                    file_len: object.metadata()?.len(),
                });
            }
        }
        out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(out)
    }

    /// Objects no path refers to.
    pub fn unreferenced(&self) -> Result<Vec<ObjectInfo>> {
        let table = self.table()?;
        let referenced: std::collections::HashSet<&str> =
            table.entries().map(|e| e.sha256.as_str()).collect();
        Ok(self
            .objects()?
            .into_iter()
            .filter(|object| !referenced.contains(object.sha256.as_str()))
            .collect())
    }

    /// Garbage collection: lists unreferenced objects, and deletes them only
    /// when `apply` is true (recording each in `gc.log`).
    pub fn gc(&self, apply: bool) -> Result<Vec<ObjectInfo>> {
        let _lock = self.lock()?;
        let garbage = self.unreferenced()?;
        if apply {
            let log_path = self.root.join("gc.log");
            let mut log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|err| Error::from(err).with_path(&log_path))?;
            for object in &garbage {
                let line = serde_json::json!({
                    "time": time::now_rfc3339(), "removed": object.sha256, "file_len": object.file_len
                });
                writeln!(log, "{line}").map_err(|err| Error::from(err).with_path(&log_path))?;
                log.sync_data()?;
                fs::remove_file(&object.path)
                    .map_err(|err| Error::from(err).with_path(&object.path))?;
            }
        }
        Ok(garbage)
    }

    /// Checks every object referenced by `paths` (all entries when empty):
    /// decodes it and compares its hash. Returns the problems found.
    pub fn verify(&self, paths: &[String]) -> Result<Vec<Problem>> {
        let table = self.table()?;
        let entries: Vec<&Entry> = if paths.is_empty() {
            table.entries().collect()
        } else {
            paths
                .iter()
                .map(|path| {
                    table
                        .get(path)
                        .ok_or_else(|| Error::NotFound(format!("no such path in PixelFS: {path}")))
                })
                .collect::<Result<_>>()?
        };
        Ok(entries
            .into_iter()
            .filter_map(|entry| fsck::check_entry(self, entry))
            .collect())
    }

    /// Checks the whole store: table, every entry, every object, leftovers.
    pub fn fsck(&self) -> Result<FsckReport> {
        fsck::fsck(self)
    }
}
