//! The coaching loop's costs, each against a reference measured in the same run:
//!
//! * `round/builtin`: one round with the built-in model (generate up to 256
//!   tokens, review up to 128), against `generate/builtin` (the same
//!   generation alone): the loop's overhead on the model.
//! * `checks/program`: the real checks of a PXVM artefact (assemble, run
//!   through the hypervisor with its execution record), to set against the
//!   generation time.
//! * `queue/next+start`: taking a task from a queue of 10^2 and 10^4 tasks
//!   (load, pick, start, save: a whole-file rewrite, so linear in the size).
//!
//! Tokens per round are printed once (criterion measures time only).
//! `cargo bench -p pxos-agent --bench coach`; CI runs it once (`-- --test`).

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_agent::config::Policy;
use pxos_agent::provider::{Builtin, Gate, Message, Purpose, Request};
use pxos_agent::queue::{Action, Expect, Filter, NewTask, TaskQueue};

const GOOD: &str =
    "START:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"hi\"\n";

fn generate(gate: &mut Gate) -> u64 {
    let reply = gate
        .complete(&Request {
            purpose: Purpose::Generate,
            messages: vec![
                Message::new("system", "You write PXVM assembly for pxOS."),
                Message::new(
                    "user",
                    "Task t1: print hi. When run it must print exactly [\"hi\"].",
                ),
            ],
            max_tokens: 256,
        })
        .unwrap();
    reply.completion_tokens
}

fn review(gate: &mut Gate) -> u64 {
    gate.complete(&Request {
        purpose: Purpose::Review,
        messages: vec![
            Message::new("system", "Reply with SCORE: N and FEEDBACK: ..."),
            Message::new("user", format!("The answer to review:\n{GOOD}")),
        ],
        max_tokens: 128,
    })
    .unwrap()
    .completion_tokens
}

fn bench(c: &mut Criterion) {
    let mut gate = Gate::new(
        Box::new(Builtin::new()),
        Policy {
            max_requests_per_minute: 0,
            ..Policy::default()
        },
        None,
    );
    let tokens = generate(&mut gate) + review(&mut gate);
    eprintln!("coach bench: one round with the built-in model makes {tokens} tokens");
    let mut group = c.benchmark_group("coach");
    group.sample_size(10);
    group.bench_function("generate/builtin", |b| b.iter(|| generate(&mut gate)));
    group.bench_function("round/builtin", |b| {
        b.iter(|| {
            let tokens = generate(&mut gate) + review(&mut gate);
            let checked = pxos_agent::check::check_program(
                std::env::temp_dir().join("pxos-bench-coach").as_path(),
                "bench.pxasm",
                GOOD,
                &Expect {
                    args: Vec::new(),
                    output: vec!["hi".into()],
                },
            );
            assert!(checked.passed);
            tokens
        })
    });
    let home = std::env::temp_dir().join(format!("pxos-bench-coach-{}", std::process::id()));
    group.bench_function("checks/program", |b| {
        b.iter(|| {
            let report = pxos_agent::check::check_program(
                &home,
                "bench.pxasm",
                GOOD,
                &Expect {
                    args: Vec::new(),
                    output: vec!["hi".into()],
                },
            );
            assert!(report.passed);
        })
    });
    for size in [100usize, 10_000] {
        let dir = home.join(format!("queue-{size}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut queue = TaskQueue::empty();
        for n in 0..size {
            let mut task = NewTask::new(&format!("task {n}"), Action::Program);
            task.priority = (n % 10) as i64;
            task.expect = Expect {
                args: Vec::new(),
                output: vec!["hi".into()],
            };
            queue.add(task).unwrap();
        }
        std::fs::create_dir_all(dir.join("agents")).unwrap();
        std::fs::write(pxos_agent::queue::queue_path(&dir), queue.encode()).unwrap();
        group.bench_function(format!("queue/next+start/{size}"), |b| {
            b.iter(|| {
                TaskQueue::update(&dir, |q| {
                    let id = q.next(&Filter::default()).map(|t| t.id.clone()).unwrap();
                    q.start(&id)?;
                    // Put it back, so every iteration picks from the same queue.
                    let task = q.tasks.iter_mut().find(|t| t.id == id).unwrap();
                    task.status = pxos_agent::queue::Status::Pending;
                    task.attempts = 0;
                    Ok(())
                })
                .unwrap()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join("pxos-bench-coach"));
}

criterion_group!(benches, bench);
criterion_main!(benches);
