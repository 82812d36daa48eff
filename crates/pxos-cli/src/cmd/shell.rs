//! `pxos shell`, and the prompt `pxos boot` ends at on a terminal.
//!
//! The shell is the world's own program (`pxos_boot::shell`); this module is
//! its terminal: a line editor with history when stdin is a terminal, or the
//! lines of stdin, echoed, when it is not.

use std::io::{BufRead, IsTerminal, Write};

use pxos_boot::shell::{ShellEnd, ShellRequest, Terminal};
use pxos_vm::LineRead;
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::error::Result;
use crate::home::home;
use crate::output::{Output, esc};

/// Longest line read from a script; longer ones are cut here (and refused by
/// the shell, whose line buffer is much smaller).
const MAX_SCRIPT_LINE: usize = 64 << 10;
/// Lines of history kept in a session.
const HISTORY: usize = 1000;

/// A person at a terminal: rustyline's editing (arrows, Home/End, Ctrl-A/E/K/W)
/// and in-session history (up and down, Ctrl-R).
struct EditorTerminal {
    editor: rustyline::DefaultEditor,
}

impl EditorTerminal {
    fn new() -> std::result::Result<EditorTerminal, rustyline::error::ReadlineError> {
        let config = rustyline::Config::builder()
            .max_history_size(HISTORY)?
            .auto_add_history(false)
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .build();
        Ok(EditorTerminal {
            editor: rustyline::DefaultEditor::with_config(config)?,
        })
    }
}

impl Terminal for EditorTerminal {
    fn read_line(&mut self, prompt: &str) -> LineRead {
        use rustyline::error::ReadlineError;
        match self.editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = self.editor.add_history_entry(line.as_str());
                }
                LineRead::Line(line)
            }
            // Ctrl-C abandons the line, as in other shells.
            Err(ReadlineError::Interrupted) => LineRead::Line(String::new()),
            Err(ReadlineError::Eof) => LineRead::End,
            Err(err) => {
                eprintln!("pxos: the terminal failed: {err}; ending the shell");
                LineRead::End
            }
        }
    }

    fn clear(&mut self) {
        let _ = self.editor.clear_screen();
    }
}

/// Commands from stdin when it is not a terminal (a script, an agent): each
/// line is echoed after the prompt, so the output reads as a transcript.
struct ScriptTerminal {
    json: bool,
}

impl Terminal for ScriptTerminal {
    fn read_line(&mut self, prompt: &str) -> LineRead {
        let mut stdin = std::io::stdin().lock();
        let mut line = Vec::new();
        let mut ended = true;
        loop {
            let buffer = match stdin.fill_buf() {
                Ok(buffer) => buffer,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    eprintln!("pxos: reading stdin failed: {err}; ending the shell");
                    break;
                }
            };
            if buffer.is_empty() {
                break;
            }
            ended = false;
            let (take, newline) = match buffer.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (buffer.len(), false),
            };
            let room = MAX_SCRIPT_LINE.saturating_sub(line.len());
            line.extend_from_slice(&buffer[..take.min(room)]);
            stdin.consume(take + usize::from(newline));
            if newline {
                break;
            }
        }
        if ended && line.is_empty() {
            return LineRead::End;
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if self.json {
            println!(
                "{}",
                json!({"type": "input", "prompt": prompt, "line": line})
            );
        } else {
            println!("{}{}", esc(prompt), esc(&line));
        }
        LineRead::Line(line)
    }

    fn clear(&mut self) {}
}

/// The print hook: what the shell and its programs print.
fn printer(json: bool) -> pxos_vm::PrintHook {
    Box::new(move |text: &str| {
        let mut stdout = std::io::stdout().lock();
        if json {
            let _ = writeln!(stdout, "{}", json!({"type": "output", "text": text}));
        } else {
            for line in text.split('\n') {
                let _ = writeln!(stdout, "{}", esc(line));
            }
        }
        let _ = stdout.flush();
    })
}

fn start(cartridge: Option<String>, global: &Global, output: &Output) -> Result<ShellEnd> {
    let home = home(global)?;
    let terminal: Box<dyn Terminal> = if std::io::stdin().is_terminal() {
        match EditorTerminal::new() {
            Ok(editor) => Box::new(editor),
            Err(err) => {
                eprintln!("pxos: warning: no line editing ({err}); reading plain lines");
                Box::new(ScriptTerminal { json: output.json })
            }
        }
    } else {
        Box::new(ScriptTerminal { json: output.json })
    };
    Ok(pxos_boot::shell::run_shell(
        &home,
        &ShellRequest { cartridge },
        terminal,
        Some(printer(output.json)),
    )?)
}

fn report(end: &ShellEnd, output: &Output) -> Result<()> {
    let result = &end.result;
    output.emit(
        json!({"type": "shell-end", "cartridge": end.cartridge, "ok": result.success, "trap": result.trap,
               "prompts": end.prompts, "lines": end.lines_read, "programs_run": end.programs_run,
               "execution": result.log_id, "screen": end.screen_file}),
        String::new,
    )?;
    if end.prompts == 0 && result.success {
        eprintln!(
            "pxos: note: the shell of {} asked for no input (its shell stage does not use READ_LINE); it ran and halted",
            esc(&end.cartridge)
        );
    }
    Ok(())
}

/// `pxos shell`: exit 1 when the shell traps.
pub fn shell(cartridge: Option<String>, global: &Global, output: &Output) -> Result<Outcome> {
    let end = start(cartridge, global, output)?;
    report(&end, output)?;
    if let Some(trap) = &end.result.trap {
        eprintln!(
            "pxos: error: the shell of {} trapped: {} (execution #{})",
            esc(&end.cartridge),
            esc(trap),
            end.result.log_id
        );
        return Ok(Outcome::Negative);
    }
    Ok(Outcome::Success)
}

/// The prompt after a clean boot on a terminal. A shell that traps is
/// reported, and the boot ends as `--no-shell` would have.
pub fn after_boot(cartridge: Option<String>, global: &Global, output: &Output) -> Result<()> {
    let end = match start(cartridge, global, output) {
        Ok(end) => end,
        Err(err) => {
            eprintln!("pxos: warning: no shell: {err}; the boot is complete without one");
            return Ok(());
        }
    };
    report(&end, output)?;
    if let Some(trap) = &end.result.trap {
        eprintln!(
            "pxos: warning: the shell of {} trapped: {} (execution #{}); the boot is complete without a shell, as with --no-shell",
            esc(&end.cartridge),
            esc(trap),
            end.result.log_id
        );
    }
    Ok(())
}
