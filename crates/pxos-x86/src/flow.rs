//! Following the code of a boot sector the way the CPU would.
//!
//! [`trace`] decodes 16-bit x86 from the entry point and follows fall-through and every
//! direct branch (jumps, conditional jumps, calls, loops, far jumps into the sector). The
//! builder uses the trace to refuse hand-computed branch offsets that land on the wrong
//! byte; the disassembler uses it to tell code from data.

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Formatter, Instruction, NasmFormatter, OpKind, Register,
    SymbolResolver, SymbolResult,
};

/// A direct branch found while tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    /// Address of the branch instruction.
    pub from: u32,
    /// Linear address it transfers control to.
    pub target: u32,
}

/// What the tracer found.
#[derive(Debug, Default)]
pub struct Trace {
    /// Decoded instructions by address.
    pub instructions: BTreeMap<u32, Instruction>,
    /// Direct branches, in the order found.
    pub branches: Vec<Branch>,
    /// Instruction starts that execution reaches by falling through (address, predecessor).
    pub falls_into: Vec<(u32, u32)>,
    /// Addresses where decoding failed (an invalid opcode, or the sector ends mid-instruction).
    pub invalid: Vec<u32>,
    /// Starts that were not decoded because the byte is not part of the program
    /// (unwritten, or outside the sector).
    pub not_decoded: BTreeSet<u32>,
    /// Starts that land inside an instruction decoded earlier: (start, that instruction).
    pub inside: Vec<(u32, u32)>,
}

impl Trace {
    /// The instruction covering `address`, if any: its start address.
    pub fn owner(&self, address: u32) -> Option<u32> {
        let (&start, insn) = self.instructions.range(..=address).next_back()?;
        (address < start + insn.len() as u32).then_some(start)
    }

    /// Addresses just past each decoded instruction: where the author placed the next one.
    pub fn ends(&self) -> BTreeSet<u32> {
        self.instructions
            .iter()
            .map(|(&start, insn)| start + insn.len() as u32)
            .collect()
    }
}

/// Decodes `code` (loaded at linear address `origin`) from `entry`. Bytes for which
/// `program` returns false are never decoded (the builder passes "was this byte written").
pub fn trace(code: &[u8], origin: u32, entry: u32, program: &dyn Fn(u32) -> bool) -> Trace {
    let end = origin + code.len() as u32;
    let mut trace = Trace::default();
    // A stack, fall-through pushed last so straight-line code is decoded first.
    let mut work = vec![entry];
    let mut seen = BTreeSet::new();
    while let Some(address) = work.pop() {
        if !seen.insert(address) {
            continue;
        }
        if address < origin || address >= end || !program(address) {
            trace.not_decoded.insert(address);
            continue;
        }
        if let Some(owner) = trace.owner(address) {
            trace.inside.push((address, owner));
            continue;
        }
        let offset = (address - origin) as usize;
        let mut decoder = Decoder::with_ip(
            16,
            &code[offset..],
            u64::from(address),
            DecoderOptions::NONE,
        );
        let insn = decoder.decode();
        if insn.is_invalid() {
            trace.invalid.push(address);
            continue;
        }
        let next = address + insn.len() as u32;
        trace.instructions.insert(address, insn);
        let falls_through = !matches!(
            insn.flow_control(),
            FlowControl::UnconditionalBranch
                | FlowControl::IndirectBranch
                | FlowControl::Return
                | FlowControl::Exception
        );
        if let Some(target) = branch_target(&insn) {
            trace.branches.push(Branch {
                from: address,
                target,
            });
            work.push(target);
        }
        if falls_through {
            trace.falls_into.push((next, address));
            work.push(next);
        }
    }
    trace
}

/// The linear target of a direct jump, call or conditional branch.
pub fn branch_target(insn: &Instruction) -> Option<u32> {
    match insn.flow_control() {
        FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch | FlowControl::Call => {
            match insn.op0_kind() {
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    Some(insn.near_branch_target() as u32 & 0xFFFF)
                }
                OpKind::FarBranch16 | OpKind::FarBranch32 => Some(
                    (u32::from(insn.far_branch_selector()) << 4) + (insn.far_branch32() & 0xFFFF),
                ),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Formats instructions as NASM with `0x` hex and, where given, label names for branch
/// targets and for addresses the program refers to.
pub struct Printer {
    labels: Option<BTreeMap<u32, String>>,
    /// Built on first use: a formatter costs more than the checks that rarely need one.
    formatter: Option<NasmFormatter>,
}

struct Labels(BTreeMap<u32, String>);

impl SymbolResolver for Labels {
    fn symbol(
        &mut self,
        instruction: &Instruction,
        _operand: u32,
        instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<SymbolResult<'_>> {
        let address = u32::try_from(address).ok()?;
        let name = self.0.get(&address)?;
        // Branch targets and memory operands are addresses. An immediate is taken for an
        // address only when it goes to a pointer register (mov si, msg; cmp di, end):
        // `mov ax, 0x0600` is a BIOS function number even if a label has that value.
        let operand = instruction_operand?;
        let is_address = match instruction.op_kind(operand) {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::FarBranch16 | OpKind::Memory => {
                true
            }
            OpKind::Immediate16 => matches!(
                instruction.op0_register(),
                Register::SI | Register::DI | Register::BX | Register::BP | Register::SP
            ),
            _ => false,
        };
        is_address.then(|| SymbolResult::with_str(u64::from(address), name))
    }
}

impl Printer {
    /// A printer that shows `labels` (address -> name) by name.
    pub fn new(labels: BTreeMap<u32, String>) -> Printer {
        Printer {
            labels: Some(labels),
            formatter: None,
        }
    }

    fn formatter(labels: BTreeMap<u32, String>) -> NasmFormatter {
        let mut formatter = NasmFormatter::with_options(Some(Box::new(Labels(labels))), None);
        let options = formatter.options_mut();
        options.set_hex_prefix("0x");
        options.set_hex_suffix("");
        options.set_uppercase_hex(true);
        options.set_space_after_operand_separator(true);
        options.set_branch_leading_zeros(false);
        options.set_leading_zeros(false);
        options.set_show_branch_size(false);
        formatter
    }

    pub fn format(&mut self, insn: &Instruction) -> String {
        let labels = &mut self.labels;
        let formatter = self
            .formatter
            .get_or_insert_with(|| Printer::formatter(labels.take().unwrap_or_default()));
        let mut text = String::new();
        formatter.format(insn, &mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_branches_and_stops_at_unwritten_bytes() {
        // 7C00: jmp short 7C04; 7C02: (data) 00 00; 7C04: call 7C08; 7C07: ret; 7C08: ret
        let code = [0xEB, 0x02, 0x00, 0x00, 0xE8, 0x01, 0x00, 0xC3, 0xC3];
        let t = trace(&code, 0x7C00, 0x7C00, &|_| true);
        assert_eq!(
            t.instructions.keys().copied().collect::<Vec<_>>(),
            vec![0x7C00, 0x7C04, 0x7C07, 0x7C08]
        );
        assert_eq!(
            t.branches,
            vec![
                Branch {
                    from: 0x7C00,
                    target: 0x7C04
                },
                Branch {
                    from: 0x7C04,
                    target: 0x7C08
                }
            ]
        );
        let t = trace(&code, 0x7C00, 0x7C00, &|a| a != 0x7C08);
        assert!(t.not_decoded.contains(&0x7C08));
        let mut printer = Printer::new(BTreeMap::from([(0x7C08, "done".to_string())]));
        assert_eq!(printer.format(&t.instructions[&0x7C04]), "call done");
        assert_eq!(printer.format(&t.instructions[&0x7C00]), "jmp 0x7C04");
    }
}
