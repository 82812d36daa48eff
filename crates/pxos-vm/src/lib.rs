//! PXVM: the pixel machine.
//!
//! A small register machine whose programs are images: each 32-bit
//! instruction word is one RGBA pixel with the opcode in the red channel.
//! This crate holds the ISA ([`isa`]), the assembler ([`asm`]) and
//! disassembler ([`disasm`]), the fast interpreter ([`Machine`]), a reference
//! evaluator for differential testing ([`reference`]), the screen device and
//! program images. It does no I/O of its own: syscalls go to a [`Host`].
//!
//! ```
//! use pxos_vm::{Config, Exit, Machine, NullHost, asm};
//!
//! let program = asm::assemble("demo", "LI R1, 20\nLI R2, 22\nADD R0, R1, R2\nHALT")?;
//! let mut machine = Machine::with_program(Config::default(), &program.words, program.entry)?;
//! let exit = machine.run(&mut NullHost::default(), 1_000)?;
//! assert!(matches!(exit, Exit::Halted { .. }));
//! assert_eq!(machine.regs[0], 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod asm;
pub mod disasm;
mod font;
pub mod fuzz;
mod host;
pub mod isa;
mod machine;
mod program;
pub mod reference;
mod screen;
mod trap;

pub use font::{CONSOLE_FONT_SOURCE, Console, DEFAULT_CONSOLE_AREA, FONT_FORMAT, Font, FontError};
pub use host::{
    Cap, Caps, ChildRun, KernelRequest, LanguageModel, LineRead, MAX_ARG_BYTES, MAX_ARGS,
    MAX_FILE_BYTES, MAX_FUEL, MAX_STRING, MemoryStorage, PrintHook, Session, StdHost, Storage,
    StorageError, StorageErrorKind, SyscallFailure, Usage, default_messages,
};
pub use machine::{Config, Flags, Host, LoadError, MAX_MEMORY_WORDS, Machine, NullHost, opcode_of};
pub use program::{PROGRAM_FORMAT, ProgramError, ProgramImage};
pub use screen::{MAX_SCREEN_SIDE, Screen, ScreenSizeError};
pub use trap::{Exit, Trap};
