//! PXVM and the kernel store through the real binary.

use std::io::Write;
use std::process::Stdio;

use crate::support::{Home, json_lines};

const COUNTDOWN: &str = "; counts R1 down from 5, then draws
START:
    LI R1, 5
    LI R2, 0
LOOP:
    ADD R2, R2, R1
    ADDI R1, R1, -1
    BNE R1, R0, LOOP
    IMM32 R1, 10
    IMM32 R2, 10
    IMM32 R3, 20
    IMM32 R4, 20
    IMM32 R5, 14
    SYSCALL 2
    LI R1, 2
    LI R2, 0
    SYSCALL 1
    HALT
";

#[test]
fn asm_disasm_asm_is_the_identity_and_run_works() {
    let home = Home::new("vm");
    let source = home.scratch("count.pxasm");
    std::fs::write(&source, COUNTDOWN).unwrap();
    let image = home.scratch("count.png");
    home.ok(&[
        "asm",
        source.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]);
    let listing = home.ok(&["disasm", image.to_str().unwrap()]);
    assert!(listing.contains("BNE R1, R0, L0002"), "{listing}");
    let again_source = home.scratch("again.pxasm");
    std::fs::write(&again_source, &listing).unwrap();
    let again = home.scratch("again.png");
    home.ok(&[
        "asm",
        again_source.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&image).unwrap(),
        std::fs::read(&again).unwrap(),
        "the program image is the same pixels"
    );

    let screen = home.scratch("screen.png");
    let memory = home.scratch("memory.png");
    let out = home.ok(&[
        "run",
        image.to_str().unwrap(),
        "--screen",
        screen.to_str().unwrap(),
        "--memory",
        memory.to_str().unwrap(),
    ]);
    let memory_png = std::fs::read(&memory).unwrap();
    assert_eq!(
        &memory_png[16..24],
        &[0, 0, 2, 0, 0, 0, 2, 0],
        "memory is a 512x512 texture"
    );
    assert!(
        out.contains("PXVM ready") && out.contains("halted after"),
        "{out}"
    );
    let json = json_lines(&home.ok(&["run", image.to_str().unwrap(), "--json"]));
    let run = json.iter().find(|l| l["type"] == "run").unwrap();
    assert_eq!(run["halted"], true);
    // 2 LI, 5 loop rounds of 3, then 5 IMM32, SYSCALL, 2 LI, SYSCALL, HALT.
    assert_eq!(run["cycles"], 2 + 5 * 3 + 10);
    assert_eq!(std::fs::read(&screen).unwrap()[1..4], *b"PNG");
    let trace = home.run(&["run", image.to_str().unwrap(), "--trace", "-q"]);
    assert!(String::from_utf8_lossy(&trace.stderr).contains("BNE R1, R0, 2"));
}

#[test]
fn traps_and_bad_sources_are_exit_code_one() {
    let home = Home::new("vm-trap");
    let source = home.scratch("div.pxasm");
    std::fs::write(&source, "LI R1, 0\nDIV R2, R1, R1\nHALT\n").unwrap();
    let out = home.run(&["run", source.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("division by zero"));
    let looping = home.scratch("loop.pxasm");
    std::fs::write(&looping, "L: JMP L\n").unwrap();
    let out = home.run(&["run", looping.to_str().unwrap(), "--fuel", "1000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of fuel"));
    let bad = home.scratch("bad.pxasm");
    std::fs::write(&bad, "NOP\n  ADD R1, R2\n").unwrap();
    let stderr = home.fails(1, &["asm", bad.to_str().unwrap()]);
    assert!(
        stderr.contains("bad.pxasm:2:3: ADD takes 3 operands, found 2"),
        "{stderr}"
    );
    let not_program = home.scratch("blob.png");
    std::fs::write(
        &not_program,
        pxos_pixel::encode_to_vec(b"data", &Default::default()).unwrap(),
    )
    .unwrap();
    let stderr = home.fails(1, &["run", not_program.to_str().unwrap()]);
    assert!(stderr.contains("not a PXVM program"), "{stderr}");
}

#[test]
fn debug_is_scriptable_from_stdin() {
    let home = Home::new("debug");
    let source = home.scratch("count.pxasm");
    std::fs::write(&source, COUNTDOWN).unwrap();
    let script = format!(
        "break LOOP\ncontinue\nregs\ncontinue\nstep 3\nmem 0 2\ndisasm\nbogus\ndelete LOOP\ncontinue\nscreen {}\noutput\nstep\nquit\n",
        home.scratch("debug.png").display()
    );
    let mut child = home
        .pxos()
        .args(["debug", source.to_str().unwrap(), "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines = json_lines(&String::from_utf8(output.stdout).unwrap());
    let stops: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "stop").collect();
    assert_eq!(stops[0]["reason"], "breakpoint at 2");
    assert_eq!(stops[0]["pc"], 2);
    let registers = lines.iter().find(|l| l["type"] == "registers").unwrap();
    assert_eq!(registers["registers"][1], 5);
    assert_eq!(
        stops[1]["reason"], "breakpoint at 2",
        "the loop comes back to the breakpoint"
    );
    assert_eq!(stops[2]["executed"], 3);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "error" && l["message"].as_str().unwrap().contains("bogus"))
    );
    assert_eq!(stops[3]["reason"], "halted");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "output" && l["lines"][0] == "PXVM ready")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "error" && l["message"].as_str().unwrap().contains("has ended"))
    );
    assert!(home.scratch("debug.png").is_file());
}

#[test]
fn kernel_commands_revert_a_bad_kernel() {
    let home = Home::new("kernel");
    let good = home.scratch("good.pxasm");
    std::fs::write(&good, "LI R1, 2\nSYSCALL 1\nHALT\n").unwrap();
    let bad = home.scratch("bad.pxasm");
    std::fs::write(&bad, "L: JMP L\n").unwrap();
    home.ok(&[
        "kernel",
        "install",
        good.to_str().unwrap(),
        "--version",
        "good",
        "--current",
    ]);
    assert!(home.ok(&["kernel", "boot"]).contains("booted cleanly"));
    home.ok(&[
        "kernel",
        "install",
        bad.to_str().unwrap(),
        "--version",
        "bad",
        "--current",
    ]);
    let out = home.run(&["kernel", "boot", "--fuel", "10000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reverted to kernel 1"));
    assert!(home.ok(&["kernel", "boot"]).contains("booted cleanly"));
    let current = json_lines(&home.ok(&["kernel", "current", "--json"]));
    assert_eq!(current[0]["version"], "good");
    assert!(home.ok(&["kernel", "log"]).contains("revert"));
    home.ok(&["kernel", "rollback", "2"]);
    assert_eq!(
        json_lines(&home.ok(&["kernel", "current", "--json"]))[0]["version"],
        "bad"
    );
}

#[test]
fn syscalls_reach_pixelfs_files_and_modules() {
    let home = Home::new("vm-fs");
    // A module in PixelFS, found by its file id.
    let module_source = home.scratch("module.pxasm");
    std::fs::write(&module_source, ".word 0xabcdef01, 0x12345678\n").unwrap();
    let module = home.scratch("module.png");
    home.ok(&[
        "asm",
        module_source.to_str().unwrap(),
        "-o",
        module.to_str().unwrap(),
    ]);
    let added = json_lines(&home.ok(&[
        "fs",
        "add",
        "/lib/module.png",
        module.to_str().unwrap(),
        "--json",
    ]));
    let file_id = added[0]["entry"]["file_id"].as_str().unwrap().to_string();
    let notes = home.scratch("notes.txt");
    std::fs::write(&notes, "from pixels").unwrap();
    home.ok(&["fs", "add", "/docs/notes.txt", notes.to_str().unwrap()]);
    let program = home.scratch("io.pxasm");
    std::fs::write(
        &program,
        format!(
            "IMM32 R1, {file_id}\nIMM32 R2, BUF\nLI R3, 2\nSYSCALL 40\nLOAD R9, [R2]\n\
             IMM32 R1, IN\nIMM32 R2, TEXT\nLI R3, 64\nSYSCALL 41\nMOV R10, R0\n\
             IMM32 R1, OUT\nIMM32 R2, TEXT\nMOV R3, R10\nSYSCALL 42\nMOV R11, R0\nHALT\n\
             IN: .string \"/docs/notes.txt\"\nOUT: .string \"/out/copy.txt\"\nBUF: .word 0, 0\nTEXT: .org TEXT+16\n"
        ),
    )
    .unwrap();
    // A program file is sandboxed: it reads, but its write outside the sandbox is refused.
    let lines = json_lines(&home.ok(&["run", program.to_str().unwrap(), "--json"]));
    let run = lines.iter().find(|l| l["type"] == "run").unwrap();
    assert_eq!(run["placement"]["mode"], "sandboxed");
    assert_eq!(
        run["registers"][9], 0xabcdef01u32,
        "BLOB loaded the module by file id"
    );
    assert_eq!(run["registers"][10], 11, "FILE_READ read 11 bytes");
    assert_eq!(run["registers"][11], 0, "FILE_WRITE was refused");
    assert!(
        run["warnings"][0].as_str().unwrap().contains("confined"),
        "{run}"
    );
    assert_eq!(
        home.run(&["fs", "cat", "/out/copy.txt"]).status.code(),
        Some(1)
    );
    // --trusted lifts the sandbox, and the execution record says so.
    let lines = json_lines(&home.ok(&["run", program.to_str().unwrap(), "--trusted", "--json"]));
    let run = lines.iter().find(|l| l["type"] == "run").unwrap();
    assert_eq!(run["registers"][11], 1, "FILE_WRITE succeeded");
    assert_eq!(home.ok(&["fs", "cat", "/out/copy.txt"]), "from pixels");
    let records = pxos_test_support::read_log_records(&home.home().join("run/executions"));
    assert_eq!(records.len(), 2, "both runs are recorded");
    assert_eq!(records[0]["lifted_by_trusted_flag"], false);
    assert_eq!(records[1]["lifted_by_trusted_flag"], true);
}
