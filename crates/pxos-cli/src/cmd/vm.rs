//! `pxos asm | disasm | run | debug`: PXVM programs.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pxos_vm::{
    Config, Exit, Host, Machine, MemoryStorage, ProgramImage, StdHost, Storage, Trap, asm, disasm,
};
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::home::home;
use crate::output::Output;

/// A program with the symbols its source defined (none for images).
struct Loaded {
    image: ProgramImage,
    symbols: std::collections::BTreeMap<String, u32>,
}

/// Loads a program image, or assembles a `.pxasm` source.
fn load(path: &Path) -> Result<Loaded> {
    if path.extension().is_some_and(|ext| ext == "pxasm") {
        let program = asm::assemble_file(path)?;
        return Ok(Loaded {
            image: ProgramImage {
                words: program.words,
                entry: program.entry,
            },
            symbols: program.symbols,
        });
    }
    let image = ProgramImage::read(path)?;
    Ok(Loaded {
        image,
        symbols: Default::default(),
    })
}

/// Syscall storage: PixelFS when the home has one, memory otherwise.
pub fn storage(global: &Global) -> Result<Box<dyn Storage>> {
    let home = home(global)?;
    match pxos_fs::PixelFs::open(&home.join("fs")) {
        Ok(fs) => Ok(Box::new(pxos_boot::FsStorage::new(fs, home.join("tmp")))),
        Err(_) => Ok(Box::new(MemoryStorage::default())),
    }
}

pub fn asm(file: &Path, target: Option<&Path>, output: &Output) -> Result<Outcome> {
    let program = asm::assemble_file(file)?;
    let target: PathBuf = target
        .map(Path::to_path_buf)
        .unwrap_or_else(|| file.with_extension("png"));
    let image = ProgramImage {
        words: program.words.clone(),
        entry: program.entry,
    };
    pxos_pixel::durable::write_atomic(&target, &image.to_png(), "asm")
        .with_context(|| format!("cannot write {}", target.display()))?;
    output.emit(
        json!({"type": "assembled", "source": file, "output": target, "words": program.words.len(), "entry": program.entry,
               "symbols": program.symbols}),
        || format!("{} -> {}: {} words, entry {}", file.display(), target.display(), program.words.len(), program.entry),
    )?;
    Ok(Outcome::Success)
}

pub fn disasm(path: &Path, output: &Output) -> Result<Outcome> {
    let loaded = load(path)?;
    if output.json {
        for line in disasm::decode_lines(&loaded.image.words) {
            output.emit(json!({"type": "line", "address": line.address, "words": line.words, "text": line.text,
                               "word": loaded.image.words[line.address as usize]}), String::new)?;
        }
    } else {
        let mut stdout = std::io::stdout().lock();
        write!(
            stdout,
            "{}",
            disasm::disassemble(&loaded.image.words, loaded.image.entry)
        )?;
    }
    Ok(Outcome::Success)
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    args: &[u32],
    screen: Option<&Path>,
    memory: Option<&Path>,
    fuel: u64,
    trace: bool,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let loaded = load(path)?;
    let mut machine =
        Machine::with_program(Config::default(), &loaded.image.words, loaded.image.entry)?;
    for (index, arg) in args.iter().take(15).enumerate() {
        machine.regs[index + 1] = *arg;
    }
    let mut host = StdHost::new(storage(global)?);
    host.echo = !output.json && !output.quiet;
    host.time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let started = std::time::Instant::now();
    let result = if trace {
        run_traced(&mut machine, &mut host, fuel)
    } else {
        run_resuming(&mut machine, &mut host, fuel)
    };
    let seconds = started.elapsed().as_secs_f64();
    for warning in &host.warnings {
        eprintln!("pxos: warning: {warning}");
    }
    if let Some(memory) = memory {
        pxos_pixel::durable::write_atomic(memory, &machine.memory_png(512), "memory")
            .with_context(|| format!("cannot write {}", memory.display()))?;
    }
    if let Some(screen) = screen {
        pxos_pixel::durable::write_atomic(screen, &machine.screen().to_png(), "screen")
            .with_context(|| format!("cannot write {}", screen.display()))?;
    }
    if output.json {
        for line in &host.output {
            output.emit(json!({"type": "print", "text": line}), String::new)?;
        }
    }
    let trap = result.as_ref().err();
    output.emit(
        json!({"type": "run", "program": path, "halted": result.is_ok(), "trap": trap.map(|t| t.to_string()),
               "trap_kind": trap.map(|t| t.kind()), "cycles": machine.cycles, "seconds": seconds,
               "registers": machine.regs, "pc": machine.pc, "warnings": host.warnings, "screen": screen}),
        || match trap {
            None => format!("halted after {} instructions", machine.cycles),
            Some(trap) => format!("{} after {} instructions: {trap}", output.bad("trapped"), machine.cycles),
        },
    )?;
    if let Some(trap) = trap {
        if !output.json {
            eprintln!("pxos: error: {}: program trapped: {trap}", path.display());
        }
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

fn run_resuming(machine: &mut Machine, host: &mut dyn Host, fuel: u64) -> Result<Exit, Trap> {
    let mut left = fuel;
    loop {
        match machine.run(host, left)? {
            Exit::Yielded { fuel_left } => left = fuel_left,
            halted => return Ok(halted),
        }
    }
}

fn run_traced(machine: &mut Machine, host: &mut dyn Host, fuel: u64) -> Result<Exit, Trap> {
    let mut stderr = std::io::stderr().lock();
    for _ in 0..fuel {
        let text = describe(machine);
        let _ = writeln!(stderr, "{text}");
        match machine.step(host)? {
            Exit::Halted { fuel_left } => return Ok(Exit::Halted { fuel_left }),
            Exit::Yielded { .. } => {}
        }
    }
    Err(Trap::FuelExhausted { pc: machine.pc })
}

fn describe(machine: &Machine) -> String {
    match machine.current_instruction() {
        Some(instruction) => format!(
            "{:>6}  {}",
            machine.pc,
            disasm::format_instruction(&instruction, &|_| None)
        ),
        None => format!(
            "{:>6}  .word {:#010x}",
            machine.pc,
            machine.read_word(machine.pc).unwrap_or(0)
        ),
    }
}

const DEBUG_HELP: &str = "commands:
  step [N] (s)          execute N instructions (default 1)
  continue (c)          run until a breakpoint, HALT or a trap
  break ADDR|LABEL (b)  set a breakpoint
  delete ADDR|LABEL     remove a breakpoint
  regs (r)              registers, PC, SP, flags, cycles
  mem ADDR [N] (x)      N words of memory (default 8)
  disasm [ADDR [N]]     N instructions from ADDR (default: PC, 8)
  screen FILE           write the screen to a PNG
  output                what the program printed
  quit (q)";

pub fn debug(path: &Path, global: &Global, output: &Output) -> Result<Outcome> {
    let loaded = load(path)?;
    let mut machine =
        Machine::with_program(Config::default(), &loaded.image.words, loaded.image.entry)?;
    let mut host = StdHost::new(storage(global)?);
    let mut breakpoints: BTreeSet<u32> = BTreeSet::new();
    let mut finished: Option<String> = None;
    let interactive = std::io::stdin().is_terminal();
    let resolve = |text: &str| -> Result<u32> {
        if let Some(value) = loaded.symbols.get(text) {
            return Ok(*value);
        }
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.with_context(|| format!("'{text}' is not an address or a known label"))
    };
    let say = |value: serde_json::Value, text: String| output.emit(value, move || text);
    if interactive {
        eprintln!(
            "pxos debug: {} ({} words, entry {}); `help` lists commands",
            path.display(),
            loaded.image.words.len(),
            loaded.image.entry
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("(pxdbg) ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&command) = words.first() else {
            continue;
        };
        let arg = |index: usize| words.get(index).copied();
        let result: Result<()> = (|| {
            match command {
                "help" | "h" => say(
                    json!({"type": "help", "text": DEBUG_HELP}),
                    DEBUG_HELP.to_string(),
                )?,
                "quit" | "q" => return Err(anyhow::anyhow!("quit")),
                "step" | "s" | "continue" | "c" => {
                    if let Some(done) = &finished {
                        bail!("the program has ended ({done})");
                    }
                    let count: u64 = if command.starts_with('s') {
                        arg(1).map(str::parse).transpose()?.unwrap_or(1)
                    } else {
                        u64::MAX
                    };
                    let mut executed = 0u64;
                    let mut stop = None;
                    while executed < count {
                        match machine.step(&mut host) {
                            Ok(Exit::Halted { .. }) => {
                                stop = Some("halted".to_string());
                                finished = Some("halted".into());
                                break;
                            }
                            Ok(Exit::Yielded { .. }) => {}
                            Err(trap) => {
                                stop = Some(format!("trap: {trap}"));
                                finished = Some(format!("trap: {trap}"));
                                break;
                            }
                        }
                        executed += 1;
                        if breakpoints.contains(&machine.pc) && count == u64::MAX {
                            stop = Some(format!("breakpoint at {}", machine.pc));
                            break;
                        }
                        if executed >= 100_000_000 {
                            stop = Some("stopped after 100000000 instructions".into());
                            break;
                        }
                    }
                    let stop = stop.unwrap_or_else(|| "stepped".to_string());
                    say(
                        json!({"type": "stop", "reason": stop, "pc": machine.pc, "executed": executed, "next": describe(&machine)}),
                        format!("{stop}; next: {}", describe(&machine)),
                    )?;
                }
                "break" | "b" | "delete" => {
                    let address = resolve(arg(1).context("which address?")?)?;
                    let set = command != "delete";
                    if set {
                        breakpoints.insert(address)
                    } else {
                        breakpoints.remove(&address)
                    };
                    say(
                        json!({"type": "breakpoints", "breakpoints": breakpoints}),
                        format!("breakpoints: {breakpoints:?}"),
                    )?;
                }
                "regs" | "r" => {
                    let mut text = String::new();
                    for (index, value) in machine.regs.iter().enumerate() {
                        text.push_str(&format!(
                            "R{index:<2} = {value:#010x} ({})\n",
                            *value as i32
                        ));
                    }
                    text.push_str(&format!(
                        "PC = {}  SP = {}  flags Z={} L={} B={}  cycles = {}",
                        machine.pc,
                        machine.sp,
                        machine.flags.z as u8,
                        machine.flags.l as u8,
                        machine.flags.b as u8,
                        machine.cycles
                    ));
                    say(
                        json!({"type": "registers", "registers": machine.regs, "pc": machine.pc, "sp": machine.sp,
                               "flags": {"z": machine.flags.z, "l": machine.flags.l, "b": machine.flags.b}, "cycles": machine.cycles}),
                        text,
                    )?;
                }
                "mem" | "x" => {
                    let start = resolve(arg(1).context("which address?")?)?;
                    let count: u32 = arg(2).map(str::parse).transpose()?.unwrap_or(8).min(4096);
                    let values: Vec<Option<u32>> = (0..count)
                        .map(|i| machine.read_word(start.wrapping_add(i)))
                        .collect();
                    let text = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| match v {
                            Some(v) => format!("{:>6}: {v:#010x}", start as usize + i),
                            None => format!("{:>6}: (outside memory)", start as usize + i),
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    say(
                        json!({"type": "memory", "address": start, "words": values}),
                        text,
                    )?;
                }
                "disasm" | "d" => {
                    let start = arg(1).map(&resolve).transpose()?.unwrap_or(machine.pc);
                    let count: usize = arg(2).map(str::parse).transpose()?.unwrap_or(8).min(1024);
                    let end = (start as usize + count * 2).min(machine.code_words() as usize);
                    let window: Vec<u32> =
                        (start as usize..end).map(|a| machine.memory()[a]).collect();
                    let lines: Vec<String> = disasm::decode_lines(&window)
                        .into_iter()
                        .take(count)
                        .map(|l| {
                            format!(
                                "{:>6}{} {}",
                                start + l.address,
                                if start + l.address == machine.pc {
                                    " >"
                                } else {
                                    "  "
                                },
                                l.text
                            )
                        })
                        .collect();
                    say(json!({"type": "disasm", "lines": lines}), lines.join("\n"))?;
                }
                "screen" => {
                    let target = arg(1).context("which file?")?;
                    std::fs::write(target, machine.screen().to_png())
                        .with_context(|| format!("cannot write {target}"))?;
                    say(
                        json!({"type": "screen", "output": target, "hash": machine.screen().hash()}),
                        format!("wrote {target}"),
                    )?;
                }
                "output" => say(
                    json!({"type": "output", "lines": host.output}),
                    host.output.join("\n"),
                )?,
                other => bail!("unknown command '{other}' (try `help`)"),
            }
            Ok(())
        })();
        match result {
            Ok(()) => {}
            Err(err) if err.to_string() == "quit" => break,
            Err(err) => {
                if output.json {
                    output.emit(
                        json!({"type": "error", "message": err.to_string()}),
                        String::new,
                    )?;
                }
                eprintln!("pxos: debug: {err}");
            }
        }
    }
    Ok(Outcome::Success)
}
