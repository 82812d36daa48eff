//! The reference evaluator: simple, slow and obviously right.
//!
//! It decodes every instruction from memory at every step and implements each
//! opcode in the plainest way. Differential tests run random programs on it
//! and on [`crate::Machine`] and require the same registers, memory, screen and
//! trap.

use crate::isa::{Instruction, Op};
use crate::machine::{Flags, Host, Machine};
use crate::trap::{Exit, Trap};

/// Runs `machine` one decoded instruction at a time, for at most `fuel` instructions.
pub fn run_reference(machine: &mut Machine, host: &mut dyn Host, fuel: u64) -> Result<Exit, Trap> {
    let mut left = fuel;
    loop {
        if left == 0 {
            return Err(Trap::FuelExhausted { pc: machine.pc });
        }
        let pc = machine.pc;
        if pc >= machine.code_words() {
            return Err(Trap::PcOutOfBounds { pc });
        }
        let window: Vec<u32> = (pc..(pc + 2).min(machine.code_words()))
            .map(|a| machine.read_word(a).unwrap_or(0))
            .collect();
        let Some(inst) = Instruction::decode(&window) else {
            return Err(Trap::InvalidInstruction {
                pc,
                word: window[0],
            });
        };
        left -= 1;
        machine.cycles += 1;
        let (a, b, c) = (
            usize::from(inst.a),
            usize::from(inst.b),
            usize::from(inst.c),
        );
        let r = machine.regs;
        let imm8 = i32::from(inst.c as i8) as u32;
        let imm16 = i32::from(inst.imm16() as i16) as u32;
        let next = pc + inst.op.format().words() as u32;
        let mut new_pc = next;
        let branch = |taken: bool| if taken { inst.wide } else { next };
        match inst.op {
            Op::HALT => return Ok(Exit::Halted { fuel_left: left }),
            Op::NOP => {}
            Op::MOV => machine.regs[a] = r[b],
            Op::IMM32 => machine.regs[a] = inst.wide,
            Op::LI => machine.regs[a] = imm16,
            Op::ADD => machine.regs[a] = r[b].wrapping_add(r[c]),
            Op::SUB => machine.regs[a] = r[b].wrapping_sub(r[c]),
            Op::MUL => machine.regs[a] = r[b].wrapping_mul(r[c]),
            Op::DIV | Op::MOD | Op::DIVS | Op::MODS => {
                if r[c] == 0 {
                    return Err(Trap::DivideByZero { pc });
                }
                machine.regs[a] = match inst.op {
                    Op::DIV => r[b] / r[c],
                    Op::MOD => r[b] % r[c],
                    Op::DIVS => (r[b] as i32).wrapping_div(r[c] as i32) as u32,
                    _ => (r[b] as i32).wrapping_rem(r[c] as i32) as u32,
                };
            }
            Op::AND => machine.regs[a] = r[b] & r[c],
            Op::OR => machine.regs[a] = r[b] | r[c],
            Op::XOR => machine.regs[a] = r[b] ^ r[c],
            Op::SHL => machine.regs[a] = r[b] << (r[c] % 32),
            Op::SHR => machine.regs[a] = r[b] >> (r[c] % 32),
            Op::SAR => machine.regs[a] = ((r[b] as i32) >> (r[c] % 32)) as u32,
            Op::NOT => machine.regs[a] = !r[b],
            Op::NEG => machine.regs[a] = 0u32.wrapping_sub(r[b]),
            Op::ADDI => machine.regs[a] = r[b].wrapping_add(imm8),
            Op::CMP => machine.flags = Flags::compare(r[a], r[b]),
            Op::CMPI => machine.flags = Flags::compare(r[a], imm16),
            Op::JMP => new_pc = inst.wide,
            Op::JZ => new_pc = branch(machine.flags.z),
            Op::JNZ => new_pc = branch(!machine.flags.z),
            Op::JLT => new_pc = branch(machine.flags.l),
            Op::JGE => new_pc = branch(!machine.flags.l),
            Op::JB => new_pc = branch(machine.flags.b),
            Op::JAE => new_pc = branch(!machine.flags.b),
            Op::JMPR => new_pc = r[a],
            Op::BEQ => new_pc = branch(r[a] == r[b]),
            Op::BNE => new_pc = branch(r[a] != r[b]),
            Op::BLT => new_pc = branch((r[a] as i32) < (r[b] as i32)),
            Op::BGE => new_pc = branch((r[a] as i32) >= (r[b] as i32)),
            Op::CALL | Op::CALLR | Op::PUSH => {
                if machine.sp <= machine.code_words() {
                    return Err(Trap::StackOverflow { pc });
                }
                machine.sp -= 1;
                let value = match inst.op {
                    Op::PUSH => r[a],
                    _ => next,
                };
                machine.write_word(machine.sp, value);
                new_pc = match inst.op {
                    Op::CALL => inst.wide,
                    Op::CALLR => r[a],
                    _ => next,
                };
            }
            Op::RET | Op::POP => {
                if machine.sp >= machine.config().memory_words {
                    return Err(Trap::StackUnderflow { pc });
                }
                let value = machine.read_word(machine.sp).unwrap_or(0);
                machine.sp += 1;
                if inst.op == Op::RET {
                    new_pc = value;
                } else {
                    machine.regs[a] = value;
                }
            }
            Op::LOAD => {
                let address = r[b].wrapping_add(imm8);
                match machine.read_word(address) {
                    Some(value) => machine.regs[a] = value,
                    None => return Err(Trap::MemoryOutOfBounds { pc, address }),
                }
            }
            Op::STORE => {
                let address = r[b].wrapping_add(imm8);
                if !machine.write_word(address, r[a]) {
                    return Err(Trap::MemoryOutOfBounds { pc, address });
                }
            }
            Op::PSET => {
                if !machine.screen_mut().set(r[b], r[c], (r[a] % 16) as u8) {
                    return Err(Trap::ScreenOutOfBounds {
                        pc,
                        x: r[b],
                        y: r[c],
                    });
                }
            }
            Op::PGET => match machine.screen().get(r[b], r[c]) {
                Some(colour) => machine.regs[a] = u32::from(colour),
                None => {
                    return Err(Trap::ScreenOutOfBounds {
                        pc,
                        x: r[b],
                        y: r[c],
                    });
                }
            },
            Op::SYSCALL => {
                machine.pc = next;
                if host.syscall(inst.imm16(), machine)? {
                    return Ok(Exit::Yielded { fuel_left: left });
                }
                continue;
            }
        }
        machine.pc = new_pc;
    }
}
