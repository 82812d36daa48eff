//! `pxos`: the command-line front end of pxOS.
//!
//! Each command lives in its own module under `cmd/` and calls only library
//! APIs. This file parses arguments, runs the command and turns the outcome
//! into an exit code: 0 success, 1 a clean negative answer (damage found, not
//! found, refused input), 2 a usage or runtime error.

mod cli;
mod cmd;
mod home;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::output::Output;

/// Input a command refuses (a bad source, image or option): exit code 1.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

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
    match cmd::run(&cli, &output) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(1),
        Err(err) => report(&err, &output),
    }
}

/// Prints an error and picks its exit code.
fn report(err: &anyhow::Error, output: &Output) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let code = exit_code(err);
    let message = err.chain().map(ToString::to_string).collect::<Vec<_>>();
    // Contexts repeat their sources' text; keep the outermost full message.
    let text = message.first().cloned().unwrap_or_default();
    if output.json {
        let value = serde_json::json!({"type": "error", "message": text, "exit_code": code});
        println!("{value}");
    }
    eprintln!("pxos: error: {text}");
    if let Some(help) = help_for(err) {
        eprintln!("help: {help}");
    }
    ExitCode::from(code)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<pxos_pixel::Error>().is_some_and(|e| {
                matches!(e.root(), pxos_pixel::Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(err) = cause.downcast_ref::<pxos_pixel::Error>() {
            return if err.is_bad_input() { 1 } else { 2 };
        }
        if let Some(err) = cause.downcast_ref::<pxos_fs::Error>() {
            return if err.is_bad_input() || err.is_not_found() {
                1
            } else {
                2
            };
        }
        if let Some(err) = cause.downcast_ref::<pxos_cart::Error>() {
            return if err.is_bad_input() || err.is_refusal() {
                1
            } else {
                2
            };
        }
        if cause.downcast_ref::<BadInput>().is_some() {
            return 1;
        }
        if cause.downcast_ref::<pxos_x86::BuildError>().is_some() {
            return 1;
        }
        if let Some(err) = cause.downcast_ref::<pxos_x86::qemu::QemuError>() {
            return match err {
                pxos_x86::qemu::QemuError::NotFound(_) | pxos_x86::qemu::QemuError::Failed(_) => 2,
                _ => 1,
            };
        }
        if cause.downcast_ref::<pxos_vm::asm::AsmError>().is_some() {
            return 1;
        }
        if let Some(err) = cause.downcast_ref::<pxos_vm::ProgramError>() {
            return match err {
                pxos_vm::ProgramError::Pixel(err) if !err.is_bad_input() => 2,
                _ => 1,
            };
        }
        if let Some(err) = cause.downcast_ref::<pxos_boot::Error>() {
            return match err {
                pxos_boot::Error::Format(_) => 1,
                pxos_boot::Error::Pixel(err) if err.is_bad_input() => 1,
                _ => 2,
            };
        }
    }
    2
}

fn help_for(err: &anyhow::Error) -> Option<&'static str> {
    for cause in err.chain() {
        if let Some(pxos_fs::Error::NotInitialized(_)) = cause.downcast_ref::<pxos_fs::Error>() {
            return Some(
                "create it with `pxos fs init`, or point --home / PXOS_HOME at an existing home",
            );
        }
        if let Some(err) = cause.downcast_ref::<pxos_pixel::Error>()
            && matches!(err.root(), pxos_pixel::Error::Integrity { .. })
        {
            return Some("the file was altered after it was written; restore it from a copy");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
