//! Hostile programs end in a trap, never a panic or a hang.

use pxos_vm::{Config, Machine, NullHost, StdHost, fuzz};

use crate::support::{Rng, machine_for};

#[test]
fn random_bytes_as_programs_trap_or_halt() {
    for seed in 0..500 {
        let mut rng = Rng(seed);
        let bytes: Vec<u8> = (0..rng.below(4096)).map(|_| rng.next_u64() as u8).collect();
        fuzz::decode_and_execute(&bytes);
        let text: Vec<u8> = (0..rng.below(200))
            .map(|_| b"IMM32 R1,;:.word\"0x[]+-\n LOAD JMP L1: R99 'a'"[rng.below(45) as usize])
            .collect();
        fuzz::assemble_text(&text);
    }
}

#[test]
fn endless_loops_and_wild_jumps_are_bounded() {
    let cases = [
        ("LOOP: JMP LOOP", "fuel-exhausted"),
        ("LOOP: ADDI R1, R1, 1\nBNE R1, R0, LOOP", "fuel-exhausted"),
        ("IMM32 R1, 0xffffffff\nJMPR R1", "pc-out-of-bounds"),
        ("IMM32 R1, 250000\nJMPR R1", "pc-out-of-bounds"),
        (
            "IMM32 R1, 0x80000000\nSTORE R1, [R1]",
            "memory-out-of-bounds",
        ),
        ("R: CALL R", "stack-overflow"),
        ("LI R1, 1\nLOOP: PUSH R1\nJMP LOOP", "stack-overflow"),
    ];
    for (source, kind) in cases {
        let mut machine = machine_for(source);
        let trap = machine.run(&mut StdHost::default(), 5_000_000).unwrap_err();
        assert_eq!(trap.kind(), kind, "{source}");
    }
}

#[test]
fn huge_allocations_are_refused() {
    let config = Config {
        memory_words: u32::MAX,
        ..Config::default()
    };
    assert!(Machine::new(config).is_err());
    let config = Config {
        stack_words: 1 << 20,
        memory_words: 1 << 20,
        ..Config::default()
    };
    assert!(Machine::new(config).is_err());
    let config = Config {
        screen_width: 100_000,
        ..Config::default()
    };
    assert!(Machine::new(config).is_err());
    let program = vec![0x0000_000c; 300_000];
    assert!(Machine::with_program(Config::default(), &program, 0).is_err());
    // A syscall asking for a huge file read gets 0, not an allocation.
    let mut machine = machine_for(
        "IMM32 R1, P\nLI R2, 0\nIMM32 R3, 0xffffffff\nSYSCALL 41\nHALT\nP: .string \"/nope\"",
    );
    let mut host = StdHost::default();
    machine.run(&mut host, 100).unwrap();
    assert_eq!(machine.regs[0], 0);
    assert_eq!(host.warnings.len(), 1);
}

#[test]
fn null_host_records_calls() {
    let mut machine = machine_for("SYSCALL 1\nSYSCALL 99\nHALT");
    let mut host = NullHost::default();
    machine.run(&mut host, 100).unwrap();
    assert_eq!(host.calls, [1, 99]);
}
