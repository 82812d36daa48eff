//! The primitive language: tokens, numbers and statements.
//!
//! Two dialects share this module. [`parse`] is the strict pxOS dialect: every line is a
//! statement or an error, and errors are collected for the whole file. The seed dialect
//! (what the original Python builder accepted, quirks included) lives in
//! [`crate::build::build_compat`], which uses [`parse_python_int`] from here.

use std::fmt;

use serde::Serialize;

/// What kind of problem a [`Diagnostic`] reports; tests and `--json` users match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    UnknownCommand,
    MissingArgument,
    ExtraArgument,
    BadNumber,
    BadString,
    BadLabel,
    DuplicateLabel,
    UndefinedLabel,
    OutOfRange,
    Overlap,
    OutsideSector,
    OverSignature,
    BadBranch,
    BadCode,
}

/// One problem with a source file, with the line it comes from when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: Option<usize>,
    pub problem: Problem,
    pub message: String,
}

impl Diagnostic {
    pub fn at(line: usize, problem: Problem, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            line: Some(line),
            problem,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A value in a statement: a number, a label, or the low or high byte of either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Number(u64),
    Label(String),
    Low(Box<Expr>),
    High(Box<Expr>),
}

impl Expr {
    /// The label this expression refers to, if any (an expression holds at most one).
    pub fn label(&self) -> Option<&str> {
        match self {
            Expr::Number(_) => None,
            Expr::Label(name) => Some(name),
            Expr::Low(inner) | Expr::High(inner) => inner.label(),
        }
    }
}

/// One statement of the strict dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `WRITE addr byte` (or `OVERWRITE addr byte`, which may replace an earlier byte).
    Write {
        addr: Expr,
        value: Expr,
        overwrite: bool,
    },
    /// `WORD addr value`: two bytes, little-endian.
    Word { addr: Expr, value: Expr },
    /// `REL8 addr label` / `REL16 addr label`: the displacement of a short or near branch
    /// whose displacement field starts at `addr`.
    Rel {
        addr: Expr,
        target: Expr,
        wide: bool,
    },
    /// `TEXT addr "string"`: the string's bytes, no terminator unless written (`\0`).
    Text { addr: Expr, bytes: Vec<u8> },
    /// `DEFINE label value`.
    Define { label: String, value: Expr },
    /// `CALL label`: documents that the code calls `label`; the label must exist.
    Call { label: String },
}

/// A statement and the line it was on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub stmt: Stmt,
}

/// The commands of the strict dialect, for messages and suggestions.
pub const COMMANDS: &[&str] = &[
    "WRITE",
    "DEFINE",
    "CALL",
    "COMMENT",
    "WORD",
    "REL8",
    "REL16",
    "TEXT",
    "OVERWRITE",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    /// The quote character for a quoted token, whose `text` holds the decoded contents.
    quote: Option<char>,
}

/// Parses a source file in the strict dialect. All problems of the file are returned.
pub fn parse(source: &str) -> Result<Vec<Line>, Vec<Diagnostic>> {
    // A byte order mark some editors put first is not part of the source.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in source.lines().enumerate() {
        let number = index + 1;
        match parse_line(raw) {
            Ok(Some(stmt)) => lines.push(Line { number, stmt }),
            Ok(None) => {}
            Err((problem, message)) => problems.push(Diagnostic::at(number, problem, message)),
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

fn parse_line(raw: &str) -> Result<Option<Stmt>, (Problem, String)> {
    let tokens = tokenize(raw).map_err(|message| (Problem::BadString, message))?;
    let Some((first, args)) = tokens.split_first() else {
        return Ok(None);
    };
    if first.quote.is_some() {
        return Err((
            Problem::UnknownCommand,
            format!(
                "a line must start with a command, not the string {:?}",
                first.text
            ),
        ));
    }
    let command = first.text.to_ascii_uppercase();
    let want = |count: usize| -> Result<(), (Problem, String)> {
        if args.len() < count {
            let usage = usage(&command);
            Err((
                Problem::MissingArgument,
                format!("{command} needs {count} argument(s): {usage}"),
            ))
        } else if args.len() > count {
            Err((
                Problem::ExtraArgument,
                format!(
                    "{command} takes {count} argument(s) ({}), found {}: unexpected {:?} (start comments with COMMENT, # or ;)",
                    usage(&command),
                    args.len(),
                    args[count].text
                ),
            ))
        } else {
            Ok(())
        }
    };
    let stmt = match command.as_str() {
        "WRITE" | "OVERWRITE" => {
            want(2)?;
            Stmt::Write {
                addr: expr(&args[0])?,
                value: expr(&args[1])?,
                overwrite: command == "OVERWRITE",
            }
        }
        "WORD" => {
            want(2)?;
            Stmt::Word {
                addr: expr(&args[0])?,
                value: expr(&args[1])?,
            }
        }
        "REL8" | "REL16" => {
            want(2)?;
            Stmt::Rel {
                addr: expr(&args[0])?,
                target: expr(&args[1])?,
                wide: command == "REL16",
            }
        }
        "TEXT" => {
            want(2)?;
            if args[1].quote != Some('"') {
                return Err((
                    Problem::BadString,
                    format!(
                        "TEXT needs a double-quoted string, found {:?}",
                        args[1].text
                    ),
                ));
            }
            Stmt::Text {
                addr: expr(&args[0])?,
                bytes: args[1].text.bytes().collect(),
            }
        }
        "DEFINE" => {
            want(2)?;
            let label = label_name(&args[0])?;
            Stmt::Define {
                label,
                value: expr(&args[1])?,
            }
        }
        "CALL" => {
            want(1)?;
            Stmt::Call {
                label: label_name(&args[0])?,
            }
        }
        _ => {
            let hint = suggest(&command)
                .map(|c| format!("; did you mean {c}?"))
                .unwrap_or_default();
            return Err((
                Problem::UnknownCommand,
                format!(
                    "unknown command {:?}{hint} (commands: {})",
                    first.text,
                    COMMANDS.join(", ")
                ),
            ));
        }
    };
    Ok(Some(stmt))
}

fn usage(command: &str) -> &'static str {
    match command {
        "WRITE" | "OVERWRITE" => "address and byte value",
        "WORD" => "address and 16-bit value",
        "REL8" | "REL16" => "address of the displacement and target label",
        "TEXT" => "address and \"string\"",
        "DEFINE" => "label and address",
        "CALL" => "label",
        _ => "",
    }
}

/// The closest command within two edits, for "did you mean".
fn suggest(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Splits a line into tokens, dropping comments: a token `COMMENT` (any case) or a token
/// starting with `#` or `;` begins a comment that runs to the end of the line.
fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string: missing closing {c}")),
                    Some(q) if q == c => break,
                    Some('\\') => text.push(escape(chars.next())?),
                    Some(other) => text.push(other),
                }
            }
            if chars.peek().is_some_and(|n| !n.is_whitespace()) {
                return Err(format!("missing space after the string {c}{text}{c}"));
            }
            tokens.push(Token {
                text,
                quote: Some(c),
            });
            continue;
        }
        let mut text = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_whitespace() {
                break;
            }
            text.push(n);
            chars.next();
        }
        if text.eq_ignore_ascii_case("COMMENT")
            || text.eq_ignore_ascii_case("COMMENT:")
            || text.starts_with('#')
            || text.starts_with(';')
        {
            break;
        }
        tokens.push(Token { text, quote: None });
    }
    for token in &tokens {
        if token.quote.is_some() && !token.text.is_ascii() {
            return Err(format!(
                "the string {:?} has characters outside ASCII; write them as \\xHH bytes",
                token.text
            ));
        }
    }
    Ok(tokens)
}

fn escape(c: Option<char>) -> Result<char, String> {
    Ok(match c {
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('b') => '\u{8}',
        Some('0') => '\0',
        Some('\\') => '\\',
        Some('"') => '"',
        Some('\'') => '\'',
        Some(other) => {
            return Err(format!(
                "unknown escape \\{other} (known: \\n \\r \\t \\b \\0 \\\\ \\\" \\')"
            ));
        }
        None => return Err("a string ends in a lone backslash".into()),
    })
}

fn is_label(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn label_name(token: &Token) -> Result<String, (Problem, String)> {
    if token.quote.is_none() && is_label(&token.text) {
        let upper = token.text.to_ascii_uppercase();
        if COMMANDS.contains(&upper.as_str()) || upper == "LO" || upper == "HI" {
            return Err((
                Problem::BadLabel,
                format!("{:?} is a reserved word and cannot be a label", token.text),
            ));
        }
        Ok(token.text.clone())
    } else {
        Err((
            Problem::BadLabel,
            format!(
                "{:?} is not a label name (a letter, _ or . followed by letters, digits, _ or .)",
                token.text
            ),
        ))
    }
}

fn expr(token: &Token) -> Result<Expr, (Problem, String)> {
    if let Some(quote) = token.quote {
        let bytes = token.text.as_bytes();
        if quote == '\'' && bytes.len() == 1 {
            return Ok(Expr::Number(u64::from(bytes[0])));
        }
        return Err((
            Problem::BadNumber,
            format!(
                "a value may be one quoted character like 'A', not {quote}{}{quote} (use TEXT for strings)",
                token.text
            ),
        ));
    }
    expr_text(&token.text)
}

/// How deeply `lo(...)` and `hi(...)` may nest (two levels already mean nothing new).
pub const MAX_EXPR_NESTING: usize = 8;

fn expr_text(text: &str) -> Result<Expr, (Problem, String)> {
    // Peel lo(...) and hi(...) in a loop, not by recursion: the input bounds
    // the nesting, and the stack must not depend on the input.
    let mut wrappers = Vec::new();
    let mut text = text;
    loop {
        let lower = text.get(..3).map(str::to_ascii_lowercase);
        let high = match lower.as_deref() {
            Some("lo(") => false,
            Some("hi(") => true,
            _ => break,
        };
        let Some(inner) = text[3..].strip_suffix(')') else {
            return Err((
                Problem::BadNumber,
                format!("missing ) in {:?}", short(text)),
            ));
        };
        if wrappers.len() == MAX_EXPR_NESTING {
            return Err((
                Problem::BadNumber,
                format!("lo() and hi() nest at most {MAX_EXPR_NESTING} deep"),
            ));
        }
        wrappers.push(high);
        text = inner;
    }
    let mut expr = expr_atom(text)?;
    for high in wrappers.into_iter().rev() {
        expr = if high {
            Expr::High(Box::new(expr))
        } else {
            Expr::Low(Box::new(expr))
        };
    }
    Ok(expr)
}

/// At most 60 characters of `text`, for messages.
fn short(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

fn expr_atom(text: &str) -> Result<Expr, (Problem, String)> {
    let first = text.chars().next().unwrap_or(' ');
    if first.is_ascii_digit() {
        parse_number(text)
            .map(Expr::Number)
            .map_err(|message| (Problem::BadNumber, message))
    } else if first == '-' || first == '+' {
        Err((
            Problem::BadNumber,
            format!(
                "{text:?}: signed numbers are not allowed; write the byte itself (for -1, 0xFF)"
            ),
        ))
    } else if is_label(text) {
        Ok(Expr::Label(text.to_string()))
    } else {
        Err((
            Problem::BadNumber,
            format!("{text:?} is neither a number (0x7C00, 31744, 0b1010, 0o17) nor a label"),
        ))
    }
}

/// Parses an unsigned number of the strict dialect: `0x`/`0X` hex, `0b` binary, `0o` octal,
/// or decimal, with `_` allowed between digits. A decimal with a leading zero is refused
/// (is `010` eight or ten?), as the seed's builder refused it.
pub fn parse_number(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("bad number {text:?}: {why}");
    let lower = text.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else {
        (10, lower.as_str())
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty() {
        return Err(bad("no digits"));
    }
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return Err(bad("`_` may only separate digits"));
    }
    if radix == 10
        && digits.len() > 1
        && digits.starts_with('0')
        && !digits.trim_matches(['0', '_']).is_empty()
    {
        return Err(bad(
            "a decimal number cannot start with 0 (write 0x.. or 0o.. for other bases)",
        ));
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c
            .to_digit(radix)
            .ok_or_else(|| bad(&format!("{c:?} is not a base-{radix} digit")))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| bad("too large"))?;
    }
    Ok(value)
}

/// Parses a token the way the seed builder did: `int(tok, 16)` after a `0x` prefix,
/// otherwise Python's `int(tok, 0)`. Signs are accepted here and returned; the caller
/// refuses negatives explicitly (the seed let Python wrap them silently).
pub fn parse_python_int(text: &str) -> Result<i128, String> {
    let bad = || format!("Cannot parse value: {text}");
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // `int(tok, 16)` (taken for a `0x` prefix) and `int(tok, 0)` agree on every token that
    // reaches here, so one parser serves both.
    let lower = body.to_ascii_lowercase();
    if lower.is_empty() || lower.starts_with('_') {
        return Err(bad());
    }
    let value = parse_number(&lower).map_err(|_| bad())?;
    let value = i128::from(value);
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x7C00"), Ok(0x7C00));
        assert_eq!(parse_number("0X7c00"), Ok(0x7C00));
        assert_eq!(parse_number("31744"), Ok(31744));
        assert_eq!(parse_number("0b1010"), Ok(10));
        assert_eq!(parse_number("0o17"), Ok(15));
        assert_eq!(parse_number("1_000"), Ok(1000));
        assert_eq!(parse_number("0x_7C"), Ok(0x7C));
        assert_eq!(parse_number("0"), Ok(0));
        assert_eq!(parse_number("00"), Ok(0));
        assert!(parse_number("010").is_err());
        assert!(parse_number("0x").is_err());
        assert!(parse_number("0xG1").is_err());
        assert!(parse_number("1__0").is_err());
        assert!(parse_number("99999999999999999999999").is_err());
        assert_eq!(parse_python_int("-5"), Ok(-5));
        assert!(parse_python_int("0x7C00+2").is_err());
    }

    #[test]
    fn comments_and_strings() {
        assert_eq!(parse_line("  COMMENT hello").unwrap(), None);
        assert_eq!(parse_line("# x").unwrap(), None);
        assert_eq!(parse_line("; x").unwrap(), None);
        assert_eq!(
            parse_line("WRITE 0x7C00 0xFA COMMENT cli").unwrap(),
            Some(Stmt::Write {
                addr: Expr::Number(0x7C00),
                value: Expr::Number(0xFA),
                overwrite: false
            })
        );
        assert_eq!(
            parse_line(r#"TEXT msg "a; b\r\n\0" ; trailing"#).unwrap(),
            Some(Stmt::Text {
                addr: Expr::Label("msg".into()),
                bytes: b"a; b\r\n\0".to_vec()
            })
        );
        assert_eq!(
            parse_line("write 0x7C00 ' '").unwrap(),
            Some(Stmt::Write {
                addr: Expr::Number(0x7C00),
                value: Expr::Number(32),
                overwrite: false
            })
        );
        assert_eq!(
            parse_line("WRITE 0x7C01 hi(msg)").unwrap(),
            Some(Stmt::Write {
                addr: Expr::Number(0x7C01),
                value: Expr::High(Box::new(Expr::Label("msg".into()))),
                overwrite: false
            })
        );
        assert_eq!(
            parse_line("WRTIE 1 2").unwrap_err().0,
            Problem::UnknownCommand
        );
        assert!(
            parse_line("WRTIE 1 2")
                .unwrap_err()
                .1
                .contains("did you mean WRITE?")
        );
        assert_eq!(
            parse_line("TEXT 1 \"abc").unwrap_err().0,
            Problem::BadString
        );
        assert_eq!(parse_line("DEFINE 9x 1").unwrap_err().0, Problem::BadLabel);
        assert_eq!(
            parse_line("WRITE 1").unwrap_err().0,
            Problem::MissingArgument
        );
        assert_eq!(
            parse_line("WRITE 1 2 3").unwrap_err().0,
            Problem::ExtraArgument
        );
        assert_eq!(parse_line("WRITE 1 -2").unwrap_err().0, Problem::BadNumber);
    }
}
