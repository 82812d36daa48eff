//! Cartridges: a whole world (kernels, programs, boot sequence, messages,
//! models, docs) in one PXI image of kind `archive`, extension `.pxa`.
//!
//! The PXI payload is `"PXA1"`, the manifest length (u32, little-endian), the
//! manifest (UTF-8 JSON), then every file's bytes concatenated in manifest
//! order. See `docs/formats/pxa.md`. Packing is deterministic: the same tree
//! and source manifest give the same bytes. Unpacking checks everything before
//! and while it writes, into a fresh staging directory that is renamed into
//! place only when every file verified.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Kind, PixelReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The source manifest file in a directory to pack.
pub const SOURCE_MANIFEST: &str = "cartridge.json";
/// The magic at the start of the payload.
pub const PAYLOAD_MAGIC: [u8; 4] = *b"PXA1";
/// The manifest `format` value.
pub const MANIFEST_FORMAT: &str = "pxos-cartridge";

/// Who made a cartridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatorKind {
    Human,
    Llm,
}

/// The creator: kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Creator {
    pub kind: CreatorKind,
    pub name: String,
}

/// What an author writes in `cartridge.json` next to the files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub parent: Option<String>,
    pub creator: Creator,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    #[serde(default = "default_genesis")]
    pub genesis_version: String,
}

fn default_genesis() -> String {
    "1.0".into()
}

/// One file in a cartridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Byte offset in the data area.
    pub offset: u64,
}

/// The manifest stored in a cartridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub parent: Option<String>,
    pub creator: Creator,
    pub created: String,
    pub notes: String,
    pub reason: String,
    pub capabilities: Vec<String>,
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub genesis_version: String,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// `name@version`, the cartridge's id in the registry and in `parent`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Total bytes of file data.
    pub fn data_len(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Bounds for untrusted cartridges.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_manifest_bytes: u32,
    pub max_path_len: usize,
    /// The limits for decoding the `.pxa` itself.
    pub pixel: pxos_pixel::Limits,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_files: 100_000,
            max_file_bytes: 8 << 30,
            max_total_bytes: 32 << 30,
            max_manifest_bytes: 64 << 20,
            max_path_len: 512,
            pixel: pxos_pixel::Limits::default(),
        }
    }
}

/// The longest version string accepted.
pub const MAX_VERSION_LEN: usize = 64;

/// Checks a semantic version, strictly: `MAJOR.MINOR.PATCH`, then optionally
/// `-PRE` and `+BUILD`, each dot-separated identifiers of `[0-9A-Za-z-]`
/// (numeric pre-release identifiers without leading zeros), at most
/// [`MAX_VERSION_LEN`] bytes in all. Nothing else: a version becomes part of
/// file names (`NAME-VERSION.pxa`) and is printed to terminals.
pub fn check_semver(version: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::Usage(format!(
            "version '{}' is not semver (MAJOR.MINOR.PATCH[-PRE][+BUILD]): {why}",
            pxos_pixel::text::escape_short(version)
        )))
    };
    if version.len() > MAX_VERSION_LEN {
        return refuse(&format!("longer than {MAX_VERSION_LEN} bytes"));
    }
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty()
            && p.len() <= 9
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() == 1 || !p.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return refuse("the core must be three numbers without leading zeros");
    }
    let identifiers_ok = |text: &str, pre: bool| {
        text.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(pre
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && id.len() > 1
                    && id.starts_with('0'))
        })
    };
    if let Some(pre) = pre
        && !identifiers_ok(pre, true)
    {
        return refuse("the pre-release part allows only dot-separated 0-9, A-Z, a-z and -");
    }
    if let Some(build) = build
        && !identifiers_ok(build, false)
    {
        return refuse("the build part allows only dot-separated 0-9, A-Z, a-z and -");
    }
    Ok(())
}

/// Checks a cartridge name: 1-64 of `[a-z0-9-_]`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(Error::Usage(format!(
            "cartridge name '{}' must be 1-64 of a-z, 0-9, - and _",
            pxos_pixel::text::escape_short(name)
        )));
    }
    Ok(())
}

/// The longest path component accepted (`NAME_MAX` on common file systems).
pub const MAX_COMPONENT_LEN: usize = 255;

/// Checks a path inside a cartridge: relative, `/`-separated, no empty, `.`
/// or `..` components, no backslashes, NULs or control characters.
pub fn check_entry_path(path: &str, limits: &Limits) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Format(format!(
            "unsafe path '{}' in cartridge: {why}",
            path.escape_debug()
        )))
    };
    if path.is_empty() || path.len() > limits.max_path_len {
        return bad("empty or too long");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return bad("absolute paths, backslashes and drive letters are not allowed");
    }
    if path.chars().any(char::is_control) {
        return bad("control characters are not allowed");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("empty component"),
            "." | ".." => return bad("'.' and '..' are not allowed"),
            long if long.len() > MAX_COMPONENT_LEN => {
                return bad(&format!(
                    "a component of {} bytes (at most {MAX_COMPONENT_LEN}, the file systems' limit)",
                    long.len()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Validates a decoded manifest against the payload it came with.
pub fn check_manifest(manifest: &Manifest, data_len: u64, limits: &Limits) -> Result<()> {
    if manifest.format != MANIFEST_FORMAT || manifest.format_version != 1 {
        return Err(Error::Format(format!(
            "manifest format '{}' version {} is not supported",
            manifest.format, manifest.format_version
        )));
    }
    check_name(&manifest.name).map_err(|err| Error::Format(err.to_string()))?;
    check_semver(&manifest.version).map_err(|err| Error::Format(err.to_string()))?;
    if manifest.files.len() > limits.max_files {
        return Err(Error::LimitExceeded(format!(
            "{} files, at most {} allowed",
            manifest.files.len(),
            limits.max_files
        )));
    }
    let mut seen = BTreeSet::new();
    let mut expected_offset = 0u64;
    let mut previous: Option<&str> = None;
    for file in &manifest.files {
        check_entry_path(&file.path, limits)?;
        if let Some(previous) = previous
            && previous.as_bytes() > file.path.as_bytes()
        {
            return Err(Error::Format(format!(
                "the manifest is not sorted by path: '{}' comes after '{previous}'",
                file.path
            )));
        }
        previous = Some(&file.path);
        if file.path == SOURCE_MANIFEST {
            return Err(Error::Format(format!(
                "'{SOURCE_MANIFEST}' is reserved for the manifest"
            )));
        }
        if !seen.insert(file.path.as_str()) {
            return Err(Error::Format(format!(
                "cartridge lists '{}' twice",
                file.path
            )));
        }
        if file.size > limits.max_file_bytes {
            return Err(Error::LimitExceeded(format!(
                "'{}' declares {} bytes",
                file.path, file.size
            )));
        }
        if pxos_fs::parse_sha(&file.sha256).is_none() {
            return Err(Error::Format(format!(
                "'{}' has a malformed sha256",
                file.path
            )));
        }
        if file.offset != expected_offset {
            return Err(Error::Format(format!(
                "'{}' has offset {}, expected {expected_offset}",
                file.path, file.offset
            )));
        }
        expected_offset = expected_offset
            .checked_add(file.size)
            .filter(|total| *total <= limits.max_total_bytes)
            .ok_or_else(|| {
                Error::LimitExceeded("declared file sizes exceed the total limit".into())
            })?;
    }
    // A file may not also be a directory of another file.
    for path in &seen {
        let mut prefix = *path;
        while let Some(cut) = prefix.rfind('/') {
            prefix = &prefix[..cut];
            if seen.contains(prefix) {
                return Err(Error::Format(format!(
                    "'{prefix}' is both a file and a directory in the cartridge"
                )));
            }
        }
    }
    if expected_offset != data_len {
        return Err(Error::Format(format!(
            "files declare {expected_offset} bytes but the cartridge holds {data_len}"
        )));
    }
    Ok(())
}

/// What `pack` produced.
#[derive(Clone, Debug)]
pub struct Packed {
    pub manifest: Manifest,
    /// SHA-256 of the payload: the cartridge's identity.
    pub sha256: [u8; 32],
    pub file_len: u64,
}

/// A file found in a directory to pack.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Its path inside the cartridge.
    pub path: String,
    /// Where it is on the host.
    pub host: PathBuf,
    pub size: u64,
}

/// Reads the source manifest and lists the files of `dir` (sorted, no links).
pub fn scan(dir: &Path, limits: &Limits) -> Result<(SourceManifest, Vec<SourceFile>)> {
    let source_path = dir.join(SOURCE_MANIFEST);
    let text = pxos_pixel::text::read_input_text(&source_path).map_err(|err| match err.root() {
        pxos_pixel::Error::Io(io) => Error::Usage(format!(
            "{}: cannot read the cartridge manifest ({io}); a cartridge directory needs one",
            source_path.display()
        )),
        _ => Error::Pixel(err),
    })?;
    let source: SourceManifest = serde_json::from_str(&text)
        .map_err(|err| Error::Format(format!("{}: {err}", source_path.display())))?;
    let invalid = |err: Error| Error::Format(format!("{}: {err}", source_path.display()));
    check_name(&source.name).map_err(invalid)?;
    check_semver(&source.version).map_err(invalid)?;
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((current, relative)) = stack.pop() {
        for entry in
            std::fs::read_dir(&current).map_err(|err| Error::from(err).with_path(&current))?
        {
            let entry = entry?;
            let name = entry
                .file_name()
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: file names must be UTF-8",
                        entry.path().display()
                    ))
                })?;
            let path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                return Err(Error::Usage(format!(
                    "{}: links cannot go into a cartridge",
                    entry.path().display()
                )));
            } else if kind.is_dir() {
                stack.push((entry.path(), path));
            } else if kind.is_file() {
                if path == SOURCE_MANIFEST {
                    continue;
                }
                check_entry_path(&path, limits).map_err(|err| Error::Usage(err.to_string()))?;
                files.push(SourceFile {
                    path,
                    host: entry.path(),
                    size: entry.metadata()?.len(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if files.len() > limits.max_files {
        return Err(Error::LimitExceeded(format!(
            "{} files, at most {}",
            files.len(),
            limits.max_files
        )));
    }
    Ok((source, files))
}

/// Packs directory `dir` (with its `cartridge.json`) into the cartridge `out`.
pub fn pack(dir: &Path, out: &Path, limits: &Limits) -> Result<Packed> {
    let (source, files) = scan(dir, limits)?;
    let mut entries = Vec::with_capacity(files.len());
    let mut offset = 0u64;
    let mut newest = 0u64;
    // Hash the files on two threads (both cores), keeping manifest order.
    let hashes: Vec<Result<[u8; 32]>> = std::thread::scope(|scope| {
        let half = files.len().div_ceil(2);
        let (first, second) = files.split_at(half);
        let worker = scope.spawn(move || {
            second
                .iter()
                .map(|f| Ok(pxos_pixel::sha256_file(&f.host)?))
                .collect::<Vec<_>>()
        });
        let mut hashes: Vec<Result<[u8; 32]>> = first
            .iter()
            .map(|f| Ok(pxos_pixel::sha256_file(&f.host)?))
            .collect();
        hashes.extend(
            worker
                .join()
                .unwrap_or_else(|_| vec![Err(Error::Usage("hash thread panicked".into()))]),
        );
        hashes
    });
    for (file, sha) in files.iter().zip(hashes) {
        let sha = sha?;
        entries.push(FileEntry {
            path: file.path.clone(),
            size: file.size,
            sha256: pxos_pixel::hex(&sha),
            offset,
        });
        offset += file.size;
        let modified = std::fs::metadata(&file.host)?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        newest = newest.max(modified);
    }
    let created = match source.created.clone() {
        Some(created) => created,
        None => match std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(epoch) => pxos_fs::time::rfc3339(epoch),
            None => pxos_fs::time::rfc3339(newest as i64),
        },
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        format_version: 1,
        name: source.name,
        version: source.version,
        parent: source.parent,
        creator: source.creator,
        created,
        notes: source.notes,
        reason: source.reason,
        capabilities: source.capabilities,
        metrics: source.metrics,
        genesis_version: source.genesis_version,
        files: entries,
    };
    let manifest_json =
        serde_json::to_vec(&manifest).map_err(|err| Error::Usage(err.to_string()))?;
    let mut head = Vec::with_capacity(8 + manifest_json.len());
    head.extend_from_slice(&PAYLOAD_MAGIC);
    head.extend_from_slice(&(manifest_json.len() as u32).to_le_bytes());
    head.extend_from_slice(&manifest_json);
    let payload_len = head.len() as u64 + offset;
    let chain = |head: &Vec<u8>| ChainReader {
        head: std::io::Cursor::new(head.clone()),
        files: files.iter().map(|f| (f.host.clone(), f.size)).collect(),
        current: None,
        next: 0,
    };
    let options = EncodeOptions::kind(Kind::Archive);
    let mut output =
        pxos_pixel::durable::AtomicFile::create(out, pxos_pixel::durable::label::CART_PACK)
            .map_err(|err| Error::from(err).with_path(out))?;
    let encoded = std::thread::scope(|scope| -> Result<pxos_pixel::Encoded> {
        // The payload hash runs on a second thread over a second read of the sources.
        let mut hash_reader = chain(&head);
        let hasher = scope.spawn(move || -> std::io::Result<[u8; 32]> {
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let read = hash_reader.read(&mut buffer)?;
                if read == 0 {
                    return Ok(hasher.finalize().into());
                }
                hasher.update(&buffer[..read]);
            }
        });
        let sha: pxos_pixel::ShaSource<'_> = Box::new(move || match hasher.join() {
            Ok(Ok(sha)) => Ok(sha),
            Ok(Err(err)) => Err(pxos_pixel::Error::Io(err)),
            Err(_) => Err(pxos_pixel::Error::Usage("hash thread panicked".into())),
        });
        let mut writer = BufWriter::with_capacity(1 << 20, output.file());
        let encoded = pxos_pixel::encode(
            chain(&head),
            payload_len,
            Some(sha),
            &mut writer,
            &options,
            &mut |_| {},
        )?;
        writer.flush()?;
        Ok(encoded)
    })?;
    output.after_write();
    output
        .commit()
        .map_err(|err| Error::from(err).with_path(out))?;
    Ok(Packed {
        manifest,
        sha256: encoded.header.sha256,
        file_len: encoded.file_len,
    })
}

/// Reads the head, then each file exactly at its declared size.
struct ChainReader {
    head: std::io::Cursor<Vec<u8>>,
    files: Vec<(PathBuf, u64)>,
    current: Option<std::io::Take<BufReader<File>>>,
    next: usize,
}

impl Read for ChainReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.head.read(buf)?;
        if read > 0 {
            return Ok(read);
        }
        loop {
            if let Some(current) = self.current.as_mut() {
                let read = current.read(buf)?;
                if read > 0 || buf.is_empty() {
                    return Ok(read);
                }
                if current.limit() > 0 {
                    return Err(std::io::Error::other(
                        "a file shrank while it was being packed",
                    ));
                }
                self.current = None;
            }
            let Some((path, size)) = self.files.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            self.current = Some(BufReader::with_capacity(1 << 20, File::open(path)?).take(*size));
        }
    }
}

/// Reads only the manifest of a cartridge (random access: no full decode).
pub fn read_manifest(path: &Path, limits: &Limits) -> Result<(Manifest, [u8; 32])> {
    let with = |err: Error| err.with_path(path);
    let mut reader = PixelReader::open(path, &limits.pixel)?;
    if reader.header().kind != Kind::Archive {
        return Err(with(Error::Format(format!(
            "this pixel file is a {}, not a cartridge",
            reader.header().kind.name()
        ))));
    }
    let payload_len = reader.header().payload_len;
    if payload_len < 8 {
        return Err(with(Error::Format("cartridge payload is too short".into())));
    }
    let head = reader.read_at(0, 8)?;
    let manifest_len = check_head(&head, payload_len, limits).map_err(with)?;
    let json = reader.read_at(8, manifest_len as usize)?;
    let manifest = parse_manifest(&json).map_err(with)?;
    check_manifest(&manifest, payload_len - 8 - u64::from(manifest_len), limits).map_err(with)?;
    Ok((manifest, reader.header().sha256))
}

fn check_head(head: &[u8], payload_len: u64, limits: &Limits) -> Result<u32> {
    if head[0..4] != PAYLOAD_MAGIC {
        return Err(Error::Format(
            "not a cartridge (no PXA1 magic in the payload)".into(),
        ));
    }
    let manifest_len = u32::from_le_bytes(head[4..8].try_into().unwrap());
    if manifest_len > limits.max_manifest_bytes || u64::from(manifest_len) > payload_len - 8 {
        return Err(Error::LimitExceeded(format!(
            "manifest of {manifest_len} bytes"
        )));
    }
    Ok(manifest_len)
}

fn parse_manifest(json: &[u8]) -> Result<Manifest> {
    serde_json::from_slice(json)
        .map_err(|err| Error::Format(format!("cartridge manifest is invalid: {err}")))
}

/// Unpacks `cartridge` into `target`, which must not exist yet. Files go to a
/// staging directory first; `target` appears only when every file verified.
pub fn unpack(cartridge: &Path, target: &Path, limits: &Limits) -> Result<Manifest> {
    // Anything at `target` refuses, a dangling symlink included (a rename onto
    // it would fail only at the end, or follow it).
    if std::fs::symlink_metadata(target).is_ok() {
        return Err(Error::Usage(format!(
            "{} already exists; unpack into a new directory",
            target.display()
        )));
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::Usage(format!(
            "the folder {} does not exist; create it first (unpack makes only the target)",
            parent.display()
        )));
    }
    let staging_path = parent.join(format!(
        "{}{}-{}",
        pxos_pixel::durable::TEMP_PREFIX,
        std::process::id(),
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let (staging, ()) =
        pxos_pixel::durable::Temporary::create(staging_path, |path| std::fs::create_dir(path))
            .map_err(|err| Error::Io(err).with_path(parent))?;
    let staging_dir = staging.path().to_path_buf();
    let staging_dir = staging_dir.as_path();
    let result = (|| {
        let input = pxos_pixel::open_nonempty(cartridge)?;
        let mut sink = UnpackSink::new(staging_dir, *limits);
        let decoded = pxos_pixel::decode(
            BufReader::with_capacity(1 << 20, input),
            &mut sink,
            &limits.pixel,
            &mut |_| {},
        );
        let decoded = match decoded {
            Ok(decoded) => decoded,
            // A sink error carries the real reason.
            Err(err) => return Err(sink.error.take().unwrap_or(Error::Pixel(err))),
        };
        if decoded.header.kind != Kind::Archive {
            return Err(Error::Format("this pixel file is not a cartridge".into()));
        }
        sink.finish()
    })()
    .map_err(|err| err.with_path(cartridge));
    // Write the source manifest back, so an unpacked world can be edited and packed again.
    let result = result.and_then(|manifest| {
        let source = serde_json::json!({
            "name": manifest.name, "version": manifest.version, "parent": manifest.parent,
            "creator": manifest.creator, "created": manifest.created, "notes": manifest.notes,
            "reason": manifest.reason, "capabilities": manifest.capabilities, "metrics": manifest.metrics,
            "genesis_version": manifest.genesis_version,
        });
        let text = serde_json::to_string_pretty(&source).map_err(|err| Error::Usage(err.to_string()))?;
        std::fs::write(staging_dir.join(SOURCE_MANIFEST), text + "\n")?;
        Ok(manifest)
    });
    // On any error `staging` is dropped here, which removes it with its files.
    let manifest = result?;
    staging
        .persist(target)
        .map_err(|err| Error::Io(err).with_path(target))?;
    Ok(manifest)
}

/// Receives the decoded payload and writes files as their bytes arrive.
struct UnpackSink {
    root: PathBuf,
    limits: Limits,
    head: Vec<u8>,
    manifest_len: Option<u32>,
    manifest: Option<Manifest>,
    index: usize,
    written: u64,
    current: Option<(BufWriter<File>, Sha256)>,
    error: Option<Error>,
}

impl UnpackSink {
    fn new(root: &Path, limits: Limits) -> UnpackSink {
        UnpackSink {
            root: root.to_path_buf(),
            limits,
            head: Vec::new(),
            manifest_len: None,
            manifest: None,
            index: 0,
            written: 0,
            current: None,
            error: None,
        }
    }

    fn fail<T>(&mut self, err: Error) -> std::io::Result<T> {
        let message = err.to_string();
        self.error = Some(err);
        Err(std::io::Error::other(message))
    }

    fn finish(mut self) -> Result<Manifest> {
        let Some(manifest) = self.manifest.take() else {
            return Err(Error::Format(
                "the cartridge ended before its manifest".into(),
            ));
        };
        // Zero-length files at the end, and the last file.
        self.advance(&manifest)?;
        if self.index != manifest.files.len() {
            return Err(Error::Format(
                "the cartridge ended before all its files".into(),
            ));
        }
        Ok(manifest)
    }

    /// Closes finished files and opens the next ones (zero-length ones are created at once).
    fn advance(&mut self, manifest: &Manifest) -> Result<()> {
        loop {
            if let Some((writer, hasher)) = self.current.as_mut() {
                let entry = &manifest.files[self.index];
                if self.written < entry.size {
                    return Ok(());
                }
                writer.flush()?;
                let digest: [u8; 32] = std::mem::take(hasher).finalize().into();
                let actual = pxos_pixel::hex(&digest);
                if actual != entry.sha256 {
                    return Err(Error::Format(format!(
                        "'{}' does not match its sha256 in the manifest",
                        entry.path
                    )));
                }
                self.current = None;
                self.index += 1;
                self.written = 0;
            }
            let Some(entry) = manifest.files.get(self.index) else {
                return Ok(());
            };
            let path = self.root.join(&entry.path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            self.current = Some((BufWriter::with_capacity(1 << 20, file), Sha256::new()));
        }
    }
}

impl Write for UnpackSink {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let total = buf.len();
        if self.manifest.is_none() {
            let needed = 8 + self.manifest_len.map_or(0, |len| len as usize);
            let take = needed.saturating_sub(self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.manifest_len.is_none() && self.head.len() >= 8 {
                match check_head(&self.head[..8], u64::MAX, &self.limits) {
                    Ok(len) => self.manifest_len = Some(len),
                    Err(err) => return self.fail(err),
                }
                return self.write(buf).map(|_| total);
            }
            if let Some(len) = self.manifest_len
                && self.head.len() == 8 + len as usize
            {
                let manifest = match parse_manifest(&self.head[8..]) {
                    Ok(manifest) => manifest,
                    Err(err) => return self.fail(err),
                };
                // The data length is checked against the file sizes at the end.
                let declared = manifest.data_len();
                if let Err(err) = check_manifest(&manifest, declared, &self.limits) {
                    return self.fail(err);
                }
                if let Err(err) = pxos_pixel::durable::check_free_space(&self.root, declared) {
                    return self.fail(Error::Pixel(err));
                }
                self.manifest = Some(manifest);
                let manifest = self.manifest.take().expect("just set");
                let advanced = self.advance(&manifest);
                self.manifest = Some(manifest);
                if let Err(err) = advanced {
                    return self.fail(err);
                }
            }
        }
        while !buf.is_empty() {
            let manifest = self.manifest.take().expect("manifest parsed before data");
            let Some(entry) = manifest.files.get(self.index) else {
                self.manifest = Some(manifest);
                return self.fail(Error::Format(
                    "the cartridge holds more data than its files declare".into(),
                ));
            };
            let take = ((entry.size - self.written) as usize).min(buf.len());
            let (writer, hasher) = self
                .current
                .as_mut()
                .expect("a file is open while data remains");
            if let Err(err) = writer.write_all(&buf[..take]) {
                self.manifest = Some(manifest);
                return self.fail(Error::Io(err));
            }
            hasher.update(&buf[..take]);
            self.written += take as u64;
            buf = &buf[take..];
            let advanced = self.advance(&manifest);
            self.manifest = Some(manifest);
            if let Err(err) = advanced {
                return self.fail(err);
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
