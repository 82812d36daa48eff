//! PixelFS on a remote: push, pull (and so clone).
//!
//! The remote holds the same content-addressed objects as a home
//! (`objects/HEX.png`, one PXI each; `packs/HEX.png` with `packs/HEX.idx`)
//! and the reference `fs` (see [`crate::refs`]). A push sends what the
//! remote lacks, then swaps the reference; a pull fetches what the home
//! lacks, checks every object against its hash before it enters the store,
//! then makes the remote's root a new local snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use pxos_fs::store::{INDEX_ENTRY, INDEX_MAGIC, Location};
use pxos_fs::{FsHead, PixelFs, tree};
use pxos_pixel::{Hash256, durable};
use serde::Serialize;

use crate::client::{CONCURRENCY, Remote};
use crate::error::{Error, Result};
use crate::refs::{self, NewValue, RefValue};

/// The reference PixelFS roots move on.
pub const FS_REF: &str = "fs";

/// Progress for a bar: totals and positions in bytes.
pub trait Meter: Sync {
    fn phase(&self, what: &str, total: u64);
    fn position(&self, done: u64);
}

/// A meter that shows nothing.
pub struct Quiet;

impl Meter for Quiet {
    fn phase(&self, _: &str, _: u64) {}
    fn position(&self, _: u64) {}
}

/// What a push did.
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    pub remote: String,
    pub root: Hash256,
    pub snapshot: u64,
    /// The remote's reference after the push.
    pub seq: u64,
    pub up_to_date: bool,
    pub objects_sent: u64,
    pub packs_sent: u64,
    pub bytes_sent: u64,
    /// Objects and packs the remote already had.
    pub skipped: u64,
}

/// What a pull did.
#[derive(Clone, Debug, Serialize)]
pub struct PullReport {
    pub remote: String,
    pub root: Hash256,
    pub seq: u64,
    /// The local snapshot that now holds the remote's root.
    pub snapshot: u64,
    pub up_to_date: bool,
    pub objects_fetched: u64,
    pub packs_fetched: u64,
    pub bytes_fetched: u64,
}

/// What a home last saw of a remote's reference (`remotes/NAME/fs.json`).
fn tracking_path(home: &Path, remote: &str) -> PathBuf {
    home.join("remotes")
        .join(remote)
        .join(format!("{FS_REF}.json"))
}

pub fn read_tracking(home: &Path, remote: &str) -> Result<Option<RefValue>> {
    let path = tracking_path(home, remote);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::BadInput(format!("{}: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io(err, &path)),
    }
}

fn write_tracking(home: &Path, remote: &str, value: &RefValue) -> Result<()> {
    let path = tracking_path(home, remote);
    let dir = path.parent().expect("tracking has a folder");
    std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
    let json = serde_json::to_vec_pretty(value).expect("values serialize");
    durable::write_atomic(&path, &json, durable::label::REMOTE_TRACKING)
        .map_err(|err| Error::io(err, &path))
}

fn uploads_dir(home: &Path, remote: &str) -> PathBuf {
    home.join("remotes").join(remote).join("uploads")
}

/// Who is pushing, for people reading the remote.
fn pusher(home: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}:{}", home.display())
}

/// The set of names (`HEX.png`, `HEX.idx`) under `dir/` on the remote, with sizes.
fn inventory(remote: &Remote, dir: &str) -> Result<HashMap<String, u64>> {
    Ok(remote
        .list(&format!("{dir}/"), None)?
        .into_iter()
        .filter_map(|l| {
            let name = l.rel.strip_prefix(&format!("{dir}/"))?.to_string();
            (!name.contains('/')).then_some((name, l.size))
        })
        .collect())
}

/// Pushes the current PixelFS root and everything it reaches to `remote`.
pub fn push(home: &Path, fs: &PixelFs, remote: &Remote, meter: &dyn Meter) -> Result<PushReport> {
    remote.require_s3("take a PixelFS push")?;
    let name = remote.config.name.clone();
    let head = fs.head()?;
    let theirs = refs::read(remote, FS_REF)?;
    let mut report = PushReport {
        remote: name.clone(),
        root: head.root,
        snapshot: head.snapshot,
        seq: theirs.as_ref().map_or(0, |v| v.seq),
        up_to_date: false,
        objects_sent: 0,
        packs_sent: 0,
        bytes_sent: 0,
        skipped: 0,
    };
    if let Some(theirs) = &theirs {
        if theirs.root == head.root {
            write_tracking(home, &name, theirs)?;
            report.up_to_date = true;
            return Ok(report);
        }
        let seen = read_tracking(home, &name)?;
        let known = seen.as_ref().is_some_and(|s| s.root == theirs.root)
            || fs.snapshots()?.iter().any(|s| s.root == theirs.root);
        if !known {
            return Err(Error::Moved(format!(
                "its PixelFS is at root {} (slot {}, pushed {} by {}), which this home has never had; \
                 pull first (`pxos fs pull {name}`)",
                theirs.root.short(),
                theirs.seq,
                theirs.time,
                theirs.by
            )));
        }
    }
    // Everything the root reaches, by where it is stored here.
    let store = fs.store();
    let (mut trees, mut files) = (HashSet::new(), HashSet::new());
    tree::reach(store, &head.root, &mut trees, &mut files)?;
    let mut loose: BTreeMap<Hash256, PathBuf> = BTreeMap::new();
    let mut packs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for sha in trees.iter().chain(files.iter()) {
        match store.locate(sha)? {
            Some(Location::Loose(path)) => {
                loose.insert(*sha, path);
            }
            Some(Location::Packed { pack, .. }) => {
                let file = pack
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                packs.insert(file, pack);
            }
            None => {
                return Err(Error::Fs(pxos_fs::Error::Format(format!(
                    "object {} is missing from this home's store (run `pxos fs fsck`)",
                    sha.short()
                ))));
            }
        }
    }
    let (loose_count, pack_count) = (loose.len(), packs.len());
    let have_objects = inventory(remote, "objects")?;
    let have_packs = inventory(remote, "packs")?;
    let send_packs: Vec<(String, PathBuf)> = packs
        .into_iter()
        .filter(|(file, path)| {
            let idx = Path::new(file).with_extension("idx");
            let complete = have_packs.contains_key(file)
                && have_packs.contains_key(&idx.to_string_lossy().into_owned());
            !complete && path.exists()
        })
        .collect();
    let send_loose: Vec<(Hash256, PathBuf)> = loose
        .into_iter()
        .filter(|(sha, _)| !have_objects.contains_key(&format!("{}.png", sha.to_hex())))
        .collect();
    report.skipped = (loose_count - send_loose.len() + pack_count - send_packs.len()) as u64;
    let size_of = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let total: u64 = send_packs.iter().map(|(_, p)| size_of(p)).sum::<u64>()
        + send_loose.iter().map(|(_, p)| size_of(p)).sum::<u64>();
    meter.phase("push", total);
    let sent = std::sync::atomic::AtomicU64::new(0);
    let uploads = uploads_dir(home, &name);
    // Packs, each with its index (the index is sent last: a pack without one
    // on the remote counts as not there).
    for (file, path) in &send_packs {
        let base = sent.load(std::sync::atomic::Ordering::Relaxed);
        let resume = uploads.join(format!("{file}.json"));
        remote.upload_file(&format!("packs/{file}"), path, &resume, &|n| {
            meter.position(base + n)
        })?;
        let idx = path.with_extension("idx");
        let idx_bytes = std::fs::read(&idx).map_err(|err| Error::io(err, &idx))?;
        remote.put(
            &format!("packs/{}", Path::new(file).with_extension("idx").display()),
            idx_bytes,
        )?;
        sent.fetch_add(size_of(path), std::sync::atomic::Ordering::Relaxed);
        meter.position(sent.load(std::sync::atomic::Ordering::Relaxed));
        report.packs_sent += 1;
    }
    // Loose objects: small ones many at a time, large ones in resumable parts.
    let (small, large): (Vec<_>, Vec<_>) = send_loose
        .into_iter()
        .partition(|(_, path)| size_of(path) <= crate::client::SINGLE_PUT_MAX);
    for batch in small.chunks(CONCURRENCY * 2) {
        let mut items = Vec::with_capacity(batch.len());
        for (sha, path) in batch {
            let bytes = std::fs::read(path).map_err(|err| Error::io(err, path))?;
            items.push((format!("objects/{}.png", sha.to_hex()), bytes));
        }
        let bytes: u64 = items.iter().map(|(_, b)| b.len() as u64).sum();
        remote.put_many(items)?;
        report.objects_sent += batch.len() as u64;
        sent.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        meter.position(sent.load(std::sync::atomic::Ordering::Relaxed));
        durable::crash_point("fs-push.batch");
    }
    for (sha, path) in &large {
        let base = sent.load(std::sync::atomic::Ordering::Relaxed);
        let resume = uploads.join(format!("{}.json", sha.to_hex()));
        remote.upload_file(
            &format!("objects/{}.png", sha.to_hex()),
            path,
            &resume,
            &|n| meter.position(base + n),
        )?;
        sent.fetch_add(size_of(path), std::sync::atomic::Ordering::Relaxed);
        report.objects_sent += 1;
    }
    report.bytes_sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    let value = refs::swap(
        remote,
        FS_REF,
        theirs.as_ref(),
        &NewValue {
            root: head.root,
            files: head.files,
            bytes: head.bytes,
            by: pusher(home),
        },
    )?;
    write_tracking(home, &name, &value)?;
    report.seq = value.seq;
    Ok(report)
}

/// Where the remote keeps objects: loose ones by name, packed ones by pack.
struct RemoteObjects {
    loose: HashMap<String, u64>,
    /// Pack file (`HEX.png`) and its size, by object.
    packed: HashMap<Hash256, (String, u64)>,
}

fn remote_objects(remote: &Remote, local_packs: &HashSet<String>) -> Result<RemoteObjects> {
    let loose = inventory(remote, "objects")?;
    let packs = inventory(remote, "packs")?;
    let mut packed = HashMap::new();
    for (file, size) in &packs {
        let Some(hex) = file.strip_suffix(".png") else {
            continue;
        };
        if local_packs.contains(file) {
            continue;
        }
        // The index is only a guide to which pack to fetch: the pack itself
        // is checked object by object when it arrives.
        let idx = format!("packs/{hex}.idx");
        let Some(bytes) = remote.get(&idx)? else {
            continue;
        };
        if bytes.len() < 16 || &bytes[..8] != INDEX_MAGIC || (bytes.len() - 16) % INDEX_ENTRY != 0 {
            return Err(Error::Remote(format!("{idx} is not a pack index")));
        }
        for entry in bytes[16..].chunks_exact(INDEX_ENTRY) {
            let sha = Hash256(entry[..32].try_into().expect("32 bytes"));
            packed.insert(sha, (file.clone(), *size));
        }
    }
    Ok(RemoteObjects { loose, packed })
}

struct Fetcher<'a> {
    fs: &'a PixelFs,
    remote: &'a Remote,
    objects: RemoteObjects,
    meter: &'a dyn Meter,
    fetched_bytes: u64,
    objects_fetched: u64,
    packs_fetched: u64,
}

impl Fetcher<'_> {
    /// Brings `wanted` (hashes this home lacks) into the store, checked.
    fn fetch(&mut self, wanted: &[Hash256]) -> Result<()> {
        let store = self.fs.store();
        let mut packs: BTreeMap<String, u64> = BTreeMap::new();
        let mut loose = Vec::new();
        for sha in wanted {
            if store.contains(sha)? {
                continue;
            }
            let name = format!("{}.png", sha.to_hex());
            if let Some(size) = self.objects.loose.get(&name) {
                loose.push((*sha, *size));
            } else if let Some((pack, size)) = self.objects.packed.get(sha) {
                packs.insert(pack.clone(), *size);
            } else {
                return Err(Error::Remote(format!(
                    "the remote lacks object {} (its trees name it): the remote is incomplete or damaged",
                    sha.to_hex()
                )));
            }
        }
        for (pack, size) in packs {
            let hex = pack.trim_end_matches(".png");
            let sha = pxos_fs::parse_sha(hex)
                .map(Hash256)
                .ok_or_else(|| Error::Remote(format!("packs/{pack} is not named by a hash")))?;
            let part = store.incoming_path(&pack);
            let base = self.fetched_bytes;
            self.remote
                .download(&format!("packs/{pack}"), size, &part, &|n| {
                    self.meter.position(base + n)
                })?;
            store.import_pack(&sha, &part).map_err(|err| {
                let _ = std::fs::remove_file(&part);
                Error::Remote(format!("packs/{pack}: {err}"))
            })?;
            self.fetched_bytes += size;
            self.packs_fetched += 1;
        }
        let (small, large): (Vec<_>, Vec<_>) = loose
            .into_iter()
            .partition(|(_, size)| *size <= crate::client::SINGLE_PUT_MAX);
        for batch in small.chunks(CONCURRENCY * 8) {
            let rels: Vec<String> = batch
                .iter()
                .map(|(sha, _)| format!("objects/{}.png", sha.to_hex()))
                .collect();
            let bodies = self.remote.get_many(&rels)?;
            for ((sha, _), (rel, body)) in batch.iter().zip(rels.iter().zip(bodies)) {
                let body =
                    body.ok_or_else(|| Error::Remote(format!("{rel} was listed but is gone")))?;
                let part = store.incoming_path(&sha.to_hex());
                let dir = part.parent().expect("incoming has a folder");
                std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
                std::fs::write(&part, &body).map_err(|err| Error::io(err, &part))?;
                store.import_loose(sha, &part).map_err(|err| {
                    let _ = std::fs::remove_file(&part);
                    Error::Remote(format!("{rel}: {err}"))
                })?;
                self.fetched_bytes += body.len() as u64;
                self.objects_fetched += 1;
            }
            self.meter.position(self.fetched_bytes);
        }
        for (sha, size) in large {
            let rel = format!("objects/{}.png", sha.to_hex());
            let part = store.incoming_path(&sha.to_hex());
            let base = self.fetched_bytes;
            let limits = *self.fs.limits();
            // Decoded and hashed while it arrives.
            let decoded = self.remote.download_checked(
                &rel,
                size,
                &part,
                &|n| self.meter.position(base + n),
                |source| {
                    pxos_pixel::decode(
                        std::io::BufReader::with_capacity(1 << 20, source),
                        &mut std::io::sink(),
                        &limits,
                        &mut |_| {},
                    )
                    .map_err(|err| Error::Remote(format!("{rel}: {err}")))
                },
            );
            let imported = decoded.and_then(|decoded| {
                store
                    .import_loose_decoded(&sha, &part, decoded.header.sha256)
                    .map_err(|err| Error::Remote(format!("{rel}: {err}")))
            });
            if let Err(err) = imported {
                // A part that does not check is not resumed from.
                if matches!(err, Error::Remote(_)) {
                    let _ = std::fs::remove_file(&part);
                }
                return Err(err);
            }
            self.fetched_bytes += size;
            self.objects_fetched += 1;
        }
        Ok(())
    }
}

/// Pulls remote `remote`'s PixelFS root into `fs`. Refused when this home
/// has a tree it never pushed (unless `force`: the current tree then stays
/// in the snapshot log).
pub fn pull(
    home: &Path,
    fs: &PixelFs,
    remote: &Remote,
    force: bool,
    meter: &dyn Meter,
) -> Result<PullReport> {
    remote.require_s3("serve a PixelFS pull")?;
    let name = remote.config.name.clone();
    let theirs = refs::read(remote, FS_REF)?.ok_or_else(|| {
        Error::NotFound(format!(
            "remote {name:?} has no PixelFS yet (nothing was pushed to it)"
        ))
    })?;
    let head: FsHead = fs.head()?;
    let mut report = PullReport {
        remote: name.clone(),
        root: theirs.root,
        seq: theirs.seq,
        snapshot: head.snapshot,
        up_to_date: head.root == theirs.root,
        objects_fetched: 0,
        packs_fetched: 0,
        bytes_fetched: 0,
    };
    if report.up_to_date {
        write_tracking(home, &name, &theirs)?;
        return Ok(report);
    }
    let seen = read_tracking(home, &name)?;
    let clean = head.files == 0 || seen.as_ref().is_some_and(|s| s.root == head.root);
    if !clean && !force {
        return Err(Error::Refused(format!(
            "this home's PixelFS (snapshot {}, root {}) has changes remote {name:?} lacks: \
             push them first, or pull with --force (the current tree stays in `pxos fs log`)",
            head.snapshot,
            head.root.short()
        )));
    }
    let local_packs: HashSet<String> = fs
        .store()
        .pack_files()?
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let objects = remote_objects(remote, &local_packs)?;
    if !fs.store().contains(&theirs.root)?
        && !objects
            .loose
            .contains_key(&format!("{}.png", theirs.root.to_hex()))
        && !objects.packed.contains_key(&theirs.root)
    {
        return Err(Error::Remote(format!(
            "its reference {FS_REF} names root {}, but the remote has no such object",
            theirs.root.to_hex()
        )));
    }
    let total: u64 = objects.loose.values().sum::<u64>();
    meter.phase("pull", total);
    let mut fetcher = Fetcher {
        fs,
        remote,
        objects,
        meter,
        fetched_bytes: 0,
        objects_fetched: 0,
        packs_fetched: 0,
    };
    // Level by level: the trees of one depth, then their children.
    let mut frontier = vec![theirs.root];
    let mut files = Vec::new();
    let mut seen_trees = HashSet::new();
    while !frontier.is_empty() {
        fetcher.fetch(&frontier)?;
        let mut next = Vec::new();
        for sha in &frontier {
            if !seen_trees.insert(*sha) {
                continue;
            }
            let tree = tree::load(fs.store(), sha)
                .map_err(|err| Error::Remote(format!("tree {}: {err}", sha.short())))?;
            for node in tree.children.values() {
                match node {
                    tree::Node::File(meta) => files.push(meta.sha256),
                    tree::Node::Dir { tree, .. } => next.push(*tree),
                }
            }
        }
        frontier = next;
    }
    files.sort();
    files.dedup();
    fetcher.fetch(&files)?;
    report.objects_fetched = fetcher.objects_fetched;
    report.packs_fetched = fetcher.packs_fetched;
    report.bytes_fetched = fetcher.fetched_bytes;
    let new = fs.set_root(&head, theirs.root, &format!("pull {name} @{}", theirs.seq))?;
    write_tracking(home, &name, &theirs)?;
    report.snapshot = new.snapshot;
    Ok(report)
}
