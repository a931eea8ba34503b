//! The GitHub REST API, as much of it as the action needs: the sticky comment, the
//! commit status, the pull request, its label events, team membership and repository
//! permission.
//!
//! Transport is octocrab (auth, base URI, HTTP client); every call goes through
//! [`GitHub::send`], which gives each attempt a deadline for the whole exchange (a body
//! that trickles in counts), retries what is safe to retry (5xx, connection errors,
//! timeouts, secondary and primary rate limits, honouring `Retry-After` and
//! `x-ratelimit-reset`) and turns anything else into an error that says which call
//! failed and what GitHub answered. Payloads are read into the small types below, which
//! take only the fields promptgate uses, so GitHub adding fields never breaks a run.
//! The API URL is a parameter: GitHub Enterprise Server works (`https://HOST/api/v3`).

mod model;

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use model::{Comment, IssueEvent, Label, Pull, Status, User};

use crate::retry::{Backoff, Class, Sleeper};
use crate::status::StatusState;

/// Attempts per call, the first included.
const ATTEMPTS: u32 = 4;
/// Longest wait between attempts that promptgate accepts; a longer `Retry-After` or
/// rate-limit reset fails the call instead of holding the job.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The wait after a secondary rate limit that came without `Retry-After`: GitHub asks
/// for at least a minute.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// GitHub's page size limit.
const PER_PAGE: u32 = 100;
/// Upper bound on pages read from one list: 10,000 items.
const MAX_PAGES: u32 = 100;
/// How long one attempt may take, from sending the request to the last byte of the
/// answer. GitHub itself gives up on REST requests after 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one repository.
pub struct GitHub {
    client: Octocrab,
    /// `owner/name`.
    repo: String,
    /// Waits between attempts.
    backoff: Backoff,
    /// Deadline of one attempt, answer body included.
    timeout: Duration,
    /// Scrubbed from whatever GitHub answers before it reaches a message.
    token: crate::secret::Secret,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    /// Whether sending it again after a failure that may have reached GitHub is safe.
    /// Creating a commit status is a POST, but posting the same status twice is
    /// harmless; it is marked by [`Call::idempotent`].
    fn idempotent(self) -> bool {
        self != Method::Post
    }
}

/// One API call: verb, URI (a path, or an absolute `Link` URL), and how to name it.
struct Call<'a> {
    method: Method,
    uri: &'a str,
    what: &'a str,
    idempotent: bool,
}

impl<'a> Call<'a> {
    fn new(method: Method, uri: &'a str, what: &'a str) -> Call<'a> {
        Call {
            method,
            uri,
            what,
            idempotent: method.idempotent(),
        }
    }
}

/// A failed call, kept apart from transport errors so callers can tell "not found"
/// and "not allowed" from outages.
#[derive(Debug, thiserror::Error)]
#[error("GitHub answered {status} to {what}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub what: String,
    pub message: String,
}

impl ApiError {
    /// GitHub refused the request (4xx): it was not carried out, and sending it again
    /// as it is cannot help. Rate limits are 4xx too, but [`GitHub::send`] has waited
    /// for them already.
    pub fn refused(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

/// Whether `e` is GitHub refusing the request (see [`ApiError::refused`]), as opposed to
/// a failure after which the request may or may not have been carried out.
pub fn refused(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(ApiError::refused)
}

/// One attempt that did not get a whole answer.
#[derive(Debug, thiserror::Error)]
enum Incomplete {
    #[error("no answer: {0}")]
    NoAnswer(octocrab::Error),
    #[error("reading the answer failed: {0}")]
    Body(octocrab::Error),
    #[error("no complete answer within {0:?}")]
    TimedOut(Duration),
}

impl GitHub {
    /// `api_url` is `GITHUB_API_URL` (`https://api.github.com`, or a GitHub Enterprise
    /// Server's `https://HOST/api/v3`). `timeout` bounds each attempt of a call, the
    /// answer's body included ([`DEFAULT_TIMEOUT`]).
    pub fn new(api_url: &str, token: &str, repo: &str, timeout: Duration) -> Result<GitHub> {
        // octocrab's default TLS backend needs a process-wide crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .with_context(|| format!("invalid GitHub API URL `{api_url}`"))?
            .personal_token(token.to_string())
            .set_connect_timeout(Some(timeout.min(Duration::from_secs(10))))
            // Per read; a body that trickles in is cut by `timeout` in `send`.
            .set_read_timeout(Some(timeout))
            .build()
            .context("building the GitHub client")?;
        Ok(GitHub {
            client,
            repo: repo.to_string(),
            backoff: GitHub::backoff(),
            timeout,
            token: crate::secret::Secret::new(token),
        })
    }

    /// The backoff [`GitHub::new`] gives a client: 1 s, 2 s, 4 s between the attempts,
    /// without jitter, in real time.
    pub fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: MAX_WAIT,
            jitter: false,
            sleeper: Sleeper::Tokio,
        }
    }

    /// The same client waiting between attempts as `backoff` says (a test's recording
    /// sleeper, say).
    pub fn with_retry(self, backoff: Backoff) -> GitHub {
        GitHub { backoff, ..self }
    }

    pub async fn pull_request(&self, number: u64) -> Result<Pull> {
        let path = format!("/repos/{}/pulls/{number}", self.repo);
        let what = format!("GET {path}");
        self.json(Call::new(Method::Get, &path, &what), None::<&()>)
            .await
    }

    pub async fn comments(&self, number: u64) -> Result<Vec<Comment>> {
        self.list(&format!("/repos/{}/issues/{number}/comments", self.repo))
            .await
    }

    /// Not retried once it may have reached GitHub: a second POST could make a second
    /// comment. The caller looks for the comment again instead.
    pub async fn create_comment(&self, number: u64, body: &str) -> Result<Comment> {
        let path = format!("/repos/{}/issues/{number}/comments", self.repo);
        let what = format!("POST {path}");
        self.json(
            Call::new(Method::Post, &path, &what),
            Some(&serde_json::json!({ "body": body })),
        )
        .await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment> {
        let path = format!("/repos/{}/issues/comments/{id}", self.repo);
        let what = format!("PATCH {path}");
        self.json(
            Call::new(Method::Patch, &path, &what),
            Some(&serde_json::json!({ "body": body })),
        )
        .await
    }

    /// The pull request's issue events, oldest first (labels applied and removed, with
    /// who and when).
    pub async fn issue_events(&self, number: u64) -> Result<Vec<IssueEvent>> {
        self.list(&format!("/repos/{}/issues/{number}/events", self.repo))
            .await
    }

    /// Every status posted on a commit, newest first.
    pub async fn statuses(&self, sha: &str) -> Result<Vec<Status>> {
        self.list(&format!("/repos/{}/commits/{sha}/statuses", self.repo))
            .await
    }

    pub async fn set_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<Status> {
        let path = format!("/repos/{}/statuses/{sha}", self.repo);
        let what = format!("POST {path}");
        let mut body = serde_json::json!({
            "state": state,
            "context": context,
            "description": description,
        });
        if let Some(url) = target_url {
            body["target_url"] = url.into();
        }
        let call = Call {
            idempotent: true,
            ..Call::new(Method::Post, &path, &what)
        };
        self.json(call, Some(&body)).await
    }

    /// Whether `user` is an active member of `@org/team`; an error that says what to do
    /// when the token may not read the organization's teams.
    pub async fn team_member(&self, org: &str, team: &str, user: &str) -> Result<bool> {
        let path = format!("/orgs/{org}/teams/{team}/memberships/{user}");
        let what = format!("GET {path}");
        match self
            .json::<model::Membership>(Call::new(Method::Get, &path, &what), None::<&()>)
            .await
        {
            Ok(m) => Ok(m.state == "active"),
            Err(e) => match e.downcast_ref::<ApiError>() {
                Some(api) if api.status == 404 => Ok(false),
                Some(api) if api.status == 403 || api.status == 401 => Err(anyhow::anyhow!(
                    "the token cannot read the members of @{org}/{team} ({}): give the action \
                     a token that may read organization members (a GitHub App with \
                     \"Members: read\", or a fine-grained token) or list reviewers by login",
                    api.message
                )),
                _ => Err(e),
            },
        }
    }

    /// The user's role on the repository: `admin`, `maintain`, `write`, `triage`,
    /// `read` or `none`.
    pub async fn permission(&self, user: &str) -> Result<String> {
        let path = format!("/repos/{}/collaborators/{user}/permission", self.repo);
        let what = format!("GET {path}");
        match self
            .json::<model::Permission>(Call::new(Method::Get, &path, &what), None::<&()>)
            .await
        {
            // Custom repository roles have their own names; their base permission is
            // in `permission`.
            Ok(p) => Ok(match p.role_name {
                Some(r)
                    if ["admin", "maintain", "write", "triage", "read"].contains(&r.as_str()) =>
                {
                    r
                }
                _ => p.permission,
            }),
            Err(e) => match e.downcast_ref::<ApiError>() {
                Some(api) if api.status == 404 => Ok("none".into()),
                Some(api) if api.status == 403 || api.status == 401 => Err(anyhow::anyhow!(
                    "the token cannot read repository permissions ({})",
                    api.message
                )),
                _ => Err(e),
            },
        }
    }

    /// Every page of a list endpoint, following `Link: <…>; rel="next"`.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let what = format!("GET {path}");
        let mut items = Vec::new();
        let mut next = Some(format!("{path}?per_page={PER_PAGE}"));
        let mut pages = 0;
        while let Some(uri) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                bail!("{what}: more than {MAX_PAGES} pages; refusing to read further");
            }
            let (body, link) = self
                .send(Call::new(Method::Get, &uri, &what), None::<&()>)
                .await?;
            let page: Vec<T> = serde_json::from_str(&body)
                .with_context(|| format!("{what}: unexpected answer from GitHub"))?;
            items.extend(page);
            next = link.as_deref().and_then(next_link);
        }
        Ok(items)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let what = call.what.to_string();
        let (text, _) = self.send(call, body).await?;
        serde_json::from_str(&text)
            .with_context(|| format!("{what}: unexpected answer from GitHub"))
    }

    /// One call with retries. Returns the body and the `Link` header.
    async fn send(
        &self,
        call: Call<'_>,
        body: Option<&impl Serialize>,
    ) -> Result<(String, Option<String>)> {
        let Call {
            method,
            uri,
            what,
            idempotent,
        } = call;
        let attempt = |_| self.attempt(method, uri, body);
        let wait = |failure: &Failure, retry: u32| {
            let wait = self.wait(failure, retry, idempotent)?;
            tracing::warn!("{what}: {failure}; retrying in {:.1} s", wait.as_secs_f64());
            Some(wait)
        };
        match self.backoff.run(ATTEMPTS - 1, attempt, wait).await {
            Ok((answer, _)) => Ok(answer),
            Err((Failure::Incomplete(e), _)) => {
                Err(anyhow::Error::new(e).context(what.to_string()))
            }
            Err((
                Failure::Answered {
                    status, message, ..
                },
                _,
            )) => Err(ApiError {
                status,
                what: what.to_string(),
                message,
            }
            .into()),
        }
    }

    /// One attempt: the body and `Link` header of a success, or why it failed.
    async fn attempt(
        &self,
        method: Method,
        uri: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(String, Option<String>), Failure> {
        // The whole exchange, body included, under one deadline: GitHub's headers
        // can arrive in time and its body never.
        let exchange = async {
            let response = match method {
                Method::Get => self.client._get(uri).await,
                Method::Post => self.client._post(uri, body).await,
                Method::Patch => self.client._patch(uri, body).await,
            }
            .map_err(Incomplete::NoAnswer)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(Incomplete::Body)?
                .to_bytes();
            Ok((status, headers, bytes))
        };
        let (status, headers, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(Incomplete::TimedOut(self.timeout)))
            .map_err(Failure::Incomplete)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            let link = headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return Ok((text, link));
        }
        // Scrubbed before it is cut: a cut through the token would leave a piece
        // of it that no scrubber recognizes.
        let message = error_message(&self.token.scrub(&text));
        Err(Failure::Answered {
            status,
            class: crate::retry::classify(status, &headers, &message, SystemTime::now()),
            message,
        })
    }

    /// How long to wait before retry number `retry` (0-based) after `failure`, or
    /// `None` if sending the call again is unsafe, cannot help, or would wait longer
    /// than [`MAX_WAIT`].
    fn wait(&self, failure: &Failure, retry: u32, idempotent: bool) -> Option<Duration> {
        // What GitHub asked for, if anything; else the backoff's own wait.
        let asked = match failure {
            // Connection refused, reset, timed out, cut short: the request may have
            // arrived and been carried out, so only what is safe to repeat is repeated.
            Failure::Incomplete(_) if idempotent => None,
            // A rate limit means the request was refused, so even a POST may go again.
            Failure::Answered {
                class: Class::Limited { after },
                ..
            } => Some(after.unwrap_or(SECONDARY_LIMIT_WAIT.max(self.backoff.delay(retry)))),
            // A 5xx to a POST may have been carried out.
            Failure::Answered {
                class: Class::Server { after },
                ..
            } if idempotent => *after,
            _ => return None,
        };
        if asked.is_some_and(|wait| wait > MAX_WAIT) {
            return None;
        }
        Some(self.backoff.wait(retry, asked))
    }
}

/// One attempt that failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No whole answer.
    #[error("{0}")]
    Incomplete(Incomplete),
    /// GitHub answered, but not with a success.
    #[error("GitHub answered {status} ({message})")]
    Answered {
        status: u16,
        message: String,
        class: Class,
    },
}

/// GitHub's `message`, with the first validation error's text when there is one.
fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.chars().take(200).collect();
    };
    let mut message = v["message"].as_str().unwrap_or("").to_string();
    if let Some(detail) = v["errors"][0]["message"].as_str() {
        message = format!("{message}: {detail}");
    }
    message
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Waits;

    #[test]
    fn follows_only_the_next_link() {
        let link = r#"<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3")
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="prev""#), None);
    }

    /// A failure GitHub answered, classified now.
    fn answered(status: u16, headers: &[(&'static str, &str)], message: &str) -> Failure {
        let mut h = http::HeaderMap::new();
        for (name, value) in headers {
            h.insert(*name, value.parse().expect("header"));
        }
        Failure::Answered {
            status,
            message: message.into(),
            class: crate::retry::classify(status, &h, message, SystemTime::now()),
        }
    }

    #[tokio::test]
    async fn waits_as_github_asks() {
        // octocrab needs a runtime to build its client; nothing here is sent.
        let gh = GitHub::new("http://127.0.0.1:1", TOKEN, "o/r", DEFAULT_TIMEOUT).expect("client");
        let secs = Duration::from_secs;
        let wait = |f: &Failure, retry| gh.wait(f, retry, true);
        assert_eq!(wait(&answered(502, &[], "Bad Gateway"), 0), Some(secs(1)));
        assert_eq!(wait(&answered(502, &[], "Bad Gateway"), 2), Some(secs(4)));
        assert_eq!(wait(&answered(404, &[], "Not Found"), 0), None);
        assert_eq!(wait(&answered(422, &[], "Validation Failed"), 0), None);
        let secondary = "You have exceeded a secondary rate limit";
        let forbidden = "Resource not accessible by integration";
        assert_eq!(wait(&answered(403, &[], forbidden), 0), None);
        assert_eq!(wait(&answered(403, &[], secondary), 0), Some(secs(60)));
        let after3 = [("retry-after", "3")];
        assert_eq!(wait(&answered(403, &after3, secondary), 0), Some(secs(3)));
        let soon = httpdate::fmt_http_date(SystemTime::now() + secs(30));
        let by_date = wait(&answered(429, &[("retry-after", &soon)], ""), 0);
        assert!(
            by_date.is_some_and(|w| w > secs(25) && w <= secs(30)),
            "{by_date:?}"
        );
        // Longer than promptgate waits: the call fails instead.
        assert_eq!(wait(&answered(429, &[("retry-after", "61")], ""), 0), None);
        let reset = (SystemTime::now() + secs(600))
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            .to_string();
        let primary = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ];
        assert_eq!(wait(&answered(403, &primary, ""), 0), None);
        // A POST: rate limits are retried, 5xx and lost answers are not.
        let post = |f: &Failure| gh.wait(f, 0, false);
        assert_eq!(post(&answered(403, &after3, secondary)), Some(secs(3)));
        assert_eq!(post(&answered(502, &[], "Bad Gateway")), None);
        assert_eq!(
            post(&Failure::Incomplete(Incomplete::TimedOut(secs(1)))),
            None
        );
        assert_eq!(
            gh.wait(&Failure::Incomplete(Incomplete::TimedOut(secs(1))), 1, true),
            Some(secs(2))
        );
    }

    const TOKEN: &str = "ghs_secret_token_value";

    /// A server that answers every connection with `answer(request)`, bytes written
    /// `pause` apart after the first 64 (headers arrive, the body trickles); counts
    /// the requests.
    async fn raw_server(
        answer: fn(&str) -> String,
        pause: Duration,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("addr");
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = vec![0u8; 8192];
                    let n = socket.read(&mut request).await.unwrap_or(0);
                    let response = answer(&String::from_utf8_lossy(&request[..n]));
                    let (head, tail) = response.as_bytes().split_at(64.min(response.len()));
                    if socket.write_all(head).await.is_err() {
                        return;
                    }
                    for byte in tail {
                        tokio::time::sleep(pause).await;
                        if socket.write_all(&[*byte]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}"), count)
    }

    fn http(status: &str, content_type: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn answers_that_echo_the_token_are_scrubbed() {
        // A proxy in front of GitHub that repeats the request's credentials back.
        let echo = |request: &str| {
            let request = request.replace('"', "'").replace("\r\n", " ");
            http(
                "400 Bad Request",
                "application/json",
                &format!(r#"{{"message":"bad request: {request}"}}"#),
            )
        };
        let (url, _) = raw_server(echo, Duration::ZERO).await;
        let gh = GitHub::new(&url, TOKEN, "o/r", DEFAULT_TIMEOUT).expect("client");
        let err = gh.pull_request(1).await.expect_err("400");
        let text = format!("{err:#}");
        assert!(text.contains("bad request"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }

    #[tokio::test]
    async fn a_token_cut_by_the_excerpt_is_still_scrubbed() {
        // Not JSON: the message is the body's first 200 characters, and the token
        // straddles that cut. No piece of it may remain.
        let page = |request: &str| {
            let token = request
                .lines()
                .find_map(|l| l.split_once("Bearer "))
                .map_or("", |(_, t)| t.trim());
            // The token from the 193rd character on: the first 8 of it before the cut.
            let body = format!("<p>{}{token}</p>", "x".repeat(189));
            http("403 Forbidden", "text/html", &body)
        };
        let (url, _) = raw_server(page, Duration::ZERO).await;
        let gh = GitHub::new(&url, TOKEN, "o/r", DEFAULT_TIMEOUT).expect("client");
        let text = format!("{:#}", gh.pull_request(1).await.expect_err("403"));
        assert!(text.contains("xxxx"), "{text}");
        for piece in TOKEN.as_bytes().windows(6) {
            let piece = String::from_utf8_lossy(piece);
            assert!(!text.contains(piece.as_ref()), "`{piece}` in {text}");
        }
    }

    #[tokio::test]
    async fn a_body_slower_than_the_timeout_is_retried_only_when_safe() {
        use std::sync::atomic::Ordering;
        // Headers at once, then a byte every 50 ms: the answer never completes within
        // the 300 ms deadline, though bytes keep arriving (a per-read timeout would
        // wait for ever).
        let slow = |_: &str| {
            http(
                "200 OK",
                "application/json",
                &format!("[{}]", " ".repeat(400)),
            )
        };
        let (url, count) = raw_server(slow, Duration::from_millis(50)).await;
        let (sleeper, waits) = Sleeper::recording();
        let gh = GitHub::new(&url, TOKEN, "o/r", Duration::from_millis(300))
            .expect("client")
            .with_retry(Backoff {
                sleeper,
                ..GitHub::backoff()
            });
        let err = gh.comments(7).await.expect_err("times out");
        assert!(
            format!("{err:#}").contains("no complete answer within 300ms"),
            "{err:#}"
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            ATTEMPTS as usize,
            "a GET is retried"
        );
        let secs = Duration::from_secs;
        assert_eq!(waits.take(), [secs(1), secs(2), secs(4)]);
        // A POST may have been carried out: it is not sent again.
        count.store(0, Ordering::SeqCst);
        let err = gh.create_comment(7, "report").await.expect_err("times out");
        assert!(format!("{err:#}").contains("no complete answer"), "{err:#}");
        assert!(
            !refused(&err),
            "the comment may exist: the caller must look"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(waits.take().is_empty());
    }

    /// The stateful fake GitHub with pull request 7 of `o/r`, and a client of it whose
    /// waits are recorded instead of slept (the fake is a real socket: a paused clock
    /// would run the request timeouts out too).
    fn fake(timeout: Duration) -> (promptgate_fake_github::FakeGitHub, GitHub, Waits) {
        let fake = promptgate_fake_github::FakeGitHub::start();
        fake.add_repo("o/r");
        fake.add_installation_token(TOKEN, "github-actions[bot]");
        fake.open_pr(
            "o/r",
            promptgate_fake_github::PrSpec {
                number: 7,
                author: "dana".into(),
                head_sha: HEAD.into(),
                head_ref: "pr".into(),
                base_sha: "b".repeat(40),
                base_ref: "main".into(),
                ..Default::default()
            },
        );
        let (sleeper, waits) = Sleeper::recording();
        let gh = GitHub::new(&fake.url(), TOKEN, "o/r", timeout)
            .expect("client")
            .with_retry(Backoff {
                sleeper,
                ..GitHub::backoff()
            });
        (fake, gh, waits)
    }

    const HEAD: &str = "1111111111111111111111111111111111111111";

    /// The requests the fake saw for `method` on a target containing `path`.
    fn sent(fake: &promptgate_fake_github::FakeGitHub, method: &str, path: &str) -> Vec<u16> {
        fake.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path))
            .map(|r| r.status)
            .collect()
    }

    async fn pending(gh: &GitHub) -> Result<Status> {
        gh.set_status(HEAD, StatusState::Pending, "promptgate", "running", None)
            .await
    }

    #[tokio::test]
    async fn transient_failures_are_retried_after_the_backoff_or_as_github_asks() {
        use promptgate_fake_github::Fault;
        let secs = Duration::from_secs;
        let (fake, gh, waits) = fake(DEFAULT_TIMEOUT);
        fake.fail_next("GET", "/issues/7/comments", 1, Fault::Status(502));
        gh.comments(7).await.expect("retried");
        assert_eq!(sent(&fake, "GET", "/issues/7/comments"), [502, 200]);
        assert_eq!(waits.take(), [secs(1)]);

        fake.fail_next("GET", "/issues/7/events", 1, Fault::Reset);
        gh.issue_events(7).await.expect("retried");
        assert_eq!(sent(&fake, "GET", "/issues/7/events"), [0, 200]);
        assert_eq!(waits.take(), [secs(1)]);

        // A POST refused for a rate limit was not carried out: it goes again, after
        // the `Retry-After` GitHub gave.
        let limited = Fault::SecondaryRateLimit { retry_after_s: 1 };
        fake.fail_next("POST", "/statuses/", 1, limited);
        pending(&gh).await.expect("retried");
        assert_eq!(sent(&fake, "POST", "/statuses/"), [403, 201]);
        assert_eq!(waits.take(), [secs(1)]);
        assert_eq!(fake.statuses("o/r", HEAD).len(), 1);

        // The primary limit: until one second past the reset.
        let limited = Fault::PrimaryRateLimit { reset_in_s: 5 };
        fake.fail_next("GET", "/pulls/7", 1, limited);
        gh.pull_request(7).await.expect("retried");
        let waited = waits.take();
        assert!(
            waited.len() == 1 && waited[0] >= secs(5) && waited[0] <= secs(6),
            "{waited:?}"
        );
        // A limit that resets later than promptgate waits fails the call at once.
        fake.fail_next(
            "GET",
            "/pulls/7",
            1,
            Fault::PrimaryRateLimit { reset_in_s: 600 },
        );
        let err = gh.pull_request(7).await.expect_err("too long to wait");
        assert!(
            format!("{err:#}").contains("GitHub answered 403"),
            "{err:#}"
        );
        assert!(waits.take().is_empty());
    }

    #[tokio::test]
    async fn calls_that_keep_failing_fail_after_four_attempts() {
        use promptgate_fake_github::Fault;
        let secs = Duration::from_secs;
        let (fake, gh, waits) = fake(Duration::from_millis(300));
        // The status POST is safe to repeat.
        fake.fail_next("POST", "/statuses/", 4, Fault::Status(500));
        let err = pending(&gh).await.expect_err("500 every time");
        let api = err.downcast_ref::<ApiError>().expect("GitHub's answer");
        assert_eq!((api.status, api.message.as_str()), (500, "Server Error"));
        assert_eq!(sent(&fake, "POST", "/statuses/"), [500; ATTEMPTS as usize]);
        assert_eq!(waits.take(), [secs(1), secs(2), secs(4)]);

        fake.fail_next("GET", "/issues/7/events", 4, Fault::Status(502));
        let err = gh.issue_events(7).await.expect_err("502 every time");
        assert_eq!(
            err.to_string(),
            "GitHub answered 502 to GET /repos/o/r/issues/7/events: Bad Gateway"
        );
        assert_eq!(waits.take(), [secs(1), secs(2), secs(4)]);

        // Label events that never arrive whole, on every attempt.
        let slow = Fault::SlowBody {
            byte_every_ms: 10_000,
        };
        fake.fail_next("GET", "/issues/7/events", 4, slow);
        let err = gh.issue_events(7).await.expect_err("times out");
        assert_eq!(
            format!("{err:#}"),
            "GET /repos/o/r/issues/7/events: no complete answer within 300ms"
        );
        assert_eq!(sent(&fake, "GET", "/issues/7/events").len(), 8);
        assert_eq!(waits.take(), [secs(1), secs(2), secs(4)]);

        // A status POST that timed out is sent again.
        let slow = Fault::SlowBody {
            byte_every_ms: 10_000,
        };
        fake.fail_next("POST", "/statuses/", 1, slow);
        pending(&gh).await.expect("retried");
        assert_eq!(waits.take(), [secs(1)]);
    }

    #[test]
    fn error_messages_carry_the_validation_detail() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"IssueComment","code":"unprocessable","field":"data","message":"Body is too long (maximum is 65536 characters)"}]}"#;
        assert_eq!(
            error_message(body),
            "Validation Failed: Body is too long (maximum is 65536 characters)"
        );
        assert_eq!(error_message("<html>oops"), "<html>oops");
    }
}
