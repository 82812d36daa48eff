//! Everything the CLI prints: text or JSON Lines on stdout, errors on stderr,
//! progress bars on a terminal.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::cli::{ColorChoice, Global};

/// Files larger than this get a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 8 << 20;

/// How and where to print.
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    color: bool,
    stderr_tty: bool,
}

impl Output {
    pub fn new(global: &Global) -> Output {
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
            }
        };
        Output {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            color: color && !global.json,
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// Prints one result: `value` as a JSON line, or `text` (unless quiet).
    pub fn emit(&self, value: Value, text: impl FnOnce() -> String) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut stdout, &value)?;
            stdout.write_all(b"\n")
        } else if !self.quiet {
            let text = text();
            if text.is_empty() {
                return Ok(());
            }
            writeln!(stdout, "{text}")
        } else {
            Ok(())
        }
    }

    /// Colours `text` green (good news) when colour is on.
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Colours `text` red (bad news) when colour is on.
    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Dims `text` when colour is on.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A byte progress bar for `total` bytes, shown only on a terminal for big files.
    pub fn progress(&self, total: u64, message: &str) -> Progress {
        if self.json || self.quiet || !self.stderr_tty || total < PROGRESS_THRESHOLD {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        Progress(Some(bar))
    }
}

/// A progress bar that may be absent.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Output {
    /// A progress bar counting steps (training), shown only on a terminal.
    pub fn steps_bar(&self, total: u64, message: &str) -> Progress {
        if self.json || self.quiet || !self.stderr_tty {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(message.to_string());
        Progress(Some(bar))
    }

    /// Prints a progress line: above the bar when one is shown, else as [`Output::emit`] does.
    pub fn emit_progress(
        &self,
        value: Value,
        text: impl FnOnce() -> String,
    ) -> std::io::Result<()> {
        self.emit(value, text)
    }
}

impl Progress {
    pub fn message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Prints a line above the bar (or nothing when there is no bar).
    pub fn println(&self, line: &str) -> bool {
        match &self.0 {
            Some(bar) => {
                bar.println(line);
                true
            }
            None => false,
        }
    }

    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Human-readable byte counts.
/// A field that a user, a cartridge or a program controls, made safe for a
/// terminal: control characters, escape codes and bidi overrides become
/// visible escapes, so the field cannot forge lines or colours.
pub fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    pxos_pixel::text::escape(text)
}

/// [`esc`] line by line: a model's multi-line answer prints as lines, each
/// escaped.
pub fn esc_lines(text: &str) -> String {
    text.lines().map(esc).collect::<Vec<_>>().join("\n")
}

/// Writes an output file atomically; an error names the file.
pub fn write_output(
    path: impl AsRef<std::path::Path>,
    bytes: &[u8],
    label: pxos_pixel::durable::Label,
) -> crate::error::Result<()> {
    use crate::error::Context;
    let path = path.as_ref();
    pxos_pixel::durable::write_atomic(path, bytes, label)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
