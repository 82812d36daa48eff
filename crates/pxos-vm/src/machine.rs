//! The fast interpreter.
//!
//! Memory is a flat array of 32-bit words (address = y * width + x of the
//! VRAM texture it maps onto). The low part is the code-and-data region; the
//! top `stack_words` words are the stack, which grows down and is never
//! executable. Code-region words are kept pre-decoded, and every store into
//! the code region re-decodes the words it touches, so self-modifying
//! programs see their own writes.

use crate::isa::{Instruction, Op};
use crate::screen::Screen;
use crate::trap::{Exit, Trap};

/// Machine parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Total memory in 32-bit words (default 512 * 512: one VRAM texture).
    pub memory_words: u32,
    /// Words at the top of memory reserved for the stack (default 16384).
    pub stack_words: u32,
    /// Screen width in pixels (default 512).
    pub screen_width: u32,
    /// Screen height in pixels (default 512).
    pub screen_height: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            memory_words: 512 * 512,
            stack_words: 16 * 1024,
            screen_width: 512,
            screen_height: 512,
        }
    }
}

/// Most memory a machine may have (64 Mi words = 256 MiB).
pub const MAX_MEMORY_WORDS: u32 = 64 << 20;

/// The flags set by `CMP`/`CMPI`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// Equal.
    pub z: bool,
    /// Signed less.
    pub l: bool,
    /// Unsigned below.
    pub b: bool,
}

impl Flags {
    /// The flags of comparing `x` with `y`.
    #[inline]
    pub fn compare(x: u32, y: u32) -> Flags {
        Flags {
            z: x == y,
            l: (x as i32) < (y as i32),
            b: x < y,
        }
    }
}

/// What the host does for `SYSCALL`.
pub trait Host {
    /// Handles syscall `number`. Arguments are in R1.., the result goes in R0.
    /// A failing syscall sets R0 to 0 and logs a warning; it does not trap.
    /// Return `true` to yield (stop `run` with [`Exit::Yielded`]).
    fn syscall(&mut self, number: u16, machine: &mut Machine) -> Result<bool, Trap>;
}

/// A host that knows no syscalls: every call returns 0 in R0.
#[derive(Debug, Default)]
pub struct NullHost {
    /// Syscall numbers that were called.
    pub calls: Vec<u16>,
}

impl Host for NullHost {
    fn syscall(&mut self, number: u16, machine: &mut Machine) -> Result<bool, Trap> {
        self.calls.push(number);
        machine.regs[0] = 0;
        Ok(false)
    }
}

/// A pre-decoded code word. `Code::Invalid` marks a word that is not an instruction.
///
/// Some common pairs are fused into one slot (a superinstruction): `ADDI`
/// followed by a register branch, and `CMPI` followed by a flag jump. A fused
/// slot does exactly what the two instructions do, counts as two
/// instructions, and falls back to the first one alone when only one unit of
/// fuel is left. The second instruction keeps its own plain slot, so jumps
/// into the middle of a pair behave as before.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    op: Code,
    a: u8,
    b: u8,
    c: u8,
    /// Registers of the fused branch.
    y: u8,
    z: u8,
    wide: u32,
}

impl Slot {
    /// Decodes the instruction at `words[0]`, fusing it with the next one when possible.
    fn decode(words: &[u32]) -> Slot {
        let Some(inst) = Instruction::decode(words) else {
            return Slot::default();
        };
        let mut slot = Slot {
            op: Code::of(inst.op),
            a: inst.a,
            b: inst.b,
            c: inst.c,
            y: 0,
            z: 0,
            wide: inst.wide,
        };
        if !matches!(inst.op, Op::ADDI | Op::CMPI) {
            return slot;
        }
        let Some(next) = words.get(1..).and_then(Instruction::decode) else {
            return slot;
        };
        let fused_op = match (inst.op, next.op) {
            (Op::ADDI, Op::BNE) => Code::AddiBne,
            (Op::ADDI, Op::BEQ) => Code::AddiBeq,
            (Op::ADDI, Op::BLT) => Code::AddiBlt,
            (Op::ADDI, Op::BGE) => Code::AddiBge,
            (Op::CMPI, Op::JZ) => Code::CmpiJz,
            (Op::CMPI, Op::JNZ) => Code::CmpiJnz,
            (Op::CMPI, Op::JLT) => Code::CmpiJlt,
            (Op::CMPI, Op::JGE) => Code::CmpiJge,
            (Op::CMPI, Op::JB) => Code::CmpiJb,
            (Op::CMPI, Op::JAE) => Code::CmpiJae,
            _ => return slot,
        };
        slot.op = fused_op;
        slot.y = next.a;
        slot.z = next.b;
        slot.wide = next.wide;
        slot
    }
}

/// The dense internal opcode of a decoded slot: `Invalid`, every ISA opcode
/// (generated from the one list in [`crate::isa`], so a new opcode without a
/// dispatch arm does not compile), then the fused pairs. A dense enum lets the
/// dispatch `match` compile to a jump table with no range check.
macro_rules! define_code {
    ($($name:ident),*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[repr(u8)]
        enum Code {
            #[default]
            Invalid,
            $($name,)*
            AddiBne,
            AddiBeq,
            AddiBlt,
            AddiBge,
            CmpiJz,
            CmpiJnz,
            CmpiJlt,
            CmpiJge,
            CmpiJb,
            CmpiJae,
        }

        impl Code {
            fn of(op: Op) -> Code {
                match op {
                    $(Op::$name => Code::$name,)*
                }
            }
        }
    };
}

crate::isa::for_each_opcode!(define_code);

/// Words a slot may look at: a one-word instruction fused with a two-word one.
const SLOT_WINDOW: usize = 3;

/// The PXVM machine state.
#[derive(Clone)]
pub struct Machine {
    /// R0..R15.
    pub regs: [u32; 16],
    /// Program counter (word address).
    pub pc: u32,
    /// Stack pointer (word address of the top item; `memory_words` when empty).
    pub sp: u32,
    /// Comparison flags.
    pub flags: Flags,
    /// Instructions executed since the machine was created.
    pub cycles: u64,
    memory: Vec<u32>,
    code: Vec<Slot>,
    screen: Screen,
    config: Config,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("regs", &self.regs)
            .field("pc", &self.pc)
            .field("sp", &self.sp)
            .field("flags", &self.flags)
            .field("cycles", &self.cycles)
            .finish_non_exhaustive()
    }
}

/// Why a program could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl LoadError {
    /// Who is at fault: the program (it does not fit) or its configuration.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        pxos_pixel::ErrorKind::BadInput
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

impl Machine {
    /// A machine with zeroed memory, registers and screen.
    pub fn new(config: Config) -> Result<Machine, LoadError> {
        if config.memory_words > MAX_MEMORY_WORDS || config.stack_words >= config.memory_words {
            return Err(LoadError(format!(
                "memory of {} words with a {}-word stack is not possible (at most {MAX_MEMORY_WORDS} words)",
                config.memory_words, config.stack_words
            )));
        }
        let code_words = (config.memory_words - config.stack_words) as usize;
        Ok(Machine {
            regs: [0; 16],
            pc: 0,
            sp: config.memory_words,
            flags: Flags::default(),
            cycles: 0,
            memory: vec![0; config.memory_words as usize],
            code: vec![Slot::default(); code_words],
            screen: Screen::new(config.screen_width, config.screen_height)
                .map_err(|err| LoadError(err.to_string()))?,
            config,
        })
    }

    /// A machine with `program` loaded at address 0 and PC at `entry`.
    pub fn with_program(config: Config, program: &[u32], entry: u32) -> Result<Machine, LoadError> {
        let mut machine = Machine::new(config)?;
        machine.load(0, program)?;
        machine.pc = entry;
        Ok(machine)
    }

    /// Passes `args` by the calling convention: R1 = their count, R2 = the
    /// address of argv (count words, each the address of a NUL-terminated
    /// UTF-8 string packed four bytes per word). The strings and argv sit at
    /// the top of memory, in the stack region, and SP starts below them. A
    /// program run without arguments gets R1 = 0 and R2 = SP.
    pub fn pass_arguments(&mut self, args: &[String]) -> Result<(), LoadError> {
        use crate::host::{MAX_ARG_BYTES, MAX_ARGS};
        let bytes: usize = args.iter().map(|arg| arg.len() + 1).sum();
        if args.len() > MAX_ARGS || bytes > MAX_ARG_BYTES {
            return Err(LoadError(format!(
                "{} arguments of {bytes} bytes with their NULs: a program takes at most {MAX_ARGS} arguments of {MAX_ARG_BYTES} bytes",
                args.len()
            )));
        }
        if let Some(arg) = args.iter().find(|arg| arg.contains('\0')) {
            return Err(LoadError(format!(
                "argument {arg:?} holds a NUL byte, which ends a PXVM string"
            )));
        }
        let words: usize = args
            .iter()
            .map(|arg| (arg.len() + 1).div_ceil(4))
            .sum::<usize>()
            + args.len();
        // The arguments take at most a quarter of the stack.
        if words > self.config.stack_words as usize / 4 {
            return Err(LoadError(format!(
                "the arguments take {words} words, more than a quarter of the {}-word stack",
                self.config.stack_words
            )));
        }
        let mut at = self.sp as usize;
        let mut addresses = Vec::with_capacity(args.len());
        for arg in args {
            let mut packed = arg.as_bytes().to_vec();
            packed.push(0);
            let count = packed.len().div_ceil(4);
            at -= count;
            for (index, chunk) in packed.chunks(4).enumerate() {
                let mut word = [0u8; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                self.memory[at + index] = u32::from_le_bytes(word);
            }
            addresses.push(at as u32);
        }
        at -= args.len();
        self.memory[at..at + args.len()].copy_from_slice(&addresses);
        self.sp = at as u32;
        self.regs[1] = args.len() as u32;
        self.regs[2] = at as u32;
        Ok(())
    }

    /// Copies `words` into the code region at `address`.
    pub fn load(&mut self, address: u32, words: &[u32]) -> Result<(), LoadError> {
        let end = address as usize + words.len();
        if end > self.code.len() {
            return Err(LoadError(format!(
                "program of {} words at {address} does not fit the {}-word code region",
                words.len(),
                self.code.len()
            )));
        }
        self.memory[address as usize..end].copy_from_slice(words);
        let from = (address as usize).saturating_sub(SLOT_WINDOW - 1);
        for at in from..end {
            self.code[at] = Slot::decode(&self.memory[at..self.code.len().min(at + SLOT_WINDOW)]);
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// All of memory.
    pub fn memory(&self) -> &[u32] {
        &self.memory
    }

    /// Words in the code region (below the stack).
    pub fn code_words(&self) -> u32 {
        self.code.len() as u32
    }

    /// The screen device.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The screen device, for hosts that draw.
    pub fn screen_mut(&mut self) -> &mut Screen {
        &mut self.screen
    }

    /// Memory as the VRAM texture it maps onto: a PNG `width` pixels wide
    /// (address = y * width + x), each word one pixel with R = its low byte (the
    /// opcode of an instruction). Alpha is shown opaque so code is visible.
    pub fn memory_png(&self, width: u32) -> Vec<u8> {
        let width = width.clamp(1, crate::screen::MAX_SCREEN_SIDE);
        let height = (self.memory.len() as u32).div_ceil(width).max(1);
        let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
        for index in 0..(width * height) as usize {
            let [r, g, b, _] = self.memory.get(index).copied().unwrap_or(0).to_le_bytes();
            rgba.extend_from_slice(&[r, g, b, 255]);
        }
        pxos_pixel::plain_png(width, height, pxos_pixel::PlainColor::Rgba, &rgba)
    }

    /// Reads a word, or `None` outside memory.
    pub fn read_word(&self, address: u32) -> Option<u32> {
        self.memory.get(address as usize).copied()
    }

    /// Writes a word (re-decoding code that it touches); `false` outside memory.
    pub fn write_word(&mut self, address: u32, value: u32) -> bool {
        let at = address as usize;
        if at >= self.memory.len() {
            return false;
        }
        self.memory[at] = value;
        if at < self.code.len() {
            self.redecode(at);
        }
        true
    }

    fn redecode(&mut self, at: usize) {
        redecode(&self.memory, &mut self.code, at);
    }

    /// Reads a NUL-terminated string packed four bytes per word (little-endian),
    /// at most `max` bytes. `None` when it runs off memory.
    pub fn read_string(&self, address: u32, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = address as usize;
        loop {
            let word = *self.memory.get(at)?;
            for byte in word.to_le_bytes() {
                if byte == 0 || out.len() >= max {
                    return Some(out);
                }
                out.push(byte);
            }
            at += 1;
        }
    }

    /// Runs until HALT, a yield, a trap, or `fuel` instructions. The trap, if
    /// any, leaves PC at the faulting instruction.
    pub fn run(&mut self, host: &mut dyn Host, fuel: u64) -> Result<Exit, Trap> {
        use Code::*;
        let mut regs = self.regs;
        let mut pc = self.pc as usize;
        let mut sp = self.sp as usize;
        let mut flags = self.flags;
        let mut left = fuel;
        let mut counted = fuel;
        // Work on local copies of the hot state so it stays in registers; the
        // vectors go back into `self` whenever the host or the caller looks.
        let mut memory = std::mem::take(&mut self.memory);
        let mut code = std::mem::take(&mut self.code);
        let stack_base = code.len();
        let memory_top = memory.len();
        macro_rules! save {
            () => {{
                self.regs = regs;
                self.pc = pc as u32;
                self.sp = sp as u32;
                self.flags = flags;
                self.cycles += counted - left;
                self.memory = std::mem::take(&mut memory);
                self.code = std::mem::take(&mut code);
            }};
        }
        macro_rules! trap {
            ($trap:expr) => {{
                save!();
                return Err($trap);
            }};
        }
        // ADDI then a register branch, as one slot.
        macro_rules! fused_addi {
            ($slot:ident, $a:ident, $b:ident, $taken:expr) => {{
                let slot = $slot;
                regs[$a] = regs[$b].wrapping_add(slot.c as i8 as u32);
                if left == 0 {
                    // Fuel for the ADDI only: the branch traps on the next round.
                    pc += 1;
                    continue;
                }
                left -= 1;
                let taken = $taken;
                pc = if taken(regs[slot.y as usize & 15], regs[slot.z as usize & 15]) {
                    slot.wide as usize
                } else {
                    pc + 3
                };
            }};
        }
        // CMPI then a flag jump, as one slot.
        macro_rules! fused_cmpi {
            ($slot:ident, $a:ident, $taken:expr) => {{
                let slot = $slot;
                let imm = (u16::from(slot.b) | u16::from(slot.c) << 8) as i16 as u32;
                flags = Flags::compare(regs[$a], imm);
                if left == 0 {
                    pc += 1;
                    continue;
                }
                left -= 1;
                let taken = $taken;
                pc = if taken(flags) {
                    slot.wide as usize
                } else {
                    pc + 3
                };
            }};
        }
        loop {
            if left == 0 {
                trap!(Trap::FuelExhausted { pc: pc as u32 });
            }
            let Some(&slot) = code.get(pc) else {
                trap!(Trap::PcOutOfBounds { pc: pc as u32 });
            };
            left -= 1;
            let (a, b, c) = (
                slot.a as usize & 15,
                slot.b as usize & 15,
                slot.c as usize & 15,
            );
            match slot.op {
                ADD => {
                    regs[a] = regs[b].wrapping_add(regs[c]);
                    pc += 1;
                }
                ADDI => {
                    regs[a] = regs[b].wrapping_add(slot.c as i8 as u32);
                    pc += 1;
                }
                SUB => {
                    regs[a] = regs[b].wrapping_sub(regs[c]);
                    pc += 1;
                }
                XOR => {
                    regs[a] = regs[b] ^ regs[c];
                    pc += 1;
                }
                BNE => {
                    pc = if regs[a] != regs[b] {
                        slot.wide as usize
                    } else {
                        pc + 2
                    };
                }
                BEQ => {
                    pc = if regs[a] == regs[b] {
                        slot.wide as usize
                    } else {
                        pc + 2
                    };
                }
                BLT => {
                    pc = if (regs[a] as i32) < (regs[b] as i32) {
                        slot.wide as usize
                    } else {
                        pc + 2
                    };
                }
                BGE => {
                    pc = if (regs[a] as i32) >= (regs[b] as i32) {
                        slot.wide as usize
                    } else {
                        pc + 2
                    };
                }
                MOV => {
                    regs[a] = regs[b];
                    pc += 1;
                }
                IMM32 => {
                    regs[a] = slot.wide;
                    pc += 2;
                }
                LI => {
                    regs[a] = (u16::from(slot.b) | u16::from(slot.c) << 8) as i16 as u32;
                    pc += 1;
                }
                MUL => {
                    regs[a] = regs[b].wrapping_mul(regs[c]);
                    pc += 1;
                }
                DIV | MOD | DIVS | MODS => {
                    let divisor = regs[c];
                    if divisor == 0 {
                        trap!(Trap::DivideByZero { pc: pc as u32 });
                    }
                    let x = regs[b];
                    regs[a] = match slot.op {
                        DIV => x / divisor,
                        MOD => x % divisor,
                        DIVS => (x as i32).wrapping_div(divisor as i32) as u32,
                        _ => (x as i32).wrapping_rem(divisor as i32) as u32,
                    };
                    pc += 1;
                }
                AND => {
                    regs[a] = regs[b] & regs[c];
                    pc += 1;
                }
                OR => {
                    regs[a] = regs[b] | regs[c];
                    pc += 1;
                }
                SHL => {
                    regs[a] = regs[b] << (regs[c] & 31);
                    pc += 1;
                }
                SHR => {
                    regs[a] = regs[b] >> (regs[c] & 31);
                    pc += 1;
                }
                SAR => {
                    regs[a] = ((regs[b] as i32) >> (regs[c] & 31)) as u32;
                    pc += 1;
                }
                NOT => {
                    regs[a] = !regs[b];
                    pc += 1;
                }
                NEG => {
                    regs[a] = regs[b].wrapping_neg();
                    pc += 1;
                }
                CMP => {
                    flags = Flags::compare(regs[a], regs[b]);
                    pc += 1;
                }
                CMPI => {
                    let imm = (u16::from(slot.b) | u16::from(slot.c) << 8) as i16 as u32;
                    flags = Flags::compare(regs[a], imm);
                    pc += 1;
                }
                JMP => pc = slot.wide as usize,
                JZ => pc = if flags.z { slot.wide as usize } else { pc + 2 },
                JNZ => pc = if !flags.z { slot.wide as usize } else { pc + 2 },
                JLT => pc = if flags.l { slot.wide as usize } else { pc + 2 },
                JGE => pc = if !flags.l { slot.wide as usize } else { pc + 2 },
                JB => pc = if flags.b { slot.wide as usize } else { pc + 2 },
                JAE => pc = if !flags.b { slot.wide as usize } else { pc + 2 },
                JMPR => pc = regs[a] as usize,
                CALL | CALLR => {
                    if sp <= stack_base {
                        trap!(Trap::StackOverflow { pc: pc as u32 });
                    }
                    let (target, next) = if slot.op == CALL {
                        (slot.wide as usize, pc + 2)
                    } else {
                        (regs[a] as usize, pc + 1)
                    };
                    sp -= 1;
                    memory[sp] = next as u32;
                    pc = target;
                }
                RET => {
                    if sp >= memory_top {
                        trap!(Trap::StackUnderflow { pc: pc as u32 });
                    }
                    pc = memory[sp] as usize;
                    sp += 1;
                }
                PUSH => {
                    if sp <= stack_base {
                        trap!(Trap::StackOverflow { pc: pc as u32 });
                    }
                    sp -= 1;
                    memory[sp] = regs[a];
                    pc += 1;
                }
                POP => {
                    if sp >= memory_top {
                        trap!(Trap::StackUnderflow { pc: pc as u32 });
                    }
                    regs[a] = memory[sp];
                    sp += 1;
                    pc += 1;
                }
                LOAD => {
                    let address = regs[b].wrapping_add(slot.c as i8 as u32) as usize;
                    match memory.get(address) {
                        Some(&value) => regs[a] = value,
                        None => trap!(Trap::MemoryOutOfBounds {
                            pc: pc as u32,
                            address: address as u32
                        }),
                    }
                    pc += 1;
                }
                STORE => {
                    let address = regs[b].wrapping_add(slot.c as i8 as u32) as usize;
                    if address >= memory_top {
                        trap!(Trap::MemoryOutOfBounds {
                            pc: pc as u32,
                            address: address as u32
                        });
                    }
                    memory[address] = regs[a];
                    if address < stack_base {
                        redecode(&memory, &mut code, address);
                    }
                    pc += 1;
                }
                PSET => {
                    if !self.screen.set(regs[b], regs[c], (regs[a] & 15) as u8) {
                        trap!(Trap::ScreenOutOfBounds {
                            pc: pc as u32,
                            x: regs[b],
                            y: regs[c]
                        });
                    }
                    pc += 1;
                }
                PGET => match self.screen.get(regs[b], regs[c]) {
                    Some(colour) => {
                        regs[a] = u32::from(colour);
                        pc += 1;
                    }
                    None => trap!(Trap::ScreenOutOfBounds {
                        pc: pc as u32,
                        x: regs[b],
                        y: regs[c]
                    }),
                },
                SYSCALL => {
                    let number = u16::from(slot.b) | u16::from(slot.c) << 8;
                    pc += 1;
                    save!();
                    counted = left;
                    let yielded = host.syscall(number, self);
                    memory = std::mem::take(&mut self.memory);
                    code = std::mem::take(&mut self.code);
                    let yielded = match yielded {
                        Ok(yielded) => yielded,
                        Err(trap) => {
                            self.memory = memory;
                            self.code = code;
                            return Err(trap);
                        }
                    };
                    // The host may have changed registers, memory or PC.
                    regs = self.regs;
                    pc = self.pc as usize;
                    sp = self.sp as usize;
                    flags = self.flags;
                    if yielded {
                        self.memory = memory;
                        self.code = code;
                        return Ok(Exit::Yielded { fuel_left: left });
                    }
                }
                Code::AddiBne => fused_addi!(slot, a, b, |x, y| x != y),
                Code::AddiBeq => fused_addi!(slot, a, b, |x, y| x == y),
                Code::AddiBlt => {
                    fused_addi!(slot, a, b, |x: u32, y: u32| (x as i32) < (y as i32))
                }
                Code::AddiBge => {
                    fused_addi!(slot, a, b, |x: u32, y: u32| (x as i32) >= (y as i32))
                }
                Code::CmpiJz => fused_cmpi!(slot, a, |f: Flags| f.z),
                Code::CmpiJnz => fused_cmpi!(slot, a, |f: Flags| !f.z),
                Code::CmpiJlt => fused_cmpi!(slot, a, |f: Flags| f.l),
                Code::CmpiJge => fused_cmpi!(slot, a, |f: Flags| !f.l),
                Code::CmpiJb => fused_cmpi!(slot, a, |f: Flags| f.b),
                Code::CmpiJae => fused_cmpi!(slot, a, |f: Flags| !f.b),
                NOP => pc += 1,
                HALT => {
                    save!();
                    return Ok(Exit::Halted { fuel_left: left });
                }
                Invalid => {
                    // Not an instruction: it does not count as executed.
                    left += 1;
                    let word = memory[pc];
                    trap!(Trap::InvalidInstruction {
                        pc: pc as u32,
                        word
                    });
                }
            }
        }
    }

    /// The current instruction, decoded (for debuggers).
    pub fn current_instruction(&self) -> Option<Instruction> {
        let at = self.pc as usize;
        if at >= self.code.len() {
            return None;
        }
        Instruction::decode(&self.memory[at..self.code.len().min(at + 2)])
    }

    /// Executes exactly one instruction.
    pub fn step(&mut self, host: &mut dyn Host) -> Result<Exit, Trap> {
        match self.run(host, 1) {
            Err(Trap::FuelExhausted { .. }) => Ok(Exit::Yielded { fuel_left: 0 }),
            other => other,
        }
    }
}

/// Re-decodes every slot whose window covers word `at` (which is in the code region).
#[inline]
fn redecode(memory: &[u32], code: &mut [Slot], at: usize) {
    let end = code.len();
    for slot in at.saturating_sub(SLOT_WINDOW - 1)..=at {
        code[slot] = Slot::decode(&memory[slot..end.min(slot + SLOT_WINDOW)]);
    }
}

/// The opcode of an instruction word (its red channel), if it is one.
pub fn opcode_of(word: u32) -> Option<Op> {
    Op::from_byte(word as u8)
}
