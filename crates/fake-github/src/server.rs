//! The HTTP edge: the server thread, connections, faults, the request log and
//! the headers every response carries.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, LINK, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::api::{self, Reply};
use crate::model::{Model, Urls};
use crate::{Fault, RequestLog, time};

/// The core rate limit every response reports.
const RATE_LIMIT: u64 = 5_000;

/// A running fake GitHub API. Dropping it stops the server and closes its
/// connections.
pub struct FakeGitHub {
    pub(crate) shared: Arc<Shared>,
    url: String,
    addr: SocketAddr,
    // Sending on it, or dropping it, stops the server.
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the handle and the server thread share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Empty, or like `/api/v3`.
    prefix: String,
    /// `x-ratelimit-reset` of ordinary responses: an hour after the start.
    reset_at: u64,
}

impl Shared {
    /// A poisoned lock only means a test panicked while holding it; the state
    /// is still whole.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct State {
    pub(crate) model: Model,
    pub(crate) faults: Vec<QueuedFault>,
    pub(crate) log: Vec<RequestLog>,
    /// Requests answered so far, faulted ones included.
    served: u64,
}

/// A fault waiting for the requests it matches.
pub(crate) struct QueuedFault {
    /// Upper case.
    pub(crate) method: String,
    pub(crate) path_contains: String,
    pub(crate) remaining: usize,
    pub(crate) fault: Fault,
}

impl State {
    /// The first queued fault matching the request, consuming one of its
    /// uses.
    fn take_fault(&mut self, method: &str, target: &str) -> Option<Fault> {
        let at = self.faults.iter().position(|queued| {
            queued.method.eq_ignore_ascii_case(method) && target.contains(&queued.path_contains)
        })?;
        let queued = &mut self.faults[at];
        queued.remaining -= 1;
        let fault = queued.fault.clone();
        if queued.remaining == 0 {
            self.faults.remove(at);
        }
        Some(fault)
    }
}

impl FakeGitHub {
    /// Starts the API at `http://127.0.0.1:PORT`, on a free port.
    pub fn start() -> FakeGitHub {
        FakeGitHub::start_with_prefix("")
    }

    /// Starts the API under `prefix`, e.g. `/api/v3` as on GitHub Enterprise
    /// Server: every route lives under it, and everything else is 404.
    pub fn start_with_prefix(prefix: &str) -> FakeGitHub {
        let prefix = prefix.trim_end_matches('/');
        let prefix = match prefix {
            "" => String::new(),
            _ if prefix.starts_with('/') => prefix.to_owned(),
            _ => format!("/{prefix}"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fake-github: build a Tokio runtime");
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("fake-github: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fake-github: make the listener non-blocking");
        let addr = listener
            .local_addr()
            .expect("fake-github: a bound listener has an address");
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener).expect("fake-github: register the listener")
        };
        let web = format!("http://{addr}");
        let url = format!("{web}{prefix}");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                model: Model::new(Urls {
                    api: url.clone(),
                    web,
                }),
                faults: Vec::new(),
                log: Vec::new(),
                served: 0,
            }),
            prefix,
            reset_at: time::wall_now() + 3_600,
        });
        let (shutdown, stopped) = oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-github".into())
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))
            .expect("fake-github: spawn the server thread");
        FakeGitHub {
            shared,
            url,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The API's base URL, prefix included, without a trailing slash: what
    /// `GITHUB_API_URL` would be.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported.
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped`; returning drops the runtime, which
/// closes the connections still open.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&shared), request));
            // A client hanging up, or a `Fault::Reset`, ends the connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without
/// answering.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault: reset the connection")
    }
}

impl std::error::Error for ResetConnection {}

/// The rate limit headers' values for one response.
struct Rate {
    remaining: u64,
    used: u64,
    reset: u64,
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ResetConnection> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let method = parts.method.as_str();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |target| target.as_str());
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

    let mut state = shared.lock();
    state.served += 1;
    let served = state.served;
    let request_id = format!("FAKE:{:04X}:{served:06X}", std::process::id() & 0xFFFF);
    let mut rate = Rate {
        remaining: RATE_LIMIT.saturating_sub(served),
        used: served.min(RATE_LIMIT),
        reset: shared.reset_at,
    };
    let mut retry_after = None;
    let mut trickle = None;
    let reply = match state.take_fault(method, target) {
        fault @ (None | Some(Fault::SlowBody { .. })) => {
            if let Some(Fault::SlowBody { byte_every_ms }) = fault {
                trickle = Some(Duration::from_millis(byte_every_ms));
            }
            api::route(
                &mut state.model,
                &shared.prefix,
                &api::Request {
                    method,
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    authorization: authorization.as_deref(),
                    body: &body,
                },
            )
        }
        Some(Fault::ValidationFailed {
            resource,
            field,
            message,
        }) => Reply::validation_failed(
            json!({
                "resource": resource,
                "code": "unprocessable",
                "field": field,
                "message": message,
            }),
            api::DOCS,
        ),
        Some(Fault::EchoAuthorization(status)) => Reply::message(
            status,
            &format!(
                "upstream refused the request carrying `Authorization: {}`",
                authorization.as_deref().unwrap_or("")
            ),
            api::DOCS,
        ),
        Some(Fault::Reset) => {
            state.log.push(RequestLog {
                method: method.to_owned(),
                path: target.to_owned(),
                status: 0,
                authorization,
            });
            return Err(ResetConnection);
        }
        Some(Fault::Status(status)) => {
            let message = match status {
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                _ => "Server Error",
            };
            Reply {
                status,
                body: Some(json!({ "message": message })),
                link: None,
            }
        }
        Some(Fault::SecondaryRateLimit { retry_after_s }) => {
            retry_after = Some(retry_after_s);
            Reply::message(
                403,
                &format!(
                    "You have exceeded a secondary rate limit. Please wait a few minutes before \
                     you try again. If you reach out to GitHub Support for help, please include \
                     the request ID {request_id}."
                ),
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            )
        }
        Some(Fault::PrimaryRateLimit { reset_in_s }) => {
            rate = Rate {
                remaining: 0,
                used: RATE_LIMIT,
                reset: time::wall_now() + reset_in_s,
            };
            Reply::message(
                403,
                "API rate limit exceeded for installation ID 1.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
            )
        }
    };
    state.log.push(RequestLog {
        method: method.to_owned(),
        path: target.to_owned(),
        status: reply.status,
        authorization,
    });
    drop(state);
    Ok(response(reply, &request_id, &rate, retry_after, trickle))
}

/// A response body: whole, or trickling ([`Fault::SlowBody`]).
type Body = Either<Full<Bytes>, Trickle>;

/// A body sent one byte at a time, `every` apart (the first at once, with the
/// headers).
struct Trickle {
    rest: Bytes,
    every: Duration,
    next: Pin<Box<Sleep>>,
}

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        if this.next.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let byte = this.rest.split_to(1);
        let at = tokio::time::Instant::now() + this.every;
        this.next.as_mut().reset(at);
        Poll::Ready(Some(Ok(Frame::data(byte))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The reply with the headers GitHub sends on every response, its body
/// trickling `trickle` apart if set. A status outside 100..=999 becomes 500.
fn response(
    reply: Reply,
    request_id: &str,
    rate: &Rate,
    retry_after: Option<u64>,
    trickle: Option<Duration>,
) -> Response<Body> {
    let body = reply
        .body
        .map_or_else(Bytes::new, |json| Bytes::from(json.to_string()));
    let body = match trickle {
        None => Either::Left(Full::new(body)),
        Some(every) => Either::Right(Trickle {
            rest: body,
            every,
            next: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-github-media-type", "github.v3; format=json".into());
    set("x-github-request-id", request_id.into());
    set("x-ratelimit-limit", RATE_LIMIT.to_string());
    set("x-ratelimit-remaining", rate.remaining.to_string());
    set("x-ratelimit-reset", rate.reset.to_string());
    set("x-ratelimit-used", rate.used.to_string());
    set("x-ratelimit-resource", "core".into());
    if let Some(link) = reply
        .link
        .and_then(|link| HeaderValue::from_str(&link).ok())
    {
        headers.insert(LINK, link);
    }
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_can_be_shared_across_tasks() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<FakeGitHub>();
    }

    #[test]
    fn faults_are_used_up_in_order() {
        let mut state = State {
            model: Model::new(Urls {
                api: String::new(),
                web: String::new(),
            }),
            faults: Vec::new(),
            log: Vec::new(),
            served: 0,
        };
        let queue = |method: &str, path_contains: &str, remaining, fault| QueuedFault {
            method: method.into(),
            path_contains: path_contains.into(),
            remaining,
            fault,
        };
        state.faults = vec![
            queue("GET", "/pulls/", 1, Fault::Status(500)),
            queue("GET", "/pulls/7", 2, Fault::Reset),
        ];
        assert_eq!(state.take_fault("POST", "/repos/o/r/pulls/7"), None);
        assert_eq!(
            state.take_fault("get", "/repos/o/r/pulls/7"),
            Some(Fault::Status(500))
        );
        assert_eq!(
            state.take_fault("GET", "/repos/o/r/pulls/7"),
            Some(Fault::Reset)
        );
        assert_eq!(state.take_fault("GET", "/repos/o/r/pulls/8"), None);
        assert_eq!(
            state.take_fault("GET", "/repos/o/r/pulls/7?x=1"),
            Some(Fault::Reset)
        );
        assert_eq!(state.take_fault("GET", "/repos/o/r/pulls/7"), None);
    }
}
