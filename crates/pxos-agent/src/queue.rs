//! The task queue (`HOME/agents/tasks.png`): one PXI of kind `table` whose
//! payload is the queue as JSON, replaced atomically under a write lock on
//! every change. There is one queue: every command and the coaching loop
//! load it, change it through [`TaskQueue::update`], and save it before the
//! lock is released, so no copy can go stale. A queue file that does not
//! decode is an error naming it; it is never replaced by an empty queue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const QUEUE_FILE: &str = "agents/tasks.png";
pub const QUEUE_VERSION: u32 = 1;
/// Tasks a queue holds. Every change rewrites the whole file, so a change
/// costs time linear in the queue (about 0.1 s at 10^4 tasks, see
/// `docs/benchmarks.md`); past this, `add` refuses with this number.
pub const MAX_TASKS: usize = 20_000;
/// Attempts a task gets unless it says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// An enum with a name for each variant (its serde name too) and `parse`.
macro_rules! named {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $case:literal { $($variant:ident = $name:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = $case)]
        pub enum $ty {
            $($variant,)*
        }

        impl $ty {
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            pub fn parse(text: &str) -> Result<$ty> {
                match text {
                    $($name => Ok($ty::$variant),)*
                    _ => Err(Error::usage(format!(
                        "unknown {} {text:?} ({})",
                        $what,
                        [$($name),*].join(", ")
                    ))),
                }
            }
        }
    };
}

named! {
    /// A task's state.
    Status, "status", "snake_case" {
        Pending = "pending",
        InProgress = "in_progress",
        Review = "review",
        Completed = "completed",
        Failed = "failed",
        Blocked = "blocked",
    }
}

named! {
    /// Who takes a task: a model (the coaching loop), a person (never
    /// picked by the loop), or whoever comes first.
    Agent, "agent", "snake_case" {
        Llm = "llm",
        Human = "human",
        Auto = "auto",
    }
}

named! {
    /// What a task produces, which decides the checks its artefact must pass:
    /// PXVM assembly (assembled and run against its expected output), a VRAM
    /// roadmap (built and evaluated), a change to the current world (rebuilt,
    /// packed and Genesis-checked), a whole world from a template, or a
    /// migration or architecture-change plan with its experimental cartridge.
    Action, "action", "kebab-case" {
        Program = "program",
        Roadmap = "roadmap",
        Cartridge = "cartridge",
        WorldRebuild = "world-rebuild",
        Migration = "migration",
        ArchitectureChange = "architecture-change",
    }
}

/// What a program task's code must do when run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Arguments passed by the calling convention.
    #[serde(default)]
    pub args: Vec<String>,
    /// The printed lines, exactly and in order.
    #[serde(default)]
    pub output: Vec<String>,
}

/// The best artefact a task produced, and how it fared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Where it is, relative to the home.
    pub artefact: String,
    pub sha256: String,
    pub rounds: u32,
    pub checks_passed: bool,
    /// The recorded session (`pxos coach replay` takes it).
    pub session: String,
    /// The experimental cartridge it registered, if any (`name@version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartridge: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// `t1`, `t2`, ...: never reused.
    pub id: String,
    pub title: String,
    pub description: String,
    pub action: Action,
    /// The artefact's path inside the task's workspace (a file name).
    pub path: Option<String>,
    /// Higher first.
    pub priority: i64,
    pub status: Status,
    pub agent: Agent,
    pub phase: Option<String>,
    /// Task ids that must be completed first.
    pub dependencies: Vec<String>,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// Order of creation (breaks ties between tasks created in the same second).
    pub created_seq: u64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub review_score: Option<u8>,
    pub review_feedback: Option<String>,
    /// Used its attempts (or was stopped): only a person moves it on.
    pub needs_human: bool,
    /// Why it failed last.
    pub error: Option<String>,
    #[serde(default)]
    pub expect: Expect,
    pub outcome: Option<Outcome>,
    /// Free-form data (a rebuild's template and version, a reason).
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A new task's fields.
#[derive(Clone, Debug)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub action: Action,
    pub path: Option<String>,
    pub priority: i64,
    pub agent: Agent,
    pub phase: Option<String>,
    pub dependencies: Vec<String>,
    pub max_attempts: u32,
    pub expect: Expect,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl NewTask {
    pub fn new(title: &str, action: Action) -> NewTask {
        NewTask {
            title: title.into(),
            description: String::new(),
            action,
            path: None,
            priority: 5,
            agent: Agent::Llm,
            phase: None,
            dependencies: Vec::new(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            expect: Expect::default(),
            metadata: BTreeMap::new(),
        }
    }
}

/// Which tasks `next` may pick (applied before picking).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub phase: Option<String>,
    /// The agent asking: tasks for it and for `auto`.
    pub agent: Option<Agent>,
    pub action: Option<Action>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskQueue {
    pub version: u32,
    pub next_seq: u64,
    pub tasks: Vec<Task>,
}

pub fn queue_path(home: &Path) -> PathBuf {
    home.join(QUEUE_FILE)
}

impl TaskQueue {
    pub fn empty() -> TaskQueue {
        TaskQueue {
            version: QUEUE_VERSION,
            next_seq: 1,
            tasks: Vec::new(),
        }
    }

    /// The home's queue (empty when there is no file yet).
    pub fn load(home: &Path) -> Result<TaskQueue> {
        let path = queue_path(home);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TaskQueue::empty());
            }
            Err(err) => return Err(Error::io(err, &path)),
        };
        TaskQueue::decode(&bytes).map_err(|why| {
            Error::bad_input(format!(
                "the task queue {} is damaged: {why}; it was left as it is (restore it, or move it away to start an empty queue)",
                path.display()
            ))
        })
    }

    /// A queue from its PXI bytes.
    pub fn decode(bytes: &[u8]) -> std::result::Result<TaskQueue, String> {
        let (decoded, payload) =
            pxos_pixel::decode_from_slice(bytes, &pxos_pixel::Limits::default())
                .map_err(|err| err.to_string())?;
        if decoded.header.kind != pxos_pixel::Kind::Table {
            return Err(format!(
                "a PXI of kind {}, not table",
                decoded.header.kind.name()
            ));
        }
        let queue: TaskQueue =
            serde_json::from_slice(&payload).map_err(|err| format!("its table: {err}"))?;
        if queue.version != QUEUE_VERSION {
            return Err(format!(
                "version {} (this pxos reads {QUEUE_VERSION})",
                queue.version
            ));
        }
        queue.check()?;
        Ok(queue)
    }

    /// Ids unique and well formed, sequence numbers below `next_seq`, and
    /// dependencies naming tasks of this queue.
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for task in &self.tasks {
            if task.id != format!("t{}", task.created_seq) {
                return Err(format!(
                    "task {:?} does not match its number {}",
                    task.id, task.created_seq
                ));
            }
            if task.created_seq >= self.next_seq {
                return Err(format!(
                    "task {} is numbered past the queue's counter",
                    task.id
                ));
            }
            if !seen.insert(task.id.clone()) {
                return Err(format!("task {} appears twice", task.id));
            }
        }
        for task in &self.tasks {
            for dep in &task.dependencies {
                if !seen.contains(dep) {
                    return Err(format!(
                        "task {} depends on {dep}, which is not in the queue",
                        task.id
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("queues serialize");
        pxos_pixel::encode_to_vec(
            &json,
            &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
        )
        .expect("an in-memory encode does not fail")
    }

    fn save(&self, home: &Path) -> Result<()> {
        let path = queue_path(home);
        pxos_pixel::durable::write_atomic(
            &path,
            &self.encode(),
            pxos_pixel::durable::label::TASK_QUEUE,
        )
        .map_err(|err| Error::io(err, &path))
    }

    /// Loads the queue under the write lock, applies `change`, and saves the
    /// result when `change` succeeds (nothing is written when it fails).
    pub fn update<T>(home: &Path, change: impl FnOnce(&mut TaskQueue) -> Result<T>) -> Result<T> {
        let dir = home.join("agents");
        std::fs::create_dir_all(&dir).map_err(|err| Error::io(err, &dir))?;
        let _lock = pxos_fs::lock::WriteLock::acquire(&dir.join("tasks.lock"))?;
        let mut queue = TaskQueue::load(home)?;
        let value = change(&mut queue)?;
        queue.save(home)?;
        Ok(value)
    }

    pub fn get(&self, id: &str) -> Result<&Task> {
        self.tasks
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::not_found(format!("no task {id} (see `pxos tasks list`)")))
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Task> {
        self.tasks
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::not_found(format!("no task {id} (see `pxos tasks list`)")))
    }

    /// Adds a task; returns its id.
    pub fn add(&mut self, new: NewTask) -> Result<String> {
        if new.title.trim().is_empty() {
            return Err(Error::usage("a task needs a title"));
        }
        if self.tasks.len() >= MAX_TASKS {
            return Err(Error::refused(format!(
                "the task queue holds {MAX_TASKS} tasks, its limit (every change rewrites it whole)"
            )));
        }
        if new.max_attempts == 0 {
            return Err(Error::usage("--max-attempts must be at least 1"));
        }
        for dep in &new.dependencies {
            self.get(dep)?;
        }
        if let Some(path) = &new.path {
            crate::workspace::check_artefact_name(path)?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = format!("t{seq}");
        self.tasks.push(Task {
            id: id.clone(),
            title: new.title,
            description: new.description,
            action: new.action,
            path: new.path,
            priority: new.priority,
            status: Status::Pending,
            agent: new.agent,
            phase: new.phase,
            dependencies: new.dependencies,
            created_at: pxos_fs::time::now_rfc3339(),
            created_seq: seq,
            started_at: None,
            completed_at: None,
            attempts: 0,
            max_attempts: new.max_attempts,
            review_score: None,
            review_feedback: None,
            needs_human: false,
            error: None,
            expect: new.expect,
            outcome: None,
            metadata: new.metadata,
        });
        Ok(id)
    }

    /// Whether every dependency of `task` is completed.
    fn ready(&self, task: &Task) -> bool {
        task.dependencies.iter().all(|dep| {
            self.tasks
                .iter()
                .any(|t| &t.id == dep && t.status == Status::Completed)
        })
    }

    /// The task to take next: pending, attempts left, dependencies completed,
    /// passing `filter`; highest priority first, then the oldest.
    pub fn next(&self, filter: &Filter) -> Option<&Task> {
        self.tasks
            .iter()
            .filter(|t| t.status == Status::Pending && !t.needs_human)
            .filter(|t| t.attempts < t.max_attempts)
            .filter(|t| {
                filter
                    .phase
                    .as_ref()
                    .is_none_or(|p| t.phase.as_ref() == Some(p))
            })
            .filter(|t| filter.action.is_none_or(|a| t.action == a))
            .filter(|t| {
                filter
                    .agent
                    .is_none_or(|a| t.agent == a || t.agent == Agent::Auto)
            })
            .filter(|t| self.ready(t))
            .min_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then_with(|| a.created_at.cmp(&b.created_at))
                    .then_with(|| a.created_seq.cmp(&b.created_seq))
            })
    }

    fn transition(&mut self, id: &str, from: &[Status], to: Status) -> Result<&mut Task> {
        let task = self.get_mut(id)?;
        if !from.contains(&task.status) {
            return Err(Error::refused(format!(
                "task {id} is {}; it cannot become {} from there",
                task.status.name(),
                to.name()
            )));
        }
        task.status = to;
        Ok(task)
    }

    /// pending -> in_progress, using one attempt.
    pub fn start(&mut self, id: &str) -> Result<()> {
        let ready = self.ready(self.get(id)?);
        let task = self.get(id)?;
        if task.attempts >= task.max_attempts {
            return Err(Error::refused(format!(
                "task {id} has used its {} attempts (`pxos tasks retry {id} --more-attempts N`)",
                task.max_attempts
            )));
        }
        if !ready {
            return Err(Error::refused(format!(
                "task {id} waits on {} (not all completed)",
                task.dependencies.join(", ")
            )));
        }
        let task = self.transition(id, &[Status::Pending], Status::InProgress)?;
        task.attempts += 1;
        task.started_at = Some(pxos_fs::time::now_rfc3339());
        Ok(())
    }

    /// in_progress -> review.
    pub fn to_review(&mut self, id: &str) -> Result<()> {
        self.transition(id, &[Status::InProgress], Status::Review)?;
        Ok(())
    }

    /// in_progress or review -> completed.
    pub fn complete(
        &mut self,
        id: &str,
        score: Option<u8>,
        feedback: Option<String>,
    ) -> Result<()> {
        let task = self.transition(id, &[Status::InProgress, Status::Review], Status::Completed)?;
        task.completed_at = Some(pxos_fs::time::now_rfc3339());
        if score.is_some() {
            task.review_score = score;
        }
        if feedback.is_some() {
            task.review_feedback = feedback;
        }
        task.error = None;
        Ok(())
    }

    /// in_progress or review -> failed; a task out of attempts needs a person.
    pub fn fail(&mut self, id: &str, error: &str) -> Result<()> {
        let task = self.transition(id, &[Status::InProgress, Status::Review], Status::Failed)?;
        task.error = Some(error.to_string());
        task.needs_human = task.attempts >= task.max_attempts;
        Ok(())
    }

    /// failed or blocked -> pending. A task out of attempts needs `more`
    /// attempts from a person; that also clears `needs_human`.
    pub fn retry(&mut self, id: &str, more: u32) -> Result<()> {
        let task = self.get(id)?;
        if task.attempts >= task.max_attempts && more == 0 {
            return Err(Error::refused(format!(
                "task {id} has used its {} attempts; give it more with --more-attempts N",
                task.max_attempts
            )));
        }
        let task = self.transition(id, &[Status::Failed, Status::Blocked], Status::Pending)?;
        task.max_attempts += more;
        task.needs_human = false;
        task.started_at = None;
        Ok(())
    }

    /// Any open task -> blocked (a person stops it).
    pub fn block(&mut self, id: &str, why: &str) -> Result<()> {
        let task = self.transition(
            id,
            &[
                Status::Pending,
                Status::InProgress,
                Status::Review,
                Status::Failed,
            ],
            Status::Blocked,
        )?;
        task.error = Some(why.to_string());
        task.needs_human = true;
        Ok(())
    }

    /// Tasks passing `status` and `phase`, in queue order.
    pub fn list(&self, status: Option<Status>, phase: Option<&str>) -> Vec<&Task> {
        self.tasks
            .iter()
            .filter(|t| status.is_none_or(|s| t.status == s))
            .filter(|t| phase.is_none_or(|p| t.phase.as_deref() == Some(p)))
            .collect()
    }

    /// (total, completed, in progress, pending, failed) of a phase (or all).
    pub fn progress(&self, phase: Option<&str>) -> BTreeMap<&'static str, usize> {
        let tasks = self.list(None, phase);
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        counts.insert("total", tasks.len());
        for status in [
            Status::Pending,
            Status::InProgress,
            Status::Review,
            Status::Completed,
            Status::Failed,
            Status::Blocked,
        ] {
            counts.insert(
                status.name(),
                tasks.iter().filter(|t| t.status == status).count(),
            );
        }
        counts
    }
}

/// An evolution task: a world rebuild (priority 100), a migration (90) or an
/// architecture change (80), in phase `evolution`.
pub fn evolution_task(action: Action, title: &str, reason: &str) -> NewTask {
    let priority = match action {
        Action::WorldRebuild => 100,
        Action::Migration => 90,
        Action::ArchitectureChange => 80,
        _ => 5,
    };
    let mut task = NewTask::new(title, action);
    task.priority = priority;
    task.phase = Some("evolution".into());
    task.description = reason.to_string();
    task.metadata
        .insert("reason".into(), serde_json::Value::String(reason.into()));
    task
}
