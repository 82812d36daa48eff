//! Upgrading a store written by pxOS 0.1 (one path table, `paths.png`) to
//! directory trees and snapshots, in place. The trees go into one pack, the
//! first snapshot records the migrated root, and `HEAD` is written last: a
//! crash before it leaves the old store (the next open migrates again), a
//! crash after it leaves the new one. The old table is kept, moved to
//! `legacy/paths-v1.png`; the objects stay where they are.

use std::collections::BTreeMap;
use std::fs;

use pxos_pixel::{Hash256, Kind, durable};

use crate::error::{Error, Result};
use crate::tree::{Editor, FileMeta};
use crate::{FsHead, MARKER, MARKER_CONTENT, PathTable, PixelFs, TABLE_FILE};

/// Migrates the store (the caller holds the lock; there is no `HEAD` and no snapshot).
pub(crate) fn migrate(fs: &PixelFs) -> Result<FsHead> {
    let path = fs.root.join(TABLE_FILE);
    let bytes = fs::read(&path).map_err(|err| Error::from(err).with_path(&path))?;
    let table = PathTable::decode(&bytes).map_err(|err| {
        Error::Format(format!(
            "this PixelFS was written by pxOS 0.1 and its path table cannot be read, so it cannot be upgraded: {err}"
        ))
        .with_path(&path)
    })?;
    let mut editor = Editor::empty(&fs.store);
    let mut paths = Vec::with_capacity(table.len());
    for entry in table.entries() {
        editor.put(&entry.path, FileMeta::of(entry)?)?;
        paths.push(entry.path.clone());
    }
    let mut pack: BTreeMap<Hash256, (Kind, Vec<u8>)> = BTreeMap::new();
    let written = editor.commit(&mut |bytes| {
        let sha = Hash256::of(&bytes);
        pack.insert(sha, (Kind::Table, bytes));
        Ok(sha)
    })?;
    fs.store.write_pack(&pack)?;
    let head = fs.record_and_point(
        &FsHead::before_first(),
        true,
        written,
        &format!("migrate from path table generation {}", table.generation),
        &paths,
    )?;
    finish(fs)?;
    Ok(head)
}

/// The last step, once `HEAD` exists: keeps the old table under `legacy/`
/// and marks the store as version 2.
pub(crate) fn finish(fs: &PixelFs) -> Result<()> {
    let old = fs.root.join(TABLE_FILE);
    if old.is_file() {
        let legacy = fs.root.join("legacy");
        fs::create_dir_all(&legacy).map_err(|err| Error::from(err).with_path(&legacy))?;
        let mut target = legacy.join("paths-v1.png");
        let mut n = 1;
        while target.exists() {
            n += 1;
            target = legacy.join(format!("paths-v1.{n}.png"));
        }
        fs::rename(&old, &target).map_err(|err| Error::from(err).with_path(&old))?;
        durable::sync_dir(&legacy).map_err(|err| Error::from(err).with_path(&legacy))?;
        durable::sync_dir(&fs.root).map_err(|err| Error::from(err).with_path(&fs.root))?;
    }
    let marker = fs.root.join(MARKER);
    if fs::read_to_string(&marker).ok().as_deref() != Some(MARKER_CONTENT) {
        durable::write_atomic(&marker, MARKER_CONTENT.as_bytes(), durable::label::MARKER)
            .map_err(|err| Error::from(err).with_path(&marker))?;
    }
    Ok(())
}
