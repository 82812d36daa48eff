//! Crash-safe file replacement: write a temporary file, fsync it, rename it
//! over the target, fsync the directory. A reader sees the old file or the new
//! one, never a mix.
//!
//! Crash points: when the environment variable `PXOS_CRASH_AT` names one of the
//! points passed to [`crash_point`] (`LABEL.POINT`, or `LABEL.POINT#N` for its
//! Nth time in this process), the process aborts there. With
//! `PXOS_CRASH_TRACE=FILE` every point reached is appended to FILE, one a
//! line, so tests can enumerate the points an operation passes and then kill
//! a real process at each. Neither variable has any other effect.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many times each crash point was passed in this process.
static PASSED: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Aborts the process if `PXOS_CRASH_AT` names this point (test hook); records
/// it when `PXOS_CRASH_TRACE` is set.
pub fn crash_point(name: &str) {
    let target = std::env::var("PXOS_CRASH_AT").ok();
    let trace = std::env::var_os("PXOS_CRASH_TRACE");
    if target.is_none() && trace.is_none() {
        return;
    }
    let count = {
        let mut passed = PASSED.lock().unwrap_or_else(|e| e.into_inner());
        let count = passed
            .get_or_insert_with(HashMap::new)
            .entry(name.to_string())
            .or_insert(0);
        *count += 1;
        *count
    };
    if let Some(trace) = trace
        && let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(trace)
    {
        let _ = writeln!(file, "{name}#{count}");
    }
    let hit = target.is_some_and(|target| match target.split_once('#') {
        Some((point, nth)) => point == name && nth.parse() == Ok(count),
        None => target == name,
    });
    if hit {
        eprintln!("pxos: crash injected at {name}#{count}");
        std::process::abort();
    }
}

/// A file that replaces `path` atomically when committed, and disappears if dropped.
pub struct AtomicFile {
    path: PathBuf,
    temp_path: PathBuf,
    file: Option<File>,
    label: &'static str,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix of every temporary file this module creates (for cleanup and fsck).
pub const TEMP_PREFIX: &str = ".pxos-tmp-";

impl AtomicFile {
    /// Creates a temporary file beside `path`. `label` names the crash points
    /// (`LABEL.create-temp`, `LABEL.write-temp`, `LABEL.fsync-temp`, `LABEL.rename`, `LABEL.fsync-dir`).
    pub fn create(path: impl AsRef<Path>, label: &'static str) -> io::Result<AtomicFile> {
        let path = path.as_ref().to_path_buf();
        let dir = parent_dir(&path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(
            "{TEMP_PREFIX}{}-{unique}-{name}",
            std::process::id()
        ));
        crash_point(&format!("{label}.create-temp"));
        let file = File::create(&temp_path)?;
        Ok(AtomicFile {
            path,
            temp_path,
            file: Some(file),
            label,
        })
    }

    /// The temporary file, for writing.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Writes `bytes`, with a crash point after the first half.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let (first, second) = bytes.split_at(bytes.len() / 2);
        self.file().write_all(first)?;
        crash_point(&format!("{}.write-temp", self.label));
        self.file().write_all(second)
    }

    /// The `LABEL.write-temp` crash point, for callers that write through [`AtomicFile::file`].
    pub fn after_write(&self) {
        crash_point(&format!("{}.write-temp", self.label));
    }

    /// Makes the new contents durable and visible at the target path.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("commit once");
        crash_point(&format!("{}.fsync-temp", self.label));
        file.sync_all()?;
        drop(file);
        crash_point(&format!("{}.rename", self.label));
        fs::rename(&self.temp_path, &self.path)?;
        crash_point(&format!("{}.fsync-dir", self.label));
        sync_dir(&parent_dir(&self.path))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// The crash points an [`AtomicFile`] with `label` passes, in order.
pub fn crash_points(label: &str) -> Vec<String> {
    [
        "create-temp",
        "write-temp",
        "fsync-temp",
        "rename",
        "fsync-dir",
    ]
    .iter()
    .map(|point| format!("{label}.{point}"))
    .collect()
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8], label: &'static str) -> io::Result<()> {
    let mut file = AtomicFile::create(path, label)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
