//! One module per command group.

mod fs;
mod pixel;
mod tour;

use anyhow::Result;

use crate::Outcome;
use crate::cli::{Cli, Command};
use crate::output::Output;

/// Runs the parsed command.
pub fn run(cli: &Cli, output: &Output) -> Result<Outcome> {
    match &cli.command {
        Command::Tour => tour::run(&cli.global, output),
        Command::Pixel(command) => pixel::run(command, output),
        Command::Fs(command) => fs::run(command, &cli.global, output),
    }
}
