//! The command line: parsing, logging, and running each command to an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::changes::{self, Refs, render};
use crate::env::Env;
use crate::eval::result::{self, EvalReport, Outcome, Shard};
use crate::eval::runner::{self, Engine, Plan};
use crate::exit::Exit;
use crate::repo::{PullRequest, Snapshot};
use crate::source::fs::{WorkTree, find_root};
use crate::validate;

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
    },
    /// Roll back ARTIFACT at once: a rollout in progress ends (everyone on stable), or,
    /// with none, the previous stable version is restored. One atomic write.
    Rollback {
        artifact: String,
        /// The runtime config [default: deploy/prompts.runtime.yaml in the repository].
        #[arg(long, value_name = "FILE")]
        runtime: Option<PathBuf>,
        /// Why, for the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
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
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
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
        #[arg(long, value_name = "FILE")]
        metrics: PathBuf,
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

/// How evaluations reach the models.
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

/// Logs go to stderr at the level `-v` asks for, or as `PROMPTGATE_LOG` filters them
/// (`debug`, `promptgate=trace,warn`). A per-target filter, not `EnvFilter`: that one
/// pulls in regex-automata's full DFA builder, which then also compiles every glob
/// into a dense DFA, a third of the start of `changes`.
pub fn init_logging(cli: &Cli, env: &Env) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match cli.verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let given = env.log_filter.as_deref();
    let parsed = given.map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(filter)) => filter.clone(),
        _ => Targets::new().with_default(level),
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(!env.no_color && !env.ci)
                .with_target(false),
        )
        .with(filter)
        .try_init();
    if let (Some(given), Some(Err(e))) = (given, parsed) {
        tracing::warn!("PROMPTGATE_LOG={given:?} is not a log filter ({e}); logging at {level}");
    }
}

/// Run the command; errors are printed here and become exit codes.
pub fn run(cli: Cli, env: &Env) -> Exit {
    match dispatch(cli, env) {
        Ok(exit) => exit,
        Err(e) => {
            // Problems in a file say file:line:col themselves.
            if let Some(d) = e.downcast_ref::<crate::diag::Diagnostics>() {
                eprintln!("{d}");
                return Exit::Invalid;
            }
            eprintln!("error: {e:#}");
            Exit::ToolError
        }
    }
}

/// `--runtime`, or the default file in the repository.
fn runtime_path(root: &Path, given: Option<&Path>) -> PathBuf {
    given.map_or_else(
        || root.join(crate::rollout::DEFAULT_PATH),
        Path::to_path_buf,
    )
}

fn repo_root(cli: &Cli) -> anyhow::Result<PathBuf> {
    let start = match &cli.repo {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(find_root(&start))
}

fn dispatch(cli: Cli, env: &Env) -> anyhow::Result<Exit> {
    if let Command::Merge {
        files,
        format,
        output,
    } = &cli.command
    {
        let reports = files
            .iter()
            .map(|f| {
                let text =
                    std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
                serde_json::from_slice::<EvalReport>(&text).with_context(|| {
                    format!("{}: not the JSON `promptgate eval` writes", f.display())
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let merged = result::merge(reports).map_err(|e| anyhow::anyhow!("cannot merge: {e}"))?;
        write_eval(&merged, *format, output.as_deref())?;
        return Ok(eval_exit(&merged));
    }
    if let Command::Action = &cli.command {
        return crate::action::run(env);
    }
    let root = repo_root(&cli)?;
    match &cli.command {
        Command::Rollout {
            command,
            runtime,
            reason,
        } => {
            let path = runtime_path(&root, runtime.as_deref());
            return crate::rollout::command::rollout(&path, env, command, reason.as_deref());
        }
        Command::Rollback {
            artifact,
            runtime,
            reason,
        } => {
            let path = runtime_path(&root, runtime.as_deref());
            return crate::rollout::command::rollback(&path, env, artifact, reason.as_deref());
        }
        _ => {}
    }
    match &cli.command {
        Command::Validate { format } => {
            let tree = WorkTree::new(&root)?;
            let snapshot = Snapshot::open(&tree, cli.config.as_deref());
            let report = validate::validate(&snapshot)?;
            let mut out = std::io::stdout().lock();
            match format {
                ValidateFormat::Json => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
                }
                ValidateFormat::Text => {
                    for p in &report.problems {
                        writeln!(out, "{p}")?;
                    }
                    writeln!(
                        out,
                        "checked {} artifact(s), {} suite(s), {} case(s): {} error(s), {} warning(s)",
                        report.artifacts,
                        report.suites,
                        report.cases,
                        report.errors(),
                        report.warnings()
                    )?;
                }
            }
            Ok(if report.errors() > 0 {
                Exit::Invalid
            } else {
                Exit::Ok
            })
        }
        Command::Changes { base, head, format } => {
            changes::prepare();
            let pr = PullRequest::open(&root, base, head)?;
            let sides = pr.sides(cli.config.as_deref())?;
            let set = changes::detect(
                &sides.base,
                &sides.head,
                &sides.entries,
                Refs {
                    base: base.clone(),
                    head: head.clone(),
                    merge_base: pr.merge_base.to_string(),
                    head_commit: pr.head_commit.to_string(),
                },
            )?;
            let rendered = match format {
                ChangesFormat::Text => render::text(&set),
                ChangesFormat::Json => render::json(&set),
                ChangesFormat::Markdown => render::markdown(&set),
            };
            let mut out = std::io::stdout().lock();
            write!(out, "{rendered}")?;
            if !rendered.ends_with('\n') {
                writeln!(out)?;
            }
            Ok(Exit::Ok)
        }
        Command::Eval {
            artifacts,
            segment,
            shard,
            run,
            format,
            output,
        } => {
            let tree = WorkTree::new(&root)?;
            let snapshot = Snapshot::open(&tree, cli.config.as_deref());
            let plans = match eval_plans(&snapshot, artifacts, segment, *shard, run)? {
                Ok(plans) => plans,
                Err(problems) => {
                    eprintln!("{problems}");
                    return Ok(Exit::Invalid);
                }
            };
            let report = EvalReport::new(run_plans(&snapshot.config, env, &root, run, plans)?);
            write_eval(&report, *format, output.as_deref())?;
            Ok(eval_exit(&report))
        }
        Command::Gate {
            base,
            head,
            report,
            evidence,
            junit,
            template,
            run,
        } => {
            let template = match template {
                None => crate::report::Template::builtin(),
                Some(path) => {
                    let source = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    crate::report::Template::new(&path.display().to_string(), source)
                        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?
                }
            };
            let request = crate::gate::Request {
                base,
                head,
                config_path: cli.config.as_deref(),
                run,
                providers_from_base: false,
            };
            let evidence_doc = crate::gate::run(&root, env, &request)?;
            let markdown = template
                .render(&evidence_doc, crate::report::COMMENT_LIMIT)
                .map_err(|e| anyhow::anyhow!("cannot render the report: {e:#}"))?;
            if let Some(path) = evidence {
                let json = serde_json::to_string_pretty(&evidence_doc)?;
                crate::gate::write_file(path, &(json + "\n"))?;
            }
            if let Some(path) = junit {
                crate::gate::write_file(path, &crate::report::junit::junit(&evidence_doc))?;
            }
            match report {
                Some(path) => {
                    crate::gate::write_file(path, &markdown)?;
                    eprintln!("{}", evidence_doc.verdict.headline());
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(markdown.as_bytes())?;
                    out.flush()?;
                }
            }
            Ok(match evidence_doc.verdict.state {
                crate::policy::State::Pass | crate::policy::State::NeedsTradeoff => Exit::Ok,
                crate::policy::State::Blocked => Exit::Failed,
                crate::policy::State::Error => Exit::Undecided,
            })
        }
        Command::Learn { from, into, reason } => {
            crate::learn::run(from, into, reason.as_deref(), env)
        }
        Command::Merge { .. }
        | Command::Action
        | Command::Rollout { .. }
        | Command::Rollback { .. } => unreachable!("handled above"),
    }
}

/// The plans for `eval`: the named artifacts (or all) with their cases, filtered.
/// Problems in the artifacts or their suites come back as diagnostics.
fn eval_plans(
    snapshot: &Snapshot,
    wanted: &[String],
    segments: &[String],
    shard: Option<Shard>,
    run: &RunArgs,
) -> anyhow::Result<Result<Vec<Plan>, crate::diag::Diagnostics>> {
    let mut problems = snapshot.config_problems.clone();
    let globs = crate::repo::build_globs(segments)
        .map_err(|(i, e)| anyhow::anyhow!("--segment `{}`: {e}", segments[i]))?;
    let wanted: Vec<&str> = wanted.iter().map(|w| w.trim_start_matches("./")).collect();
    let paths = snapshot.artifact_paths()?;
    let mut artifacts = Vec::new();
    for path in &paths {
        match snapshot.load_artifact(path) {
            Ok(a) => artifacts.push(a),
            Err(p) => {
                if wanted.is_empty() || wanted.contains(&path.as_str()) {
                    problems.extend(p);
                }
            }
        }
    }
    let mut chosen = Vec::new();
    for &w in &wanted {
        match artifacts.iter().position(|a| a.path == w || a.id == w) {
            Some(i) => chosen.push(artifacts.swap_remove(i)),
            None if paths.iter().any(|p| p == w) => {}
            None => anyhow::bail!(
                "no artifact `{w}` (give a path or an id; `promptgate validate` lists problems)"
            ),
        }
    }
    if wanted.is_empty() {
        chosen = artifacts;
    }
    let repeats = run.repeats.unwrap_or(snapshot.config.gate.repeats);
    let mut plans = Vec::new();
    for artifact in chosen {
        let mut eval = snapshot.eval_set(&artifact).0;
        for file in &artifact.evals {
            problems.extend(snapshot.suite(file).1.clone());
        }
        problems.extend(snapshot.eval_set(&artifact).1);
        if !segments.is_empty() {
            eval.cases
                .retain(|c| c.segments.iter().any(|s| globs.is_match(s)));
        }
        plans.push(Plan {
            artifact,
            eval,
            repeats,
            shard,
        });
    }
    if !segments.is_empty() && plans.iter().all(|p| p.eval.cases.is_empty()) {
        anyhow::bail!(
            "no case is in a segment matching {}",
            segments
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    problems
        .0
        .retain(|d| d.severity == crate::diag::Severity::Error);
    Ok(if problems.is_empty() {
        Ok(plans)
    } else {
        Err(problems)
    })
}

/// Run `plans` on a tokio runtime with the engine the options describe.
pub fn run_plans(
    config: &crate::config::Config,
    env: &Env,
    root: &std::path::Path,
    run: &RunArgs,
    plans: Vec<Plan>,
) -> anyhow::Result<Vec<result::ArtifactRun>> {
    use std::io::IsTerminal;
    let progress = if std::io::stderr().is_terminal() && !env.ci {
        crate::eval::progress::Style::Bar
    } else {
        crate::eval::progress::Style::Lines
    };
    let options = runner::Options {
        provider: run.provider.clone(),
        cache: if run.no_cache {
            None
        } else {
            env.cache_dir.clone()
        },
        record: run.record.as_ref().map(|d| root.join(d)),
        backoff: runner::Backoff::default(),
        progress: Some(progress),
    };
    let engine = std::sync::Arc::new(Engine::new(config, &env.secrets, root, &plans, options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(engine.run(plans))
}

/// Write `report` in `format` to `path`, or to stdout. JSON is streamed: a large run's
/// document is never held in memory whole.
fn write_eval(
    report: &EvalReport,
    format: EvalFormat,
    path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        EvalFormat::Table => out.write_all(crate::eval::render::table(report).as_bytes())?,
        EvalFormat::Junit => out.write_all(crate::eval::render::junit(report).as_bytes())?,
        EvalFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush().with_context(|| {
        format!(
            "cannot write {}",
            path.map_or("stdout".into(), |p| p.display().to_string())
        )
    })
}

/// 0 when every case passed, [`Exit::Failed`] when some failed, [`Exit::Undecided`]
/// when some could not be evaluated.
fn eval_exit(report: &EvalReport) -> Exit {
    let cases = || report.runs.iter().flat_map(|r| &r.run.cases);
    if cases().any(|c| c.outcome == Outcome::Error) {
        Exit::Undecided
    } else if cases().any(|c| c.outcome == Outcome::Fail) {
        Exit::Failed
    } else {
        Exit::Ok
    }
}
