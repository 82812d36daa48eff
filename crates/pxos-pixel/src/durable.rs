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
//!
//! Every temporary file and staging directory is listed, while it exists, in
//! one process-wide table ([`Temporary`]), so that a signal handler can remove
//! them all before the process exits ([`remove_temporaries_and_exit`]).

use std::collections::{BTreeMap, HashMap};
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

/// A crash-point label: which durable write a crash point belongs to. Labels
/// exist only as the constants in [`label`], so [`label::ALL`] lists every
/// durable write in pxOS, and a test can enumerate them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(&'static str);

impl Label {
    /// The label as it appears in crash points (`LABEL.POINT`).
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! labels {
    ($($(#[$doc:meta])* $name:ident = $text:literal;)*) => {
        /// Every crash-point label.
        pub mod label {
            use super::Label;
            $($(#[$doc])* pub const $name: Label = Label($text);)*
            /// All of them.
            pub const ALL: &[Label] = &[$($name),*];
        }
    };
}

labels! {
    /// An artefact an agent wrote into its task's workspace.
    AGENT_ARTEFACT = "agent-artefact";
    /// The agents' configuration (`HOME/agents/config.json`).
    AGENT_CONFIG = "agent-config";
    /// A recorded coaching session (`HOME/agents/sessions/`).
    AGENT_SESSION = "agent-session";
    /// The LLM control plane's routing table (`HOME/agents/routing.json`).
    AGENT_ROUTING = "agent-routing";
    /// `pxos asm`'s program image.
    ASM = "asm";
    /// `pxos boot`'s boot log.
    BOOT_LOG = "boot-log";
    /// `pxos fs boot-pixel`'s 1x1 PNG.
    BOOT_PIXEL = "boot-pixel";
    /// `pxos boot`'s screen.
    BOOT_SCREEN = "boot-screen";
    /// `pxos cart pack`'s cartridge.
    CART_PACK = "cart-pack";
    /// The evolution log's migration from one PXI to a segmented log (a staging folder renamed into place).
    EVOLUTION_MIGRATE = "evolution-migrate";
    /// PixelFS's root reference (`HEAD`).
    FS_HEAD = "fs-head";
    /// A PixelFS pack of small objects.
    FS_PACK = "fs-pack";
    /// A PixelFS pack's index (an accelerator, rebuilt from the pack).
    FS_PACK_INDEX = "fs-pack-index";
    /// A PixelFS directory (tree object) written on its own.
    FS_TREE = "fs-tree";
    /// An object or pack fetched from a remote, checked, then renamed into the store.
    FS_IMPORT = "fs-import";
    /// Genesis's compliance report.
    GENESIS_COMPLIANCE = "genesis-compliance";
    /// A kernel image in the kernel store.
    KERNEL_IMAGE = "kernel-image";
    /// The kernel state, with the change it is about to log.
    KERNEL_INTENT = "kernel-intent";
    /// The kernel state.
    KERNEL_STATE = "kernel-state";
    /// `pxos cart lineage --png`'s graph.
    LINEAGE = "lineage";
    /// A PXI-LLM model (`pxos llm train`, `quantize`, `import`).
    LLM_MODEL = "llm-model";
    /// `pxos llm render`'s picture of the weights.
    LLM_RENDER = "llm-render";
    /// `pxos llm corpus`'s corpus.
    LLM_CORPUS = "llm-corpus";
    /// `pxos llm export`'s llama2.c checkpoint and tokenizer.
    LLM_EXPORT = "llm-export";
    /// An InfiniteMap's manifest (`pxos map put`, `note`).
    MAP_MANIFEST = "map-manifest";
    /// An InfiniteMap tile (`pxos map put`).
    MAP_TILE = "map-tile";
    /// `pxos map render`'s image (and `map get -o`).
    MAP_RENDER = "map-render";
    /// PixelFS's marker file.
    MARKER = "marker";
    /// `pxos run --memory`'s image.
    MEMORY = "memory";
    /// `pxos pixel decode`'s output (and `fs get`'s).
    PIXEL_DECODE = "pixel-decode";
    /// `pxos pixel encode`'s output (and PixelFS objects).
    PIXEL_ENCODE = "pixel-encode";
    /// `pxos pixel read -o`'s output.
    PIXEL_READ = "pixel-read";
    /// `pxos pixel view`'s rendering.
    PIXEL_VIEW = "pixel-view";
    /// The registry state.
    REGISTRY = "registry";
    /// A cartridge copied into the registry.
    REGISTRY_CARTRIDGE = "registry-cartridge";
    /// The registry state, with the change it is about to log.
    REGISTRY_INTENT = "registry-intent";
    /// The remotes the user added (`remotes.json`).
    REMOTE_CONFIG = "remote-config";
    /// Remote credentials (`credentials.json`, mode 0600).
    REMOTE_CREDENTIALS = "remote-credentials";
    /// What this home last saw of a remote's reference (`remotes/NAME/*.json`).
    REMOTE_TRACKING = "remote-tracking";
    /// A program's screen (`run --screen`, `debug`'s `screen`, `kernel boot --screen`, `demo evolve`).
    SCREEN = "screen";
    /// A segmented log's records, appended in place (an append label: see [`crash_points`]).
    SEGLOG_APPEND = "seglog-append";
    /// A segmented log's verified checkpoint.
    SEGLOG_CHECKPOINT = "seglog-checkpoint";
    /// A segmented log's head, naming the new end.
    SEGLOG_HEAD = "seglog-head";
    /// A segmented log's head, naming the record being appended.
    SEGLOG_HEAD_INTENT = "seglog-head-intent";
    /// A sealed segment of a segmented log.
    SEGLOG_SEGMENT = "seglog-segment";
    /// The shell's history (`HOME/shell/history.txt`).
    SHELL_HISTORY = "shell-history";
    /// The task queue (`HOME/agents/tasks.png`).
    TASK_QUEUE = "task-queue";
    /// `pxos vram build`'s image.
    VRAM = "vram";
    /// `pxos vram diff`'s image.
    VRAM_DIFF = "vram-diff";
    /// `pxos vram loop`'s generation images.
    VRAM_GENERATION = "vram-generation";
    /// `pxos vram build`'s provenance file.
    VRAM_PROVENANCE = "vram-provenance";
    /// `pxos vram run --screen`'s screen.
    VRAM_SCREEN = "vram-screen";
    /// `pxos x86 build`'s boot image.
    X86_IMAGE = "x86-image";
    /// `pxos x86 build --png`'s PXI.
    X86_PNG = "x86-png";
}

/// The temporaries that exist now, by registration number. `None` once the
/// process is exiting: no new temporary may be created then.
static LIVE: Mutex<Option<BTreeMap<u64, PathBuf>>> = Mutex::new(Some(BTreeMap::new()));

/// A temporary file or staging directory, removed when dropped (unless kept)
/// and by [`remove_temporaries_and_exit`] if a signal ends the process first.
#[derive(Debug)]
pub struct Temporary {
    id: u64,
    path: PathBuf,
    kept: bool,
}

impl Temporary {
    /// Registers `path` and creates it with `create`, both under the table's
    /// lock, so that a signal handler never misses a temporary that exists.
    pub fn create<T>(
        path: PathBuf,
        create: impl FnOnce(&Path) -> io::Result<T>,
    ) -> io::Result<(Temporary, T)> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let Some(table) = live.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "pxos is exiting",
            ));
        };
        let created = create(&path)?;
        let id = COUNTER.fetch_add(1, Ordering::Relaxed);
        table.insert(id, path.clone());
        Ok((
            Temporary {
                id,
                path,
                kept: false,
            },
            created,
        ))
    }

    /// Registers `path`, which something else created, as a temporary: it
    /// is removed on drop and by [`remove_temporaries_and_exit`].
    pub fn adopt(path: PathBuf) -> io::Result<Temporary> {
        Temporary::create(path, |_| Ok(())).map(|(temporary, ())| temporary)
    }

    /// The temporary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary to `target` and forgets it (it is no longer temporary).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        fs::rename(&self.path, target)?;
        if let Some(table) = live.as_mut() {
            table.remove(&self.id);
        }
        self.kept = true;
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        remove_path(&self.path);
        if let Some(table) = live.as_mut() {
            table.remove(&self.id);
        }
    }
}

fn remove_path(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Removes every live temporary and exits with `code`, holding the table so
/// that no thread creates another in between. For signal handlers.
pub fn remove_temporaries_and_exit(code: i32) -> ! {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(table) = live.take() {
        for path in table.values() {
            remove_path(path);
        }
    }
    std::process::exit(code)
}

/// How many temporaries exist now (for tests).
pub fn live_temporaries() -> usize {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, BTreeMap::len)
}

/// A file that replaces `path` atomically when committed, and disappears if dropped.
pub struct AtomicFile {
    path: PathBuf,
    temp: Option<Temporary>,
    file: Option<File>,
    label: Label,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix of every temporary file this module creates (for cleanup and fsck).
pub const TEMP_PREFIX: &str = ".pxos-tmp-";

impl AtomicFile {
    /// Creates a temporary file beside `path`. `label` names the crash points
    /// (`LABEL.create-temp`, `LABEL.write-temp`, `LABEL.fsync-temp`, `LABEL.rename`, `LABEL.fsync-dir`).
    pub fn create(path: impl AsRef<Path>, label: Label) -> io::Result<AtomicFile> {
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
        remove_stale_temporaries_beside(&path);
        let (temp, file) = Temporary::create(temp_path, |path| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
        })?;
        Ok(AtomicFile {
            path,
            temp: Some(temp),
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
        self.temp.take().expect("commit once").persist(&self.path)?;
        crash_point(&format!("{}.fsync-dir", self.label));
        sync_dir(&parent_dir(&self.path))?;
        Ok(())
    }
}

/// Labels of writes that append in place ([`append_synced`]) rather than replace.
pub const APPEND_LABELS: &[Label] = &[label::SEGLOG_APPEND];

/// The crash points a write with `label` passes, in order: an [`AtomicFile`]'s
/// five, or for an append label [`append_synced`]'s five.
pub fn crash_points(label: Label) -> Vec<String> {
    let points: &[&str] = if APPEND_LABELS.contains(&label) {
        &["open", "write-half", "write", "fsync", "synced"]
    } else {
        &[
            "create-temp",
            "write-temp",
            "fsync-temp",
            "rename",
            "fsync-dir",
        ]
    };
    points
        .iter()
        .map(|point| format!("{label}.{point}"))
        .collect()
}

/// Removes the temporaries that dead processes left beside `target`
/// (`.pxos-tmp-PID-...` in its folder, whose PID no longer runs), the way git
/// removes stale locks. Returns how many were removed. Temporaries of live
/// processes are left alone. One directory listing.
pub fn remove_stale_temporaries_beside(target: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(rest) = file_name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        // PID-...: the writer's process id comes first.
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if pid == std::process::id() || process_runs(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with this id exists (a signal-0 probe).
fn process_runs(pid: u32) -> bool {
    match i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        Some(pid) => {
            rustix::process::test_kill_process(pid).is_ok()
                || rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::PERM)
        }
        None => false,
    }
}

/// Moves a finished file that was written elsewhere in the same file system
/// (a download resumed across runs, checked by the caller) to `target`:
/// fsync, rename, fsync the folder. The five crash points are an
/// [`AtomicFile`]'s, so a label serves either.
pub fn persist_file(source: &Path, target: &Path, label: Label) -> io::Result<()> {
    crash_point(&format!("{label}.create-temp"));
    let file = File::open(source)?;
    crash_point(&format!("{label}.write-temp"));
    crash_point(&format!("{label}.fsync-temp"));
    file.sync_all()?;
    drop(file);
    crash_point(&format!("{label}.rename"));
    fs::rename(source, target)?;
    crash_point(&format!("{label}.fsync-dir"));
    sync_dir(&parent_dir(target))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8], label: Label) -> io::Result<()> {
    let mut file = AtomicFile::create(path, label)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Appends `bytes` to the file at `path` (created when missing) and makes
/// them durable before returning (fdatasync; the folder too when the file is
/// new). A crash can leave a torn tail: a prefix of `bytes` after the old end,
/// which the reader of the file must recognise. Crash points `LABEL.open`,
/// `LABEL.write-half` (half of `bytes` written), `LABEL.write`, `LABEL.fsync`
/// and `LABEL.synced`.
pub fn append_synced(path: &Path, bytes: &[u8], label: Label) -> io::Result<()> {
    crash_point(&format!("{label}.open"));
    let existed = path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let (first, second) = bytes.split_at(bytes.len() / 2);
    file.write_all(first)?;
    crash_point(&format!("{label}.write-half"));
    file.write_all(second)?;
    crash_point(&format!("{label}.write"));
    file.sync_data()?;
    if !existed {
        sync_dir(&parent_dir(path))?;
    }
    crash_point(&format!("{label}.fsync"));
    drop(file);
    crash_point(&format!("{label}.synced"));
    Ok(())
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

/// Refuses, before anything is written, an output of `needed` bytes that the
/// file system holding `dir` has no room for (the space an unprivileged user
/// may use). File systems that cannot say are not checked.
pub fn check_free_space(dir: &Path, needed: u64) -> crate::Result<()> {
    let Ok(stats) = rustix::fs::statvfs(dir) else {
        return Ok(());
    };
    let available = stats.f_bavail.saturating_mul(stats.f_frsize);
    if needed > available {
        return Err(crate::Error::Io(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "the output needs {needed} bytes but {} has {available} bytes free; nothing was written",
                dir.display()
            ),
        )));
    }
    Ok(())
}
