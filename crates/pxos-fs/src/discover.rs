//! Walking a host directory to add it to PixelFS.

use std::path::{Path, PathBuf};

use pxos_pixel::Kind;

use crate::error::{Error, Result};

/// Directory names `discover` skips unless told otherwise.
pub const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "__pycache__"];

/// Extensions read as text.
const TEXT_EXTENSIONS: &[&str] = &[
    "rs", "md", "toml", "txt", "json", "yaml", "yml", "py", "sh", "c", "h", "cpp", "js", "ts",
    "html", "css", "pxasm", "asm", "lock", "cfg", "ini", "csv", "xml", "svg",
];

/// A file found under the scanned directory.
#[derive(Clone, Debug)]
pub struct Found {
    /// The host file.
    pub source: PathBuf,
    /// Its path relative to the scanned directory, `/`-separated.
    pub relative: String,
}

/// Lists regular files under `dir`, sorted, skipping hidden entries (names
/// starting with `.`), [`SKIPPED_DIRS`] and symbolic links (never followed).
pub fn walk(dir: &Path, include_hidden: bool) -> Result<Vec<Found>> {
    let metadata = std::fs::metadata(dir).map_err(|err| Error::from(err).with_path(dir))?;
    if !metadata.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((current, relative)) = stack.pop() {
        let mut children: Vec<_> = std::fs::read_dir(&current)
            .map_err(|err| Error::from(err).with_path(&current))?
            .collect::<std::io::Result<_>>()
            .map_err(|err| Error::from(err).with_path(&current))?;
        children.sort_by_key(|child| child.file_name());
        for child in children {
            let Some(name) = child.file_name().to_str().map(str::to_string) else {
                continue; // Names that are not UTF-8 cannot be PixelFS paths.
            };
            if !include_hidden && name.starts_with('.') {
                continue;
            }
            let file_type = child
                .file_type()
                .map_err(|err| Error::from(err).with_path(child.path()))?;
            let child_relative = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            if file_type.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    stack.push((child.path(), child_relative));
                }
            } else if file_type.is_file() {
                found.push(Found {
                    source: child.path(),
                    relative: child_relative,
                });
            }
        }
    }
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(found)
}

/// Guesses the kind of a file from its extension and first bytes.
pub fn guess_kind(path: &Path) -> Kind {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if TEXT_EXTENSIONS.contains(&extension.as_str()) {
        return Kind::Text;
    }
    if extension == "pxa" {
        return Kind::Archive;
    }
    let mut head = [0u8; 4096];
    let read = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read(&mut file, &mut head))
        .unwrap_or(0);
    let head = &head[..read];
    // Text when the head is valid UTF-8 (allowing a character cut at the end) without NULs.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none(),
    };
    if read > 0 && valid && !head.contains(&0) {
        Kind::Text
    } else {
        Kind::Blob
    }
}
