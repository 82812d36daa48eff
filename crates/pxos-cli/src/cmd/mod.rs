//! One module per command group.

mod agents;
mod boot;
mod cart;
mod demo;
mod fs;
mod kernel;
mod llm;
mod map;
mod pixel;
mod remote;
mod shell;
mod tour;
mod view;
mod vm;
mod vram;
mod x86;

use pxos_cart::{Actor, ActorKind};

use crate::Outcome;
use crate::cli::{ActorArgs, Cli, Command};
use crate::error::Result;
use crate::output::Output;

/// Who is acting: `--actor` (default `$USER`), an LLM with `--llm`.
pub fn actor(args: &ActorArgs) -> Actor {
    let name = args
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    Actor {
        kind: if args.llm {
            ActorKind::Llm
        } else {
            ActorKind::Human
        },
        name,
    }
}

/// Runs the parsed command.
pub fn run(cli: &Cli, output: &Output) -> Result<Outcome> {
    match &cli.command {
        Command::Tour => tour::run(&cli.global, output),
        Command::Boot {
            dry_run,
            sequence,
            log,
            screen,
            cartridge,
            no_shell,
        } => {
            let request = pxos_boot::boot::BootRequest {
                dry_run: *dry_run,
                sequence_file: sequence.clone(),
                log_file: log.clone(),
                screen_file: screen.clone(),
                cartridge: cartridge.clone(),
                host: Some(pxos_boot::boot::Host(std::rc::Rc::new(
                    pxos_agent::control::BootHost {
                        home: crate::home::home(&cli.global)?,
                    },
                ))),
            };
            let booted = boot::boot(&request, &cli.global, output)?;
            // On a terminal the boot ends at the world's prompt.
            let prompt = !*no_shell
                && !*dry_run
                && !output.json
                && matches!(booted, Outcome::Success)
                && std::io::IsTerminal::is_terminal(&std::io::stdin());
            if prompt {
                shell::after_boot(cartridge.clone(), &cli.global, output)?;
            }
            Ok(booted)
        }
        Command::Shell { cartridge } => shell::shell(cartridge.clone(), &cli.global, output),
        Command::Status => boot::status(&cli.global, output),
        Command::Pixel(command) => pixel::run(command, &cli.global, output),
        Command::Fs(command) => fs::run(command, &cli.global, output),
        Command::Asm {
            file,
            output: target,
        } => vm::asm(file, target.as_deref(), output),
        Command::Disasm { program } => vm::disasm(program, output),
        Command::Run {
            program,
            args,
            screen,
            memory,
            fuel,
            caps,
            trace,
            cartridge,
            trusted,
            allow_llm,
        } => {
            let options = vm::RunOptions {
                args,
                screen: screen.as_deref(),
                memory: memory.as_deref(),
                fuel: *fuel,
                caps: caps.caps(),
                trace: *trace,
                trusted: *trusted,
                allow_llm: *allow_llm,
            };
            if cartridge.is_none() && (program.is_file() || program.extension().is_some()) {
                vm::run_file(program, &options, &cli.global, output)
            } else {
                vm::run_named(
                    &program.to_string_lossy(),
                    cartridge.as_deref(),
                    &options,
                    &cli.global,
                    output,
                )
            }
        }
        Command::Inspect => boot::inspect(&cli.global, output),
        Command::Debug {
            program,
            fuel,
            caps,
            trusted,
        } => vm::debug(program, *fuel, caps.caps(), *trusted, &cli.global, output),
        Command::Kernel(command) => kernel::run(command, &cli.global, output),
        Command::Demo(command) => demo::run(command, &cli.global, output),
        Command::Cart(command) => cart::run(command, &cli.global, output),
        Command::Log(args) if args.network => remote::network_log(&cli.global, output),
        Command::Log(args) => cart::log(args, &cli.global, output),
        Command::Vram(command) => vram::run(command, &cli.global, output),
        Command::View { port, open } => view::serve(*port, *open, &cli.global, output),
        Command::Map(command) => map::run(command, &cli.global, output),
        Command::Remote(command) => remote::run(command, &cli.global, output),
        Command::X86(command) => x86::run(command, output),
        Command::Llm(command) => llm::run(command, &cli.global, output),
        Command::Tasks(command) => agents::tasks(command, &cli.global, output),
        Command::Coach(command) => agents::coach(command, &cli.global, output),
        Command::Agents(args) => agents::agents(args, &cli.global, output),
        Command::Evolve(command) => agents::evolve(command, &cli.global, output),
        Command::Architect(command) => agents::architect(command, &cli.global, output),
        Command::Genesis(crate::cli::GenesisCommand::Check { cartridge }) => {
            cart::genesis(Some(cartridge), None, &cli.global, output)
        }
    }
}
