//! SYS_LLM through a real machine: the answer lands NUL-terminated, a long
//! one is cut at a character boundary and says so, and a refusal is DENIED.

use pxos_vm::isa::syscall::error;
use pxos_vm::{Config, LanguageModel, Machine, StdHost, StorageError, StorageErrorKind, asm};

struct Fixed(Result<String, StorageErrorKind>, Vec<String>);

impl LanguageModel for Fixed {
    fn ask(&mut self, prompt: &str) -> Result<String, StorageError> {
        self.1.push(prompt.to_string());
        self.0
            .clone()
            .map_err(|kind| StorageError::new(kind, "the policy says no"))
    }
}

const PROGRAM: &str =
    "IMM32 R1, Q\nIMM32 R2, 0x4000\nIMM32 R3, LIMIT\nSYSCALL 76\nHALT\nQ: .string \"why?\"\n";

fn ask(answer: Result<String, StorageErrorKind>, limit: u32) -> (Machine, String) {
    let source = PROGRAM.replace("LIMIT", &limit.to_string());
    let program = asm::assemble("ask.pxasm", &source).unwrap();
    let mut machine =
        Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    let mut host = StdHost {
        llm: Some(Box::new(Fixed(answer, Vec::new()))),
        ..StdHost::default()
    };
    machine.run(&mut host, 10_000).unwrap();
    let text = machine
        .read_string(0x4000, 4096)
        .map(|b| String::from_utf8(b).unwrap())
        .unwrap_or_default();
    (machine, text)
}

#[test]
fn the_answer_is_stored_and_a_long_one_is_cut_on_a_character() {
    let (machine, text) = ask(Ok("because pixels".into()), 64);
    assert_eq!(
        (machine.regs[0], machine.regs[1], machine.regs[2]),
        (1, 14, 0)
    );
    assert_eq!(text, "because pixels");
    // "é" is two bytes: a 3-byte buffer holds "a" and the NUL, not half an "é".
    let (machine, text) = ask(Ok("aé".into()), 3);
    assert_eq!(
        (machine.regs[0], machine.regs[1], machine.regs[2]),
        (1, 1, 1)
    );
    assert_eq!(text, "a");
}

#[test]
fn refusals_and_missing_models_fail_with_their_codes() {
    let (machine, _) = ask(Err(StorageErrorKind::Denied), 64);
    assert_eq!((machine.regs[0], machine.regs[1]), (0, error::DENIED));
    let (machine, _) = ask(Ok("x".into()), 0);
    assert_eq!((machine.regs[0], machine.regs[1]), (0, error::TOO_LARGE));
    // No model at all.
    let program = asm::assemble("ask.pxasm", &PROGRAM.replace("LIMIT", "8")).unwrap();
    let mut machine =
        Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    machine.run(&mut StdHost::default(), 10_000).unwrap();
    assert_eq!((machine.regs[0], machine.regs[1]), (0, error::UNSUPPORTED));
}
