//! Syscall storage backed by PixelFS: FILE_READ/FILE_WRITE by PixelFS path,
//! BLOB/SELF_MODIFY modules by registered id or by PixelFS `file_id`.

use std::collections::BTreeMap;

use pxos_fs::{AddOptions, PixelFs};
use pxos_pixel::Kind;
use pxos_vm::{ProgramImage, Storage};

/// PixelFS as syscall storage.
pub struct FsStorage {
    fs: PixelFs,
    /// Small numeric ids (like the seeds' 301) mapped to PixelFS paths.
    pub registered: BTreeMap<u32, String>,
    /// Paths FILE_WRITE may write under (the sandbox); `None` allows all.
    pub writable_prefix: Option<String>,
    scratch: std::path::PathBuf,
}

impl FsStorage {
    /// Storage over `fs`; `scratch` is a host directory for staging writes.
    pub fn new(fs: PixelFs, scratch: std::path::PathBuf) -> FsStorage {
        FsStorage {
            fs,
            registered: BTreeMap::new(),
            writable_prefix: None,
            scratch,
        }
    }

    fn entry_for_module(&self, id: u32) -> Result<pxos_fs::Entry, String> {
        if let Some(path) = self.registered.get(&id) {
            return self.fs.get(path).map_err(|err| err.to_string());
        }
        let matches = self
            .fs
            .resolve(&pxos_fs::format_file_id(id))
            .map_err(|err| err.to_string())?;
        match matches.as_slice() {
            [entry] => Ok(entry.clone()),
            [] => Err(format!(
                "no module with file id {}",
                pxos_fs::format_file_id(id)
            )),
            _ => Err(format!(
                "file id {} is ambiguous",
                pxos_fs::format_file_id(id)
            )),
        }
    }
}

impl Storage for FsStorage {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let entry = self.fs.get(path).map_err(|err| err.to_string())?;
        if entry.size > u64::from(pxos_vm::MAX_FILE_BYTES) {
            return Err(format!(
                "{path} is larger than {} bytes",
                pxos_vm::MAX_FILE_BYTES
            ));
        }
        let mut bytes = Vec::new();
        self.fs
            .read_to(&entry, &mut bytes)
            .map_err(|err| err.to_string())?;
        Ok(bytes)
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        pxos_fs::check_path(path).map_err(|err| err.to_string())?;
        if let Some(prefix) = &self.writable_prefix
            && !path.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
        {
            return Err(format!("writes are confined to {prefix}"));
        }
        std::fs::create_dir_all(&self.scratch).map_err(|err| err.to_string())?;
        let staged = self.scratch.join(format!("write-{}", std::process::id()));
        std::fs::write(&staged, bytes).map_err(|err| err.to_string())?;
        let options = AddOptions {
            kind: Some(Kind::Blob),
            description: Some("written by a program".into()),
            replace: true,
        };
        let result = self
            .fs
            .add_file(path, &staged, &options)
            .map(|_| ())
            .map_err(|err| err.to_string());
        let _ = std::fs::remove_file(&staged);
        result
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, String> {
        // A module is a program image file stored in PixelFS.
        let entry = self.entry_for_module(id)?;
        if entry.size > 64 << 20 {
            return Err(format!("{} is too large to be a module", entry.path));
        }
        let mut png = Vec::new();
        self.fs
            .read_to(&entry, &mut png)
            .map_err(|err| err.to_string())?;
        let image = ProgramImage::from_png(&png).map_err(|err| format!("{}: {err}", entry.path))?;
        Ok(image.words)
    }
}
