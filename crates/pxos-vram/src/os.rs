//! The VRAM OS machine: boots the kernel in the kernel region and lets it run
//! the processes of the process table (`docs/formats/vram-os.md`).
//!
//! The kernel is a PXVM program and makes every decision: which process runs
//! next, how long its slice is, what a syscall does (it looks the number up in
//! the syscall table and calls the handler the table names), and what happens
//! to a process that halts or traps. The machine does only what a program
//! cannot do to itself, as a CPU's task switch does: `RUN_SLICE` loads a
//! process's registers from its control block, runs it until its slice's fuel
//! runs out, it makes a syscall, halts or traps, and saves its registers back.
//! Everything lives in one address space, the VRAM, so every control block,
//! counter and stack is a pixel a viewer can watch.

use pxos_vm::isa::syscall::{self, error};
use pxos_vm::{Config, Exit, Host, Machine, StdHost, Trap};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::roadmap::{PROCESS_MAGIC, SYSCALL_MAGIC};
use crate::vram::{Region, Vram};

/// Word offsets in a process control block (one row of the process table).
pub mod pcb {
    pub const PID: u32 = 0;
    pub const ENTRY: u32 = 1;
    pub const STATE: u32 = 2;
    pub const NAME_LEN: u32 = 3;
    /// 16 words: up to 64 bytes of name.
    pub const NAME: u32 = 4;
    /// R0..R15.
    pub const REGS: u32 = 20;
    pub const PC: u32 = 36;
    pub const SP: u32 = 37;
    /// Bit 0 Z, bit 1 L, bit 2 B.
    pub const FLAGS: u32 = 38;
    /// Slices run (kept by the kernel).
    pub const SLICES: u32 = 39;
    /// Instructions executed (kept by the kernel).
    pub const INSTRUCTIONS: u32 = 40;
    /// Syscalls made (kept by the kernel).
    pub const SYSCALLS: u32 = 41;
    /// Written by `RUN_SLICE`: the syscall number, or the trap code.
    pub const EVENT: u32 = 42;
    /// The initial stack pointer.
    pub const STACK_TOP: u32 = 43;
    /// Words in a block: the process table needs a VRAM at least this wide.
    pub const WORDS: u32 = 44;
}

/// Process states (the `STATE` word).
pub mod state {
    pub const READY: u32 = 1;
    pub const RUNNING: u32 = 2;
    pub const EXITED: u32 = 3;
    pub const DEAD: u32 = 4;

    pub fn name(state: u32) -> &'static str {
        match state {
            READY => "ready",
            RUNNING => "running",
            EXITED => "exited",
            DEAD => "dead",
            _ => "unknown",
        }
    }
}

/// Why `RUN_SLICE` came back (R0; 0 means the call was refused and R1 holds the error code).
pub mod stop {
    pub const PREEMPTED: u32 = 1;
    pub const SYSCALL: u32 = 2;
    pub const HALTED: u32 = 3;
    pub const TRAPPED: u32 = 4;
}

/// Trap codes written to `EVENT` when a process traps: the index + 1 of its kind here.
pub const TRAP_KINDS: [&str; 10] = [
    "invalid-instruction",
    "pc-out-of-bounds",
    "memory-out-of-bounds",
    "screen-out-of-bounds",
    "divide-by-zero",
    "fuel-exhausted",
    "stack-overflow",
    "stack-underflow",
    "host",
    "cap-exceeded",
];

/// `EVENT` code for a control block whose stack pointer lies outside the stack.
pub const TRAP_BAD_STACK: u32 = 100;

/// Most instructions one slice may run.
pub const MAX_SLICE: u32 = 1_000_000;

/// Default instruction budget of `pxos vram run`.
pub const DEFAULT_STEPS: u64 = 1_000_000;

/// Words at the top of memory for stacks (the same rule as roadmap programs).
pub fn stack_words(memory_words: u32) -> u32 {
    (memory_words / 16).max(256)
}

/// The kernel's own stack: the top quarter of the stack area.
fn kernel_stack_words(memory_words: u32) -> u32 {
    stack_words(memory_words) / 4
}

/// Initial stack pointer of process `index` of `count`: the stack area below
/// the kernel's is shared out evenly.
pub fn process_stack_top(memory_words: u32, index: u32, count: u32) -> u32 {
    let kernel = kernel_stack_words(memory_words);
    let share = (stack_words(memory_words) - kernel) / count.max(1);
    memory_words - kernel - index * share
}

/// How the whole run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    /// The kernel executed HALT (in the default kernel: nothing is left to run).
    Halted,
    /// The instruction budget (`--steps`) was spent; the system was still running.
    BudgetSpent,
    /// The kernel itself trapped.
    KernelTrapped { trap: String },
}

/// One process after the run, as its control block says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    pub name: String,
    pub state: &'static str,
    pub slices: u32,
    pub instructions: u32,
    pub syscalls: u32,
    /// The trap, for a process that trapped.
    pub trap: Option<String>,
}

/// A line printed during the run, and which process asked for it (`None`: the kernel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Printed {
    pub pid: Option<u32>,
    pub text: String,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct OsRun {
    pub ending: Ending,
    /// Instructions executed, kernel and processes together.
    pub steps: u64,
    /// Slices run: each is a switch from the kernel into a process and back.
    pub switches: u64,
    pub processes: Vec<ProcessReport>,
    pub output: Vec<Printed>,
    /// Screen pixels that are not black.
    pub drawn: usize,
}

/// What the observer sees after each slice.
pub struct Slice<'a> {
    pub number: u64,
    pub pid: u32,
    pub stop: u32,
    pub machine: &'a Machine,
}

/// A booted VRAM OS: the machine (its memory is the VRAM) and where things are.
pub struct Os {
    pub machine: Machine,
    process_table: u32,
    syscall_table: u32,
    width: u32,
    process_rows: u32,
}

impl Os {
    /// Loads a VRAM image and places the kernel at the start of the kernel region.
    pub fn boot(vram: &Vram) -> Result<Os> {
        let words = vram.as_words();
        let memory_words = words.len() as u32;
        let config = Config {
            memory_words,
            stack_words: stack_words(memory_words),
            screen_width: 512,
            screen_height: 512,
        };
        let mut machine = Machine::new(config).map_err(|err| Error::bad_input(err.to_string()))?;
        let code = machine.code_words() as usize;
        machine
            .load(0, &words[..code])
            .map_err(|err| Error::bad_input(err.to_string()))?;
        for (at, word) in words.iter().enumerate().skip(code) {
            machine.write_word(at as u32, *word);
        }
        let process_table = vram.region_address(Region::ProcessTable);
        let syscall_table = vram.region_address(Region::SyscallTable);
        if words[process_table as usize] != PROCESS_MAGIC {
            return Err(Error::bad_input(
                "no process table (PROC) in the process_table region: build the OS with a write_process_table step",
            ));
        }
        if words[syscall_table as usize] != SYSCALL_MAGIC {
            return Err(Error::bad_input(
                "no syscall table (SYSC) in the syscall_table region: build the OS with a write_syscall_table step",
            ));
        }
        let (start, end) = crate::vram::region_rows(Region::ProcessTable, vram.height());
        machine.pc = vram.region_address(Region::Kernel);
        machine.regs[1] = process_table;
        machine.regs[2] = syscall_table;
        machine.regs[3] = vram.width();
        Ok(Os {
            machine,
            process_table,
            syscall_table,
            width: vram.width(),
            process_rows: end - start,
        })
    }

    /// The syscall table's address.
    pub fn syscall_table(&self) -> u32 {
        self.syscall_table
    }

    /// Runs the kernel until it halts, traps, or `steps` instructions have run.
    pub fn run(&mut self, steps: u64, observer: &mut dyn FnMut(&Slice<'_>)) -> OsRun {
        let mut host = OsHost {
            std: StdHost::default(),
            steps,
            budget_spent: false,
            switches: 0,
            current: None,
            output: Vec::new(),
            traps: Vec::new(),
            process_table: self.process_table,
            width: self.width,
            process_rows: self.process_rows,
            observer,
        };
        host.std.console = None;
        let ending = loop {
            let left = steps.saturating_sub(self.machine.cycles);
            if left == 0 || host.budget_spent {
                break Ending::BudgetSpent;
            }
            match self.machine.run(&mut host, left) {
                Ok(Exit::Halted { .. }) => break Ending::Halted,
                Ok(Exit::Yielded { .. }) | Err(Trap::FuelExhausted { .. }) => continue,
                Err(trap) => {
                    break Ending::KernelTrapped {
                        trap: trap.to_string(),
                    };
                }
            }
        };
        let switches = host.switches;
        let mut output = std::mem::take(&mut host.output);
        host.collect_output(&mut output, None);
        let traps = std::mem::take(&mut host.traps);
        let drawn = self
            .machine
            .screen()
            .pixels()
            .iter()
            .filter(|&&p| p != 0)
            .count();
        OsRun {
            ending,
            steps: self.machine.cycles,
            switches,
            processes: self.processes(&traps),
            output,
            drawn,
        }
    }

    /// The process table as the control blocks say now.
    pub fn processes(&self, traps: &[(u32, String)]) -> Vec<ProcessReport> {
        let memory = self.machine.memory();
        let count =
            memory[self.process_table as usize + 1].min(self.process_rows.saturating_sub(1));
        (0..count)
            .map(|index| {
                let base = (self.process_table + (index + 1) * self.width) as usize;
                let word = |offset: u32| memory.get(base + offset as usize).copied().unwrap_or(0);
                let name_len = word(pcb::NAME_LEN).min(64) as usize;
                let name: Vec<u8> = (0..16)
                    .flat_map(|i| word(pcb::NAME + i).to_le_bytes())
                    .take(name_len)
                    .collect();
                let pid = word(pcb::PID);
                ProcessReport {
                    pid,
                    name: String::from_utf8_lossy(&name).into_owned(),
                    state: state::name(word(pcb::STATE)),
                    slices: word(pcb::SLICES),
                    instructions: word(pcb::INSTRUCTIONS),
                    syscalls: word(pcb::SYSCALLS),
                    trap: traps
                        .iter()
                        .rev()
                        .find(|(p, _)| *p == pid)
                        .map(|(_, t)| t.clone()),
                }
            })
            .collect()
    }

    /// The VRAM after the run: memory back into the texture, changed pixels
    /// credited to `writer`.
    pub fn write_back(&self, vram: &mut Vram, writer: &str) {
        vram.begin(writer, "run");
        let memory = self.machine.memory();
        let width = vram.width();
        for (index, word) in memory.iter().enumerate() {
            let (x, y) = (index as u32 % width, index as u32 / width);
            let rgba = word.to_le_bytes();
            if vram.pixel(x, y) != Some(rgba) {
                vram.write_pixel(x, y, rgba);
            }
        }
    }
}

/// Runs the OS in `vram` for at most `steps` instructions.
pub fn run(vram: &Vram, steps: u64) -> Result<OsRun> {
    Ok(Os::boot(vram)?.run(steps, &mut |_| {}))
}

/// The machine under the kernel: the standard devices (PRINT, RECT, ...) and `RUN_SLICE`.
struct OsHost<'o> {
    std: StdHost,
    steps: u64,
    budget_spent: bool,
    switches: u64,
    /// The pid of the process whose slice ran last (output is credited to it).
    current: Option<u32>,
    output: Vec<Printed>,
    traps: Vec<(u32, String)>,
    process_table: u32,
    width: u32,
    process_rows: u32,
    observer: &'o mut dyn FnMut(&Slice<'_>),
}

/// The host a process sees: every syscall goes back to the kernel.
struct ProcessHost {
    call: Option<u16>,
}

impl Host for ProcessHost {
    fn syscall(&mut self, number: u16, _machine: &mut Machine) -> std::result::Result<bool, Trap> {
        self.call = Some(number);
        Ok(true)
    }
}

impl OsHost<'_> {
    fn collect_output(&mut self, into: &mut Vec<Printed>, pid: Option<u32>) {
        for text in self.std.output.drain(..) {
            into.push(Printed { pid, text });
        }
    }

    fn refuse(machine: &mut Machine, code: u32) {
        machine.regs[0] = 0;
        machine.regs[1] = code;
    }

    fn run_slice(&mut self, machine: &mut Machine) -> std::result::Result<bool, Trap> {
        let block = machine.regs[1];
        let wanted = machine.regs[2];
        // A control block is a row of the process table below its header row.
        let first = self.process_table + self.width;
        let last = self.process_table + self.process_rows * self.width;
        if block < first
            || block >= last
            || !(block - self.process_table).is_multiple_of(self.width)
            || wanted == 0
        {
            Self::refuse(machine, error::INVALID);
            return Ok(false);
        }
        let left = self.steps.saturating_sub(machine.cycles);
        if left == 0 {
            self.budget_spent = true;
            Self::refuse(machine, error::TOO_LARGE);
            return Ok(true);
        }
        let read = |machine: &Machine, offset: u32| machine.read_word(block + offset).unwrap_or(0);
        if read(machine, pcb::STATE) != state::READY {
            Self::refuse(machine, error::INVALID);
            return Ok(false);
        }
        let pid = read(machine, pcb::PID);
        let kernel = (machine.regs, machine.pc, machine.sp, machine.flags);
        let mut regs = [0u32; 16];
        for (i, reg) in regs.iter_mut().enumerate() {
            *reg = read(machine, pcb::REGS + i as u32);
        }
        let pc = read(machine, pcb::PC);
        let sp = read(machine, pcb::SP);
        let flags = read(machine, pcb::FLAGS);
        self.switches += 1;
        self.current = Some(pid);
        machine.write_word(block + pcb::STATE, state::RUNNING);
        let stack_base = machine.code_words();
        let memory_words = machine.config().memory_words;
        let (stop, event, ran) = if sp < stack_base || sp > memory_words {
            self.traps.push((
                pid,
                format!("stack pointer {sp} is outside the stack ({stack_base}..={memory_words})"),
            ));
            (stop::TRAPPED, TRAP_BAD_STACK, 0)
        } else {
            machine.regs = regs;
            machine.pc = pc;
            machine.sp = sp;
            machine.flags = pxos_vm::Flags {
                z: flags & 1 != 0,
                l: flags & 2 != 0,
                b: flags & 4 != 0,
            };
            let fuel = u64::from(wanted.min(MAX_SLICE)).min(left);
            let mut process = ProcessHost { call: None };
            let before = machine.cycles;
            let result = machine.run(&mut process, fuel);
            let ran = machine.cycles - before;
            let (stop, event) = match result {
                Ok(Exit::Halted { .. }) => (stop::HALTED, 0),
                Ok(Exit::Yielded { .. }) => (stop::SYSCALL, u32::from(process.call.unwrap_or(0))),
                Err(Trap::FuelExhausted { .. }) => (stop::PREEMPTED, 0),
                Err(trap) => {
                    let code = TRAP_KINDS
                        .iter()
                        .position(|k| *k == trap.kind())
                        .map_or(0, |i| i as u32 + 1);
                    self.traps.push((pid, trap.to_string()));
                    (stop::TRAPPED, code)
                }
            };
            // Save the process's registers into its control block.
            let saved = (machine.regs, machine.pc, machine.sp, machine.flags);
            for (i, reg) in saved.0.iter().enumerate() {
                machine.write_word(block + pcb::REGS + i as u32, *reg);
            }
            machine.write_word(block + pcb::PC, saved.1);
            machine.write_word(block + pcb::SP, saved.2);
            machine.write_word(
                block + pcb::FLAGS,
                u32::from(saved.3.z) | u32::from(saved.3.l) << 1 | u32::from(saved.3.b) << 2,
            );
            (stop, event, ran)
        };
        machine.write_word(block + pcb::STATE, state::READY);
        machine.write_word(block + pcb::EVENT, event);
        (machine.regs, machine.pc, machine.sp, machine.flags) = kernel;
        machine.regs[0] = stop;
        machine.regs[1] = ran as u32;
        (self.observer)(&Slice {
            number: self.switches,
            pid,
            stop,
            machine,
        });
        Ok(false)
    }
}

impl Host for OsHost<'_> {
    fn syscall(&mut self, number: u16, machine: &mut Machine) -> std::result::Result<bool, Trap> {
        if number == syscall::RUN_SLICE {
            return self.run_slice(machine);
        }
        // A device call from the kernel, on behalf of the process that ran last.
        let yielded = self.std.syscall(number, machine)?;
        let mut output = std::mem::take(&mut self.output);
        self.collect_output(&mut output, self.current);
        self.output = output;
        Ok(yielded)
    }
}
