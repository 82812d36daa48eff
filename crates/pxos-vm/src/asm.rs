//! The PXVM assembler.
//!
//! ```text
//! ; a comment                      labels:  START:   (alone or before an instruction)
//! .const SCREEN_W 512              constants (also `.equ NAME, value`)
//! .entry START                     the entry point (default: address 0)
//! .word 1, 0x20, LABEL, 'A'        data words
//! .string "hello"                  UTF-8 packed 4 bytes per word, NUL-terminated
//! .org 64                          pad with zeros up to an address
//! .include "lib.pxasm"             another file, relative to this one
//! IMM32 R1, 301                    instructions: mnemonic, operands separated by commas
//! LOAD R1, [R2+4]                  memory operands: [Rn], [Rn+k], [Rn-k] or Rn, k
//! ```
//!
//! Numbers: decimal, `0x` hex, `0b` binary, `'c'` characters, a leading `-`,
//! and `NAME+k` / `NAME-k` on labels and constants. Mnemonics and registers are
//! case-insensitive. Errors carry file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::isa::{Format, Instruction, Op};

/// An assembled program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// The words, loaded at address 0.
    pub words: Vec<u32>,
    /// Where execution starts.
    pub entry: u32,
    /// Labels and constants with their values.
    pub symbols: BTreeMap<String, u32>,
    /// For each instruction or data item: its address, file and line.
    pub lines: Vec<(u32, String, usize)>,
}

/// An assembly error with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl AsmError {
    /// Who is at fault: the source.
    pub fn kind(&self) -> pxos_pixel::ErrorKind {
        pxos_pixel::ErrorKind::BadInput
    }
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for AsmError {}

/// Largest program the assembler produces (words).
pub const MAX_PROGRAM_WORDS: usize = 1 << 24;
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where included files come from.
pub trait SourceLoader {
    /// Reads `path` (already resolved against the including file).
    fn load(&mut self, path: &Path) -> Result<String, String>;
}

/// Reads included files from the host file system.
pub struct FileLoader;

impl SourceLoader for FileLoader {
    fn load(&mut self, path: &Path) -> Result<String, String> {
        pxos_pixel::text::read_input_text(path).map_err(|err| err.to_string())
    }
}

/// Refuses every include (for sources with no file context).
pub struct NoIncludes;

impl SourceLoader for NoIncludes {
    fn load(&mut self, path: &Path) -> Result<String, String> {
        Err(format!(
            "includes are not available here ({})",
            path.display()
        ))
    }
}

/// Assembles the file at `path`, resolving includes from disk.
pub fn assemble_file(path: &Path) -> Result<Program, AsmError> {
    let source = pxos_pixel::text::read_input_text(path).map_err(|err| AsmError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read the file: {}", err.root()),
    })?;
    assemble_with(&path.display().to_string(), &source, &mut FileLoader)
}

/// Assembles `source` (named `name` in errors); includes are refused.
pub fn assemble(name: &str, source: &str) -> Result<Program, AsmError> {
    assemble_with(name, source, &mut NoIncludes)
}

/// Assembles `source` to run at word address `origin`: labels are absolute,
/// and the words are what goes at `origin` onwards (used for VRAM regions).
pub fn assemble_at(name: &str, source: &str, origin: u32) -> Result<Program, AsmError> {
    let mut assembler = Assembler {
        address: origin,
        origin,
        ..Assembler::default()
    };
    assembler.parse_file(name, source, &mut NoIncludes, 0, &mut Vec::new())?;
    assembler.finish()
}

/// Assembles `source` with includes read through `loader`.
pub fn assemble_with(
    name: &str,
    source: &str,
    loader: &mut dyn SourceLoader,
) -> Result<Program, AsmError> {
    let mut assembler = Assembler::default();
    assembler.parse_file(name, source, loader, 0, &mut Vec::new())?;
    assembler.finish()
}

#[derive(Clone, Debug)]
struct Pos {
    file: String,
    line: usize,
    column: usize,
}

impl Pos {
    fn error(&self, message: impl Into<String>) -> AsmError {
        AsmError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }

    fn at(&self, column: usize) -> Pos {
        Pos {
            column,
            ..self.clone()
        }
    }
}

/// An operand token with its column.
#[derive(Clone, Debug)]
struct Operand {
    text: String,
    column: usize,
}

#[derive(Debug)]
enum Item {
    Instruction {
        op: Op,
        operands: Vec<Operand>,
        pos: Pos,
    },
    Words {
        values: Vec<Operand>,
        pos: Pos,
    },
    Bytes {
        bytes: Vec<u8>,
    },
}

#[derive(Default)]
struct Assembler {
    items: Vec<(u32, Item, Pos)>,
    address: u32,
    origin: u32,
    symbols: HashMap<String, (u32, Pos)>,
    entry: Option<(Operand, Pos)>,
}

impl Assembler {
    fn parse_file(
        &mut self,
        name: &str,
        source: &str,
        loader: &mut dyn SourceLoader,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Result<(), AsmError> {
        stack.push(name.to_string());
        for (index, raw_line) in source.lines().enumerate() {
            let pos = Pos {
                file: name.to_string(),
                line: index + 1,
                column: 1,
            };
            self.parse_line(raw_line, &pos, loader, depth, stack)?;
        }
        stack.pop();
        Ok(())
    }

    fn parse_line(
        &mut self,
        raw_line: &str,
        pos: &Pos,
        loader: &mut dyn SourceLoader,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Result<(), AsmError> {
        let line = strip_comment(raw_line);
        let mut rest = line;
        let mut column = 1;
        // Labels: `NAME:` at the start (several allowed).
        loop {
            let trimmed = rest.trim_start();
            column += rest.len() - trimmed.len();
            rest = trimmed;
            let Some(colon) = rest.find(':') else { break };
            let candidate = &rest[..colon];
            if !is_identifier(candidate) || rest[..colon].contains(char::is_whitespace) {
                break;
            }
            self.define(candidate, self.address, &pos.at(column))?;
            column += colon + 1;
            rest = &rest[colon + 1..];
        }
        if rest.trim().is_empty() {
            return Ok(());
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(word_end);
        let head_pos = pos.at(column);
        let operands_column = column + word_end;
        if let Some(directive) = head.strip_prefix('.') {
            return self.directive(
                directive,
                tail,
                &head_pos,
                operands_column,
                loader,
                depth,
                stack,
            );
        }
        let op = Op::from_mnemonic(head)
            .ok_or_else(|| head_pos.error(format!("unknown instruction '{head}'")))?;
        let operands = split_operands(tail, operands_column, pos)?;
        let size = op.format().words() as u32;
        self.push(
            Item::Instruction {
                op,
                operands,
                pos: head_pos.clone(),
            },
            size,
            &head_pos,
        )
    }

    fn push(&mut self, item: Item, size: u32, pos: &Pos) -> Result<(), AsmError> {
        if (self.address - self.origin) as usize + size as usize > MAX_PROGRAM_WORDS {
            return Err(pos.error(format!("program exceeds {MAX_PROGRAM_WORDS} words")));
        }
        self.items.push((self.address, item, pos.clone()));
        self.address += size;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn directive(
        &mut self,
        name: &str,
        tail: &str,
        pos: &Pos,
        operands_column: usize,
        loader: &mut dyn SourceLoader,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Result<(), AsmError> {
        let operands_column = operands_column + (tail.len() - tail.trim_start().len());
        match name.to_ascii_lowercase().as_str() {
            "word" => {
                let values = split_operands(tail, operands_column, pos)?;
                if values.is_empty() {
                    return Err(pos.error(".word needs at least one value"));
                }
                let size = values.len() as u32;
                self.push(
                    Item::Words {
                        values,
                        pos: pos.clone(),
                    },
                    size,
                    pos,
                )
            }
            "string" => {
                let text = tail.trim();
                let bytes =
                    parse_string(text).map_err(|message| pos.at(operands_column).error(message))?;
                let size = (bytes.len() + 1).div_ceil(4) as u32;
                self.push(Item::Bytes { bytes }, size, pos)
            }
            "const" | "equ" => {
                let text = tail.trim();
                let (symbol, value) = match text.split_once(',') {
                    Some((symbol, value)) => (symbol.trim(), value.trim()),
                    None => text
                        .split_once(char::is_whitespace)
                        .map(|(s, v)| (s.trim(), v.trim()))
                        .ok_or_else(|| pos.error(format!(".{name} needs a name and a value")))?,
                };
                let value_pos = pos.at(operands_column);
                let value = self.evaluate_now(value, &value_pos)?;
                self.define(symbol, value, &value_pos)
            }
            "entry" => {
                let text = tail.trim();
                if text.is_empty() {
                    return Err(pos.error(".entry needs a label or address"));
                }
                self.entry = Some((
                    Operand {
                        text: text.to_string(),
                        column: operands_column,
                    },
                    pos.clone(),
                ));
                Ok(())
            }
            "org" => {
                let target = self.evaluate_now(tail.trim(), &pos.at(operands_column))?;
                if target < self.address {
                    return Err(pos.error(format!(
                        ".org {target} is below the current address {}",
                        self.address
                    )));
                }
                let gap = target - self.address;
                if target as usize > MAX_PROGRAM_WORDS {
                    return Err(
                        pos.error(format!(".org {target} exceeds {MAX_PROGRAM_WORDS} words"))
                    );
                }
                let zeros = vec![
                    Operand {
                        text: "0".into(),
                        column: operands_column
                    };
                    gap as usize
                ];
                if gap > 0 {
                    self.push(
                        Item::Words {
                            values: zeros,
                            pos: pos.clone(),
                        },
                        gap,
                        pos,
                    )?;
                }
                Ok(())
            }
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(
                        pos.error(format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"))
                    );
                }
                let relative = parse_string(tail.trim())
                    .map_err(|message| pos.at(operands_column).error(message))?;
                let relative = String::from_utf8(relative)
                    .map_err(|_| pos.error("include path is not UTF-8"))?;
                let base = Path::new(&pos.file)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let path: PathBuf = base.join(&relative);
                let name = path.display().to_string();
                if stack.contains(&name) {
                    return Err(pos.error(format!("{name} includes itself")));
                }
                let source = loader.load(&path).map_err(|message| pos.error(message))?;
                self.parse_file(&name, &source, loader, depth + 1, stack)
            }
            other => Err(pos.error(format!("unknown directive '.{other}'"))),
        }
    }

    fn define(&mut self, name: &str, value: u32, pos: &Pos) -> Result<(), AsmError> {
        if !is_identifier(name) {
            return Err(pos.error(format!("'{name}' is not a valid name")));
        }
        if parse_register(name).is_some() || Op::from_mnemonic(name).is_some() {
            return Err(pos.error(format!(
                "'{name}' is a register or mnemonic and cannot be a name"
            )));
        }
        if let Some((_, previous)) = self.symbols.get(name) {
            return Err(pos.error(format!(
                "'{name}' is already defined at line {}",
                previous.line
            )));
        }
        self.symbols.insert(name.to_string(), (value, pos.clone()));
        Ok(())
    }

    /// Evaluates with the symbols known so far (for .const, .org).
    fn evaluate_now(&self, text: &str, pos: &Pos) -> Result<u32, AsmError> {
        evaluate(text, pos, &|name| {
            self.symbols.get(name).map(|(value, _)| *value)
        })
    }

    fn finish(self) -> Result<Program, AsmError> {
        let lookup = |name: &str| self.symbols.get(name).map(|(value, _)| *value);
        let mut words = Vec::with_capacity((self.address - self.origin) as usize);
        let mut lines = Vec::with_capacity(self.items.len());
        for (address, item, pos) in &self.items {
            lines.push((*address, pos.file.clone(), pos.line));
            match item {
                Item::Instruction { op, operands, pos } => {
                    let instruction = encode(*op, operands, pos, &lookup)?;
                    let (first, second) = instruction.encode();
                    words.push(first);
                    words.extend(second);
                }
                Item::Words { values, pos } => {
                    for value in values {
                        words.push(evaluate(&value.text, &pos.at(value.column), &lookup)?);
                    }
                }
                Item::Bytes { bytes } => {
                    let mut padded = bytes.clone();
                    padded.push(0);
                    while padded.len() % 4 != 0 {
                        padded.push(0);
                    }
                    words.extend(
                        padded
                            .chunks(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                }
            }
        }
        let entry = match &self.entry {
            Some((operand, pos)) => evaluate(&operand.text, &pos.at(operand.column), &lookup)?,
            None => 0,
        };
        Ok(Program {
            words,
            entry,
            symbols: self
                .symbols
                .into_iter()
                .map(|(name, (value, _))| (name, value))
                .collect(),
            lines,
        })
    }
}

fn encode(
    op: Op,
    operands: &[Operand],
    pos: &Pos,
    lookup: &dyn Fn(&str) -> Option<u32>,
) -> Result<Instruction, AsmError> {
    let format = op.format();
    // LOAD/STORE accept `R1, [R2+4]` as well as `R1, R2, 4`.
    let expanded;
    let operands = if matches!(op, Op::LOAD | Op::STORE)
        && operands.len() == 2
        && operands[1].text.starts_with('[')
    {
        expanded = expand_memory_operand(operands, pos)?;
        &expanded[..]
    } else {
        operands
    };
    let expected = match format {
        Format::None => 0,
        Format::R | Format::U16 | Format::W => 1,
        Format::RR | Format::RI16 | Format::RW => 2,
        Format::RRR | Format::RRI8 | Format::RRW => 3,
    };
    if operands.len() != expected {
        return Err(pos.error(format!(
            "{} takes {expected} operand{}, found {}",
            op.mnemonic(),
            if expected == 1 { "" } else { "s" },
            operands.len()
        )));
    }
    let register = |index: usize| -> Result<u8, AsmError> {
        let operand = &operands[index];
        parse_register(&operand.text).ok_or_else(|| {
            pos.at(operand.column).error(format!(
                "expected a register R0..R15, found '{}'",
                operand.text
            ))
        })
    };
    let value = |index: usize| -> Result<u32, AsmError> {
        let operand = &operands[index];
        evaluate(&operand.text, &pos.at(operand.column), lookup)
    };
    let signed = |index: usize, min: i64, max: i64| -> Result<i64, AsmError> {
        let operand = &operands[index];
        let raw = evaluate_signed(&operand.text, &pos.at(operand.column), lookup)?;
        if raw < min || raw > max {
            return Err(pos
                .at(operand.column)
                .error(format!("{raw} does not fit in {min}..={max}")));
        }
        Ok(raw)
    };
    let mut inst = Instruction {
        op,
        a: 0,
        b: 0,
        c: 0,
        wide: 0,
    };
    match format {
        Format::None => {}
        Format::R => inst.a = register(0)?,
        Format::RR => {
            inst.a = register(0)?;
            inst.b = register(1)?;
        }
        Format::RRR => {
            inst.a = register(0)?;
            inst.b = register(1)?;
            inst.c = register(2)?;
        }
        Format::RRI8 => {
            inst.a = register(0)?;
            inst.b = register(1)?;
            inst.c = signed(2, -128, 127)? as i8 as u8;
        }
        Format::RI16 => {
            inst.a = register(0)?;
            let imm = signed(1, -32768, 32767)? as i16 as u16;
            inst.b = imm as u8;
            inst.c = (imm >> 8) as u8;
        }
        Format::U16 => {
            let imm = signed(0, 0, 65535)? as u16;
            inst.b = imm as u8;
            inst.c = (imm >> 8) as u8;
        }
        Format::RW => {
            inst.a = register(0)?;
            inst.wide = value(1)?;
        }
        Format::W => inst.wide = value(0)?,
        Format::RRW => {
            inst.a = register(0)?;
            inst.b = register(1)?;
            inst.wide = value(2)?;
        }
    }
    Ok(inst)
}

/// `R1, [R2+4]` -> `R1, R2, 4`.
fn expand_memory_operand(operands: &[Operand], pos: &Pos) -> Result<Vec<Operand>, AsmError> {
    let memory = &operands[1];
    let inner = memory
        .text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| {
            pos.at(memory.column)
                .error("memory operand must look like [R2], [R2+4] or [R2-4]")
        })?
        .trim();
    let split = inner.find(['+', '-']).unwrap_or(inner.len());
    let (base, offset) = inner.split_at(split);
    let offset = match offset.strip_prefix('+') {
        Some(positive) => positive.trim().to_string(),
        None if offset.is_empty() => "0".to_string(),
        None => offset.replace(' ', ""),
    };
    Ok(vec![
        operands[0].clone(),
        Operand {
            text: base.trim().to_string(),
            column: memory.column + 1,
        },
        Operand {
            text: offset,
            column: memory.column + 1 + split,
        },
    ])
}

/// The register number of `R0`..`R15` (case-insensitive).
pub fn parse_register(text: &str) -> Option<u8> {
    let digits = text.strip_prefix('R').or_else(|| text.strip_prefix('r'))?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u8 = digits.parse().ok()?;
    (number < 16 && (digits.len() == 1 || !digits.starts_with('0'))).then_some(number)
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut in_char = false;
    let mut escaped = false;
    for (index, ch) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_string || in_char => escaped = true,
            '"' if !in_char => in_string = !in_string,
            '\'' if !in_string => in_char = !in_char,
            ';' if !in_string && !in_char => return &line[..index],
            _ => {}
        }
    }
    line
}

fn split_operands(tail: &str, column: usize, pos: &Pos) -> Result<Vec<Operand>, AsmError> {
    let mut operands = Vec::new();
    if tail.trim().is_empty() {
        return Ok(operands);
    }
    let mut start = 0;
    let mut in_char = false;
    let mut pieces = Vec::new();
    for (index, ch) in tail.char_indices() {
        match ch {
            '\'' => in_char = !in_char,
            ',' if !in_char => {
                pieces.push((start, &tail[start..index]));
                start = index + 1;
            }
            _ => {}
        }
    }
    pieces.push((start, &tail[start..]));
    for (offset, piece) in pieces {
        let trimmed = piece.trim_start();
        let lead = piece.len() - trimmed.len();
        let text = trimmed.trim_end();
        if text.is_empty() {
            return Err(pos.at(column + offset + lead).error("empty operand"));
        }
        operands.push(Operand {
            text: text.to_string(),
            column: column + offset + lead,
        });
    }
    Ok(operands)
}

fn parse_string(text: &str) -> Result<Vec<u8>, String> {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| format!("expected a quoted string, found '{text}'"))?;
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('0') => out.push(0),
                Some('\\') => out.push(b'\\'),
                Some('"') => out.push(b'"'),
                other => {
                    return Err(format!(
                        "unknown escape '\\{}'",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            }
        } else {
            let mut buffer = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
        }
    }
    if out.contains(&0) {
        return Err("strings cannot contain NUL (it ends them)".into());
    }
    Ok(out)
}

fn evaluate(text: &str, pos: &Pos, lookup: &dyn Fn(&str) -> Option<u32>) -> Result<u32, AsmError> {
    let value = evaluate_signed(text, pos, lookup)?;
    if value < i64::from(i32::MIN) || value > i64::from(u32::MAX) {
        return Err(pos.error(format!("{value} does not fit in 32 bits")));
    }
    Ok(value as u32)
}

fn evaluate_signed(
    text: &str,
    pos: &Pos,
    lookup: &dyn Fn(&str) -> Option<u32>,
) -> Result<i64, AsmError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('-') {
        return evaluate_signed(rest, pos, lookup).map(|v| -v);
    }
    // NAME+k and NAME-k.
    if let Some(split) = text
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i)
        && !text.starts_with('\'')
    {
        let (left, right) = text.split_at(split);
        let base = evaluate_signed(left, pos, lookup)?;
        let offset = evaluate_signed(&right[1..], pos, lookup)?;
        return Ok(if right.starts_with('+') {
            base + offset
        } else {
            base - offset
        });
    }
    parse_number(text)
        .or_else(|| lookup(text).map(i64::from))
        .ok_or_else(|| {
            if is_identifier(text) {
                pos.error(format!("undefined name '{text}'"))
            } else {
                pos.error(format!("'{text}' is not a number, label or constant"))
            }
        })
}

fn parse_number(text: &str) -> Option<i64> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        let mut chars = inner.chars();
        let ch = match (chars.next()?, chars.next()) {
            ('\\', Some('n')) => '\n',
            ('\\', Some('t')) => '\t',
            ('\\', Some('0')) => '\0',
            ('\\', Some('\\')) => '\\',
            ('\\', Some('\'')) => '\'',
            (ch, None) => ch,
            _ => return None,
        };
        if chars.next().is_some() {
            return None;
        }
        return Some(i64::from(u32::from(ch)));
    }
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if let Some(binary) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
            (binary, 2)
        } else {
            (text, 10)
        };
    let digits = digits.replace('_', "");
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&digits, radix)
        .ok()
        .filter(|v| *v <= i64::from(u32::MAX))
}
