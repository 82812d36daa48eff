//! The evaluator: structural and execution checks of a VRAM OS image.

use std::collections::BTreeSet;

use pxos_vm::isa::{Instruction, Op, syscall};
use serde::Serialize;

use crate::os;
use crate::roadmap::{
    METADATA_MAGIC, PALETTE_MAGIC, PROCESS_MAGIC, ProgramRun, SYSCALL_MAGIC, format_code, run_at,
};
use crate::vram::{Region, Vram};

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    /// `structural` or `execution`.
    pub kind: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub score: u32,
    pub max_score: u32,
    pub checks: Vec<CheckResult>,
}

impl Evaluation {
    pub fn full_marks(&self) -> bool {
        self.score == self.max_score
    }

    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }
}

/// Fuel for the execution checks.
pub const EVAL_FUEL: u64 = 1_000_000;

/// Scores a VRAM image.
pub fn evaluate(vram: &Vram) -> Evaluation {
    let mut checks = Vec::new();
    let mut push = |name, kind, result: Result<String, String>| {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        checks.push(CheckResult {
            name,
            kind,
            passed,
            detail,
        });
    };

    push("regions_initialized", "structural", {
        let empty: Vec<&str> = Region::ALL
            .into_iter()
            .filter(|region| vram.region_words(*region).iter().all(|&x| x == 0))
            .map(Region::name)
            .collect();
        if empty.is_empty() {
            Ok("every region holds data".into())
        } else {
            Err(format!("empty regions: {}", empty.join(", ")))
        }
    });

    push(
        "metadata_valid",
        "structural",
        (|| {
            let words = vram.region_words(Region::Metadata);
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            if &bytes[..8] != METADATA_MAGIC {
                return Err("no PXVRAM01 magic in the metadata region".into());
            }
            let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
            let json = bytes
                .get(12..12 + len)
                .ok_or("metadata length runs past the region")?;
            let value: serde_json::Value =
                serde_json::from_slice(json).map_err(|err| format!("metadata JSON: {err}"))?;
            let name = value["name"].as_str().ok_or("metadata has no name")?;
            Ok(format!("metadata names '{name}'"))
        })(),
    );

    push(
        "palette_decodes",
        "structural",
        (|| {
            let words = vram.region_words(Region::OpcodePalette);
            let entries = table(&words, PALETTE_MAGIC, "opcode palette")?;
            let mut seen = BTreeSet::new();
            for word in entries {
                let [code, format, size, _] = word.to_le_bytes();
                let op =
                    Op::from_byte(code).ok_or(format!("palette entry {code} is not an opcode"))?;
                if format != format_code(op.format()) || usize::from(size) != op.format().words() {
                    return Err(format!(
                        "palette entry for {} has the wrong format",
                        op.mnemonic()
                    ));
                }
                seen.insert(code);
            }
            let expected: BTreeSet<u8> = Op::ALL.iter().map(|op| *op as u8).collect();
            if seen == expected {
                Ok(format!("{} opcodes match the ISA", seen.len()))
            } else {
                Err(format!(
                    "palette has {} of the {} opcodes",
                    seen.intersection(&expected).count(),
                    expected.len()
                ))
            }
        })(),
    );

    push(
        "syscall_table_valid",
        "structural",
        (|| {
            let words = vram.region_words(Region::SyscallTable);
            let entries = syscall_entries(&words)?;
            let found: BTreeSet<u16> = entries.iter().map(|(n, _)| *n).collect();
            let expected: BTreeSet<u16> = syscall::ALL.iter().map(|(n, _, _)| *n).collect();
            let (kernel_start, kernel_end) = (
                vram.region_address(Region::Kernel),
                vram.region_address(Region::SyscallTable),
            );
            let memory = vram.as_words();
            if let Some((number, handler)) = entries.iter().find(|(_, h)| {
                *h != 0
                    && (*h < kernel_start
                        || *h >= kernel_end
                        || Instruction::decode(&memory[*h as usize..]).is_none())
            }) {
                Err(format!(
                    "the handler of syscall {number} at {handler} is not code in the kernel region"
                ))
            } else if found == expected {
                let handled = entries.iter().filter(|(_, h)| *h != 0).count();
                Ok(format!(
                    "{} syscalls, {handled} with a kernel handler",
                    found.len()
                ))
            } else {
                Err(format!(
                    "syscall table lists {:?}, expected {:?}",
                    found, expected
                ))
            }
        })(),
    );

    let processes = (|| -> Result<Vec<(u32, u32, String)>, String> {
        let words = vram.region_words(Region::ProcessTable);
        let width = vram.width() as usize;
        if words[0] != PROCESS_MAGIC {
            return Err("no PROC header in the process table".into());
        }
        let count = words[1] as usize;
        let rows = words.len() / width;
        if count == 0 || count >= rows {
            return Err(format!(
                "process table claims {count} processes in {rows} rows"
            ));
        }
        let mut processes = Vec::new();
        for row in words.chunks(width).skip(1).take(count) {
            let name_len = (row[3] as usize).min(64).min((width - 4) * 4);
            let name: Vec<u8> = row[4..]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .take(name_len)
                .collect();
            processes.push((row[0], row[1], String::from_utf8_lossy(&name).into_owned()));
        }
        Ok(processes)
    })();
    let program_start = vram.region_address(Region::ProgramArea);
    push(
        "process_table_valid",
        "structural",
        match &processes {
            Err(err) => Err(err.to_string()),
            Ok(list) if list.is_empty() => Err("no processes".into()),
            Ok(list) => {
                let memory = vram.as_words();
                let bad: Vec<String> = list
                    .iter()
                    .filter(|(_, entry, _)| {
                        *entry < program_start
                            || Instruction::decode(
                                &memory[(*entry as usize).min(memory.len() - 1)..],
                            )
                            .is_none()
                    })
                    .map(|(pid, _, name)| format!("{pid} {name}"))
                    .collect();
                let pids: BTreeSet<u32> = list.iter().map(|p| p.0).collect();
                if !bad.is_empty() {
                    Err(format!(
                        "processes whose entry is not code in the program area: {}",
                        bad.join(", ")
                    ))
                } else if pids.len() != list.len() {
                    Err("duplicate pids".into())
                } else {
                    Ok(format!("{} processes, entries are code", list.len()))
                }
            }
        },
    );

    push(
        "kernel_disassembles",
        "structural",
        disassembles(vram, Region::Kernel),
    );
    push(
        "program_disassembles",
        "structural",
        disassembles(vram, Region::ProgramArea),
    );

    let entry = processes
        .ok()
        .and_then(|p| p.first().map(|p| p.1))
        .unwrap_or(program_start);
    let run = run_at(vram, entry, EVAL_FUEL);
    push(
        "hello_runs",
        "execution",
        match &run {
            Ok(ProgramRun { result: Ok(_), .. }) => Ok(format!("the program at {entry} halted")),
            Ok(ProgramRun {
                result: Err(trap), ..
            }) => Err(format!("the program at {entry} trapped: {trap}")),
            Err(err) => Err(err.to_string()),
        },
    );
    push(
        "hello_prints",
        "execution",
        match &run {
            Ok(run)
                if run
                    .output
                    .iter()
                    .any(|line| line.to_lowercase().contains("hello")) =>
            {
                Ok(format!("printed {:?}", run.output))
            }
            Ok(run) => Err(format!("printed {:?}, no hello", run.output)),
            Err(err) => Err(err.to_string()),
        },
    );
    push(
        "hello_draws",
        "execution",
        match &run {
            Ok(run) if run.drawn > 0 => Ok(format!("drew {} pixels", run.drawn)),
            Ok(_) => Err("drew nothing on the screen".into()),
            Err(err) => Err(err.to_string()),
        },
    );

    for (name, result) in os_checks(vram) {
        push(name, "execution", result);
    }

    let score = checks.iter().filter(|c| c.passed).count() as u32;
    Evaluation {
        score,
        max_score: checks.len() as u32,
        checks,
    }
}

/// The syscall table's entries: (number, handler address).
pub fn syscall_entries(words: &[u32]) -> Result<Vec<(u16, u32)>, String> {
    if words.len() < 2 || words[0] != SYSCALL_MAGIC {
        return Err("no syscall table header".into());
    }
    let count = words[1] as usize;
    let entries = words
        .get(2..2 + count.saturating_mul(2))
        .ok_or_else(|| format!("syscall table claims {count} entries, more than fit"))?;
    Ok(entries
        .chunks_exact(2)
        .map(|pair| ((pair[0] & 0xffff) as u16, pair[1]))
        .collect())
}

/// Instructions the execution checks give the VRAM OS.
pub const EVAL_OS_STEPS: u64 = 200_000;

/// The VRAM OS execution checks: it boots, every process makes progress,
/// syscalls go through the table, and a trapping process does not stop the others.
fn os_checks(vram: &Vram) -> Vec<(&'static str, Result<String, String>)> {
    let baseline = os::run(vram, EVAL_OS_STEPS);
    let boots = match &baseline {
        Err(err) => Err(err.to_string()),
        Ok(run) => match &run.ending {
            os::Ending::KernelTrapped { trap } => Err(format!("the kernel trapped: {trap}")),
            ending if run.switches == 0 => Err(format!(
                "the kernel ran no process ({})",
                serde_json::to_string(ending).unwrap_or_default()
            )),
            _ => Ok(format!(
                "{} slices in {} instructions",
                run.switches, run.steps
            )),
        },
    };
    let progress = match &baseline {
        Err(err) => Err(err.to_string()),
        Ok(run) if run.processes.len() < 2 => Err(format!(
            "{} process(es): scheduling needs at least two",
            run.processes.len()
        )),
        Ok(run) => {
            let stalled: Vec<String> = run
                .processes
                .iter()
                .filter(|p| p.instructions == 0 || p.slices == 0)
                .map(|p| format!("{} {}", p.pid, p.name))
                .collect();
            if stalled.is_empty() {
                Ok(run
                    .processes
                    .iter()
                    .map(|p| {
                        format!(
                            "{}: {} slices, {} instructions, {}",
                            p.name, p.slices, p.instructions, p.state
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "))
            } else {
                Err(format!("processes that never ran: {}", stalled.join(", ")))
            }
        }
    };
    let via_table = (|| -> Result<String, String> {
        let run = baseline.as_ref().map_err(|err| err.to_string())?;
        let printed = run.output.iter().filter(|p| p.pid.is_some()).count();
        if printed == 0 {
            return Err("no process printed through the kernel".into());
        }
        // Patch the PRINT entry's handler to 0 ("not implemented") and run again.
        let mut patched = vram.clone();
        let table = vram.region_words(Region::SyscallTable);
        let entries = syscall_entries(&table)?;
        let index = entries
            .iter()
            .position(|(n, _)| *n == syscall::PRINT)
            .ok_or("the syscall table has no PRINT entry")?;
        patched
            .write_words(Region::SyscallTable, 3 + 2 * index as u32, &[0])
            .map_err(|err| err.to_string())?;
        let after = os::run(&patched, EVAL_OS_STEPS).map_err(|err| err.to_string())?;
        let printed_after = after.output.iter().filter(|p| p.pid.is_some()).count();
        if printed_after == 0 {
            Ok(format!(
                "processes printed {printed} line(s); with the PRINT entry patched out, none"
            ))
        } else {
            Err(format!(
                "with the PRINT entry patched out, processes still printed {printed_after} line(s): syscalls bypass the table"
            ))
        }
    })();
    let isolation = (|| -> Result<String, String> {
        let run = baseline.as_ref().map_err(|err| err.to_string())?;
        let first = run.processes.first().ok_or("no processes")?;
        // Make the first process trap on its first instruction.
        let mut broken = vram.clone();
        let table = vram.region_words(Region::ProcessTable);
        let entry = table[vram.width() as usize + os::pcb::ENTRY as usize];
        let (x, y) = (entry % vram.width(), entry / vram.width());
        broken.begin("evaluator", "trap_isolated");
        broken.write_pixel(x, y, [0xff, 0xff, 0xff, 0xff]);
        let after = os::run(&broken, EVAL_OS_STEPS).map_err(|err| err.to_string())?;
        if let os::Ending::KernelTrapped { trap } = &after.ending {
            return Err(format!("the kernel trapped: {trap}"));
        }
        let victim = after.processes.first().ok_or("no processes")?;
        if victim.state != "dead" {
            return Err(format!(
                "process {} trapped but its control block says '{}', not dead",
                first.name, victim.state
            ));
        }
        let others: Vec<&os::ProcessReport> = after.processes.iter().skip(1).collect();
        if others.is_empty() {
            return Err("no other process to go on".into());
        }
        match others.iter().find(|p| p.instructions == 0) {
            Some(stalled) => Err(format!(
                "after {} trapped, {} never ran",
                first.name, stalled.name
            )),
            None => Ok(format!(
                "{} trapped and was marked dead; {} went on",
                first.name,
                others
                    .iter()
                    .map(|p| format!("{} ({} instructions)", p.name, p.instructions))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    })();
    vec![
        ("os_boots", boots),
        ("processes_progress", progress),
        ("syscalls_via_table", via_table),
        ("trap_isolated", isolation),
    ]
}

/// The entries of a table region: magic, count, then `count` words.
fn table<'a>(words: &'a [u32], magic: u32, what: &str) -> Result<&'a [u32], String> {
    if words.len() < 2 || words[0] != magic {
        return Err(format!("no {what} header"));
    }
    let count = words[1] as usize;
    words
        .get(2..2 + count)
        .ok_or_else(|| format!("{what} claims {count} entries, more than fit"))
}

/// The region's code disassembles: instructions up to a HALT, no invalid word before it.
fn disassembles(vram: &Vram, region: Region) -> Result<String, String> {
    let words = vram.region_words(region);
    let end = words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
    if end == 0 {
        return Err(format!("{region} holds no code"));
    }
    let lines = pxos_vm::disasm::decode_lines(&words[..end]);
    let instructions = lines.iter().take_while(|l| l.instruction.is_some()).count();
    let halts = lines
        .iter()
        .any(|l| l.instruction.is_some_and(|i| i.op == Op::HALT));
    if instructions == 0 || !halts {
        return Err(format!(
            "{region} does not disassemble to a program that halts"
        ));
    }
    Ok(format!(
        "{instructions} instructions before the first data word"
    ))
}
