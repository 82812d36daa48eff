//! Fuzz target bodies; the test suite runs them on seeded inputs.

use pxos_pixel::fuzz::{Reach, Unstructured, fuzz_limits, mutate_bytes, mutate_pxi, stage};

use crate::isa::{Format, Instruction, Op};
use crate::machine::{Config, Machine, NullHost};
use crate::program::ProgramImage;
use crate::reference::run_reference;

/// Small machine for fuzzing: fast to create, still exercises the stack.
pub fn fuzz_config() -> Config {
    Config {
        memory_words: 4096,
        stack_words: 256,
        screen_width: 64,
        screen_height: 64,
    }
}

/// Decodes arbitrary bytes as program words and runs them on both
/// interpreters: neither may panic or hang, and both must agree.
pub fn decode_and_execute(data: &[u8]) {
    let words: Vec<u32> = data
        .chunks(4)
        .map(|c| {
            let mut bytes = [0u8; 4];
            bytes[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(bytes)
        })
        .collect();
    execute(&words);
}

/// Runs `words` on both interpreters and under caps: neither may panic or
/// hang, and both must agree.
fn execute(words: &[u32]) {
    let config = fuzz_config();
    let Ok(mut fast) = Machine::with_program(config, words, 0) else {
        return;
    };
    let mut slow = fast.clone();
    let fast_result = fast.run(&mut NullHost::default(), 10_000);
    let slow_result = run_reference(&mut slow, &mut NullHost::default(), 10_000);
    assert_eq!(fast_result, slow_result, "interpreters disagree");
    assert_eq!(fast.regs, slow.regs);
    assert_eq!(fast.pc, slow.pc);
    assert_eq!(fast.memory(), slow.memory());
    let _ = crate::disasm::disassemble(words, 0);
    execute_under_caps(words);
}

/// Runs `words` on the standard host with tight caps: whatever the program
/// does, the run stays inside every cap (or ends with a trap naming it).
fn execute_under_caps(words: &[u32]) {
    let Ok(mut machine) = Machine::with_program(fuzz_config(), words, 0) else {
        return;
    };
    let mut host = crate::host::StdHost::default();
    host.caps = crate::host::Caps {
        max_write_bytes: 4096,
        max_read_bytes: 4096,
        max_files: 4,
        max_host_memory: 8192,
        max_warnings: 4,
    };
    host.storage = Box::new(crate::host::MemoryStorage {
        files: [("/f".to_string(), vec![7u8; 2048])].into_iter().collect(),
        modules: [(1, vec![0u32; 512])].into_iter().collect(),
    });
    let _ = machine.run(&mut host, 20_000);
    let usage = &host.usage;
    assert!(usage.bytes_written <= host.caps.max_write_bytes);
    assert!(usage.bytes_read <= host.caps.max_read_bytes);
    assert!(usage.files_created <= host.caps.max_files);
    assert!(usage.host_memory <= host.caps.max_host_memory + 4 * 512);
    assert!(host.warnings.len() <= host.caps.max_warnings);
    assert!(host.failures.len() <= host.caps.max_warnings);
}

/// Assembles arbitrary text: must return an error or a program, never panic.
pub fn assemble_text(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::asm::assemble("fuzz", text);
    }
}

/// Registers, immediates and addresses at the edges.
const VALUES: [u32; 10] = [0, 1, 2, 15, 16, 0x7f, 0x80, 0xffff, 0x8000_0000, u32::MAX];

/// A generated program: mostly well-formed instructions of every opcode,
/// with operands at the edges (the last register, short jumps, addresses
/// just inside and outside memory, every syscall), and now and then a raw
/// word. Ends in `HALT` unless the generator says otherwise.
pub fn program(u: &mut Unstructured<'_>) -> Vec<u32> {
    let count: u8 = u.int_in_range(1..=48).unwrap_or(1);
    let mut words = Vec::new();
    for _ in 0..count {
        if u.ratio(1, 16).unwrap_or(false) {
            words.push(u.arbitrary().unwrap_or(0));
            continue;
        }
        let op = *u.choose(Op::ALL).unwrap_or(&Op::HALT);
        let reg = |u: &mut Unstructured<'_>| u.int_in_range(0..=15u8).unwrap_or(0);
        let small = |u: &mut Unstructured<'_>| -> u8 {
            if u.ratio(1, 4).unwrap_or(false) {
                *u.choose(&VALUES).unwrap_or(&0) as u8
            } else {
                u.arbitrary().unwrap_or(0)
            }
        };
        let (a, b, c) = match op.format() {
            Format::None | Format::W => (0, 0, 0),
            Format::R | Format::RW => (reg(u), 0, 0),
            Format::RR | Format::RRW => (reg(u), reg(u), 0),
            Format::RRR => (reg(u), reg(u), reg(u)),
            Format::RRI8 => (reg(u), reg(u), small(u)),
            Format::RI16 => (reg(u), small(u), small(u)),
            Format::U16 => {
                let number = u.choose(crate::isa::syscall::ALL).map_or(0, |(n, _, _)| *n);
                let [lo, hi] = number.to_le_bytes();
                (0, lo, hi)
            }
        };
        let wide = if u.arbitrary().unwrap_or(false) {
            // An address inside the program, most of the time.
            u.int_in_range(0..=u32::from(count) * 2).unwrap_or(0)
        } else {
            *u.choose(&VALUES).unwrap_or(&0)
        };
        let (word, second) = Instruction { op, a, b, c, wide }.encode();
        words.push(word);
        words.extend(second);
    }
    if !u.ratio(1, 8).unwrap_or(false) {
        words.push(
            Instruction {
                op: Op::HALT,
                a: 0,
                b: 0,
                c: 0,
                wide: 0,
            }
            .encode()
            .0,
        );
    }
    words
}

/// Fuzz target `vm_execute`: a generated program image, mutated at one
/// layer (its words, its entry metadata, or the pixels below), loaded and
/// run on both interpreters and under caps.
pub fn vm_execute(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let words = program(&mut u);
    let entry: u32 = if u.ratio(1, 8).unwrap_or(false) {
        *u.choose(&VALUES).unwrap_or(&0)
    } else {
        0
    };
    let image = ProgramImage { words, entry };
    let png = image.to_png();
    let Ok((decoded, payload)) =
        pxos_pixel::decode_from_slice(&png, &pxos_pixel::Limits::default())
    else {
        return Reach::Container;
    };
    let options = pxos_pixel::EncodeOptions {
        kind: pxos_pixel::Kind::Program,
        layout: pxos_pixel::Layout::Rgba,
        metadata: decoded.metadata,
        ..pxos_pixel::EncodeOptions::default()
    };
    let mutant = mutate_pxi(&mut u, &payload, &options, &mut |u, bytes| {
        if u.arbitrary().unwrap_or(false) {
            // Whole instructions replaced by other generated ones.
            let other = program(u);
            let at = u.int_in_range(0..=bytes.len() / 4).unwrap_or(0) * 4;
            let end = (at + other.len().min(4) * 4).min(bytes.len());
            let fresh: Vec<u8> = other.iter().flat_map(|w| w.to_le_bytes()).collect();
            bytes.splice(at..end, fresh);
        } else {
            mutate_bytes(u, bytes);
        }
    });
    let staged = stage(&mutant.png, &fuzz_limits());
    let loaded = ProgramImage::from_png(&mutant.png);
    if let Ok(program) = &loaded {
        execute(&program.words);
    }
    match staged {
        Ok(_) => Reach::parsed(loaded.is_ok()),
        Err(reach) => {
            assert!(loaded.is_err(), "loaded a program the pixel layers refuse");
            reach
        }
    }
}

/// Fuzz target `asm_text`: the listing of a generated program (labels,
/// every mnemonic, edge operands), mutated line by line and token by token,
/// assembled. What assembles must disassemble.
pub fn asm_text(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let words = program(&mut u);
    let listing = crate::disasm::disassemble(&words, 0);
    let mut lines: Vec<String> = listing.lines().map(str::to_string).collect();
    let edits: u8 = u.int_in_range(0..=3).unwrap_or(0);
    for _ in 0..edits {
        if lines.is_empty() {
            break;
        }
        let at = u.int_in_range(0..=lines.len() - 1).unwrap_or(0);
        match u.int_in_range(0..=5u8).unwrap_or(0) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            2 => lines[at] = lines[at].replace("R1", "R16"),
            3 => lines[at].push_str(
                u.choose(&[",", " R1", " 0x", " ; x", " \"\"", " 99999999999"])
                    .unwrap_or(&","),
            ),
            4 => {
                let mnemonic = u.choose(Op::ALL).map_or("HALT", |op| op.mnemonic());
                lines[at] = format!(
                    "{mnemonic} {}",
                    lines[at]
                        .split_whitespace()
                        .skip(1)
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            _ => {
                let mut bytes = lines[at].clone().into_bytes();
                mutate_bytes(&mut u, &mut bytes);
                lines[at] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    let text = lines.join("\n");
    match crate::asm::assemble("fuzz", &text) {
        Ok(program) => {
            let _ = crate::disasm::disassemble(&program.words, 0);
            Reach::Accepted
        }
        Err(_) => Reach::Parser,
    }
}
