//! A labelled listing of a boot sector.
//!
//! Code is told from data by tracing execution from the entry point (see [`crate::flow`]):
//! what the CPU can reach is listed as instructions, the rest as `db` data, with strings
//! shown as text and the boot signature named. Branch targets get the caller's labels
//! (from the source's DEFINEs) or `loc_XXXX` names.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::flow::{Printer, trace};

/// What a listing line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Code,
    Data,
    Signature,
    /// Identical instructions folded into one line.
    Repeat,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub address: u32,
    /// The bytes, as hex pairs separated by spaces.
    pub bytes: String,
    pub kind: Kind,
    /// The label defined at this address, if any.
    pub label: Option<String>,
    pub text: String,
    /// A remark, such as a branch that enters this instruction in the middle.
    pub note: Option<String>,
}

/// A whole listing.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub origin: u32,
    pub entry: u32,
    pub size: usize,
    pub code_bytes: usize,
    pub instructions: usize,
    pub entries: Vec<Entry>,
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Disassembles `code`, loaded at `origin` and entered there. `symbols` names addresses
/// (inside the code or not); targets without a name get `loc_XXXX`.
pub fn disassemble(code: &[u8], origin: u32, symbols: &BTreeMap<u32, String>) -> Listing {
    let end = origin + code.len() as u32;
    let trace = trace(code, origin, origin, &|_| true);
    let mut labels = symbols.clone();
    for branch in &trace.branches {
        if (origin..end).contains(&branch.target) {
            labels
                .entry(branch.target)
                .or_insert_with(|| format!("loc_{:04X}", branch.target));
        }
    }
    let mut printer = Printer::new(labels.clone());
    let mut entries: Vec<Entry> = Vec::new();
    let mut address = origin;
    while address < end {
        let label = labels.get(&address).cloned();
        let offset = (address - origin) as usize;
        if let Some(insn) = trace.instructions.get(&address) {
            let len = insn.len() as u32;
            let bytes = hex_bytes(&code[offset..offset + len as usize]);
            let text = printer.format(insn);
            let inner: Vec<String> = trace
                .instructions
                .range(address + 1..address + len)
                .map(|(a, _)| match labels.get(a) {
                    Some(name) => format!("0x{a:04X} ({name})"),
                    None => format!("0x{a:04X}"),
                })
                .collect();
            let note = (!inner.is_empty()).then(|| {
                format!(
                    "execution also enters this instruction at {}",
                    inner.join(", ")
                )
            });
            entries.push(Entry {
                address,
                bytes,
                kind: Kind::Code,
                label,
                text,
                note,
            });
            address += len;
            continue;
        }
        // Data runs to the next instruction or label.
        let next = trace
            .instructions
            .range(address + 1..)
            .map(|(a, _)| *a)
            .chain(labels.range(address + 1..end).map(|(a, _)| *a))
            .min()
            .unwrap_or(end)
            .min(end);
        data(code, origin, address, next, label, &mut entries);
        address = next;
    }
    Listing {
        entries: fold_repeats(entries),
        origin,
        entry: origin,
        size: code.len(),
        code_bytes: trace.instructions.values().map(|i| i.len()).sum(),
        instructions: trace.instructions.len(),
    }
}

/// Folds runs of more than three identical, unlabelled instructions: the first two stay,
/// the rest become one line (a sector of zeros is 255 times `add [bx+si], al`).
fn fold_repeats(entries: Vec<Entry>) -> Vec<Entry> {
    let plain = |e: &Entry| e.kind == Kind::Code && e.label.is_none() && e.note.is_none();
    let mut folded: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut i = 0;
    while i < entries.len() {
        let run = entries[i..]
            .iter()
            .take_while(|e| plain(e) && e.bytes == entries[i].bytes && e.text == entries[i].text)
            .count();
        if run > 3 {
            folded.extend(entries[i..i + 2].iter().cloned());
            folded.push(Entry {
                address: entries[i + 2].address,
                bytes: String::new(),
                kind: Kind::Repeat,
                label: None,
                text: format!("; ... {} more `{}`", run - 2, entries[i].text),
                note: None,
            });
            i += run;
        } else {
            folded.push(entries[i].clone());
            i += 1;
        }
    }
    folded
}

/// Lists `code[from..to]` (addresses) as data lines.
fn data(
    code: &[u8],
    origin: u32,
    from: u32,
    to: u32,
    mut label: Option<String>,
    entries: &mut Vec<Entry>,
) {
    let signature_at = origin + 510;
    let is_sector = code.len() == 512 && code[510..] == crate::build::SIGNATURE;
    let mut address = from;
    while address < to {
        let offset = (address - origin) as usize;
        if is_sector && address == signature_at {
            entries.push(Entry {
                address,
                bytes: "55 AA".into(),
                kind: Kind::Signature,
                label: label.take(),
                text: "dw 0xAA55".into(),
                note: Some("boot signature".into()),
            });
            address += 2;
            continue;
        }
        let limit = if is_sector && address < signature_at {
            to.min(signature_at)
        } else {
            to
        };
        let rest = &code[offset..(limit - origin) as usize];
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        let take = if zeros >= 8 {
            zeros
        } else {
            // A line ends after a NUL (each string on its own line) or after a line feed
            // (each line of a message on its own line), at most 64 bytes.
            let mut n = 0;
            while n < rest.len() && n < 64 {
                let byte = rest[n];
                n += 1;
                if byte == 0 || (byte == b'\n' && rest.get(n) != Some(&0)) {
                    break;
                }
            }
            n
        };
        let chunk = &rest[..take];
        let text = if zeros >= 8 {
            format!("times {take} db 0")
        } else {
            db(chunk)
        };
        let shown = if chunk.len() > 6 {
            format!("{} ..", hex_bytes(&chunk[..5]))
        } else {
            hex_bytes(chunk)
        };
        entries.push(Entry {
            address,
            bytes: shown,
            kind: Kind::Data,
            label: label.take(),
            text,
            note: None,
        });
        address += take as u32;
    }
}

/// `db "text", 0x0D, 0x0A, 0` with printable runs quoted.
fn db(bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut text = String::new();
    for &b in bytes {
        if (0x20..=0x7E).contains(&b) && b != b'"' {
            text.push(b as char);
        } else {
            if !text.is_empty() {
                parts.push(format!("\"{text}\""));
                text.clear();
            }
            parts.push(if b == 0 {
                "0".to_string()
            } else {
                format!("0x{b:02X}")
            });
        }
    }
    if !text.is_empty() {
        parts.push(format!("\"{text}\""));
    }
    format!("db {}", parts.join(", "))
}

/// The listing as text: a label line before each labelled address, then
/// `ADDR  BYTES  TEXT  ; note`.
pub fn render(listing: &Listing) -> String {
    let mut out = String::new();
    for entry in &listing.entries {
        if let Some(label) = &entry.label {
            let _ = writeln!(out, "{label}:");
        }
        let mut line = format!(
            "    {:04X}  {:<20}{}",
            entry.address, entry.bytes, entry.text
        );
        if let Some(note) = &entry.note {
            let _ = write!(line, "  ; {note}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_data_and_signature() {
        let mut sector = [0u8; 512];
        // jmp short to 0x7C08 over "hi\0", then hlt; jmp $-1
        sector[..2].copy_from_slice(&[0xEB, 0x06]);
        sector[2..5].copy_from_slice(b"hi\0");
        sector[8..11].copy_from_slice(&[0xF4, 0xEB, 0xFD]);
        sector[510..].copy_from_slice(&[0x55, 0xAA]);
        let listing = disassemble(
            &sector,
            0x7C00,
            &BTreeMap::from([(0x7C02, "msg".to_string())]),
        );
        let text = render(&listing);
        assert!(text.contains("jmp loc_7C08"), "{text}");
        assert!(
            text.contains("msg:\n    7C02  68 69 00            db \"hi\", 0"),
            "{text}"
        );
        assert!(
            text.contains("7C09  EB FD               jmp loc_7C08"),
            "{text}"
        );
        assert!(text.contains("times 499 db 0"), "{text}");
        assert!(
            text.contains("7DFE  55 AA               dw 0xAA55  ; boot signature"),
            "{text}"
        );
    }

    #[test]
    fn runs_of_the_same_instruction_fold() {
        let mut sector = [0u8; 512];
        sector[510..].copy_from_slice(&[0x55, 0xAA]);
        let text = render(&disassemble(&sector, 0x7C00, &BTreeMap::new()));
        assert!(text.contains("; ... 253 more `add [bx+si], al`"), "{text}");
        assert!(text.lines().count() < 10, "{text}");
    }
}
