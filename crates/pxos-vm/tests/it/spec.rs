//! The conformance suite: every `tests/spec/*.pxasm` file states in its header
//! what the program must leave behind; each file is one test (see `build.rs`).

use std::path::Path;

use pxos_vm::{Config, Exit, Machine, asm, reference};

use crate::support::{run_to_end, spec_host};

include!(concat!(env!("OUT_DIR"), "/spec_tests.rs"));

const FUEL: u64 = 1_000_000;

fn run_spec(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/spec")
        .join(format!("{name}.pxasm"));
    let source = std::fs::read_to_string(&path).unwrap();
    let program = asm::assemble_file(&path).unwrap_or_else(|err| panic!("{err}"));
    let mut expect_end = None;
    let mut registers = Vec::new();
    let mut outputs = Vec::new();
    let mut screen = None;
    let mut memory = Vec::new();
    for line in source.lines().take_while(|line| line.starts_with(';')) {
        let line = line.trim_start_matches(';').trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "spec" => {}
            "expect" => expect_end = Some(value.to_string()),
            "expect-reg" => {
                let (register, number) = value.split_once('=').unwrap();
                let index: usize = register.trim().trim_start_matches('R').parse().unwrap();
                registers.push((index, parse(number)));
            }
            "expect-output" => outputs.push(value.to_string()),
            "expect-screen" => screen = Some(value.to_string()),
            "expect-mem" => {
                let (address, number) = value.split_once('=').unwrap();
                memory.push((parse(address), parse(number)));
            }
            other => panic!("{name}: unknown header key {other}"),
        }
    }
    let expect_end = expect_end.unwrap_or_else(|| panic!("{name}: no `; expect:` line"));

    let mut machine =
        Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    let mut host = spec_host();
    let (result, yields) = run_to_end(&mut machine, &mut host, FUEL);
    let ended = match &result {
        Ok(Exit::Halted { .. }) if yields > 0 => "halt-after-yield".to_string(),
        Ok(Exit::Halted { .. }) => "halt".to_string(),
        Ok(Exit::Yielded { .. }) => "yielded".to_string(),
        Err(trap) => format!("trap {}", trap.kind()),
    };
    assert_eq!(ended, expect_end, "{name}: ended with {result:?}");
    for (index, value) in registers {
        assert_eq!(
            machine.regs[index], value,
            "{name}: R{index} = {:#x}, expected {value:#x}",
            machine.regs[index]
        );
    }
    assert_eq!(host.output, outputs, "{name}: printed output");
    let hash = screen.unwrap_or_else(|| panic!("{name}: every spec states its screen hash"));
    assert_eq!(machine.screen().hash(), hash, "{name}: screen hash");
    for (address, value) in memory {
        assert_eq!(
            machine.read_word(address),
            Some(value),
            "{name}: memory[{address}]"
        );
    }

    // The reference evaluator must agree on every spec.
    let mut slow = Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    let mut slow_host = spec_host();
    let mut slow_result;
    let mut left = FUEL;
    loop {
        slow_result = reference::run_reference(&mut slow, &mut slow_host, left);
        match slow_result {
            Ok(Exit::Yielded { fuel_left }) => left = fuel_left,
            _ => break,
        }
    }
    let fast_kind = result.as_ref().map(|_| "ok").map_err(|trap| trap.kind());
    let slow_kind = slow_result
        .as_ref()
        .map(|_| "ok")
        .map_err(|trap| trap.kind());
    assert_eq!(
        fast_kind, slow_kind,
        "{name}: reference evaluator disagrees"
    );
    assert_eq!(
        machine.regs, slow.regs,
        "{name}: registers differ from the reference"
    );
    assert_eq!(machine.pc, slow.pc, "{name}: pc differs from the reference");
    assert_eq!(
        machine.cycles, slow.cycles,
        "{name}: cycles differ from the reference"
    );
    assert_eq!(host.output, slow_host.output);
}

fn parse(text: &str) -> u32 {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
        None => text.parse().unwrap(),
    }
}

#[test]
fn every_opcode_and_syscall_has_a_spec() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec");
    let mut used_ops = std::collections::BTreeSet::new();
    let mut used_syscalls = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let program = asm::assemble_file(&path).unwrap();
        for line in pxos_vm::disasm::decode_lines(&program.words) {
            if let Some(instruction) = line.instruction {
                used_ops.insert(instruction.op.mnemonic());
                if instruction.op == pxos_vm::isa::Op::SYSCALL {
                    used_syscalls.insert(instruction.imm16());
                }
            }
        }
    }
    for op in pxos_vm::isa::Op::ALL {
        assert!(
            used_ops.contains(op.mnemonic()),
            "no spec uses {}",
            op.mnemonic()
        );
    }
    for (number, name, _) in pxos_vm::isa::syscall::ALL {
        assert!(used_syscalls.contains(number), "no spec calls {name}");
    }
}
