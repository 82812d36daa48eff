//! The agents' configuration (`HOME/agents/config.json`): the model endpoints
//! a person added, which provider is the default, the architect, and the
//! model policy (refusals, rate limit). Nothing here reaches the network:
//! an endpoint is only ever contacted because it is written here or named
//! on the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const CONFIG_FILE: &str = "agents/config.json";
pub const CONFIG_VERSION: u32 = 1;

/// An OpenAI-compatible endpoint (Ollama, LM Studio, llama.cpp's server,
/// `pxos llm serve`, or a hosted API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The API base, up to and including `/v1` (`http://127.0.0.1:11434/v1`).
    pub url: String,
    /// The model id sent with each request.
    pub model: String,
    /// The environment variable holding the API key, if the endpoint needs one
    /// (the key itself is never written to disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Seconds to wait for an answer.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    120
}

/// The LLM architect (seed 003): an endpoint and its system prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architect {
    /// The provider it uses (`builtin` or an endpoint's name).
    pub provider: String,
    pub system_prompt: String,
}

/// What the model policy allows (the boot's policy stage loads this).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Requests per minute across all of a home's model use; 0: no limit.
    pub max_requests_per_minute: u32,
    /// Longest prompt, in bytes.
    pub max_prompt_bytes: usize,
    /// Prompts containing any of these (case-insensitive) are refused.
    pub refuse: Vec<String>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_requests_per_minute: 60,
            max_prompt_bytes: 16 * 1024,
            refuse: vec!["ignore previous instructions".into(), "rm -rf".into()],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub version: u32,
    /// The provider used when no flag names one: `builtin` or an endpoint's name.
    pub default: String,
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architect: Option<Architect>,
    #[serde(default)]
    pub policy: Policy,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            version: CONFIG_VERSION,
            default: "builtin".into(),
            endpoints: BTreeMap::new(),
            architect: None,
            policy: Policy::default(),
        }
    }
}

pub fn config_path(home: &Path) -> PathBuf {
    home.join(CONFIG_FILE)
}

impl AgentConfig {
    /// The home's configuration; the defaults (the built-in model only) when
    /// there is no file. A damaged file is an error, never the defaults.
    pub fn load(home: &Path) -> Result<AgentConfig> {
        let path = config_path(home);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentConfig::default());
            }
            Err(err) => return Err(Error::io(err, &path)),
        };
        let config: AgentConfig = serde_json::from_slice(&bytes).map_err(|err| {
            Error::bad_input(format!(
                "{}: not a pxOS agents configuration: {err} (fix it or move it away; it was left as it is)",
                path.display()
            ))
        })?;
        if config.version != CONFIG_VERSION {
            return Err(Error::bad_input(format!(
                "{}: version {} (this pxos reads version {CONFIG_VERSION})",
                path.display(),
                config.version
            )));
        }
        config.check()?;
        Ok(config)
    }

    /// Names and URLs are sane, and the default names something.
    pub fn check(&self) -> Result<()> {
        for (name, endpoint) in &self.endpoints {
            check_name(name)?;
            parse_url(&endpoint.url)?;
            if endpoint.model.trim().is_empty() {
                return Err(Error::usage(format!("endpoint {name} has no model")));
            }
        }
        if self.default != "builtin" && !self.endpoints.contains_key(&self.default) {
            return Err(Error::usage(format!(
                "the default provider {:?} is neither `builtin` nor an endpoint",
                self.default
            )));
        }
        Ok(())
    }

    pub fn save(&self, home: &Path) -> Result<()> {
        self.check()?;
        let path = config_path(home);
        let dir = path.parent().expect("the config has a folder");
        std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
        let text = serde_json::to_string_pretty(self).expect("configs serialize");
        pxos_pixel::durable::write_atomic(
            &path,
            text.as_bytes(),
            pxos_pixel::durable::label::AGENT_CONFIG,
        )
        .map_err(|err| Error::io(err, &path))
    }
}

/// An endpoint name: letters, digits, `-`, `_`; 1 to 64 of them; not `builtin`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name != "builtin";
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "bad endpoint name {name:?}: use 1-64 letters, digits, - or _ (and not `builtin`)"
        )))
    }
}

/// An endpoint URL, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// The base path, without a trailing `/` (`/v1`).
    pub path: String,
}

/// Parses `http://HOST[:PORT][/PATH]`. HTTPS is refused with a reason: this
/// pxos speaks plain HTTP to endpoints (local servers), not TLS.
pub fn parse_url(url: &str) -> Result<Url> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(Error::usage(format!(
            "{url}: https endpoints are not supported by this pxos (it has no TLS client); \
             use a local endpoint over http, or a local TLS-terminating proxy"
        )));
    } else {
        return Err(Error::usage(format!(
            "{url}: an endpoint URL starts with http:// (for example http://127.0.0.1:11434/v1)"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(Error::usage(format!(
            "{url}: put credentials in an environment variable (api_key_env), not in the URL"
        )));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| Error::usage(format!("{url}: bad port {port:?}")))?;
            (host, port)
        }
        _ => (authority, 80),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(Error::usage(format!("{url}: no host")));
    }
    if path.contains(char::is_whitespace) || path.contains(['?', '#']) {
        return Err(Error::usage(format!(
            "{url}: the base path may not hold spaces, a query or a fragment"
        )));
    }
    Ok(Url {
        host: host.trim_start_matches('[').trim_end_matches(']').into(),
        port,
        path: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_what_cannot_be_served() {
        let url = parse_url("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8080, "/v1")
        );
        assert_eq!(parse_url("http://localhost").unwrap().port, 80);
        for bad in [
            "https://api.example.com/v1",
            "ftp://x",
            "http://user:pw@host/v1",
            "http://:80/v1",
            "http://host:99999/v1",
            "http://host/v1?x=1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("local-ollama_2").is_ok());
        for bad in ["", "builtin", "../x", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
