//! Evolution from the library: a rebuild really runs its module tests (the
//! seed hard-coded 71/71), and a migration yields a plan and an experimental
//! cartridge carrying it.

use pxos_agent::coach::{self, CoachOptions};
use pxos_agent::config::Policy;
use pxos_agent::evolve::{self, DEFAULT_TEMPLATE};
use pxos_agent::provider::{Exchange, Gate, Purpose, Replay};
use pxos_agent::queue::{Action, Status, TaskQueue};
use pxos_boot::boot::HomeStores;
use pxos_test_support::TempDir;

fn answer(purpose: Purpose, text: &str) -> Exchange {
    Exchange {
        time: String::new(),
        purpose,
        provider: "test".into(),
        model: "planner".into(),
        prompt: Vec::new(),
        response: text.into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        ms: 0,
        refused: None,
    }
}

const REASON: &str = "boot takes 120 ms; the target is 50 ms";

#[test]
fn a_rebuild_whose_module_test_fails_is_not_registered() {
    let dir = TempDir::new("evolve-failing-test");
    let home = dir.path();
    let broken = DEFAULT_TEMPLATE.replace(
        "output: [\"hello from pxOS 1.1.0\"]",
        "output: [\"a line the program never prints\"]",
    );
    assert_ne!(broken, DEFAULT_TEMPLATE);
    let (rails, id) = evolve::propose(home, Action::WorldRebuild, REASON, Some(&broken)).unwrap();
    assert!(rails.iter().all(|g| g.passed));
    let id = id.unwrap();
    let mut gate = Gate::new(
        Box::new(Replay::new(&home.join("none"), Vec::new())),
        Policy::default(),
        Some(home),
    );
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    assert!(!reports[0].accepted);
    let summary = &reports[0].rounds.last().unwrap().checks.summary;
    assert!(
        summary.contains("programs/greet.pxasm test 1 failed"),
        "{summary}"
    );
    assert_eq!(
        TaskQueue::load(home).unwrap().get(&id).unwrap().status,
        Status::Failed
    );
    let stores = HomeStores::open(home).unwrap();
    let ids: Vec<String> = stores
        .registry
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids,
        ["default@1.0.0"],
        "nothing is registered when a test fails"
    );
    // The guardrail now sees no open evolution task, and a measured reason is enough.
    assert!(
        evolve::guardrails(home, REASON)
            .unwrap()
            .iter()
            .all(|g| g.passed)
    );
}

#[test]
fn a_migration_yields_a_plan_and_an_experimental_cartridge_carrying_it() {
    let dir = TempDir::new("evolve-migration");
    let home = dir.path();
    let (_, id) = evolve::propose(home, Action::Migration, REASON, None).unwrap();
    let id = id.unwrap();
    let task = TaskQueue::load(home).unwrap().get(&id).unwrap().clone();
    assert_eq!(task.priority, 90);
    let plan = "# Migration\n\n1. Move the policy into the kernel.\n2. Roll back with `pxos cart rollback`.\n";
    let mut gate = Gate::new(
        Box::new(Replay::new(
            &home.join("recording.json"),
            vec![
                answer(Purpose::Generate, plan),
                answer(Purpose::Review, "SCORE: 9\nFEEDBACK: clear"),
            ],
        )),
        Policy::default(),
        Some(home),
    );
    let reports = coach::run(home, &mut gate, &CoachOptions::default(), &mut |_| {}).unwrap();
    assert!(
        reports[0].accepted,
        "{:?}",
        reports[0].rounds.last().unwrap().checks
    );
    assert_eq!(reports[0].cartridge.as_deref(), Some("default@1.1.0"));
    let stores = HomeStores::open(home).unwrap();
    let record = stores.registry.find("default@1.1.0").unwrap();
    assert_eq!(record.status, pxos_cart::Status::Experimental);
    assert_eq!(record.creator.kind, pxos_cart::CreatorKind::Llm);
    assert_eq!(record.creator.name, "planner");
    let (manifest, _) = pxos_cart::read_manifest(
        &stores.registry.path_of(&record),
        &pxos_cart::Limits::default(),
    )
    .unwrap();
    assert!(
        manifest.files.iter().any(|f| f.path == "docs/PLAN.md"),
        "the plan travels in the cartridge"
    );
    // An LLM cannot promote it.
    let refused = stores.registry.promote(
        "default@1.1.0",
        Some(pxos_cart::Actor {
            kind: pxos_cart::ActorKind::Llm,
            name: "planner".into(),
        }),
        false,
        "self-promotion",
    );
    assert!(refused.is_err());
    assert_eq!(
        stores.registry.current().unwrap().unwrap().id,
        "default@1.0.0"
    );
}
