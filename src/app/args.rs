//! The command line's shape: clap's types and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::eval::result::Shard;

#[derive(Debug, Parser)]
#[command(
    name = "promptgate",
    version,
    about = "Release gate for LLM prompt changes",
    long_about = "promptgate treats prompts as versioned release artifacts: it finds the prompt \
                  artifacts a change touches, checks them, and (on pull requests) gates them on \
                  their evals."
)]
pub struct Cli {
    /// Repository to work in (default: the one containing the current directory).
    #[arg(short = 'C', long = "repo", global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Config file, relative to the repository root.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config, every artifact and every suite; report all problems.
    Validate {
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// List the prompt artifacts changed between the merge-base of BASE and HEAD, and HEAD.
    Changes {
        /// Base branch or commit (what the pull request merges into).
        #[arg(long)]
        base: String,
        /// Head branch or commit (the pull request).
        #[arg(long, default_value = "HEAD")]
        head: String,
        #[arg(long, value_enum, default_value_t = ChangesFormat::Text)]
        format: ChangesFormat,
    },
    /// Run artifacts' eval sets against their models (in the working tree).
    Eval {
        /// Artifacts by path or id (default: every artifact).
        #[arg(value_name = "ARTIFACT")]
        artifacts: Vec<String>,
        /// Only cases in a segment matching this glob (repeatable), e.g. `hard-negative/*`.
        #[arg(long, value_name = "GLOB")]
        segment: Vec<String>,
        /// Run only shard K of N (1-based), for spreading a suite over CI jobs; join
        /// the JSON results with `promptgate merge`.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_enum, default_value_t = EvalFormat::Table)]
        format: EvalFormat,
        /// Write the result to FILE instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The pull-request job, locally: changes, evals of the base and head versions on
    /// the head's eval set, comparison by segment, the policy's verdict, and the
    /// markdown evidence report.
    Gate {
        /// Base branch or commit (what the pull request merges into).
        #[arg(long)]
        base: String,
        /// Head branch or commit (the pull request).
        #[arg(long, default_value = "HEAD")]
        head: String,
        /// Write the markdown report to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the evidence bundle (JSON, `promptgate.evidence/v1`) to FILE.
        #[arg(long, value_name = "FILE")]
        evidence: Option<PathBuf>,
        /// Write JUnit XML to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Render the report with this minijinja template instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Staged rollout of a prompt version by traffic segment, with automatic freeze on
    /// a canary threshold breach (see docs/release.md).
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE", global = true)]
        runtime: Option<PathBuf>,
        /// Why, for the audit log.
        #[arg(long, value_name = "TEXT", global = true)]
        reason: Option<String>,
        /// Also write the runtime config's flagd flag definition to FILE (atomically,
        /// as `promptgate export --format flagd` would), for flagd's file watcher.
        #[arg(long, value_name = "FILE", global = true)]
        flagd: Option<PathBuf>,
    },
    /// Roll back ARTIFACT from version VERSION at once: its rollout in progress ends
    /// (everyone on stable), or, VERSION being stable, the previous stable version is
    /// restored. One atomic write; when VERSION no longer serves (already rolled back),
    /// nothing changes and it says so.
    Rollback {
        artifact: String,
        /// The version to roll back from: the canary, or stable with no rollout.
        #[arg(long, value_name = "VERSION")]
        from: String,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE")]
        runtime: Option<PathBuf>,
        /// Why, for the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Also write the flagd flag definition to FILE (see `rollout --flagd`).
        #[arg(long, value_name = "FILE")]
        flagd: Option<PathBuf>,
    },
    /// Which version of ARTIFACT a request gets from the runtime config: the canary
    /// when a stage up to the canary's serves one of its segments and its key's bucket,
    /// else stable. The same answer flagd gives with `promptgate export --format flagd`.
    Resolve {
        artifact: String,
        /// The request's targeting key (a user, a session): the same key always gets
        /// the same version.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// A segment the request is in (repeatable), e.g. `intent/refund`.
        #[arg(long = "segment", value_name = "SEGMENT")]
        segments: Vec<String>,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE")]
        runtime: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ResolveFormat::Text)]
        format: ResolveFormat,
    },
    /// Write, as one JSON document (`promptgate.bundle/v1`), the content of every version
    /// the runtime config names — messages, model and parameters, response format,
    /// tools, fingerprint — from the commit that introduced it.
    Bundle {
        /// Write to FILE (atomically) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE")]
        runtime: Option<PathBuf>,
    },
    /// Write the runtime config as another system reads it: `flagd`, an OpenFeature
    /// flag definition (one flag per artifact, its variants the versions).
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to FILE (atomically) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE")]
        runtime: Option<PathBuf>,
    },
    /// Turn production failures (an incidents file, JSON Lines) into regression cases
    /// appended to a cases file: one case per distinct incident, with the assertion that
    /// catches its kind, in segment `regression/<kind>`. See docs/learn.md.
    Learn {
        /// The incidents file: one failure a line.
        #[arg(long, value_name = "INCIDENTS")]
        from: PathBuf,
        /// The cases file (`cases_file` of a suite) to append the new cases to.
        #[arg(long, value_name = "CASES_FILE")]
        into: PathBuf,
        /// Why, for the audit log (default: `promptgate learn --from INCIDENTS`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// The GitHub Action's entrypoint: reads the runner's environment and event, runs
    /// the gate (or only the approval step), keeps the sticky comment and sets the
    /// required status. Takes its settings from the action's inputs (`INPUT_*`).
    Action,
    /// Join the JSON results of `eval --shard` runs into one.
    Merge {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = EvalFormat::Table)]
        format: EvalFormat,
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Start rolling out VERSION at the first stage (internal users).
    Start {
        artifact: String,
        #[arg(long)]
        version: String,
        /// The stable version, for an artifact's first rollout.
        #[arg(long, value_name = "VERSION")]
        stable: Option<String>,
        /// Gate evidence (`promptgate gate --evidence`): refuse unless it covers this
        /// version and did not block.
        #[arg(long, value_name = "FILE")]
        evidence: Option<PathBuf>,
    },
    /// Move the canary to the next stage (from the last: make it stable). With
    /// `--metrics`, only if the canary is healthy with enough samples.
    Advance {
        artifact: String,
        /// The stage the canary is at (internal, low-risk, cohort, all): refused if it
        /// is elsewhere by now.
        #[arg(long, value_name = "STAGE", value_parser = parse_stage)]
        from: crate::rollout::Stage,
        #[arg(long, value_name = "FILE", required_unless_present_any = ["force", "prometheus"])]
        metrics: Option<PathBuf>,
        /// Judge the canary by the artifact's `prometheus` queries, asked of this server.
        #[arg(long, value_name = "URL", conflicts_with = "metrics")]
        prometheus: Option<String>,
        /// Advance without metrics: an override, audited with `--why`.
        #[arg(long, requires = "why", conflicts_with_all = ["metrics", "prometheus"])]
        force: bool,
        /// Why the override (with `--force`).
        #[arg(long, value_name = "TEXT", requires = "force")]
        why: Option<String>,
    },
    /// Every artifact's stable version, canary, stage and state.
    Status {
        artifact: Option<String>,
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
    /// Hold the canary's metrics to its thresholds: a breach freezes the rollout (all
    /// traffic back on stable, exit 6); too few samples holds.
    Check {
        artifact: String,
        /// Per-request outcomes (JSON Lines or CSV) or counts, per version and segment.
        #[arg(long, value_name = "FILE", required_unless_present = "prometheus")]
        metrics: Option<PathBuf>,
        /// Ask the artifact's `prometheus` queries of this server (e.g.
        /// `http://prometheus:9090`) instead; if it cannot answer, the canary holds (exit 5).
        #[arg(long, value_name = "URL", conflicts_with = "metrics")]
        prometheus: Option<String>,
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
    /// Check the canary against Prometheus every `--interval` until its rollout ends: a
    /// breach counts and freezes past `failure_limit` (exit 6); with `--auto-advance` a
    /// healthy canary advances, and promoted to stable it exits 0. SIGINT or SIGTERM
    /// stops it between two checks (exit 0).
    Watch {
        artifact: String,
        /// Prometheus's base URL, e.g. `http://prometheus:9090`.
        #[arg(long, value_name = "URL")]
        prometheus: String,
        /// Time between checks, e.g. `60s`, `5m`.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Advance a healthy canary with enough samples, stage by stage, to stable.
        #[arg(long)]
        auto_advance: bool,
        /// A Slack-compatible incoming webhook, told of each breach, freeze, advance and
        /// promotion (`{"text": …}`); a failure is logged, not fatal.
        #[arg(long, value_name = "URL")]
        notify_url: Option<String>,
    },
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration like `60s` or `5m`: {e}"))?;
    std::time::Duration::try_from(d)
        .ok()
        .filter(|d| *d >= std::time::Duration::from_secs(1))
        .ok_or_else(|| format!("`{text}`: the interval is at least 1s"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResolveFormat {
    /// The version alone.
    Text,
    /// The version, and why.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// flagd's flag definition (JSON), read by flagd and OpenFeature's flagd providers.
    Flagd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

/// How evaluations reach the models ([`crate::eval::RunOptions`] once the environment
/// and the terminal are known).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Answer with this provider instead of each artifact's own (e.g. a replay provider
    /// for an offline run); the judge too.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Samples per case (default: `gate.repeats` from the config).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeats: Option<u32>,
    /// Write every live answer as a recording into DIR, for a `replay` provider.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Neither read nor write the answer cache.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChangesFormat {
    Text,
    Json,
    Markdown,
}

fn parse_stage(word: &str) -> Result<crate::rollout::Stage, String> {
    crate::rollout::Stage::from_word(word)
        .ok_or_else(|| format!("`{word}` is not a stage (internal, low-risk, cohort, all)"))
}
