//! The disassembler. Its output assembles back to the same words.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::isa::{Format, Instruction, syscall};

/// One disassembled item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Address of the item.
    pub address: u32,
    /// Words it occupies (1 or 2).
    pub words: u32,
    /// The assembly text (without label or comment).
    pub text: String,
    /// The decoded instruction, or `None` for a data word.
    pub instruction: Option<Instruction>,
}

/// Decodes `words` into lines. Words that are not canonical instructions
/// (including a two-word instruction cut off at the end) become `.word`.
pub fn decode_lines(words: &[u32]) -> Vec<Line> {
    let targets = branch_targets(words);
    let mut lines = Vec::new();
    let mut at = 0usize;
    while at < words.len() {
        let line = match Instruction::decode(&words[at..]) {
            Some(instruction) => Line {
                address: at as u32,
                words: instruction.op.format().words() as u32,
                text: format_instruction(&instruction, &|address| {
                    targets.contains(&address).then(|| label_name(address))
                }),
                instruction: Some(instruction),
            },
            None => Line {
                address: at as u32,
                words: 1,
                text: format!(".word {:#010x}", words[at]),
                instruction: None,
            },
        };
        at += line.words as usize;
        lines.push(line);
    }
    lines
}

/// The full listing: labels for branch targets, one item per line, each with
/// its address and raw word as a comment.
pub fn disassemble(words: &[u32], entry: u32) -> String {
    let lines = decode_lines(words);
    let starts: BTreeSet<u32> = lines.iter().map(|line| line.address).collect();
    let targets: BTreeSet<u32> = branch_targets(words)
        .into_iter()
        .filter(|t| starts.contains(t))
        .collect();
    let mut out = String::new();
    if entry != 0 {
        let entry_text = if starts.contains(&entry) && targets.contains(&entry) {
            label_name(entry)
        } else {
            entry.to_string()
        };
        let _ = writeln!(out, ".entry {entry_text}");
    }
    for line in &lines {
        if targets.contains(&line.address) {
            let _ = writeln!(out, "{}:", label_name(line.address));
        }
        let _ = writeln!(
            out,
            "    {:<28} ; {:04x}  {:08x}",
            line.text, line.address, words[line.address as usize]
        );
    }
    out
}

/// Addresses named by branch, jump and call instructions.
fn branch_targets(words: &[u32]) -> BTreeSet<u32> {
    let mut targets = BTreeSet::new();
    let mut at = 0usize;
    while at < words.len() {
        match Instruction::decode(&words[at..]) {
            Some(instruction) => {
                if matches!(instruction.op.format(), Format::W | Format::RRW)
                    && (instruction.wide as usize) < words.len()
                {
                    targets.insert(instruction.wide);
                }
                at += instruction.op.format().words();
            }
            None => at += 1,
        }
    }
    // Only targets that fall on item boundaries can carry a label.
    let mut boundaries = BTreeSet::new();
    let mut at = 0usize;
    while at < words.len() {
        boundaries.insert(at as u32);
        at += Instruction::decode(&words[at..]).map_or(1, |i| i.op.format().words());
    }
    targets.intersection(&boundaries).copied().collect()
}

fn label_name(address: u32) -> String {
    format!("L{address:04x}")
}

/// Formats one instruction; `label` names branch targets.
pub fn format_instruction(
    instruction: &Instruction,
    label: &dyn Fn(u32) -> Option<String>,
) -> String {
    let op = instruction.op.mnemonic();
    let (a, b, c) = (instruction.a, instruction.b, instruction.c);
    let target = |address: u32| label(address).unwrap_or_else(|| address.to_string());
    match instruction.op.format() {
        Format::None => op.to_string(),
        Format::R => format!("{op} R{a}"),
        Format::RR => format!("{op} R{a}, R{b}"),
        Format::RRR => format!("{op} R{a}, R{b}, R{c}"),
        Format::RRI8 => format!("{op} R{a}, R{b}, {}", c as i8),
        Format::RI16 => format!("{op} R{a}, {}", instruction.imm16() as i16),
        Format::U16 => {
            let number = instruction.imm16();
            match syscall::name(number) {
                Some(name) if instruction.op == crate::isa::Op::SYSCALL => {
                    format!("{op} {number:<5} ; {name}")
                }
                _ => format!("{op} {number}"),
            }
        }
        Format::RW => format!("{op} R{a}, {}", instruction.wide),
        Format::W => format!("{op} {}", target(instruction.wide)),
        Format::RRW => format!("{op} R{a}, R{b}, {}", target(instruction.wide)),
    }
}
