//! The coaching loop against recorded answers (the replay provider): the
//! checks, not the review, decide; feedback goes round; failures keep their
//! best attempt and are never saved as accepted.

use pxos_agent::coach::{self, CoachOptions};
use pxos_agent::config::Policy;
use pxos_agent::provider::{Exchange, Gate, Purpose, Replay};
use pxos_agent::queue::{Action, Expect, NewTask, Status, TaskQueue};
use pxos_test_support::TempDir;

const GOOD: &str = "```pxasm\nSTART:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"hi\"\n```";
const WRONG_OUTPUT: &str = "```pxasm\nSTART:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"bye\"\n```";
const NOT_CODE: &str = "I would write a program that prints hi.";

fn answer(purpose: Purpose, text: &str) -> Exchange {
    Exchange {
        time: String::new(),
        purpose,
        provider: "test".into(),
        model: "recorded-model".into(),
        prompt: Vec::new(),
        response: text.into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        ms: 0,
        refused: None,
    }
}

fn program_task(home: &std::path::Path) -> String {
    let mut new = NewTask::new("print hi", Action::Program);
    new.expect = Expect {
        args: Vec::new(),
        output: vec!["hi".into()],
    };
    new.path = Some("hi.pxasm".into());
    TaskQueue::update(home, |q| q.add(new)).unwrap()
}

fn gate(home: &std::path::Path, answers: Vec<Exchange>) -> Gate {
    Gate::new(
        Box::new(Replay::new(&home.join("recording.json"), answers)),
        Policy::default(),
        Some(home),
    )
}

#[test]
fn checks_decide_and_feedback_goes_round() {
    let dir = TempDir::new("coach-rounds");
    let home = dir.path();
    let id = program_task(home);
    let mut gate = gate(
        home,
        vec![
            answer(Purpose::Generate, NOT_CODE),
            answer(Purpose::Review, "SCORE: 9\nFEEDBACK: perfect"),
            answer(Purpose::Generate, GOOD),
            answer(Purpose::Review, "SCORE: 6\nFEEDBACK: add a comment"),
            answer(Purpose::Generate, GOOD),
            answer(Purpose::Review, "SCORE: 9\nFEEDBACK: good"),
        ],
    );
    let mut events = Vec::new();
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |e| {
        events.push(serde_json::to_value(e).unwrap())
    })
    .unwrap();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert!(report.accepted);
    assert_eq!(report.rounds.len(), 3);
    assert!(!report.rounds[0].checks.passed, "prose does not assemble");
    assert!(
        !report.rounds[0].accepted,
        "a high score does not pass failing checks"
    );
    assert!(
        report.rounds[1].checks.passed && !report.rounds[1].accepted,
        "score 6 < 8"
    );
    // Round 2's prompt carried round 1's check failure back to the model.
    let second = &gate.exchanges[2];
    assert!(
        second
            .prompt
            .iter()
            .any(|m| m.content.contains("does not assemble")),
        "{:?}",
        second.prompt
    );
    let task = TaskQueue::load(home).unwrap().get(&id).unwrap().clone();
    assert_eq!(task.status, Status::Completed);
    assert_eq!(task.review_score, Some(9));
    let outcome = task.outcome.unwrap();
    assert!(outcome.checks_passed);
    assert_eq!(
        std::fs::read_to_string(home.join(&outcome.artefact)).unwrap(),
        pxos_agent::check::extract_code(GOOD)
    );
    assert!(
        outcome.artefact.ends_with("agents/workspace/t1/hi.pxasm"),
        "{}",
        outcome.artefact
    );
    assert!(events.iter().any(|e| e["event"] == "task-ended"));
    // The evolution log holds the acceptance, by the model.
    let entries = pxos_cart::EvolutionLog::open(&home.join("log"))
        .unwrap()
        .entries()
        .unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.actor.kind, pxos_cart::ActorKind::Llm);
    assert_eq!(last.actor.name, "recorded-model");
    assert_eq!(last.action.name(), "task-accepted");
}

#[test]
fn passing_review_with_failing_checks_is_never_accepted() {
    let dir = TempDir::new("coach-fail");
    let home = dir.path();
    let id = program_task(home);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(answer(Purpose::Generate, WRONG_OUTPUT));
        answers.push(answer(Purpose::Review, "SCORE: 10\nFEEDBACK: flawless"));
    }
    let mut gate = gate(home, answers);
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    let report = &reports[0];
    assert!(!report.accepted);
    assert_eq!(report.rounds.len(), 3, "three rounds, then it stops");
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.checks.summary.contains("printed"))
    );
    let task = TaskQueue::load(home).unwrap().get(&id).unwrap().clone();
    assert_eq!(task.status, Status::Failed);
    assert!(task.error.as_deref().unwrap().contains("not accepted"));
    let outcome = task.outcome.unwrap();
    assert!(!outcome.checks_passed);
    assert!(
        outcome.artefact.ends_with("best.pxasm"),
        "kept for a person: {}",
        outcome.artefact
    );
    assert!(
        !home.join("agents/workspace/t1/hi.pxasm").exists(),
        "a failed artefact is never saved under its accepted name"
    );
    let entries = pxos_cart::EvolutionLog::open(&home.join("log"))
        .unwrap()
        .entries()
        .unwrap();
    assert_eq!(entries.last().unwrap().action.name(), "task-failed");
    // The next run finds nothing: the failed task is not picked again.
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    assert!(reports.is_empty());
}

#[test]
fn a_recorded_session_replays_to_the_same_log_entries() {
    let dir = TempDir::new("coach-replay");
    let home = dir.path();
    program_task(home);
    let mut gate = gate(
        home,
        vec![
            answer(Purpose::Generate, GOOD),
            answer(Purpose::Review, "SCORE: 8\nFEEDBACK: fine"),
        ],
    );
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    let session = home.join(&reports[0].session);
    let mut logged = Vec::new();
    for _ in 0..2 {
        let replay = coach::replay(home, &session, &mut |_| {}).unwrap();
        assert!(replay.report.accepted);
        assert!(replay.matches_recording);
        let entries = pxos_cart::EvolutionLog::open(&home.join("log"))
            .unwrap()
            .entries()
            .unwrap();
        let last = entries.last().unwrap().clone();
        logged.push((last.actor, last.action, last.reason));
    }
    assert_eq!(logged[0], logged[1], "every replay logs the same entry");
}

#[test]
fn a_task_left_in_progress_by_a_dead_coach_is_failed_for_a_person() {
    let dir = TempDir::new("coach-recover");
    let home = dir.path();
    let id = program_task(home);
    TaskQueue::update(home, |q| {
        q.start(&id)?;
        q.tasks[0]
            .metadata
            .insert("runner".into(), serde_json::Value::from(u32::MAX - 7));
        Ok(())
    })
    .unwrap();
    let recovery = coach::recover(home).unwrap();
    assert_eq!(recovery.interrupted, vec![id.clone()]);
    let task = TaskQueue::load(home).unwrap().get(&id).unwrap().clone();
    assert_eq!(task.status, Status::Failed);
    assert!(task.error.unwrap().contains("interrupted"));
    // A task held by a live process (this one) is left alone.
    TaskQueue::update(home, |q| {
        q.retry(&id, 0)?;
        q.start(&id)?;
        q.tasks[0]
            .metadata
            .insert("runner".into(), serde_json::Value::from(std::process::id()));
        Ok(())
    })
    .unwrap();
    assert!(coach::recover(home).unwrap().interrupted.is_empty());
}

#[test]
fn a_cartridge_change_is_built_registered_and_genesis_checked() {
    let dir = TempDir::new("coach-cartridge");
    let home = dir.path();
    let mut new = NewTask::new("add a greeting program", Action::Cartridge);
    new.metadata.insert(
        "cartridge".into(),
        serde_json::Value::String("greeter".into()),
    );
    let id = TaskQueue::update(home, |q| q.add(new)).unwrap();
    let change = "Here it is.\n```pxasm programs/greet.pxasm\nSTART:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"hello\"\n```\n";
    let escape = "```pxasm ../../outside.pxasm\nHALT\n```\n";
    let mut gate = gate(
        home,
        vec![
            answer(Purpose::Generate, escape),
            answer(Purpose::Review, "SCORE: 9"),
            answer(Purpose::Generate, change),
            answer(Purpose::Review, "SCORE: 9\nFEEDBACK: good"),
        ],
    );
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    let report = &reports[0];
    assert!(!report.rounds[0].checks.passed);
    assert!(
        report.rounds[0].checks.summary.contains("refused"),
        "{:?}",
        report.rounds[0].checks
    );
    assert!(!home.join("outside.pxasm").exists() && !home.join("agents/outside.pxasm").exists());
    assert!(report.accepted, "{:?}", report.rounds[1].checks);
    assert_eq!(
        TaskQueue::load(home).unwrap().get(&id).unwrap().status,
        Status::Completed
    );
    let stores = pxos_boot::boot::HomeStores::open(home).unwrap();
    let record = stores.registry.find("greeter").unwrap();
    assert_eq!(record.status, pxos_cart::Status::Experimental);
    assert!(
        stores
            .registry
            .genesis_run(&record.sha256)
            .unwrap()
            .unwrap()
            .passed
    );
    assert_eq!(record.parent.as_deref(), Some("default@1.0.0"));
    assert_eq!(
        record.creator.name, "recorded-model",
        "the model that wrote it is its creator"
    );
}

#[test]
fn the_recent_exchanges_come_from_the_end_of_a_long_log() {
    let dir = TempDir::new("coach-recent");
    let home = dir.path();
    let mut answers = Vec::new();
    for n in 0..600 {
        answers.push(answer(
            Purpose::Ask,
            &format!("answer {n} {}", "x".repeat(200)),
        ));
    }
    let mut gate = Gate::new(
        Box::new(Replay::new(&home.join("recording.json"), answers)),
        Policy {
            max_requests_per_minute: 0,
            ..Policy::default()
        },
        Some(home),
    );
    for n in 0..600 {
        gate.complete(&pxos_agent::provider::Request {
            purpose: Purpose::Ask,
            messages: vec![pxos_agent::provider::Message::new("user", format!("q{n}"))],
            max_tokens: 8,
        })
        .unwrap();
    }
    let all = pxos_agent::provider::read_exchanges(home).unwrap();
    assert_eq!(all.len(), 600);
    for n in [1, 20, 599, 600, 1000] {
        let recent = pxos_agent::provider::recent_exchanges(home, n).unwrap();
        assert_eq!(recent.len(), n.min(600), "{n}");
        assert_eq!(recent[..], all[600 - n.min(600)..], "{n}");
    }
}
