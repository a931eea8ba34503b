//! Model providers behind one trait: OpenAI-compatible chat completions, Anthropic's
//! Messages API, and replay of recorded exchanges. A provider makes one attempt; retries,
//! limits and caching belong to the runner.

pub mod anthropic;
pub mod openai;
pub mod replay;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::{Call, ChatRequest};
use crate::config::{ProviderConfig, ProviderKind};
use crate::env::Secrets;
use crate::secret::{Scrubber, Secret};

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

/// The answer to a refusal the API marks without giving its text.
pub const REFUSED_WITHOUT_TEXT: &str = "(the model refused, without saying why)";

/// One answer from a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Call>,
    /// The model declined in the API's own refusal field (OpenAI `message.refusal`,
    /// Anthropic `stop_reason: "refusal"`): `text` is the refusal's text, or
    /// [`REFUSED_WITHOUT_TEXT`]. Left out when false, so entries written before it
    /// read the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refusal: bool,
    /// `None` when the provider did not say.
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    /// Milliseconds the answer took when it was first received; set on answers that
    /// come from a recording or the cache, so their latency stays the measured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Completion {
    /// Whether it is an answer at all: some text, a tool call or a refusal. A 200 with
    /// nothing in it (OpenAI `content: null`, Anthropic `content: []`) is not one:
    /// judged, it would be the empty string, which passes `not-contains` and
    /// `max-words`.
    pub fn is_answer(&self) -> bool {
        self.refusal || !self.calls.is_empty() || !self.text.trim().is_empty()
    }

    /// What [`Completion::is_answer`] found missing, for the error.
    pub fn emptiness(&self) -> String {
        let reason = self
            .finish_reason
            .as_deref()
            .map(|r| {
                format!(
                    " (finish reason `{}`)",
                    crate::eval::assertions::short(r, 40)
                )
            })
            .unwrap_or_default();
        format!("no text and no tool call in the answer{reason}")
    }
}

/// The text of a refusal: as the API gave it, or [`REFUSED_WITHOUT_TEXT`] for none.
pub(crate) fn refused(text: &str) -> String {
    if text.trim().is_empty() {
        REFUSED_WITHOUT_TEXT.to_string()
    } else {
        text.to_string()
    }
}

/// Why an attempt failed, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("rate limited (HTTP {status}){}: {body}", retry_after.map(|d| format!(", retry after {:.1}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// 429, or a 4xx that [`crate::retry::classify`] reads as a rate limit.
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("server error (HTTP {status}): {body}")]
    Server { status: u16, body: String },
    #[error("request refused (HTTP {status}): {body}")]
    Refused { status: u16, body: String },
    #[error("no answer within {0:.0?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("answer unreadable: {0}")]
    Malformed(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ProviderError {
    /// Whether trying again may succeed: rate limits, server errors, timeouts, broken
    /// connections and mangled answers. Asking a model again has no effect beyond cost.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Timeout(_)
                | ProviderError::Connection(_)
                | ProviderError::Malformed(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error with `keys` scrubbed from its text.
    pub fn scrubbed(self, keys: &Scrubber) -> Self {
        let scrub = |text: String| keys.scrub(&text).into_owned();
        match self {
            ProviderError::RateLimited {
                status,
                retry_after,
                body,
            } => ProviderError::RateLimited {
                status,
                retry_after,
                body: scrub(body),
            },
            ProviderError::Server { status, body } => ProviderError::Server {
                status,
                body: scrub(body),
            },
            ProviderError::Refused { status, body } => ProviderError::Refused {
                status,
                body: scrub(body),
            },
            ProviderError::Timeout(d) => ProviderError::Timeout(d),
            ProviderError::Connection(t) => ProviderError::Connection(scrub(t)),
            ProviderError::Malformed(t) => ProviderError::Malformed(scrub(t)),
            ProviderError::Unavailable(t) => ProviderError::Unavailable(scrub(t)),
        }
    }
}

/// Keys shorter than this are not scrubbed from answers: no real credential is that
/// short (a local server's placeholder, `none`, is), and scrubbing one would change
/// answers and so their verdicts.
const SHORTEST_KEY: usize = 8;

/// A scrubber of every API key the run holds, the configured providers' and the
/// built-in ones' (their `api_key_env`), whichever provider answers: a model or a proxy
/// may repeat any of them.
pub fn keys(config: &crate::config::Config, secrets: &Secrets) -> Scrubber {
    let builtins = crate::config::BUILTIN_PROVIDERS.map(builtin);
    let vars = config
        .providers
        .values()
        .chain(builtins.iter().flatten())
        .filter_map(|p| p.api_key_env.as_deref());
    Scrubber::new(
        vars.filter_map(|v| secrets.get(v))
            .filter(|k| k.expose().len() >= SHORTEST_KEY),
    )
}

/// A model API.
pub trait Provider: Send + Sync {
    /// What besides the request determines the answer (kind, endpoint), for cache keys.
    fn identity(&self) -> String;
    /// Whether answers come from a live model (and so are worth caching and recording).
    fn live(&self) -> bool {
        true
    }
    /// One attempt at answering `request` as sample number `sample`.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        sample: u32,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>>;
}

/// A provider's settings with defaults filled in.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// The variable the key should come from, for the error when it is missing.
    pub api_key_env: Option<String>,
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub dir: Option<String>,
}

impl Settings {
    /// The API key, or an error naming the variable it should come from when the
    /// provider names one that is not set (and, for the workflow's token, how a
    /// workflow passes it).
    pub fn required_key(&self) -> anyhow::Result<Option<Secret>> {
        match (&self.api_key, &self.api_key_env) {
            (None, Some(var)) => {
                let hint = if var == "GITHUB_TOKEN" {
                    " (in a workflow: `permissions: models: read` for the job, and \
                     `env: {GITHUB_TOKEN: ${{ github.token }}}` on the promptgate step)"
                } else {
                    ""
                };
                anyhow::bail!(
                    "provider `{}` needs an API key in the environment variable {var}, which is not set{hint}",
                    self.name
                )
            }
            (key, _) => Ok(key.clone()),
        }
    }
}

/// The built-in providers an artifact may name without configuring them.
fn builtin(name: &str) -> Option<ProviderConfig> {
    let (kind, url, key) = match name {
        "openai" => (
            ProviderKind::Openai,
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
        ),
        "anthropic" => (
            ProviderKind::Anthropic,
            "https://api.anthropic.com/v1",
            "ANTHROPIC_API_KEY",
        ),
        "github-models" => (
            ProviderKind::Openai,
            "https://models.github.ai/inference",
            "GITHUB_TOKEN",
        ),
        _ => return None,
    };
    Some(ProviderConfig {
        kind,
        base_url: Some(url.into()),
        api_key_env: Some(key.into()),
        concurrency: None,
        requests_per_minute: None,
        timeout_s: None,
        max_retries: None,
        dir: None,
    })
}

impl Settings {
    /// Settings of provider `name` from `configured` (the config's providers) or the
    /// built-ins, with its key read from `secrets`.
    pub fn resolve(
        name: &str,
        configured: Option<&ProviderConfig>,
        secrets: &Secrets,
    ) -> anyhow::Result<Settings> {
        let builtin = builtin(name);
        let config = configured.or(builtin.as_ref()).ok_or_else(|| {
            anyhow::anyhow!("provider `{name}` is neither configured nor built in")
        })?;
        let default_url = match config.kind {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
            ProviderKind::Replay => "",
        };
        Ok(Settings {
            name: name.to_string(),
            kind: config.kind,
            base_url: config
                .base_url
                .clone()
                .unwrap_or_else(|| default_url.to_string())
                .trim_end_matches('/')
                .to_string(),
            api_key: config
                .api_key_env
                .as_deref()
                .and_then(|v| secrets.get(v).cloned()),
            api_key_env: config.api_key_env.clone(),
            concurrency: config.concurrency.unwrap_or(8).max(1) as usize,
            requests_per_minute: config.requests_per_minute.filter(|&r| r > 0),
            timeout: Duration::from_secs_f64(config.timeout_s.unwrap_or(60.0).max(0.001)),
            max_retries: config.max_retries.unwrap_or(4),
            dir: config.dir.clone(),
        })
    }
}

/// HTTP plumbing shared by the live providers.
pub(crate) mod http {
    use std::time::{Duration, SystemTime};

    use reqwest::header::HeaderMap;
    use serde_json::Value;

    use super::ProviderError;
    use crate::retry::{self, Class};
    use crate::secret::Secret;

    /// Error bodies are kept to this many characters.
    const BODY_LIMIT: usize = 600;
    /// Larger answers are refused rather than read into memory.
    const MAX_ANSWER_BYTES: usize = 16 << 20;

    pub fn client(timeout: Duration) -> Result<reqwest::Client, ProviderError> {
        // Installing fails only when a provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(256)
            .user_agent(concat!("promptgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Unavailable(format!("cannot build HTTP client: {e}")))
    }

    /// POST `body` as JSON and read the answer as JSON, classifying every failure.
    /// The key, if any provider echoes it, is scrubbed from the error text.
    pub async fn post_json(
        client: &reqwest::Client,
        url: &str,
        headers: HeaderMap,
        body: &Value,
        timeout: Duration,
        key: Option<&Secret>,
    ) -> Result<Value, ProviderError> {
        let scrub = |text: String| match key {
            Some(k) => k.scrub(&text),
            None => text,
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ProviderError::Timeout(timeout)
            } else if e.is_builder() {
                // A malformed URL or header: trying again cannot help.
                ProviderError::Unavailable(shorten(&scrub(error_chain(&e))))
            } else {
                ProviderError::Connection(shorten(&scrub(error_chain(&e))))
            }
        };
        let mut response = client
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ProviderError::Malformed(format!(
                    "answer larger than {} MiB",
                    MAX_ANSWER_BYTES >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = shorten(&scrub(String::from_utf8_lossy(&bytes).into_owned()));
            let code = status.as_u16();
            let class = retry::classify(code, &headers, &text, SystemTime::now());
            return Err(match (code, class) {
                (408, _) => ProviderError::Timeout(timeout),
                (_, Class::Limited { after }) => ProviderError::RateLimited {
                    status: code,
                    retry_after: after,
                    body: text,
                },
                (_, Class::Server { .. }) => ProviderError::Server {
                    status: code,
                    body: text,
                },
                (_, Class::Final) => ProviderError::Refused {
                    status: code,
                    body: text,
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::Malformed(shorten(&scrub(format!(
                "{e} in `{}`",
                String::from_utf8_lossy(&bytes)
            ))))
        })
    }

    /// On one line, cut, terminal escapes neutralized. Secrets must be scrubbed before:
    /// a cut through a key would leave a prefix no scrubber recognizes.
    fn shorten(text: &str) -> String {
        crate::eval::assertions::short(text, BODY_LIMIT)
    }

    /// The error and its causes on one line (reqwest's own message hides the cause).
    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// Token counts from an answer's `usage` object, under the API's names for them.
    pub fn usage(answer: &Value, input: &str, output: &str) -> Option<super::Usage> {
        let u = answer.get("usage")?;
        Some(super::Usage {
            input: u.get(input)?.as_u64()?,
            output: u.get(output)?.as_u64()?,
        })
    }

    /// Arguments as the model wrote them: JSON when they parse, the raw string if not.
    pub fn arguments(raw: &str) -> Value {
        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    }
}

/// Build the provider `settings` describe. `root` is the repository root, against which
/// a replay directory resolves.
pub fn build(settings: &Settings, root: &std::path::Path) -> anyhow::Result<Box<dyn Provider>> {
    Ok(match settings.kind {
        ProviderKind::Openai => Box::new(openai::OpenAi::new(settings)?),
        ProviderKind::Anthropic => Box::new(anthropic::Anthropic::new(settings)?),
        ProviderKind::Replay => {
            let dir = settings.dir.as_deref().ok_or_else(|| {
                anyhow::anyhow!("replay provider `{}` needs `dir`", settings.name)
            })?;
            Box::new(replay::Replay::new(root, root.join(dir)).map_err(|e| {
                anyhow::anyhow!("cannot open repository directory {}: {e}", root.display())
            })?)
        }
    })
}

/// `Value::String` of compact JSON, as OpenAI wants tool arguments and results.
pub(crate) fn json_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;
    use crate::env::Env;

    #[test]
    fn the_run_holds_every_providers_key_and_no_other_variable() {
        let mut config = Config::default();
        let configured: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "anthropic", "api_key_env": "LOCAL_KEY"
        }))
        .expect("provider");
        config.providers.insert("local".into(), configured);
        let vars = [
            ("LOCAL_KEY", "sk-local-0123456789"),
            ("OPENAI_API_KEY", "sk-openai-abcdefghij"),
            ("GITHUB_TOKEN", "none"),
            ("PAGER", "less --quit-if-one-screen"),
        ];
        let env = Env::from_vars(HashMap::from(vars.map(|(k, v)| (k.into(), v.into()))));
        let keys = keys(&config, &env.secrets);
        assert_eq!(
            keys.scrub("sk-local-0123456789 sk-openai-abcdefghij none less --quit-if-one-screen"),
            // A placeholder of 4 characters is no key to scrub from answers.
            "[redacted] [redacted] none less --quit-if-one-screen"
        );
    }

    #[test]
    fn an_errors_text_is_scrubbed_and_its_kind_kept() {
        let key = Secret::new("sk-other-0123456789");
        let keys = Scrubber::new([&key]);
        let error = ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
            body: "slow down, sk-other-0123456789".into(),
        };
        assert_eq!(
            error.scrubbed(&keys),
            ProviderError::RateLimited {
                status: 429,
                retry_after: Some(Duration::from_secs(2)),
                body: "slow down, [redacted]".into(),
            }
        );
        let error = ProviderError::Malformed("expected value in `sk-other-0123`".into());
        assert_eq!(
            error.scrubbed(&keys).to_string(),
            "answer unreadable: expected value in `[redacted]`"
        );
    }

    /// The `github-models` preset: GitHub's inference endpoint and the workflow's
    /// token, and a missing token says how a workflow passes it.
    #[test]
    fn github_models_is_githubs_endpoint_with_the_workflow_token() {
        let settings =
            Settings::resolve("github-models", None, &Secrets::default()).expect("a built-in");
        assert_eq!(settings.kind, ProviderKind::Openai);
        assert_eq!(settings.base_url, "https://models.github.ai/inference");
        assert_eq!(settings.api_key_env.as_deref(), Some("GITHUB_TOKEN"));
        let missing = settings.required_key().expect_err("no token").to_string();
        assert!(
            missing.ends_with(
                "(in a workflow: `permissions: models: read` for the job, and \
                 `env: {GITHUB_TOKEN: ${{ github.token }}}` on the promptgate step)"
            ),
            "{missing}"
        );
    }
}
