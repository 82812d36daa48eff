//! The hypervisor: the one way programs run. `run_program` never panics and
//! always answers: success or not, output, cycles, trap, and the id of the
//! execution record it appended to the run log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use pxos_vm::{Config, Exit, Machine, ProgramImage, Screen, StdHost, Storage, Trap, isa::syscall};
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
}

impl Sandbox {
    /// The trusted setting for the current cartridge: every syscall, a fuel cap.
    pub fn trusted(fuel: u64) -> Sandbox {
        Sandbox {
            allowed_syscalls: None,
            fuel,
            memory_words: Config::default().memory_words,
            writable_prefix: None,
        }
    }

    /// The setting for experimental cartridges: no kernel changes, writes only
    /// under `prefix`, a fuel cap and a smaller memory.
    pub fn experimental(fuel: u64, prefix: &str) -> Sandbox {
        let allowed = [
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
        Sandbox {
            allowed_syscalls: Some(allowed.into_iter().collect()),
            fuel,
            memory_words: 128 * 1024,
            writable_prefix: Some(prefix.to_string()),
        }
    }
}

/// The answer of `run_program`.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub success: bool,
    pub output: Vec<String>,
    pub warnings: Vec<String>,
    pub cycles: u64,
    pub trap: Option<String>,
    pub trap_kind: Option<&'static str>,
    pub log_id: u64,
    #[serde(skip)]
    pub screen: Option<Screen>,
}

/// Runs programs and records every execution.
pub struct Hypervisor {
    log_path: PathBuf,
    messages: BTreeMap<u32, String>,
}

impl Hypervisor {
    /// A hypervisor appending its execution records to `log_path` (JSON lines).
    pub fn new(log_path: &Path, messages: BTreeMap<u32, String>) -> Hypervisor {
        Hypervisor {
            log_path: log_path.to_path_buf(),
            messages,
        }
    }

    /// Runs `image` with `args` in R1.. under `sandbox`, drawing on `screen`
    /// (carried over between boot stages). Never panics.
    pub fn run_program(
        &self,
        name: &str,
        image: &ProgramImage,
        args: &[u32],
        sandbox: &Sandbox,
        storage: Box<dyn Storage>,
        screen: Option<Screen>,
    ) -> RunResult {
        let config = Config {
            memory_words: sandbox.memory_words,
            ..Config::default()
        };
        let started = std::time::Instant::now();
        let (result, output, warnings, cycles, screen) =
            match Machine::with_program(config, &image.words, image.entry) {
                Err(err) => (
                    Err(Trap::Host {
                        pc: 0,
                        message: err.to_string(),
                    }),
                    Vec::new(),
                    Vec::new(),
                    0,
                    screen,
                ),
                Ok(mut machine) => {
                    if let Some(screen) = screen
                        && screen.width() == machine.screen().width()
                        && screen.height() == machine.screen().height()
                    {
                        *machine.screen_mut() = screen;
                    }
                    for (index, arg) in args.iter().take(15).enumerate() {
                        machine.regs[index + 1] = *arg;
                    }
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
                    let mut left = sandbox.fuel;
                    let result = loop {
                        match machine.run(&mut host, left) {
                            Ok(Exit::Yielded { fuel_left }) => left = fuel_left,
                            other => break other,
                        }
                    };
                    (
                        result,
                        host.output,
                        host.warnings,
                        machine.cycles,
                        Some(machine.screen().clone()),
                    )
                }
            };
        let log_id = self.record(name, &result, cycles, started.elapsed().as_micros());
        RunResult {
            success: result.is_ok(),
            output,
            warnings,
            cycles,
            trap: result.as_ref().err().map(ToString::to_string),
            trap_kind: result.as_ref().err().map(Trap::kind),
            log_id,
            screen,
        }
    }

    /// Appends one execution record; returns its id (a line number). Logging
    /// failures do not stop the program's answer: the id is then 0.
    fn record(&self, name: &str, result: &Result<Exit, Trap>, cycles: u64, micros: u128) -> u64 {
        let id = std::fs::read_to_string(&self.log_path)
            .map(|t| t.lines().count() as u64 + 1)
            .unwrap_or(1);
        let line = serde_json::json!({
            "id": id, "time": pxos_fs::time::now_rfc3339(), "program": name, "success": result.is_ok(),
            "trap": result.as_ref().err().map(ToString::to_string), "cycles": cycles, "micros": micros,
        });
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = self.log_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)?;
            writeln!(file, "{line}")
        })();
        if written.is_ok() { id } else { 0 }
    }
}

/// Storage whose writes are confined to a path prefix (the sandbox directory).
struct Confined {
    inner: Box<dyn Storage>,
    prefix: String,
}

impl Storage for Confined {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.inner.read_file(path)
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let inside = format!("{}/", self.prefix.trim_end_matches('/'));
        if !path.starts_with(&inside) || path.split('/').any(|c| c == "..") {
            return Err(format!("writes are confined to {} (sandbox)", self.prefix));
        }
        self.inner.write_file(path, bytes)
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, String> {
        self.inner.module(id)
    }
}
