//! `hartlm serve`: an OpenAI-compatible HTTP server (axum on tokio) in front of one engine
//! thread that decodes every busy slot together, one batched evaluation per step.
//!
//! Requests become jobs in a bounded queue (full: 503 with Retry-After); a free slot admits the
//! next job at the next step (continuous batching). A job whose client went away is dropped,
//! queued or running. Handlers never touch the context: they tokenize, queue and relay events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::cli::{Defaults, ServeArgs, open, refuse};
use crate::commands::{chat_template, chat_tokens, context_params, note_gpu_layers};
use crate::engine::{Context, Engine, Model};
use crate::sampler::{Sampler, SamplerConfig};
use crate::stream::StreamDecoder;
use crate::template::{ChatTemplate, Message};
use crate::tools::{self, Syntax};

/// What a job sends back to its request.
#[derive(Debug)]
pub enum Event {
    Text(String),
    Done { finish_reason: &'static str, prompt_tokens: usize, completion_tokens: usize },
    Error(String),
}

/// One request's generation.
pub struct Job {
    pub tokens: Vec<u32>,
    pub sampling: SamplerConfig,
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    pub events: UnboundedSender<Event>,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: AtomicU64,
    rejected: AtomicU64,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    busy_slots: AtomicUsize,
    queued: AtomicUsize,
}

struct App {
    model: Arc<Model>,
    model_id: String,
    template: ChatTemplate,
    /// How the template's model writes tool calls; None: requests with tools are refused.
    tool_syntax: Option<Syntax>,
    jobs: SyncSender<Job>,
    metrics: Arc<Metrics>,
    api_key: Option<String>,
    slots: usize,
    slot_ctx: usize,
    default_max_tokens: Option<usize>,
}

pub fn command(engine: &Engine, args: ServeArgs, defaults: &Defaults) -> Result<()> {
    note_gpu_layers(args.n_gpu_layers.as_deref());
    if args.parallel == 0 || args.parallel > 256 {
        return refuse(format!("-np {}: use 1 to 256 slots", args.parallel));
    }
    let api_key = match &args.api_key_file {
        Some(f) => {
            let text = hartlm_abi::files::read_text_capped(f, 4096)
                .with_context(|| format!("--api-key-file {}", f.display()))?;
            let key = text.lines().next().unwrap_or("").trim().to_string();
            if key.is_empty() {
                return refuse(format!("--api-key-file {}: the first line is empty", f.display()));
            }
            Some(key)
        }
        None => args.api_key.clone().filter(|k| !k.is_empty()),
    };
    let model = Arc::new(open(engine, &args.model.model, false)?);
    let c = model.config()?.clone();
    model.tokenizer().map_err(|e| anyhow::anyhow!("{}: {e}", args.model.model.display()))?;
    let template = chat_template(&model, args.chat_template_file.as_deref())?;
    let tool_syntax = template.tool_syntax;
    // -c is the total, shared evenly by the slots (as llama-server does); by default each slot
    // gets the model's context, at most 4096.
    let mut eval = args.eval.clone();
    let per_slot = match eval.ctx {
        Some(total) => total / args.parallel,
        None => c.n_ctx_train.min(4096),
    };
    if per_slot < 8 {
        return refuse(format!("-c gives each of {} slots {per_slot} tokens; raise -c", args.parallel));
    }
    eval.ctx = Some(per_slot);
    let params = context_params(&eval, defaults, c.n_ctx_train, 0, args.parallel)?;
    let model_id = args.alias.clone().unwrap_or_else(|| {
        args.model.model.file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned())
    });
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(args.queue.max(1));
    let metrics = Arc::new(Metrics::default());
    let app = Arc::new(App {
        model: model.clone(),
        model_id,
        template,
        tool_syntax,
        jobs,
        metrics: metrics.clone(),
        api_key,
        slots: args.parallel,
        slot_ctx: per_slot,
        default_max_tokens: usize::try_from(args.n_predict).ok(),
    });
    if args.verbose {
        eprintln!("hartlm serve: chat template: {}", app.template.source);
    }
    let addr: SocketAddr = format!("{}:{}", args.host, args.port).parse().map_err(|_| {
        crate::cli::Refused(format!("--host {} --port {}: not an address to listen on", args.host, args.port))
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let engine_model = model.clone();
    let engine_metrics = metrics.clone();
    // The engine thread owns the context; the server listens only once it exists (a cache
    // that cannot be allocated ends the command instead of leaving a server that never answers).
    let (ready, created) = std::sync::mpsc::channel::<Result<(), crate::engine::EngineError>>();
    let engine_thread = std::thread::Builder::new()
        .name("hartlm-engine".into())
        .spawn(move || match engine_model.context(params) {
            Ok(ctx) => {
                let _ = ready.send(Ok(()));
                run_slots(ctx, per_slot, queue, &engine_metrics);
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        })
        .context("starting the engine thread")?;
    match created.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => anyhow::bail!("the engine thread ended before creating its context"),
    }
    eprintln!(
        "hartlm serve: listening on http://{bound} ({} slots of {per_slot} tokens, {}){}",
        args.parallel,
        app.model_id,
        if app.api_key.is_some() { ", API key required" } else { "" }
    );
    let router = router(app.clone(), args.max_body);
    let served = runtime.block_on(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    // Closing the queue ends the engine thread once its slots finish.
    drop(app);
    drop(runtime);
    served.context("serving")?;
    engine_thread.join().map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    Ok(())
}

fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/apply-template", post(apply_template))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// An OpenAI-style error response.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = match status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable_error",
        s if s.is_client_error() => "invalid_request_error",
        _ => "server_error",
    };
    let body = json!({"error": {"message": message.into(), "type": kind, "code": status.as_u16()}});
    (status, Json(body)).into_response()
}

/// The refusal of a request without the server's bearer key, if it lacks it (the key is
/// compared in constant time).
fn unauthorized(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(key) = &app.api_key else { return None };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == key.len()
        && given.bytes().zip(key.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    (!same)
        .then(|| error(StatusCode::UNAUTHORIZED, "invalid or missing API key (Authorization: Bearer <key>)"))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let m = &app.metrics;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let text = format!(
        "# HELP hartlm_requests_total Completion requests accepted.\n# TYPE hartlm_requests_total counter\nhartlm_requests_total {}\n\
         # HELP hartlm_requests_rejected_total Requests refused because the queue was full.\n# TYPE hartlm_requests_rejected_total counter\nhartlm_requests_rejected_total {}\n\
         # HELP hartlm_prompt_tokens_total Prompt tokens evaluated.\n# TYPE hartlm_prompt_tokens_total counter\nhartlm_prompt_tokens_total {}\n\
         # HELP hartlm_tokens_generated_total Tokens generated.\n# TYPE hartlm_tokens_generated_total counter\nhartlm_tokens_generated_total {}\n\
         # HELP hartlm_slots_busy Slots generating now.\n# TYPE hartlm_slots_busy gauge\nhartlm_slots_busy {}\n\
         # HELP hartlm_slots_total Slots.\n# TYPE hartlm_slots_total gauge\nhartlm_slots_total {}\n\
         # HELP hartlm_queue_depth Requests waiting for a slot.\n# TYPE hartlm_queue_depth gauge\nhartlm_queue_depth {}\n",
        load(&m.requests),
        load(&m.rejected),
        load(&m.prompt_tokens),
        load(&m.generated_tokens),
        m.busy_slots.load(Ordering::Relaxed),
        app.slots,
        m.queued.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&app, &headers) {
        return r;
    }
    Json(json!({"object": "list", "data": [{"id": app.model_id, "object": "model", "created": now(), "owned_by": "hartlm"}]}))
        .into_response()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `stop`: a string or a list of them.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Stop {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Stop {
    fn list(self) -> Vec<String> {
        match self {
            Stop::None => vec![],
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    }
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The request fields both endpoints share.
#[derive(Deserialize)]
struct Common {
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    stop: Stop,
}

#[derive(Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    /// `[{"type": "function", "function": {"name", "description", "parameters"}}]`.
    #[serde(default)]
    tools: Vec<Value>,
    /// "auto" (the default) or "none".
    tool_choice: Option<Value>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Content,
    tool_calls: Option<Vec<Value>>,
    tool_call_id: Option<String>,
    name: Option<String>,
}

/// Message content: a string, or text parts (null or absent: empty).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Content {
    #[default]
    Empty,
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

impl Content {
    fn text(self) -> Result<String, String> {
        match self {
            Content::Empty => Ok(String::new()),
            Content::Text(t) => Ok(t),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|p| {
                    if p.kind == "text" {
                        Ok(p.text)
                    } else {
                        Err(format!("content part type `{}` is not supported (text is)", p.kind))
                    }
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct CompletionRequest {
    prompt: PromptField,
    #[serde(flatten)]
    common: Common,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
}

/// Parses a JSON body; the error is a 400's message.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("the request body is not a valid request: {e}"))
}

async fn chat_completions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match chat_request(&app, &headers, &body) {
        Ok((req, text, calls)) => {
            let tokens = chat_tokens(&app.model, &text);
            respond(app, tokens, req.common, Kind::Chat { calls }).await
        }
        Err(r) => *r,
    }
}

/// llama-server's `/apply-template`: the prompt a chat request renders to, without generating.
async fn apply_template(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match chat_request(&app, &headers, &body) {
        Ok((_, prompt, _)) => Json(json!({ "prompt": prompt })).into_response(),
        Err(r) => *r,
    }
}

/// An authorized chat request, its prompt text and the call syntax to parse its reply with;
/// or the error response.
fn chat_request(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(ChatRequest, String, Option<Syntax>), Box<Response>> {
    if let Some(r) = unauthorized(app, headers) {
        return Err(Box::new(r));
    }
    let bad = |e: String| Box::new(error(StatusCode::BAD_REQUEST, e));
    let mut req: ChatRequest = parse_body(body).map_err(bad)?;
    let (text, calls) = chat_prompt(app, &mut req).map_err(bad)?;
    Ok((req, text, calls))
}

/// A chat request's prompt text (its messages and tools through the chat template), and the
/// call syntax to parse the reply with when tools are offered.
fn chat_prompt(app: &App, req: &mut ChatRequest) -> Result<(String, Option<Syntax>), String> {
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in std::mem::take(&mut req.messages) {
        let mut message = Message::new(&m.role, &m.content.text()?);
        message.tool_calls = m.tool_calls.map(|calls| calls.iter().map(tools::call_for_template).collect());
        (message.tool_call_id, message.name) = (m.tool_call_id, m.name);
        messages.push(message);
    }
    if messages.is_empty() {
        return Err("messages must hold at least one message".into());
    }
    let offered = match req.tool_choice.as_ref() {
        None => true,
        Some(Value::String(c)) if c == "auto" => true,
        Some(Value::String(c)) if c == "none" => false,
        Some(other) => {
            return Err(format!(
                "tool_choice {other} is not supported: hartlm has no constrained decoding to force a call; use \"auto\" or \"none\""
            ));
        }
    };
    for t in &req.tools {
        if t.get("type").and_then(Value::as_str) != Some("function")
            || t.pointer("/function/name").and_then(Value::as_str).is_none()
        {
            return Err(format!(
                "tools: {t} is not {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
            ));
        }
    }
    let mut extra = serde_json::Map::new();
    let calls = if offered && !req.tools.is_empty() {
        if app.tool_syntax.is_none() {
            return Err(
                "this model's chat template describes no tool calls; send the request without tools".into()
            );
        }
        extra.insert("tools".into(), Value::Array(std::mem::take(&mut req.tools)));
        app.tool_syntax
    } else {
        None
    };
    Ok((app.template.render(&messages, true, &extra)?, calls))
}

async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = unauthorized(&app, &headers) {
        return r;
    }
    let req: CompletionRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let prompt = match req.prompt {
        PromptField::One(p) => p,
        PromptField::Many(mut v) if v.len() == 1 => v.remove(0),
        PromptField::Many(_) => return error(StatusCode::BAD_REQUEST, "give one prompt per request"),
    };
    let tokens = app.model.tokenize(&prompt, true, true);
    respond(app, tokens, req.common, Kind::Completion).await
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// With the syntax of the calls to look for when the request offered tools.
    Chat {
        calls: Option<Syntax>,
    },
    Completion,
}

fn sampling(c: &Common) -> Result<SamplerConfig, String> {
    let d = SamplerConfig::default();
    let s = SamplerConfig {
        temp: c.temperature.unwrap_or(d.temp),
        top_k: c.top_k.unwrap_or(d.top_k),
        top_p: c.top_p.unwrap_or(d.top_p),
        min_p: c.min_p.unwrap_or(d.min_p),
        repeat_penalty: 1.0,
        repeat_last_n: 0,
        seed: c.seed.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        }),
    };
    crate::sampler::check(&s).map(|()| s).map_err(|e| {
        e.replace("--temp", "temperature").replace("--top-p", "top_p").replace("--min-p", "min_p")
    })
}

/// Queues the job and answers: a stream of server-sent events, or one JSON body.
async fn respond(app: Arc<App>, tokens: Vec<u32>, common: Common, kind: Kind) -> Response {
    if tokens.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the prompt produced no tokens");
    }
    if tokens.len() >= app.slot_ctx {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "the prompt is {} tokens, a slot holds {}; shorten it or raise -c",
                tokens.len(),
                app.slot_ctx
            ),
        );
    }
    let sampling = match sampling(&common) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (events, mut rx) = unbounded_channel();
    let prompt_tokens = tokens.len();
    let job = Job {
        tokens,
        sampling,
        max_tokens: common.max_completion_tokens.or(common.max_tokens).or(app.default_max_tokens),
        stop: common.stop.list(),
        events,
    };
    let metrics = &app.metrics;
    metrics.queued.fetch_add(1, Ordering::Relaxed);
    match app.jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            metrics.queued.fetch_sub(1, Ordering::Relaxed);
            metrics.rejected.fetch_add(1, Ordering::Relaxed);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "every slot is busy and the queue is full; retry shortly",
            );
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
        Err(TrySendError::Disconnected(_)) => {
            metrics.queued.fetch_sub(1, Ordering::Relaxed);
            return error(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
        }
    }
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    let chat = matches!(kind, Kind::Chat { .. });
    let calls = match kind {
        Kind::Chat { calls } => calls,
        Kind::Completion => None,
    };
    let serial = next_id();
    let id = format!("{}-{serial}", if chat { "chatcmpl" } else { "cmpl" });
    let call_ids = format!("call_{serial}");
    let created = now();
    let model = app.model_id.clone();
    let object = if chat { "chat.completion" } else { "text_completion" };
    if !common.stream {
        let mut text = String::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Text(t) => text.push_str(&t),
                Event::Error(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Event::Done { finish_reason, completion_tokens, .. } => {
                    let reply = match calls {
                        Some(syntax) => tools::parse(syntax, &text),
                        None => tools::Reply { content: text, calls: Vec::new() },
                    };
                    let choice = if chat && !reply.calls.is_empty() {
                        let content = Some(reply.content).filter(|c| !c.is_empty());
                        let message = json!({"role": "assistant", "content": content,
                                             "tool_calls": tools::calls_json(&reply.calls, &call_ids)});
                        json!({"index": 0, "message": message, "finish_reason": "tool_calls"})
                    } else if chat {
                        json!({"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": finish_reason})
                    } else {
                        let text = reply.content;
                        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason})
                    };
                    return Json(json!({
                        "id": id, "object": object, "created": created, "model": model,
                        "choices": [choice],
                        "usage": usage(prompt_tokens, completion_tokens),
                    }))
                    .into_response();
                }
            }
        }
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the engine ended the request without an answer");
    }
    let include_usage = common.stream_options.is_some_and(|o| o.include_usage);
    let chunk_object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let chunk = move |choice: Value, usage: Option<Value>| {
        let mut c = json!({"id": id, "object": chunk_object, "created": created, "model": model, "choices": [choice]});
        if let Some(u) = usage {
            c["usage"] = u;
            c["choices"] = json!([]);
        }
        SseEvent::default().data(c.to_string())
    };
    let delta = move |text: Option<&str>, finish: Option<&str>, first: bool| {
        if chat {
            let mut d = json!({});
            if first {
                d["role"] = json!("assistant");
            }
            if let Some(t) = text {
                d["content"] = json!(t);
            }
            json!({"index": 0, "delta": d, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        }
    };
    // Events in order: the role (chat), text deltas, the finish, usage if asked, [DONE].
    let mut pending: VecDeque<SseEvent> = VecDeque::new();
    if chat {
        pending.push_back(chunk(delta(Some(""), None, true), None));
    }
    let scan = calls.map(tools::ToolStream::new);
    let stream = futures_util::stream::unfold(
        (rx, pending, false, scan),
        move |(mut rx, mut pending, mut done, mut scan)| {
            let chunk = chunk.clone();
            let call_ids = call_ids.clone();
            async move {
                loop {
                    if let Some(ev) = pending.pop_front() {
                        return Some((Ok::<_, std::convert::Infallible>(ev), (rx, pending, done, scan)));
                    }
                    if done {
                        return None;
                    }
                    match rx.recv().await {
                        Some(Event::Text(t)) => {
                            let t = match scan.as_mut() {
                                Some(s) => s.push(&t),
                                None => t,
                            };
                            if !t.is_empty() {
                                pending.push_back(chunk(delta(Some(&t), None, false), None));
                            }
                        }
                        Some(Event::Done { mut finish_reason, completion_tokens, .. }) => {
                            if let Some(reply) = scan.take().map(tools::ToolStream::finish) {
                                if !reply.content.is_empty() {
                                    pending.push_back(chunk(delta(Some(&reply.content), None, false), None));
                                }
                                if !reply.calls.is_empty() {
                                    // Each call whole, with its index, as OpenAI's first delta of a call.
                                    let mut calls = tools::calls_json(&reply.calls, &call_ids);
                                    for (i, c) in calls.as_array_mut().into_iter().flatten().enumerate() {
                                        c["index"] = json!(i);
                                    }
                                    let d = json!({"index": 0, "delta": {"tool_calls": calls}, "finish_reason": null});
                                    pending.push_back(chunk(d, None));
                                    finish_reason = "tool_calls";
                                }
                            }
                            pending.push_back(chunk(delta(None, Some(finish_reason), false), None));
                            if include_usage {
                                pending.push_back(chunk(
                                    json!({}),
                                    Some(usage(prompt_tokens, completion_tokens)),
                                ));
                            }
                            pending.push_back(SseEvent::default().data("[DONE]"));
                            done = true;
                        }
                        Some(Event::Error(e)) => {
                            pending.push_back(
                                SseEvent::default().data(
                                    json!({"error": {"message": e, "type": "server_error"}}).to_string(),
                                ),
                            );
                            done = true;
                        }
                        None => return None,
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn next_id() -> u64 {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU64::new(now() << 16)).fetch_add(1, Ordering::Relaxed)
}

/// Holds back generated text that may be the start of a stop string, and finds the first stop.
pub struct StopScanner {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

impl StopScanner {
    pub fn new(stops: Vec<String>) -> StopScanner {
        StopScanner { stops, text: String::new(), emitted: 0 }
    }

    /// Adds text; returns what may be sent now and whether a stop string ended the reply (the
    /// stop string itself is never sent).
    pub fn push(&mut self, s: &str) -> (String, bool) {
        self.text.push_str(s);
        let earliest =
            self.stops.iter().filter_map(|stop| self.text[self.emitted..].find(stop.as_str())).min();
        if let Some(at) = earliest {
            let out = self.text[self.emitted..self.emitted + at].to_string();
            self.emitted = self.text.len();
            return (out, true);
        }
        // The longest tail that begins some stop string waits for more text.
        let tail = &self.text[self.emitted..];
        let hold = self
            .stops
            .iter()
            .flat_map(|stop| {
                (1..stop.len()).rev().filter(|&n| stop.is_char_boundary(n)).map(move |n| &stop[..n])
            })
            .filter(|prefix| tail.ends_with(prefix))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let end = self.text.len() - hold;
        let out = self.text[self.emitted..end].to_string();
        self.emitted = end;
        (out, false)
    }

    /// What was held back, at the end of the reply.
    pub fn finish(&mut self) -> String {
        let out = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        out
    }
}

/// A slot's job in progress.
struct Slot {
    job: Job,
    /// Prompt tokens not yet evaluated.
    pending: Vec<u32>,
    /// The token to evaluate at the next step (the last one sampled).
    next: Option<u32>,
    history: Vec<u32>,
    sampler: Sampler,
    generated: usize,
    decoder: StreamDecoder,
    stops: StopScanner,
}

/// Prompt tokens evaluated per step across all slots: a long prompt is split over steps so
/// the slots already generating keep their pace.
const PROMPT_BUDGET: usize = 256;

/// The engine loop: admits queued jobs into free slots, evaluates one token of every
/// generating slot and a share of the prompts in one batch per step, and sends each job's
/// text as it is made. Ends when the queue closes and every slot is done.
fn run_slots(mut ctx: Context, slot_ctx: usize, queue: Receiver<Job>, metrics: &Metrics) {
    let n = ctx.params.n_seq as usize;
    let mut slots: Vec<Option<Slot>> = (0..n).map(|_| None).collect();
    loop {
        // Admit queued jobs into free slots; wait for one only when nothing is running. A closed
        // queue with nothing running ends the loop.
        while let Some(free) = slots.iter().position(Option::is_none) {
            let job = if slots.iter().all(Option::is_none) {
                match queue.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            } else {
                match queue.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            };
            metrics.queued.fetch_sub(1, Ordering::Relaxed);
            if job.events.is_closed() {
                continue;
            }
            ctx.truncate(free as u32, 0);
            metrics.prompt_tokens.fetch_add(job.tokens.len() as u64, Ordering::Relaxed);
            slots[free] = Some(Slot {
                pending: job.tokens.clone(),
                next: None,
                history: job.tokens.clone(),
                sampler: Sampler::new(job.sampling.clone()),
                generated: 0,
                decoder: StreamDecoder::default(),
                stops: StopScanner::new(job.stop.clone()),
                job,
            });
        }
        // Clients that went away free their slots.
        for s in slots.iter_mut() {
            if s.as_ref().is_some_and(|s| s.job.events.is_closed()) {
                *s = None;
            }
        }
        metrics.busy_slots.store(slots.iter().flatten().count(), Ordering::Relaxed);
        if slots.iter().all(Option::is_none) {
            continue;
        }
        // One batch: each generating slot's last token, then prompt pieces within the budget.
        let (mut tokens, mut seqs, mut want, mut rows_of) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, s) in slots.iter_mut().enumerate() {
            if let Some(t) = s.as_mut().and_then(|s| s.next.take()) {
                tokens.push(t);
                seqs.push(i as u32);
                want.push(true);
                rows_of.push(i);
            }
        }
        let mut budget = PROMPT_BUDGET;
        for (i, s) in slots.iter_mut().enumerate() {
            let Some(s) = s.as_mut() else { continue };
            if s.pending.is_empty() || budget == 0 {
                continue;
            }
            let take = s.pending.len().min(budget);
            budget -= take;
            let last = take == s.pending.len();
            for (k, t) in s.pending.drain(..take).enumerate() {
                tokens.push(t);
                seqs.push(i as u32);
                want.push(last && k + 1 == take);
            }
            if last {
                rows_of.push(i);
            }
        }
        if let Err(e) = ctx.decode(&tokens, &seqs, &want) {
            for s in slots.iter_mut().filter_map(Option::take) {
                let _ = s.job.events.send(Event::Error(e.message.clone()));
            }
            continue;
        }
        // The wanted rows come back in batch order: generating slots first, then finished prompts.
        for (row, &i) in rows_of.iter().enumerate() {
            let Some(s) = slots[i].as_mut() else { continue };
            let token = s.sampler.sample(ctx.logits(row), &s.history);
            let model = ctx.model();
            let mut finish = None;
            let mut cut = false;
            if model.is_eog(token) {
                finish = Some("stop");
            } else {
                s.generated += 1;
                metrics.generated_tokens.fetch_add(1, Ordering::Relaxed);
                s.history.push(token);
                let text = s.decoder.push(&model.piece(token));
                let (out, hit) = s.stops.push(&text);
                if !out.is_empty() {
                    let _ = s.job.events.send(Event::Text(out));
                }
                if hit {
                    (finish, cut) = (Some("stop"), true);
                } else if s.job.max_tokens.is_some_and(|m| s.generated >= m)
                    || ctx.seq_len(i as u32) + 1 >= slot_ctx
                {
                    finish = Some("length");
                } else {
                    s.next = Some(token);
                }
            }
            if let Some(reason) = finish {
                let mut s = slots[i].take().expect("the slot is busy");
                if !cut {
                    // Text held back for a stop string that never came, and the bytes of an
                    // incomplete character.
                    let rest = s.decoder.finish();
                    let (out, hit) = s.stops.push(&rest);
                    let tail = if hit { out } else { out + &s.stops.finish() };
                    if !tail.is_empty() {
                        let _ = s.job.events.send(Event::Text(tail));
                    }
                }
                let _ = s.job.events.send(Event::Done {
                    finish_reason: reason,
                    prompt_tokens: s.job.tokens.len(),
                    completion_tokens: s.generated,
                });
            }
        }
        metrics.busy_slots.store(slots.iter().flatten().count(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_held_back_and_cut() {
        let mut s = StopScanner::new(vec!["</end>".into()]);
        assert_eq!(s.push("Hello </"), ("Hello ".to_string(), false));
        assert_eq!(s.push("en"), (String::new(), false));
        assert_eq!(s.push("d> more"), (String::new(), true));
        let mut s = StopScanner::new(vec!["ab".into()]);
        assert_eq!(s.push("xa"), ("x".to_string(), false));
        assert_eq!(s.push("c"), ("ac".to_string(), false));
        assert_eq!(s.push("a"), (String::new(), false));
        assert_eq!(s.finish(), "a");
        let mut none = StopScanner::new(vec![]);
        assert_eq!(none.push("é"), ("é".to_string(), false));
    }
}
