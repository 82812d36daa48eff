//! The agents' library tests: the task queue's scheduling rules and its
//! file, workspaces under hostile names, the checks, and the coaching loop
//! against a scripted provider.

mod coach;
mod evolve;
mod queue;
mod workspace;
