//! `pxos tasks`, `coach`, `agents`, `evolve`, `architect`: agents inside pxOS.

use std::collections::BTreeMap;
use std::path::Path;

use pxos_agent::coach::{self, CoachOptions, Event};
use pxos_agent::config::{AgentConfig, Architect, Endpoint};
use pxos_agent::provider::{self, Gate, Message, Purpose, Request};
use pxos_agent::queue::{Action, Agent, Expect, Filter, NewTask, Status, Task, TaskQueue};
use serde_json::json;

use crate::Outcome;
use crate::cli::{
    AgentsArgs, AgentsCommand, ArchitectCommand, CoachCommand, EvolveCommand, Global, TasksCommand,
};
use crate::error::{CliError, Result};
use crate::home::home;
use crate::output::{Output, esc, esc_lines};

impl From<pxos_agent::Error> for CliError {
    fn from(err: pxos_agent::Error) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

/// The built-in architect's instructions.
pub const ARCHITECT_PROMPT: &str = "You are the pxOS architect. pxOS stores every file, program, \
kernel and model as pixels in PNG images, runs PXVM programs that are images, and evolves only \
through proposals a person approves. Propose small, checkable changes; name the Genesis \
principles they touch and how to roll them back.";

/// A gate over the provider `spec` names (or the home's default).
pub fn open_gate(home: &Path, spec: Option<&str>) -> Result<Gate> {
    let config = AgentConfig::load(home)?;
    let provider = provider::open(home, &config, spec)?;
    Ok(Gate::new(provider, config.policy, Some(home)))
}

fn task_json(task: &Task) -> serde_json::Value {
    let mut value = serde_json::to_value(task).expect("tasks serialize");
    value["type"] = json!("task");
    value
}

fn task_line(task: &Task) -> String {
    format!(
        "{:<5} {:<11} p{:<4} {:<19} {}{}",
        task.id,
        task.status.name(),
        task.priority,
        task.action.name(),
        esc(&task.title),
        if task.needs_human {
            "  [needs a person]"
        } else {
            ""
        }
    )
}

pub fn tasks(command: &TasksCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    match command {
        TasksCommand::Add(add) => {
            let crate::cli::TaskAddArgs {
                title,
                action,
                description,
                priority,
                agent,
                phase,
                depends_on,
                max_attempts,
                expect,
                args,
                path,
                meta,
            } = add.as_ref();
            let mut new = NewTask::new(title, Action::parse(action)?);
            new.description = description.clone();
            new.priority = *priority;
            new.agent = Agent::parse(agent)?;
            new.phase = phase.clone();
            new.dependencies = depends_on.clone();
            new.max_attempts = *max_attempts;
            new.expect = Expect {
                args: args.clone(),
                output: expect.clone(),
            };
            new.path = path.clone();
            for pair in meta {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(CliError::usage(format!("--meta {pair:?}: use KEY=VALUE")));
                };
                if key == "workspace" {
                    return Err(CliError::new(
                        pxos_pixel::ErrorKind::Refused,
                        "--meta workspace=...: pxOS chooses a task's workspace (HOME/agents/workspace/<id>)",
                    ));
                }
                new.metadata.insert(
                    key.to_string(),
                    serde_json::Value::String(value.to_string()),
                );
            }
            if new.action == Action::Program && new.expect.output.is_empty() {
                return Err(CliError::usage(
                    "a program task needs the output its code must print: --expect LINE (repeatable)",
                ));
            }
            let id = TaskQueue::update(&home, |queue| queue.add(new))?;
            let queue = TaskQueue::load(&home)?;
            let task = queue.get(&id)?;
            output.emit(task_json(task), || format!("added {id}: {}", esc(title)))?;
        }
        TasksCommand::List { status, phase } => {
            let queue = TaskQueue::load(&home)?;
            let status = status.as_deref().map(Status::parse).transpose()?;
            let tasks = queue.list(status, phase.as_deref());
            for task in &tasks {
                output.emit(task_json(task), || task_line(task))?;
            }
            let progress = queue.progress(phase.as_deref());
            output.emit(json!({"type": "progress", "counts": progress}), || {
                if tasks.is_empty() && queue.tasks.is_empty() {
                    "no tasks (`pxos tasks add TITLE --expect LINE` adds one)".into()
                } else {
                    format!(
                        "{} of {} completed, {} pending, {} failed",
                        progress["completed"],
                        progress["total"],
                        progress["pending"],
                        progress["failed"]
                    )
                }
            })?;
        }
        TasksCommand::Next { phase, agent } => {
            let queue = TaskQueue::load(&home)?;
            let filter = Filter {
                phase: phase.clone(),
                agent: Some(Agent::parse(agent)?),
                action: None,
            };
            match queue.next(&filter) {
                Some(task) => output.emit(task_json(task), || task_line(task))?,
                None => {
                    output.emit(json!({"type": "task", "id": null}), || {
                        "no task is ready (pending, with attempts left and its dependencies completed)".into()
                    })?;
                    return Ok(Outcome::Negative);
                }
            }
        }
        TasksCommand::Show { id } => {
            let queue = TaskQueue::load(&home)?;
            let task = queue.get(id)?;
            output.emit(task_json(task), || {
                serde_json::to_string_pretty(task).expect("tasks serialize")
            })?;
        }
        TasksCommand::Start { id } => change(&home, id, output, "started", |q| q.start(id))?,
        TasksCommand::Complete {
            id,
            score,
            feedback,
        } => {
            if score.is_some_and(|s| !(1..=10).contains(&s)) {
                return Err(CliError::usage("--score is 1 to 10"));
            }
            change(&home, id, output, "completed", |q| {
                q.complete(id, *score, feedback.clone())
            })?
        }
        TasksCommand::Fail { id, error } => {
            change(&home, id, output, "failed", |q| q.fail(id, error))?
        }
        TasksCommand::Retry { id, more_attempts } => {
            change(&home, id, output, "back to pending", |q| {
                q.retry(id, *more_attempts)
            })?
        }
        TasksCommand::Block { id, reason } => {
            change(&home, id, output, "blocked", |q| q.block(id, reason))?
        }
    }
    Ok(Outcome::Success)
}

fn change(
    home: &Path,
    id: &str,
    output: &Output,
    what: &str,
    apply: impl FnOnce(&mut TaskQueue) -> pxos_agent::Result<()>,
) -> Result<()> {
    TaskQueue::update(home, apply)?;
    let queue = TaskQueue::load(home)?;
    let task = queue.get(id)?;
    output.emit(task_json(task), || {
        format!("{id} {what}: {}", task_line(task))
    })?;
    Ok(())
}

fn event_text(event: &Event) -> String {
    match event {
        Event::TaskStarted {
            task,
            title,
            action,
            attempt,
        } => {
            format!("{task}: {} ({action}, attempt {attempt})", esc(title))
        }
        Event::Generated {
            task,
            round,
            artefact,
            tokens,
        } => {
            format!("{task} round {round}: generated {artefact} ({tokens} tokens)")
        }
        Event::Reviewed {
            task,
            round,
            score,
            feedback,
        } => format!(
            "{task} round {round}: review score {}{}",
            score.map_or("none".into(), |s| s.to_string()),
            if feedback.is_empty() {
                String::new()
            } else {
                format!(" - {}", esc(feedback))
            }
        ),
        Event::Checked {
            task,
            round,
            passed,
            summary,
        } => format!(
            "{task} round {round}: checks {}: {}",
            if *passed { "pass" } else { "FAIL" },
            esc(summary)
        ),
        Event::TaskEnded {
            task,
            accepted,
            rounds,
            session,
            artefact,
        } => format!(
            "{task}: {} after {rounds} round(s); {}session {session}",
            if *accepted { "ACCEPTED" } else { "FAILED" },
            artefact.as_ref().map_or(String::new(), |a| format!(
                "{} {a}; ",
                if *accepted {
                    "artefact"
                } else {
                    "best attempt kept for a person:"
                }
            ))
        ),
    }
}

pub fn coach(command: &CoachCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let mut show = |event: &Event| {
        let value = serde_json::to_value(event).expect("events serialize");
        let _ = output.emit(json!({"type": "coach", "event": value}), || {
            event_text(event)
        });
    };
    match command {
        CoachCommand::Run {
            phase,
            max_tasks,
            max_rounds,
            max_tokens,
            provider,
        } => {
            let mut gate = open_gate(&home, provider.provider.as_deref())?;
            let options = CoachOptions {
                phase: phase.clone(),
                max_tasks: *max_tasks,
                max_rounds: *max_rounds,
                max_tokens: *max_tokens,
            };
            let reports = coach::run(&home, &mut gate, &options, &mut show)?;
            let accepted = reports.iter().filter(|r| r.accepted).count();
            output.emit(
                json!({"type": "coach-run", "tasks": reports.len(), "accepted": accepted,
                       "failed": reports.len() - accepted, "provider": gate.provider_name(),
                       "reports": reports}),
                || {
                    if reports.is_empty() {
                        "no task was ready (`pxos tasks list`)".into()
                    } else {
                        format!(
                            "coached {} task(s) with {}: {accepted} accepted, {} failed",
                            reports.len(),
                            gate.provider_name(),
                            reports.len() - accepted
                        )
                    }
                },
            )?;
            if accepted < reports.len() {
                eprintln!(
                    "pxos: error: {} task(s) were not accepted; their best attempts are kept for a person (`pxos tasks list --status failed`)",
                    reports.len() - accepted
                );
                return Ok(Outcome::Negative);
            }
        }
        CoachCommand::Replay { session } => {
            let replay = coach::replay(&home, session, &mut show)?;
            output.emit(
                json!({"type": "coach-replay", "accepted": replay.report.accepted,
                       "matches_recording": replay.matches_recording,
                       "recorded_accepted": replay.recorded_accepted, "report": replay.report}),
                || {
                    format!(
                        "replayed {}: {} ({} the recording)",
                        session.display(),
                        if replay.report.accepted {
                            "accepted"
                        } else {
                            "not accepted"
                        },
                        if replay.matches_recording {
                            "as in"
                        } else {
                            "DIFFERS from"
                        }
                    )
                },
            )?;
            if !replay.report.accepted {
                eprintln!(
                    "pxos: error: the replayed task was not accepted (as {}recorded)",
                    if replay.recorded_accepted { "NOT " } else { "" }
                );
                return Ok(Outcome::Negative);
            }
        }
    }
    Ok(Outcome::Success)
}

pub fn agents(args: &AgentsArgs, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let Some(command) = &args.command else {
        return status(&home, args.offline, output);
    };
    match command {
        AgentsCommand::Add {
            name,
            url,
            model,
            api_key_env,
            timeout,
            default,
        } => {
            pxos_agent::config::check_name(name)?;
            let mut config = AgentConfig::load(&home)?;
            config.endpoints.insert(
                name.clone(),
                Endpoint {
                    url: url.clone(),
                    model: model.clone(),
                    api_key_env: api_key_env.clone(),
                    timeout_secs: *timeout,
                },
            );
            if *default {
                config.default = name.clone();
            }
            config.save(&home)?;
            output.emit(
                json!({"type": "endpoint", "name": name, "url": url, "model": model, "default": config.default == *name}),
                || format!("added endpoint {name}: {url} ({model}){}", if *default { ", the default" } else { "" }),
            )?;
        }
        AgentsCommand::Remove { name } => {
            let mut config = AgentConfig::load(&home)?;
            if config.endpoints.remove(name).is_none() {
                return Err(CliError::new(
                    pxos_pixel::ErrorKind::NotFound,
                    format!("no endpoint {name}"),
                ));
            }
            if config.default == *name {
                config.default = "builtin".into();
            }
            if config
                .architect
                .as_ref()
                .is_some_and(|a| a.provider == *name)
            {
                config.architect = None;
            }
            config.save(&home)?;
            output.emit(json!({"type": "endpoint-removed", "name": name}), || {
                format!("removed endpoint {name}")
            })?;
        }
        AgentsCommand::Default { provider } => {
            let mut config = AgentConfig::load(&home)?;
            config.default = provider.clone();
            config.save(&home)?;
            output.emit(json!({"type": "default", "provider": provider}), || {
                format!("the default provider is now {provider}")
            })?;
        }
        AgentsCommand::Policy {
            rate,
            max_prompt,
            refuse,
            clear_refusals,
        } => {
            let mut config = AgentConfig::load(&home)?;
            if let Some(rate) = rate {
                config.policy.max_requests_per_minute = *rate;
            }
            if let Some(max) = max_prompt {
                config.policy.max_prompt_bytes = *max;
            }
            if *clear_refusals {
                config.policy.refuse.clear();
            }
            for phrase in refuse {
                if !config.policy.refuse.contains(phrase) {
                    config.policy.refuse.push(phrase.clone());
                }
            }
            config.save(&home)?;
            output.emit(json!({"type": "policy", "policy": config.policy}), || {
                format!(
                    "policy: {} requests a minute, prompts up to {} bytes, refusing {:?}",
                    config.policy.max_requests_per_minute,
                    config.policy.max_prompt_bytes,
                    config.policy.refuse
                )
            })?;
        }
        AgentsCommand::Log { last } => {
            let exchanges = match last {
                Some(n) => provider::recent_exchanges(&home, *n)?,
                None => provider::read_exchanges(&home)?,
            };
            for exchange in &exchanges {
                let mut value = serde_json::to_value(exchange).expect("exchanges serialize");
                value["type"] = json!("exchange");
                output.emit(value, || {
                    let question = exchange.prompt.last().map_or("", |m| m.content.as_str());
                    format!(
                        "{} {} {} {} ({} ms): {} -> {}",
                        exchange.time,
                        exchange.purpose.name(),
                        exchange.provider,
                        exchange.model,
                        exchange.ms,
                        esc(&first_line(question)),
                        match &exchange.refused {
                            Some(why) => format!("REFUSED: {why}"),
                            None => esc(&first_line(&exchange.response)).into_owned(),
                        }
                    )
                })?;
            }
            if exchanges.is_empty() {
                output.emit(json!({"type": "exchanges", "count": 0}), || {
                    "no exchanges with a model yet".into()
                })?;
            }
        }
        AgentsCommand::Ask { text, provider } => {
            let mut gate = open_gate(&home, provider.provider.as_deref())?;
            let reply = gate.complete(&Request {
                purpose: Purpose::Ask,
                messages: vec![
                    Message::new("system", "You are the model inside pxOS. Answer briefly."),
                    Message::new("user", text.clone()),
                ],
                max_tokens: 256,
            })?;
            output.emit(
                json!({"type": "answer", "provider": gate.provider_name(), "model": reply.model, "text": reply.text,
                       "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}),
                || esc_lines(&reply.text),
            )?;
        }
    }
    Ok(Outcome::Success)
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 60 {
        format!("{}...", line.chars().take(60).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `pxos agents`: what is configured and whether it answers.
fn status(home: &Path, offline: bool, output: &Output) -> Result<Outcome> {
    let config = AgentConfig::load(home)?;
    let builtin = pxos_llm::builtin().map(|m| m.manifest.name.clone());
    output.emit(
        json!({"type": "provider", "name": "builtin", "kind": "builtin", "model": builtin.as_ref().ok(),
               "reachable": builtin.is_ok(), "default": config.default == "builtin"}),
        || {
            format!(
                "builtin        the pixel model {} (offline){}",
                builtin.as_deref().unwrap_or("(damaged)"),
                if config.default == "builtin" { "  [default]" } else { "" }
            )
        },
    )?;
    let mut unreachable = 0;
    for (name, endpoint) in &config.endpoints {
        let probe = if offline {
            None
        } else {
            Some(provider::OpenAi::new(home, name, endpoint.clone()).and_then(|p| p.models()))
        };
        let (reachable, detail) = match &probe {
            None => (None, "not contacted (--offline)".to_string()),
            Some(Ok(models)) => (
                Some(true),
                format!(
                    "reachable; serves {}",
                    if models.is_empty() {
                        "(no list)".into()
                    } else {
                        models.join(", ")
                    }
                ),
            ),
            Some(Err(err)) => {
                unreachable += 1;
                (Some(false), format!("NOT reachable: {err}"))
            }
        };
        output.emit(
            json!({"type": "provider", "name": name, "kind": "openai", "url": endpoint.url, "model": endpoint.model,
                   "reachable": reachable, "detail": detail, "default": config.default == *name}),
            || {
                format!(
                    "{name:<14} {} model {}: {detail}{}",
                    endpoint.url,
                    endpoint.model,
                    if config.default == *name { "  [default]" } else { "" }
                )
            },
        )?;
    }
    if let Some(architect) = &config.architect {
        output.emit(
            json!({"type": "architect", "provider": architect.provider}),
            || format!("architect      uses {}", architect.provider),
        )?;
    }
    let queue = TaskQueue::load(home)?;
    let progress = queue.progress(None);
    output.emit(json!({"type": "queue", "counts": progress}), || {
        format!(
            "task queue     {} tasks: {} pending, {} completed, {} failed",
            progress["total"], progress["pending"], progress["completed"], progress["failed"]
        )
    })?;
    Ok(if unreachable > 0 {
        Outcome::Negative
    } else {
        Outcome::Success
    })
}

pub fn evolve(command: &EvolveCommand, global: &Global, output: &Output) -> Result<Outcome> {
    match command {
        EvolveCommand::Template => {
            output.emit(
                json!({"type": "template", "text": pxos_agent::evolve::DEFAULT_TEMPLATE}),
                || pxos_agent::evolve::DEFAULT_TEMPLATE.trim_end().to_string(),
            )?;
            Ok(Outcome::Success)
        }
        EvolveCommand::Guardrails { reason } => {
            let home = home(global)?;
            let rails = pxos_agent::evolve::guardrails(&home, reason)?;
            show_rails(&rails, output)?;
            Ok(if rails.iter().all(|g| g.passed) {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        EvolveCommand::Propose {
            reason,
            kind,
            template,
        } => {
            let home = home(global)?;
            let text = template
                .as_ref()
                .map(|path| {
                    pxos_pixel::text::read_input(path)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                })
                .transpose()?;
            if let (Some(text), Some(path)) = (&text, template) {
                pxos_agent::evolve::WorldTemplate::parse(text).map_err(|err| {
                    CliError::new(err.kind(), format!("{}: {err}", path.display()))
                })?;
            }
            let (rails, id) =
                pxos_agent::evolve::propose(&home, Action::parse(kind)?, reason, text.as_deref())?;
            show_rails(&rails, output)?;
            match id {
                Some(id) => {
                    output.emit(json!({"type": "proposed", "task": id}), || {
                        format!("queued {id}; `pxos coach run` takes it, and a person promotes what it builds")
                    })?;
                    Ok(Outcome::Success)
                }
                None => {
                    eprintln!(
                        "pxos: error: the proposal was not queued: a guardrail does not hold"
                    );
                    Ok(Outcome::Negative)
                }
            }
        }
    }
}

fn show_rails(rails: &[pxos_agent::evolve::Guardrail], output: &Output) -> Result<()> {
    for rail in rails {
        output.emit(
            json!({"type": "guardrail", "name": rail.name, "passed": rail.passed, "detail": rail.detail}),
            || {
                format!(
                    "{} {}: {}",
                    if rail.passed { output.good("ok  ") } else { output.bad("FAIL") },
                    rail.name,
                    rail.detail
                )
            },
        )?;
    }
    Ok(())
}

pub fn architect(command: &ArchitectCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    match command {
        ArchitectCommand::Setup {
            provider,
            system_prompt,
        } => {
            let mut config = AgentConfig::load(&home)?;
            if provider != "builtin" && !config.endpoints.contains_key(provider) {
                return Err(CliError::usage(format!(
                    "no endpoint {provider}: add it first with `pxos agents add {provider} --url URL --model MODEL`"
                )));
            }
            config.architect = Some(Architect {
                provider: provider.clone(),
                system_prompt: system_prompt
                    .clone()
                    .unwrap_or_else(|| ARCHITECT_PROMPT.into()),
            });
            config.save(&home)?;
            output.emit(json!({"type": "architect", "provider": provider}), || {
                format!("the architect uses {provider}; `pxos architect test` asks it a question")
            })?;
            Ok(Outcome::Success)
        }
        ArchitectCommand::Test { question } => {
            let config = AgentConfig::load(&home)?;
            let Some(architect) = &config.architect else {
                return Err(CliError::usage("no architect yet: `pxos architect setup`"));
            };
            let mut gate = open_gate(&home, Some(&architect.provider))?;
            let started = std::time::Instant::now();
            let reply = gate.complete(&Request {
                purpose: Purpose::Ask,
                messages: vec![
                    Message::new("system", architect.system_prompt.clone()),
                    Message::new("user", question.clone()),
                ],
                max_tokens: 256,
            })?;
            let seconds = started.elapsed().as_secs_f64();
            output.emit(
                json!({"type": "architect-answer", "provider": architect.provider, "model": reply.model,
                       "text": reply.text, "seconds": seconds, "completion_tokens": reply.completion_tokens}),
                || format!("{} ({} in {seconds:.2} s):\n{}", architect.provider, reply.model, esc_lines(&reply.text)),
            )?;
            Ok(Outcome::Success)
        }
    }
}

/// The map chat's text and JSON.
pub fn map_chat(
    root: &Path,
    x: i64,
    y: i64,
    text: Option<&str>,
    provider: Option<&str>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let mut map = pxos_map::InfiniteMap::open(root, pxos_map::DEFAULT_TILE_SIZE)?;
    let (tile, chat) = match text {
        None => pxos_agent::chat::history(&mut map, x, y)?,
        Some(text) => {
            let home = home(global)?;
            let mut gate = open_gate(&home, provider)?;
            let (_, chat) = pxos_agent::chat::say(&mut map, &mut gate, x, y, text)?;
            (pxos_map::tile_of(x, y, map.tile_size()).0, chat)
        }
    };
    let turns: Vec<BTreeMap<&str, &str>> = chat
        .turns
        .iter()
        .map(|m| BTreeMap::from([("role", m.role.as_str()), ("content", m.content.as_str())]))
        .collect();
    output.emit(
        json!({"type": "map-chat", "tile": [tile.0, tile.1], "topic": chat.topic, "turns": turns}),
        || {
            let shown: &[pxos_agent::provider::Message] = match text {
                Some(_) => &chat.turns[chat.turns.len().saturating_sub(1)..],
                None => &chat.turns,
            };
            if shown.is_empty() {
                return format!("tile ({}, {}) has no conversation yet", tile.0, tile.1);
            }
            shown
                .iter()
                .map(|m| format!("{}: {}", m.role, esc_lines(&m.content)))
                .collect::<Vec<_>>()
                .join("\n")
        },
    )?;
    Ok(Outcome::Success)
}
