//! Syscall storage: PixelFS for FILE_READ/FILE_WRITE by path, and modules
//! (BLOB/SELF_MODIFY) by registered id, by PixelFS `file_id`, or by the
//! file id of a program image in the booting cartridge's `modules/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pxos_fs::{AddOptions, PixelFs};
use pxos_pixel::Kind;
use pxos_vm::{ProgramImage, Storage, StorageError, StorageErrorKind};

/// Largest module accepted (program image file bytes).
const MAX_MODULE_FILE: u64 = 64 << 20;

fn fs_error(err: pxos_fs::Error) -> StorageError {
    let kind = if err.is_not_found() {
        StorageErrorKind::NotFound
    } else if err.is_bad_input() {
        StorageErrorKind::Invalid
    } else {
        match err.kind() {
            pxos_pixel::ErrorKind::Usage => StorageErrorKind::Invalid,
            _ => StorageErrorKind::Io,
        }
    };
    StorageError::new(kind, err.to_string())
}

/// PixelFS as syscall storage.
pub struct FsStorage {
    fs: PixelFs,
    /// Small numeric ids (like the seeds' 301) mapped to PixelFS paths.
    pub registered: BTreeMap<u32, String>,
    /// Paths FILE_WRITE may write under; `None` allows all.
    pub writable_prefix: Option<String>,
    /// Refuses every write (the boot's stages and the shell read PixelFS only).
    pub read_only: bool,
    scratch: PathBuf,
}

impl FsStorage {
    /// Storage over `fs`; `scratch` is a host directory for staging writes.
    pub fn new(fs: PixelFs, scratch: PathBuf) -> FsStorage {
        FsStorage {
            fs,
            registered: BTreeMap::new(),
            writable_prefix: None,
            read_only: false,
            scratch,
        }
    }

    /// Storage that reads `fs` and refuses every write.
    pub fn read_only(fs: PixelFs, scratch: PathBuf) -> FsStorage {
        FsStorage {
            read_only: true,
            ..FsStorage::new(fs, scratch)
        }
    }

    fn entry_for_module(&self, id: u32) -> Result<pxos_fs::Entry, StorageError> {
        if let Some(path) = self.registered.get(&id) {
            return self.fs.get(path).map_err(fs_error);
        }
        let matches = self
            .fs
            .resolve(&pxos_fs::format_file_id(id))
            .map_err(fs_error)?;
        match matches.as_slice() {
            [entry] => Ok(entry.clone()),
            [] => Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("no module with file id {}", pxos_fs::format_file_id(id)),
            )),
            _ => Err(StorageError::new(
                StorageErrorKind::Invalid,
                format!("file id {} is ambiguous", pxos_fs::format_file_id(id)),
            )),
        }
    }
}

impl Storage for FsStorage {
    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        match self.fs.dir_names(path, None).map_err(fs_error)? {
            Some(children) => Ok(children
                .into_iter()
                .map(|(name, dir)| if dir { format!("{name}/") } else { name })
                .collect()),
            None => Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("no directory {path} in PixelFS"),
            )),
        }
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError> {
        let entry = self.fs.get(path).map_err(fs_error)?;
        if entry.size > u64::from(pxos_vm::MAX_FILE_BYTES) {
            return Err(StorageError::new(
                StorageErrorKind::TooLarge,
                format!("{path} is larger than {} bytes", pxos_vm::MAX_FILE_BYTES),
            ));
        }
        let mut bytes = Vec::new();
        self.fs.read_to(&entry, &mut bytes).map_err(fs_error)?;
        Ok(bytes)
    }

    fn check_write(&self, path: &str) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::new(
                StorageErrorKind::Denied,
                format!("PixelFS is mounted read-only here; {path} was not written"),
            ));
        }
        Ok(())
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.check_write(path)?;
        pxos_fs::check_path(path)
            .map_err(|err| StorageError::new(StorageErrorKind::Invalid, err.to_string()))?;
        if let Some(prefix) = &self.writable_prefix
            && !path.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
        {
            return Err(StorageError::new(
                StorageErrorKind::Denied,
                format!("writes are confined to {prefix}"),
            ));
        }
        let io = |err: std::io::Error| StorageError::new(StorageErrorKind::Io, err.to_string());
        std::fs::create_dir_all(&self.scratch).map_err(io)?;
        // A temporary: removed after the add, on error, and on a signal.
        let (staged, ()) = pxos_pixel::durable::Temporary::create(
            self.scratch.join(format!(
                "{}write-{}",
                pxos_pixel::durable::TEMP_PREFIX,
                std::process::id()
            )),
            |path| std::fs::write(path, bytes),
        )
        .map_err(io)?;
        let options = AddOptions {
            kind: Some(Kind::Blob),
            description: Some("written by a program".into()),
            replace: true,
        };
        let result = self
            .fs
            .add_file(path, staged.path(), &options)
            .map(|_| ())
            .map_err(fs_error);
        drop(staged);
        result
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError> {
        // A module is a program image file stored in PixelFS.
        let entry = self.entry_for_module(id)?;
        if entry.size > MAX_MODULE_FILE {
            return Err(StorageError::new(
                StorageErrorKind::TooLarge,
                format!("{} is too large to be a module", entry.path),
            ));
        }
        let mut png = Vec::new();
        self.fs.read_to(&entry, &mut png).map_err(fs_error)?;
        let image = ProgramImage::from_png(&png).map_err(|err| {
            StorageError::new(StorageErrorKind::Invalid, format!("{}: {err}", entry.path))
        })?;
        Ok(image.words)
    }
}

/// Storage for a boot: modules from the cartridge's own `modules/`
/// directory (by the file id of each program image), then `inner`.
pub struct CartridgeStorage {
    root: PathBuf,
    inner: Box<dyn Storage>,
}

impl CartridgeStorage {
    pub fn new(root: PathBuf, inner: Box<dyn Storage>) -> CartridgeStorage {
        CartridgeStorage { root, inner }
    }

    fn cartridge_module(&self, id: u32) -> Result<Option<Vec<u32>>, StorageError> {
        let Ok(dir) = std::fs::read_dir(self.root.join("modules")) else {
            return Ok(None);
        };
        let mut paths: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let reader = std::io::BufReader::new(file);
            let Ok((header, _)) = pxos_pixel::read_header(reader, &pxos_pixel::Limits::default())
            else {
                continue;
            };
            if pxos_pixel::file_id(&header.sha256) != id {
                continue;
            }
            let size = std::fs::metadata(&path).map_or(u64::MAX, |m| m.len());
            if size > MAX_MODULE_FILE {
                return Err(StorageError::new(
                    StorageErrorKind::TooLarge,
                    format!("{} is too large to be a module", path.display()),
                ));
            }
            let bytes = std::fs::read(&path)
                .map_err(|err| StorageError::new(StorageErrorKind::Io, err.to_string()))?;
            let image = ProgramImage::from_png(&bytes).map_err(|err| {
                StorageError::new(
                    StorageErrorKind::Invalid,
                    format!("{}: {err}", path.display()),
                )
            })?;
            return Ok(Some(image.words));
        }
        Ok(None)
    }
}

impl Storage for CartridgeStorage {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.read_file(path)
    }

    fn check_write(&self, path: &str) -> Result<(), StorageError> {
        self.inner.check_write(path)
    }

    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list_dir(path)
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.inner.write_file(path, bytes)
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError> {
        match self.cartridge_module(id)? {
            Some(words) => Ok(words),
            None => self.inner.module(id),
        }
    }
}

/// The storage of a home that has no PixelFS yet: an empty root, no files,
/// and writes refused (a write that went nowhere must not report success).
pub struct NoPixelFs;

impl Storage for NoPixelFs {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::NotFound,
            format!("no {path}: this home has no PixelFS yet (`pxos fs init`)"),
        ))
    }

    fn check_write(&self, path: &str) -> Result<(), StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Denied,
            format!("this home has no PixelFS yet (`pxos fs init`); {path} was not written"),
        ))
    }

    fn write_file(&mut self, path: &str, _bytes: &[u8]) -> Result<(), StorageError> {
        self.check_write(path)
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::NotFound,
            format!("no module with id {id}: this home has no PixelFS yet"),
        ))
    }

    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        if path == "/" {
            Ok(Vec::new())
        } else {
            Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("no directory {path}: this home has no PixelFS yet"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_storage_refuses_every_path_and_writes_nothing() {
        let dir = pxos_test_support::TempDir::new("read-only-storage");
        let fs = PixelFs::init(&dir.join("fs")).unwrap();
        let mut storage = FsStorage::read_only(fs.clone(), dir.join("tmp"));
        // The folder names the boot and the shell once used as an "unwritable"
        // prefix are no side door.
        for path in [
            "/x",
            "/.read-only-at-boot/x",
            "/.read-only-in-the-shell/x",
            "/sandbox/a/x",
        ] {
            let err = storage.write_file(path, b"data").unwrap_err();
            assert_eq!(err.kind, StorageErrorKind::Denied, "{path}");
            assert_eq!(
                storage.check_write(path).unwrap_err().kind,
                StorageErrorKind::Denied
            );
        }
        assert!(
            fs.dir_names("/", None)
                .unwrap()
                .unwrap_or_default()
                .is_empty()
        );
        let mut none = NoPixelFs;
        assert_eq!(
            none.write_file("/x", b"d").unwrap_err().kind,
            StorageErrorKind::Denied
        );
        assert_eq!(none.list_dir("/").unwrap(), Vec::<String>::new());
        assert_eq!(
            none.read_file("/x").unwrap_err().kind,
            StorageErrorKind::NotFound
        );
    }
}
