//! PXVM speed on three algorithms: an arithmetic loop, call-heavy recursion
//! and a memory-heavy sieve. `cargo bench -p pxos-vm`; CI runs each once with
//! smaller sizes (`-- --test`).
//!
//! The reference is the uxn interpreter on this class of machine:
//! the loop (2048 x 65536 add+xor) in 3.1 s (about 433 M instructions/s) and
//! fib(35) in 0.54 s. A native Rust version of each algorithm runs in the same
//! process as a second reference.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_vm::{Config, Exit, Machine, NullHost, asm};

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

const LOOP: &str = "
    LI R1, 0
    LI R2, 0
    IMM32 R3, OUTER_COUNT
OUTER:
    IMM32 R4, 65536
INNER:
    ADD R1, R1, R4
    XOR R2, R2, R1
    ADDI R4, R4, -1
    BNE R4, R0, INNER
    ADDI R3, R3, -1
    BNE R3, R0, OUTER
    HALT
";

const FIB: &str = "
    IMM32 R1, FIB_N
    CALL FIB
    HALT
FIB:                    ; R0 = fib(R1)
    CMPI R1, 2
    JLT BASE
    PUSH R1
    ADDI R1, R1, -1
    CALL FIB
    POP R1
    PUSH R0
    ADDI R1, R1, -2
    CALL FIB
    POP R2
    ADD R0, R0, R2
    RET
BASE:
    MOV R0, R1
    RET
";

const SIEVE: &str = "
    IMM32 R1, FLAGS       ; flags[i] = 1 means composite
    IMM32 R2, LIMIT
    LI R3, 2              ; i
    LI R9, 0              ; prime count
    LI R10, 1
    IMM32 R11, 46340      ; above this, i * i overflows (and exceeds any LIMIT)
OUTER:
    BGE R3, R2, DONE
    ADD R4, R1, R3
    LOAD R5, [R4]
    BNE R5, R0, NEXT
    ADDI R9, R9, 1
    BGE R3, R11, NEXT
    MUL R6, R3, R3        ; j = i * i
MARK:
    BGE R6, R2, NEXT
    ADD R7, R1, R6
    STORE R10, [R7]
    ADD R6, R6, R3
    JMP MARK
NEXT:
    ADDI R3, R3, 1
    JMP OUTER
DONE:
    HALT
FLAGS:
";

fn build(source: &str, replacements: &[(&str, u32)]) -> Machine {
    let mut text = String::new();
    for (name, value) in replacements {
        text.push_str(&format!(".const {name} {value}\n"));
    }
    text.push_str(source);
    let program = asm::assemble("bench", &text).unwrap();
    Machine::with_program(Config::default(), &program.words, program.entry).unwrap()
}

fn run(mut machine: Machine) -> Machine {
    let exit = machine.run(&mut NullHost::default(), u64::MAX).unwrap();
    assert!(matches!(exit, Exit::Halted { .. }));
    machine
}

fn fib_native(n: u32) -> u32 {
    if n < 2 {
        n
    } else {
        fib_native(n - 1) + fib_native(n - 2)
    }
}

fn vm(c: &mut Criterion) {
    let outer = if quick() { 8 } else { 2048 };
    let fib_n = if quick() { 20 } else { 35 };
    let limit = if quick() { 10_000 } else { 200_000 };
    let mut group = c.benchmark_group("vm");
    group.sample_size(10);

    let loop_machine = build(LOOP, &[("OUTER_COUNT", outer)]);
    // What the loop must compute, and how many instructions it takes: three
    // set-ups, per outer pass IMM32 + 65536 x 4 + ADDI + BNE, and HALT.
    let (mut want_r1, mut want_r2) = (0u32, 0u32);
    for _ in 0..outer {
        for r4 in (1..=65536u32).rev() {
            want_r1 = want_r1.wrapping_add(r4);
            want_r2 ^= want_r1;
        }
    }
    let want_cycles = 3 + u64::from(outer) * (1 + 65536 * 4 + 2) + 1;
    group.bench_function(format!("loop/{outer}x65536"), |b| {
        b.iter(|| {
            let done = run(black_box(loop_machine.clone()));
            assert_eq!(
                (done.regs[1], done.regs[2], done.regs[3], done.cycles),
                (want_r1, want_r2, 0, want_cycles)
            );
        })
    });
    let started = Instant::now();
    let done = run(loop_machine.clone());
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "vm/loop: {} instructions in {seconds:.3} s = {:.0} M instructions/s",
        done.cycles,
        done.cycles as f64 / seconds / 1e6
    );
    group.bench_function(format!("loop-native/{outer}x65536"), |b| {
        b.iter(|| {
            let (mut r1, mut r2) = (0u32, 0u32);
            for _ in 0..black_box(outer) {
                for r4 in (1..=black_box(65536u32)).rev() {
                    r1 = r1.wrapping_add(r4);
                    r2 ^= r1;
                }
            }
            black_box((r1, r2))
        })
    });

    let fib_machine = build(FIB, &[("FIB_N", fib_n)]);
    let expected = fib_native(fib_n);
    group.bench_function(format!("fib/{fib_n}"), |b| {
        b.iter(|| assert_eq!(run(black_box(fib_machine.clone())).regs[0], expected))
    });
    group.bench_function(format!("fib-native/{fib_n}"), |b| {
        b.iter(|| assert_eq!(fib_native(black_box(fib_n)), expected))
    });

    let sieve_machine = build(SIEVE, &[("LIMIT", limit)]);
    let primes = (2..limit)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u32;
    group.bench_function(format!("sieve/{limit}"), |b| {
        b.iter(|| assert_eq!(run(black_box(sieve_machine.clone())).regs[9], primes))
    });
    group.finish();
}

criterion_group!(benches, vm);
criterion_main!(benches);
