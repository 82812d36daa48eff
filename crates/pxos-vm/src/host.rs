//! The standard syscall host.
//!
//! [`StdHost`] implements every syscall of [`crate::isa::syscall`] over a
//! [`Storage`] (in memory by default; `pxos-boot` plugs in PixelFS). It keeps
//! what programs print (and draws it on the screen through its [`Console`]),
//! warnings for failing syscalls (which set R0 = 0 and R1 = an error code from
//! [`crate::isa::syscall::error`] and let the program go on), and the kernel
//! change a program asked for (SELF_MODIFY or VERSION_SWITCH), which the
//! caller applies after HALT. A host whose caller will not apply kernel
//! changes refuses them with `UNSUPPORTED`: it never reports a change it
//! cannot make.

use std::collections::{BTreeMap, BTreeSet};

use crate::font::Console;
use crate::isa::syscall::{self, error};
use crate::machine::{Host, Machine};
use crate::trap::Trap;

/// Why a storage operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    NotFound,
    /// The sandbox refused it.
    Denied,
    TooLarge,
    /// A malformed path or module.
    Invalid,
    /// The store itself failed.
    Io,
    /// This storage cannot do it (a listing of storage that has no directories).
    Unsupported,
}

/// A failed storage operation: a kind (which becomes the syscall's error code)
/// and a message for the warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }

    /// The syscall error code for this failure.
    pub fn code(&self) -> u32 {
        match self.kind {
            StorageErrorKind::NotFound => error::NOT_FOUND,
            StorageErrorKind::Denied => error::DENIED,
            StorageErrorKind::TooLarge => error::TOO_LARGE,
            StorageErrorKind::Invalid => error::INVALID,
            StorageErrorKind::Io => error::IO,
            StorageErrorKind::Unsupported => error::UNSUPPORTED,
        }
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

/// Where files and modules come from.
pub trait Storage {
    /// A file's bytes by path.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError>;
    /// Writes a file by path.
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), StorageError>;
    /// A program module's words by id (a registered number or a PixelFS file id).
    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError>;
    /// Whether a write to `path` would be refused, checked before the bytes
    /// are gathered. The default refuses nothing (`write_file` still decides).
    fn check_write(&self, path: &str) -> Result<(), StorageError> {
        let _ = path;
        Ok(())
    }
    /// The names in directory `path`, directories ending in `/`, sorted.
    /// The default has no directories to list.
    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        Err(StorageError::new(
            StorageErrorKind::Unsupported,
            format!("this storage has no directories to list ({path})"),
        ))
    }
}

/// What READ_LINE got from the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line, without its newline.
    Line(String),
    /// The end of input (EOF, Ctrl-D).
    End,
}

/// A program that RUN started, after it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildRun {
    /// It ended in a trap (HALT otherwise).
    pub trapped: bool,
    /// Its execution record (0 when the record could not be written).
    pub execution: u64,
    /// What it printed.
    pub output: Vec<String>,
    /// The screen it ended with (it started from the caller's, and its
    /// printed lines are drawn on it already).
    pub screen: Option<crate::Screen>,
}

/// The interactive session around a program (a shell): what only the host
/// can do for it. Without one, the session syscalls answer `UNSUPPORTED`.
pub trait Session {
    /// Shows `prompt` and reads one line.
    fn read_line(&mut self, prompt: &str) -> LineRead;
    /// Runs program `argv[0]` of the running world with `argv[1..]`, on a
    /// copy of `screen`.
    fn run(&mut self, argv: &[String], screen: &crate::Screen) -> Result<ChildRun, StorageError>;
    /// Text for INFO `topic` ([`crate::isa::syscall::info`]), one item per line.
    fn info(&mut self, topic: u32, count: u32) -> Result<String, StorageError>;
    /// Saves `screen` as a PNG; returns where.
    fn save_screen(&mut self, screen: &crate::Screen) -> Result<String, StorageError>;
    /// Clears the terminal.
    fn clear(&mut self);
}

/// The model a run may ask (SYS_LLM). Whoever supplies it applies the
/// model policy and logs each question; a refusal is a `Denied` error.
pub trait LanguageModel {
    fn ask(&mut self, prompt: &str) -> Result<String, StorageError>;
}

/// Files and modules held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    pub files: BTreeMap<String, Vec<u8>>,
    pub modules: BTreeMap<u32, Vec<u32>>,
}

impl Storage for MemoryStorage {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| StorageError::new(StorageErrorKind::NotFound, format!("no file {path}")))
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|file| file.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => rest.to_string(),
            })
            .collect();
        names.dedup();
        if names.is_empty() && prefix != "/" {
            return Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("no directory {path}"),
            ));
        }
        Ok(names)
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError> {
        self.modules.get(&id).cloned().ok_or_else(|| {
            StorageError::new(
                StorageErrorKind::NotFound,
                format!("no module with id {id}"),
            )
        })
    }
}

/// A syscall that failed: which, where, and its error code (typed, for
/// callers that act on it; the warning text is for people).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyscallFailure {
    pub number: u16,
    pub pc: u32,
    /// One of [`crate::isa::syscall::error`].
    pub code: u32,
}

/// A kernel change requested by the running program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelRequest {
    /// SELF_MODIFY: replace the kernel with this module (id, words).
    Replace { id: u32, words: Vec<u32> },
    /// VERSION_SWITCH: make this existing version current.
    Switch { version: u32 },
}

/// The default message table (ids used by the seed kernels).
pub fn default_messages() -> BTreeMap<u32, String> {
    [
        (1, "PXVM booting..."),
        (2, "PXVM ready"),
        (3, "Kernel loaded"),
        (4, "Kernel init done"),
        (5, "Health check passed"),
        (6, "Health check failed"),
    ]
    .into_iter()
    .map(|(id, text)| (id, text.to_string()))
    .collect()
}

/// Longest string PRINT and file paths read from memory.
pub const MAX_STRING: usize = 4096;
/// Most arguments a program gets (its name included, for RUN).
pub const MAX_ARGS: usize = 64;
/// Most bytes of arguments a program gets (with their NULs).
pub const MAX_ARG_BYTES: usize = 4096;
/// Largest file FILE_READ/FILE_WRITE moves in one call.
pub const MAX_FILE_BYTES: u32 = 16 << 20;

/// The most fuel (instructions) one run may be given: about 16 s of the
/// fastest instructions, minutes of the slowest.
pub const MAX_FUEL: u64 = 10_000_000_000;

/// A resource a run is capped on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cap {
    /// Bytes written by FILE_WRITE.
    BytesWritten,
    /// Bytes read by FILE_READ and BLOB.
    BytesRead,
    /// Distinct files written (a rewrite of the same path counts once).
    FilesCreated,
    /// Host memory the run holds: printed output and kept warnings.
    HostMemory,
}

impl Cap {
    /// The cap in words.
    pub fn describe(self) -> &'static str {
        match self {
            Cap::BytesWritten => "bytes written",
            Cap::BytesRead => "bytes read",
            Cap::FilesCreated => "files created",
            Cap::HostMemory => "host memory (output and warnings kept)",
        }
    }

    /// The command-line flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Cap::BytesWritten => "--max-write-bytes",
            Cap::BytesRead => "--max-read-bytes",
            Cap::FilesCreated => "--max-files",
            Cap::HostMemory => "--max-host-memory",
        }
    }
}

/// Per-run resource caps. Passing one ends the run with
/// [`Trap::CapExceeded`]; warnings past `max_warnings` are counted, not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    pub max_write_bytes: u64,
    pub max_read_bytes: u64,
    pub max_files: u64,
    pub max_host_memory: u64,
    pub max_warnings: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            max_write_bytes: 64 << 20,
            max_read_bytes: 1 << 30,
            max_files: 1000,
            max_host_memory: 64 << 20,
            max_warnings: 100,
        }
    }
}

/// What a run has used of its caps so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub files_created: u64,
    pub host_memory: u64,
    /// Warnings counted but not kept (past `max_warnings`).
    pub warnings_dropped: u64,
    #[serde(skip)]
    paths_written: BTreeSet<String>,
}

/// Called with each printed line as it happens.
pub type PrintHook = Box<dyn FnMut(&str)>;

/// The standard host.
pub struct StdHost {
    /// Message id -> text, for PRINT.
    pub messages: BTreeMap<u32, String>,
    /// Files and modules.
    pub storage: Box<dyn Storage>,
    /// Known kernel version ids, for VERSION_LIST.
    pub versions: Vec<u32>,
    /// The running kernel's version id, for VERSION_GET.
    pub current_version: u32,
    /// The kernel change requested, applied by the caller after HALT.
    pub request: Option<KernelRequest>,
    /// What the program printed, one entry per PRINT.
    pub output: Vec<String>,
    /// Warnings from failing or refused syscalls.
    pub warnings: Vec<String>,
    /// The same failures, typed.
    pub failures: Vec<SyscallFailure>,
    /// Seconds reported by TIME (fixed for determinism; set by the caller).
    pub time: u64,
    /// When set, only these syscalls are allowed; others fail with a warning.
    pub allowed: Option<BTreeSet<u16>>,
    /// Whether the caller applies SELF_MODIFY and VERSION_SWITCH after HALT
    /// (a kernel boot). Otherwise they fail with `UNSUPPORTED`.
    pub kernel_changes: bool,
    /// Where PRINT draws its text on the screen (`None`: console output only).
    pub console: Option<Console>,
    /// Called with each printed line as it happens (for a live terminal).
    pub on_print: Option<PrintHook>,
    /// The run's resource caps.
    pub caps: Caps,
    /// What the run has used of them.
    pub usage: Usage,
    /// The interactive session, for READ_LINE, RUN, INFO, SCREEN_SAVE and CLEAR.
    pub session: Option<Box<dyn Session>>,
    /// The model SYS_LLM asks (`None`: it answers `UNSUPPORTED`).
    pub llm: Option<Box<dyn LanguageModel>>,
}

impl Default for StdHost {
    fn default() -> StdHost {
        StdHost::new(Box::new(MemoryStorage::default()))
    }
}

impl StdHost {
    /// A host over `storage` with the default message table.
    pub fn new(storage: Box<dyn Storage>) -> StdHost {
        StdHost {
            messages: default_messages(),
            storage,
            versions: Vec::new(),
            current_version: 0,
            request: None,
            output: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
            time: 0,
            allowed: None,
            kernel_changes: false,
            console: Some(Console::default()),
            on_print: None,
            caps: Caps::default(),
            usage: Usage::default(),
            session: None,
            llm: None,
        }
    }

    /// Charges `bytes` to `cap`, or traps when that would pass the limit.
    fn charge(&mut self, machine: &Machine, cap: Cap, bytes: u64) -> Result<(), Trap> {
        let (used, limit) = match cap {
            Cap::BytesWritten => (&mut self.usage.bytes_written, self.caps.max_write_bytes),
            Cap::BytesRead => (&mut self.usage.bytes_read, self.caps.max_read_bytes),
            Cap::FilesCreated => (&mut self.usage.files_created, self.caps.max_files),
            Cap::HostMemory => (&mut self.usage.host_memory, self.caps.max_host_memory),
        };
        let total = used.saturating_add(bytes);
        if total > limit {
            return Err(Trap::CapExceeded {
                pc: machine.pc.wrapping_sub(1),
                cap,
                limit,
            });
        }
        *used = total;
        Ok(())
    }

    fn fail(&mut self, machine: &mut Machine, number: u16, code: u32, why: impl std::fmt::Display) {
        machine.regs[0] = 0;
        machine.regs[1] = code;
        if self.warnings.len() >= self.caps.max_warnings {
            self.usage.warnings_dropped += 1;
            return;
        }
        let name = syscall::name(number).unwrap_or("unknown");
        let warning = format!(
            "syscall {number} ({name}) at pc {} failed with {}: {why}",
            machine.pc.wrapping_sub(1),
            error::name(code).unwrap_or("an error")
        );
        // Kept warnings are few and short; they count towards host memory
        // without trapping (a failure must not end the run).
        self.usage.host_memory = self.usage.host_memory.saturating_add(warning.len() as u64);
        self.warnings.push(warning);
        self.failures.push(SyscallFailure {
            number,
            pc: machine.pc.wrapping_sub(1),
            code,
        });
    }

    fn print(&mut self, machine: &mut Machine, text: String) -> Result<(), Trap> {
        self.charge(machine, Cap::HostMemory, text.len() as u64 + 24)?;
        if let Some(console) = &self.console {
            console.print(machine.screen_mut(), &text);
        }
        self.emit_line(text);
        Ok(())
    }

    /// A printed line that is on the screen already: to the print hook and
    /// the output.
    fn record_print(&mut self, machine: &mut Machine, text: String) -> Result<(), Trap> {
        self.charge(machine, Cap::HostMemory, text.len() as u64 + 24)?;
        self.emit_line(text);
        Ok(())
    }

    fn emit_line(&mut self, text: String) {
        if let Some(on_print) = &mut self.on_print {
            on_print(&text);
        }
        self.output.push(text);
    }

    fn session_mut(&mut self) -> &mut dyn Session {
        self.session
            .as_deref_mut()
            .expect("session syscalls are answered only with a session")
    }

    /// Stores `bytes` NUL-terminated at `address`, packed four per word, when
    /// they fit in `max` bytes and in memory; otherwise fails the syscall.
    fn store_string(
        &mut self,
        machine: &mut Machine,
        number: u16,
        address: u32,
        max: u32,
        bytes: &[u8],
    ) -> bool {
        if bytes.len() as u64 + 1 > u64::from(max) {
            let why = format!(
                "{} bytes and the NUL do not fit in {max} bytes",
                bytes.len()
            );
            self.fail(machine, number, error::TOO_LARGE, why);
            return false;
        }
        let words = (bytes.len() + 1).div_ceil(4);
        if u64::from(address) + words as u64 > machine.memory().len() as u64 {
            let why = format!("buffer at {address} runs off memory");
            self.fail(machine, number, error::BAD_ADDRESS, why);
            return false;
        }
        for index in 0..words {
            let mut word = [0u8; 4];
            for (slot, byte) in word.iter_mut().zip(bytes.iter().skip(index * 4)) {
                *slot = *byte;
            }
            machine.write_word(address + index as u32, u32::from_le_bytes(word));
        }
        true
    }

    fn read_line(&mut self, machine: &mut Machine) -> Result<(), Trap> {
        let number = syscall::READ_LINE;
        let r = machine.regs;
        let Some(prompt) = machine.read_string(r[1], MAX_STRING) else {
            let why = format!("prompt string at {} runs off memory", r[1]);
            self.fail(machine, number, error::BAD_ADDRESS, why);
            return Ok(());
        };
        let prompt = String::from_utf8_lossy(&prompt).into_owned();
        let line = match self.session_mut().read_line(&prompt) {
            LineRead::Line(line) => line.replace('\0', ""),
            LineRead::End => {
                self.fail(machine, number, error::END, "the end of input");
                return Ok(());
            }
        };
        // The typed line shows on the screen as the terminal showed it.
        if let Some(console) = &self.console {
            console.print(machine.screen_mut(), &format!("{prompt}{line}"));
        }
        if self.store_string(machine, number, r[2], r[3], line.as_bytes()) {
            machine.regs[0] = 1;
            machine.regs[1] = line.len() as u32;
        }
        Ok(())
    }

    /// The path string at R1, or the syscall fails with `BAD_ADDRESS`.
    fn path_arg(&mut self, machine: &mut Machine, number: u16) -> Option<String> {
        match machine.read_string(machine.regs[1], MAX_STRING) {
            Some(path) => Some(String::from_utf8_lossy(&path).into_owned()),
            None => {
                self.fail(
                    machine,
                    number,
                    error::BAD_ADDRESS,
                    "path string runs off memory",
                );
                None
            }
        }
    }

    fn ask_model(&mut self, machine: &mut Machine) -> Result<(), Trap> {
        let number = syscall::LLM;
        let r = machine.regs;
        let Some(prompt) = machine.read_string(r[1], MAX_STRING) else {
            self.fail(
                machine,
                number,
                error::BAD_ADDRESS,
                "prompt string runs off memory",
            );
            return Ok(());
        };
        let prompt = String::from_utf8_lossy(&prompt).into_owned();
        let Some(model) = self.llm.as_deref_mut() else {
            self.fail(
                machine,
                number,
                error::UNSUPPORTED,
                "no model is reachable from this run (`pxos agents` shows the configured ones)",
            );
            return Ok(());
        };
        let answer = match model.ask(&prompt) {
            Ok(answer) => answer.replace('\0', ""),
            Err(err) => {
                self.fail(machine, number, err.code(), err);
                return Ok(());
            }
        };
        if r[3] == 0 {
            self.fail(
                machine,
                number,
                error::TOO_LARGE,
                "an answer buffer of 0 bytes",
            );
            return Ok(());
        }
        let mut end = answer.len().min(r[3] as usize - 1);
        while !answer.is_char_boundary(end) {
            end -= 1;
        }
        self.charge(machine, Cap::HostMemory, end as u64)?;
        if self.store_string(machine, number, r[2], r[3], &answer.as_bytes()[..end]) {
            machine.regs[0] = 1;
            machine.regs[1] = end as u32;
            machine.regs[2] = u32::from(end < answer.len());
        }
        Ok(())
    }

    fn list_dir(&mut self, machine: &mut Machine) -> Result<(), Trap> {
        let number = syscall::LIST_DIR;
        let r = machine.regs;
        let Some(path) = self.path_arg(machine, number) else {
            return Ok(());
        };
        let names = match self.storage.list_dir(&path) {
            Ok(names) => names,
            Err(err) => {
                self.fail(machine, number, err.code(), err);
                return Ok(());
            }
        };
        // The first entries that fit; the rest are counted.
        let mut text = String::new();
        let mut shown = 0;
        for name in &names {
            let extra = name.len() + usize::from(!text.is_empty());
            if text.len() + extra + 1 > r[3] as usize {
                break;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
            shown += 1;
        }
        self.charge(machine, Cap::BytesRead, text.len() as u64)?;
        if self.store_string(machine, number, r[2], r[3], text.as_bytes()) {
            machine.regs[0] = 1;
            machine.regs[1] = text.len() as u32;
            machine.regs[2] = (names.len() - shown) as u32;
        }
        Ok(())
    }

    fn run_child(&mut self, machine: &mut Machine) -> Result<(), Trap> {
        let number = syscall::RUN;
        let r = machine.regs;
        if r[2] == 0 || r[2] > MAX_ARGS as u32 {
            let why = format!(
                "{} arguments (1 to {MAX_ARGS}, the program name first)",
                r[2]
            );
            self.fail(machine, number, error::INVALID, why);
            return Ok(());
        }
        let mut argv = Vec::new();
        for index in 0..r[2] {
            let text = machine
                .read_word(r[1].wrapping_add(index))
                .and_then(|at| machine.read_string(at, MAX_STRING));
            match text {
                Some(text) => argv.push(String::from_utf8_lossy(&text).into_owned()),
                None => {
                    let why = format!("argument {index} runs off memory");
                    self.fail(machine, number, error::BAD_ADDRESS, why);
                    return Ok(());
                }
            }
        }
        let screen = machine.screen().clone();
        match self.session_mut().run(&argv, &screen) {
            Ok(child) => {
                match child.screen {
                    Some(screen)
                        if screen.width() == machine.screen().width()
                            && screen.height() == machine.screen().height() =>
                    {
                        // Its lines are on its screen already.
                        *machine.screen_mut() = screen;
                        for line in child.output {
                            self.record_print(machine, line)?;
                        }
                    }
                    _ => {
                        for line in child.output {
                            self.print(machine, line)?;
                        }
                    }
                }
                machine.regs[0] = 1;
                machine.regs[1] = u32::from(child.trapped);
                machine.regs[2] = child.execution as u32;
            }
            Err(err) => self.fail(machine, number, err.code(), err),
        }
        Ok(())
    }

    /// Refuses a kernel change this host's caller will not apply.
    fn refuse_kernel_change(&mut self, machine: &mut Machine, number: u16) -> bool {
        if self.kernel_changes {
            return false;
        }
        self.fail(
            machine,
            number,
            error::UNSUPPORTED,
            "kernel changes are applied only by a kernel boot (the kernel stage of `pxos boot`, or `pxos kernel boot`); nothing was staged",
        );
        true
    }
}

impl Host for StdHost {
    fn syscall(&mut self, number: u16, machine: &mut Machine) -> Result<bool, Trap> {
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&number)
        {
            self.fail(machine, number, error::DENIED, "not allowed here (sandbox)");
            return Ok(false);
        }
        let r = machine.regs;
        match number {
            syscall::PRINT => {
                let text = if r[2] == 1 {
                    match machine.read_string(r[1], MAX_STRING) {
                        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        None => {
                            let why = format!("string at {} runs off memory", r[1]);
                            self.fail(machine, number, error::BAD_ADDRESS, why);
                            return Ok(false);
                        }
                    }
                } else {
                    match self.messages.get(&r[1]) {
                        Some(text) => text.clone(),
                        None => {
                            let why = format!("no message with id {}", r[1]);
                            self.fail(machine, number, error::NOT_FOUND, why);
                            return Ok(false);
                        }
                    }
                };
                self.print(machine, text)?;
                machine.regs[0] = 1;
            }
            syscall::RECT => {
                let painted =
                    machine
                        .screen_mut()
                        .fill_rect(r[1], r[2], r[3], r[4], (r[5] & 15) as u8);
                machine.regs[0] = u32::from(painted > 0);
            }
            syscall::VERSION_GET => machine.regs[0] = self.current_version,
            syscall::VERSION_LIST => {
                let count = (r[2] as usize).min(self.versions.len());
                for (index, version) in self.versions.iter().take(count).enumerate() {
                    if !machine.write_word(r[1].wrapping_add(index as u32), *version) {
                        let why = format!("buffer at {} runs off memory", r[1]);
                        self.fail(machine, number, error::BAD_ADDRESS, why);
                        return Ok(false);
                    }
                }
                machine.regs[0] = count as u32;
            }
            syscall::VERSION_SWITCH => {
                if self.refuse_kernel_change(machine, number) {
                    return Ok(false);
                }
                if self.versions.contains(&r[1]) {
                    self.request = Some(KernelRequest::Switch { version: r[1] });
                    machine.regs[0] = 1;
                } else {
                    let why = format!("no kernel version {}", r[1]);
                    self.fail(machine, number, error::NOT_FOUND, why);
                }
            }
            syscall::SELF_MODIFY => {
                if self.refuse_kernel_change(machine, number) {
                    return Ok(false);
                }
                match self.storage.module(r[1]) {
                    Ok(words) if !words.is_empty() => {
                        self.request = Some(KernelRequest::Replace { id: r[1], words });
                        machine.regs[0] = 1;
                    }
                    Ok(_) => {
                        let why = format!("module {} is empty", r[1]);
                        self.fail(machine, number, error::INVALID, why);
                    }
                    Err(err) => self.fail(machine, number, err.code(), err),
                }
            }
            syscall::BLOB => match self.storage.module(r[1]) {
                Ok(words) => {
                    let count = words.len().min(r[3] as usize);
                    self.charge(machine, Cap::BytesRead, count as u64 * 4)?;
                    for (index, word) in words.iter().take(count).enumerate() {
                        if !machine.write_word(r[2].wrapping_add(index as u32), *word) {
                            let why = format!("module does not fit at {}", r[2]);
                            self.fail(machine, number, error::BAD_ADDRESS, why);
                            return Ok(false);
                        }
                    }
                    machine.regs[0] = count as u32;
                }
                Err(err) => self.fail(machine, number, err.code(), err),
            },
            syscall::FILE_READ => {
                let Some(path) = self.path_arg(machine, number) else {
                    return Ok(false);
                };
                match self.storage.read_file(&path) {
                    Ok(bytes) => {
                        let take = bytes.len().min(r[3].min(MAX_FILE_BYTES) as usize);
                        self.charge(machine, Cap::BytesRead, take as u64)?;
                        for (index, chunk) in bytes[..take].chunks(4).enumerate() {
                            let mut word = [0u8; 4];
                            word[..chunk.len()].copy_from_slice(chunk);
                            if !machine.write_word(
                                r[2].wrapping_add(index as u32),
                                u32::from_le_bytes(word),
                            ) {
                                let why = format!("buffer at {} runs off memory", r[2]);
                                self.fail(machine, number, error::BAD_ADDRESS, why);
                                return Ok(false);
                            }
                        }
                        machine.regs[0] = take as u32;
                    }
                    Err(err) => self.fail(machine, number, err.code(), err),
                }
            }
            syscall::FILE_WRITE => {
                let Some(path) = self.path_arg(machine, number) else {
                    return Ok(false);
                };
                if r[3] > MAX_FILE_BYTES {
                    let why = format!("{} bytes is more than {MAX_FILE_BYTES}", r[3]);
                    self.fail(machine, number, error::TOO_LARGE, why);
                    return Ok(false);
                }
                // Cheap refusals first, so a loop of failing writes costs no copying.
                if let Err(err) = self.storage.check_write(&path) {
                    self.fail(machine, number, err.code(), err);
                    return Ok(false);
                }
                let words = r[3].div_ceil(4);
                if u64::from(r[2]) + u64::from(words) > machine.memory().len() as u64 {
                    let why = format!("source at {} runs off memory", r[2]);
                    self.fail(machine, number, error::BAD_ADDRESS, why);
                    return Ok(false);
                }
                self.charge(machine, Cap::BytesWritten, u64::from(r[3]))?;
                if !self.usage.paths_written.contains(&path) {
                    self.charge(machine, Cap::FilesCreated, 1)?;
                    self.usage.paths_written.insert(path.clone());
                }
                let mut bytes = Vec::with_capacity(r[3] as usize);
                for index in 0..(r[3] as usize).div_ceil(4) {
                    match machine.read_word(r[2].wrapping_add(index as u32)) {
                        Some(word) => bytes.extend_from_slice(&word.to_le_bytes()),
                        None => {
                            let why = format!("source at {} runs off memory", r[2]);
                            self.fail(machine, number, error::BAD_ADDRESS, why);
                            return Ok(false);
                        }
                    }
                }
                bytes.truncate(r[3] as usize);
                match self.storage.write_file(&path, &bytes) {
                    Ok(()) => machine.regs[0] = 1,
                    Err(err) => self.fail(machine, number, err.code(), err),
                }
            }
            syscall::CYCLES => {
                machine.regs[0] = machine.cycles as u32;
                machine.regs[1] = (machine.cycles >> 32) as u32;
            }
            syscall::TIME => machine.regs[0] = self.time as u32,
            syscall::YIELD => {
                machine.regs[0] = 1;
                return Ok(true);
            }
            syscall::READ_LINE
            | syscall::RUN
            | syscall::INFO
            | syscall::SCREEN_SAVE
            | syscall::CLEAR
                if self.session.is_none() =>
            {
                self.fail(
                    machine,
                    number,
                    error::UNSUPPORTED,
                    "no interactive session here (`pxos shell`, or `pxos boot` on a terminal)",
                );
            }
            syscall::LLM => self.ask_model(machine)?,
            syscall::READ_LINE => self.read_line(machine)?,
            syscall::LIST_DIR => self.list_dir(machine)?,
            syscall::RUN => self.run_child(machine)?,
            syscall::INFO => {
                let topic = r[1];
                let text = match self.session_mut().info(topic, r[2]) {
                    Ok(text) => text,
                    Err(err) => {
                        self.fail(machine, number, err.code(), err);
                        return Ok(false);
                    }
                };
                let lines: Vec<&str> = text.lines().collect();
                // The newest lines are the last ones: keep those that fit.
                let mut kept = lines.len();
                let mut size = 0usize;
                while kept > 0 && size + lines[kept - 1].len() < r[4] as usize {
                    size += lines[kept - 1].len() + 1;
                    kept -= 1;
                }
                let dropped = kept;
                let joined = lines[dropped..].join("\n");
                if self.store_string(machine, number, r[3], r[4], joined.as_bytes()) {
                    machine.regs[0] = 1;
                    machine.regs[1] = joined.len() as u32;
                    machine.regs[2] = dropped as u32;
                }
            }
            syscall::SCREEN_SAVE => {
                let saved = self.session_mut().save_screen(machine.screen());
                match saved {
                    Ok(path) => {
                        if self.store_string(machine, number, r[1], r[2], path.as_bytes()) {
                            machine.regs[0] = 1;
                            machine.regs[1] = path.len() as u32;
                        }
                    }
                    Err(err) => self.fail(machine, number, err.code(), err),
                }
            }
            syscall::CLEAR => {
                self.session_mut().clear();
                if let Some(console) = &self.console {
                    console.clear(machine.screen_mut());
                }
                machine.regs[0] = 1;
            }
            syscall::RUN_SLICE => self.fail(
                machine,
                number,
                error::UNSUPPORTED,
                "only the VRAM OS machine (`pxos vram run`) runs processes",
            ),
            other => self.fail(machine, other, error::NO_SUCH_SYSCALL, "no such syscall"),
        }
        Ok(false)
    }
}
