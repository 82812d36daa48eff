//! Text from outside: reading it with a size cap, and printing it safely.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The default cap on an input read whole (a source, a JSON or YAML file, a
/// program image): 64 MiB. PXI files are streamed instead, under [`crate::Limits`].
pub const DEFAULT_MAX_INPUT: u64 = 64 << 20;

static MAX_INPUT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_INPUT);

/// Sets the cap [`read_input`] applies, for this process (`--max-input`).
pub fn set_max_input(bytes: u64) {
    MAX_INPUT.store(bytes, Ordering::Relaxed);
}

/// The cap [`read_input`] applies now.
pub fn max_input() -> u64 {
    MAX_INPUT.load(Ordering::Relaxed)
}

/// Reads an input file whole, under the process's input cap ([`max_input`]).
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    read_limited(path, max_input())
}

/// Reads a text input whole, under the process's input cap, as UTF-8 (a
/// leading byte order mark is dropped).
pub fn read_input_text(path: &Path) -> Result<String> {
    read_text_limited(path, max_input())
}

/// Reads the file at `path`, refusing it once it passes `max` bytes. The cap
/// is checked while reading, so `/dev/zero` or a growing pipe stops at `max`.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|err| Error::Io(err).with_path(path))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| Error::Io(err).with_path(path))?;
    if bytes.len() as u64 > max {
        return Err(Error::LimitExceeded(format!(
            "the input is larger than {max} bytes (raise the limit with --max-input BYTES)"
        ))
        .with_path(path));
    }
    Ok(bytes)
}

/// [`read_limited`] for UTF-8 text; a leading byte order mark is dropped.
pub fn read_text_limited(path: &Path, max: u64) -> Result<String> {
    let bytes = read_limited(path, max)?;
    let mut text = String::from_utf8(bytes).map_err(|err| {
        Error::format(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            err.utf8_error().valid_up_to()
        ))
        .with_path(path)
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..3);
    }
    Ok(text)
}

/// True for characters that must not reach a terminal raw: C0 and C1
/// controls, DEL, and the bidirectional overrides that reorder text.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character, escape code and bidi override
/// written as a visible escape (`\n`, `\u{1b}`), so a name or a message from
/// a file cannot forge lines or colours. Printable text is unchanged.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`], cut to 80 characters with a marker, for quoting input in errors.
pub fn escape_short(text: &str) -> String {
    const MAX: usize = 80;
    let escaped = escape(text);
    if escaped.chars().count() <= MAX {
        return escaped.into_owned();
    }
    let cut: String = escaped.chars().take(MAX).collect();
    format!("{cut}... ({} bytes)", text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_only() {
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape("a\nb\u{1b}[31m\0"), "a\\nb\\u{1b}[31m\\u{0}");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("\u{9b}"), "\\u{9b}");
    }

    #[test]
    fn short_escape_cuts_long_input() {
        let long = "v".repeat(100_000);
        let short = escape_short(&long);
        assert!(short.len() < 120, "{short}");
        assert!(short.ends_with("(100000 bytes)"));
    }
}
