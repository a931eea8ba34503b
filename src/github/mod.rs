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

use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use model::{Comment, IssueEvent, Label, PullRequest, Status, User};

use crate::status::StatusState;

/// Attempts per call, the first included.
const ATTEMPTS: u32 = 4;
/// Longest wait between attempts that promptgate accepts; a longer `Retry-After` or
/// rate-limit reset fails the call instead of holding the job.
const MAX_WAIT: Duration = Duration::from_secs(60);
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
    /// Base delay of the exponential backoff between attempts.
    backoff: Duration,
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
            backoff: Duration::from_secs(1),
            timeout,
            token: crate::secret::Secret::new(token),
        })
    }

    pub async fn pull_request(&self, number: u64) -> Result<PullRequest> {
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            let backoff = self.backoff * 2u32.pow(attempt - 1);
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
            let answer = tokio::time::timeout(self.timeout, exchange)
                .await
                .unwrap_or(Err(Incomplete::TimedOut(self.timeout)));
            // Connection refused, reset, timed out, cut short: the request may have
            // arrived and been carried out, so only what is safe to repeat is repeated.
            let (status, headers, bytes) = match answer {
                Ok(answer) => answer,
                Err(e) if !last && idempotent => {
                    tracing::warn!("{what}: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(what.to_string())),
            };
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
            // A rate limit means the request was refused, so even a POST may go again;
            // a 5xx to a POST may have been carried out.
            let wait = retry_wait(status, &headers, &message, backoff)
                .filter(|_| status < 500 || idempotent);
            match wait {
                Some(wait) if !last && wait <= MAX_WAIT => {
                    tracing::warn!(
                        "{what}: GitHub answered {status} ({message}); retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return Err(ApiError {
                        status,
                        what: what.to_string(),
                        message,
                    }
                    .into());
                }
            }
        }
    }
}

/// How long to wait before trying again, or `None` if trying again cannot help.
fn retry_wait(
    status: u16,
    headers: &http::HeaderMap,
    message: &str,
    backoff: Duration,
) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let limited = status == 429
        || (status == 403
            && (header("x-ratelimit-remaining") == Some("0")
                || message.to_lowercase().contains("rate limit")));
    if limited {
        if header("x-ratelimit-remaining") == Some("0")
            && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
        }
        // Secondary limit without Retry-After: GitHub asks for at least a minute.
        return Some(backoff.max(Duration::from_secs(60)));
    }
    (status >= 500).then_some(backoff)
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

    #[test]
    fn follows_only_the_next_link() {
        let link = r#"<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3")
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="prev""#), None);
    }

    #[test]
    fn waits_as_github_asks() {
        let mut h = http::HeaderMap::new();
        let backoff = Duration::from_secs(1);
        assert_eq!(retry_wait(502, &h, "Bad Gateway", backoff), Some(backoff));
        assert_eq!(retry_wait(404, &h, "Not Found", backoff), None);
        assert_eq!(retry_wait(422, &h, "Validation Failed", backoff), None);
        assert_eq!(
            retry_wait(403, &h, "Resource not accessible by integration", backoff),
            None
        );
        assert_eq!(
            retry_wait(403, &h, "You have exceeded a secondary rate limit", backoff),
            Some(Duration::from_secs(60))
        );
        h.insert("retry-after", "3".parse().expect("header"));
        assert_eq!(
            retry_wait(403, &h, "You have exceeded a secondary rate limit", backoff),
            Some(Duration::from_secs(3))
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
        let mut gh = GitHub::new(&url, TOKEN, "o/r", Duration::from_millis(300)).expect("client");
        gh.backoff = Duration::from_millis(1);
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
        // A POST may have been carried out: it is not sent again.
        count.store(0, Ordering::SeqCst);
        let err = gh.create_comment(7, "report").await.expect_err("times out");
        assert!(format!("{err:#}").contains("no complete answer"), "{err:#}");
        assert!(
            !refused(&err),
            "the comment may exist: the caller must look"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
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
