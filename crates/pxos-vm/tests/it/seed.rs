//! The seed 002 kernels assemble unchanged and behave as the seed describes.

use pxos_vm::{Config, Exit, KernelRequest, Machine, MemoryStorage, StdHost, asm, isa::PALETTE};

const V1: &str = include_str!("../../kernels/v1.0.pxasm");
const V2: &str = include_str!("../../kernels/v2.0.pxasm");

#[test]
fn seed_kernels_assemble_and_evolve() {
    let v1 = asm::assemble("v1.0.pxasm", V1).unwrap();
    let v2 = asm::assemble("v2.0.pxasm", V2).unwrap();
    // v1: five IMM32 + SYSCALL pairs and HALT; IMM32 is two words.
    assert_eq!(v1.words.len(), 7 * 2 + 3 + 1);
    assert_eq!(v1.symbols.get("START"), Some(&0));

    let mut storage = MemoryStorage::default();
    storage.modules.insert(301, v2.words.clone());
    let mut host = StdHost::new(Box::new(storage));
    host.kernel_changes = true;
    let mut machine = Machine::with_program(Config::default(), &v1.words, v1.entry).unwrap();
    let exit = machine.run(&mut host, 10_000).unwrap();
    assert!(matches!(exit, Exit::Halted { .. }));
    assert_eq!(host.output, ["PXVM booting..."]);
    assert_eq!(
        host.request,
        Some(KernelRequest::Replace {
            id: 301,
            words: v2.words.clone()
        })
    );
    let screen = machine.screen();
    assert_eq!(screen.get(50, 50), Some(1));
    assert_eq!(screen.get(149, 149), Some(1));
    assert_eq!(screen.get(150, 150), Some(0));
    assert_eq!(screen.get(49, 50), Some(0));
    assert_eq!(
        screen.pixels().iter().filter(|&&p| p == 1).count(),
        100 * 100
    );

    let mut host = StdHost::default();
    let mut machine = Machine::with_program(Config::default(), &v2.words, v2.entry).unwrap();
    machine.run(&mut host, 10_000).unwrap();
    assert_eq!(host.output, ["Kernel init done", "PXVM ready"]);
    let screen = machine.screen();
    assert_eq!(screen.get(200, 50), Some(5));
    assert_eq!(screen.get(349, 199), Some(5));
    assert_eq!(screen.get(350, 199), Some(0));
    assert_eq!(
        screen.pixels().iter().filter(|&&p| p == 5).count(),
        150 * 150
    );
    assert_eq!(PALETTE[1], [0, 0, 0xaa], "blue");
    assert_eq!(PALETTE[5], [0x55, 0xaa, 0xff], "light blue");
}

#[test]
fn kernel_changes_outside_a_kernel_boot_fail_with_unsupported() {
    use pxos_vm::isa::syscall::error;
    let v2 = asm::assemble("v2.0.pxasm", V2).unwrap();
    let mut storage = MemoryStorage::default();
    storage.modules.insert(301, v2.words);
    let mut host = StdHost::new(Box::new(storage));
    host.versions = vec![1, 2];
    let program = asm::assemble(
        "t",
        "IMM32 R1, 301\nSYSCALL 99\nMOV R9, R0\nMOV R10, R1\nLI R1, 1\nSYSCALL 32\nMOV R11, R0\nMOV R12, R1\nHALT",
    )
    .unwrap();
    let mut machine =
        Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    machine.run(&mut host, 1000).unwrap();
    assert_eq!(host.request, None, "nothing is staged");
    assert_eq!(
        machine.regs[9..13],
        [0, error::UNSUPPORTED, 0, error::UNSUPPORTED]
    );
    assert!(
        host.warnings
            .iter()
            .all(|w| w.contains("UNSUPPORTED") && w.contains("nothing was staged")),
        "{:?}",
        host.warnings
    );
}
