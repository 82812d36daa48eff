//! Evolution: the guardrails a proposal must pass, `pxos evolve propose`,
//! and the handler the coaching loop calls for evolution tasks. A world
//! rebuild builds a world from a world template in the task's workspace,
//! really runs every module's tests through the hypervisor, checks the
//! template's constraints, packs and registers the world as an experimental
//! cartridge with the model as its creator, runs Genesis on it, boots it,
//! and writes `GENESIS_COMPLIANCE.md`. Migration and architecture-change
//! tasks produce a plan, then an experimental cartridge carrying it the same
//! way. Nothing is promoted: a person does that.

use std::collections::BTreeMap;
use std::path::Path;

use pxos_boot::boot::HomeStores;
use pxos_cart::{CreatorKind, Status as CartStatus};
use serde::{Deserialize, Serialize};

use crate::check::{CheckReport, check_program};
use crate::coach::{CoachOptions, Event, Round, SessionRecord, TaskReport, coach_task};
use crate::error::{Error, Result};
use crate::provider::Gate;
use crate::queue::{Action, Expect, NewTask, Status, Task, TaskQueue, evolution_task};
use crate::workspace::Workspace;
use crate::world::{WorldIdentity, build_world, register_world};

pub const TEMPLATE_FORMAT: &str = "pxos-world-template";
/// The built-in world template (`pxos evolve template` prints it).
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/world.yaml");
/// Experimental cartridges made by models that may wait for a person at once.
pub const MAX_EXPERIMENTS: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleTest {
    #[serde(default)]
    pub args: Vec<String>,
    pub output: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// Where it goes in the world (`programs/NAME.pxasm`).
    pub path: String,
    pub description: String,
    /// Used as written; when absent, the model writes it.
    #[serde(default)]
    pub source: Option<String>,
    pub tests: Vec<ModuleTest>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    pub tests_must_pass: bool,
    pub genesis_must_pass: bool,
    pub must_boot: bool,
    pub max_program_words: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldTemplate {
    pub format: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub modules: Vec<Module>,
    pub constraints: Constraints,
    #[serde(default)]
    pub genesis_mapping: BTreeMap<String, String>,
}

impl WorldTemplate {
    pub fn parse(text: &str) -> Result<WorldTemplate> {
        let template: WorldTemplate = serde_norway::from_str(text)
            .map_err(|err| Error::bad_input(format!("not a world template: {err}")))?;
        if template.format != TEMPLATE_FORMAT {
            return Err(Error::bad_input(format!(
                "format {:?}, not {TEMPLATE_FORMAT}",
                template.format
            )));
        }
        pxos_cart::cartridge::check_name(&template.name)?;
        pxos_cart::cartridge::check_semver(&template.version)?;
        if template.modules.is_empty() || template.modules.len() > 64 {
            return Err(Error::bad_input("a template has 1 to 64 modules"));
        }
        for module in &template.modules {
            crate::workspace::check_artefact_name(&module.path)?;
            if !module.path.ends_with(".pxasm") {
                return Err(Error::bad_input(format!(
                    "module {} is not a .pxasm source",
                    module.path
                )));
            }
            if module.tests.is_empty() {
                return Err(Error::bad_input(format!(
                    "module {} has no tests (a module is checked by running them)",
                    module.path
                )));
            }
        }
        Ok(template)
    }
}

/// One guardrail and whether it holds.
#[derive(Clone, Debug, Serialize)]
pub struct Guardrail {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The guardrails a proposal must pass, each a threshold that can be met:
/// the current world passes Genesis (its tests), fewer than
/// [`MAX_EXPERIMENTS`] model-made experiments wait for a person, no
/// evolution task is open, and the reason carries a measurement (a number).
pub fn guardrails(home: &Path, reason: &str) -> Result<Vec<Guardrail>> {
    let stores = HomeStores::open(home)?;
    let (current, _) = pxos_boot::world::ensure_current(home, &stores.registry)?;
    pxos_boot::world::ensure_genesis(home, &stores.registry, &current)?;
    let genesis = stores.registry.genesis_run(&current.sha256)?;
    let records = stores.registry.list()?;
    let experiments = records
        .iter()
        .filter(|r| r.status == CartStatus::Experimental && r.creator.kind == CreatorKind::Llm)
        .count();
    let queue = TaskQueue::load(home)?;
    let open: Vec<&Task> = queue
        .tasks
        .iter()
        .filter(|t| t.phase.as_deref() == Some("evolution"))
        .filter(|t| {
            matches!(
                t.status,
                Status::Pending | Status::InProgress | Status::Review
            )
        })
        .collect();
    let measured = reason.chars().any(|c| c.is_ascii_digit()) && reason.trim().len() >= 12;
    Ok(vec![
        Guardrail {
            name: "tests-pass",
            passed: genesis.as_ref().is_some_and(|g| g.passed),
            detail: match &genesis {
                Some(g) if g.passed => format!("{} passes Genesis", current.id),
                Some(g) => format!("{} fails Genesis: {}", current.id, g.failed.join("; ")),
                None => format!("{} has no Genesis run on record", current.id),
            },
        },
        Guardrail {
            name: "experiment-limit",
            passed: experiments < MAX_EXPERIMENTS,
            detail: format!(
                "{experiments} model-made experimental cartridge(s) wait for a person (limit {MAX_EXPERIMENTS}; promote or leave them, `pxos cart list`)"
            ),
        },
        Guardrail {
            name: "no-pending-experiment",
            passed: open.is_empty(),
            detail: if open.is_empty() {
                "no evolution task is open".into()
            } else {
                format!(
                    "evolution task(s) {} still open",
                    open.iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        },
        Guardrail {
            name: "measured-reason",
            passed: measured,
            detail: if measured {
                "the reason carries a measurement".into()
            } else {
                "the reason must say what was measured, with its number (\"boot takes 120 ms; the target is 50 ms\")".into()
            },
        },
    ])
}

/// `pxos evolve propose`: checks the guardrails and, when they all hold,
/// queues the evolution task (a world rebuild carries its template in its
/// workspace). Returns the guardrails and the new task's id.
pub fn propose(
    home: &Path,
    action: Action,
    reason: &str,
    template: Option<&str>,
) -> Result<(Vec<Guardrail>, Option<String>)> {
    if !matches!(
        action,
        Action::WorldRebuild | Action::Migration | Action::ArchitectureChange
    ) {
        return Err(Error::usage(
            "an evolution proposal is a world-rebuild, a migration or an architecture-change",
        ));
    }
    let template_text = template.unwrap_or(DEFAULT_TEMPLATE);
    let parsed = WorldTemplate::parse(template_text)?;
    let rails = guardrails(home, reason)?;
    if rails.iter().any(|g| !g.passed) {
        return Ok((rails, None));
    }
    let title = match action {
        Action::WorldRebuild => format!("Rebuild {} {}", parsed.name, parsed.version),
        Action::Migration => format!("Migration: {}", short(reason)),
        _ => format!("Architecture change: {}", short(reason)),
    };
    let mut new: NewTask = evolution_task(action, &title, reason);
    new.metadata.insert(
        "version".into(),
        serde_json::Value::String(parsed.version.clone()),
    );
    let id = TaskQueue::update(home, |queue| queue.add(new))?;
    let workspace = Workspace::open(home, &id)?;
    workspace.write("template.yaml", template_text.as_bytes())?;
    Ok((rails, Some(id)))
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(50).collect();
    if text.chars().count() > 50 {
        s.push_str("...");
    }
    s
}

/// The evolution handler: what `pxos coach run` does with an evolution task.
pub fn handle(
    home: &Path,
    gate: &mut Gate,
    task: &Task,
    options: &CoachOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(TaskReport, SessionRecord)> {
    if task.metadata.contains_key("workspace") {
        return Err(Error::refused(format!(
            "task {} names its own workspace in its metadata; pxOS chooses workspaces (agents/workspace/{})",
            task.id, task.id
        )));
    }
    let workspace = Workspace::open(home, &task.id)?;
    let template_path = workspace.path("template.yaml")?;
    let template_text = match std::fs::read_to_string(&template_path) {
        Ok(text) => text,
        Err(_) => DEFAULT_TEMPLATE.to_string(),
    };
    let template = WorldTemplate::parse(&template_text)?;
    let first_exchange = gate.exchanges.len();
    let mut rounds: Vec<Round> = Vec::new();
    let mut changes: Vec<(String, String)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let started = std::time::Instant::now();
    let mut model_seconds = 0.0;
    let mut tokens = 0;

    // A plan first, for migrations and architecture changes.
    if task.action != Action::WorldRebuild {
        let (plan, _) = coach_task(home, gate, task, &workspace, options, on_event)?;
        model_seconds += plan.model_seconds;
        tokens += plan.tokens;
        match &plan.artefact {
            Some(artefact) if plan.accepted => {
                let text = std::fs::read_to_string(home.join(artefact))
                    .map_err(|err| Error::io(err, &home.join(artefact)))?;
                changes.push(("docs/PLAN.md".into(), text));
            }
            _ => failures.push("the plan was not accepted".into()),
        }
        rounds.extend(plan.rounds);
    }

    // Modules: as written, or written by the model against their tests.
    for module in &template.modules {
        let source = match &module.source {
            Some(source) => source.clone(),
            None => {
                let mut sub = task.clone();
                sub.action = Action::Program;
                sub.title = format!("{} ({})", module.description, module.path);
                sub.expect = Expect {
                    args: module.tests[0].args.clone(),
                    output: module.tests[0].output.clone(),
                };
                let (report, _) = coach_task(home, gate, &sub, &workspace, options, on_event)?;
                model_seconds += report.model_seconds;
                tokens += report.tokens;
                let accepted = report.accepted;
                let artefact = report.artefact.clone();
                rounds.extend(report.rounds);
                match artefact {
                    Some(artefact) if accepted => std::fs::read_to_string(home.join(&artefact))
                        .map_err(|err| Error::io(err, &home.join(&artefact)))?,
                    _ => {
                        failures.push(format!("module {} was not written", module.path));
                        continue;
                    }
                }
            }
        };
        changes.push((module.path.clone(), source));
    }

    let model = crate::coach::model_name(gate, &gate.exchanges[first_exchange..]);
    let version = task
        .metadata
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or(&template.version)
        .to_string();
    let identity = WorldIdentity {
        name: template.name.clone(),
        version,
        model,
        notes: template.description.clone(),
        reason: format!("task {}: {}", task.id, task.title),
    };
    let check_started = std::time::Instant::now();
    let mut checks = CheckReport {
        passed: true,
        ..CheckReport::default()
    };
    let mut cartridge = None;
    if failures.is_empty() {
        let parent = crate::world::current_id(home)?;
        let dir = workspace.fresh_dir("world")?;
        let problems = build_world(&dir, &changes, &identity, Some(&parent))?;
        failures.extend(problems);
        // Every module test, through the hypervisor.
        for module in &template.modules {
            let source = changes
                .iter()
                .find(|(p, _)| p == &module.path)
                .map(|(_, s)| s.as_str())
                .unwrap_or("");
            for (n, test) in module.tests.iter().enumerate() {
                let report = check_program(
                    home,
                    &format!("{}/{}#{}", task.id, module.path, n + 1),
                    source,
                    &Expect {
                        args: test.args.clone(),
                        output: test.output.clone(),
                    },
                );
                checks.details.push(format!(
                    "{} test {}: {}",
                    module.path,
                    n + 1,
                    report.summary
                ));
                checks.executions.extend(report.executions);
                if !report.passed && template.constraints.tests_must_pass {
                    failures.push(format!(
                        "{} test {} failed: {}",
                        module.path,
                        n + 1,
                        report.summary
                    ));
                }
            }
            if let Ok(image) = crate::check::assemble(&module.path, source)
                && image.words.len() > template.constraints.max_program_words
            {
                failures.push(format!(
                    "{} is {} words; the template allows {}",
                    module.path,
                    image.words.len(),
                    template.constraints.max_program_words
                ));
            }
        }
        if failures.is_empty() {
            let out = workspace.path(&format!("{}-{}.pxa", identity.name, identity.version))?;
            let registered = register_world(home, &dir, &out, &identity)?;
            checks.details.push(registered.genesis.summary.clone());
            if !registered.genesis.passed && template.constraints.genesis_must_pass {
                failures.push(registered.genesis.summary.clone());
            }
            let mut booted = None;
            if template.constraints.must_boot {
                let boot = boot_check(home, &workspace, &registered.record.id)?;
                checks.details.push(boot.summary.clone());
                if !boot.passed {
                    failures.push(boot.summary.clone());
                }
                booted = Some(boot);
            }
            write_compliance(
                &workspace,
                &template,
                &registered,
                booted.as_ref(),
                &checks,
                &failures,
            )?;
            cartridge = Some(registered.record.id.clone());
        }
    }
    checks.passed = failures.is_empty();
    checks.summary = if checks.passed {
        format!(
            "built, tested, registered and booted {} (experimental; a person promotes it)",
            cartridge.as_deref().unwrap_or("?")
        )
    } else {
        format!("the rebuild failed: {}", failures.join("; "))
    };
    let check_seconds = check_started.elapsed().as_secs_f64();
    on_event(&Event::Checked {
        task: task.id.clone(),
        round: rounds.len() as u32 + 1,
        passed: checks.passed,
        summary: checks.summary.clone(),
    });
    let summary_path = workspace.write(
        "REBUILD.json",
        serde_json::to_string_pretty(&checks)
            .expect("json")
            .as_bytes(),
    )?;
    rounds.push(Round {
        number: rounds.len() as u32 + 1,
        artefact: summary_path
            .strip_prefix(home)
            .unwrap_or(&summary_path)
            .to_string_lossy()
            .into_owned(),
        sha256: pxos_pixel::Hash256::of(&std::fs::read(&summary_path).unwrap_or_default()).to_hex(),
        score: None,
        feedback: String::new(),
        checks: checks.clone(),
        accepted: checks.passed,
    });
    let _ = started;
    let accepted = checks.passed;
    let artefact = rounds.last().map(|r| r.artefact.clone());
    let report = TaskReport {
        task: task.id.clone(),
        accepted,
        rounds,
        artefact,
        session: String::new(),
        cartridge,
        model_seconds,
        check_seconds,
        tokens,
    };
    Ok(crate::coach::conclude(task, gate, first_exchange, report))
}

/// Boots cartridge `id` (not current: its stages run sandboxed), writing the
/// boot log and screen into the workspace.
fn boot_check(home: &Path, workspace: &Workspace, id: &str) -> Result<CheckReport> {
    let request = pxos_boot::boot::BootRequest {
        dry_run: false,
        sequence_file: None,
        log_file: Some(workspace.path("boot.log")?),
        screen_file: Some(workspace.path("boot-screen.png")?),
        cartridge: Some(id.to_string()),
        host: None,
    };
    Ok(match pxos_boot::boot::boot_home(home, &request) {
        Ok(boot) if boot.report.ok() => CheckReport {
            passed: true,
            summary: format!("{id} boots ({} stages)", boot.report.stages.len()),
            ..CheckReport::default()
        },
        Ok(boot) => CheckReport::failed(format!(
            "{id} does not boot: halted at {}",
            boot.report.halted_at.as_deref().unwrap_or("?")
        )),
        Err(err) => CheckReport::failed(format!("{id} does not boot: {err}")),
    })
}

fn write_compliance(
    workspace: &Workspace,
    template: &WorldTemplate,
    registered: &crate::world::Registered,
    boot: Option<&CheckReport>,
    checks: &CheckReport,
    failures: &[String],
) -> Result<()> {
    let mut text = format!(
        "# Genesis compliance: {}\n\nCartridge `{}` (sha256 {}), built from world template `{}` {}.\nStatus: experimental. Promoting it needs a person (`pxos cart promote {}`).\n\n## Genesis check (run on the registered cartridge)\n\n{}\n",
        registered.record.id,
        registered.record.id,
        registered.record.sha256,
        template.name,
        template.version,
        registered.record.id,
        registered.genesis.summary
    );
    if !registered.genesis.details.is_empty() {
        for failed in &registered.genesis.details {
            text.push_str(&format!("- FAILED: {failed}\n"));
        }
    }
    text.push_str(&format!(
        "\nThe full per-principle report: `{}`.\n\n## Module tests (run through the hypervisor)\n\n",
        registered.compliance.display()
    ));
    for line in &checks.details {
        text.push_str(&format!("- {line}\n"));
    }
    if let Some(boot) = boot {
        text.push_str(&format!("\n## Boot\n\n{}\n", boot.summary));
    }
    text.push_str("\n## How the template maps onto Genesis\n\n| principle | how this world meets it |\n|---|---|\n");
    for (principle, how) in &template.genesis_mapping {
        text.push_str(&format!("| {principle} | {how} |\n"));
    }
    text.push_str(&format!(
        "\n## Result\n\n{}\n",
        if failures.is_empty() {
            "Every check passed.".to_string()
        } else {
            format!("Failed: {}", failures.join("; "))
        }
    ));
    workspace.write("GENESIS_COMPLIANCE.md", text.as_bytes())?;
    Ok(())
}
