//! The session syscalls and the calling convention, through a real machine
//! and `StdHost`, with a scripted session on the host's side.

use std::cell::RefCell;
use std::rc::Rc;

use pxos_vm::isa::syscall::{self, error};
use pxos_vm::{
    ChildRun, Config, Exit, LineRead, Machine, MemoryStorage, Screen, Session, StdHost, Storage,
    StorageError, asm,
};

#[derive(Default)]
struct Seen {
    runs: Vec<Vec<String>>,
    cleared: u32,
}

struct Scripted {
    lines: Vec<LineRead>,
    seen: Rc<RefCell<Seen>>,
}

impl Session for Scripted {
    fn read_line(&mut self, _prompt: &str) -> LineRead {
        if self.lines.is_empty() {
            LineRead::End
        } else {
            self.lines.remove(0)
        }
    }
    fn run(&mut self, argv: &[String], screen: &Screen) -> Result<ChildRun, StorageError> {
        self.seen.borrow_mut().runs.push(argv.to_vec());
        let mut screen = screen.clone();
        screen.set(0, 0, 14);
        Ok(ChildRun {
            trapped: argv.len() > 2,
            execution: 41,
            output: vec![format!("ran {}", argv.join(" "))],
            screen: Some(screen),
        })
    }
    fn info(&mut self, topic: u32, count: u32) -> Result<String, StorageError> {
        Ok((1..=count)
            .map(|n| format!("topic {topic} line {n}\n"))
            .collect())
    }
    fn save_screen(&mut self, _screen: &Screen) -> Result<String, StorageError> {
        Ok("/home/boot/screen.png".into())
    }
    fn clear(&mut self) {
        self.seen.borrow_mut().cleared += 1;
    }
}

struct Listing;

impl Storage for Listing {
    fn read_file(&mut self, _: &str) -> Result<Vec<u8>, StorageError> {
        unreachable!()
    }
    fn write_file(&mut self, _: &str, _: &[u8]) -> Result<(), StorageError> {
        unreachable!()
    }
    fn module(&mut self, _: u32) -> Result<Vec<u32>, StorageError> {
        unreachable!()
    }
    fn list_dir(&mut self, _: &str) -> Result<Vec<String>, StorageError> {
        Ok(vec!["alpha".into(), "beta/".into(), "gamma".into()])
    }
}

fn session_host(lines: Vec<LineRead>) -> (StdHost, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let mut host = StdHost::new(Box::new(MemoryStorage::default()));
    host.session = Some(Box::new(Scripted {
        lines,
        seen: seen.clone(),
    }));
    (host, seen)
}

fn run(source: &str, host: &mut StdHost) -> Machine {
    let program = asm::assemble("test", source).unwrap();
    let mut machine =
        Machine::with_program(Config::default(), &program.words, program.entry).unwrap();
    let exit = machine.run(host, 1_000_000).unwrap();
    assert!(matches!(exit, Exit::Halted { .. }));
    machine
}

fn string_at(machine: &Machine, address: u32) -> String {
    String::from_utf8(machine.read_string(address, 4096).unwrap()).unwrap()
}

const READ: &str =
    "IMM32 R1, PROMPT\nIMM32 R2, 0x4000\nLI R3, 8\nSYSCALL 70\nHALT\nPROMPT:\n.string \"> \"";

#[test]
fn read_line_stores_the_line_and_draws_it_with_its_prompt() {
    let (mut host, _) = session_host(vec![LineRead::Line("ls /a".into())]);
    let machine = run(READ, &mut host);
    assert_eq!((machine.regs[0], machine.regs[1]), (1, 5));
    assert_eq!(string_at(&machine, 0x4000), "ls /a");
    assert_ne!(
        machine.screen().hash(),
        Screen::new(512, 512).unwrap().hash(),
        "the typed line is on the screen"
    );
}

#[test]
fn read_line_refuses_a_line_longer_than_the_buffer_and_reports_the_end() {
    let (mut host, _) = session_host(vec![LineRead::Line("12345678".into())]);
    let machine = run(READ, &mut host);
    assert_eq!((machine.regs[0], machine.regs[1]), (0, error::TOO_LARGE));
    assert_eq!(machine.read_word(0x4000), Some(0), "nothing was stored");
    let (mut host, _) = session_host(Vec::new());
    let machine = run(READ, &mut host);
    assert_eq!((machine.regs[0], machine.regs[1]), (0, error::END));
}

#[test]
fn without_a_session_every_session_syscall_is_unsupported() {
    for number in [
        syscall::READ_LINE,
        syscall::RUN,
        syscall::INFO,
        syscall::SCREEN_SAVE,
        syscall::CLEAR,
    ] {
        let mut host = StdHost::default();
        let machine = run(
            &format!(
                "IMM32 R1, 0x4000\nLI R2, 1\nIMM32 R3, 0x4100\nLI R4, 64\nSYSCALL {number}\nHALT"
            ),
            &mut host,
        );
        assert_eq!(
            (machine.regs[0], machine.regs[1]),
            (0, error::UNSUPPORTED),
            "{number}"
        );
        assert_eq!(host.failures.len(), 1);
    }
}

#[test]
fn list_dir_fills_what_fits_and_counts_the_rest() {
    let mut host = StdHost::new(Box::new(Listing));
    let source =
        "IMM32 R1, PATH\nIMM32 R2, 0x4000\nLI R3, 12\nSYSCALL 71\nHALT\nPATH:\n.string \"/\"";
    let machine = run(source, &mut host);
    assert_eq!(machine.regs[0], 1);
    assert_eq!(string_at(&machine, 0x4000), "alpha\nbeta/");
    assert_eq!((machine.regs[1], machine.regs[2]), (11, 1));
}

#[test]
fn info_keeps_the_newest_lines_that_fit() {
    let (mut host, _) = session_host(Vec::new());
    // Five lines of 17 bytes; 40 bytes hold the last two with their NUL.
    let machine = run(
        "LI R1, 3\nLI R2, 5\nIMM32 R3, 0x4000\nLI R4, 40\nSYSCALL 73\nHALT",
        &mut host,
    );
    assert_eq!(machine.regs[0], 1);
    assert_eq!(
        string_at(&machine, 0x4000),
        "topic 3 line 4\ntopic 3 line 5"
    );
    assert_eq!(machine.regs[2], 3, "three older lines left out");
}

#[test]
fn run_passes_argv_and_takes_back_the_childs_screen_and_status() {
    let (mut host, seen) = session_host(Vec::new());
    let source = "IMM32 R1, ARGV\nLI R2, 3\nSYSCALL 72\nHALT\nARGV:\n.word A, B, C\nA:\n.string \"hello\"\nB:\n.string \"2\"\nC:\n.string \"more words\"";
    let machine = run(source, &mut host);
    assert_eq!(seen.borrow().runs, vec![vec!["hello", "2", "more words"]]);
    assert_eq!(
        (machine.regs[0], machine.regs[1], machine.regs[2]),
        (1, 1, 41)
    );
    assert_eq!(host.output, vec!["ran hello 2 more words"]);
    assert_eq!(machine.screen().get(0, 0), Some(14), "the child's screen");
}

#[test]
fn clear_resets_the_console_and_the_terminal() {
    let (mut host, seen) = session_host(Vec::new());
    let machine = run(
        "IMM32 R1, T\nLI R2, 1\nSYSCALL 1\nSYSCALL 75\nHALT\nT:\n.string \"text\"",
        &mut host,
    );
    assert_eq!(seen.borrow().cleared, 1);
    assert_eq!(machine.screen().text_row, 0);
    assert_eq!(
        machine.screen().hash(),
        Screen::new(512, 512).unwrap().hash()
    );
}

#[test]
fn arguments_follow_the_calling_convention() {
    let program = asm::assemble("t", "HALT").unwrap();
    let mut machine = Machine::with_program(Config::default(), &program.words, 0).unwrap();
    let top = machine.sp;
    machine
        .pass_arguments(&["run".to_string(), "héllo wörld".to_string()])
        .unwrap();
    assert_eq!(machine.regs[1], 2);
    let argv = machine.regs[2];
    assert_eq!(machine.sp, argv, "SP starts below argv");
    assert!(argv < top);
    let first = machine.read_word(argv).unwrap();
    let second = machine.read_word(argv + 1).unwrap();
    assert_eq!(string_at(&machine, first), "run");
    assert_eq!(string_at(&machine, second), "héllo wörld");

    let mut bare = Machine::with_program(Config::default(), &program.words, 0).unwrap();
    bare.pass_arguments(&[]).unwrap();
    assert_eq!((bare.regs[1], bare.regs[2], bare.sp), (0, top, top));
}

#[test]
fn arguments_beyond_the_limits_are_refused() {
    let program = asm::assemble("t", "HALT").unwrap();
    let mut machine = Machine::with_program(Config::default(), &program.words, 0).unwrap();
    let many = vec!["x".to_string(); pxos_vm::MAX_ARGS + 1];
    let err = machine.pass_arguments(&many).unwrap_err();
    assert!(err.to_string().contains("at most 64 arguments"), "{err}");
    let long = vec!["y".repeat(pxos_vm::MAX_ARG_BYTES)];
    assert!(machine.pass_arguments(&long).is_err());
    let nul = vec!["a\0b".to_string()];
    assert!(
        machine
            .pass_arguments(&nul)
            .unwrap_err()
            .to_string()
            .contains("NUL")
    );
}
