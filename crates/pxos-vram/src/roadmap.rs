//! Roadmaps: declarative YAML build plans for a VRAM OS.
//!
//! ```yaml
//! metadata: {name: "pxOS Stage 1", vram_width: 512, vram_height: 512}
//! steps:
//!   - name: background
//!     kind: fill_region
//!     params: {region: metadata, color: [10, 10, 10, 255]}
//! ```
//!
//! Step kinds are built in; a roadmap cannot run host code. Unknown kinds,
//! unknown parameters, out-of-range regions and huge sizes are refused.

use std::collections::BTreeMap;

use pxos_vm::isa::{Format, Op, syscall};
use pxos_vm::{Config, Exit, Machine, StdHost, asm};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::os::pcb;
use crate::vram::{Region, Vram};

/// Most processes: the process table has 64 rows, the first is its header.
pub const MAX_PROCESSES: usize = 63;
/// Most steps a roadmap may have.
pub const MAX_STEPS: usize = 256;
/// Longest program source a step may carry.
pub const MAX_SOURCE: usize = 64 * 1024;
/// Most fuel a `run_program` step may ask for.
pub const MAX_FUEL: u64 = 10_000_000;
/// Magic at the start of the metadata region.
pub const METADATA_MAGIC: &[u8; 8] = b"PXVRAM01";
/// First word of the opcode palette region ("OPAL"), followed by the entry count.
pub const PALETTE_MAGIC: u32 = u32::from_le_bytes(*b"OPAL");
/// First word of the syscall table region ("SYSC"), followed by the entry count.
pub const SYSCALL_MAGIC: u32 = u32::from_le_bytes(*b"SYSC");
/// First word of the process table region ("PROC"), followed by the process count;
/// process N occupies row N + 1 of the region.
pub const PROCESS_MAGIC: u32 = u32::from_le_bytes(*b"PROC");

/// A roadmap file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roadmap {
    pub metadata: Metadata,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub vram_width: u32,
    pub vram_height: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// One step as written: a name, a kind and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "serde_norway::Value::is_null")]
    pub params: serde_norway::Value,
}

/// A process table entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    /// Region holding the process's code.
    pub region: Region,
    #[serde(default)]
    pub offset: u32,
}

/// A step's parsed action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    FillRegion {
        region: Region,
        color: [u8; 4],
    },
    FillRect {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        color: [u8; 4],
    },
    WriteMetadata {
        fields: BTreeMap<String, String>,
    },
    WriteOpcodePalette,
    WriteSyscallTable {
        /// Syscall name -> label of the program assembled into the kernel region.
        handlers: BTreeMap<String, String>,
    },
    WriteProcessTable {
        processes: Vec<Process>,
    },
    AssembleProgram {
        region: Region,
        offset: u32,
        source: String,
    },
    RunProgram {
        region: Region,
        offset: u32,
        fuel: u64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FillRegionParams {
    region: Region,
    color: [u8; 4],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FillRectParams {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    color: [u8; 4],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataParams {
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyscallParams {
    #[serde(default)]
    handlers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessParams {
    processes: Vec<Process>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssembleParams {
    region: Region,
    #[serde(default)]
    offset: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunParams {
    region: Region,
    #[serde(default)]
    offset: u32,
    #[serde(default = "default_fuel")]
    fuel: u64,
}

fn default_fuel() -> u64 {
    100_000
}

/// The step kinds and what they do.
pub const KINDS: &[(&str, &str)] = &[
    (
        "fill_region",
        "fill a region with a colour: {region, color: [r, g, b, a]}",
    ),
    ("fill_rect", "fill a rectangle: {x, y, w, h, color}"),
    (
        "write_metadata",
        "write the metadata block (magic, name, fields): {fields: {key: value}}",
    ),
    (
        "write_opcode_palette",
        "one pixel per opcode of the real ISA: (opcode, format, words, 255)",
    ),
    (
        "write_syscall_table",
        "two words per syscall: (number low, number high, 0, 255) and its handler's address: {handlers: {NAME: KERNEL_LABEL}}",
    ),
    (
        "write_process_table",
        "one control block per row: pid, entry, state, name, registers, counters: {processes: [{pid, name, region, offset}]}",
    ),
    (
        "assemble_program",
        "assemble PXVM source into a region at its absolute address: {region, offset, source}",
    ),
    (
        "run_program",
        "run the program at a region in PXVM (the VRAM is its memory): {region, offset, fuel}",
    ),
];

fn kind_error(step: &Step, why: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("step '{}' ({}): {why}", step.name, step.kind))
}

impl Step {
    /// Parses the step's kind and parameters.
    pub fn action(&self) -> Result<Action> {
        let params = if self.params.is_null() {
            serde_norway::Value::Mapping(Default::default())
        } else {
            self.params.clone()
        };
        fn parse<T: serde::de::DeserializeOwned>(
            step: &Step,
            params: &serde_norway::Value,
        ) -> Result<T> {
            serde_norway::from_value(params.clone()).map_err(|err| kind_error(step, err))
        }
        let unit = |action: Action| -> Result<Action> {
            match &params {
                serde_norway::Value::Mapping(map) if map.is_empty() => Ok(action),
                _ => Err(kind_error(self, "takes no parameters")),
            }
        };
        match self.kind.as_str() {
            "fill_region" => {
                let p: FillRegionParams = parse(self, &params)?;
                Ok(Action::FillRegion {
                    region: p.region,
                    color: p.color,
                })
            }
            "fill_rect" => {
                let p: FillRectParams = parse(self, &params)?;
                Ok(Action::FillRect {
                    x: p.x,
                    y: p.y,
                    w: p.w,
                    h: p.h,
                    color: p.color,
                })
            }
            "write_metadata" => Ok(Action::WriteMetadata {
                fields: parse::<MetadataParams>(self, &params)?.fields,
            }),
            "write_opcode_palette" => unit(Action::WriteOpcodePalette),
            "write_syscall_table" => Ok(Action::WriteSyscallTable {
                handlers: parse::<SyscallParams>(self, &params)?.handlers,
            }),
            "write_process_table" => Ok(Action::WriteProcessTable {
                processes: parse::<ProcessParams>(self, &params)?.processes,
            }),
            "assemble_program" => {
                let p: AssembleParams = parse(self, &params)?;
                Ok(Action::AssembleProgram {
                    region: p.region,
                    offset: p.offset,
                    source: p.source,
                })
            }
            "run_program" => {
                let p: RunParams = parse(self, &params)?;
                Ok(Action::RunProgram {
                    region: p.region,
                    offset: p.offset,
                    fuel: p.fuel,
                })
            }
            other => Err(Error::bad_input(format!(
                "step '{}': unknown step kind '{other}' (known: {})",
                self.name,
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

impl Roadmap {
    /// Parses and checks a roadmap.
    pub fn parse(text: &str) -> Result<Roadmap> {
        check_nesting(text)?;
        let roadmap: Roadmap = serde_norway::from_str(text)
            .map_err(|err| Error::bad_input(format!("roadmap is not valid: {err}")))?;
        roadmap.check()?;
        Ok(roadmap)
    }

    /// Checks sizes and every step's parameters (regions are typed when parsed).
    pub fn check(&self) -> Result<()> {
        Vram::new(self.metadata.vram_width, self.metadata.vram_height)?;
        if self.steps.len() > MAX_STEPS {
            return Err(Error::bad_input(format!(
                "{} steps, at most {MAX_STEPS}",
                self.steps.len()
            )));
        }
        for step in &self.steps {
            match step.action()? {
                Action::FillRect { x, y, w, h, .. }
                    if u64::from(x) + u64::from(w) > u64::from(self.metadata.vram_width)
                        || u64::from(y) + u64::from(h) > u64::from(self.metadata.vram_height) =>
                {
                    return Err(kind_error(step, "rectangle leaves the VRAM"));
                }
                Action::AssembleProgram { source, .. } if source.len() > MAX_SOURCE => {
                    return Err(kind_error(
                        step,
                        format!("source is longer than {MAX_SOURCE} bytes"),
                    ));
                }
                Action::RunProgram { fuel, .. } if fuel > MAX_FUEL => {
                    return Err(kind_error(
                        step,
                        format!("fuel {fuel} is more than {MAX_FUEL}"),
                    ));
                }
                Action::WriteProcessTable { processes } if processes.len() > MAX_PROCESSES => {
                    return Err(kind_error(
                        step,
                        format!("at most {MAX_PROCESSES} processes"),
                    ));
                }
                Action::WriteProcessTable { .. } if self.metadata.vram_width < pcb::WORDS => {
                    return Err(kind_error(
                        step,
                        format!(
                            "a process control block is {} words, wider than the {}-pixel VRAM",
                            pcb::WORDS,
                            self.metadata.vram_width
                        ),
                    ));
                }
                Action::WriteSyscallTable { handlers } => {
                    if let Some(name) = handlers
                        .keys()
                        .find(|n| !syscall::ALL.iter().any(|(_, known, _)| known == n))
                    {
                        return Err(kind_error(step, format!("no syscall named '{name}'")));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The roadmap as YAML.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }
}

/// What one step did.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub name: String,
    pub kind: String,
    pub detail: String,
}

/// What running a program from VRAM did.
pub struct ProgramRun {
    pub result: Result<Exit, pxos_vm::Trap>,
    pub output: Vec<String>,
    /// Screen pixels that are not black.
    pub drawn: usize,
}

/// Runs the program at `address` with the VRAM as its memory.
pub fn run_at(vram: &Vram, address: u32, fuel: u64) -> Result<ProgramRun> {
    let words = vram.as_words();
    let memory_words = words.len() as u32;
    let config = Config {
        memory_words,
        stack_words: (memory_words / 16).max(256),
        ..Config::default()
    };
    let mut machine = Machine::new(config).map_err(|err| Error::bad_input(err.to_string()))?;
    let code = machine.code_words() as usize;
    machine
        .load(0, &words[..code.min(words.len())])
        .map_err(|err| Error::bad_input(err.to_string()))?;
    machine.pc = address;
    let mut host = StdHost::new(Box::new(pxos_vm::MemoryStorage::default()));
    // The evaluator asks what the program drew itself: no console text.
    host.console = None;
    let result = machine.run(&mut host, fuel);
    let drawn = machine
        .screen()
        .pixels()
        .iter()
        .filter(|&&p| p != 0)
        .count();
    Ok(ProgramRun {
        result,
        output: host.output,
        drawn,
    })
}

/// Builds a VRAM from a roadmap, step by step, recording provenance.
pub fn build(roadmap: &Roadmap) -> Result<(Vram, Vec<StepReport>)> {
    build_observed(roadmap, &mut |_, _| {})
}

/// [`build`], calling `observer` with the VRAM after every step (a live view).
pub fn build_observed(
    roadmap: &Roadmap,
    observer: &mut dyn FnMut(&StepReport, &Vram),
) -> Result<(Vram, Vec<StepReport>)> {
    roadmap.check()?;
    let mut vram = Vram::new(roadmap.metadata.vram_width, roadmap.metadata.vram_height)?;
    let mut reports = Vec::new();
    // Labels of the program last assembled into the kernel region (syscall handlers).
    let mut kernel_labels: BTreeMap<String, u32> = BTreeMap::new();
    for step in &roadmap.steps {
        vram.begin("roadmap", &step.name);
        let fail = |err: Error| err.context(format!("step '{}' ({})", step.name, step.kind));
        let detail = match step.action()? {
            Action::FillRegion { region, color } => {
                format!("{} pixels", vram.fill_region(region, color))
            }
            Action::FillRect { x, y, w, h, color } => {
                format!("{} pixels", vram.fill_rect(x, y, w, h, color))
            }
            Action::WriteMetadata { fields } => {
                let json = serde_json::json!({"name": roadmap.metadata.name, "steps": roadmap.steps.len(), "fields": fields});
                let text = json.to_string();
                let mut bytes = METADATA_MAGIC.to_vec();
                bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
                bytes.extend_from_slice(text.as_bytes());
                vram.write_bytes(Region::Metadata, 0, &bytes)
                    .map_err(fail)?;
                format!("{} bytes", bytes.len())
            }
            Action::WriteOpcodePalette => {
                let mut words = vec![PALETTE_MAGIC, Op::ALL.len() as u32];
                words.extend(Op::ALL.iter().map(|op| {
                    u32::from_le_bytes([
                        *op as u8,
                        format_code(op.format()),
                        op.format().words() as u8,
                        255,
                    ])
                }));
                vram.write_words(Region::OpcodePalette, 0, &words)
                    .map_err(fail)?;
                format!("{} opcodes", Op::ALL.len())
            }
            Action::WriteSyscallTable { handlers } => {
                let mut words = vec![SYSCALL_MAGIC, syscall::ALL.len() as u32];
                for (number, name, _) in syscall::ALL {
                    let handler = match handlers.get(*name) {
                        None => 0,
                        Some(label) => *kernel_labels.get(label).ok_or_else(|| {
                            kind_error(
                                step,
                                format!(
                                    "handler '{label}' for {name} is not a label of the kernel (assemble the kernel first)"
                                ),
                            )
                        })?,
                    };
                    words.push(u32::from_le_bytes([
                        *number as u8,
                        (*number >> 8) as u8,
                        0,
                        255,
                    ]));
                    words.push(handler);
                }
                vram.write_words(Region::SyscallTable, 0, &words)
                    .map_err(fail)?;
                format!(
                    "{} syscalls, {} with a handler",
                    syscall::ALL.len(),
                    handlers.len()
                )
            }
            Action::WriteProcessTable { processes } => {
                vram.write_words(
                    Region::ProcessTable,
                    0,
                    &[PROCESS_MAGIC, processes.len() as u32],
                )
                .map_err(&fail)?;
                let memory_words = vram.width() * vram.height();
                for (index, process) in processes.iter().enumerate() {
                    let row = index + 1;
                    let entry = vram.region_address(process.region) + process.offset;
                    let name = truncate_name(&process.name);
                    let stack = crate::os::process_stack_top(
                        memory_words,
                        index as u32,
                        processes.len() as u32,
                    );
                    let mut words = vec![0u32; pcb::WORDS as usize];
                    words[pcb::PID as usize] = process.pid;
                    words[pcb::ENTRY as usize] = entry;
                    words[pcb::STATE as usize] = crate::os::state::READY;
                    words[pcb::NAME_LEN as usize] = name.len() as u32;
                    for (i, c) in name.as_bytes().chunks(4).enumerate() {
                        let mut w = [0u8; 4];
                        w[..c.len()].copy_from_slice(c);
                        words[pcb::NAME as usize + i] = u32::from_le_bytes(w);
                    }
                    words[pcb::PC as usize] = entry;
                    words[pcb::SP as usize] = stack;
                    words[pcb::STACK_TOP as usize] = stack;
                    vram.write_words(Region::ProcessTable, row as u32 * vram.width(), &words)
                        .map_err(&fail)?;
                }
                format!("{} processes", processes.len())
            }
            Action::AssembleProgram {
                region,
                offset,
                source,
            } => {
                let origin = vram.region_address(region) + offset;
                let program = asm::assemble_at(&step.name, &source, origin)
                    .map_err(|err| kind_error(step, err))?;
                if region == Region::Kernel {
                    kernel_labels = program.symbols.clone();
                }
                vram.write_words(region, offset, &program.words)
                    .map_err(&fail)?;
                format!("{} words at address {origin}", program.words.len())
            }
            Action::RunProgram {
                region,
                offset,
                fuel,
            } => {
                let address = vram.region_address(region) + offset;
                let ProgramRun {
                    result,
                    output,
                    drawn,
                } = run_at(&vram, address, fuel)?;
                match result {
                    Ok(_) => format!("halted; printed {output:?}; drew {drawn} pixels"),
                    Err(trap) => {
                        return Err(kind_error(step, format!("the program trapped: {trap}")));
                    }
                }
            }
        };
        let report = StepReport {
            name: step.name.clone(),
            kind: step.kind.clone(),
            detail,
        };
        observer(&report, &vram);
        reports.push(report);
    }
    Ok((vram, reports))
}

/// The palette's code for an operand format.
pub fn format_code(format: Format) -> u8 {
    match format {
        Format::None => 0,
        Format::R => 1,
        Format::RR => 2,
        Format::RRR => 3,
        Format::RRI8 => 4,
        Format::RI16 => 5,
        Format::U16 => 6,
        Format::RW => 7,
        Format::W => 8,
        Format::RRW => 9,
    }
}

/// The deepest nesting of YAML collections a roadmap may have.
pub const MAX_NESTING: usize = 32;

/// Refuses deeply nested YAML in one linear pass, before the parser sees it
/// (the parser's own refusal of deep nesting comes only after quadratic work).
/// It counts flow brackets outside quotes and comments, block indentation
/// levels and compact `- - -` sequences; it may over-count brackets inside
/// plain scalars, never under-count real nesting on one line.
fn check_nesting(text: &str) -> Result<()> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (index, line) in text.lines().enumerate() {
        let too_deep = |depth: usize| {
            Error::bad_input(format!(
                "roadmap line {}: collections nest {depth} deep, more than {MAX_NESTING}",
                index + 1
            ))
        };
        let trimmed = line.trim_start_matches([' ', '\t']);
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            let indent = line.len() - trimmed.len();
            while indents.last().is_some_and(|&last| last >= indent) {
                indents.pop();
            }
            indents.push(indent);
            let mut rest = trimmed;
            let mut dashes = 0;
            while let Some(after) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
                dashes += 1;
                rest = after.trim_start_matches([' ', '\t']);
            }
            if indents.len() + dashes > MAX_NESTING {
                return Err(too_deep(indents.len() + dashes));
            }
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '\'' | '"' => quote = Some(c),
                    '#' if previous.is_whitespace() => break,
                    '[' | '{' => {
                        flow += 1;
                        if flow + indents.len() > MAX_NESTING {
                            return Err(too_deep(flow + indents.len()));
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
    }
    Ok(())
}

/// A process name cut to 64 bytes at a character boundary.
fn truncate_name(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}
