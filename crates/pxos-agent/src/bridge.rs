//! The configured model as PXVM sees it: SYS_LLM and the shell's `ask`.
//! One [`SharedModel`] serves a whole session (the shell and the programs it
//! runs), opened on first use, so a boot that never asks loads no model and
//! contacts no endpoint. Each question goes through the model policy and
//! into the exchange log.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use pxos_pixel::ErrorKind;
use pxos_vm::{LanguageModel, StorageError, StorageErrorKind};

use crate::config::AgentConfig;
use crate::provider::{Gate, Message, Purpose, Request};

/// Tokens per answer to a program or the shell.
pub const ASK_TOKENS: usize = 96;

struct State {
    home: PathBuf,
    spec: Option<String>,
    gate: Option<Gate>,
}

/// A model handle that clones cheaply (one model and one policy per session).
#[derive(Clone)]
pub struct SharedModel {
    state: Rc<RefCell<State>>,
}

impl SharedModel {
    /// The home's configured model, or the provider `spec` names.
    pub fn new(home: &Path, spec: Option<&str>) -> SharedModel {
        SharedModel {
            state: Rc::new(RefCell::new(State {
                home: home.to_path_buf(),
                spec: spec.map(str::to_string),
                gate: None,
            })),
        }
    }

    pub fn boxed(&self) -> Box<dyn LanguageModel> {
        Box::new(self.clone())
    }

    /// Asks `question`; the answer, or why not (as a pxOS error).
    pub fn ask_text(&self, question: &str) -> crate::Result<String> {
        let mut state = self.state.borrow_mut();
        if state.gate.is_none() {
            let config = AgentConfig::load(&state.home)?;
            // The route the boot's control plane chose, unless one was named.
            let spec = state
                .spec
                .clone()
                .unwrap_or_else(|| crate::control::route(&state.home, &config, "ask"));
            let provider = crate::provider::open(&state.home, &config, Some(&spec))?;
            state.gate = Some(Gate::new(provider, config.policy, Some(&state.home)));
        }
        let gate = state.gate.as_mut().expect("opened above");
        let reply = gate.complete(&Request {
            purpose: Purpose::Ask,
            messages: vec![
                Message::new("system", "You are the model inside pxOS. Answer briefly."),
                Message::new("user", question),
            ],
            max_tokens: ASK_TOKENS,
        })?;
        Ok(reply.text)
    }
}

impl LanguageModel for SharedModel {
    fn ask(&mut self, prompt: &str) -> Result<String, StorageError> {
        self.ask_text(prompt).map_err(|err| {
            let kind = match err.kind() {
                ErrorKind::Refused => StorageErrorKind::Denied,
                ErrorKind::Usage | ErrorKind::NotFound => StorageErrorKind::Unsupported,
                ErrorKind::BadInput | ErrorKind::Tampered => StorageErrorKind::Invalid,
                ErrorKind::Io => StorageErrorKind::Io,
            };
            StorageError::new(kind, err.to_string())
        })
    }
}
