//! `pxos llm serve`: an OpenAI-compatible HTTP server on loopback.
//!
//! Routes: `GET /v1/models`, `POST /v1/chat/completions` and
//! `POST /v1/completions`, each with `stream: true` (server-sent events,
//! ending in `data: [DONE]`) or without. Errors use OpenAI's shape:
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! Each generation runs on a blocking thread and sends its text through a
//! channel; when the client goes away the channel closes and the generation
//! stops at its next token. A request past the limits (body size,
//! `max_tokens`, concurrent generations) is refused before any work starts.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{Error, Result};
use crate::generate::{Generated, Generator};
use crate::sample::Sampling;

/// The server's limits.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub port: u16,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Largest `max_tokens` a request may ask for (and the default).
    pub max_tokens: usize,
    /// Generations running at once; more are refused with 429.
    pub max_concurrent: usize,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            port: 8080,
            max_body: 1 << 20,
            max_tokens: 1024,
            max_concurrent: 4,
        }
    }
}

/// One line of the server's request log (printed by the caller).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RequestLog {
    pub id: String,
    pub route: &'static str,
    pub stream: bool,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: &'static str,
    pub seconds: f64,
}

struct Shared {
    generator: Generator,
    model_id: String,
    created: u64,
    options: ServeOptions,
    slots: Semaphore,
    next_id: AtomicU64,
    log: Box<dyn Fn(&RequestLog) + Send + Sync>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An OpenAI-style error response.
fn error(
    status: StatusCode,
    kind: &str,
    code: &str,
    param: Option<&str>,
    message: String,
) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
        ),
    )
        .into_response()
}

fn bad_request(param: Option<&str>, message: String) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
        param,
        message,
    )
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    content: Value,
}

/// The request fields pxOS reads; others are accepted and ignored.
#[derive(Debug, Deserialize)]
struct RequestBody {
    model: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    prompt: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u64>,
    seed: Option<u64>,
    stop: Option<Value>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<Value>,
    n: Option<u64>,
}

/// The text of a message's `content`: a string, or an array of text parts.
fn content_text(content: &Value) -> std::result::Result<String, String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => Ok(t.to_string()),
                    _ => Err("only text content parts are supported".to_string()),
                }
            })
            .collect(),
        _ => Err("content must be a string or an array of text parts".into()),
    }
}

/// The stop strings the chat template adds: a new turn by someone else.
fn chat_stops() -> Vec<String> {
    vec!["\nuser:".into(), "\nsystem:".into()]
}

struct Job {
    prompt: String,
    max_tokens: usize,
    sampling: Sampling,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
}

fn too_large(shared: &Shared) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "request_too_large",
        None,
        format!(
            "the request body is larger than {} bytes",
            shared.options.max_body
        ),
    )
}

/// Reads the body under the size limit: a declared length over it is
/// refused before a byte is read, an undeclared one as soon as it passes it.
#[allow(clippy::result_large_err)]
async fn read_body(shared: &Shared, request: Request) -> std::result::Result<Bytes, Response> {
    let max = shared.options.max_body;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(shared));
    }
    axum::body::to_bytes(request.into_body(), max)
        .await
        .map_err(|_| too_large(shared))
}

// The error is the response to send: built once per refused request, never hot.
#[allow(clippy::result_large_err)]
fn parse_job(shared: &Shared, body: Bytes, chat: bool) -> std::result::Result<Job, Response> {
    let request: RequestBody = serde_json::from_slice(&body)
        .map_err(|err| bad_request(None, format!("the body is not a valid request: {err}")))?;
    match &request.model {
        Some(model) if model != &shared.model_id => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                Some("model"),
                format!(
                    "the model {model:?} does not exist; this server has {:?}",
                    shared.model_id
                ),
            ));
        }
        None => {
            return Err(bad_request(
                Some("model"),
                "you must provide a model parameter".into(),
            ));
        }
        _ => {}
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(bad_request(Some("n"), "only n = 1 is supported".into()));
    }
    let max = shared.options.max_tokens;
    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(max as u64);
    if max_tokens == 0 || max_tokens > max as u64 {
        return Err(bad_request(
            Some("max_tokens"),
            format!("max_tokens is {max_tokens}; this server allows 1 to {max}"),
        ));
    }
    let temperature = request.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(bad_request(
            Some("temperature"),
            "temperature must be within 0 to 2".into(),
        ));
    }
    let top_p = request.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(bad_request(
            Some("top_p"),
            "top_p must be within (0, 1]".into(),
        ));
    }
    let mut stop: Vec<String> = match &request.stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad_request(Some("stop"), "stop must be strings".into()))?,
        Some(_) => {
            return Err(bad_request(
                Some("stop"),
                "stop must be a string or up to 4 strings".into(),
            ));
        }
    };
    let prompt = if chat {
        let messages = request
            .messages
            .ok_or_else(|| bad_request(Some("messages"), "messages is required".into()))?;
        if messages.is_empty() {
            return Err(bad_request(
                Some("messages"),
                "messages must not be empty".into(),
            ));
        }
        let mut turns = Vec::with_capacity(messages.len());
        for m in &messages {
            if !matches!(
                m.role.as_str(),
                "system" | "user" | "assistant" | "developer" | "tool"
            ) {
                return Err(bad_request(
                    Some("messages"),
                    format!("unknown role {:?}", m.role),
                ));
            }
            let text = content_text(&m.content).map_err(|e| bad_request(Some("messages"), e))?;
            turns.push((m.role.clone(), text));
        }
        let messages: Vec<crate::chat::Message> = turns
            .into_iter()
            .map(|(role, content)| crate::chat::Message { role, content })
            .collect();
        // A model with its own template ends turns with its own tokens; the
        // plain transcript ends where someone else speaks.
        if shared
            .generator
            .tokenizer
            .vocab()
            .is_none_or(|v| v.spec.chat_template.is_none())
        {
            stop.extend(chat_stops());
        }
        crate::chat::render(&shared.generator.tokenizer, &messages)
            .map_err(|e| bad_request(Some("messages"), e.to_string()))?
    } else {
        match request.prompt {
            Some(Value::String(s)) => s,
            Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().unwrap_or_default().to_string()
            }
            _ => {
                return Err(bad_request(
                    Some("prompt"),
                    "prompt must be a string".into(),
                ));
            }
        }
    };
    let include_usage = request
        .stream_options
        .as_ref()
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Job {
        prompt,
        max_tokens: max_tokens as usize,
        sampling: Sampling {
            temperature,
            top_k: request.top_k.unwrap_or(0) as usize,
            top_p,
            seed: request.seed.unwrap_or(0),
        },
        stop,
        stream: request.stream,
        include_usage,
    })
}

fn usage(g: &Generated) -> Value {
    json!({"prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
           "total_tokens": g.prompt_tokens + g.completion_tokens})
}

enum Piece {
    Text(String),
    Done(Result<Generated>),
}

async fn handle(shared: Arc<Shared>, request: Request, chat: bool) -> Response {
    let body = match read_body(&shared, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let job = match parse_job(&shared, body, chat) {
        Ok(job) => job,
        Err(response) => return response,
    };
    let permit = match Arc::clone(&shared).slots_owned() {
        Some(permit) => permit,
        None => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "too_many_generations",
                None,
                format!(
                    "{} generations are running; try again shortly",
                    shared.options.max_concurrent
                ),
            );
        }
    };
    let serial = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-pxos-{serial}", if chat { "chatcmpl" } else { "cmpl" });
    let (tx, rx) = mpsc::channel::<Piece>(64);
    let worker = Arc::clone(&shared);
    let stream = job.stream;
    let route = if chat {
        "/v1/chat/completions"
    } else {
        "/v1/completions"
    };
    let log_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let started = std::time::Instant::now();
        let result = worker.generator.generate(
            &job.prompt,
            job.max_tokens,
            &job.sampling,
            &job.stop,
            &mut |piece| {
                if !stream {
                    // Nobody reads pieces; stop when the client has gone.
                    return if tx.is_closed() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    };
                }
                match tx.blocking_send(Piece::Text(piece.to_string())) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            },
        );
        if let Ok(g) = &result {
            (worker.log)(&RequestLog {
                id: log_id,
                route,
                stream,
                prompt_tokens: g.prompt_tokens,
                completion_tokens: g.completion_tokens,
                finish_reason: g.finish.reason(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let _ = tx.blocking_send(Piece::Done(result));
    });
    let created = now();
    let model = shared.model_id.clone();
    if !job.stream {
        let mut rx = rx;
        let mut done = None;
        while let Some(piece) = rx.recv().await {
            if let Piece::Done(result) = piece {
                done = Some(result);
            }
        }
        return match done {
            Some(Ok(g)) => {
                let choice = if chat {
                    json!({"index": 0, "message": {"role": "assistant", "content": g.text},
                           "finish_reason": g.finish.reason(), "logprobs": null})
                } else {
                    json!({"index": 0, "text": g.text, "finish_reason": g.finish.reason(), "logprobs": null})
                };
                axum::Json(json!({"id": id, "object": if chat { "chat.completion" } else { "text_completion" },
                    "created": created, "model": model, "choices": [choice], "usage": usage(&g),
                    "system_fingerprint": null}))
                .into_response()
            }
            Some(Err(err)) => server_error(&err),
            None => server_error(&Error::bad_input("the generation ended without a result")),
        };
    }
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |delta: Value, finish: Option<&str>| -> Value {
        let choice = if chat {
            json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
        } else {
            json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")),
                   "finish_reason": finish, "logprobs": null})
        };
        json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]})
    };
    let include_usage = job.include_usage;
    let (out_tx, out_rx) =
        mpsc::channel::<std::result::Result<Event, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let mut rx = rx;
        let send = |value: Value| Event::default().data(value.to_string());
        if chat
            && out_tx
                .send(Ok(send(chunk(
                    json!({"role": "assistant", "content": ""}),
                    None,
                ))))
                .await
                .is_err()
        {
            return;
        }
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Text(text) => {
                    if out_tx
                        .send(Ok(send(chunk(json!({"content": text}), None))))
                        .await
                        .is_err()
                    {
                        // The client went away: dropping `rx` stops the generation.
                        return;
                    }
                }
                Piece::Done(Ok(g)) => {
                    let _ = out_tx
                        .send(Ok(send(chunk(json!({}), Some(g.finish.reason())))))
                        .await;
                    if include_usage {
                        let mut last = chunk(json!({}), None);
                        last["choices"] = json!([]);
                        last["usage"] = usage(&g);
                        let _ = out_tx.send(Ok(send(last))).await;
                    }
                }
                Piece::Done(Err(err)) => {
                    let value = json!({"error": {"message": err.to_string(), "type": "server_error", "param": null, "code": "generation_failed"}});
                    let _ = out_tx.send(Ok(send(value))).await;
                }
            }
        }
        let _ = out_tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Sse::new(ReceiverStream::new(out_rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn server_error(err: &Error) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "generation_failed",
        None,
        err.to_string(),
    )
}

impl Shared {
    fn slots_owned(self: Arc<Self>) -> Option<OwnedSlot> {
        let permit = self.slots.try_acquire().ok()?;
        permit.forget();
        Some(OwnedSlot(self))
    }
}

/// A running generation's place; the place frees when the generation ends.
struct OwnedSlot(Arc<Shared>);

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        self.0.slots.add_permits(1);
    }
}

/// The router, for a bound listener.
fn router(shared: Arc<Shared>) -> Router {
    let max_body = shared.options.max_body;
    let models = {
        let shared = Arc::clone(&shared);
        move || {
            let shared = Arc::clone(&shared);
            async move {
                axum::Json(
                    json!({"object": "list", "data": [{"id": shared.model_id, "object": "model",
                    "created": shared.created, "owned_by": "pxos"}]}),
                )
            }
        }
    };
    let chat = {
        let shared = Arc::clone(&shared);
        move |request: Request| handle(Arc::clone(&shared), request, true)
    };
    let complete = {
        let shared = Arc::clone(&shared);
        move |request: Request| handle(Arc::clone(&shared), request, false)
    };
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(complete))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unknown_url",
                None,
                "no such route; try /v1/models, /v1/chat/completions or /v1/completions".into(),
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(())
}

/// Serves `generator` on 127.0.0.1 until the process ends. `on_ready` gets
/// the bound address (the port may be 0: any free port); `log` gets one
/// record per finished generation.
pub fn serve(
    generator: Generator,
    options: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
    log: impl Fn(&RequestLog) + Send + Sync + 'static,
) -> Result<()> {
    if options.max_concurrent == 0 || options.max_tokens == 0 {
        return Err(Error::usage(
            "--max-concurrent and --max-tokens must be positive",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(options.max_concurrent + 2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|err| Error::io(err, std::path::Path::new("tokio runtime")))?;
    let shared = Arc::new(Shared {
        model_id: generator.name.clone(),
        generator,
        created: now(),
        slots: Semaphore::new(options.max_concurrent),
        options: options.clone(),
        next_id: AtomicU64::new(1),
        log: Box::new(log),
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|err| {
                Error::usage(format!(
                    "cannot listen on 127.0.0.1:{}: {err}",
                    options.port
                ))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|err| Error::io(err, std::path::Path::new("listener")))?;
        on_ready(addr);
        axum::serve(listener, router(shared))
            .await
            .map_err(|err| Error::io(err, std::path::Path::new("server")))
    })
}

#[cfg(test)]
mod tests {
    use crate::generate::Finish;

    #[test]
    fn the_chat_template_ends_where_the_assistant_speaks() {
        let prompt = crate::chat::plain(&[
            crate::chat::Message::new("system", "be brief"),
            crate::chat::Message::new("user", "what is pxOS?"),
        ]);
        assert_eq!(prompt, "system: be brief\nuser: what is pxOS?\nassistant:");
    }

    #[test]
    fn finish_reasons_are_openai_names() {
        assert_eq!(Finish::Stop.reason(), "stop");
        assert_eq!(Finish::Length.reason(), "length");
    }
}
