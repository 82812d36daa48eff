//! The path table: every PixelFS path with its type, description and object.
//!
//! Stored as a PXI of kind `table` whose payload is UTF-8 JSON (see
//! `docs/formats/pixelfs.md`). Decoding checks every field, so a damaged or
//! hostile table is refused with a message naming the problem.

use std::collections::BTreeMap;

use pxos_pixel::{Compression, EncodeOptions, Kind, Limits};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` field of every path table.
pub const TABLE_FORMAT: &str = "pxos-path-table";
/// The table version this crate reads and writes.
pub const TABLE_VERSION: u32 = 1;
/// Most entries a table may hold.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest description accepted, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// One path in PixelFS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Absolute path such as `/boot/00_kernel`.
    pub path: String,
    /// The PXI kind of the object (`blob`, `text`, `program`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// What this file is, for people and agents.
    pub description: String,
    /// Payload size in bytes.
    pub size: u64,
    /// SHA-256 of the payload, lower-case hex: the object's name.
    pub sha256: String,
    /// First four bytes of the SHA-256, as `0x` and eight hex digits.
    pub file_id: String,
    /// The same four bytes as an RGBA colour, `#rrggbbaa`.
    pub color: String,
    /// When the entry was created (RFC 3339, UTC).
    pub created: String,
}

impl Entry {
    /// Builds an entry for content with hash `sha256`.
    pub fn new(
        path: &str,
        kind: Kind,
        description: &str,
        size: u64,
        sha256: &[u8; 32],
        created: String,
    ) -> Entry {
        Entry {
            path: path.to_string(),
            kind: kind.name().to_string(),
            description: description.to_string(),
            size,
            sha256: pxos_pixel::hex(sha256),
            file_id: format_file_id(pxos_pixel::file_id(sha256)),
            color: format!("#{}", pxos_pixel::hex(&sha256[0..4])),
            created,
        }
    }

    /// The numeric file id.
    pub fn file_id_value(&self) -> u32 {
        u32::from_str_radix(&self.sha256[0..8], 16).unwrap_or(0)
    }

    /// The RGBA colour of this entry's boot pixel.
    pub fn rgba(&self) -> [u8; 4] {
        self.file_id_value().to_be_bytes()
    }

    fn check(&self) -> Result<()> {
        check_path(&self.path)?;
        let sha = parse_sha(&self.sha256).ok_or_else(|| {
            Error::Format(format!("entry {}: sha256 is not 64 hex digits", self.path))
        })?;
        self.kind.parse::<Kind>().map_err(|_| {
            Error::Format(format!("entry {}: unknown type '{}'", self.path, self.kind))
        })?;
        if self.file_id != format_file_id(pxos_pixel::file_id(&sha)) {
            return Err(Error::Format(format!(
                "entry {}: file_id does not match its sha256",
                self.path
            )));
        }
        if self.color != format!("#{}", pxos_pixel::hex(&sha[0..4])) {
            return Err(Error::Format(format!(
                "entry {}: color does not match its sha256",
                self.path
            )));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(Error::Format(format!(
                "entry {}: description is too long",
                self.path
            )));
        }
        Ok(())
    }
}

/// `0x` and eight lower-case hex digits.
pub fn format_file_id(file_id: u32) -> String {
    format!("0x{file_id:08x}")
}

/// Parses 64 hex digits.
pub fn parse_sha(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks a PixelFS path: absolute, `/`-separated, no empty, `.` or `..`
/// components, no control characters, no trailing slash.
pub fn check_path(path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "invalid PixelFS path '{}': {why}",
            path.escape_debug()
        )))
    };
    if !path.starts_with('/') {
        return bad("it must start with '/'");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("it is longer than 1024 bytes");
    }
    if path == "/" {
        return bad("the root cannot hold a file");
    }
    if path.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    for component in path[1..].split('/') {
        match component {
            "" => return bad("it has an empty component (// or a trailing /)"),
            "." | ".." => return bad("'.' and '..' are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// The decoded path table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathTable {
    /// Incremented on every write.
    pub generation: u64,
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    generation: u64,
    entries: Vec<Entry>,
}

impl PathTable {
    /// Every entry, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Entries under directory `dir` (`/` for all).
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let prefix = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        self.entries
            .values()
            .filter(move |entry| entry.path.starts_with(&prefix))
    }

    /// Inserts or replaces an entry. Refuses a path that is a directory of
    /// other entries, or that lies under a file.
    pub fn insert(&mut self, entry: Entry) -> Result<Option<Entry>> {
        entry.check()?;
        if self.under(&entry.path).next().is_some() {
            return Err(Error::Usage(format!(
                "{} is a directory in PixelFS",
                entry.path
            )));
        }
        let mut ancestor = entry.path.as_str();
        while let Some(cut) = ancestor.rfind('/') {
            ancestor = &ancestor[..cut];
            if !ancestor.is_empty() && self.entries.contains_key(ancestor) {
                return Err(Error::Usage(format!(
                    "{ancestor} is a file, so {} cannot be under it",
                    entry.path
                )));
            }
        }
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&entry.path) {
            return Err(Error::Usage(format!(
                "the path table is full ({MAX_ENTRIES} entries)"
            )));
        }
        Ok(self.entries.insert(entry.path.clone(), entry))
    }

    /// Inserts an entry read from a checked directory tree (which cannot
    /// hold a file under a file), without the checks of [`PathTable::insert`].
    pub(crate) fn insert_from_tree(&mut self, entry: Entry) {
        self.entries.insert(entry.path.clone(), entry);
    }

    /// Removes the entry at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        self.entries.remove(path)
    }

    /// Serializes the table as a PXI image of kind `table`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let document = Document {
            format: TABLE_FORMAT.into(),
            version: TABLE_VERSION,
            generation: self.generation,
            entries: self.entries.values().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&document)
            .map_err(|err| Error::Usage(format!("json: {err}")))?;
        let options = EncodeOptions {
            kind: Kind::Table,
            compression: Some(Compression::Best),
            ..EncodeOptions::default()
        };
        Ok(pxos_pixel::encode_to_vec(&json, &options)?)
    }

    /// Decodes and validates a path table image.
    pub fn decode(png_bytes: &[u8]) -> Result<PathTable> {
        let limits = Limits {
            max_in_memory: 512 << 20,
            ..Limits::default()
        };
        let (decoded, json) = pxos_pixel::decode_from_slice(png_bytes, &limits)?;
        if decoded.header.kind != Kind::Table {
            return Err(Error::Format(format!(
                "this pixel file is a {}, not a path table",
                decoded.header.kind.name()
            )));
        }
        let document: Document = serde_json::from_slice(&json)
            .map_err(|err| Error::Format(format!("path table JSON is invalid: {err}")))?;
        if document.format != TABLE_FORMAT || document.version != TABLE_VERSION {
            return Err(Error::Format(format!(
                "path table format '{}' version {} is not supported",
                document.format, document.version
            )));
        }
        if document.entries.len() > MAX_ENTRIES {
            return Err(Error::Format("path table has too many entries".into()));
        }
        let mut table = PathTable {
            generation: document.generation,
            entries: BTreeMap::new(),
        };
        for entry in document.entries {
            let path = entry.path.clone();
            if table.entries.contains_key(&path) {
                return Err(Error::Format(format!("path table lists {path} twice")));
            }
            table.insert(entry).map_err(|err| match err {
                Error::Usage(message) => {
                    Error::Format(format!("path table entry is invalid: {message}"))
                }
                other => other,
            })?;
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for good in ["/a", "/boot/00_kernel", "/with space/ü.txt"] {
            check_path(good).unwrap();
        }
        for bad in ["", "a", "/", "/a/", "//a", "/a/../b", "/./a", "/a\nb"] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn files_and_directories_do_not_overlap() {
        let mut table = PathTable::default();
        let sha = [1u8; 32];
        table
            .insert(Entry::new("/a/b", Kind::Blob, "", 1, &sha, String::new()))
            .unwrap();
        assert!(
            table
                .insert(Entry::new("/a", Kind::Blob, "", 1, &sha, String::new()))
                .is_err()
        );
        assert!(
            table
                .insert(Entry::new("/a/b/c", Kind::Blob, "", 1, &sha, String::new()))
                .is_err()
        );
        let round = PathTable::decode(&table.encode().unwrap()).unwrap();
        assert_eq!(round, table);
    }
}
