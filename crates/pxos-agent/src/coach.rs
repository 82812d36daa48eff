//! The coaching loop: take the next task, generate its artefact, have it
//! reviewed (`SCORE:` / `FEEDBACK:`), run the real checks for its kind, and
//! accept only at a score of 8 or more with every check passing; otherwise
//! go round again with the feedback and the check results, at most three
//! rounds, then fail the task with its best attempt kept for a person.
//! Every exchange is recorded with the task (`HOME/agents/sessions/`), so a
//! session can be audited and replayed (`pxos coach replay`).

use std::path::{Path, PathBuf};

use pxos_boot::boot::HomeStores;
use pxos_cart::{Action as LogAction, Actor, ActorKind};
use pxos_pixel::Hash256;
use serde::{Deserialize, Serialize};

use crate::check::{
    CheckReport, check_program, check_roadmap, extract_code, fenced_blocks, parse_review,
};
use crate::error::{Error, Result};
use crate::provider::{Exchange, Gate, Message, Purpose, Request};
use crate::queue::{Action, Agent, Filter, Outcome, Task, TaskQueue};
use crate::workspace::Workspace;

/// A review score the artefact must reach.
pub const ACCEPT_SCORE: u8 = 8;
/// Rounds per attempt.
pub const MAX_ROUNDS: u32 = 3;
pub const SESSIONS: &str = "agents/sessions";
pub const SESSION_FORMAT: &str = "pxos-coach-session";

#[derive(Clone, Debug)]
pub struct CoachOptions {
    pub phase: Option<String>,
    pub max_tasks: usize,
    pub max_rounds: u32,
    /// Tokens per answer.
    pub max_tokens: usize,
}

impl Default for CoachOptions {
    fn default() -> CoachOptions {
        CoachOptions {
            phase: None,
            max_tasks: 1,
            max_rounds: MAX_ROUNDS,
            max_tokens: 512,
        }
    }
}

/// One round of one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    pub number: u32,
    /// The artefact's file in the workspace (relative to the home).
    pub artefact: String,
    pub sha256: String,
    pub score: Option<u8>,
    pub feedback: String,
    pub checks: CheckReport,
    pub accepted: bool,
}

/// A recorded coaching session: the task as it was, every exchange, every
/// round. `pxos coach replay` runs it again from these answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub format: String,
    pub task: Task,
    pub provider: String,
    pub exchanges: Vec<Exchange>,
    pub rounds: Vec<Round>,
    pub accepted: bool,
}

/// Live progress, for the terminal and `pxos view`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    TaskStarted {
        task: String,
        title: String,
        action: &'static str,
        attempt: u32,
    },
    Generated {
        task: String,
        round: u32,
        artefact: String,
        tokens: u64,
    },
    Reviewed {
        task: String,
        round: u32,
        score: Option<u8>,
        feedback: String,
    },
    Checked {
        task: String,
        round: u32,
        passed: bool,
        summary: String,
    },
    TaskEnded {
        task: String,
        accepted: bool,
        rounds: u32,
        session: String,
        artefact: Option<String>,
    },
}

/// What coaching one task did.
#[derive(Clone, Debug, Serialize)]
pub struct TaskReport {
    pub task: String,
    pub accepted: bool,
    pub rounds: Vec<Round>,
    /// The accepted artefact, or the best one kept for a person.
    pub artefact: Option<String>,
    pub session: String,
    pub cartridge: Option<String>,
    /// Seconds spent in the model and in the checks.
    pub model_seconds: f64,
    pub check_seconds: f64,
    pub tokens: u64,
}

fn relative(home: &Path, path: &Path) -> String {
    path.strip_prefix(home)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The instructions for an artefact of this kind.
fn system_prompt(action: Action) -> &'static str {
    match action {
        Action::Program => concat!(
            "You write PXVM assembly for pxOS. Registers R0-R15; LI Rd, imm16; IMM32 Rd, imm32 or label; ",
            "MOV, ADD, SUB, MUL, CMP, JMP, JZ, JNZ, CALL, RET, LOAD, STORE, HALT. ",
            "SYSCALL 1 prints: R1 = address of a NUL-terminated string, R2 = 1. ",
            "Arguments arrive with R1 = argc and R2 = argv. Strings: LABEL: .string \"text\". ",
            "Example:\nSTART:\n    IMM32 R1, MSG\n    LI R2, 1\n    SYSCALL 1\n    HALT\nMSG: .string \"hello\"\n",
            "Answer with one ```pxasm code block and nothing else."
        ),
        Action::Roadmap => concat!(
            "You write pxOS VRAM roadmaps in YAML (metadata and steps of built-in kinds). ",
            "Answer with one ```yaml code block holding the whole roadmap."
        ),
        Action::Cartridge => concat!(
            "You change a pxOS world. Give each file you add or replace as a code block whose info ",
            "string is its language and its path, for example ```pxasm programs/greet.pxasm. ",
            "Paths are relative to the world; cartridge.json is not yours to write."
        ),
        Action::WorldRebuild | Action::Migration | Action::ArchitectureChange => concat!(
            "You plan a change to pxOS. Answer in Markdown: the goal, the steps, the risks, ",
            "how each Genesis principle stays satisfied, and how to roll back."
        ),
    }
}

fn task_prompt(task: &Task) -> String {
    let mut text = format!("Task {}: {}\n", task.id, task.title);
    if !task.description.is_empty() {
        text.push_str(&format!("{}\n", task.description));
    }
    if task.action == Action::Program {
        if !task.expect.args.is_empty() {
            text.push_str(&format!(
                "It is run with arguments {:?}.\n",
                task.expect.args
            ));
        }
        text.push_str(&format!(
            "When run it must print exactly these lines, in order, then HALT: {:?}\n",
            task.expect.output
        ));
    }
    text
}

/// The artefact's file name in the workspace for `round`.
fn round_name(task: &Task, round: u32) -> String {
    let ext = match task.action {
        Action::Program => "pxasm",
        Action::Roadmap => "yaml",
        Action::Cartridge => "txt",
        _ => "md",
    };
    format!("round-{round}.{ext}")
}

/// The artefact's checks.
fn run_checks(
    home: &Path,
    task: &Task,
    workspace: &Workspace,
    round: u32,
    answer: &str,
    model: &str,
) -> Result<CheckReport> {
    Ok(match task.action {
        Action::Program => check_program(
            home,
            &format!("{}/{}", task.id, round_name(task, round)),
            &extract_code(answer),
            &task.expect,
        ),
        Action::Roadmap => check_roadmap(&extract_code(answer)),
        Action::Cartridge => check_cartridge(home, task, workspace, round, answer, model)?,
        Action::WorldRebuild | Action::Migration | Action::ArchitectureChange => {
            // Plans are checked by the evolution handler, which builds their cartridge.
            CheckReport {
                passed: !answer.trim().is_empty(),
                summary: if answer.trim().is_empty() {
                    "the plan is empty".into()
                } else {
                    format!("a plan of {} lines", answer.lines().count())
                },
                ..CheckReport::default()
            }
        }
    })
}

/// A cartridge change: the default world with the answer's files, built,
/// packed, registered as experimental and Genesis-checked.
fn check_cartridge(
    home: &Path,
    task: &Task,
    workspace: &Workspace,
    round: u32,
    answer: &str,
    model: &str,
) -> Result<CheckReport> {
    let changes: Vec<(String, String)> = fenced_blocks(answer)
        .into_iter()
        .filter_map(|(info, body)| {
            let mut parts = info.split_whitespace();
            let first = parts.next()?;
            Some((parts.next().unwrap_or(first).to_string(), body))
        })
        .collect();
    if changes.is_empty() {
        return Ok(CheckReport::failed(
            "no file in the answer (each file is a code block: ```pxasm programs/NAME.pxasm)",
        ));
    }
    let dir = workspace.fresh_dir(&format!("world-{round}"))?;
    let identity = crate::world::WorldIdentity {
        name: task
            .metadata
            .get("cartridge")
            .and_then(|v| v.as_str())
            .unwrap_or("agent-world")
            .to_string(),
        version: format!("0.{}.{round}", task.created_seq),
        model: if model.is_empty() {
            "unknown model".into()
        } else {
            model.to_string()
        },
        notes: task.title.clone(),
        reason: format!("task {}: {}", task.id, task.title),
    };
    let parent = crate::world::current_id(home)?;
    let problems = crate::world::build_world(&dir, &changes, &identity, Some(&parent))?;
    if !problems.is_empty() {
        return Ok(CheckReport {
            passed: false,
            summary: format!("the world does not build: {}", problems.join("; ")),
            details: problems,
            executions: Vec::new(),
        });
    }
    let out = workspace.path(&format!("world-{round}.pxa"))?;
    let registered = crate::world::register_world(home, &dir, &out, &identity)?;
    Ok(registered.genesis)
}

/// The messages of round `round`: the task, and what the last round got wrong.
fn generate_messages(task: &Task, last: Option<(&str, &Round)>) -> Vec<Message> {
    let mut messages = vec![
        Message::new("system", system_prompt(task.action)),
        Message::new("user", task_prompt(task)),
    ];
    if let Some((answer, round)) = last {
        messages.push(Message::new("assistant", answer));
        messages.push(Message::new(
            "user",
            format!(
                "Round {} was not accepted. Review score: {}. Feedback: {}. Checks: {}{}\nFix it and answer again.",
                round.number,
                round.score.map_or("none".to_string(), |s| s.to_string()),
                if round.feedback.is_empty() { "none" } else { &round.feedback },
                round.checks.summary,
                if round.checks.details.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", round.checks.details.join("; "))
                }
            ),
        ));
    }
    messages
}

fn review_messages(task: &Task, answer: &str) -> Vec<Message> {
    vec![
        Message::new(
            "system",
            "You review work for pxOS. Reply with a line `SCORE: N` (1 to 10; 8 or more means ready) and a line `FEEDBACK: ...` naming what to fix.",
        ),
        Message::new(
            "user",
            format!("{}\nThe answer to review:\n{answer}", task_prompt(task)),
        ),
    ]
}

/// Works on `task` in `workspace` for up to `options.max_rounds` rounds.
/// Returns the rounds, the final answers and whether it was accepted.
pub fn coach_task(
    home: &Path,
    gate: &mut Gate,
    task: &Task,
    workspace: &Workspace,
    options: &CoachOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(TaskReport, SessionRecord)> {
    let mut rounds: Vec<Round> = Vec::new();
    let mut answers: Vec<String> = Vec::new();
    let mut model_seconds = 0.0;
    let mut check_seconds = 0.0;
    let mut tokens = 0;
    let first_exchange = gate.exchanges.len();
    for number in 1..=options.max_rounds.max(1) {
        let last = rounds.last().map(|r| (answers.last().unwrap().as_str(), r));
        let started = std::time::Instant::now();
        let generated = gate.complete(&Request {
            purpose: Purpose::Generate,
            messages: generate_messages(task, last),
            max_tokens: options.max_tokens,
        })?;
        let name = round_name(task, number);
        let artefact_text = match task.action {
            Action::Program | Action::Roadmap => extract_code(&generated.text),
            _ => generated.text.clone(),
        };
        let path = workspace.write(&name, artefact_text.as_bytes())?;
        on_event(&Event::Generated {
            task: task.id.clone(),
            round: number,
            artefact: relative(home, &path),
            tokens: generated.completion_tokens,
        });
        let review = gate.complete(&Request {
            purpose: Purpose::Review,
            messages: review_messages(task, &artefact_text),
            max_tokens: 128,
        })?;
        model_seconds += started.elapsed().as_secs_f64();
        tokens += generated.completion_tokens + review.completion_tokens;
        let (score, feedback) = parse_review(&review.text);
        let feedback = if score.is_none() && feedback.is_empty() {
            "the review gave no SCORE: line".to_string()
        } else {
            feedback
        };
        on_event(&Event::Reviewed {
            task: task.id.clone(),
            round: number,
            score,
            feedback: feedback.clone(),
        });
        let started = std::time::Instant::now();
        let checks = run_checks(
            home,
            task,
            workspace,
            number,
            &generated.text,
            &generated.model,
        )?;
        check_seconds += started.elapsed().as_secs_f64();
        on_event(&Event::Checked {
            task: task.id.clone(),
            round: number,
            passed: checks.passed,
            summary: checks.summary.clone(),
        });
        let accepted = checks.passed && score.is_some_and(|s| s >= ACCEPT_SCORE);
        rounds.push(Round {
            number,
            artefact: relative(home, &path),
            sha256: Hash256::of(artefact_text.as_bytes()).to_hex(),
            score,
            feedback,
            checks,
            accepted,
        });
        answers.push(generated.text);
        if accepted {
            break;
        }
    }
    let accepted = rounds.last().is_some_and(|r| r.accepted);
    // The accepted round, or the best: checks passing first, then the score.
    let best = rounds
        .iter()
        .enumerate()
        .max_by_key(|(i, r)| {
            (
                r.accepted,
                r.checks.passed,
                r.score.unwrap_or(0),
                usize::MAX - i,
            )
        })
        .map(|(i, _)| i);
    let artefact = match best {
        Some(i) => {
            let ext = rounds[i].artefact.rsplit('.').next().unwrap_or("txt");
            let name = if accepted {
                task.path
                    .clone()
                    .unwrap_or_else(|| format!("accepted.{ext}"))
            } else {
                format!("best.{ext}")
            };
            let bytes = std::fs::read(home.join(&rounds[i].artefact))
                .map_err(|err| Error::io(err, &home.join(&rounds[i].artefact)))?;
            Some(relative(home, &workspace.write(&name, &bytes)?))
        }
        None => None,
    };
    let report = TaskReport {
        task: task.id.clone(),
        accepted,
        rounds,
        artefact,
        session: String::new(),
        cartridge: None,
        model_seconds,
        check_seconds,
        tokens,
    };
    Ok(conclude(task, gate, first_exchange, report))
}

/// The session record of `report`: the task as it was and the gate's
/// exchanges since `first_exchange`.
pub(crate) fn conclude(
    task: &Task,
    gate: &Gate,
    first_exchange: usize,
    report: TaskReport,
) -> (TaskReport, SessionRecord) {
    let session = SessionRecord {
        format: SESSION_FORMAT.into(),
        task: task.clone(),
        provider: gate.provider_name(),
        exchanges: gate.exchanges[first_exchange..].to_vec(),
        rounds: report.rounds.clone(),
        accepted: report.accepted,
    };
    (report, session)
}

/// The model that answered last (the provider's name when none did).
pub(crate) fn model_name(gate: &Gate, exchanges: &[Exchange]) -> String {
    exchanges
        .iter()
        .rev()
        .find(|e| !e.model.is_empty())
        .map(|e| e.model.clone())
        .unwrap_or_else(|| gate.provider_name())
}

/// Writes a session record to `HOME/agents/sessions/<task>-attempt-<n>.json`.
pub fn save_session(home: &Path, task: &Task, session: &SessionRecord) -> Result<PathBuf> {
    let dir = home.join(SESSIONS);
    std::fs::create_dir_all(&dir).map_err(|err| Error::io(err, &dir))?;
    let path = dir.join(format!("{}-attempt-{}.json", task.id, task.attempts.max(1)));
    let text = serde_json::to_string_pretty(session).expect("sessions serialize");
    pxos_pixel::durable::write_atomic(
        &path,
        text.as_bytes(),
        pxos_pixel::durable::label::AGENT_SESSION,
    )
    .map_err(|err| Error::io(err, &path))?;
    Ok(path)
}

/// The model acting, for the evolution log.
fn model_actor(gate: &Gate, exchanges: &[Exchange]) -> Actor {
    Actor {
        kind: ActorKind::Llm,
        name: model_name(gate, exchanges),
    }
}

/// Logs the end of a task as an `llm` action.
pub fn log_task_end(
    home: &Path,
    actor: Actor,
    task: &Task,
    report: &TaskReport,
    reason: &str,
) -> Result<()> {
    let stores = HomeStores::open(home)?;
    let best = report
        .rounds
        .iter()
        .filter(|r| Some(&r.artefact) == report.artefact.as_ref() || r.accepted)
        .map(|r| r.sha256.clone())
        .next()
        .or_else(|| report.rounds.last().map(|r| r.sha256.clone()));
    let artefact = best.and_then(|hex| Hash256::parse(&hex));
    stores.log.append(
        actor,
        LogAction::Task {
            task: task.id.clone(),
            title: task.title.clone(),
            accepted: report.accepted,
            rounds: report.rounds.len() as u32,
            score: report.rounds.iter().filter_map(|r| r.score).max(),
            artefact,
        },
        reason,
    )?;
    Ok(())
}

/// What [`recover`] found after a coaching process died.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Recovery {
    /// Temporaries of dead processes removed from the agents' folders.
    pub temporaries: usize,
    /// Tasks a dead coaching process left in progress, now failed.
    pub interrupted: Vec<String>,
}

fn process_runs(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Cleans up after a coaching process that died: its temporaries in the
/// agents' folders, and the tasks it held (in progress, its process gone),
/// which fail with the reason so a person can retry them.
pub fn recover(home: &Path) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    let agents = home.join("agents");
    let mut dirs = vec![agents.clone(), agents.join("sessions")];
    for area in [crate::workspace::WORKSPACES, crate::workspace::REPLAYS] {
        if let Ok(entries) = std::fs::read_dir(home.join(area)) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(entry.path());
                }
            }
        }
    }
    for dir in dirs {
        recovery.temporaries +=
            pxos_pixel::durable::remove_stale_temporaries_beside(&dir.join("x"));
    }
    if !crate::queue::queue_path(home).exists() {
        return Ok(recovery);
    }
    let me = u64::from(std::process::id());
    recovery.interrupted = TaskQueue::update(home, |queue| {
        let stuck: Vec<(String, u64)> = queue
            .tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    crate::queue::Status::InProgress | crate::queue::Status::Review
                )
            })
            .filter_map(|t| {
                t.metadata
                    .get("runner")
                    .and_then(|v| v.as_u64())
                    .map(|pid| (t.id.clone(), pid))
            })
            .filter(|(_, pid)| *pid != me && !process_runs(*pid))
            .collect();
        for (id, pid) in &stuck {
            if queue.get(id)?.status == crate::queue::Status::InProgress {
                queue.to_review(id)?;
            }
            queue.fail(
                id,
                &format!("interrupted: the coaching process (pid {pid}) ended before the task did"),
            )?;
        }
        Ok(stuck.into_iter().map(|(id, _)| id).collect())
    })?;
    Ok(recovery)
}

/// `pxos coach run`: up to `options.max_tasks` tasks, each taken from the
/// one queue (filters applied before picking), coached, and ended in the
/// queue and the evolution log.
pub fn run(
    home: &Path,
    gate: &mut Gate,
    options: &CoachOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Vec<TaskReport>> {
    let filter = Filter {
        phase: options.phase.clone(),
        agent: Some(Agent::Llm),
        action: None,
    };
    recover(home)?;
    let mut reports = Vec::new();
    while reports.len() < options.max_tasks {
        let task = TaskQueue::update(home, |queue| {
            let Some(id) = queue.next(&filter).map(|t| t.id.clone()) else {
                return Ok(None);
            };
            queue.start(&id)?;
            let pid = serde_json::Value::from(std::process::id());
            let task = queue
                .tasks
                .iter_mut()
                .find(|t| t.id == id)
                .expect("started above");
            task.metadata.insert("runner".into(), pid);
            Ok(Some(task.clone()))
        })?;
        let Some(task) = task else { break };
        on_event(&Event::TaskStarted {
            task: task.id.clone(),
            title: task.title.clone(),
            action: task.action.name(),
            attempt: task.attempts,
        });
        let first_exchange = gate.exchanges.len();
        let outcome = match task.action {
            Action::WorldRebuild | Action::Migration | Action::ArchitectureChange => {
                crate::evolve::handle(home, gate, &task, options, on_event)
            }
            _ => Workspace::open(home, &task.id)
                .and_then(|ws| coach_task(home, gate, &task, &ws, options, on_event)),
        };
        let outcome = outcome.and_then(|(mut report, session)| {
            report.session = relative(home, &save_session(home, &task, &session)?);
            Ok(report)
        });
        let report = match outcome {
            Ok(report) => report,
            Err(err) => {
                // The task cannot go on (a refused request, an endpoint that
                // went away): it fails with the reason, and the run stops.
                TaskQueue::update(home, |queue| queue.fail(&task.id, &err.to_string()))?;
                return Err(err);
            }
        };
        let exchanges = gate.exchanges[first_exchange..].to_vec();
        let actor = model_actor(gate, &exchanges);
        let best = report
            .rounds
            .iter()
            .find(|r| r.accepted)
            .or_else(|| report.rounds.last());
        TaskQueue::update(home, |queue| {
            let score = report.rounds.iter().filter_map(|r| r.score).max();
            let feedback = best.map(|r| r.feedback.clone());
            {
                let entry = queue
                    .tasks
                    .iter_mut()
                    .find(|t| t.id == task.id)
                    .expect("started above");
                entry.review_score = score;
                entry.review_feedback = feedback.clone();
                entry.outcome = report.artefact.as_ref().map(|artefact| Outcome {
                    artefact: artefact.clone(),
                    sha256: best.map(|r| r.sha256.clone()).unwrap_or_default(),
                    rounds: report.rounds.len() as u32,
                    checks_passed: best.is_some_and(|r| r.checks.passed),
                    session: report.session.clone(),
                    cartridge: report.cartridge.clone(),
                });
            }
            queue.to_review(&task.id)?;
            if report.accepted {
                queue.complete(&task.id, score, feedback)
            } else {
                let why = best.map_or("no round ran".to_string(), |r| {
                    format!(
                        "not accepted after {} round(s): score {}, checks: {}",
                        report.rounds.len(),
                        r.score.map_or("none".into(), |s| s.to_string()),
                        r.checks.summary
                    )
                });
                queue.fail(&task.id, &why)
            }
        })?;
        let reason = format!(
            "{} {} after {} round(s) (session {})",
            if report.accepted {
                "accepted"
            } else {
                "failed"
            },
            task.id,
            report.rounds.len(),
            report.session
        );
        log_task_end(home, actor, &task, &report, &reason)?;
        on_event(&Event::TaskEnded {
            task: task.id.clone(),
            accepted: report.accepted,
            rounds: report.rounds.len() as u32,
            session: report.session.clone(),
            artefact: report.artefact.clone(),
        });
        reports.push(report);
    }
    Ok(reports)
}

/// What a replay did, against what was recorded.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub report: TaskReport,
    /// Whether it ended as recorded (accepted or not, same rounds and scores).
    pub matches_recording: bool,
    pub recorded_accepted: bool,
}

/// `pxos coach replay FILE`: runs the recorded task again from the recorded
/// answers, in a workspace of its own (`HOME/agents/replay/`), with the real
/// checks; logs the end like a live run. The queue is not touched.
pub fn replay(home: &Path, file: &Path, on_event: &mut dyn FnMut(&Event)) -> Result<ReplayReport> {
    let bytes = std::fs::read(file).map_err(|err| Error::io(err, file))?;
    let session: SessionRecord = serde_json::from_slice(&bytes).map_err(|err| {
        Error::bad_input(format!(
            "{}: not a recorded coaching session: {err}",
            file.display()
        ))
    })?;
    if session.format != SESSION_FORMAT {
        return Err(Error::bad_input(format!(
            "{}: format {:?}, not {SESSION_FORMAT}",
            file.display(),
            session.format
        )));
    }
    let provider = crate::provider::Replay::new(file, session.exchanges.clone());
    let config = crate::config::AgentConfig::load(home)?;
    let mut gate = Gate::new(Box::new(provider), config.policy, Some(home));
    let mut task = session.task.clone();
    task.attempts = task.attempts.max(1);
    let workspace = Workspace::open_replay(home, &task.id)?;
    let options = CoachOptions {
        max_rounds: session.rounds.len().max(1) as u32,
        ..CoachOptions::default()
    };
    on_event(&Event::TaskStarted {
        task: task.id.clone(),
        title: task.title.clone(),
        action: task.action.name(),
        attempt: task.attempts,
    });
    let (mut report, _) = coach_task(home, &mut gate, &task, &workspace, &options, on_event)?;
    report.session = relative(home, file);
    let actor = model_actor(&gate, &gate.exchanges);
    let reason = format!(
        "replay of {}: {} after {} round(s)",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        if report.accepted {
            "accepted"
        } else {
            "failed"
        },
        report.rounds.len()
    );
    log_task_end(home, actor, &task, &report, &reason)?;
    let same = |a: &Round, b: &Round| {
        a.accepted == b.accepted
            && a.score == b.score
            && a.checks.passed == b.checks.passed
            && a.sha256 == b.sha256
    };
    let matches_recording = report.accepted == session.accepted
        && report.rounds.len() == session.rounds.len()
        && report
            .rounds
            .iter()
            .zip(&session.rounds)
            .all(|(a, b)| same(a, b));
    on_event(&Event::TaskEnded {
        task: task.id.clone(),
        accepted: report.accepted,
        rounds: report.rounds.len() as u32,
        session: report.session.clone(),
        artefact: report.artefact.clone(),
    });
    Ok(ReplayReport {
        report,
        matches_recording,
        recorded_accepted: session.accepted,
    })
}
