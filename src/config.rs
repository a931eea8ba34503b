//! `.promptgate.yaml`: where artifacts live, which providers exist, prices, gate policy
//! and approval roles.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name of the config file at the repository root.
pub const CONFIG_FILE: &str = ".promptgate.yaml";

/// The whole `.promptgate.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Globs (repository-relative) of prompt artifact files.
    pub artifacts: Vec<String>,
    /// Globs of files that are artifacts when they are GitHub Models prompt files (a
    /// `model` string and `messages`), and are left alone otherwise: other tools name
    /// their files `*.prompt.yaml` too.
    pub github_models_artifacts: Vec<String>,
    /// Model providers by name; artifacts refer to them by that name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// USD per million tokens, by model name.
    pub pricing: BTreeMap<String, Price>,
    /// Provider and model that grade `llm-rubric` assertions.
    pub judge: Option<JudgeConfig>,
    pub gate: GateConfig,
    /// Production traffic, to say a cost change in dollars a month.
    pub traffic: Option<Traffic>,
    pub approvals: ApprovalsConfig,
    /// Context of the commit status.
    pub status_context: String,
    /// Providers declared with a problem (reported with the config), left out of
    /// `providers`: artifacts naming them are not told the name is unknown as well.
    #[serde(skip)]
    #[schemars(skip)]
    pub broken_providers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            artifacts: vec!["prompts/**/*.prompt.yaml".into(), "**/*.prompt.yml".into()],
            github_models_artifacts: vec!["**/*.prompt.yaml".into()],
            providers: BTreeMap::new(),
            pricing: BTreeMap::new(),
            judge: None,
            gate: GateConfig::default(),
            traffic: None,
            approvals: ApprovalsConfig::default(),
            status_context: "promptgate".into(),
            broken_providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Any OpenAI-compatible `/v1/chat/completions` endpoint.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Answers from recorded exchanges in a directory: offline and deterministic.
    Replay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
    pub requests_per_minute: Option<u32>,
    /// Per-request timeout in seconds.
    pub timeout_s: Option<f64>,
    pub max_retries: Option<u32>,
    /// Directory of recordings (`replay`), repository-relative.
    pub dir: Option<String>,
}

/// Names usable as a provider without declaring it in `providers:`.
pub const BUILTIN_PROVIDERS: [&str; 3] = ["openai", "anthropic", "github-models"];

impl Config {
    /// Whether `name` is a provider an artifact may use, or one declared with a problem
    /// of its own.
    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.contains_key(name)
            || BUILTIN_PROVIDERS.contains(&name)
            || self.broken_providers.iter().any(|b| b == name)
    }

    /// Every provider name an artifact may use, for suggestions.
    pub fn provider_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        names.extend(BUILTIN_PROVIDERS);
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million input tokens.
    pub input: f64,
    /// USD per million output tokens.
    pub output: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    pub provider: String,
    pub model: String,
    /// GitHub Models evaluators' `modelId`s (`openai/gpt-4o`) to the model names the
    /// judge provider knows; a `modelId` not listed is sent as written (right for the
    /// `github-models` provider).
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// Samples per case; more than one makes flaky cases visible.
    #[schemars(range(min = 1))]
    pub repeats: u32,
    /// Absolute pass-rate drop that blocks, per segment.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_segment_drop: f64,
    /// Segment globs where any new failure blocks.
    pub critical_segments: Vec<String>,
    /// Share of cases that could not be evaluated above which the gate errors.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_error_rate: f64,
    /// Relative cost growth above which the trade-off label is needed.
    #[schemars(range(min = 0.0))]
    pub max_cost_increase: f64,
    /// Relative p95 latency growth above which the trade-off label is needed.
    #[schemars(range(min = 0.0))]
    pub max_latency_p95_increase: f64,
    /// Behaviour changed but `version` did not: blocks.
    pub require_version_bump: bool,
    /// What a segment whose evidence can neither show a drop over `max_segment_drop` nor
    /// rule one out does to the verdict: `review` (the default) needs the trade-off
    /// label, `block` blocks, `pass` only notes it.
    pub inconclusive: Inconclusive,
    /// Fresh answers per side for every case that flips between base and head, so that
    /// one lucky or unlucky answer does not decide; 0 turns the confirmation off.
    #[schemars(range(max = 20))]
    pub confirm_samples: u32,
    /// The pass rate an artifact with no base version (added, or new to promptgate)
    /// must reach: there is nothing to regress from, so it is held to a floor.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_pass_rate: f64,
    /// Floors per segment glob, for every head, added or modified:
    /// `{"intent/*": 0.9}`.
    pub min_segment_pass_rate: BTreeMap<String, f64>,
    /// Share of cases with no assertion this engine could judge (every one skipped,
    /// unknown, or needing a judge that is not configured) above which the gate errors:
    /// an unjudged case is never a pass.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_unjudged_rate: f64,
}

/// Requests a month, for the whole product and per artifact id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Every artifact's requests a month, unless it has its own figure.
    #[schemars(range(min = 0))]
    pub requests_per_month: Option<u64>,
    /// Requests a month by artifact id.
    #[serde(default)]
    pub artifacts: BTreeMap<String, u64>,
}

impl Traffic {
    /// The requests a month of artifact `id`, if known.
    pub fn of(&self, id: &str) -> Option<u64> {
        self.artifacts.get(id).copied().or(self.requests_per_month)
    }
}

/// See [`GateConfig::inconclusive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Inconclusive {
    Block,
    #[default]
    Review,
    Pass,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            repeats: 1,
            max_segment_drop: 0.05,
            critical_segments: vec!["hard-negative/*".into()],
            max_error_rate: 0.02,
            max_cost_increase: 0.15,
            max_latency_p95_increase: 0.25,
            require_version_bump: true,
            inconclusive: Inconclusive::Review,
            confirm_samples: 5,
            min_pass_rate: 0.8,
            min_segment_pass_rate: BTreeMap::new(),
            max_unjudged_rate: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The label whose application approves for this role.
    pub label: String,
    /// Users (`alice`) and teams (`@org/team`) who may approve.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Anyone with at least this permission on the repository may approve.
    pub min_permission: Option<Permission>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    pub product: Role,
    pub technical: Role,
    /// Label that accepts a cost or latency increase over budget.
    pub tradeoff_label: String,
    /// A label applied before the latest push no longer counts.
    pub dismiss_on_push: bool,
    /// Whether the PR author may approve their own change.
    pub allow_author: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            product: Role {
                label: "prompt-approved/product".into(),
                reviewers: Vec::new(),
                min_permission: Some(Permission::Write),
            },
            technical: Role {
                label: "prompt-approved/technical".into(),
                reviewers: Vec::new(),
                min_permission: Some(Permission::Write),
            },
            tradeoff_label: "prompt-tradeoff-accepted".into(),
            dismiss_on_push: true,
            allow_author: false,
        }
    }
}
