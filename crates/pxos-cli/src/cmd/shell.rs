//! `pxos shell`, and the prompt `pxos boot` ends at on a terminal.
//!
//! The shell is the world's own program (`pxos_boot::shell`); this module is
//! its terminal: a line editor with history when stdin is a terminal, or the
//! lines of stdin, echoed, when it is not.

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use pxos_boot::shell::{ShellEnd, ShellRequest, Terminal};
use pxos_vm::LineRead;
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::error::{Context, Result};
use crate::home::home;
use crate::output::{Output, esc};

/// Longest line read from a script; longer ones are cut here (and refused by
/// the shell, whose line buffer is much smaller).
const MAX_SCRIPT_LINE: usize = 64 << 10;
/// Lines of history kept, in a session and in the history file.
const HISTORY: usize = 1000;
/// Longest line kept in the history (the default shell refuses longer ones).
const MAX_HISTORY_LINE: usize = 1023;
/// Largest history file read back.
const MAX_HISTORY_FILE: u64 = 2 << 20;

/// The lines of earlier sessions (`HOME/shell/history.txt`, one per line,
/// oldest first) and those of this one.
struct History {
    path: PathBuf,
    earlier: Vec<String>,
    /// Why the file could not be read: it is then left as it is.
    unreadable: Option<String>,
    this_session: Rc<RefCell<Vec<String>>>,
}

impl History {
    fn load(home: &Path) -> History {
        let path = home.join("shell").join("history.txt");
        let (earlier, unreadable) = if !path.exists() {
            (Vec::new(), None)
        } else {
            match pxos_pixel::text::read_text_limited(&path, MAX_HISTORY_FILE) {
                Ok(text) => (text.lines().map(str::to_string).collect(), None),
                Err(err) => (Vec::new(), Some(err.to_string())),
            }
        };
        if let Some(why) = &unreadable {
            eprintln!(
                "pxos: warning: the shell history is unreadable ({why}); this session's lines will not be kept, and the file is left as it is"
            );
        }
        History {
            path,
            earlier,
            unreadable,
            this_session: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Whether `line` is worth keeping: not empty, not too long, and free of
    /// control characters.
    fn keeps(line: &str) -> bool {
        !line.trim().is_empty()
            && line.len() <= MAX_HISTORY_LINE
            && !line.chars().any(char::is_control)
    }

    /// Writes the last [`HISTORY`] lines of both, when this session read any.
    fn save(&self) -> Result<()> {
        let new = self.this_session.borrow();
        if new.is_empty() || self.unreadable.is_some() {
            return Ok(());
        }
        let all: Vec<&String> = self.earlier.iter().chain(new.iter()).collect();
        let mut text = String::new();
        for line in &all[all.len().saturating_sub(HISTORY)..] {
            text.push_str(line);
            text.push('\n');
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        pxos_pixel::durable::write_atomic(
            &self.path,
            text.as_bytes(),
            pxos_pixel::durable::label::SHELL_HISTORY,
        )
        .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

/// A person at a terminal: rustyline's editing (arrows, Home/End, Ctrl-A/E/K/W)
/// and history (up and down, Ctrl-R), earlier sessions' included.
struct EditorTerminal {
    editor: rustyline::DefaultEditor,
    kept: Rc<RefCell<Vec<String>>>,
}

impl EditorTerminal {
    fn new(
        history: &History,
    ) -> std::result::Result<EditorTerminal, rustyline::error::ReadlineError> {
        let config = rustyline::Config::builder()
            .max_history_size(HISTORY)?
            .auto_add_history(false)
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .build();
        let mut editor = rustyline::DefaultEditor::with_config(config)?;
        for line in &history.earlier {
            editor.add_history_entry(line.as_str())?;
        }
        Ok(EditorTerminal {
            editor,
            kept: history.this_session.clone(),
        })
    }
}

impl Terminal for EditorTerminal {
    fn read_line(&mut self, prompt: &str) -> LineRead {
        use rustyline::error::ReadlineError;
        match self.editor.readline(prompt) {
            Ok(line) => {
                if History::keeps(&line) {
                    let _ = self.editor.add_history_entry(line.as_str());
                    self.kept.borrow_mut().push(line.clone());
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
/// line is echoed after the prompt, so the output reads as a transcript, and
/// kept in the history like a typed one.
struct ScriptTerminal {
    json: bool,
    kept: Rc<RefCell<Vec<String>>>,
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
        if History::keeps(&line) {
            self.kept.borrow_mut().push(line.clone());
        }
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
    let history = History::load(&home);
    let script = || ScriptTerminal {
        json: output.json,
        kept: history.this_session.clone(),
    };
    let terminal: Box<dyn Terminal> = if std::io::stdin().is_terminal() {
        match EditorTerminal::new(&history) {
            Ok(editor) => Box::new(editor),
            Err(err) => {
                eprintln!("pxos: warning: no line editing ({err}); reading plain lines");
                Box::new(script())
            }
        }
    } else {
        Box::new(script())
    };
    let end = pxos_boot::shell::run_shell(
        &home,
        &ShellRequest {
            cartridge,
            llm: Some(model_source(&home)),
        },
        terminal,
        Some(printer(output.json)),
    )?;
    history.save()?;
    Ok(end)
}

/// The home's model, opened on the first question (`ask`, SYS_LLM).
fn model_source(home: &std::path::Path) -> pxos_boot::hypervisor::ModelSource {
    let model = pxos_agent::bridge::SharedModel::new(home, None);
    std::rc::Rc::new(move || model.boxed())
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

/// "the shell of C trapped: WHY (execution #N)", when it did.
fn trapped(end: &ShellEnd) -> Option<String> {
    end.result.trap.as_ref().map(|trap| {
        format!(
            "the shell of {} trapped: {} (execution #{})",
            esc(&end.cartridge),
            esc(trap),
            end.result.log_id
        )
    })
}

/// `pxos shell`: exit 1 when the shell traps.
pub fn shell(cartridge: Option<String>, global: &Global, output: &Output) -> Result<Outcome> {
    let end = start(cartridge, global, output)?;
    report(&end, output)?;
    if let Some(why) = trapped(&end) {
        eprintln!("pxos: error: {why}");
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
    if let Some(why) = trapped(&end) {
        eprintln!("pxos: warning: {why}; the boot is complete without a shell, as with --no-shell");
    }
    Ok(())
}
