//! The write lock: one writer at a time per store. A writer that finds the
//! lock held waits for it, up to a bounded timeout (like package managers do),
//! and says what it is waiting for.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The default wait for a held lock: 60 s.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

static TIMEOUT_MS: AtomicU64 = AtomicU64::new(60_000);

/// Called once per wait, when a writer starts waiting for a held lock:
/// the lock's path and the pid written in it (if any).
pub type WaitNotice = fn(&Path, Option<u32>);

static NOTICE: Mutex<Option<WaitNotice>> = Mutex::new(None);

/// Sets how long writers in this process wait for a held lock
/// (`--lock-timeout`; zero: do not wait).
pub fn set_lock_timeout(timeout: Duration) {
    TIMEOUT_MS.store(
        timeout.as_millis().min(u128::from(u64::MAX)) as u64,
        Ordering::Relaxed,
    );
}

/// How long writers wait for a held lock now.
pub fn lock_timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// Sets what is told when a writer starts to wait (the CLI prints a line).
pub fn set_wait_notice(notice: WaitNotice) {
    *NOTICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(notice);
}

/// Held while a process changes the store; released on drop (or process exit).
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Takes the lock at `path`, waiting up to [`lock_timeout`] while another
    /// process holds it.
    pub fn acquire(path: &Path) -> Result<WriteLock> {
        Self::acquire_within(path, lock_timeout())
    }

    /// Takes the lock at `path`, waiting up to `timeout`.
    pub fn acquire_within(path: &Path, timeout: Duration) -> Result<WriteLock> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|err| Error::Io(err).with_path(path))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(Error::Locked {
                            path: path.to_path_buf(),
                            holder: holder(&mut file),
                            waited,
                        });
                    }
                    if !told {
                        told = true;
                        if let Some(notice) = *NOTICE.lock().unwrap_or_else(|e| e.into_inner()) {
                            notice(path, holder(&mut file));
                        }
                    }
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(TryLockError::Error(err)) => return Err(Error::Io(err).with_path(path)),
            }
        }
        // Say who holds it, for anyone who waits (advisory; the lock itself is the flock).
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()));
        Ok(WriteLock { _file: file })
    }
}

/// A shared lock for commands that only read a store: it waits while a writer
/// holds the store, and needs no write access (it works on a read-only home).
pub struct ReadLock {
    _file: File,
}

impl ReadLock {
    /// Takes a shared lock at `path`, waiting up to [`lock_timeout`] for a
    /// writer. `None` when there is no lock file (no writer ever ran there).
    pub fn acquire(path: &Path) -> Result<Option<ReadLock>> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::Io(err).with_path(path)),
        };
        let timeout = lock_timeout();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(Some(ReadLock { _file: file })),
                Err(TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(Error::Locked {
                            path: path.to_path_buf(),
                            holder: holder(&mut file),
                            waited,
                        });
                    }
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(TryLockError::Error(err)) => return Err(Error::Io(err).with_path(path)),
            }
        }
    }
}

/// The pid the holder wrote into the lock file, if any.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
