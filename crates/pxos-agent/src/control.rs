//! The boot's host steps for agents: the policy stage loads and checks the
//! model policy, and the LLM control plane discovers the configured models
//! and writes the routing table (`HOME/agents/routing.json`): which provider
//! answers each purpose. SYS_LLM and the shell's `ask` follow its `ask`
//! route. Endpoints are listed, not contacted: a boot makes no request
//! (`pxos agents` probes them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::AgentConfig;
use crate::error::{Error, Result};

pub const ROUTING_FILE: &str = "agents/routing.json";
pub const ROUTING_FORMAT: &str = "pxos-llm-routing";

/// One model the control plane found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovered {
    /// `builtin` or the endpoint's name.
    pub provider: String,
    pub model: String,
    /// `http://...` for an endpoint; none for the built-in model.
    pub url: Option<String>,
    /// Whether the boot could load it (the built-in model) or it is only
    /// configured (endpoints are not contacted at boot).
    pub state: String,
}

/// The routing table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub format: String,
    pub written: String,
    pub models: Vec<Discovered>,
    /// Purpose (`generate`, `review`, `ask`, `chat`, `propose`, `architect`) -> provider.
    pub routes: BTreeMap<String, String>,
}

pub fn routing_path(home: &Path) -> PathBuf {
    home.join(ROUTING_FILE)
}

/// Builds the routing table from the configuration.
pub fn discover(config: &AgentConfig) -> Routing {
    let builtin = pxos_llm::builtin();
    let mut models = vec![Discovered {
        provider: "builtin".into(),
        model: builtin
            .as_ref()
            .map(|m| m.manifest.name.clone())
            .unwrap_or_else(|_| "(damaged)".into()),
        url: None,
        state: match &builtin {
            Ok(_) => "loaded and checked".into(),
            Err(err) => format!("does not load: {err}"),
        },
    }];
    for (name, endpoint) in &config.endpoints {
        models.push(Discovered {
            provider: name.clone(),
            model: endpoint.model.clone(),
            url: Some(endpoint.url.clone()),
            state: "configured (not contacted at boot)".into(),
        });
    }
    let mut routes = BTreeMap::new();
    for purpose in ["generate", "review", "ask", "chat", "propose"] {
        routes.insert(purpose.to_string(), config.default.clone());
    }
    routes.insert(
        "architect".into(),
        config
            .architect
            .as_ref()
            .map_or_else(|| config.default.clone(), |a| a.provider.clone()),
    );
    Routing {
        format: ROUTING_FORMAT.into(),
        written: pxos_fs::time::now_rfc3339(),
        models,
        routes,
    }
}

/// The routing table the last boot wrote, if any (a damaged one is an error).
pub fn load_routing(home: &Path) -> Result<Option<Routing>> {
    let path = routing_path(home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
            Error::bad_input(format!("{}: not a routing table: {err}", path.display()))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io(err, &path)),
    }
}

/// The provider for `purpose`: the boot's route when it still names a
/// configured provider, else the configuration's default.
pub fn route(home: &Path, config: &AgentConfig, purpose: &str) -> String {
    load_routing(home)
        .ok()
        .flatten()
        .and_then(|r| r.routes.get(purpose).cloned())
        .filter(|p| p == "builtin" || config.endpoints.contains_key(p))
        .unwrap_or_else(|| config.default.clone())
}

/// The host steps `pxos boot` runs for agents.
pub struct BootHost {
    pub home: PathBuf,
}

impl pxos_boot::boot::HostSteps for BootHost {
    fn run(&self, name: &str, dry_run: bool) -> std::result::Result<String, String> {
        let config = AgentConfig::load(&self.home).map_err(|err| err.to_string())?;
        match name {
            "policy" => Ok(format!(
                "model policy loaded: {} requests a minute, prompts up to {} bytes, {} refused phrase(s)",
                config.policy.max_requests_per_minute,
                config.policy.max_prompt_bytes,
                config.policy.refuse.len()
            )),
            "models" => {
                let routing = discover(&config);
                let summary = format!(
                    "{} model(s): {}; ask -> {}",
                    routing.models.len(),
                    routing
                        .models
                        .iter()
                        .map(|m| format!("{} ({})", m.provider, m.model))
                        .collect::<Vec<_>>()
                        .join(", "),
                    routing.routes["ask"]
                );
                if dry_run {
                    return Ok(format!("{summary}; the routing table would be written"));
                }
                let path = routing_path(&self.home);
                let dir = path.parent().expect("the table has a folder");
                std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
                pxos_pixel::durable::write_atomic(
                    &path,
                    serde_json::to_string_pretty(&routing)
                        .expect("json")
                        .as_bytes(),
                    pxos_pixel::durable::label::AGENT_ROUTING,
                )
                .map_err(|err| format!("{}: {err}", path.display()))?;
                Ok(format!("{summary}; routing table written"))
            }
            other => Err(format!("no host step {other}")),
        }
    }
}
