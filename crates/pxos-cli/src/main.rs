//! `pxos`: the command-line front end of pxOS.
//!
//! Each command lives in its own module under `cmd/` and calls only library
//! APIs. This file parses arguments, runs the command and turns the outcome
//! into an exit code: 0 success, 1 a clean negative answer (damage found, not
//! found, refused input, tampering), 2 a usage or runtime error. The code
//! follows from the error's kind (`error.rs`); nothing is downcast.

mod cli;
mod cmd;
mod error;
mod home;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::CliError;
use crate::output::Output;

/// What a command concluded.
pub enum Outcome {
    /// Everything asked for holds.
    Success,
    /// A clean "no": verification failed, something was not found.
    Negative,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let output = Output::new(&cli.global);
    apply_global_settings(&cli.global, &output);
    match cmd::run(&cli, &output) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(1),
        Err(err) => report(&err, &output),
    }
}

/// QEMU scratch folders (as temporaries) and the QEMU processes using them,
/// which a signal must stop and remove before pxos exits.
static QEMU_SCRATCH: std::sync::Mutex<Vec<QemuScratch>> = std::sync::Mutex::new(Vec::new());

/// A scratch folder, the QEMU running on it (once started), and the folder
/// as a temporary (removed when the entry is dropped, or by the signal handler).
type QemuScratch = (
    std::path::PathBuf,
    Option<u32>,
    Option<pxos_pixel::durable::Temporary>,
);

fn observe_qemu(event: pxos_x86::qemu::ScratchEvent<'_>) {
    use pxos_x86::qemu::ScratchEvent;
    let mut scratch = QEMU_SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    match event {
        ScratchEvent::Created(dir) => {
            let temporary = pxos_pixel::durable::Temporary::adopt(dir.to_path_buf()).ok();
            scratch.push((dir.to_path_buf(), None, temporary));
        }
        ScratchEvent::Running(dir, pid) => {
            if let Some(entry) = scratch.iter_mut().find(|(d, _, _)| d == dir) {
                entry.1 = Some(pid);
            }
        }
        // The temporary is dropped here, which removes the folder (QEMU has stopped).
        ScratchEvent::Removed(dir) => scratch.retain(|(d, _, _)| d != dir),
    }
}

/// Stops every QEMU this process started (their folders go with the temporaries).
fn stop_children() {
    let scratch = QEMU_SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    for pid in scratch.iter().filter_map(|(_, pid, _)| *pid) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

/// Settings that hold for the whole process: input caps, the lock wait, and
/// the signal handler that removes temporaries on SIGINT, SIGTERM and SIGHUP.
fn apply_global_settings(global: &cli::Global, output: &Output) {
    if let Some(max) = global.max_input {
        pxos_pixel::text::set_max_input(max);
    }
    pxos_x86::qemu::set_scratch_observer(observe_qemu);
    if let Some(timeout) = global.lock_timeout {
        pxos_fs::lock::set_lock_timeout(timeout);
    }
    if !output.quiet {
        pxos_fs::lock::set_wait_notice(|path, holder| {
            eprintln!(
                "pxos: waiting for the write lock {}{} (another pxos process is writing; --lock-timeout sets how long)",
                path.display(),
                holder
                    .map(|pid| format!(", held by pid {pid}"))
                    .unwrap_or_default()
            );
        });
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    stop_children();
                    eprintln!(
                        "pxos: interrupted by signal {signal}; its temporary files were removed"
                    );
                    pxos_pixel::durable::remove_temporaries_and_exit(128 + signal);
                }
            });
        }
        Err(err) => eprintln!(
            "pxos: warning: cannot watch for signals ({err}); an interrupted command may leave .pxos-tmp-* files"
        ),
    }
}

/// Prints an error and returns its exit code (which follows from its kind).
fn report(err: &CliError, output: &Output) -> ExitCode {
    let code = err.exit_code();
    if err.broken_pipe {
        return ExitCode::from(code);
    }
    if output.json {
        let value = serde_json::json!({"type": "error", "message": err.message, "kind": format!("{:?}", err.kind).to_lowercase(), "exit_code": code});
        println!("{value}");
    }
    eprintln!("pxos: error: {}", err.message);
    if let Some(help) = err.help {
        eprintln!("help: {help}");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
