//! Assembly errors name the file, line and column.

use pxos_vm::asm;

#[test]
fn errors_carry_positions() {
    let cases = [
        ("NOP\n  FROB R1", "t:2:3: unknown instruction 'FROB'"),
        ("ADD R1, R2", "t:1:1: ADD takes 3 operands, found 2"),
        (
            "MOV R1, R16",
            "t:1:9: expected a register R0..R15, found 'R16'",
        ),
        ("ADDI R1, R1, 300", "t:1:14: 300 does not fit in -128..=127"),
        (
            "LI R1, 40000",
            "t:1:8: 40000 does not fit in -32768..=32767",
        ),
        ("JMP NOWHERE", "t:1:5: undefined name 'NOWHERE'"),
        ("A:\nA:", "t:2:1: 'A' is already defined at line 1"),
        (".bogus 1", "t:1:1: unknown directive '.bogus'"),
        (
            ".string \"open",
            "t:1:9: expected a quoted string, found '\"open'",
        ),
        (
            "IMM32 R1, 0x1_0000_0000",
            "t:1:11: '0x1_0000_0000' is not a number, label or constant",
        ),
        (
            ".include \"x.pxasm\"",
            "t:1:1: includes are not available here (x.pxasm)",
        ),
        (
            "LOAD R1, [R2",
            "t:1:10: memory operand must look like [R2], [R2+4] or [R2-4]",
        ),
        (
            "R1: NOP",
            "t:1:1: 'R1' is a register or mnemonic and cannot be a name",
        ),
        ("ADD R1, , R2", "t:1:9: empty operand"),
    ];
    for (source, expected) in cases {
        let err = asm::assemble("t", source).unwrap_err();
        assert_eq!(err.to_string(), expected, "{source}");
    }
}

#[test]
fn includes_constants_and_data() {
    let dir = std::env::temp_dir().join(format!("pxos-vm-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lib.pxasm"),
        ".const ANSWER 42\nGET: LI R0, ANSWER\nRET\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.pxasm"), ".entry MAIN\n.include \"lib.pxasm\"\nMAIN: CALL GET\nHALT\nDATA: .word 'A', -1, GET+1\n.string \"hi\"\n").unwrap();
    std::fs::write(dir.join("loop.pxasm"), ".include \"loop.pxasm\"\n").unwrap();
    let program = asm::assemble_file(&dir.join("main.pxasm")).unwrap();
    assert_eq!(program.entry, 2);
    assert_eq!(program.symbols["ANSWER"], 42);
    let data = program.symbols["DATA"] as usize;
    assert_eq!(
        &program.words[data..data + 4],
        &[65, 0xffff_ffff, 1, u32::from_le_bytes(*b"hi\0\0")]
    );
    let err = asm::assemble_file(&dir.join("loop.pxasm")).unwrap_err();
    assert!(err.message.contains("includes itself"), "{err}");
    let mut machine =
        pxos_vm::Machine::with_program(Default::default(), &program.words, program.entry).unwrap();
    machine.run(&mut pxos_vm::NullHost::default(), 100).unwrap();
    assert_eq!(machine.regs[0], 42);
    let _ = std::fs::remove_dir_all(&dir);
}
