//! The seed's scheduling rules, and its bugs gone: one queue, filters before
//! picking, a retry path, and a damaged file never replaced by an empty one.

use pxos_agent::queue::{Action, Agent, Filter, NewTask, Status, TaskQueue, evolution_task};
use pxos_test_support::TempDir;

fn task(title: &str, priority: i64) -> NewTask {
    let mut new = NewTask::new(title, Action::Program);
    new.priority = priority;
    new
}

#[test]
fn priority_then_age_then_dependencies_decide_the_next_task() {
    let mut queue = TaskQueue::empty();
    let low = queue.add(task("low", 1)).unwrap();
    let first_high = queue.add(task("high, older", 9)).unwrap();
    let second_high = queue.add(task("high, newer", 9)).unwrap();
    let mut blocked = task("highest, waits on low", 50);
    blocked.dependencies = vec![low.clone()];
    let waiting = queue.add(blocked).unwrap();
    let all = Filter::default();
    // The dependency is not completed: the highest priority is skipped.
    assert_eq!(queue.next(&all).unwrap().id, first_high);
    queue.start(&first_high).unwrap();
    assert_eq!(
        queue.next(&all).unwrap().id,
        second_high,
        "a started task is not picked again"
    );
    queue.start(&second_high).unwrap();
    assert_eq!(queue.next(&all).unwrap().id, low);
    queue.start(&low).unwrap();
    assert!(queue.next(&all).is_none());
    assert!(
        queue.start(&waiting).is_err(),
        "its dependency is not completed"
    );
    queue.complete(&low, Some(9), None).unwrap();
    assert_eq!(queue.next(&all).unwrap().id, waiting);
}

#[test]
fn filters_apply_before_picking() {
    // The seed picked the top task, then skipped it for another phase,
    // forever. Here the filter chooses among the tasks of that phase.
    let mut queue = TaskQueue::empty();
    queue
        .add(evolution_task(
            Action::WorldRebuild,
            "rebuild",
            "boot 120 ms",
        ))
        .unwrap();
    let mut storage = task("storage work", 3);
    storage.phase = Some("storage".into());
    let storage = queue.add(storage).unwrap();
    let mut human = task("for a person", 99);
    human.agent = Agent::Human;
    human.phase = Some("storage".into());
    queue.add(human).unwrap();
    let filter = Filter {
        phase: Some("storage".into()),
        agent: Some(Agent::Llm),
        action: None,
    };
    assert_eq!(queue.next(&filter).unwrap().id, storage);
    assert_eq!(
        queue.next(&Filter::default()).unwrap().priority,
        100,
        "world rebuilds are 100"
    );
}

#[test]
fn attempts_are_limited_and_a_person_can_retry() {
    let mut queue = TaskQueue::empty();
    let mut new = task("flaky", 5);
    new.max_attempts = 2;
    let id = queue.add(new).unwrap();
    for attempt in 1..=2 {
        queue.start(&id).unwrap();
        queue.fail(&id, "checks failed").unwrap();
        assert_eq!(queue.get(&id).unwrap().attempts, attempt);
        if attempt < 2 {
            assert!(!queue.get(&id).unwrap().needs_human);
            queue.retry(&id, 0).unwrap();
        }
    }
    let failed = queue.get(&id).unwrap();
    assert!(failed.needs_human, "out of attempts: a person decides");
    assert_eq!(failed.status, Status::Failed);
    assert!(queue.next(&Filter::default()).is_none());
    assert!(
        queue.retry(&id, 0).is_err(),
        "no attempts left without a person's more"
    );
    queue.retry(&id, 1).unwrap();
    assert_eq!(queue.next(&Filter::default()).unwrap().id, id);
    // Transitions that make no sense are refused.
    assert!(
        queue.complete(&id, None, None).is_err(),
        "a pending task cannot complete"
    );
    assert!(queue.fail("t999", "x").is_err());
}

#[test]
fn the_queue_file_round_trips_and_damage_is_an_error() {
    let dir = TempDir::new("queue-file");
    let home = dir.path();
    let id = TaskQueue::update(home, |q| q.add(task("persisted", 4))).unwrap();
    // One queue: a second load sees the first one's change, and a change
    // made through one update is visible to the next (no stale copies).
    TaskQueue::update(home, |q| q.start(&id)).unwrap();
    let loaded = TaskQueue::load(home).unwrap();
    assert_eq!(loaded.get(&id).unwrap().status, Status::InProgress);
    assert!(
        loaded.next(&Filter::default()).is_none(),
        "the same task is not picked again"
    );

    let path = pxos_agent::queue::queue_path(home);
    let good = std::fs::read(&path).unwrap();
    for (name, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", b"not a png at all".to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let err = TaskQueue::load(home).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{name}: {err}");
        let err = TaskQueue::update(home, |q| q.add(task("x", 1))).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{name}: {err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: the damaged file was replaced"
        );
    }
    // A well-formed PXI with a hostile table: duplicate ids, dangling dependencies.
    let mut queue = TaskQueue::empty();
    let a = queue.add(task("a", 1)).unwrap();
    queue.tasks.push(queue.tasks[0].clone());
    std::fs::write(&path, queue.encode()).unwrap();
    assert!(
        TaskQueue::load(home)
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
    queue.tasks.pop();
    queue.tasks[0].dependencies = vec!["t77".into()];
    std::fs::write(&path, queue.encode()).unwrap();
    assert!(
        TaskQueue::load(home)
            .unwrap_err()
            .to_string()
            .contains("t77"),
        "{a}"
    );
}
