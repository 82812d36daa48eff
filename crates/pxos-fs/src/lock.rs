//! The write lock: one writer at a time per store.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, Result};

/// Held while a process changes the store; released on drop (or process exit).
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Takes the lock at `path` without waiting.
    pub fn acquire(path: &Path) -> Result<WriteLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(WriteLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked(path.to_path_buf())),
            Err(TryLockError::Error(err)) => Err(Error::Io(err)),
        }
    }
}
