//! `pxos asm | disasm | run | debug`: PXVM programs.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::{CliError, Context, Result, bail};
use pxos_vm::{Exit, Machine, ProgramImage, asm, disasm};
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::home::home;
use crate::output::{Output, esc};

/// A program with the symbols its source defined (none for images).
struct Loaded {
    image: ProgramImage,
    symbols: std::collections::BTreeMap<String, u32>,
}

/// Loads a program image, or assembles a `.pxasm` source.
/// Assembles a source file; a source with nothing in it is refused (an empty
/// program has nothing to run).
fn assemble_source(path: &Path) -> Result<asm::Program> {
    let program = asm::assemble_file(path)?;
    if program.words.is_empty() {
        return Err(CliError::bad_input(format!(
            "{}: the source holds no instructions or data (an empty program cannot run)",
            path.display()
        )));
    }
    Ok(program)
}

fn load(path: &Path) -> Result<Loaded> {
    if path.extension().is_some_and(|ext| ext == "pxasm") {
        let program = assemble_source(path)?;
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

pub fn asm(file: &Path, target: Option<&Path>, output: &Output) -> Result<Outcome> {
    let program = assemble_source(file)?;
    let target: PathBuf = target
        .map(Path::to_path_buf)
        .unwrap_or_else(|| file.with_extension("png"));
    let image = ProgramImage {
        words: program.words.clone(),
        entry: program.entry,
    };
    pxos_pixel::durable::write_atomic(&target, &image.to_png(), pxos_pixel::durable::label::ASM)
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

/// What `pxos run` was asked for.
pub struct RunOptions<'a> {
    pub args: &'a [String],
    pub screen: Option<&'a Path>,
    pub memory: Option<&'a Path>,
    pub fuel: u64,
    pub caps: pxos_vm::Caps,
    pub trace: bool,
    pub trusted: bool,
    /// A person consents to a sandboxed run asking the model.
    pub allow_llm: bool,
}

/// `pxos run FILE`: sandboxed unless the file is part of the current cartridge
/// or `--trusted` lifts the sandbox.
pub fn run_file(
    path: &Path,
    options: &RunOptions<'_>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let loaded = load(path)?;
    let bytes = pxos_pixel::text::read_input(path)?;
    let mut prepared = pxos_boot::run::prepare_file(
        &home(global)?,
        path,
        &bytes,
        &loaded.image,
        options.trusted,
        options.fuel,
    )?;
    prepared.sandbox.caps = options.caps;
    with_model(&mut prepared, options, global)?;
    execute(
        prepared,
        &loaded.image,
        &path.display().to_string(),
        options,
        output,
    )
}

/// `pxos run NAME [--cartridge C]`: a program of the current cartridge
/// (trusted), or of another one (sandboxed).
pub fn run_named(
    name: &str,
    cartridge: Option<&str>,
    options: &RunOptions<'_>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let (mut prepared, image) =
        pxos_boot::run::prepare_named(&home(global)?, name, cartridge, options.fuel)?;
    prepared.sandbox.caps = options.caps;
    with_model(&mut prepared, options, global)?;
    execute(prepared, &image, name, options, output)
}

/// The home's model for SYS_LLM, and the person's consent when given.
fn with_model(
    prepared: &mut pxos_boot::run::Prepared,
    options: &RunOptions<'_>,
    global: &Global,
) -> Result<()> {
    let home = home(global)?;
    prepared.llm = Some(pxos_agent::bridge::SharedModel::new(&home, None).boxed());
    if options.allow_llm {
        prepared.sandbox = prepared.sandbox.clone().with_llm_consent();
    }
    Ok(())
}

fn execute(
    prepared: pxos_boot::run::Prepared,
    image: &ProgramImage,
    label: &str,
    options: &RunOptions<'_>,
    output: &Output,
) -> Result<Outcome> {
    let placement = prepared.placement.clone();
    if placement.mode != "trusted" && !output.quiet && !output.json {
        eprintln!("pxos: note: {}: {}", placement.mode, placement.why);
    }
    let (hypervisor, mut launch) = prepared.launch(image, options.args);
    if !output.json && !output.quiet {
        launch.on_print = Some(Box::new(|line: &str| println!("{}", esc(line))));
    }
    let mut execution = hypervisor.start(launch);
    let started = std::time::Instant::now();
    if options.trace {
        let mut stderr = std::io::stderr().lock();
        while execution.ended().is_none() {
            if let Some(machine) = execution.machine() {
                let _ = writeln!(stderr, "{}", describe(machine));
            }
            let _ = execution.step();
        }
    } else {
        let _ = execution.run();
    }
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(memory), Some(machine)) = (options.memory, execution.machine()) {
        pxos_pixel::durable::write_atomic(
            memory,
            &machine.memory_png(512),
            pxos_pixel::durable::label::MEMORY,
        )
        .with_context(|| format!("cannot write {}", memory.display()))?;
    }
    let result = execution.finish();
    for warning in &result.warnings {
        eprintln!("pxos: warning: {}", esc(warning));
    }
    if result.usage.warnings_dropped > 0 {
        eprintln!(
            "pxos: warning: {} more failed syscalls (only the first {} are kept)",
            result.usage.warnings_dropped,
            result.warnings.len()
        );
    }
    if let (Some(target), Some(screen)) = (options.screen, &result.screen) {
        pxos_pixel::durable::write_atomic(
            target,
            &screen.to_png(),
            pxos_pixel::durable::label::SCREEN,
        )
        .with_context(|| format!("cannot write {}", target.display()))?;
    }
    if output.json {
        for line in &result.output {
            output.emit(json!({"type": "print", "text": line}), String::new)?;
        }
    }
    output.emit(
        json!({"type": "run", "program": label, "halted": result.success, "trap": result.trap,
               "trap_kind": result.trap_kind, "cycles": result.cycles, "seconds": seconds,
               "registers": result.registers, "pc": result.pc, "warnings": result.warnings,
               "screen": options.screen, "execution": result.log_id, "placement": placement,
               "sandbox": result.sandbox}),
        || match &result.trap {
            None => format!(
                "{label} halted after {} instructions (execution #{})",
                result.cycles, result.log_id
            ),
            Some(trap) => format!(
                "{label} {} after {} instructions: {trap} (execution #{})",
                output.bad("trapped"),
                result.cycles,
                result.log_id
            ),
        },
    )?;
    if let Some(trap) = &result.trap {
        if !output.json {
            eprintln!("pxos: error: {label}: program trapped: {trap}");
        }
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

fn machine_of<'a>(execution: &'a pxos_boot::hypervisor::Execution<'_>) -> Result<&'a Machine> {
    execution
        .machine()
        .ok_or_else(|| CliError::bad_input("the program did not load"))
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

pub fn debug(
    path: &Path,
    fuel: u64,
    caps: pxos_vm::Caps,
    trusted: bool,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let loaded = load(path)?;
    let bytes = pxos_pixel::text::read_input(path)?;
    let mut prepared =
        pxos_boot::run::prepare_file(&home(global)?, path, &bytes, &loaded.image, trusted, fuel)?;
    prepared.sandbox.caps = caps;
    let placement = prepared.placement.clone();
    let (hypervisor, launch) = prepared.launch(&loaded.image, &[]);
    let mut execution = hypervisor.start(launch);
    let mut breakpoints: BTreeSet<u32> = BTreeSet::new();
    let interactive = std::io::stdin().is_terminal();
    let resolve = |text: &str| -> Result<u32> {
        if let Some(value) = loaded.symbols.get(text) {
            return Ok(*value);
        }
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.map_err(|_| CliError::usage(format!("'{text}' is not an address or a known label")))
    };
    let say = |value: serde_json::Value, text: String| output.emit(value, move || text);
    if interactive {
        eprintln!(
            "pxos debug: {} ({} words, entry {}; {}: {}); `help` lists commands",
            path.display(),
            loaded.image.words.len(),
            loaded.image.entry,
            placement.mode,
            placement.why
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
        let mut quit = false;
        let result: Result<()> = (|| {
            match command {
                "help" | "h" => say(
                    json!({"type": "help", "text": DEBUG_HELP}),
                    DEBUG_HELP.to_string(),
                )?,
                "quit" | "q" => quit = true,
                "step" | "s" | "continue" | "c" => {
                    if let Some(done) = execution.ended() {
                        let done = match done {
                            Ok(_) => "halted".to_string(),
                            Err(trap) => format!("trap: {trap}"),
                        };
                        bail!(Usage, "the program has ended ({done})");
                    }
                    let count: u64 = if command.starts_with('s') {
                        arg(1)
                            .map(str::parse)
                            .transpose()
                            .map_err(|_| CliError::usage("step takes a number"))?
                            .unwrap_or(1)
                    } else {
                        u64::MAX
                    };
                    let mut executed = 0u64;
                    let mut stop = None;
                    while executed < count {
                        match execution.step() {
                            Ok(Exit::Halted { .. }) => {
                                stop = Some("halted".to_string());
                                break;
                            }
                            Ok(Exit::Yielded { .. }) => {}
                            Err(trap) => {
                                stop = Some(format!("trap: {trap}"));
                                break;
                            }
                        }
                        executed += 1;
                        let pc = execution.machine().map_or(0, |m| m.pc);
                        if breakpoints.contains(&pc) && count == u64::MAX {
                            stop = Some(format!("breakpoint at {pc}"));
                            break;
                        }
                    }
                    let stop = stop.unwrap_or_else(|| "stepped".to_string());
                    let machine = execution.machine().expect("it loaded");
                    say(
                        json!({"type": "stop", "reason": stop, "pc": machine.pc, "executed": executed, "next": describe(machine)}),
                        format!("{stop}; next: {}", describe(machine)),
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
                    let machine = machine_of(&execution)?;
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
                    let machine = machine_of(&execution)?;
                    let start = resolve(arg(1).context("which address?")?)?;
                    let count: u32 = arg(2).map(str::parse).transpose()?.unwrap_or(8).min(4096);
                    // Addresses stop at the top of the address space; they never wrap to 0.
                    let values: Vec<Option<u32>> = (0..count)
                        .map_while(|i| start.checked_add(i))
                        .map(|address| machine.read_word(address))
                        .collect();
                    let text = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| match v {
                            Some(v) => format!("{:>6}: {v:#010x}", u64::from(start) + i as u64),
                            None => format!("{:>6}: (outside memory)", u64::from(start) + i as u64),
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    say(
                        json!({"type": "memory", "address": start, "words": values}),
                        text,
                    )?;
                }
                "disasm" | "d" => {
                    let machine = machine_of(&execution)?;
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
                    let machine = machine_of(&execution)?;
                    pxos_pixel::durable::write_atomic(
                        target,
                        &machine.screen().to_png(),
                        pxos_pixel::durable::label::SCREEN,
                    )
                    .with_context(|| format!("cannot write {target}"))?;
                    say(
                        json!({"type": "screen", "output": target, "hash": machine.screen().hash()}),
                        format!("wrote {target}"),
                    )?;
                }
                "output" => say(
                    json!({"type": "output", "lines": execution.output()}),
                    execution.output().join("\n"),
                )?,
                other => bail!(Usage, "unknown command '{other}' (try `help`)"),
            }
            Ok(())
        })();
        match result {
            Ok(()) if quit => break,
            Ok(()) => {}
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
    let result = execution.finish();
    output.emit(
        json!({"type": "debug-end", "execution": result.log_id, "ended": result.trap.is_none(), "trap": result.trap, "cycles": result.cycles}),
        || {
            if output.json || !interactive {
                String::new()
            } else {
                format!("execution #{} recorded ({} instructions)", result.log_id, result.cycles)
            }
        },
    )?;
    Ok(Outcome::Success)
}
