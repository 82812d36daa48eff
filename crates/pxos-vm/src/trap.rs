//! How a run ends: normally ([`Exit`]) or with a fault ([`Trap`]).

use std::fmt;

/// A normal end of `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The program executed HALT.
    Halted { fuel_left: u64 },
    /// The program yielded (syscall YIELD) or a single step finished; it can be resumed.
    Yielded { fuel_left: u64 },
}

/// A fault. Faults are values: the host never panics on a bad program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The word at `pc` is not an instruction.
    InvalidInstruction { pc: u32, word: u32 },
    /// PC left the code region (memory below the stack).
    PcOutOfBounds { pc: u32 },
    /// A load or store outside memory.
    MemoryOutOfBounds { pc: u32, address: u32 },
    /// PSET or PGET outside the screen.
    ScreenOutOfBounds { pc: u32, x: u32, y: u32 },
    /// Division or remainder by zero.
    DivideByZero { pc: u32 },
    /// The fuel (instruction budget) ran out before HALT.
    FuelExhausted { pc: u32 },
    /// PUSH or CALL with the stack full.
    StackOverflow { pc: u32 },
    /// POP or RET with the stack empty.
    StackUnderflow { pc: u32 },
    /// The host refused to continue (for example a sandbox violation).
    Host { pc: u32, message: String },
    /// The run passed one of its resource caps ([`crate::Caps`]).
    CapExceeded {
        pc: u32,
        cap: crate::Cap,
        limit: u64,
    },
}

impl Trap {
    /// A stable name for the kind of trap (used in tests and JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Trap::InvalidInstruction { .. } => "invalid-instruction",
            Trap::PcOutOfBounds { .. } => "pc-out-of-bounds",
            Trap::MemoryOutOfBounds { .. } => "memory-out-of-bounds",
            Trap::ScreenOutOfBounds { .. } => "screen-out-of-bounds",
            Trap::DivideByZero { .. } => "divide-by-zero",
            Trap::FuelExhausted { .. } => "fuel-exhausted",
            Trap::StackOverflow { .. } => "stack-overflow",
            Trap::StackUnderflow { .. } => "stack-underflow",
            Trap::Host { .. } => "host",
            Trap::CapExceeded { .. } => "cap-exceeded",
        }
    }

    /// Where it happened.
    pub fn pc(&self) -> u32 {
        match self {
            Trap::InvalidInstruction { pc, .. }
            | Trap::PcOutOfBounds { pc }
            | Trap::MemoryOutOfBounds { pc, .. }
            | Trap::ScreenOutOfBounds { pc, .. }
            | Trap::DivideByZero { pc }
            | Trap::FuelExhausted { pc }
            | Trap::StackOverflow { pc }
            | Trap::StackUnderflow { pc }
            | Trap::Host { pc, .. }
            | Trap::CapExceeded { pc, .. } => *pc,
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trap::InvalidInstruction { pc, word } => {
                write!(f, "invalid instruction {word:#010x} at {pc}")
            }
            Trap::PcOutOfBounds { pc } => write!(f, "jumped outside the code region to {pc}"),
            Trap::MemoryOutOfBounds { pc, address } => {
                write!(
                    f,
                    "memory access out of bounds at address {address} (pc {pc})"
                )
            }
            Trap::ScreenOutOfBounds { pc, x, y } => {
                write!(f, "screen access out of bounds at ({x}, {y}) (pc {pc})")
            }
            Trap::DivideByZero { pc } => write!(f, "division by zero at {pc}"),
            Trap::FuelExhausted { pc } => {
                write!(f, "out of fuel at {pc} (the program ran too long)")
            }
            Trap::StackOverflow { pc } => write!(f, "stack overflow at {pc}"),
            Trap::StackUnderflow { pc } => write!(f, "stack underflow at {pc}"),
            Trap::Host { pc, message } => write!(f, "host stopped the program at {pc}: {message}"),
            Trap::CapExceeded { pc, cap, limit } => write!(
                f,
                "the run exceeded its cap on {} ({limit}) at {pc} (raise it with {})",
                cap.describe(),
                cap.flag()
            ),
        }
    }
}

impl std::error::Error for Trap {}
