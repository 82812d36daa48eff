//! The interactive shell: `pxos shell`, and `pxos boot` on a terminal.
//!
//! The shell is the world's shell stage (the stage marked `"shell": true` in
//! its boot sequence), a PXVM program of the cartridge. It reads lines with
//! READ_LINE and acts through syscalls; [`ShellSession`] is the host's side
//! of those syscalls: the terminal (a [`Terminal`] the CLI supplies), program
//! runs through the same placement as `pxos run NAME --cartridge C`, the
//! session's executions, the kernel store, the evolution log and the screen
//! file. The shell reads PixelFS and never writes it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use pxos_vm::{ChildRun, LineRead, Screen, Session, Storage, StorageError, StorageErrorKind};

use crate::boot::{HomeStores, Sequence, load_module, read_in, unpacked, world_hypervisor};
use crate::error::{Error, Result};
use crate::hypervisor::{Launch, RunResult, Sandbox};
use crate::storage::{CartridgeStorage, FsStorage};

/// Fuel for the shell itself: it spends none while it waits for a line.
pub const SHELL_FUEL: u64 = pxos_vm::MAX_FUEL;
/// Fuel for each program the shell runs (as `pxos run`'s default).
pub const PROGRAM_FUEL: u64 = 100_000_000;

/// Where the shell's lines come from and where `clear` clears: the person's
/// terminal (line editing and history are its business), or a script.
pub trait Terminal {
    /// Shows `prompt` and reads one line.
    fn read_line(&mut self, prompt: &str) -> LineRead;
    /// Clears the terminal.
    fn clear(&mut self);
}

/// What `pxos shell` asks for.
#[derive(Clone, Default)]
pub struct ShellRequest {
    /// `name` or `name@version`; the current cartridge when `None`.
    pub cartridge: Option<String>,
    /// The model `ask` and SYS_LLM reach, for the shell and each program it
    /// runs (their sandboxes still decide whether they may).
    pub llm: Option<crate::hypervisor::ModelSource>,
}

/// One execution of this session, for `ps`.
#[derive(Clone, Debug)]
struct SessionRun {
    record: u64,
    name: String,
    /// `trusted` or `sandboxed`.
    mode: &'static str,
    outcome: String,
}

/// What the session saw, shared between the host (inside the shell's
/// machine) and [`run_shell`].
#[derive(Debug, Default)]
struct Shared {
    prompts: u64,
    lines_read: u64,
    runs: Vec<SessionRun>,
}

/// How a shell session ended.
#[derive(Debug)]
pub struct ShellEnd {
    /// The shell's own execution.
    pub result: RunResult,
    /// The cartridge whose shell ran.
    pub cartridge: String,
    /// Times the shell asked for a line. A shell that never asked is not
    /// interactive (an older world's shell stage).
    pub prompts: u64,
    /// Lines it got.
    pub lines_read: u64,
    /// Programs it ran.
    pub programs_run: usize,
    /// Where the screen was saved.
    pub screen_file: PathBuf,
}

/// The host's side of the shell's session syscalls.
pub struct ShellSession {
    home: PathBuf,
    /// The cartridge id programs are looked up in.
    cartridge: String,
    /// Where it is unpacked.
    root: PathBuf,
    shell_name: String,
    /// How the shell runs: `trusted` or `sandboxed`.
    mode: &'static str,
    terminal: Box<dyn Terminal>,
    shared: Rc<RefCell<Shared>>,
    llm: Option<crate::hypervisor::ModelSource>,
}

fn storage_error(err: Error) -> StorageError {
    let kind = match err.kind() {
        pxos_pixel::ErrorKind::NotFound => StorageErrorKind::NotFound,
        pxos_pixel::ErrorKind::Usage | pxos_pixel::ErrorKind::BadInput => StorageErrorKind::Invalid,
        pxos_pixel::ErrorKind::Refused => StorageErrorKind::Denied,
        _ => StorageErrorKind::Io,
    };
    StorageError::new(kind, err.to_string())
}

/// The screen file of the running world.
pub fn screen_file(home: &Path) -> PathBuf {
    home.join("boot").join("screen.png")
}

impl ShellSession {
    fn executions(&self) -> String {
        let mut text = format!(
            "{:<6} {:<8} {:<10} {}\n",
            "RECORD", "STATUS", "MODE", "PROGRAM"
        );
        text.push_str(&format!(
            "{:<6} {:<8} {:<10} {} (this shell)\n",
            "-", "running", self.mode, self.shell_name
        ));
        for run in &self.shared.borrow().runs {
            text.push_str(&format!(
                "{:<6} {:<8} {:<10} {}\n",
                format!("#{}", run.record),
                if run.outcome.is_empty() {
                    "halted"
                } else {
                    "trapped"
                },
                run.mode,
                run.name,
            ));
            if !run.outcome.is_empty() {
                text.push_str(&format!("        {}\n", run.outcome));
            }
        }
        text
    }

    fn kernel(&self) -> Result<String> {
        let stores = HomeStores::open(&self.home)?;
        let state = stores.kernels.state()?;
        let mut text = match state.current_record() {
            Some(k) => format!(
                "running: kernel {} ({}, {}), {} bytes, sha256 {}...\n",
                k.id,
                k.version,
                k.status.name(),
                k.size,
                k.sha256.short()
            ),
            None => "running: no kernel in the kernel store (this world boots its own)\n".into(),
        };
        text.push_str("history:\n");
        for k in &state.kernels {
            text.push_str(&format!(
                "  kernel {:<3} {:<12} {:<10} {}{}\n",
                k.id,
                k.version,
                k.status.name(),
                k.date,
                k.failure
                    .as_deref()
                    .map_or(String::new(), |why| format!(" ({why})"))
            ));
        }
        Ok(text)
    }

    fn log(&self, count: u32) -> Result<String> {
        let log = pxos_cart::EvolutionLog::open(&self.home.join("log"))?;
        let end = log.end()?.count;
        let first = end.saturating_sub(u64::from(count.max(1)));
        let entries = log.entries_from(first)?;
        let skip = entries.len().saturating_sub(count as usize);
        let mut text = String::new();
        for entry in &entries[skip..] {
            text.push_str(&format!(
                "#{:<4} {} {} {} {} {}: {}\n",
                entry.seq,
                entry.time,
                entry.actor.kind.name(),
                entry.actor.name,
                entry.action.name(),
                entry
                    .action
                    .cartridge()
                    .map_or("-".to_string(), pxos_cart::CartRef::id),
                entry.reason
            ));
        }
        Ok(text)
    }
}

impl Session for ShellSession {
    fn read_line(&mut self, prompt: &str) -> LineRead {
        self.shared.borrow_mut().prompts += 1;
        let line = self.terminal.read_line(prompt);
        if let LineRead::Line(_) = line {
            self.shared.borrow_mut().lines_read += 1;
        }
        line
    }

    fn run(
        &mut self,
        argv: &[String],
        screen: &Screen,
    ) -> std::result::Result<ChildRun, StorageError> {
        let (name, args) = argv
            .split_first()
            .ok_or_else(|| StorageError::new(StorageErrorKind::Invalid, "no program name"))?;
        // The same placement as `pxos run NAME --cartridge C`: the current
        // cartridge's programs run trusted, any other's sandboxed.
        let (prepared, image) =
            crate::run::prepare_named(&self.home, name, Some(&self.cartridge), PROGRAM_FUEL)
                .map_err(storage_error)?;
        let mode = prepared.placement.mode;
        let program = prepared.name.clone();
        let (hypervisor, mut launch) = prepared.launch(&image, args);
        launch.screen = Some(screen.clone());
        launch.llm = self.llm.as_ref().map(|source| source());
        let result = hypervisor.run_program(launch);
        let outcome = if result.success {
            String::new()
        } else {
            result.trap.clone().unwrap_or_else(|| "it failed".into())
        };
        self.shared.borrow_mut().runs.push(SessionRun {
            record: result.log_id,
            name: std::iter::once(program)
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            mode,
            outcome,
        });
        Ok(ChildRun {
            trapped: !result.success,
            execution: result.log_id,
            output: result.output,
            screen: result.screen,
        })
    }

    fn info(&mut self, topic: u32, count: u32) -> std::result::Result<String, StorageError> {
        use pxos_vm::isa::syscall::info;
        match topic {
            info::EXECUTIONS => Ok(self.executions()),
            info::KERNEL => self.kernel().map_err(storage_error),
            info::LOG => self.log(count).map_err(storage_error),
            info::PROGRAMS => Ok(crate::run::program_names(&self.root)
                .iter()
                .map(|name| format!("{name}\n"))
                .collect()),
            other => Err(StorageError::new(
                StorageErrorKind::Invalid,
                format!("no INFO topic {other}"),
            )),
        }
    }

    fn save_screen(&mut self, screen: &Screen) -> std::result::Result<String, StorageError> {
        let path = screen_file(&self.home);
        save_screen_file(&path, screen).map_err(storage_error)?;
        Ok(path.display().to_string())
    }

    fn clear(&mut self) {
        self.terminal.clear();
    }
}

fn save_screen_file(path: &Path, screen: &Screen) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| Error::io(err, parent))?;
    }
    pxos_pixel::durable::write_atomic(
        path,
        &screen.to_png(),
        pxos_pixel::durable::label::BOOT_SCREEN,
    )
    .map_err(|err| Error::io(err, path))
}

/// Runs the shell of the current cartridge (or of `request.cartridge`, which
/// runs sandboxed when it is not current) until it halts, starting from the
/// running world's screen; saves the screen when it ends.
pub fn run_shell(
    home: &Path,
    request: &ShellRequest,
    terminal: Box<dyn Terminal>,
    on_print: Option<pxos_vm::PrintHook>,
) -> Result<ShellEnd> {
    let stores = HomeStores::open(home)?;
    let record = match &request.cartridge {
        Some(query) => stores.registry.find(query)?,
        None => stores.registry.current()?.ok_or_else(|| {
            Error::NotFound(
                "no world is installed yet: `pxos boot` installs the default world".into(),
            )
        })?,
    };
    let root = unpacked(home, &stores.registry.path_of(&record), &record.sha256)?;
    let sequence = Sequence::parse(&read_in(&root, "boot/sequence.json")?)?;
    let stage = sequence.shell_stage().ok_or_else(|| {
        Error::NotFound(format!(
            "{}'s boot sequence has no shell stage (a stage with \"shell\": true)",
            record.id
        ))
    })?;
    let image = load_module(&root, &stage.path)?;
    let mut hypervisor = world_hypervisor(home, &root)?;
    hypervisor.time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (sandbox, mode) = if record.status == pxos_cart::Status::Current {
        (Sandbox::trusted(SHELL_FUEL), "trusted")
    } else {
        let prefix = format!("/sandbox/{}", record.id);
        (Sandbox::experimental(SHELL_FUEL, &prefix), "sandboxed")
    };
    let fs = pxos_fs::PixelFs::open(&home.join("fs")).ok();
    let inner: Box<dyn Storage> = match fs {
        // The shell reads PixelFS; it writes nothing there.
        Some(fs) => Box::new(FsStorage::read_only(fs, home.join("tmp"))),
        None => Box::new(crate::storage::NoPixelFs),
    };
    let screen_path = screen_file(home);
    let mut screen = std::fs::read(&screen_path)
        .ok()
        .and_then(|bytes| Screen::from_png(&bytes).ok())
        .filter(|s| s.width() == 512 && s.height() == 512)
        .unwrap_or_else(|| Screen::new(512, 512).expect("a 512x512 screen is in range"));
    // Text goes on below what is there: the console scrolls first.
    screen.text_row = u32::MAX;
    let shared = Rc::new(RefCell::new(Shared::default()));
    let shell_name = format!("{}:{}", record.id, stage.path);
    let session = ShellSession {
        home: home.to_path_buf(),
        cartridge: record.id.clone(),
        root: root.clone(),
        shell_name: shell_name.clone(),
        mode,
        terminal,
        shared: shared.clone(),
        llm: request.llm.clone(),
    };
    let mut launch = Launch::new(
        shell_name,
        &image,
        sandbox,
        Box::new(CartridgeStorage::new(root.clone(), inner)),
    );
    launch.screen = Some(screen);
    launch.on_print = on_print;
    launch.session = Some(Box::new(session));
    launch.llm = request.llm.as_ref().map(|source| source());
    let result = hypervisor.run_program(launch);
    if let Some(screen) = &result.screen {
        save_screen_file(&screen_path, screen)?;
    }
    let shared = shared.borrow();
    Ok(ShellEnd {
        result,
        cartridge: record.id,
        prompts: shared.prompts,
        lines_read: shared.lines_read,
        programs_run: shared.runs.len(),
        screen_file: screen_path,
    })
}

#[cfg(test)]
mod tests {
    use pxos_test_support::Rng;
    use pxos_vm::{Config, Exit, Machine, StdHost, StorageError, asm};

    use super::*;

    /// Answers with random lines and random-sized texts.
    struct Chaos {
        rng: Rng,
        lines: usize,
    }

    impl Chaos {
        fn text(&mut self) -> String {
            let len = match self.rng.below(4) {
                0 => 0,
                1 => self.rng.below(40) as usize,
                2 => self.rng.below(5000) as usize,
                _ => self.rng.below(20_000) as usize,
            };
            let bytes: Vec<u8> = self
                .rng
                .bytes(len)
                .into_iter()
                .map(|b| if self.rng.below(8) == 0 { b'\n' } else { b })
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl Session for Chaos {
        fn read_line(&mut self, _prompt: &str) -> LineRead {
            if self.lines == 0 {
                return LineRead::End;
            }
            self.lines -= 1;
            let commands = [
                "help", "ls", "cat", "run", "ps", "kernel", "log", "screen", "clear", "programs",
                "exit",
            ];
            let line = match self.rng.below(4) {
                // A command with random words after it.
                0 | 1 => {
                    let mut line =
                        commands[self.rng.below(commands.len() as u64 - 1) as usize].to_string();
                    for _ in 0..self.rng.below(20) {
                        line.push(' ');
                        let word = self.text();
                        line.push_str(&word.replace(['\n', ' ', '\t', '\0'], "w"));
                    }
                    line
                }
                // Random bytes, any length.
                _ => self.text().replace('\n', " "),
            };
            LineRead::Line(line)
        }

        fn run(
            &mut self,
            argv: &[String],
            screen: &Screen,
        ) -> std::result::Result<ChildRun, StorageError> {
            assert!(!argv.is_empty() && argv.len() <= 16);
            if self.rng.below(3) == 0 {
                return Err(StorageError::new(
                    StorageErrorKind::NotFound,
                    "no such program",
                ));
            }
            Ok(ChildRun {
                trapped: self.rng.below(2) == 0,
                execution: self.rng.next_u64(),
                output: vec![self.text()],
                screen: Some(screen.clone()),
            })
        }

        fn info(&mut self, _topic: u32, _count: u32) -> std::result::Result<String, StorageError> {
            Ok(self.text())
        }

        fn save_screen(&mut self, _screen: &Screen) -> std::result::Result<String, StorageError> {
            Ok(self.text())
        }

        fn clear(&mut self) {}
    }

    /// The default world's shell never traps, whatever it reads and whatever
    /// its session answers, and ends at the end of input.
    #[test]
    fn the_default_shell_survives_any_input() {
        let source = crate::world::SOURCES
            .iter()
            .find(|(path, _)| *path == "boot/shell.pxasm")
            .unwrap()
            .1;
        let program = asm::assemble("shell", source).unwrap();
        for seed in 0..40 {
            let mut host = StdHost {
                session: Some(Box::new(Chaos {
                    rng: Rng::new(seed),
                    lines: 60,
                })),
                ..StdHost::default()
            };
            let mut machine =
                Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
            let exit = machine.run(&mut host, 500_000_000);
            assert!(
                matches!(exit, Ok(Exit::Halted { .. })),
                "seed {seed}: {exit:?} at pc {}",
                machine.pc
            );
        }
    }
}
