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
mod migrate;
pub mod seglog;
pub mod store;
mod table;
pub mod time;
pub mod tree;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use pxos_pixel::{Hash256, Kind, Limits, durable};
use serde::{Deserialize, Serialize};

pub use bootpixel::{read_boot_pixel, write_boot_pixel};
pub use error::{Error, Result};
pub use fsck::{FsckReport, Problem};
pub use lock::{ReadLock, WriteLock};
use seglog::SegLog;
use store::{Location, Store};
pub use table::{Entry, PathTable, check_path, format_file_id, parse_sha};
use tree::{Editor, FileMeta, Node};

/// The marker file that identifies a PixelFS directory.
const MARKER: &str = "PIXELFS";
const MARKER_CONTENT: &str = "pxos pixelfs 2\n";
/// The path table of a store written by pxOS 0.1 (migrated on first use).
pub const TABLE_FILE: &str = "paths.png";
/// The root reference.
pub const HEAD_FILE: &str = "HEAD";
/// The `format` of `HEAD`.
pub const HEAD_FORMAT: &str = "pxos-fs-head";

/// `HEAD`: the current snapshot and its root directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsHead {
    pub format: String,
    pub version: u32,
    /// The snapshot number (its record in the snapshot log).
    pub snapshot: u64,
    /// The root directory's tree object: the project boot pixel's address.
    pub root: Hash256,
    /// Files in the tree.
    pub files: u64,
    /// Bytes of their payloads.
    pub bytes: u64,
}

/// One record of the snapshot log: a committed root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub snapshot: u64,
    pub root: Hash256,
    /// The root it replaced (zero for the first).
    pub parent: Hash256,
    pub time: String,
    /// What made it: `init`, `add`, `add-dir`, `rm`, `revert`, `migrate`, ...
    pub op: String,
    /// How many paths changed.
    pub changes: u64,
    /// The first paths changed (at most 16).
    pub paths: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl FsHead {
    /// The parent of the first snapshot: nothing, at number 0.
    fn before_first() -> FsHead {
        FsHead {
            format: HEAD_FORMAT.into(),
            version: 1,
            snapshot: 0,
            root: Hash256::ZERO,
            files: 0,
            bytes: 0,
        }
    }
}

impl Snapshot {
    fn head(&self) -> FsHead {
        FsHead {
            format: HEAD_FORMAT.into(),
            version: 1,
            snapshot: self.snapshot,
            root: self.root,
            files: self.files,
            bytes: self.bytes,
        }
    }
}

/// One difference between two trees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub status: &'static str,
    pub old: Option<Entry>,
    pub new: Option<Entry>,
}

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
    store: Store,
}

/// A batch of files to add in one snapshot.
pub struct Batch {
    items: Vec<(String, BatchSource, Option<Kind>, Option<String>)>,
}

enum BatchSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch { items: Vec::new() }
    }

    /// Adds host file `source` at `path`.
    pub fn file(&mut self, path: String, source: PathBuf, description: Option<String>) {
        self.items
            .push((path, BatchSource::File(source), None, description));
    }

    /// Adds `bytes` of `kind` at `path`.
    pub fn bytes(&mut self, path: String, bytes: Vec<u8>, kind: Kind, description: Option<String>) {
        self.items
            .push((path, BatchSource::Bytes(bytes), Some(kind), description));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Bytes of small objects held for one pack before it is written.
const PACK_FLUSH_BYTES: u64 = 256 << 20;

impl PixelFs {
    fn at(root: &Path) -> PixelFs {
        PixelFs {
            root: root.to_path_buf(),
            limits: Limits::default(),
            store: Store::new(root, Limits::default()),
        }
    }

    /// Opens an existing store. A store written by pxOS 0.1 (one path table)
    /// is migrated first, atomically; so is a store whose last write stopped
    /// between its snapshot record and its `HEAD`.
    pub fn open(root: &Path) -> Result<PixelFs> {
        if !root.join(MARKER).is_file() {
            return Err(Error::NotInitialized(root.to_path_buf()));
        }
        let fs = PixelFs::at(root);
        if root.join(HEAD_FILE).is_file() {
            if root.join(TABLE_FILE).is_file() {
                // A migration that stopped after its HEAD: finish it.
                let _lock = fs.lock()?;
                migrate::finish(&fs)?;
            }
            return Ok(fs);
        }
        if root.join(TABLE_FILE).is_file() || fs.snapshot_log().exists() {
            let _lock = fs.lock()?;
            fs.settle_head()?;
            return Ok(fs);
        }
        Err(Error::NotInitialized(root.to_path_buf()))
    }

    /// The same store, decoding its objects under `limits`.
    pub fn with_limits(mut self, limits: Limits) -> PixelFs {
        self.store.set_limits(limits);
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

    /// Creates an empty store at `root`; an existing store is left as it is
    /// (a pxOS 0.1 store is migrated).
    pub fn init(root: &Path) -> Result<PixelFs> {
        let with = |err: std::io::Error| Error::from(err).with_path(root);
        fs::create_dir_all(root.join("objects")).map_err(with)?;
        let fs = PixelFs::at(root);
        let _lock = fs.lock()?;
        fs.settle_head()?;
        if !root.join(MARKER).is_file() {
            durable::write_atomic(
                root.join(MARKER),
                MARKER_CONTENT.as_bytes(),
                durable::label::MARKER,
            )
            .map_err(with)?;
        }
        Ok(fs)
    }

    /// Makes `HEAD` name the last committed snapshot (the caller holds the
    /// lock): creates the first snapshot of a new store, migrates a pxOS 0.1
    /// store, or rolls `HEAD` forward to a snapshot whose record was durable
    /// when a crash stopped the write.
    fn settle_head(&self) -> Result<FsHead> {
        self.remove_stale_temporaries();
        let log = self.snapshot_log();
        let last = log.last()?;
        let head = self.read_head_file()?;
        match (head, last) {
            (Some(head), Some(record)) => {
                let snapshot = decode_snapshot(&record.body)?;
                if snapshot.snapshot == head.snapshot {
                    if snapshot.root != head.root {
                        return Err(self.head_disagrees(&head, &snapshot));
                    }
                    return Ok(head);
                }
                if snapshot.snapshot == head.snapshot + 1 && snapshot.parent == head.root {
                    let head = snapshot.head();
                    self.write_head(&head)?;
                    return Ok(head);
                }
                Err(self.head_disagrees(&head, &snapshot))
            }
            (None, Some(record)) => {
                let snapshot = decode_snapshot(&record.body)?;
                let head = snapshot.head();
                self.write_head(&head)?;
                if self.root.join(TABLE_FILE).is_file() {
                    migrate::finish(self)?;
                }
                Ok(head)
            }
            (Some(head), None) => Err(Error::Format(format!(
                "{}: HEAD names snapshot {} but the snapshot log is empty: the log was deleted",
                self.root.display(),
                head.snapshot
            ))),
            (None, None) if self.root.join(TABLE_FILE).is_file() => migrate::migrate(self),
            (None, None) => {
                let empty = tree::Tree::default();
                let (root, _) =
                    self.store
                        .put_loose(&empty.encode(), Kind::Table, durable::label::FS_TREE)?;
                self.record_and_point(&FsHead::before_first(), true, (root, 0, 0), "init", &[])
            }
        }
    }

    fn head_disagrees(&self, head: &FsHead, snapshot: &Snapshot) -> Error {
        Error::Format(format!(
            "{}: HEAD names snapshot {} (root {}), but the snapshot log ends at snapshot {} (root {}): HEAD or the log was replaced",
            self.root.display(),
            head.snapshot,
            head.root.short(),
            snapshot.snapshot,
            snapshot.root.short()
        ))
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes the write lock.
    pub fn lock(&self) -> Result<WriteLock> {
        WriteLock::acquire(&self.root.join("lock"))
    }

    /// The snapshot log (`snapshots/`).
    pub fn snapshot_log(&self) -> SegLog {
        SegLog::new(&self.root.join("snapshots"))
    }

    fn read_head_file(&self) -> Result<Option<FsHead>> {
        let path = self.root.join(HEAD_FILE);
        let bytes = match seglog::read_bounded(&path, 64 << 10) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::from(err).with_path(&path)),
        };
        let head: FsHead = serde_json::from_slice(&bytes)
            .map_err(|err| Error::Format(format!("HEAD is damaged: {err}")).with_path(&path))?;
        if head.format != HEAD_FORMAT || head.version != 1 {
            return Err(
                Error::Format(format!("HEAD has format {:?}", head.format)).with_path(&path)
            );
        }
        Ok(Some(head))
    }

    /// The current snapshot.
    pub fn head(&self) -> Result<FsHead> {
        self.read_head_file()?
            .ok_or_else(|| Error::NotInitialized(self.root.clone()))
    }

    fn write_head(&self, head: &FsHead) -> Result<()> {
        let path = self.root.join(HEAD_FILE);
        let mut json = serde_json::to_vec(head).expect("HEAD serializes");
        json.push(b'\n');
        durable::write_atomic(&path, &json, durable::label::FS_HEAD)
            .map_err(|err| Error::from(err).with_path(&path))
    }

    /// Writes an editor's changed directories as loose objects (one add or
    /// rm); returns the new root and its totals.
    fn write_trees_loose(&self, editor: Editor<'_>) -> Result<(Hash256, u64, u64)> {
        editor.commit(&mut |bytes| {
            Ok(self
                .store
                .put_loose(&bytes, Kind::Table, durable::label::FS_TREE)?
                .0)
        })
    }

    /// Commits a new root (the caller holds the lock and read `expected`):
    /// compare-and-swap on `HEAD`, then the snapshot record, then `HEAD`.
    fn commit(
        &self,
        expected: &FsHead,
        (root, files, bytes): (Hash256, u64, u64),
        op: &str,
        paths: &[String],
    ) -> Result<FsHead> {
        let now = self.head()?;
        if now != *expected {
            return Err(Error::Usage(format!(
                "PixelFS changed during this write (snapshot {} became {}); nothing was committed",
                expected.snapshot, now.snapshot
            )));
        }
        if root == expected.root {
            return Ok(now);
        }
        self.record_and_point(expected, false, (root, files, bytes), op, paths)
    }

    fn record_and_point(
        &self,
        parent: &FsHead,
        first: bool,
        (root, files, bytes): (Hash256, u64, u64),
        op: &str,
        paths: &[String],
    ) -> Result<FsHead> {
        let snapshot = Snapshot {
            snapshot: if first { 0 } else { parent.snapshot + 1 },
            root,
            parent: parent.root,
            time: time::now_rfc3339(),
            op: op.to_string(),
            changes: paths.len() as u64,
            paths: paths.iter().take(16).cloned().collect(),
            files,
            bytes,
        };
        self.snapshot_log()
            .append(&serde_json::to_vec(&snapshot).expect("snapshots serialize"))?;
        let head = snapshot.head();
        self.write_head(&head)?;
        Ok(head)
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        self.snapshot_log()
            .read_all()?
            .iter()
            .map(|record| decode_snapshot(&record.body))
            .collect()
    }

    /// Snapshot `number`.
    pub fn snapshot(&self, number: u64) -> Result<Snapshot> {
        let head = self.head()?;
        if number > head.snapshot {
            return Err(Error::NotFound(format!(
                "no snapshot {number} (the last is {})",
                head.snapshot
            )));
        }
        let records = self.snapshot_log().read_from(number)?;
        let record = records
            .first()
            .ok_or_else(|| Error::NotFound(format!("no snapshot {number}")))?;
        decode_snapshot(&record.body)
    }

    /// The root of snapshot `at`, or of `HEAD`.
    pub fn root_at(&self, at: Option<u64>) -> Result<Hash256> {
        match at {
            Some(number) => Ok(self.snapshot(number)?.root),
            None => Ok(self.head()?.root),
        }
    }

    /// Every file of the current tree, as a table (a walk of the whole tree).
    pub fn table(&self) -> Result<PathTable> {
        self.table_at(None)
    }

    /// Every file of snapshot `at` (the current one when `None`).
    pub fn table_at(&self, at: Option<u64>) -> Result<PathTable> {
        let head = self.head()?;
        let root = self.root_at(at)?;
        let mut table = PathTable::default();
        table.generation = at.unwrap_or(head.snapshot);
        tree::walk_files(&self.store, &root, "", &mut |path, meta| {
            table.insert_from_tree(meta.entry(path));
            Ok(())
        })?;
        Ok(table)
    }

    /// Files under `dir` (`/` for all) in snapshot `at`, walking only that directory.
    pub fn list_under(&self, dir: &str, at: Option<u64>) -> Result<Option<Vec<Entry>>> {
        let root = self.root_at(at)?;
        let Some(tree) = self.find_dir(&root, dir)? else {
            return Ok(None);
        };
        let prefix = if dir == "/" {
            ""
        } else {
            dir.trim_end_matches('/')
        };
        let mut out = Vec::new();
        tree::walk_files(&self.store, &tree, prefix, &mut |path, meta| {
            out.push(meta.entry(path));
            Ok(())
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some(out))
    }

    /// The children of directory `dir` in snapshot `at`: subdirectories
    /// (with their file counts) and files. `None` when it is not a directory.
    pub fn list_dir(&self, dir: &str, at: Option<u64>) -> Result<Option<Vec<(String, Node)>>> {
        let root = self.root_at(at)?;
        let Some(tree) = self.find_dir(&root, dir)? else {
            return Ok(None);
        };
        Ok(Some(
            tree::load(&self.store, &tree)?
                .children
                .into_iter()
                .collect(),
        ))
    }

    /// The names in directory `dir` in snapshot `at`, sorted, each with
    /// whether it is a directory. `None` when it is not a directory. Reads
    /// the trees on the path to `dir` and no others.
    pub fn dir_names(&self, dir: &str, at: Option<u64>) -> Result<Option<Vec<(String, bool)>>> {
        Ok(self.list_dir(dir, at)?.map(|children| {
            children
                .into_iter()
                .map(|(name, node)| (name, matches!(node, Node::Dir { .. })))
                .collect()
        }))
    }

    /// The tree object of directory `dir` under `root`.
    fn find_dir(&self, root: &Hash256, dir: &str) -> Result<Option<Hash256>> {
        let mut sha = *root;
        if dir == "/" {
            return Ok(Some(sha));
        }
        let dir = dir.trim_end_matches('/');
        check_path(dir)?;
        for part in dir[1..].split('/') {
            match tree::load(&self.store, &sha)?.children.remove(part) {
                Some(Node::Dir { tree, .. }) => sha = tree,
                _ => return Ok(None),
            }
        }
        Ok(Some(sha))
    }

    /// The object file a loose object would have (packed objects have none).
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        match Hash256::parse(sha256) {
            Some(sha) => self.store.loose_path(&sha),
            None => self.root.join("objects").join("invalid"),
        }
    }

    /// Where an entry's object is: a loose PXI, or a pack (`PACK#offset`).
    pub fn object_location(&self, sha256: &str) -> Result<Option<String>> {
        let sha = Hash256::parse(sha256)
            .ok_or_else(|| Error::Usage(format!("{sha256} is not a sha256")))?;
        Ok(self.store.locate(&sha)?.map(|location| match location {
            Location::Loose(path) => path.display().to_string(),
            Location::Packed { pack, offset, .. } => format!("{}#{offset}", pack.display()),
        }))
    }

    /// The PXI file that holds an object and where the object's bytes start
    /// in its payload: the object's own file at 0, or its pack at the
    /// object's offset. `None` when the store does not hold it.
    pub fn object_pxi(&self, sha256: &str) -> Result<Option<(PathBuf, u64)>> {
        let sha = Hash256::parse(sha256)
            .ok_or_else(|| Error::Usage(format!("{sha256} is not a sha256")))?;
        Ok(self.store.locate(&sha)?.map(|location| match location {
            Location::Loose(path) => (path, 0),
            Location::Packed { pack, offset, .. } => (pack, offset),
        }))
    }

    /// Adds one host file at `path`.
    pub fn add_file(&self, path: &str, source: &Path, options: &AddOptions) -> Result<Added> {
        check_path(path)?;
        let metadata = fs::metadata(source).map_err(|err| Error::from(err).with_path(source))?;
        if !metadata.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a regular file",
                source.display()
            )));
        }
        let _lock = self.lock()?;
        let head = self.settle_head()?;
        let mut editor = Editor::new(&self.store, &head.root)?;
        let kind = options.kind.unwrap_or_else(|| discover::guess_kind(source));
        let (sha, size, new_object) = self.store.put_file(source, kind)?;
        let meta = FileMeta {
            kind: kind.name().to_string(),
            description: options.description.clone().unwrap_or_default(),
            size,
            sha256: sha,
            created: time::now_rfc3339(),
        };
        let added = stage(&mut editor, path, meta, options.replace, new_object)?;
        if added.status != AddStatus::Unchanged {
            let written = self.write_trees_loose(editor)?;
            self.commit(&head, written, "add", &[path.to_string()])?;
        }
        Ok(added)
    }

    /// Adds every file under host directory `dir` below `prefix`, as one snapshot.
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
        let mut batch = Batch::new();
        for file in discover::walk(dir, include_hidden)? {
            let description = options
                .description
                .clone()
                .unwrap_or_else(|| format!("{} (from {})", file.relative, dir.display()));
            batch.file(
                format!("{prefix}/{}", file.relative),
                file.source,
                Some(description),
            );
        }
        self.add_batch(batch, options, "add-dir", progress)
    }

    /// Adds a batch of files as one snapshot: small objects go into packs,
    /// synced once, and the new root is committed only when every object is
    /// durable, so after a crash the batch is all there or not there.
    pub fn add_batch(
        &self,
        batch: Batch,
        options: &AddOptions,
        op: &str,
        progress: &mut dyn FnMut(&Added),
    ) -> Result<Vec<Added>> {
        for (path, ..) in &batch.items {
            check_path(path)?;
        }
        let _lock = self.lock()?;
        let head = self.settle_head()?;
        let mut editor = Editor::new(&self.store, &head.root)?;
        let mut pack: BTreeMap<Hash256, (Kind, Vec<u8>)> = BTreeMap::new();
        let mut pack_bytes = 0u64;
        let mut results = Vec::with_capacity(batch.items.len());
        let mut changed = Vec::new();
        for (path, source, kind, description) in batch.items {
            let (bytes, kind) = match source {
                BatchSource::Bytes(bytes) => (Some(bytes), kind.unwrap_or(Kind::Blob)),
                BatchSource::File(source) => {
                    let metadata =
                        fs::metadata(&source).map_err(|err| Error::from(err).with_path(&source))?;
                    if !metadata.is_file() {
                        return Err(Error::Usage(format!(
                            "{} is not a regular file",
                            source.display()
                        )));
                    }
                    let kind = options
                        .kind
                        .unwrap_or_else(|| discover::guess_kind(&source));
                    if metadata.len() <= store::PACK_MAX_OBJECT {
                        let bytes =
                            fs::read(&source).map_err(|err| Error::from(err).with_path(&source))?;
                        (Some(bytes), kind)
                    } else {
                        let (sha, size, new_object) = self.store.put_file(&source, kind)?;
                        let meta = FileMeta {
                            kind: kind.name().to_string(),
                            description: options
                                .description
                                .clone()
                                .or(description)
                                .unwrap_or_default(),
                            size,
                            sha256: sha,
                            created: time::now_rfc3339(),
                        };
                        let added = stage(&mut editor, &path, meta, options.replace, new_object)?;
                        if added.status != AddStatus::Unchanged {
                            changed.push(path);
                        }
                        progress(&added);
                        results.push(added);
                        continue;
                    }
                }
            };
            let bytes = bytes.expect("small objects are read");
            let sha = Hash256::of(&bytes);
            let new_object = !pack.contains_key(&sha) && !self.store.contains(&sha)?;
            let meta = FileMeta {
                kind: kind.name().to_string(),
                description: options
                    .description
                    .clone()
                    .or(description)
                    .unwrap_or_default(),
                size: bytes.len() as u64,
                sha256: sha,
                created: time::now_rfc3339(),
            };
            let added = stage(&mut editor, &path, meta, options.replace, new_object)?;
            if new_object {
                pack_bytes += bytes.len() as u64;
                pack.insert(sha, (kind, bytes));
            }
            if added.status != AddStatus::Unchanged {
                changed.push(path);
            }
            progress(&added);
            results.push(added);
            if pack_bytes >= PACK_FLUSH_BYTES {
                self.store.write_pack(&pack)?;
                pack.clear();
                pack_bytes = 0;
            }
        }
        if changed.is_empty() {
            if !pack.is_empty() {
                self.store.write_pack(&pack)?;
            }
            return Ok(results);
        }
        let written = editor.commit(&mut |bytes| {
            let sha = Hash256::of(&bytes);
            if !self.store.contains(&sha)? {
                pack.insert(sha, (Kind::Table, bytes));
            }
            Ok(sha)
        })?;
        if !pack.is_empty() {
            self.store.write_pack(&pack)?;
        }
        self.commit(&head, written, op, &changed)?;
        Ok(results)
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Result<Entry> {
        self.get_at(path, None)
    }

    /// The entry at `path` in snapshot `at` (the current one when `None`).
    pub fn get_at(&self, path: &str, at: Option<u64>) -> Result<Entry> {
        check_path(path)?;
        let root = self.root_at(at)?;
        let mut editor = Editor::new(&self.store, &root)?;
        match editor.get(path)? {
            Some(meta) => Ok(meta.entry(path)),
            None => Err(Error::NotFound(format!("no such path in PixelFS: {path}"))),
        }
    }

    /// Writes the verified payload of `entry` to `sink`.
    pub fn read_to(&self, entry: &Entry, sink: &mut dyn Write) -> Result<()> {
        let sha = Hash256::parse(&entry.sha256)
            .ok_or_else(|| Error::Format(format!("entry {}: bad sha256", entry.path)))?;
        self.store
            .read_to(&sha, sink)
            .map_err(|err| self.missing(err, entry))?;
        Ok(())
    }

    /// Copies the verified payload of `entry` to host file `target` (atomically).
    pub fn export(&self, entry: &Entry, target: &Path) -> Result<()> {
        let sha = Hash256::parse(&entry.sha256)
            .ok_or_else(|| Error::Format(format!("entry {}: bad sha256", entry.path)))?;
        match self.store.locate(&sha)? {
            Some(Location::Loose(object)) => {
                pxos_pixel::decode_file(&object, target, &self.limits, &mut |_| {})
                    .map_err(|err| self.missing(Error::Pixel(err), entry))?;
                Ok(())
            }
            _ => {
                let (_, bytes) = self
                    .store
                    .read(&sha)
                    .map_err(|err| self.missing(err, entry))?;
                durable::write_atomic(target, &bytes, durable::label::PIXEL_DECODE)
                    .map_err(|err| Error::from(err).with_path(target))
            }
        }
    }

    fn missing(&self, err: Error, entry: &Entry) -> Error {
        if let Error::Pixel(pixel) = err.root()
            && let pxos_pixel::Error::Io(io) = pixel.root()
            && io.kind() == std::io::ErrorKind::NotFound
        {
            return Error::Format(format!(
                "the object of {} is missing from the store (run `pxos fs fsck`)",
                entry.path
            ));
        }
        err
    }

    /// Resolves a path, a file id (`0x1234abcd` or eight hex digits) or a boot-pixel PNG to entries.
    pub fn resolve(&self, query: &str) -> Result<Vec<Entry>> {
        if query.starts_with('/') && check_path(query).is_ok() {
            match self.get(query) {
                Ok(entry) => return Ok(vec![entry]),
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(err),
            }
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
        let matches: Vec<Entry> = self
            .table()?
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

    /// The snapshot whose root a project boot pixel (a 1x1 PNG at `query`,
    /// from `pxos fs boot-pixel /`) addresses: the current one first, then
    /// the newest earlier one. `None` when `query` is no boot pixel or
    /// matches no root.
    pub fn resolve_root(&self, query: &str) -> Result<Option<Snapshot>> {
        if !Path::new(query).is_file() {
            return Ok(None);
        }
        let Ok(id) = read_boot_pixel(Path::new(query)) else {
            return Ok(None);
        };
        let head = self.head()?;
        if head.root.file_id() == id {
            return Ok(Some(self.snapshot(head.snapshot)?));
        }
        Ok(self
            .snapshots()?
            .into_iter()
            .rev()
            .find(|snapshot| snapshot.root.file_id() == id))
    }

    /// Unlinks `path`. The object stays in the store (and in every earlier snapshot).
    pub fn remove(&self, path: &str) -> Result<Entry> {
        check_path(path)?;
        let _lock = self.lock()?;
        let head = self.settle_head()?;
        let mut editor = Editor::new(&self.store, &head.root)?;
        let meta = editor
            .remove(path)?
            .ok_or_else(|| Error::NotFound(format!("no such path in PixelFS: {path}")))?;
        let written = self.write_trees_loose(editor)?;
        self.commit(&head, written, "rm", &[path.to_string()])?;
        Ok(meta.entry(path))
    }

    /// Makes snapshot `number`'s tree the current one, as a new snapshot
    /// (nothing is deleted: the snapshots between stay readable).
    pub fn revert(&self, number: u64) -> Result<FsHead> {
        let _lock = self.lock()?;
        let head = self.settle_head()?;
        let target = self.snapshot(number)?;
        // The target's tree must be whole before it becomes current.
        tree::walk_files(&self.store, &target.root, "", &mut |_, _| Ok(()))?;
        if target.root == head.root {
            return Ok(head);
        }
        self.record_and_point(
            &head,
            false,
            (target.root, target.files, target.bytes),
            &format!("revert to {number}"),
            &[],
        )
    }

    /// Makes `root` (a tree that came from elsewhere, such as a remote)
    /// the current one, as a new snapshot made by `op`, when `HEAD` is still
    /// `expected` (a compare-and-swap). Every directory and file under it must
    /// be in the store first.
    pub fn set_root(&self, expected: &FsHead, root: Hash256, op: &str) -> Result<FsHead> {
        let _lock = self.lock()?;
        self.settle_head()?;
        let mut missing = None;
        tree::walk_files(&self.store, &root, "", &mut |path, meta| {
            if missing.is_none() && !self.store.contains(&meta.sha256)? {
                missing = Some(path.to_string());
            }
            Ok(())
        })?;
        if let Some(path) = missing {
            return Err(Error::Format(format!(
                "the tree {} is not whole here: the object of {path} is missing",
                root.short()
            )));
        }
        let (files, bytes) = tree::load(&self.store, &root)?.totals();
        self.commit(expected, (root, files, bytes), op, &[])
    }

    /// What changed between snapshots `a` and `b` (subtrees with equal hashes are skipped).
    pub fn diff(&self, a: u64, b: u64) -> Result<Vec<Change>> {
        let (ra, rb) = (self.snapshot(a)?.root, self.snapshot(b)?.root);
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), Some(ra), Some(rb))];
        while let Some((dir, left, right)) = stack.pop() {
            if left == right {
                continue;
            }
            let load = |sha: Option<Hash256>| -> Result<tree::Tree> {
                match sha {
                    Some(sha) => tree::load(&self.store, &sha),
                    None => Ok(tree::Tree::default()),
                }
            };
            let (lt, rt) = (load(left)?, load(right)?);
            let names: std::collections::BTreeSet<&String> =
                lt.children.keys().chain(rt.children.keys()).collect();
            let mut subdirs = Vec::new();
            for name in names {
                let path = format!("{dir}/{name}");
                let (l, r) = (lt.children.get(name), rt.children.get(name));
                let file = |node: Option<&Node>| match node {
                    Some(Node::File(meta)) => Some(meta.entry(&path)),
                    _ => None,
                };
                let sub = |node: Option<&Node>| match node {
                    Some(Node::Dir { tree, .. }) => Some(*tree),
                    _ => None,
                };
                let (lf, rf) = (file(l), file(r));
                match (&lf, &rf) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(_), Some(_)) => out.push(Change {
                        path: path.clone(),
                        status: "changed",
                        old: lf.clone(),
                        new: rf.clone(),
                    }),
                    (Some(_), None) => out.push(Change {
                        path: path.clone(),
                        status: "removed",
                        old: lf.clone(),
                        new: None,
                    }),
                    (None, Some(_)) => out.push(Change {
                        path: path.clone(),
                        status: "added",
                        old: None,
                        new: rf.clone(),
                    }),
                    (None, None) => {}
                }
                let (ls, rs) = (sub(l), sub(r));
                if (ls.is_some() || rs.is_some()) && ls != rs {
                    subdirs.push((path, ls, rs));
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        out.sort_by(|x, y| x.path.cmp(&y.path));
        Ok(out)
    }

    /// Every loose object file in the store.
    pub fn objects(&self) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let objects = self.root.join("objects");
        let read = |dir: &Path| fs::read_dir(dir).map_err(|err| Error::from(err).with_path(dir));
        let shards = match read(&objects) {
            Ok(shards) => shards,
            Err(err) if err.root_io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(out),
            Err(err) => return Err(err),
        };
        for shard in shards {
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

    /// Every object any snapshot reaches: the trees of every snapshot root
    /// and the files under them. Refuses (rather than answer short) when
    /// the snapshot log does not verify or a reachable tree cannot be read.
    pub fn reachable(&self) -> Result<HashSet<Hash256>> {
        let log = self.snapshot_log();
        let report = log.verify(true, &mut |_| Ok(()))?;
        if !report.is_ok() {
            return Err(Error::Format(format!(
                "the snapshot log does not verify ({}); every object is kept until it does",
                report.problems.join("; ")
            )));
        }
        let mut trees = HashSet::new();
        let mut files = HashSet::new();
        for snapshot in self.snapshots()? {
            tree::reach(&self.store, &snapshot.root, &mut trees, &mut files)?;
        }
        let head = self.head()?;
        tree::reach(&self.store, &head.root, &mut trees, &mut files)?;
        files.extend(trees);
        Ok(files)
    }

    /// Loose objects and packs no snapshot reaches.
    pub fn unreferenced(&self) -> Result<Vec<ObjectInfo>> {
        let reachable = self.reachable()?;
        let mut out: Vec<ObjectInfo> = self
            .objects()?
            .into_iter()
            .filter(|object| {
                Hash256::parse(&object.sha256).is_some_and(|sha| !reachable.contains(&sha))
            })
            .collect();
        for pack in self.store.pack_files()? {
            let entries = self.store.read_pack_table(&pack)?;
            if entries.iter().all(|entry| !reachable.contains(&entry.sha)) {
                out.push(ObjectInfo {
                    sha256: pack
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    file_len: fs::metadata(&pack).map(|m| m.len()).unwrap_or(0),
                    path: pack,
                });
            }
        }
        Ok(out)
    }

    /// Garbage collection: lists objects no snapshot reaches (loose objects,
    /// and packs none of whose objects is reached), and deletes them only
    /// when `apply` is true (recording each in `gc.log`).
    pub fn gc(&self, apply: bool) -> Result<Vec<ObjectInfo>> {
        let _lock = self.lock()?;
        self.settle_head()?;
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
                    "time": time::now_rfc3339(), "removed": object.sha256, "file": object.path, "file_len": object.file_len
                });
                writeln!(log, "{line}").map_err(|err| Error::from(err).with_path(&log_path))?;
                log.sync_data()?;
                fs::remove_file(&object.path)
                    .map_err(|err| Error::from(err).with_path(&object.path))?;
                let _ = fs::remove_file(object.path.with_extension("idx"));
            }
        }
        Ok(garbage)
    }

    /// Checks every object referenced by `paths` (all entries when empty):
    /// reads it and compares its hash. Returns the problems found.
    pub fn verify(&self, paths: &[String]) -> Result<Vec<Problem>> {
        let entries: Vec<Entry> = if paths.is_empty() {
            self.table()?.entries().cloned().collect()
        } else {
            paths
                .iter()
                .map(|path| self.get(path))
                .collect::<Result<_>>()?
        };
        Ok(entries
            .iter()
            .filter_map(|entry| fsck::check_entry(self, entry))
            .collect())
    }

    /// Checks the whole store: HEAD, the snapshot log, every tree, every
    /// object, leftovers.
    pub fn fsck(&self) -> Result<FsckReport> {
        fsck::fsck(self)
    }

    /// Removes temporary files left by a crashed writer (the caller holds the lock).
    fn remove_stale_temporaries(&self) {
        for leftover in self.temporaries() {
            let _ = fs::remove_file(leftover);
        }
    }

    /// Temporary files left by interrupted writers, in the store and its folders.
    pub fn temporaries(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.root.clone(),
            self.root.join("objects"),
            self.root.join("packs"),
            self.root.join("snapshots"),
            self.root.join("snapshots").join("segments"),
        ];
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
}

/// Puts `meta` at `path` in the editor, with the add rules: the same
/// content and type is unchanged; other content needs `replace`.
fn stage(
    editor: &mut Editor<'_>,
    path: &str,
    meta: FileMeta,
    replace: bool,
    new_object: bool,
) -> Result<Added> {
    match editor.get(path)? {
        Some(existing) if existing.sha256 == meta.sha256 && existing.kind == meta.kind => {
            return Ok(Added {
                entry: existing.entry(path),
                status: AddStatus::Unchanged,
                new_object,
            });
        }
        Some(_) if !replace => {
            return Err(Error::Usage(format!(
                "{path} already exists with other content (use --replace; the old object is kept)"
            )));
        }
        _ => {}
    }
    let entry = meta.entry(path);
    let status = match editor.put(path, meta)? {
        Some(_) => AddStatus::Replaced,
        None => AddStatus::Added,
    };
    Ok(Added {
        entry,
        status,
        new_object,
    })
}

fn decode_snapshot(body: &[u8]) -> Result<Snapshot> {
    serde_json::from_slice(body)
        .map_err(|err| Error::Format(format!("a snapshot record is damaged: {err}")))
}
