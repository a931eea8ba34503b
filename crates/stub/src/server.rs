//! The HTTP edge: accepting connections, recording requests, and turning
//! answers and faults into bytes on the wire.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::conversation::{Conversation, Invalid, decide};
use crate::{Fault, Received, StubConfig, anthropic, openai};

/// A running stub server. It stops accepting and closes its connections when
/// dropped.
pub struct Stub {
    addr: SocketAddr,
    state: Arc<State>,
    // Never sent on: dropping it is the shutdown signal.
    _shutdown: watch::Sender<()>,
}

impl Stub {
    /// Starts serving on `127.0.0.1` at a free port, on the current Tokio
    /// runtime.
    pub async fn start(config: StubConfig) -> io::Result<Stub> {
        Stub::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts serving on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr, config: StubConfig) -> io::Result<Stub> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            log: Mutex::default(),
            faults: Mutex::default(),
            seq: AtomicU64::new(0),
        });
        let (shutdown, stopped) = watch::channel(());
        tokio::spawn(serve(listener, Arc::clone(&state), stopped));
        Ok(Stub {
            addr,
            state,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL both APIs' clients expect.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, faulted ones and `GET`s included, in arrival
    /// order.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.state.log).clone()
    }

    /// Queues faults: the next completion requests get them, one each, in
    /// order; then normal service resumes. `GET` requests take none.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.state.faults).extend(faults);
    }
}

struct State {
    config: StubConfig,
    log: Mutex<Vec<Received>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Numbers completion responses, for their ids.
    seq: AtomicU64,
}

impl State {
    fn record(&self, received: Received) {
        let mut log = lock(&self.log);
        // Requests are recorded once their body is in, which a slow upload can
        // delay past a later request's: keep the log in order of arrival.
        let at = log.partition_point(|earlier| earlier.at <= received.at);
        log.insert(at, received);
    }
}

/// A poisoned lock only means a handler panicked; the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        // Slow bodies must leave in the chunks they were written in.
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

type Response = hyper::Response<Body>;

/// Returned by a handler to make hyper close the connection without writing
/// a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault: drop the connection")
    }
}

impl std::error::Error for DropConnection {}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    OpenAi,
    Anthropic,
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response, DropConnection> {
    let at = Instant::now();
    let (parts, incoming) = request.into_parts();
    let bytes = incoming
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = parts.uri.path();
    state.record(Received {
        at,
        method: parts.method.to_string(),
        path: path.to_owned(),
        headers,
        body: body.clone(),
    });

    let api = match (&parts.method, path) {
        (&Method::POST, "/v1/chat/completions") => Api::OpenAi,
        (&Method::POST, "/v1/messages") => Api::Anthropic,
        (&Method::GET, "/health") => {
            return Ok(full(
                StatusCode::OK,
                "text/plain",
                Bytes::from_static(b"ok"),
            ));
        }
        (&Method::GET, "/v1/models") => {
            return Ok(
                match unauthorized(&state.config, Api::OpenAi, &parts.headers) {
                    Some(status_and_body) => json(status_and_body),
                    None => json((StatusCode::OK, openai::models())),
                },
            );
        }
        (_, "/health" | "/v1/models" | "/v1/chat/completions" | "/v1/messages") => {
            return Ok(json(api_error(Api::OpenAi, 405, "Method not allowed")));
        }
        _ => {
            return Ok(json(api_error(
                Api::OpenAi,
                404,
                &format!("Unknown path {path}"),
            )));
        }
    };

    sleep_until(at + state.config.latency).await;
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let queued = lock(&state.faults).pop_front();
    let (normal, rule_fault) = answer(&state.config, api, &parts.headers, &body, seq);
    match queued.or(rule_fault) {
        None => Ok(json_text(normal)),
        Some(fault) => inject(fault, api, &parts.headers, normal).await,
    }
}

/// The answer without faults (status and JSON body as sent), and the fault of
/// the rule that matched, if any. Queued faults come before the API key check,
/// rule faults only after the request is found valid.
fn answer(
    config: &StubConfig,
    api: Api,
    headers: &HeaderMap,
    body: &Value,
    seq: u64,
) -> ((StatusCode, String), Option<Fault>) {
    let text = |(status, body): (StatusCode, Value)| (status, body.to_string());
    if let Some(status_and_body) = unauthorized(config, api, headers) {
        return (text(status_and_body), None);
    }
    if api == Api::Anthropic && !headers.contains_key("anthropic-version") {
        return (
            text(api_error(api, 400, "anthropic-version: header is required")),
            None,
        );
    }
    let parsed = match api {
        Api::OpenAi => openai::parse(body),
        Api::Anthropic => anthropic::parse(body),
    };
    let conversation: Conversation = match parsed {
        Ok(conversation) => Conversation {
            key: carried_key(api, headers).map(str::to_owned),
            ..conversation
        },
        Err(invalid) => {
            return (
                text((StatusCode::BAD_REQUEST, invalid_body(api, &invalid))),
                None,
            );
        }
    };
    let decision = decide(config, &conversation);
    let usage = decision.usage.as_ref();
    let body = match api {
        Api::OpenAi => openai::response(
            seq,
            unix_now(),
            &conversation.model,
            &decision.answer,
            usage,
        ),
        Api::Anthropic => anthropic::response(seq, &conversation.model, &decision.answer, usage),
    };
    let mut body = body.to_string();
    if let Some(secret) = decision.escape.filter(|s| !s.is_empty()) {
        body = body.replace(&secret, &escaped(&secret));
    }
    ((StatusCode::OK, body), decision.fault)
}

/// `text` as `\u` escapes, one per UTF-16 unit: in a JSON string, the same text.
fn escaped(text: &str) -> String {
    text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
}

fn unauthorized(config: &StubConfig, api: Api, headers: &HeaderMap) -> Option<(StatusCode, Value)> {
    let expected = config.api_key.as_deref()?;
    if carried_key(api, headers) == Some(expected) {
        return None;
    }
    let message = match api {
        Api::OpenAi => "Incorrect API key provided.",
        Api::Anthropic => "invalid x-api-key",
    };
    Some(api_error(api, 401, message))
}

fn carried_key(api: Api, headers: &HeaderMap) -> Option<&str> {
    match api {
        Api::OpenAi => headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer "),
        Api::Anthropic => headers.get("x-api-key")?.to_str().ok(),
    }
}

async fn inject(
    fault: Fault,
    api: Api,
    headers: &HeaderMap,
    (status, normal): (StatusCode, String),
) -> Result<Response, DropConnection> {
    Ok(match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut response = json(api_error(api, 429, "Rate limit reached for requests."));
            let retry_after = retry_after.and_then(|value| HeaderValue::from_str(&value).ok());
            if let Some(value) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
        Fault::Status(code) => json(api_error(
            api,
            code,
            &format!("Injected fault: HTTP {code}."),
        )),
        Fault::Hang => std::future::pending().await,
        Fault::MalformedJson => {
            let html = "<html><body>502 Bad Gateway (but sent as 200)</body></html>";
            full(
                StatusCode::OK,
                "application/json",
                Bytes::from_static(html.as_bytes()),
            )
        }
        Fault::TruncatedJson => {
            let bytes = Bytes::from(normal);
            let (sender, mut response) = streamed(status, bytes.len());
            tokio::spawn(async move {
                let half = bytes.slice(..bytes.len() / 2);
                if sender.send(Ok(half)).await.is_ok() {
                    let _ = sender
                        .send(Err(io::Error::other("fault: truncated body")))
                        .await;
                }
            });
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Fault::DropConnection => return Err(DropConnection),
        Fault::SlowBody { chunk_delay } => {
            const CHUNK: usize = 16;
            let bytes = Bytes::from(normal);
            let (sender, mut response) = streamed(status, bytes.len());
            tokio::spawn(async move {
                for start in (0..bytes.len()).step_by(CHUNK) {
                    if start > 0 {
                        tokio::time::sleep(chunk_delay).await;
                    }
                    let chunk = bytes.slice(start..(start + CHUNK).min(bytes.len()));
                    if sender.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Fault::EchoKey401 => {
            let key = carried_key(api, headers).unwrap_or_default();
            let message = match api {
                Api::OpenAi => format!("Incorrect API key provided: {key}."),
                Api::Anthropic => format!("invalid x-api-key: {key}"),
            };
            json(api_error(api, 401, &message))
        }
    })
}

fn api_error(api: Api, status: u16, message: &str) -> (StatusCode, Value) {
    let body = match api {
        Api::OpenAi => openai::error(status, message),
        Api::Anthropic => anthropic::error(status, message),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn invalid_body(api: Api, invalid: &Invalid) -> Value {
    match api {
        Api::OpenAi => openai::invalid(invalid),
        Api::Anthropic => anthropic::error(400, &invalid.message),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn json((status, body): (StatusCode, Value)) -> Response {
    json_text((status, body.to_string()))
}

fn json_text((status, body): (StatusCode, String)) -> Response {
    full(status, "application/json", Bytes::from(body))
}

fn full(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Response {
    let mut response = hyper::Response::new(Body::Full(Some(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A response whose body is fed through the returned sender, announced as
/// `length` bytes long whatever is actually sent.
fn streamed(status: StatusCode, length: usize) -> (mpsc::Sender<io::Result<Bytes>>, Response) {
    let (sender, receiver) = mpsc::channel(1);
    let mut response = hyper::Response::new(Body::Streamed(receiver));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    (sender, response)
}

/// A whole body, or one fed chunk by chunk; an `Err` chunk makes hyper abort
/// the connection.
enum Body {
    Full(Option<Bytes>),
    Streamed(mpsc::Receiver<io::Result<Bytes>>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Body::Streamed(receiver) => receiver
                .poll_recv(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(bytes) => {
                http_body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Streamed(_) => http_body::SizeHint::default(),
        }
    }
}

/// Sleep until `deadline` to within a fraction of a millisecond. tokio's timer counts
/// whole milliseconds and rounds up, which would make every answer up to 1 ms late
/// (2% at 50 ms, enough to blur a benchmark against the latency limit); the last
/// stretch is slept by the OS on a blocking thread instead.
async fn sleep_until(deadline: Instant) {
    let coarse = deadline.checked_sub(Duration::from_millis(2));
    if let Some(coarse) = coarse.filter(|c| *c > Instant::now()) {
        tokio::time::sleep_until(coarse.into()).await;
    }
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stays_in_arrival_order() {
        let state = State {
            config: StubConfig::default(),
            log: Mutex::default(),
            faults: Mutex::default(),
            seq: AtomicU64::new(0),
        };
        let first = Instant::now();
        let second = first + Duration::from_millis(1);
        let received = |at, path: &str| Received {
            at,
            method: "POST".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Value::Null,
        };
        state.record(received(second, "/late"));
        state.record(received(first, "/early"));
        let paths: Vec<_> = lock(&state.log).iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, ["/early", "/late"]);
    }
}
