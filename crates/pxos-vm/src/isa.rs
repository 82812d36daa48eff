//! The PXVM instruction set: one enum, explicit opcode numbers.
//!
//! Every instruction is one 32-bit word stored as one RGBA pixel: the opcode
//! in R, operands `a`, `b`, `c` in G, B and A (`word = R | G << 8 | B << 16 |
//! A << 24`). Instructions with a wide operand (an address or a 32-bit
//! immediate) take a second word. Opcode numbers are spread over the red
//! channel so each opcode has a visibly different colour; opcode 0 is not an
//! instruction, so executing zeroed memory traps instead of sliding along.
//!
//! Registers are `R0`..`R15` (R0 receives syscall results), plus PC, SP and
//! the flags Z (equal), L (signed less) and B (unsigned below) set by `CMP`.

/// How an instruction's operands are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No operands: `HALT`.
    None,
    /// One register in `a`: `PUSH R1`.
    R,
    /// Two registers in `a`, `b`: `MOV R1, R2`.
    RR,
    /// Three registers in `a`, `b`, `c`: `ADD R1, R2, R3`.
    RRR,
    /// Two registers and a signed 8-bit immediate in `c`: `ADDI R1, R2, -1`.
    RRI8,
    /// A register and a signed 16-bit immediate in `b | c << 8`: `LI R1, -300`.
    RI16,
    /// An unsigned 16-bit immediate in `b | c << 8`: `SYSCALL 99`.
    U16,
    /// A register and a 32-bit second word: `IMM32 R1, 301`.
    RW,
    /// A 32-bit second word (an address): `JMP label`.
    W,
    /// Two registers and an address word: `BEQ R1, R2, label`.
    RRW,
}

impl Format {
    /// Words the instruction occupies.
    pub fn words(self) -> usize {
        match self {
            Format::RW | Format::W | Format::RRW => 2,
            _ => 1,
        }
    }
}

macro_rules! isa {
    ($d:tt $($(#[doc = $doc:literal])+ $name:ident = $code:literal, $format:ident;)*) => {
        /// Calls `$callback! { NAME, ... }` with every opcode name, so other
        /// tables (the interpreter's dispatch enum) derive from this one list.
        macro_rules! for_each_opcode {
            ($d callback:ident) => {
                $d callback! { $($name),* }
            };
        }
        pub(crate) use for_each_opcode;

        /// A PXVM opcode. The discriminant is the opcode byte (the pixel's red channel).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Op {
            $($(#[doc = $doc])+ $name = $code,)*
        }

        impl Op {
            /// Every opcode, in numeric order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];

            /// The opcode with byte `code`, if any.
            #[inline]
            pub fn from_byte(code: u8) -> Option<Op> {
                match code {
                    $($code => Some(Op::$name),)*
                    _ => None,
                }
            }

            /// The assembler mnemonic.
            pub fn mnemonic(self) -> &'static str {
                match self {
                    $(Op::$name => stringify!($name),)*
                }
            }

            /// The opcode for a mnemonic (case-insensitive).
            pub fn from_mnemonic(text: &str) -> Option<Op> {
                $(if text.eq_ignore_ascii_case(stringify!($name)) { return Some(Op::$name); })*
                None
            }

            /// The operand layout.
            pub fn format(self) -> Format {
                match self {
                    $(Op::$name => Format::$format,)*
                }
            }

            /// One-line documentation.
            pub fn doc(self) -> &'static str {
                match self {
                    $(Op::$name => concat!($($doc),+),)*
                }
            }
        }
    };
}

isa! {
    $
    /// Stop the machine normally.
    HALT = 6, None;
    /// Do nothing.
    NOP = 12, None;
    /// `rd = rs`.
    MOV = 18, RR;
    /// `rd = imm32` (the second word).
    IMM32 = 24, RW;
    /// `rd = sign_extend(imm16)`.
    LI = 30, RI16;
    /// `rd = rs + rt` (wrapping).
    ADD = 36, RRR;
    /// `rd = rs - rt` (wrapping).
    SUB = 42, RRR;
    /// `rd = rs * rt` (wrapping).
    MUL = 48, RRR;
    /// `rd = rs / rt` (unsigned; traps when rt is 0).
    DIV = 54, RRR;
    /// `rd = rs % rt` (unsigned; traps when rt is 0).
    MOD = 60, RRR;
    /// `rd = rs / rt` (signed, wrapping; traps when rt is 0).
    DIVS = 66, RRR;
    /// `rd = rs % rt` (signed, wrapping; traps when rt is 0).
    MODS = 72, RRR;
    /// `rd = rs & rt`.
    AND = 78, RRR;
    /// `rd = rs | rt`.
    OR = 84, RRR;
    /// `rd = rs ^ rt`.
    XOR = 90, RRR;
    /// `rd = rs << (rt & 31)`.
    SHL = 96, RRR;
    /// `rd = rs >> (rt & 31)` (logical).
    SHR = 102, RRR;
    /// `rd = rs >> (rt & 31)` (arithmetic).
    SAR = 108, RRR;
    /// `rd = !rs` (bitwise).
    NOT = 114, RR;
    /// `rd = -rs` (wrapping).
    NEG = 120, RR;
    /// `rd = rs + sign_extend(imm8)` (wrapping).
    ADDI = 126, RRI8;
    /// Compare `rs` with `rt`: sets Z (equal), L (signed less), B (unsigned below).
    CMP = 132, RR;
    /// Compare `rs` with `sign_extend(imm16)`: sets Z, L, B.
    CMPI = 138, RI16;
    /// Jump to the address word.
    JMP = 144, W;
    /// Jump if Z (equal).
    JZ = 150, W;
    /// Jump if not Z (not equal).
    JNZ = 156, W;
    /// Jump if L (signed less).
    JLT = 162, W;
    /// Jump if not L (signed greater or equal).
    JGE = 168, W;
    /// Jump if B (unsigned below).
    JB = 174, W;
    /// Jump if not B (unsigned above or equal).
    JAE = 180, W;
    /// Jump to the address in `rs`.
    JMPR = 186, R;
    /// Branch to the address word if `rs == rt`.
    BEQ = 192, RRW;
    /// Branch to the address word if `rs != rt`.
    BNE = 198, RRW;
    /// Branch to the address word if `rs < rt` (signed).
    BLT = 204, RRW;
    /// Branch to the address word if `rs >= rt` (signed).
    BGE = 210, RRW;
    /// Push PC+2 and jump to the address word.
    CALL = 216, W;
    /// Push PC+1 and jump to the address in `rs`.
    CALLR = 219, R;
    /// Pop the return address and jump to it.
    RET = 222, None;
    /// Push `rs` (SP decreases by one word).
    PUSH = 225, R;
    /// Pop into `rd`.
    POP = 228, R;
    /// `rd = memory[rs + sign_extend(imm8)]`.
    LOAD = 234, RRI8;
    /// `memory[rs + sign_extend(imm8)] = rd` (operand order: value, base, offset).
    STORE = 240, RRI8;
    /// Set screen pixel (`rs`, `rt`) to colour `rd & 15` (operand order: colour, x, y).
    PSET = 246, RRR;
    /// `rd` = colour index of screen pixel (`rs`, `rt`).
    PGET = 249, RRR;
    /// Call the host with syscall number imm16 (arguments in R1.., result in R0).
    SYSCALL = 252, U16;
}

/// Syscall numbers (kept from the seeds where the seeds had them).
pub mod syscall {
    /// Print a message: R1 = message id (R2 = 0) or string address (R2 = 1).
    pub const PRINT: u16 = 1;
    /// Fill a rectangle: R1 = x, R2 = y, R3 = width, R4 = height, R5 = colour.
    pub const RECT: u16 = 2;
    /// R0 = id of the running kernel version (0 when none).
    pub const VERSION_GET: u16 = 30;
    /// Write version ids to memory at R1 (at most R2 of them); R0 = count written.
    pub const VERSION_LIST: u16 = 31;
    /// Stage a switch to kernel version id R1, applied after HALT; R0 = 1 or 0.
    pub const VERSION_SWITCH: u16 = 32;
    /// Load a module by file id R1 into memory at R2 (at most R3 words); R0 = words or 0.
    pub const BLOB: u16 = 40;
    /// Read the file whose path string is at R1 into memory at R2 (at most R3 bytes); R0 = bytes.
    pub const FILE_READ: u16 = 41;
    /// Write R3 bytes from memory at R2 to the file whose path string is at R1; R0 = 1 or 0.
    pub const FILE_WRITE: u16 = 42;
    /// R0, R1 = instructions executed so far (low, high word).
    pub const CYCLES: u16 = 50;
    /// R0 = seconds since the Unix epoch (as the host tells it).
    pub const TIME: u16 = 51;
    /// Return control to the host; the machine can be resumed.
    pub const YIELD: u16 = 52;
    /// The VRAM OS machine only: run the process whose control block is at R1
    /// for at most R2 instructions, saving its registers in the block; R0 = why
    /// it stopped (1 preempted, 2 syscall, 3 halted, 4 trapped), R1 = instructions.
    pub const RUN_SLICE: u16 = 60;
    /// Read one line from the person at the terminal: show the prompt string
    /// at R1, store the line (without its newline) NUL-terminated at R2, at
    /// most R3 bytes with the NUL; R0 = 1 and R1 = its length in bytes.
    pub const READ_LINE: u16 = 70;
    /// List the PixelFS directory whose path string is at R1 into memory at
    /// R2 (at most R3 bytes): one entry per line, directories ending in `/`,
    /// NUL-terminated; R0 = 1, R1 = bytes, R2 = entries that did not fit.
    pub const LIST_DIR: u16 = 71;
    /// Run program argv[0] of the running world with its arguments: R1 =
    /// address of argv (R2 words, each the address of a string); its output
    /// is printed; R0 = 1, R1 = 0 when it halted or 1 when it trapped, R2 =
    /// its execution record.
    pub const RUN: u16 = 72;
    /// Text about the running system into memory at R3 (at most R4 bytes,
    /// NUL-terminated): R1 = 1 the executions of this session, 2 the kernel
    /// and its history, 3 the last R2 evolution log entries, 4 the world's
    /// programs; R0 = 1, R1 = bytes, R2 = lines left out (the oldest).
    pub const INFO: u16 = 73;
    /// Save the screen as a PNG in the home; its path goes to memory at R1
    /// (at most R2 bytes, NUL-terminated); R0 = 1, R1 = bytes.
    pub const SCREEN_SAVE: u16 = 74;
    /// Clear the console text area and the terminal; the next line prints at
    /// the top.
    pub const CLEAR: u16 = 75;
    /// Ask the configured model: the prompt string at R1, the answer into
    /// memory at R2 (at most R3 bytes, NUL-terminated; a longer answer is
    /// cut at a character boundary); R0 = 1, R1 = bytes, R2 = 1 when cut.
    /// `DENIED` when the sandbox or the model policy refuses, `UNSUPPORTED`
    /// when no model is reachable from this run.
    pub const LLM: u16 = 76;
    /// Stage a replacement kernel from file id R1, applied after HALT; R0 = 1 or 0.
    pub const SELF_MODIFY: u16 = 99;

    /// The topics of INFO (its R1).
    pub mod info {
        /// The executions of this session: the shell, and what it ran.
        pub const EXECUTIONS: u32 = 1;
        /// The running kernel and the kernel store's history.
        pub const KERNEL: u32 = 2;
        /// The last R2 entries of the evolution log.
        pub const LOG: u32 = 3;
        /// The programs of the running world (`run NAME` takes these).
        pub const PROGRAMS: u32 = 4;
    }

    /// Every syscall: (number, name, description).
    pub const ALL: &[(u16, &str, &str)] = &[
        (
            PRINT,
            "PRINT",
            "print message id R1 (R2 = 0) or the string at address R1 (R2 = 1)",
        ),
        (
            RECT,
            "RECT",
            "fill rectangle x=R1 y=R2 w=R3 h=R4 with colour R5",
        ),
        (
            VERSION_GET,
            "VERSION_GET",
            "R0 = id of the running kernel version",
        ),
        (
            VERSION_LIST,
            "VERSION_LIST",
            "write up to R2 version ids at address R1; R0 = count",
        ),
        (
            VERSION_SWITCH,
            "VERSION_SWITCH",
            "stage a switch to kernel version R1 after HALT",
        ),
        (
            BLOB,
            "BLOB",
            "load module with file id R1 at address R2, at most R3 words; R0 = words",
        ),
        (
            FILE_READ,
            "FILE_READ",
            "read file named by the string at R1 to address R2, at most R3 bytes",
        ),
        (
            FILE_WRITE,
            "FILE_WRITE",
            "write R3 bytes at address R2 to the file named by the string at R1",
        ),
        (CYCLES, "CYCLES", "R0/R1 = instructions executed (low/high)"),
        (TIME, "TIME", "R0 = Unix seconds"),
        (YIELD, "YIELD", "give control back to the host"),
        (
            RUN_SLICE,
            "RUN_SLICE",
            "VRAM OS only: run the process with control block R1 for at most R2 instructions; R0 = why it stopped, R1 = instructions",
        ),
        (
            READ_LINE,
            "READ_LINE",
            "show the prompt string at R1, read a line into R2 (at most R3 bytes with its NUL); R0 = 1, R1 = length; `END` at the end of input",
        ),
        (
            LIST_DIR,
            "LIST_DIR",
            "list the PixelFS directory named by the string at R1 into R2 (at most R3 bytes), one entry per line; R1 = bytes, R2 = entries left out",
        ),
        (
            RUN,
            "RUN",
            "run program argv[0] of the running world: argv at R1, R2 entries; R1 = 0 halted or 1 trapped, R2 = execution record",
        ),
        (
            INFO,
            "INFO",
            "text into R3 (at most R4 bytes): R1 = 1 this session's executions, 2 the kernel and its history, 3 the last R2 log entries, 4 the world's programs; R1 = bytes, R2 = lines left out",
        ),
        (
            SCREEN_SAVE,
            "SCREEN_SAVE",
            "save the screen PNG in the home; its path into R1 (at most R2 bytes); R1 = bytes",
        ),
        (
            CLEAR,
            "CLEAR",
            "clear the console text area and the terminal",
        ),
        (
            LLM,
            "LLM",
            "ask the configured model: prompt string at R1, answer into R2 (at most R3 bytes); R1 = bytes, R2 = 1 when cut; `DENIED` in a sandbox without consent",
        ),
        (
            SELF_MODIFY,
            "SELF_MODIFY",
            "stage a replacement kernel from file id R1 after HALT",
        ),
    ];

    /// The name of syscall `number`.
    pub fn name(number: u16) -> Option<&'static str> {
        ALL.iter()
            .find(|(n, _, _)| *n == number)
            .map(|(_, name, _)| *name)
    }

    /// Why a syscall failed. A failing syscall never traps and never pretends:
    /// it sets R0 = 0 and R1 = one of these codes, logs a warning, and the
    /// program goes on.
    pub mod error {
        /// The sandbox does not allow this syscall, or this write, here.
        pub const DENIED: u32 = 1;
        /// This host cannot carry the call out here: SELF_MODIFY and
        /// VERSION_SWITCH outside a kernel boot (nothing is staged), the
        /// session syscalls (READ_LINE, RUN, INFO, ...) without a session.
        pub const UNSUPPORTED: u32 = 2;
        /// No such message, file, module or kernel version.
        pub const NOT_FOUND: u32 = 3;
        /// A string or buffer runs off memory.
        pub const BAD_ADDRESS: u32 = 4;
        /// More bytes than the syscall moves in one call.
        pub const TOO_LARGE: u32 = 5;
        /// A malformed argument (an empty module, an invalid path).
        pub const INVALID: u32 = 6;
        /// The storage behind the syscall failed.
        pub const IO: u32 = 7;
        /// There is no syscall with this number.
        pub const NO_SUCH_SYSCALL: u32 = 8;
        /// No more input: the person ended it (EOF, Ctrl-D).
        pub const END: u32 = 9;

        /// Every error code: (code, name, meaning).
        pub const ALL: &[(u32, &str, &str)] = &[
            (
                DENIED,
                "DENIED",
                "the sandbox does not allow this syscall, or this write, here",
            ),
            (
                UNSUPPORTED,
                "UNSUPPORTED",
                "this host cannot carry the call out here (SELF_MODIFY and VERSION_SWITCH outside a kernel boot, the session syscalls READ_LINE to CLEAR without an interactive session); nothing was done",
            ),
            (
                NOT_FOUND,
                "NOT_FOUND",
                "no such message, file, module or kernel version",
            ),
            (
                BAD_ADDRESS,
                "BAD_ADDRESS",
                "a string or buffer runs off memory",
            ),
            (
                TOO_LARGE,
                "TOO_LARGE",
                "more bytes than the syscall moves in one call",
            ),
            (
                INVALID,
                "INVALID",
                "a malformed argument (an empty module, an invalid path)",
            ),
            (IO, "IO", "the storage behind the syscall failed"),
            (
                NO_SUCH_SYSCALL,
                "NO_SUCH_SYSCALL",
                "there is no syscall with this number",
            ),
            (
                END,
                "END",
                "no more input: the person ended it (EOF, Ctrl-D)",
            ),
        ];

        /// The name of error `code`.
        pub fn name(code: u32) -> Option<&'static str> {
            ALL.iter()
                .find(|(c, _, _)| *c == code)
                .map(|(_, name, _)| *name)
        }
    }
}

/// A decoded instruction: opcode, operand bytes and the second word (or 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub op: Op,
    pub a: u8,
    pub b: u8,
    pub c: u8,
    pub wide: u32,
}

impl Instruction {
    /// The 16-bit immediate of `RI16` and `U16` formats.
    pub fn imm16(&self) -> u16 {
        u16::from(self.b) | u16::from(self.c) << 8
    }

    /// Encodes into one or two words.
    pub fn encode(&self) -> (u32, Option<u32>) {
        let word = u32::from(self.op as u8)
            | u32::from(self.a) << 8
            | u32::from(self.b) << 16
            | u32::from(self.c) << 24;
        (word, (self.op.format().words() == 2).then_some(self.wide))
    }

    /// Decodes the instruction at `words[0]` (with `words[1]` as its second word).
    ///
    /// Only canonical encodings decode: registers below 16 and unused operand
    /// bytes zero. Anything else is not an instruction (the disassembler shows
    /// it as data and the machine traps on it).
    pub fn decode(words: &[u32]) -> Option<Instruction> {
        let word = *words.first()?;
        let op = Op::from_byte(word as u8)?;
        let [_, a, b, c] = word.to_le_bytes();
        let reg = |x: u8| x < 16;
        let valid = match op.format() {
            Format::None => a == 0 && b == 0 && c == 0,
            Format::R => reg(a) && b == 0 && c == 0,
            Format::RR => reg(a) && reg(b) && c == 0,
            Format::RRR => reg(a) && reg(b) && reg(c),
            Format::RRI8 => reg(a) && reg(b),
            Format::RI16 => reg(a),
            Format::U16 => a == 0,
            Format::RW => reg(a) && b == 0 && c == 0,
            Format::W => a == 0 && b == 0 && c == 0,
            Format::RRW => reg(a) && reg(b) && c == 0,
        };
        if !valid {
            return None;
        }
        let wide = if op.format().words() == 2 {
            *words.get(1)?
        } else {
            0
        };
        Some(Instruction { op, a, b, c, wide })
    }
}

/// The 16-colour system palette (RGB). Index 1 is blue and 5 light blue, as in the seeds.
pub const PALETTE: [[u8; 3]; 16] = [
    [0x00, 0x00, 0x00], // 0 black
    [0x00, 0x00, 0xaa], // 1 blue
    [0x00, 0xaa, 0x00], // 2 green
    [0x00, 0xaa, 0xaa], // 3 cyan
    [0xaa, 0x00, 0x00], // 4 red
    [0x55, 0xaa, 0xff], // 5 light blue
    [0xaa, 0x55, 0x00], // 6 brown
    [0xaa, 0xaa, 0xaa], // 7 light grey
    [0x55, 0x55, 0x55], // 8 dark grey
    [0x55, 0x55, 0xff], // 9 bright blue
    [0x55, 0xff, 0x55], // 10 bright green
    [0x55, 0xff, 0xff], // 11 bright cyan
    [0xff, 0x55, 0x55], // 12 bright red
    [0xff, 0x55, 0xff], // 13 magenta
    [0xff, 0xff, 0x55], // 14 yellow
    [0xff, 0xff, 0xff], // 15 white
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &op in Op::ALL {
            assert!(seen.insert(op as u8), "{op:?} reuses a byte");
            assert_eq!(Op::from_byte(op as u8), Some(op));
            assert_eq!(Op::from_mnemonic(op.mnemonic()), Some(op));
            assert_ne!(op as u8, 0, "opcode 0 must stay invalid");
        }
    }
}
