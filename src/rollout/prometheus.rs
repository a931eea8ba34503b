//! Canary metrics from Prometheus: the runtime config names, per artifact, one PromQL
//! query per count (requests, fallbacks, escalations, corrections, and user-defined
//! ones), with the placeholders `{artifact}`, `{version}` and `{window}`. Each is asked
//! with an instant query at one moment, for the canary's version and for stable's, over
//! the window since the canary's stage began; the answers become the same
//! [`metrics::Table`] a metrics file gives, judged by the same [`metrics::check_with`].
//!
//! Queries answer counts per `segment` label (`sum by (segment) (increase(…[{window}]))`):
//! which segments the canary serves is decided here, by the stage's globs, as for a
//! file, not by a regular expression in the query. An answer Prometheus could not give
//! (unreachable, an error, an empty vector for the canary, a value that is not a
//! count) is [`Unavailable`]: the rollout holds, and it never counts as healthy.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Release;
use super::metrics::{Counts, Extra, Row, Table};
use crate::retry::{self, Backoff, Class};

/// An artifact's PromQL queries, each answering a count per `segment` label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Queries {
    /// Requests served: the denominator of every rate.
    pub requests: String,
    /// Requests answered by the fallback.
    pub fallbacks: String,
    /// Requests escalated to a human.
    pub escalations: String,
    /// Answers a human corrected.
    pub corrections: String,
    /// User-defined rates: a name, the query counting its outcomes, and its threshold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, CustomQuery>,
}

/// A user-defined rate: outcomes among the requests, held to `max_rate` as the
/// built-in ones are held to theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomQuery {
    pub query: String,
    /// The largest share of requests with this outcome, a fraction in [0, 1].
    pub max_rate: f64,
}

impl Queries {
    /// Every query, with the key it is written under (below `prometheus`).
    fn all(&self) -> Vec<(Vec<&str>, &str)> {
        let mut out = vec![
            (vec!["requests"], self.requests.as_str()),
            (vec!["fallbacks"], self.fallbacks.as_str()),
            (vec!["escalations"], self.escalations.as_str()),
            (vec!["corrections"], self.corrections.as_str()),
        ];
        for (name, c) in &self.custom {
            out.push((vec!["custom", name.as_str(), "query"], c.query.as_str()));
        }
        out
    }
}

/// The placeholders a query may hold.
const PLACEHOLDERS: [&str; 3] = ["artifact", "version", "window"];

/// Where a placeholder stands in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside any string literal.
    Code,
    /// Inside a double-quoted string literal.
    Double,
    /// Inside a single-quoted or a raw (backquoted) one.
    Other,
}

/// The `{name}` placeholders of a PromQL template, in order: (byte range, name, where).
/// A `{` followed by anything but an identifier and `}` is PromQL's own (a label
/// matcher, a regex repetition). Comments (`#` to the end of the line) are skipped.
fn placeholders(template: &str) -> Vec<(std::ops::Range<usize>, &str, Place)> {
    let bytes = template.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match (quote, b) {
            (Some(q), b'\\') if q != b'`' => i += 1,
            (Some(q), b) if b == q => quote = None,
            (None, b'"' | b'\'' | b'`') => quote = Some(b),
            (None, b'#') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (_, b'{') => {
                let rest = &template[i + 1..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let name = &rest[..len];
                let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
                if ident && rest[len..].starts_with('}') {
                    let place = match quote {
                        None => Place::Code,
                        Some(b'"') => Place::Double,
                        Some(_) => Place::Other,
                    };
                    out.push((i..i + len + 2, name, place));
                    i += len + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// What is wrong with an artifact's queries: unknown placeholders, a `{version}` or
/// `{artifact}` outside a double-quoted string (where it could not be escaped), a
/// `{window}` inside one, a query without `{version}` (canary and stable would count
/// the same) or without `{window}` (counts from before the stage would count), a
/// `max_rate` that is not a fraction.
/// Each problem is the keys it is at (below the artifact) and what is wrong.
pub fn problems(queries: &Queries) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    for (keys, query) in queries.all() {
        let at = |keys: &[&str]| -> Vec<String> {
            std::iter::once("prometheus")
                .chain(keys.iter().copied())
                .map(str::to_string)
                .collect()
        };
        let found = placeholders(query);
        let named = keys.join(".");
        for (_, name, place) in &found {
            let message = match (*name, place) {
                (n, _) if !PLACEHOLDERS.contains(&n) => format!(
                    "`prometheus.{named}`: unknown placeholder `{{{n}}}`{} (known: {{artifact}}, {{version}}, {{window}})",
                    crate::diag::did_you_mean(n, PLACEHOLDERS)
                ),
                ("version" | "artifact", Place::Double) => continue,
                ("version" | "artifact", _) => format!(
                    "`prometheus.{named}`: `{{{name}}}` must stand inside a double-quoted string, e.g. `prompt_version=\"{{{name}}}\"`, where its value is escaped"
                ),
                ("window", Place::Code) => continue,
                _ => format!(
                    "`prometheus.{named}`: `{{window}}` is a duration, e.g. `[{{window}}]`, not part of a string"
                ),
            };
            out.push((at(&keys), message));
        }
        for needed in ["version", "window"] {
            if !found.iter().any(|(_, n, _)| *n == needed) {
                let why = match needed {
                    "version" => "canary and stable would count the same requests",
                    _ => "requests from before the stage began would count",
                };
                out.push((
                    at(&keys),
                    format!("`prometheus.{named}` has no `{{{needed}}}`: {why}"),
                ));
            }
        }
    }
    for (name, c) in &queries.custom {
        if !(0.0..=1.0).contains(&c.max_rate) {
            out.push((
                vec![
                    "prometheus".into(),
                    "custom".into(),
                    name.clone(),
                    "max_rate".into(),
                ],
                format!(
                    "`prometheus.custom.{name}.max_rate` is a fraction between 0 and 1, found {}",
                    c.max_rate
                ),
            ));
        }
    }
    out
}

/// `text` as the inside of a PromQL double-quoted string: `\`, `"` and control
/// characters escaped, so a value can never end the string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The query `template` for `artifact` at `version` over the last `window`
/// milliseconds (`{window}` becomes `93000ms`: exactly the stage's time, no second
/// before it).
/// Only the placeholders [`problems`] accepts are replaced; the runtime config is
/// refused before a query is asked, so nothing else is left.
pub fn render(template: &str, artifact: &str, version: &str, window_ms: u64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut last = 0;
    for (range, name, _) in placeholders(template) {
        let value = match name {
            "artifact" => quoted(artifact),
            "version" => quoted(version),
            "window" => format!("{window_ms}ms"),
            _ => continue,
        };
        out.push_str(&template[last..range.start]);
        out.push_str(&value);
        last = range.end;
    }
    out.push_str(&template[last..]);
    out
}

/// Why the metrics could not be read from Prometheus: the rollout holds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// The samples of an instant query's answer: a count per segment (several samples of a
/// segment are added). An answer that is not a vector of counts with a `segment` label
/// is refused, saying what it was.
fn samples(answer: &Value) -> Result<BTreeMap<String, u64>, String> {
    let data = &answer["data"];
    let kind = data["resultType"].as_str().unwrap_or("nothing");
    if kind != "vector" {
        return Err(format!(
            "answered a {kind}, not an instant vector of counts by segment (`sum by (segment) (…)`)"
        ));
    }
    let mut out = BTreeMap::new();
    for sample in data["result"].as_array().into_iter().flatten() {
        let labels = &sample["metric"];
        let Some(segment) = labels["segment"].as_str() else {
            return Err(format!(
                "a sample without a `segment` label ({labels}): group the query `by (segment)`"
            ));
        };
        let text = sample["value"][1].as_str().unwrap_or("");
        let value: f64 = text
            .parse()
            .map_err(|_| format!("segment `{segment}`: `{text}` is not a number"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "segment `{segment}`: {text} is not a count (no samples in the window, or a counter that went down?)"
            ));
        }
        // `increase` extrapolates to the window's edges: counts come back fractional.
        *out.entry(segment.to_string()).or_insert(0) += value.round() as u64;
    }
    Ok(out)
}

/// Where Prometheus is, and how patiently it is asked.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its base URL, e.g. `http://prometheus:9090` (the API is under `/api/v1/`).
    pub url: String,
    /// Each request's limit.
    pub timeout: Duration,
    /// Waits between attempts; a query is read-only, so it is safe to ask again.
    pub backoff: Backoff,
    /// Attempts after the first, for a connection failure, a timeout, a 5xx or 429.
    pub retries: u32,
}

impl Source {
    /// `url` with the default patience: 15 s a request, 3 retries from `base` (0.5 s
    /// unless `PROMPTGATE_RETRY_BASE_MS` says).
    pub fn new(url: &str, base: Option<Duration>) -> Source {
        Source {
            url: url.to_string(),
            timeout: Duration::from_secs(15),
            backoff: Backoff {
                base: base.unwrap_or(Duration::from_millis(500)),
                cap: Duration::from_secs(8),
                ..Backoff::default()
            },
            retries: 3,
        }
    }

    /// The URL as it may be shown: without a user name or password.
    pub fn shown(&self) -> String {
        shown(&self.url)
    }
}

/// `url` without its user name and password.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// An HTTP client for Prometheus and the webhook, every request within `timeout`.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    // Installing fails only when a provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("promptgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Larger answers are refused rather than read into memory.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// One failed attempt: whether another one could help, and what happened.
struct Failed {
    again: Option<Option<Duration>>,
    why: String,
}

/// The error and its causes on one line, without the URL (it may hold a password).
pub fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One instant query, once.
async fn ask_once(
    client: &reqwest::Client,
    url: &reqwest::Url,
    timeout: Duration,
) -> Result<Value, Failed> {
    let transport = |e: reqwest::Error| Failed {
        again: (!e.is_builder()).then_some(None),
        why: if e.is_timeout() {
            format!("no answer within {} s", timeout.as_secs_f64())
        } else {
            error_chain(e)
        },
    };
    let mut response = client.get(url.clone()).send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failed {
                again: None,
                why: format!("an answer larger than {} MiB", MAX_ANSWER_BYTES >> 20),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
    // Prometheus says what went wrong in `errorType` and `error`, whatever the status.
    let said = answer.as_ref().and_then(|a| {
        Some(format!(
            "{}: {}",
            a["errorType"].as_str()?,
            a["error"].as_str()?
        ))
    });
    if !status.is_success() {
        let body =
            said.unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        let why = format!("HTTP {}: {body}", status.as_u16());
        let again = match retry::classify(status.as_u16(), &headers, &body, SystemTime::now()) {
            Class::Limited { after } | Class::Server { after } => Some(after),
            Class::Final => None,
        };
        return Err(Failed { again, why });
    }
    match answer {
        Some(a) if a["status"] == "success" => Ok(a),
        Some(_) => Err(Failed {
            again: None,
            why: said.unwrap_or_else(|| "an answer whose status is not `success`".into()),
        }),
        None => Err(Failed {
            again: None,
            why: "an answer that is not JSON (is this Prometheus's address?)".into(),
        }),
    }
}

/// The instant query `promql` at `at`, asked again after failures another attempt
/// could mend.
async fn ask(
    client: &reqwest::Client,
    source: &Source,
    promql: &str,
    at: jiff::Timestamp,
) -> Result<Value, String> {
    let base = source.url.trim_end_matches('/');
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/query"))
        .map_err(|e| format!("`{}` is not a URL: {e}", shown(&source.url)))?;
    url.query_pairs_mut()
        .append_pair("query", promql)
        .append_pair(
            "time",
            &format!("{:.3}", at.as_millisecond() as f64 / 1000.0),
        );
    let url = &url;
    source
        .backoff
        .run(
            source.retries,
            |_| ask_once(client, url, source.timeout),
            |failed: &Failed, n| failed.again.map(|after| source.backoff.wait(n, after)),
        )
        .await
        .map(|(answer, _)| answer)
        .map_err(|(failed, retries)| match retries {
            0 => failed.why,
            n => format!("{} (after {} attempts)", failed.why, n + 1),
        })
}

/// The counts of one version, per segment.
#[derive(Debug, Default)]
struct Answers {
    counts: BTreeMap<String, Counts>,
    custom: BTreeMap<String, BTreeMap<String, u64>>,
}

/// What the queries count for the canary of `artifact` and for stable, over the
/// window since its stage began and up to `now`: a [`Table`] (one row per version and
/// segment) and the user-defined rates, for [`metrics::check_with`](super::metrics::check_with).
pub async fn fetch(
    source: &Source,
    artifact: &str,
    release: &Release,
    queries: &Queries,
    now: jiff::Timestamp,
) -> Result<(Table, Vec<Extra>), Unavailable> {
    let unavailable = |why: String| Unavailable(format!("Prometheus at {}: {why}", source.shown()));
    let Some(canary) = &release.canary else {
        return Ok((Table::new(), Vec::new()));
    };
    let since: jiff::Timestamp = canary
        .since
        .parse()
        .map_err(|e| unavailable(format!("`canary.since` is not a time: {e}")))?;
    let elapsed = now.duration_since(since);
    if elapsed.is_negative() {
        return Err(unavailable(format!(
            "the stage began at {since}, after now ({now}): is a clock wrong?"
        )));
    }
    let window = u64::try_from(elapsed.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let shown_window = jiff::SignedDuration::from_secs(elapsed.as_secs());
    let client = client(source.timeout)
        .map_err(|e| unavailable(format!("cannot build an HTTP client: {e}")))?;
    let mut table = Table::new();
    let mut per_version = Vec::new();
    for (version, is_canary) in [
        (canary.version.text(), true),
        (release.stable.version.text(), false),
    ] {
        let mut answers = Answers::default();
        let mut named: Vec<(&str, &str)> = vec![
            ("requests", &queries.requests),
            ("fallbacks", &queries.fallbacks),
            ("escalations", &queries.escalations),
            ("corrections", &queries.corrections),
        ];
        named.extend(
            queries
                .custom
                .iter()
                .map(|(n, c)| (n.as_str(), c.query.as_str())),
        );
        for (i, (name, template)) in named.into_iter().enumerate() {
            let promql = render(template, artifact, &version, window);
            let answer = ask(&client, source, &promql, now).await.map_err(|why| {
                unavailable(format!("the `{name}` query for version {version}: {why}"))
            })?;
            let counted = samples(&answer).map_err(|why| {
                unavailable(format!("the `{name}` query for version {version} {why}"))
            })?;
            // An empty answer is also what a misspelt metric gives: never zero for
            // the canary. Stable may have had no traffic in the window.
            if counted.is_empty() && is_canary {
                return Err(unavailable(format!(
                    "the `{name}` query for version {version} answered nothing for the {shown_window:#} since the stage began (fewer than two scrapes in that time, or a misspelt metric or label; export counters from 0): `{promql}`"
                )));
            }
            for (segment, n) in counted {
                let c = answers.counts.entry(segment.clone()).or_default();
                match i {
                    0 => c.requests = n,
                    1 => c.fallbacks = n,
                    2 => c.escalations = n,
                    3 => c.corrections = n,
                    _ => {
                        answers
                            .custom
                            .entry(name.to_string())
                            .or_default()
                            .insert(segment, n);
                    }
                }
            }
        }
        for (segment, c) in &answers.counts {
            let most = [
                ("fallbacks", c.fallbacks),
                ("escalations", c.escalations),
                ("corrections", c.corrections),
            ]
            .into_iter()
            .chain(
                answers
                    .custom
                    .iter()
                    .map(|(n, by)| (n.as_str(), by.get(segment).copied().unwrap_or(0))),
            )
            .find(|(_, n)| *n > c.requests);
            if let Some((name, n)) = most {
                return Err(unavailable(format!(
                    "version {version} in segment `{segment}`: {n} {name} but {} requests",
                    c.requests
                )));
            }
            table.push(Row {
                line: 0,
                at: since,
                version: version.clone(),
                segment: segment.clone(),
                counts: *c,
            });
        }
        per_version.push(answers);
    }
    // A custom count in the segments the canary serves, as the check counts requests.
    let segments = release.canary_segments();
    let served = |answers: &Answers, name: &str| -> u64 {
        answers.custom.get(name).map_or(0, |by| {
            by.iter()
                .filter(|(segment, _)| segments.matches(segment))
                .map(|(_, n)| n)
                .sum()
        })
    };
    let extra = queries
        .custom
        .iter()
        .map(|(name, c)| Extra {
            name: name.clone(),
            canary: served(&per_version[0], name),
            stable: served(&per_version[1], name),
            max_rate: c.max_rate,
        })
        .collect();
    Ok((table, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries(requests: &str) -> Queries {
        let q = |m: &str| {
            format!(
                r#"sum by (segment) (increase({m}{{prompt_version="{{version}}"}}[{{window}}]))"#
            )
        };
        Queries {
            requests: requests.to_string(),
            fallbacks: q("fallbacks_total"),
            escalations: q("escalations_total"),
            corrections: q("corrections_total"),
            custom: BTreeMap::new(),
        }
    }

    const GOOD: &str = r#"sum by (segment) (increase(app_requests_total{prompt_id="{artifact}", prompt_version="{version}", segment=~"a{2}|b"}[{window}])) # by {segment}"#;

    #[test]
    fn placeholders_are_replaced_and_promql_braces_kept() {
        assert!(
            problems(&queries(GOOD)).is_empty(),
            "{:?}",
            problems(&queries(GOOD))
        );
        assert_eq!(
            render(GOOD, "support", "4", 93_250),
            r#"sum by (segment) (increase(app_requests_total{prompt_id="support", prompt_version="4", segment=~"a{2}|b"}[93250ms])) # by {segment}"#
        );
    }

    /// A version that closes the string and adds a matcher (or a whole query) stays a
    /// label value.
    #[test]
    fn values_are_escaped_and_cannot_end_their_string() {
        let nasty = "4\"} or vector(1) or x{a=\"\\";
        let out = render(GOOD, "sup\nport", nasty, 1);
        assert!(
            out.contains(r#"prompt_version="4\"} or vector(1) or x{a=\"\\""#),
            "{out}"
        );
        assert!(out.contains(r#"prompt_id="sup\nport""#), "{out}");
    }

    #[test]
    fn misplaced_missing_and_unknown_placeholders_are_problems() {
        for (query, expected) in [
            (
                r#"sum by (segment) (increase(x{v="{verison}"}[{window}]))"#,
                "unknown placeholder `{verison}`, did you mean `version`?",
            ),
            (
                "sum by (segment) (increase(x{v={version}}[{window}]))",
                "`{version}` must stand inside a double-quoted string",
            ),
            (
                r#"sum by (segment) (increase(x{v='{version}'}[{window}]))"#,
                "`{version}` must stand inside a double-quoted string",
            ),
            (
                r#"sum by (segment) (increase(x{v="{version}", w="{window}"}[{window}]))"#,
                "`{window}` is a duration",
            ),
            (
                "sum by (segment) (increase(x[{window}]))",
                "has no `{version}`: canary and stable would count the same requests",
            ),
            (
                r#"sum by (segment) (x{v="{version}"})"#,
                "has no `{window}`: requests from before the stage began would count",
            ),
        ] {
            let found = problems(&queries(query));
            assert!(
                found
                    .iter()
                    .any(|(at, message)| message.contains(expected)
                        && at == &["prometheus", "requests"]),
                "{query}: {found:?}"
            );
        }
        let mut q = queries(GOOD);
        q.custom.insert(
            "thumbs_down".into(),
            CustomQuery {
                query: GOOD.into(),
                max_rate: 5.0,
            },
        );
        let found = problems(&q);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].0,
            ["prometheus", "custom", "thumbs_down", "max_rate"]
        );
    }

    fn answer(result: Value) -> Value {
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    }

    #[test]
    fn answers_become_counts_by_segment() {
        let a = answer(serde_json::json!([
            {"metric": {"segment": "internal"}, "value": [1.0, "99.6"]},
            {"metric": {"segment": "internal", "pod": "b"}, "value": [1.0, "1"]},
            {"metric": {"segment": "geo/eu"}, "value": [1.0, "0"]},
        ]));
        let got = samples(&a).expect("counts");
        assert_eq!(got["internal"], 101);
        assert_eq!(got["geo/eu"], 0);
        assert!(
            samples(&answer(serde_json::json!([])))
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn answers_that_are_not_counts_by_segment_are_refused() {
        for (a, expected) in [
            (
                answer(serde_json::json!([{"metric": {}, "value": [1.0, "3"]}])),
                "without a `segment` label",
            ),
            (
                answer(serde_json::json!([{"metric": {"segment": "s"}, "value": [1.0, "NaN"]}])),
                "NaN is not a count",
            ),
            (
                answer(serde_json::json!([{"metric": {"segment": "s"}, "value": [1.0, "-2"]}])),
                "-2 is not a count",
            ),
            (
                serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}),
                "answered a scalar",
            ),
        ] {
            let err = samples(&a).expect_err("refused");
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_not_shown() {
        assert_eq!(
            shown("https://ops:hunter2@prom.example:9090/x"),
            "https://prom.example:9090/x"
        );
    }
}
