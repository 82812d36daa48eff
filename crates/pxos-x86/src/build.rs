//! Turning primitive source into a boot sector.
//!
//! [`build`] is the pxOS builder: addresses are memory addresses, the sector is loaded at
//! [`ORIGIN`], the result is exactly [`SECTOR_SIZE`] bytes ending in the boot signature,
//! and overlapping writes, writes outside the sector and branches whose hand-computed
//! offsets land on the wrong byte are refused with the lines they come from.
//!
//! [`build_compat`] reproduces the seed's Python builder byte for byte (origin 0, 64 KiB
//! image trimmed of trailing zeros), which cannot produce a bootable image for code at
//! 0x7C00; it says so in its warnings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use iced_x86::{Decoder, DecoderOptions};

use crate::flow::{Printer, trace};
use crate::source::{Diagnostic, Expr, Problem, Stmt, parse, parse_python_int};

/// Where a BIOS loads the boot sector.
pub const ORIGIN: u32 = 0x7C00;
/// A boot sector's size.
pub const SECTOR_SIZE: usize = 512;
/// The boot signature at the sector's last two bytes.
pub const SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// Bytes of program a sector can hold (all but the signature).
pub const CAPACITY: usize = SECTOR_SIZE - 2;

/// Why compatibility mode refuses what the seed's Python accepted.
const NEGATIVE: &str = "negative numbers are refused (the seed builder wrapped them silently)";

/// The seed builder's memory size.
const SEED_MEMORY: usize = 0x10000;

/// Which builder produced an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The pxOS builder: origin 0x7C00, one sector, checked.
    Boot,
    /// The seed builder's behaviour, reproduced byte for byte.
    CompatSeed,
}

/// Build settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Reproduce the seed builder instead of building a bootable sector.
    pub compat_seed: bool,
    /// Let later writes replace earlier ones everywhere (as `OVERWRITE` does for one byte).
    pub allow_overwrite: bool,
}

/// A label and where it was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub address: u32,
    pub line: usize,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Image {
    pub mode: Mode,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The linear address `bytes[0]` is meant for: 0x7C00, or 0 in seed mode.
    pub origin: u32,
    /// Labels, sorted by address (ties keep source order).
    pub symbols: Vec<Symbol>,
    /// Bytes written by the source (in seed mode, the number of WRITE operations).
    pub writes: usize,
    /// Distinct sector bytes the source wrote (boot mode).
    pub used: usize,
    /// Things that do not stop the build but that a person should know.
    pub warnings: Vec<String>,
}

impl Image {
    /// The 512 bytes a BIOS would load from this file: its first sector.
    pub fn boot_sector(&self) -> &[u8] {
        &self.bytes[..SECTOR_SIZE.min(self.bytes.len())]
    }

    /// Lowercase hex SHA-256 of the file.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.bytes))
    }

    /// Address -> label, the first label defined for each address.
    pub fn labels(&self) -> BTreeMap<u32, String> {
        labels_of(&self.symbols)
    }
}

pub(crate) fn labels_of(symbols: &[Symbol]) -> BTreeMap<u32, String> {
    let mut labels = BTreeMap::new();
    for symbol in symbols {
        labels
            .entry(symbol.address)
            .or_insert_with(|| symbol.name.clone());
    }
    labels
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a build was refused: every problem found, each with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.diagnostics.len();
        write!(
            f,
            "cannot build the boot sector: {count} problem{}",
            if count == 1 { "" } else { "s" }
        )?;
        for diagnostic in &self.diagnostics {
            write!(f, "\n  {diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}

impl From<Vec<Diagnostic>> for BuildError {
    fn from(diagnostics: Vec<Diagnostic>) -> BuildError {
        BuildError { diagnostics }
    }
}

/// Builds `source` with `options`.
pub fn build(source: &str, options: Options) -> Result<Image, BuildError> {
    if options.compat_seed {
        build_compat(source)
    } else {
        build_boot(source, options.allow_overwrite)
    }
}

/// One byte a statement writes.
struct Write {
    address: u32,
    byte: u8,
    line: usize,
    overwrite: bool,
}

struct Labels {
    defs: HashMap<String, (Expr, usize)>,
    values: HashMap<String, Option<u64>>,
}

impl Labels {
    /// The value of label `name`, referenced on `line`. Chains of labels are
    /// followed with an explicit stack, not recursion, so a source of 50,000
    /// chained DEFINEs needs no more native stack than one.
    fn value(&mut self, name: &str, line: usize) -> Result<u64, Diagnostic> {
        let mut chain: Vec<String> = vec![name.to_string()];
        let mut on_chain: HashSet<String> = HashSet::from([name.to_string()]);
        let mut failure: Option<Diagnostic> = None;
        while let Some(top) = chain.last().cloned() {
            if let Some(failed) = failure.take() {
                // Every label on the chain shares the failure.
                self.values.insert(top.clone(), None);
                on_chain.remove(&top);
                chain.pop();
                failure = Some(failed);
                continue;
            }
            if self.values.contains_key(&top) {
                on_chain.remove(&top);
                chain.pop();
                continue;
            }
            let referenced_on = match chain.len() {
                1 => line,
                n => self.defs.get(&chain[n - 2]).map_or(line, |(_, at)| *at),
            };
            let Some((expr, def_line)) = self.defs.get(&top).cloned() else {
                failure = Some(Diagnostic::at(
                    referenced_on,
                    Problem::UndefinedLabel,
                    format!("undefined label {top}{}", self.suggest(&top)),
                ));
                // An undefined name is not given a value of its own.
                on_chain.remove(&top);
                chain.pop();
                continue;
            };
            if let Some(dependency) = expr.label()
                && !self.values.contains_key(dependency)
            {
                if on_chain.contains(dependency) {
                    let start = chain.iter().position(|n| n == dependency).unwrap_or(0);
                    let mut circle: Vec<&str> = chain[start..].iter().map(String::as_str).collect();
                    circle.push(dependency);
                    let at = self.defs.get(dependency).map_or(def_line, |(_, at)| *at);
                    failure = Some(Diagnostic::at(
                        at,
                        Problem::UndefinedLabel,
                        format!("labels defined in a circle: {}", circle.join(" -> ")),
                    ));
                    continue;
                }
                on_chain.insert(dependency.to_string());
                chain.push(dependency.to_string());
                continue;
            }
            // The dependency (if any) has its value now: evaluate without recursion into labels.
            let value = self.eval(&expr, def_line).and_then(|v| {
                if v > 0xFFFF {
                    Err(Diagnostic::at(
                        def_line,
                        Problem::OutOfRange,
                        format!(
                            "label {top} = 0x{v:X} is past 0xFFFF, the end of 16-bit addresses"
                        ),
                    ))
                } else {
                    Ok(v)
                }
            });
            match value {
                Ok(v) => {
                    self.values.insert(top.clone(), Some(v));
                    on_chain.remove(&top);
                    chain.pop();
                }
                Err(problem) => failure = Some(problem),
            }
        }
        if let Some(problem) = failure {
            return Err(problem);
        }
        match self.values.get(name) {
            Some(Some(value)) => Ok(*value),
            // A label whose DEFINE failed was reported there; say nothing more about it.
            _ => Err(Diagnostic::at(line, Problem::UndefinedLabel, String::new())),
        }
    }

    /// Evaluates `expr`; the label in it (if any) is resolved first by [`Labels::value`].
    /// `lo()`/`hi()` nest at most [`crate::source::MAX_EXPR_NESTING`] deep.
    fn eval(&mut self, expr: &Expr, line: usize) -> Result<u64, Diagnostic> {
        match expr {
            Expr::Number(n) => Ok(*n),
            Expr::Label(name) => self.value(name, line),
            Expr::Low(inner) => Ok(self.eval(inner, line)? & 0xFF),
            Expr::High(inner) => Ok((self.eval(inner, line)? >> 8) & 0xFF),
        }
    }

    fn suggest(&self, name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        self.defs
            .keys()
            .find(|k| k.to_ascii_lowercase() == lower)
            .map(|k| format!(" (labels are case-sensitive: did you mean {k}?)"))
            .unwrap_or_default()
    }
}

fn build_boot(source: &str, allow_overwrite: bool) -> Result<Image, BuildError> {
    let lines = parse(source)?;
    let mut problems = Vec::new();

    let mut labels = Labels {
        defs: HashMap::new(),
        values: HashMap::new(),
    };
    let mut order = Vec::new();
    for line in &lines {
        if let Stmt::Define { label, value } = &line.stmt {
            if let Some((_, first)) = labels.defs.get(label) {
                problems.push(Diagnostic::at(
                    line.number,
                    Problem::DuplicateLabel,
                    format!("label {label} is already defined on line {first}"),
                ));
                continue;
            }
            labels
                .defs
                .insert(label.clone(), (value.clone(), line.number));
            order.push((label.clone(), line.number));
        }
    }
    let mut symbols = Vec::new();
    for (name, line) in &order {
        match labels.value(name, *line) {
            Ok(address) => symbols.push(Symbol {
                name: name.clone(),
                address: address as u32,
                line: *line,
            }),
            Err(problem) if !problem.message.is_empty() => problems.push(problem),
            Err(_) => {}
        }
    }
    symbols.sort_by_key(|s| s.address);

    let mut writes = Vec::new();
    for line in &lines {
        let number = line.number;
        let mut eval = |expr: &Expr| labels.eval(expr, number);
        let result = (|| -> Result<(), Diagnostic> {
            let address = |value: u64| -> Result<u32, Diagnostic> {
                if value > 0xFFFF {
                    Err(Diagnostic::at(
                        number,
                        Problem::OutOfRange,
                        format!("address 0x{value:X} is past 0xFFFF"),
                    ))
                } else {
                    Ok(value as u32)
                }
            };
            let mut push = |address: u32, byte: u8, overwrite: bool| {
                writes.push(Write {
                    address,
                    byte,
                    line: number,
                    overwrite,
                })
            };
            match &line.stmt {
                Stmt::Write {
                    addr,
                    value,
                    overwrite,
                } => {
                    let at = address(eval(addr)?)?;
                    let byte = eval(value)?;
                    if byte > 0xFF {
                        let hint = if matches!(value, Expr::Label(_)) {
                            "; a label's address needs WORD, or lo(label) and hi(label)"
                        } else {
                            ""
                        };
                        return Err(Diagnostic::at(
                            number,
                            Problem::OutOfRange,
                            format!("value 0x{byte:X} does not fit in a byte (max 0xFF){hint}"),
                        ));
                    }
                    push(at, byte as u8, *overwrite);
                }
                Stmt::Word { addr, value } => {
                    let at = address(eval(addr)?)?;
                    let word = eval(value)?;
                    if word > 0xFFFF {
                        return Err(Diagnostic::at(
                            number,
                            Problem::OutOfRange,
                            format!("value 0x{word:X} does not fit in 16 bits"),
                        ));
                    }
                    push(at, word as u8, false);
                    push(at + 1, (word >> 8) as u8, false);
                }
                Stmt::Rel { addr, target, wide } => {
                    let at = address(eval(addr)?)?;
                    let to = eval(target)? as i64;
                    let size = if *wide { 2 } else { 1 };
                    let displacement = to - (i64::from(at) + size);
                    if *wide {
                        let d = displacement.rem_euclid(0x10000) as u16;
                        push(at, d as u8, false);
                        push(at + 1, (d >> 8) as u8, false);
                    } else if (-128..=127).contains(&displacement) {
                        push(at, displacement as i8 as u8, false);
                    } else {
                        return Err(Diagnostic::at(
                            number,
                            Problem::OutOfRange,
                            format!(
                                "REL8 at 0x{at:04X} to 0x{to:04X} needs a displacement of {displacement}, \
                                 but a short branch reaches -128..127; use the near form with REL16"
                            ),
                        ));
                    }
                }
                Stmt::Text { addr, bytes } => {
                    let at = address(eval(addr)?)?;
                    for (i, byte) in bytes.iter().enumerate() {
                        push(at + i as u32, *byte, false);
                    }
                }
                Stmt::Call { label } => {
                    eval(&Expr::Label(label.clone()))?;
                    return Ok(());
                }
                Stmt::Define { .. } => return Ok(()),
            }
            Ok(())
        })();
        if let Err(problem) = result
            && !problem.message.is_empty()
        {
            problems.push(problem);
        }
    }
    // Undefined-label and range errors make the image meaningless; stop here.
    if !problems.is_empty() {
        return Err(problems.into());
    }

    let labels = labels_of(&symbols);
    let mut sector = [0u8; SECTOR_SIZE];
    let mut owner: Vec<Option<usize>> = vec![None; SECTOR_SIZE];
    let mut outside: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut on_signature: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut overlaps = Vec::new();
    for write in &writes {
        if write.address < ORIGIN || write.address >= ORIGIN + SECTOR_SIZE as u32 {
            outside.entry(write.line).or_default().push(write.address);
            continue;
        }
        let index = (write.address - ORIGIN) as usize;
        if index >= CAPACITY {
            on_signature
                .entry(write.line)
                .or_default()
                .push(write.address);
            continue;
        }
        if let Some(earlier) = owner[index]
            && !(write.overwrite || allow_overwrite)
        {
            overlaps.push((write.line, earlier, write.address, sector[index]));
        }
        sector[index] = write.byte;
        owner[index] = Some(write.line);
    }
    for (line, addresses) in &outside {
        problems.push(outside_problem(*line, addresses));
    }
    for (line, addresses) in &on_signature {
        problems.push(Diagnostic::at(
            *line,
            Problem::OverSignature,
            format!(
                "writes {} over the boot signature at 0x7DFE..0x7DFF; the builder puts 55 AA there \
                 and the program has 0x7C00..0x7DFD ({CAPACITY} bytes)",
                span(addresses)
            ),
        ));
    }
    problems.extend(overlap_problems(&overlaps, &sector, &labels));
    let only_overlaps = problems.iter().all(|p| p.problem == Problem::Overlap);
    sector[CAPACITY..].copy_from_slice(&SIGNATURE);

    let mut warnings = Vec::new();
    if only_overlaps {
        let (flow_problems, flow_warnings) = check_flow(&sector, &owner, &labels);
        problems.extend(flow_problems);
        warnings.extend(flow_warnings);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line.unwrap_or(0));
        return Err(problems.into());
    }
    let used = owner.iter().filter(|o| o.is_some()).count();
    Ok(Image {
        mode: Mode::Boot,
        bytes: sector.to_vec(),
        origin: ORIGIN,
        symbols,
        writes: writes.len(),
        used,
        warnings,
    })
}

/// "0x7C40" or "0x7C40..0x7C49" (or a list when not contiguous).
fn span(addresses: &[u32]) -> String {
    let mut sorted = addresses.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            format!("0x{:04X}", sorted[i])
        } else {
            format!("0x{:04X}..0x{:04X}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

fn line_span(lines: &[usize]) -> String {
    let first = lines.iter().min().copied().unwrap_or(0);
    let last = lines.iter().max().copied().unwrap_or(0);
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    }
}

fn outside_problem(line: usize, addresses: &[u32]) -> Diagnostic {
    let first = addresses.iter().min().copied().unwrap_or(0);
    let last_sector = ORIGIN + CAPACITY as u32 - 1;
    let why = if first < SECTOR_SIZE as u32 {
        format!(
            "; addresses here are memory addresses and the BIOS loads the sector at 0x{ORIGIN:04X}, \
             so file offset 0x{first:X} is 0x{:04X}",
            ORIGIN + first
        )
    } else if first > last_sector {
        format!(
            "; a boot sector holds 0x{ORIGIN:04X}..0x{last_sector:04X} ({CAPACITY} bytes of program): \
             the program does not fit in one sector"
        )
    } else {
        String::new()
    };
    Diagnostic::at(
        line,
        Problem::OutsideSector,
        format!("writes {} outside the boot sector{why}", span(addresses)),
    )
}

/// The label a byte falls under: the nearest label at or below it inside the sector.
fn region(labels: &BTreeMap<u32, String>, address: u32) -> Option<&str> {
    labels
        .range(ORIGIN..=address)
        .next_back()
        .map(|(_, name)| name.as_str())
}

/// One byte written over another: (line, earlier line, address, earlier byte).
type Overlap = (usize, usize, u32, u8);

fn overlap_problems(
    overlaps: &[Overlap],
    sector: &[u8; SECTOR_SIZE],
    labels: &BTreeMap<u32, String>,
) -> Vec<Diagnostic> {
    // Group runs of overwritten bytes that fall in the same labelled region.
    #[derive(Default)]
    struct Group {
        lines: Vec<usize>,
        earlier: Vec<usize>,
        addresses: Vec<u32>,
        old: Vec<u8>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for &(line, earlier, address, old) in overlaps {
        let same = groups.last().is_some_and(|group| {
            let last = *group.addresses.last().unwrap_or(&0);
            address > last && address - last <= 2 && region(labels, last) == region(labels, address)
        });
        if !same {
            groups.push(Group::default());
        }
        let group = groups.last_mut().expect("pushed above");
        group.lines.push(line);
        group.earlier.push(earlier);
        group.addresses.push(address);
        group.old.push(old);
    }
    groups
        .into_iter()
        .map(|Group { lines, earlier, addresses, old }| {
            // What the earlier lines had put there (bytes in between were not overwritten,
            // so the sector still holds them).
            let (low, high) = (addresses[0], addresses[addresses.len() - 1]);
            let before: Vec<u8> = (low..=high)
                .map(|a| match addresses.iter().position(|x| *x == a) {
                    Some(i) => old[i],
                    None => sector[(a - ORIGIN) as usize],
                })
                .collect();
            let printable = before.iter().filter(|b| (0x20..0x7F).contains(*b)).count();
            let held = if printable * 3 >= before.len() * 2 {
                let text: String = before.iter().map(|&b| b as char).collect();
                format!(", the text {text:?},")
            } else {
                String::new()
            };
            let what = region(labels, addresses[0])
                .map(|name| format!(" in {name}"))
                .unwrap_or_default();
            let first = lines.iter().min().copied().unwrap_or(0);
            let last = lines.iter().max().copied().unwrap_or(0);
            let who = if first == last {
                "this line writes".to_string()
            } else {
                format!("this line and the writes up to line {last} put")
            };
            Diagnostic::at(
                first,
                Problem::Overlap,
                format!(
                    "{who} {} over bytes that {} already wrote{what}{held} which would be lost; \
                     move one of them, or use OVERWRITE where replacing is intended",
                    span(&addresses),
                    line_span(&earlier),
                ),
            )
        })
        .collect()
}

/// Traces the code from 0x7C00 and checks every branch target and fall-through.
fn check_flow(
    sector: &[u8; SECTOR_SIZE],
    owner: &[Option<usize>],
    labels: &BTreeMap<u32, String>,
) -> (Vec<Diagnostic>, Vec<String>) {
    let line_of = |address: u32| -> Option<usize> {
        address
            .checked_sub(ORIGIN)
            .and_then(|i| owner.get(i as usize).copied().flatten())
    };
    let written = |address: u32| line_of(address).is_some();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if !written(ORIGIN) {
        problems.push(Diagnostic {
            line: None,
            problem: Problem::BadCode,
            message: format!(
                "nothing is written at 0x{ORIGIN:04X}, where the BIOS starts executing the sector"
            ),
        });
        return (problems, warnings);
    }
    let trace = trace(sector, ORIGIN, ORIGIN, &written);
    let mut printer = Printer::new(labels.clone());
    // Where instructions start: the end of each traced instruction, and each instruction
    // of a straight decode of every run of written bytes (code placed after a jump, say).
    let mut starts = trace.ends();
    let mut run = 0;
    while run < CAPACITY {
        if owner[run].is_none() {
            run += 1;
            continue;
        }
        let mut at = run;
        while at < CAPACITY && owner[at].is_some() {
            let mut decoder = Decoder::with_ip(
                16,
                &sector[at..CAPACITY],
                (ORIGIN as usize + at) as u64,
                DecoderOptions::NONE,
            );
            let insn = decoder.decode();
            if insn.is_invalid() {
                break;
            }
            starts.insert(ORIGIN + at as u32);
            at += insn.len();
        }
        while run < CAPACITY && owner[run].is_some() {
            run += 1;
        }
    }
    let at = |address: u32, problem: Problem, message: String| Diagnostic {
        line: line_of(address),
        problem,
        message,
    };
    let hint = |target: u32| -> String {
        let near = labels
            .range(target.saturating_sub(3)..=target + 3)
            .filter(|(a, _)| **a != target)
            .min_by_key(|(a, _)| a.abs_diff(target));
        match near {
            Some((address, name)) => format!(
                " (label {name} is at 0x{address:04X}: is the displacement off by {}?)",
                i64::from(*address) - i64::from(target)
            ),
            None => String::new(),
        }
    };
    enum Miss {
        Leaves,
        Unwritten,
        Inside(u32),
        NotAStart,
    }
    for branch in &trace.branches {
        let (from, target) = (branch.from, branch.target);
        let end = ORIGIN + SECTOR_SIZE as u32;
        let miss = if !(ORIGIN..end).contains(&target) {
            Miss::Leaves
        } else if !written(target) {
            Miss::Unwritten
        } else if let Some(start) = trace.owner(target).filter(|s| *s != target) {
            Miss::Inside(start)
        } else if target != ORIGIN && !labels.contains_key(&target) && !starts.contains(&target) {
            Miss::NotAStart
        } else {
            continue;
        };
        // Formatting is only needed for a message, so it happens only here.
        let text = printer.format(&trace.instructions[&from]);
        match miss {
            Miss::Leaves => warnings.push(format!(
                "`{text}` at 0x{from:04X} leaves the boot sector for 0x{target:04X}; \
                 only code the program loads there itself can run"
            )),
            Miss::Unwritten => problems.push(at(
                from,
                Problem::BadBranch,
                format!(
                    "`{text}` at 0x{from:04X} goes to 0x{target:04X}, a byte no line writes{}",
                    hint(target)
                ),
            )),
            Miss::Inside(start) => {
                let other = printer.format(&trace.instructions[&start]);
                problems.push(at(
                    from,
                    Problem::BadBranch,
                    format!(
                        "`{text}` at 0x{from:04X} goes to 0x{target:04X}, the middle of `{other}` at 0x{start:04X}{}",
                        hint(target)
                    ),
                ));
            }
            Miss::NotAStart => problems.push(at(
                from,
                Problem::BadBranch,
                format!(
                    "`{text}` at 0x{from:04X} goes to 0x{target:04X}, which is neither a label nor the \
                     start of an instruction; DEFINE a label there if it is intended{}",
                    hint(target)
                ),
            )),
        }
    }
    let targets: Vec<u32> = trace.branches.iter().map(|b| b.target).collect();
    for &(next, from) in &trace.falls_into {
        if written(next) || targets.contains(&next) {
            continue;
        }
        let text = printer.format(&trace.instructions[&from]);
        let whereto = if next >= ORIGIN + CAPACITY as u32 {
            "past the end of the program area".to_string()
        } else {
            format!("into 0x{next:04X}, a byte no line writes")
        };
        problems.push(at(
            from,
            Problem::BadCode,
            format!("after `{text}` at 0x{from:04X} execution runs on {whereto}"),
        ));
    }
    for &address in &trace.invalid {
        problems.push(at(
            address,
            Problem::BadCode,
            format!("the bytes at 0x{address:04X} are not a valid 16-bit x86 instruction"),
        ));
    }
    for (&start, insn) in &trace.instructions {
        let missing: Vec<u32> = (start..start + insn.len() as u32)
            .filter(|a| !written(*a))
            .collect();
        if !missing.is_empty() {
            let text = printer.format(insn);
            problems.push(at(
                start,
                Problem::BadCode,
                format!(
                    "`{text}` at 0x{start:04X} is {} bytes long, but {} is never written",
                    insn.len(),
                    span(&missing)
                ),
            ));
        }
    }
    (problems, warnings)
}

/// Builds `source` the way the seed's `build_pxos.py` did, byte for byte: one pass, labels
/// only backwards, unknown commands ignored, later writes silently winning, addresses as
/// file offsets, 55 AA forced at offsets 510-511, and trailing zeros trimmed down to 512
/// bytes. Negative numbers, which Python wrapped silently, are refused.
pub fn build_compat(source: &str) -> Result<Image, BuildError> {
    let mut memory = vec![0u8; SEED_MEMORY];
    let mut written = vec![false; SEED_MEMORY];
    let mut twice = Vec::new();
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut operations = 0;
    for (index, raw) in source.lines().enumerate() {
        let number = index + 1;
        let mut line = raw.trim();
        if line.is_empty() || line.starts_with("COMMENT") || line.starts_with('#') {
            continue;
        }
        if let Some(at) = line.find("COMMENT") {
            line = line[..at].trim();
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = parts.first() else {
            continue;
        };
        let fail = |problem: Problem, message: String| -> BuildError {
            vec![Diagnostic::at(
                number,
                problem,
                format!("{message} (in `{line}`)"),
            )]
            .into()
        };
        let value = |token: &str, symbols: &[Symbol]| -> Result<i128, BuildError> {
            if let Some(symbol) = symbols.iter().find(|s| s.name == token) {
                return Ok(i128::from(symbol.address));
            }
            parse_python_int(token).map_err(|m| fail(Problem::BadNumber, m))
        };
        match first.to_uppercase().as_str() {
            "WRITE" => {
                if parts.len() < 3 {
                    return Err(fail(
                        Problem::MissingArgument,
                        "WRITE requires 2 arguments: address and value".into(),
                    ));
                }
                let address = value(parts[1], &symbols)?;
                let byte = value(parts[2], &symbols)?;
                if address >= SEED_MEMORY as i128 {
                    return Err(fail(
                        Problem::OutOfRange,
                        format!("Address 0x{address:04X} out of bounds (max 0x{SEED_MEMORY:04X})"),
                    ));
                }
                if byte > 0xFF {
                    return Err(fail(
                        Problem::OutOfRange,
                        format!("Byte value 0x{byte:X} out of range (max 0xFF)"),
                    ));
                }
                if address < 0 || byte < 0 {
                    return Err(fail(Problem::BadNumber, NEGATIVE.into()));
                }
                let address = address as usize;
                if written[address] {
                    twice.push(address as u32);
                }
                written[address] = true;
                memory[address] = byte as u8;
                operations += 1;
            }
            "DEFINE" => {
                if parts.len() < 3 {
                    return Err(fail(
                        Problem::MissingArgument,
                        "DEFINE requires 2 arguments: label and address".into(),
                    ));
                }
                let address = value(parts[2], &symbols)?;
                if address >= SEED_MEMORY as i128 {
                    return Err(fail(
                        Problem::OutOfRange,
                        format!("Address 0x{address:04X} out of bounds"),
                    ));
                }
                if address < 0 {
                    return Err(fail(Problem::BadNumber, NEGATIVE.into()));
                }
                let address = address as u32;
                match symbols.iter_mut().find(|s| s.name == parts[1]) {
                    Some(symbol) => {
                        symbol.address = address;
                        symbol.line = number;
                    }
                    None => symbols.push(Symbol {
                        name: parts[1].to_string(),
                        address,
                        line: number,
                    }),
                }
            }
            // CALL was documentation only; anything else was silently dropped.
            _ => {}
        }
    }
    memory[0x1FE] = SIGNATURE[0];
    memory[0x1FF] = SIGNATURE[1];
    let last = memory.iter().rposition(|&b| b != 0).unwrap_or(0).max(1);
    let size = (last + 1).max(SECTOR_SIZE);
    memory.truncate(size);
    symbols.sort_by_key(|s| s.address);

    let mut warnings = vec![
        "seed compatibility mode: WRITE addresses are file offsets (origin 0) and 55 AA is forced \
         at offsets 510-511, as the seed builder did; a BIOS runs only the first 512 bytes"
            .to_string(),
    ];
    let code_in_first_sector = memory[..CAPACITY].iter().any(|&b| b != 0);
    let beyond = memory.len() > SECTOR_SIZE;
    if !code_in_first_sector {
        warnings.push(format!(
            "this image cannot boot: its first 512 bytes hold nothing but the signature, so the BIOS \
             runs zeros{}",
            if beyond {
                format!(
                    "; the program sits at file offset 0x{:X}",
                    memory.iter().enumerate().skip(SECTOR_SIZE).find(|(_, b)| **b != 0).map_or(0, |(i, _)| i)
                )
            } else {
                String::new()
            }
        ));
    } else if beyond {
        warnings.push("bytes past offset 511 are never loaded by the BIOS".to_string());
    }
    if memory.len() > SECTOR_SIZE {
        warnings.push(format!(
            "the file is {} bytes; a boot sector is 512",
            memory.len()
        ));
    }
    if !twice.is_empty() {
        warnings.push(format!(
            "{} byte(s) were written twice and the later write won: {}",
            twice.len(),
            span(&twice)
        ));
    }
    Ok(Image {
        mode: Mode::CompatSeed,
        bytes: memory,
        origin: 0,
        symbols,
        writes: operations,
        used: written.iter().filter(|w| **w).count(),
        warnings,
    })
}
