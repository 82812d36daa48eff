//! Fuzz target bodies; the test suite runs them on seeded inputs.

use crate::machine::{Config, Machine, NullHost};
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
    let config = fuzz_config();
    let Ok(mut fast) = Machine::with_program(config, &words, 0) else {
        return;
    };
    let mut slow = fast.clone();
    let fast_result = fast.run(&mut NullHost::default(), 10_000);
    let slow_result = run_reference(&mut slow, &mut NullHost::default(), 10_000);
    assert_eq!(fast_result, slow_result, "interpreters disagree");
    assert_eq!(fast.regs, slow.regs);
    assert_eq!(fast.pc, slow.pc);
    assert_eq!(fast.memory(), slow.memory());
    let _ = crate::disasm::disassemble(&words, 0);
    execute_under_caps(&words);
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
