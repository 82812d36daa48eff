//! The fast interpreter and the reference evaluator agree on random programs,
//! including the kind of trap.

use pxos_vm::isa::{Format, Instruction, Op};
use pxos_vm::{Config, Machine, StdHost, reference};

use crate::support::Rng;

fn config() -> Config {
    Config {
        memory_words: 1024,
        stack_words: 64,
        screen_width: 32,
        screen_height: 32,
    }
}

/// Random but mostly sensible programs: valid instructions, small registers,
/// branch targets inside the program, loads and stores near it.
fn random_program(rng: &mut Rng) -> Vec<u32> {
    let len = 8 + rng.below(56) as u32;
    let mut words = Vec::new();
    let mut pair_second: Option<Op> = None;
    while (words.len() as u32) < len {
        // Often emit the pairs the interpreter fuses (ADDI + branch, CMPI + jump).
        let op = match pair_second.take() {
            Some(op) => op,
            None => match rng.below(6) {
                0 => {
                    pair_second = Some([Op::BNE, Op::BEQ, Op::BLT, Op::BGE][rng.below(4) as usize]);
                    Op::ADDI
                }
                1 => {
                    pair_second = Some(
                        [Op::JZ, Op::JNZ, Op::JLT, Op::JGE, Op::JB, Op::JAE][rng.below(6) as usize],
                    );
                    Op::CMPI
                }
                _ => Op::ALL[rng.below(Op::ALL.len() as u64) as usize],
            },
        };
        if op == Op::SYSCALL && rng.below(4) != 0 {
            continue;
        }
        let reg = |rng: &mut Rng| rng.below(16) as u8;
        let mut inst = Instruction {
            op,
            a: 0,
            b: 0,
            c: 0,
            wide: 0,
        };
        match op.format() {
            Format::None => {}
            Format::R => inst.a = reg(rng),
            Format::RR => (inst.a, inst.b) = (reg(rng), reg(rng)),
            Format::RRR => (inst.a, inst.b, inst.c) = (reg(rng), reg(rng), reg(rng) % 4),
            Format::RRI8 => (inst.a, inst.b, inst.c) = (reg(rng), reg(rng), rng.next_u64() as u8),
            Format::RI16 => {
                inst.a = reg(rng);
                let value = if rng.below(2) == 0 {
                    rng.below(40) as u16
                } else {
                    rng.next_u64() as u16
                };
                (inst.b, inst.c) = (value as u8, (value >> 8) as u8);
            }
            Format::U16 => {
                let number =
                    [1u16, 2, 30, 31, 32, 40, 41, 42, 50, 51, 99, 7][rng.below(12) as usize];
                (inst.b, inst.c) = (number as u8, (number >> 8) as u8);
            }
            Format::RW => {
                (inst.a, inst.wide) = (
                    reg(rng),
                    if rng.below(2) == 0 {
                        rng.below(len as u64 + 8) as u32
                    } else {
                        rng.next_u64() as u32
                    },
                )
            }
            Format::W => inst.wide = rng.below(len as u64 + 2) as u32,
            Format::RRW => {
                (inst.a, inst.b, inst.wide) = (reg(rng), reg(rng), rng.below(len as u64 + 2) as u32)
            }
        }
        let (first, second) = inst.encode();
        words.push(first);
        words.extend(second);
    }
    if rng.below(5) == 0 {
        let at = rng.below(words.len() as u64) as usize;
        words[at] = rng.next_u64() as u32;
    }
    words
}

#[test]
fn fast_and_reference_interpreters_agree() {
    let mut traps = std::collections::BTreeMap::new();
    for seed in 0..3000 {
        let mut rng = Rng(seed);
        let words = random_program(&mut rng);
        let mut fast = Machine::with_program(config(), &words, 0).unwrap();
        for index in 0..16 {
            fast.regs[index] = if rng.below(2) == 0 {
                rng.below(64) as u32
            } else {
                rng.next_u64() as u32
            };
        }
        let mut slow = fast.clone();
        let fuel = if seed % 3 == 0 { rng.below(40) } else { 2_000 };
        let fast_result = fast.run(&mut StdHost::default(), fuel);
        let slow_result = reference::run_reference(&mut slow, &mut StdHost::default(), fuel);
        assert_eq!(fast_result, slow_result, "seed {seed}: results differ");
        assert_eq!(fast.regs, slow.regs, "seed {seed}: registers differ");
        assert_eq!(
            (fast.pc, fast.sp, fast.flags, fast.cycles),
            (slow.pc, slow.sp, slow.flags, slow.cycles),
            "seed {seed}"
        );
        assert!(
            fast.memory() == slow.memory(),
            "seed {seed}: memory differs"
        );
        assert_eq!(fast.screen(), slow.screen(), "seed {seed}: screen differs");
        let kind = fast_result
            .map(|_| "exit")
            .unwrap_or_else(|trap| trap.kind());
        *traps.entry(kind).or_insert(0) += 1;
    }
    // The generator reaches every way a run can end.
    for kind in [
        "exit",
        "invalid-instruction",
        "pc-out-of-bounds",
        "memory-out-of-bounds",
        "divide-by-zero",
        "fuel-exhausted",
        "stack-underflow",
    ] {
        assert!(
            traps.contains_key(kind),
            "no random program ended with {kind}: {traps:?}"
        );
    }
}
