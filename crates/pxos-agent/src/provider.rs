//! Model providers: the built-in pixel model (offline, the default), any
//! OpenAI-compatible endpoint a person configured, and the replay of a
//! recorded session. Every use goes through [`Gate`], which applies the
//! model policy (refusals, prompt size, rate limit) and appends each
//! exchange to the home's exchange log (`HOME/agents/exchanges.jsonl`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{AgentConfig, Endpoint, Policy, parse_url};
use crate::error::{Error, Result};
use crate::http::Client;

pub const EXCHANGE_LOG: &str = "agents/exchanges.jsonl";

/// What a request is for (a replay answers each purpose in its recorded order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Write an artefact (code, a roadmap, a cartridge change, a plan).
    Generate,
    /// Review an artefact: `SCORE:` and `FEEDBACK:`.
    Review,
    /// A question from a person or a pixel program (`ask`, SYS_LLM).
    Ask,
    /// Propose the next VRAM roadmap.
    Propose,
    /// A map tile's conversation.
    Chat,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Generate => "generate",
            Purpose::Review => "review",
            Purpose::Ask => "ask",
            Purpose::Propose => "propose",
            Purpose::Chat => "chat",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub purpose: Purpose,
    pub messages: Vec<Message>,
    pub max_tokens: usize,
}

/// A model's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    /// The model that answered.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One exchange, as recorded with its task and in the exchange log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub time: String,
    pub purpose: Purpose,
    /// `builtin`, `openai:NAME` or `replay:FILE`.
    pub provider: String,
    pub model: String,
    pub prompt: Vec<Message>,
    pub response: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub ms: u64,
    /// Why the policy refused it (then `response` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A source of answers.
pub trait Provider {
    /// `builtin`, `openai:NAME`, `replay:FILE`.
    fn name(&self) -> String;
    fn complete(&mut self, request: &Request) -> Result<Reply>;
}

/// The committed pixellm, on the CPU, greedy (so a run repeats exactly).
pub struct Builtin {
    generator: Option<pxos_llm::Generator>,
}

impl Builtin {
    pub fn new() -> Builtin {
        Builtin { generator: None }
    }

    fn generator(&mut self) -> Result<&pxos_llm::Generator> {
        if self.generator.is_none() {
            let model = Arc::new(pxos_llm::builtin()?);
            self.generator = Some(pxos_llm::Generator::new(model)?);
        }
        Ok(self.generator.as_ref().expect("loaded above"))
    }
}

impl Default for Builtin {
    fn default() -> Builtin {
        Builtin::new()
    }
}

impl Provider for Builtin {
    fn name(&self) -> String {
        "builtin".into()
    }

    fn complete(&mut self, request: &Request) -> Result<Reply> {
        let generator = self.generator()?;
        let messages: Vec<pxos_llm::chat::Message> = request
            .messages
            .iter()
            .map(|m| pxos_llm::chat::Message::new(m.role.clone(), m.content.clone()))
            .collect();
        let prompt = pxos_llm::chat::plain(&messages);
        let sampling = pxos_llm::Sampling {
            temperature: 0.0,
            ..pxos_llm::Sampling::default()
        };
        let generated = generator.generate(
            &prompt,
            request.max_tokens,
            &sampling,
            &["\nuser:".to_string(), "\nsystem:".to_string()],
            &mut |_| std::ops::ControlFlow::Continue(()),
        )?;
        Ok(Reply {
            text: generated.text.trim().to_string(),
            model: generator.name.clone(),
            prompt_tokens: generated.prompt_tokens as u64,
            completion_tokens: generated.completion_tokens as u64,
        })
    }
}

/// An OpenAI-compatible endpoint, over HTTP, every request in the network log.
pub struct OpenAi {
    pub name: String,
    pub endpoint: Endpoint,
    log: pxos_remote::netlog::NetLog,
}

impl OpenAi {
    pub fn new(home: &Path, name: &str, endpoint: Endpoint) -> Result<OpenAi> {
        parse_url(&endpoint.url)?;
        Ok(OpenAi {
            name: name.into(),
            endpoint,
            log: pxos_remote::netlog::NetLog::open(home)?,
        })
    }

    fn client(&self) -> Result<Client<'_>> {
        Ok(Client {
            remote: format!("llm:{}", self.name),
            url: parse_url(&self.endpoint.url)?,
            timeout: Duration::from_secs(self.endpoint.timeout_secs.max(1)),
            log: &self.log,
        })
    }

    fn key(&self) -> Result<Option<String>> {
        match &self.endpoint.api_key_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                Error::usage(format!(
                    "endpoint {} takes its API key from ${var}, which is not set",
                    self.name
                ))
            }),
        }
    }

    /// The model ids the endpoint lists (`GET /models`), for `pxos agents`.
    pub fn models(&self) -> Result<Vec<String>> {
        let key = self.key()?;
        let response = self
            .client()?
            .send("GET", "/models", None, key.as_deref())?;
        let value = json_body(&self.name, &response)?;
        Ok(value["data"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn json_body(name: &str, response: &crate::http::Response) -> Result<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_slice(&response.body).map_err(|_| {
        Error::network(format!(
            "endpoint {name} answered HTTP {} with a body that is not JSON",
            response.status
        ))
    })?;
    if !(200..300).contains(&response.status) {
        let message = value["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        return Err(Error::network(format!(
            "endpoint {name} answered HTTP {}: {message}",
            response.status
        )));
    }
    Ok(value)
}

impl Provider for OpenAi {
    fn name(&self) -> String {
        format!("openai:{}", self.name)
    }

    fn complete(&mut self, request: &Request) -> Result<Reply> {
        let body = serde_json::json!({
            "model": self.endpoint.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "stream": false,
        });
        let key = self.key()?;
        let response = self.client()?.send(
            "POST",
            "/chat/completions",
            Some(body.to_string().as_bytes()),
            key.as_deref(),
        )?;
        let value = json_body(&self.name, &response)?;
        let text = value["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| {
                Error::network(format!(
                    "endpoint {}: the answer has no choices[0].message.content",
                    self.name
                ))
            })?;
        Ok(Reply {
            text: text.to_string(),
            model: value["model"]
                .as_str()
                .unwrap_or(&self.endpoint.model)
                .to_string(),
            prompt_tokens: value["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: value["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        })
    }
}

/// Answers from a recorded session, in order: the n-th request gets the
/// n-th recorded answer, and a request of another purpose than the one
/// recorded there is an error (the run went another way than the recording).
pub struct Replay {
    pub file: PathBuf,
    exchanges: Vec<Exchange>,
    next: usize,
}

impl Replay {
    pub fn new(file: &Path, exchanges: Vec<Exchange>) -> Replay {
        Replay {
            file: file.to_path_buf(),
            exchanges,
            next: 0,
        }
    }

    /// A session file (`pxos coach` writes them) or a JSON list of exchanges.
    pub fn open(file: &Path) -> Result<Replay> {
        let bytes = std::fs::read(file).map_err(|err| Error::io(err, file))?;
        let exchanges = match serde_json::from_slice::<crate::coach::SessionRecord>(&bytes) {
            Ok(session) => session.exchanges,
            Err(first) => serde_json::from_slice::<Vec<Exchange>>(&bytes).map_err(|_| {
                Error::bad_input(format!(
                    "{}: not a recorded coaching session: {first}",
                    file.display()
                ))
            })?,
        };
        Ok(Replay::new(file, exchanges))
    }

    pub fn remaining(&self) -> usize {
        self.exchanges.len() - self.next
    }
}

impl Provider for Replay {
    fn name(&self) -> String {
        format!("replay:{}", self.file.display())
    }

    fn complete(&mut self, request: &Request) -> Result<Reply> {
        let Some(recorded) = self.exchanges.get(self.next) else {
            return Err(Error::bad_input(format!(
                "{}: the recording has no answer left for request {} ({})",
                self.file.display(),
                self.next + 1,
                request.purpose.name()
            )));
        };
        if recorded.purpose != request.purpose {
            return Err(Error::bad_input(format!(
                "{}: request {} is a {} request, the recording has a {} answer there",
                self.file.display(),
                self.next + 1,
                request.purpose.name(),
                recorded.purpose.name()
            )));
        }
        self.next += 1;
        Ok(Reply {
            text: recorded.response.clone(),
            model: recorded.model.clone(),
            prompt_tokens: recorded.prompt_tokens,
            completion_tokens: recorded.completion_tokens,
        })
    }
}

/// Which provider: `builtin`, an endpoint's name, or `replay:FILE`.
pub fn open(home: &Path, config: &AgentConfig, spec: Option<&str>) -> Result<Box<dyn Provider>> {
    let spec = spec.unwrap_or(&config.default);
    if spec == "builtin" {
        return Ok(Box::new(Builtin::new()));
    }
    if let Some(file) = spec.strip_prefix("replay:") {
        return Ok(Box::new(Replay::open(Path::new(file))?));
    }
    let name = spec.strip_prefix("openai:").unwrap_or(spec);
    match config.endpoints.get(name) {
        Some(endpoint) => Ok(Box::new(OpenAi::new(home, name, endpoint.clone())?)),
        None => Err(Error::usage(format!(
            "no provider {spec:?}: use builtin, replay:FILE, or an endpoint added with `pxos agents add` ({})",
            if config.endpoints.is_empty() {
                "none added yet".to_string()
            } else {
                config
                    .endpoints
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))),
    }
}

/// A provider behind the model policy, recording every exchange.
pub struct Gate {
    inner: Box<dyn Provider>,
    policy: Policy,
    log: Option<PathBuf>,
    /// This gate's exchanges, in order (the caller saves them with its task).
    pub exchanges: Vec<Exchange>,
    recent: Vec<Instant>,
}

impl Gate {
    /// `home`: where the exchange log is (`None`: not logged, for benchmarks).
    pub fn new(inner: Box<dyn Provider>, policy: Policy, home: Option<&Path>) -> Gate {
        Gate {
            inner,
            policy,
            log: home.map(|h| h.join(EXCHANGE_LOG)),
            exchanges: Vec::new(),
            recent: Vec::new(),
        }
    }

    pub fn provider_name(&self) -> String {
        self.inner.name()
    }

    /// Why the policy refuses `request`, if it does.
    fn refusal(&mut self, request: &Request) -> Option<String> {
        let size: usize = request.messages.iter().map(|m| m.content.len()).sum();
        if size > self.policy.max_prompt_bytes {
            return Some(format!(
                "the prompt is {size} bytes; the policy allows {}",
                self.policy.max_prompt_bytes
            ));
        }
        // Only what a person or program asked is screened; the system's own
        // instructions are not.
        for message in request.messages.iter().filter(|m| m.role == "user") {
            let lower = message.content.to_lowercase();
            for phrase in &self.policy.refuse {
                if !phrase.is_empty() && lower.contains(&phrase.to_lowercase()) {
                    return Some(format!(
                        "the prompt contains {phrase:?}, which the policy refuses"
                    ));
                }
            }
        }
        let now = Instant::now();
        self.recent
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        let limit = self.policy.max_requests_per_minute as usize;
        if limit > 0 && self.recent.len() >= limit {
            return Some(format!(
                "{} requests in the last minute; the policy allows {limit}",
                self.recent.len()
            ));
        }
        None
    }

    pub fn complete(&mut self, request: &Request) -> Result<Reply> {
        let started = Instant::now();
        let refused = self.refusal(request);
        let result = match &refused {
            Some(why) => Err(Error::refused(format!(
                "the model policy refused this request: {why}"
            ))),
            None => {
                self.recent.push(Instant::now());
                self.inner.complete(request)
            }
        };
        let (response, model, prompt_tokens, completion_tokens) = match &result {
            Ok(reply) => (
                reply.text.clone(),
                reply.model.clone(),
                reply.prompt_tokens,
                reply.completion_tokens,
            ),
            Err(_) if refused.is_some() => (String::new(), String::new(), 0, 0),
            Err(_) => return result,
        };
        let exchange = Exchange {
            time: pxos_fs::time::now_rfc3339(),
            purpose: request.purpose,
            provider: self.inner.name(),
            model,
            prompt: request.messages.clone(),
            response,
            prompt_tokens,
            completion_tokens,
            ms: started.elapsed().as_millis() as u64,
            refused,
        };
        if let Some(path) = &self.log {
            append_exchange(path, &exchange)?;
        }
        self.exchanges.push(exchange);
        result
    }
}

/// Appends one exchange to the exchange log (one write per line).
fn append_exchange(path: &Path, exchange: &Exchange) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("the log has a folder");
    std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
    let mut line = serde_json::to_vec(exchange).expect("exchanges serialize");
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(&line))
        .map_err(|err| Error::io(err, path))
}

/// The last `n` exchanges, oldest first, read from the end of the log: the
/// cost follows `n`, not the log's length (the view polls this).
pub fn recent_exchanges(home: &Path, n: usize) -> Result<Vec<Exchange>> {
    use std::io::{Read, Seek, SeekFrom};
    let path = home.join(EXCHANGE_LOG);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(err, &path)),
    };
    let len = file.metadata().map_err(|err| Error::io(err, &path))?.len();
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))
            .map_err(|err| Error::io(err, &path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|err| Error::io(err, &path))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        if lines.len() >= n || start == 0 {
            let from = lines.len().saturating_sub(n);
            return lines[from..]
                .iter()
                .map(|line| {
                    serde_json::from_str(line).map_err(|err| {
                        Error::bad_input(format!(
                            "{}: a damaged line near its end: {err}",
                            path.display()
                        ))
                    })
                })
                .collect();
        }
        window *= 4;
    }
}

/// The exchange log, oldest first (`pxos agents log`).
pub fn read_exchanges(home: &Path) -> Result<Vec<Exchange>> {
    let path = home.join(EXCHANGE_LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(err, &path)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|err| {
                Error::bad_input(format!("{} line {}: {err}", path.display(), n + 1))
            })
        })
        .collect()
}
