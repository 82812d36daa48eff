//! The hypervisor: the one way programs run. Every run — `pxos run` of a name
//! or a file, `pxos debug`, each boot stage, the kernel, Genesis's checks —
//! starts an [`Execution`] here, under a [`Sandbox`], and every execution
//! appends one record to the execution log, including runs abandoned half
//! way (a debugger that quits). `run_program` never panics and always
//! answers: success or not, output, cycles, trap, and the record's id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pxos_fs::seglog::SegLog;

use pxos_vm::{
    Caps, Config, Console, Exit, KernelRequest, Machine, ProgramImage, Screen, StdHost, Storage,
    StorageError, StorageErrorKind, Trap, isa::syscall,
};
use serde::Serialize;

/// Limits for a program run.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// Syscalls allowed (`None`: all).
    pub allowed_syscalls: Option<BTreeSet<u16>>,
    /// Instruction budget.
    pub fuel: u64,
    /// Memory in words.
    pub memory_words: u32,
    /// Where FILE_WRITE may write (a PixelFS path prefix); `None`: anywhere.
    pub writable_prefix: Option<String>,
    /// Whether SELF_MODIFY and VERSION_SWITCH are applied after HALT (a kernel boot).
    pub kernel_changes: bool,
    /// A person lifted the sandbox (`--trusted`); the record says so.
    pub lifted_by_request: bool,
    /// Caps on what the run may write, read, create and hold.
    pub caps: Caps,
    /// A person consented to this sandboxed run asking the model (`--allow-llm`).
    pub llm_consent: bool,
}

/// Syscalls a sandboxed program may make: no kernel changes.
const SANDBOXED_SYSCALLS: [u16; 16] = [
    syscall::READ_LINE,
    syscall::LIST_DIR,
    syscall::RUN,
    syscall::INFO,
    syscall::SCREEN_SAVE,
    syscall::CLEAR,
    syscall::PRINT,
    syscall::RECT,
    syscall::VERSION_GET,
    syscall::VERSION_LIST,
    syscall::BLOB,
    syscall::FILE_READ,
    syscall::FILE_WRITE,
    syscall::CYCLES,
    syscall::TIME,
    syscall::YIELD,
];

impl Sandbox {
    /// The trusted setting for the current cartridge's programs: every
    /// syscall, a fuel cap. Kernel changes are still refused (only a kernel
    /// boot applies them).
    pub fn trusted(fuel: u64) -> Sandbox {
        Sandbox {
            allowed_syscalls: None,
            fuel,
            memory_words: Config::default().memory_words,
            writable_prefix: None,
            kernel_changes: false,
            lifted_by_request: false,
            caps: Caps::default(),
            llm_consent: false,
        }
    }

    /// The kernel stage of the current cartridge: trusted, and its kernel
    /// changes are applied after a clean boot.
    pub fn kernel(fuel: u64) -> Sandbox {
        Sandbox {
            kernel_changes: true,
            ..Sandbox::trusted(fuel)
        }
    }

    /// The setting for experimental cartridges: no kernel changes, writes only
    /// under `prefix`, a fuel cap and a smaller memory.
    pub fn experimental(fuel: u64, prefix: &str) -> Sandbox {
        Sandbox {
            allowed_syscalls: Some(SANDBOXED_SYSCALLS.into_iter().collect()),
            fuel,
            memory_words: 128 * 1024,
            writable_prefix: Some(prefix.to_string()),
            kernel_changes: false,
            lifted_by_request: false,
            caps: Caps::default(),
            llm_consent: false,
        }
    }

    /// A program that is not part of the current cartridge (`pxos run FILE`,
    /// `pxos debug`): no kernel changes, writes only under `prefix`, the
    /// machine's full memory.
    pub fn program(fuel: u64, prefix: &str) -> Sandbox {
        Sandbox {
            memory_words: Config::default().memory_words,
            ..Sandbox::experimental(fuel, prefix)
        }
    }

    /// `--trusted`: the sandbox lifted at a person's request.
    pub fn lifted(fuel: u64) -> Sandbox {
        Sandbox {
            lifted_by_request: true,
            ..Sandbox::trusted(fuel)
        }
    }

    /// A person's consent to this run asking the model: a sandbox that
    /// refuses LLM (every sandbox does) allows it.
    pub fn with_llm_consent(mut self) -> Sandbox {
        if let Some(allowed) = &mut self.allowed_syscalls {
            allowed.insert(syscall::LLM);
        }
        self.llm_consent = true;
        self
    }

    /// One line for records and reports.
    pub fn describe(&self) -> String {
        let mut text = match (&self.allowed_syscalls, &self.writable_prefix) {
            (None, None) => "trusted".to_string(),
            (Some(allowed), Some(prefix)) => format!(
                "sandboxed: {} syscalls allowed, writes confined to {prefix}",
                allowed.len()
            ),
            (Some(allowed), None) => format!("sandboxed: {} syscalls allowed", allowed.len()),
            (None, Some(prefix)) => format!("writes confined to {prefix}"),
        };
        if self.kernel_changes {
            text.push_str(", kernel changes applied after a clean boot");
        }
        if self.lifted_by_request {
            text.push_str(" (sandbox lifted by --trusted)");
        }
        if self.llm_consent && self.allowed_syscalls.is_some() {
            text.push_str(", model questions allowed by --allow-llm");
        }
        text
    }
}

/// Makes the model handle a run gets for SYS_LLM (the CLI supplies it; one
/// per run, all sharing one model and policy).
pub type ModelSource = std::rc::Rc<dyn Fn() -> Box<dyn pxos_vm::LanguageModel>>;

/// The answer of `run_program` (and of [`Execution::finish`]).
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub success: bool,
    pub output: Vec<String>,
    pub warnings: Vec<String>,
    /// The failed syscalls, typed (the warnings say the same for people).
    pub failures: Vec<pxos_vm::SyscallFailure>,
    /// What the run used of its caps (failures past the warning cap are counted here).
    pub usage: pxos_vm::Usage,
    pub cycles: u64,
    pub trap: Option<String>,
    pub trap_kind: Option<&'static str>,
    /// The id of the execution record (0 if it could not be written).
    pub log_id: u64,
    /// What the run was allowed (the record says the same).
    pub sandbox: String,
    #[serde(skip)]
    pub screen: Option<Screen>,
    /// A kernel change the program asked for (only when the sandbox applies them).
    #[serde(skip)]
    pub request: Option<KernelRequest>,
    /// Registers at the end.
    pub registers: [u32; 16],
    pub pc: u32,
}

/// What to run.
pub struct Launch<'a> {
    /// What ran, for the record (`default@1.0.0:boot/kernel.png`, a file path).
    pub name: String,
    pub image: &'a ProgramImage,
    /// Arguments, passed by the calling convention
    /// ([`pxos_vm::Machine::pass_arguments`]).
    pub args: &'a [String],
    pub sandbox: Sandbox,
    pub storage: Box<dyn Storage>,
    /// A screen to draw on (carried over between boot stages).
    pub screen: Option<Screen>,
    /// Called with each printed line as it happens.
    pub on_print: Option<pxos_vm::PrintHook>,
    /// The kernel versions VERSION_GET and VERSION_LIST report.
    pub kernel: Option<KernelInfo>,
    /// The interactive session (a shell's terminal and services).
    pub session: Option<Box<dyn pxos_vm::Session>>,
    /// The model SYS_LLM asks (the sandbox still decides whether it may).
    pub llm: Option<Box<dyn pxos_vm::LanguageModel>>,
}

/// What the version syscalls see.
#[derive(Clone, Debug, Default)]
pub struct KernelInfo {
    /// Every installed kernel version id.
    pub versions: Vec<u32>,
    /// The running kernel's id.
    pub current: u32,
}

impl<'a> Launch<'a> {
    /// A launch with no arguments, screen, print hook or kernel info.
    pub fn new(
        name: impl Into<String>,
        image: &'a ProgramImage,
        sandbox: Sandbox,
        storage: Box<dyn Storage>,
    ) -> Launch<'a> {
        Launch {
            name: name.into(),
            image,
            args: &[],
            sandbox,
            storage,
            screen: None,
            on_print: None,
            kernel: None,
            session: None,
            llm: None,
        }
    }
}

impl RunResult {
    /// The answer for a program that never started.
    pub fn not_run() -> RunResult {
        RunResult {
            success: false,
            output: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
            usage: pxos_vm::Usage::default(),
            cycles: 0,
            trap: Some("it did not start".into()),
            trap_kind: None,
            log_id: 0,
            sandbox: String::new(),
            screen: None,
            request: None,
            registers: [0; 16],
            pc: 0,
        }
    }
}

/// Runs programs and records every execution.
pub struct Hypervisor {
    log_path: PathBuf,
    messages: BTreeMap<u32, String>,
    console: Console,
    /// Seconds reported by TIME (fixed for a run).
    pub time: u64,
}

impl Hypervisor {
    /// A hypervisor appending its execution records to the segmented log in
    /// folder `log_path` (`run/executions`), printing `messages` with the
    /// built-in console font.
    pub fn new(log_path: &Path, messages: BTreeMap<u32, String>) -> Hypervisor {
        Hypervisor {
            log_path: log_path.to_path_buf(),
            messages,
            console: Console::default(),
            time: 0,
        }
    }

    /// Uses `console` (a world's own font) for printed text.
    pub fn with_console(mut self, console: Console) -> Hypervisor {
        self.console = console;
        self
    }

    /// The execution log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Starts an execution; nothing runs until [`Execution::run`] or
    /// [`Execution::step`]. A program that does not load is still an
    /// execution: it ends at once with a host trap, and is recorded.
    pub fn start(&self, launch: Launch<'_>) -> Execution<'_> {
        let Launch {
            name,
            image,
            args,
            sandbox,
            storage,
            screen,
            on_print,
            kernel,
            session,
            llm,
        } = launch;
        let config = Config {
            memory_words: sandbox.memory_words,
            ..Config::default()
        };
        let storage: Box<dyn Storage> = match &sandbox.writable_prefix {
            Some(prefix) => Box::new(Confined {
                inner: storage,
                prefix: prefix.clone(),
            }),
            None => storage,
        };
        let mut host = StdHost::new(storage);
        host.messages = self.messages.clone();
        host.allowed = sandbox.allowed_syscalls.clone();
        host.kernel_changes = sandbox.kernel_changes;
        host.caps = sandbox.caps;
        host.console = Some(self.console.clone());
        host.on_print = on_print;
        host.session = session;
        host.llm = llm;
        host.time = self.time;
        if let Some(kernel) = kernel {
            host.versions = kernel.versions;
            host.current_version = kernel.current;
        }
        let loaded =
            Machine::with_program(config, &image.words, image.entry).and_then(|mut machine| {
                machine.pass_arguments(args)?;
                Ok(machine)
            });
        let (machine, ended) = match loaded {
            Ok(mut machine) => {
                if let Some(screen) = screen
                    && screen.width() == machine.screen().width()
                    && screen.height() == machine.screen().height()
                {
                    *machine.screen_mut() = screen;
                }
                (Some(machine), None)
            }
            Err(err) => (
                None,
                Some(Err(Trap::Host {
                    pc: 0,
                    message: err.to_string(),
                })),
            ),
        };
        Execution {
            hypervisor: self,
            name,
            fuel_left: sandbox.fuel,
            sandbox,
            machine,
            host,
            ended,
            started: std::time::Instant::now(),
            record_id: None,
            program_sha256: pxos_pixel::Hash256::of(
                &image
                    .words
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        }
    }

    /// Runs `launch` to its end and records it. Never panics.
    pub fn run_program(&self, launch: Launch<'_>) -> RunResult {
        let mut execution = self.start(launch);
        let _ = execution.run();
        execution.finish()
    }

    /// Appends one execution record; returns its id (its record number
    /// from 1). Logging failures do not stop the program's answer: the id
    /// is then 0. The cost does not grow with the log.
    fn record(&self, line: serde_json::Value) -> u64 {
        let written = (|| -> Result<u64, pxos_fs::Error> {
            let parent = self.log_path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)
                .map_err(|err| pxos_fs::Error::from(err).with_path(parent))?;
            let _lock = pxos_fs::WriteLock::acquire(&self.log_path.with_extension("lock"))?;
            migrate_lines(&self.log_path)?;
            let log = SegLog::new(&self.log_path);
            let id = log.end()?.count + 1;
            let mut line = line;
            line["id"] = id.into();
            log.append(line.to_string().as_bytes())?;
            Ok(id)
        })();
        written.unwrap_or(0)
    }
}

/// One program run in progress. Dropping it unfinished still records it
/// (as abandoned).
pub struct Execution<'h> {
    hypervisor: &'h Hypervisor,
    name: String,
    sandbox: Sandbox,
    machine: Option<Machine>,
    host: StdHost,
    fuel_left: u64,
    ended: Option<Result<Exit, Trap>>,
    started: std::time::Instant,
    record_id: Option<u64>,
    program_sha256: pxos_pixel::Hash256,
}

impl Execution<'_> {
    /// The machine (`None` when the program did not load).
    pub fn machine(&self) -> Option<&Machine> {
        self.machine.as_ref()
    }

    /// What the program printed so far.
    pub fn output(&self) -> &[String] {
        &self.host.output
    }

    /// Warnings from failing syscalls so far.
    pub fn warnings(&self) -> &[String] {
        &self.host.warnings
    }

    /// How the run ended, once it has.
    pub fn ended(&self) -> Option<&Result<Exit, Trap>> {
        self.ended.as_ref()
    }

    /// The sandbox it runs under.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Executes one instruction. After the end it returns the end again.
    pub fn step(&mut self) -> Result<Exit, Trap> {
        self.advance(1)
    }

    /// Runs to HALT, a trap or the end of the fuel (resuming after yields).
    pub fn run(&mut self) -> Result<Exit, Trap> {
        loop {
            match self.advance(self.fuel_left) {
                Ok(Exit::Yielded { .. }) if self.ended.is_none() => {}
                other => return other,
            }
        }
    }

    fn advance(&mut self, budget: u64) -> Result<Exit, Trap> {
        if let Some(ended) = &self.ended {
            return ended.clone();
        }
        let Some(machine) = self.machine.as_mut() else {
            unreachable!("a machine that did not load has ended");
        };
        if self.fuel_left == 0 {
            let trap = Trap::FuelExhausted { pc: machine.pc };
            self.ended = Some(Err(trap.clone()));
            return Err(trap);
        }
        let budget = budget.min(self.fuel_left);
        let before = machine.cycles;
        let result = machine.run(&mut self.host, budget);
        self.fuel_left = self.fuel_left.saturating_sub(machine.cycles - before);
        match &result {
            Ok(Exit::Halted { .. }) => self.ended = Some(result.clone()),
            Err(Trap::FuelExhausted { .. }) if self.fuel_left > 0 => {
                // A step's own budget ran out, not the sandbox's: it can go on.
                return Ok(Exit::Yielded {
                    fuel_left: self.fuel_left,
                });
            }
            Err(_) => self.ended = Some(result.clone()),
            Ok(Exit::Yielded { .. }) => {}
        }
        result
    }

    /// Ends the execution (if it has not ended, it is recorded as abandoned)
    /// and appends its record.
    pub fn finish(mut self) -> RunResult {
        let id = self.write_record();
        let result = self.ended.clone();
        let machine = self.machine.take();
        let trap = match &result {
            Some(Err(trap)) => Some(trap.clone()),
            _ => None,
        };
        let success = matches!(result, Some(Ok(Exit::Halted { .. })));
        RunResult {
            success,
            output: std::mem::take(&mut self.host.output),
            warnings: std::mem::take(&mut self.host.warnings),
            failures: std::mem::take(&mut self.host.failures),
            usage: std::mem::take(&mut self.host.usage),
            cycles: machine.as_ref().map_or(0, |m| m.cycles),
            trap: match (&trap, &result) {
                (Some(trap), _) => Some(trap.to_string()),
                (None, None) => Some("abandoned before it ended".into()),
                _ => None,
            },
            trap_kind: trap.as_ref().map(Trap::kind),
            log_id: id,
            sandbox: self.sandbox.describe(),
            request: if success {
                self.host.request.take()
            } else {
                None
            },
            registers: machine.as_ref().map_or([0; 16], |m| m.regs),
            pc: machine.as_ref().map_or(0, |m| m.pc),
            screen: machine.map(|m| m.screen().clone()),
        }
    }

    fn write_record(&mut self) -> u64 {
        if let Some(id) = self.record_id {
            return id;
        }
        let (outcome, trap) = match &self.ended {
            Some(Ok(_)) => ("halted", None),
            Some(Err(trap)) => ("trapped", Some(trap.to_string())),
            None => ("abandoned", None),
        };
        let line = serde_json::json!({
            "time": pxos_fs::time::now_rfc3339(),
            "program": self.name,
            "program_sha256": self.program_sha256,
            "sandbox": self.sandbox.describe(),
            "trusted": self.sandbox.allowed_syscalls.is_none(),
            "lifted_by_trusted_flag": self.sandbox.lifted_by_request,
            "outcome": outcome,
            "success": matches!(self.ended, Some(Ok(Exit::Halted { .. }))),
            "trap": trap,
            "cycles": self.machine.as_ref().map_or(0, |m| m.cycles),
            "micros": self.started.elapsed().as_micros() as u64,
        });
        let id = self.hypervisor.record(line);
        self.record_id = Some(id);
        id
    }
}

impl Drop for Execution<'_> {
    fn drop(&mut self) {
        self.write_record();
    }
}

/// Storage whose writes are confined to a path prefix (the sandbox directory).
struct Confined {
    inner: Box<dyn Storage>,
    prefix: String,
}

impl Storage for Confined {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.read_file(path)
    }

    fn list_dir(&mut self, path: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list_dir(path)
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.check_write(path)?;
        self.inner.write_file(path, bytes)
    }

    fn check_write(&self, path: &str) -> Result<(), StorageError> {
        let inside = format!("{}/", self.prefix.trim_end_matches('/'));
        if !path.starts_with(&inside) || path.split('/').any(|c| c == ".." || c == ".") {
            return Err(StorageError::new(
                StorageErrorKind::Denied,
                format!("writes are confined to {} (sandbox)", self.prefix),
            ));
        }
        self.inner.check_write(path)
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, StorageError> {
        self.inner.module(id)
    }
}

/// Moves the JSON-lines execution log of pxOS 0.1 (`executions.log` beside
/// the folder) into the segmented log, once, keeping the old file under
/// `legacy/` (the caller holds the log's lock, `executions.lock`). Built in a staging folder
/// and renamed into place, so a crash leaves the old file or the new log.
fn migrate_lines(dir: &Path) -> Result<(), pxos_fs::Error> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let legacy = parent.join("executions.log");
    if !legacy.is_file() {
        return Ok(());
    }
    let log = SegLog::new(dir);
    if !log.exists() {
        let text = std::fs::read_to_string(&legacy)
            .map_err(|err| pxos_fs::Error::from(err).with_path(&legacy))?;
        let staging = parent.join(format!(
            "{}{}-executions",
            pxos_pixel::durable::TEMP_PREFIX,
            std::process::id()
        ));
        pxos_pixel::durable::remove_stale_temporaries_beside(&staging);
        let (temp, ()) = pxos_pixel::durable::Temporary::create(staging.clone(), |path| {
            std::fs::create_dir(path)
        })
        .map_err(|err| pxos_fs::Error::from(err).with_path(&staging))?;
        SegLog::new(&staging).create_from(
            &mut text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| line.as_bytes().to_vec()),
        )?;
        temp.persist(dir)
            .map_err(|err| pxos_fs::Error::from(err).with_path(dir))?;
        pxos_pixel::durable::sync_dir(parent)
            .map_err(|err| pxos_fs::Error::from(err).with_path(parent))?;
    }
    let kept = parent.join("legacy");
    std::fs::create_dir_all(&kept).map_err(|err| pxos_fs::Error::from(err).with_path(&kept))?;
    std::fs::rename(&legacy, kept.join("executions.log"))
        .map_err(|err| pxos_fs::Error::from(err).with_path(&legacy))?;
    pxos_pixel::durable::sync_dir(parent)
        .map_err(|err| pxos_fs::Error::from(err).with_path(parent))?;
    Ok(())
}
