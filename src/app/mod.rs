//! The command layer: the one place that knows it is a command-line program. It parses
//! arguments ([`args`], clap), sets up logging, dispatches each command to one function
//! over the core's request structs, writes what the core returns to stdout and stderr,
//! and maps outcomes to the documented exit codes ([`exit`]). Terminal detection lives
//! here too. The core never imports this module; the GitHub Action
//! ([`crate::action`]) is the second front end beside it.

pub mod args;
pub mod exit;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use args::Cli;
use args::ValidateFormat;
use args::{
    ChangesFormat, Command, EvalFormat, ExportFormat, ResolveFormat, RolloutCommand, RunArgs,
    StatusFormat,
};
pub use exit::Exit;

use crate::changes::{self, Refs, render};
use crate::env::Env;
use crate::eval::progress::Style;
use crate::eval::result::{self, EvalReport};
use crate::eval::{RunOptions, Selection};
use crate::repo::{PullRequest, Snapshot};
use crate::rollout::command::{self as rollout, Listing, ReleaseRequest};
use crate::source::fs::{WorkTree, find_root};

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
            // The message may quote a file, a runtime config or the command line.
            eprintln!("error: {}", crate::diag::terminal_text(format!("{e:#}")));
            Exit::ToolError
        }
    }
}

/// One match: each command to its function.
fn dispatch(cli: Cli, env: &Env) -> anyhow::Result<Exit> {
    let config = cli.config.as_deref();
    match &cli.command {
        Command::Merge {
            files,
            format,
            output,
        } => merge(files, *format, output.as_deref()),
        Command::Action => action(env),
        Command::Rollout {
            command,
            runtime,
            reason,
            flagd,
        } => {
            let root = repo_root(&cli)?;
            let path = rollout::runtime_path(&root, runtime.as_deref())?;
            let prometheus = match command {
                RolloutCommand::Check {
                    prometheus: Some(url),
                    ..
                }
                | RolloutCommand::Advance {
                    prometheus: Some(url),
                    ..
                }
                | RolloutCommand::Watch {
                    prometheus: url, ..
                } => Some(prometheus_source(url, env)?),
                _ => None,
            };
            match rollout_request(command, &root, config, prometheus.as_ref()) {
                Some(request) => release(&path, env, &request, reason.as_deref(), flagd.as_deref()),
                None => match (command, &prometheus) {
                    (
                        RolloutCommand::Watch {
                            artifact,
                            interval,
                            auto_advance,
                            notify_url,
                            ..
                        },
                        Some(source),
                    ) => {
                        let notify = notify_url.clone().map(crate::secret::Secret::new);
                        let request = crate::rollout::watch::WatchRequest {
                            artifact,
                            source,
                            auto_advance: *auto_advance,
                            flagd: flagd.as_deref(),
                            notify: notify.as_ref(),
                        };
                        watch(&path, env, &request, reason.as_deref(), *interval)
                    }
                    _ => anyhow::bail!("not a rollout request"),
                },
            }
        }
        Command::Rollback {
            artifact,
            from,
            runtime,
            reason,
            flagd,
        } => {
            let path = rollout::runtime_path(&repo_root(&cli)?, runtime.as_deref())?;
            let request = ReleaseRequest::Rollback { artifact, from };
            release(&path, env, &request, reason.as_deref(), flagd.as_deref())
        }
        Command::Resolve {
            artifact,
            key,
            segments,
            runtime,
            format,
        } => {
            let path = rollout::runtime_path(&repo_root(&cli)?, runtime.as_deref())?;
            resolve(&path, artifact, key, segments, *format)
        }
        Command::Bundle { output, runtime } => {
            let root = repo_root(&cli)?;
            let path = rollout::runtime_path(&root, runtime.as_deref())?;
            let bundle = crate::rollout::bundle::make(&root, config, &rollout::load(&path)?)?;
            let text = serde_json::to_string_pretty(&bundle)? + "\n";
            match output {
                Some(out) => crate::store::write_durably(out, &text)?,
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
            Ok(Exit::Ok)
        }
        Command::Export {
            format: ExportFormat::Flagd,
            output,
            runtime,
        } => {
            let path = rollout::runtime_path(&repo_root(&cli)?, runtime.as_deref())?;
            match output {
                Some(out) => crate::rollout::flagd::mirror(&path, out)?,
                None => {
                    let text = crate::rollout::flagd::export_text(&path, &rollout::load(&path)?)?;
                    std::io::stdout().lock().write_all(text.as_bytes())?;
                }
            }
            Ok(Exit::Ok)
        }
        Command::Validate { format } => validate(&repo_root(&cli)?, config, *format),
        Command::Changes { base, head, format } => {
            changes(&repo_root(&cli)?, config, base, head, *format)
        }
        Command::Eval {
            artifacts,
            segment,
            shard,
            run,
            format,
            output,
        } => {
            let selection = Selection {
                artifacts,
                segments: segment,
                shard: *shard,
                repeats: run.repeats,
            };
            let root = repo_root(&cli)?;
            eval(
                &root,
                config,
                env,
                &selection,
                run,
                *format,
                output.as_deref(),
            )
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
            let outputs = GateOutputs {
                report: report.as_deref(),
                evidence: evidence.as_deref(),
                junit: junit.as_deref(),
                template: template.as_deref(),
            };
            gate(&repo_root(&cli)?, config, env, base, head, run, &outputs)
        }
        Command::Learn { from, into, reason } => {
            let root = repo_root(&cli)?;
            let repo = crate::learn::Repository {
                root: &root,
                config,
            };
            learn(&repo, from, into, reason.as_deref(), env)
        }
    }
}

fn repo_root(cli: &Cli) -> anyhow::Result<PathBuf> {
    let start = match &cli.repo {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(find_root(&start))
}

/// How evaluations run from the command line: progress as a bar on a terminal (not in
/// CI), the cache unless `--no-cache`.
fn run_options(run: &RunArgs, env: &Env) -> anyhow::Result<RunOptions> {
    let retry_base = env
        .retry_base_ms
        .as_deref()
        .map(crate::retry::base_setting)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(RunOptions {
        provider: run.provider.clone(),
        repeats: run.repeats,
        record: run.record.clone(),
        cache: if run.no_cache {
            None
        } else {
            env.cache_dir.clone()
        },
        progress: Some(progress_style(env)),
        retry_base,
    })
}

/// A bar on a terminal, a line every 10% elsewhere.
fn progress_style(env: &Env) -> Style {
    if std::io::stderr().is_terminal() && !env.ci {
        Style::Bar
    } else {
        Style::Lines
    }
}

fn validate(root: &Path, config: Option<&str>, format: ValidateFormat) -> anyhow::Result<Exit> {
    let tree = WorkTree::new(root)?;
    let snapshot = Snapshot::open(&tree, config);
    let report = crate::validate::validate(&snapshot)?;
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
    Ok(Exit::from_problems(report.errors() > 0))
}

fn changes(
    root: &Path,
    config: Option<&str>,
    base: &str,
    head: &str,
    format: ChangesFormat,
) -> anyhow::Result<Exit> {
    changes::prepare();
    let pr = PullRequest::open(root, base, head)?;
    let sides = pr.sides(config)?;
    let set = changes::detect(
        &sides.base,
        &sides.head,
        &sides.entries,
        Refs {
            base: base.to_string(),
            head: head.to_string(),
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

fn eval(
    root: &Path,
    config: Option<&str>,
    env: &Env,
    selection: &Selection,
    run: &RunArgs,
    format: EvalFormat,
    output: Option<&Path>,
) -> anyhow::Result<Exit> {
    let tree = WorkTree::new(root)?;
    let snapshot = Snapshot::open(&tree, config);
    let selected = crate::eval::select(&snapshot, selection)?;
    let invalid = !selected.problems.is_empty();
    if invalid {
        eprintln!("{}", selected.problems);
    }
    if selected.plans.is_empty() && invalid {
        return Ok(Exit::Invalid);
    }
    let options = run_options(run, env)?;
    let runs = crate::eval::run(
        &snapshot.config,
        &env.secrets,
        root,
        &options,
        selected.plans,
    )?;
    let report = EvalReport::new(runs);
    write_eval(&report, format, output)?;
    // The valid artifacts were evaluated; the run still says some could not be.
    if invalid {
        return Ok(Exit::Invalid);
    }
    Ok(Exit::of_eval(&report))
}

fn merge(files: &[PathBuf], format: EvalFormat, output: Option<&Path>) -> anyhow::Result<Exit> {
    let reports = files
        .iter()
        .map(|f| {
            let text = crate::format::file_text(f, crate::read::MAX_DATA_BYTES)?;
            serde_json::from_str::<EvalReport>(&text).map_err(|e| {
                let name = f.display().to_string();
                crate::format::json_problem(&name, "not the JSON `promptgate eval` writes", &e)
                    .into()
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = result::merge(reports).map_err(|e| anyhow::anyhow!("cannot merge: {e}"))?;
    write_eval(&merged, format, output)?;
    Ok(Exit::of_eval(&merged))
}

/// Where `gate` writes besides stdout, and the template it renders with.
struct GateOutputs<'a> {
    report: Option<&'a Path>,
    evidence: Option<&'a Path>,
    junit: Option<&'a Path>,
    template: Option<&'a Path>,
}

fn gate(
    root: &Path,
    config: Option<&str>,
    env: &Env,
    base: &str,
    head: &str,
    run: &RunArgs,
    outputs: &GateOutputs,
) -> anyhow::Result<Exit> {
    let template = match outputs.template {
        None => crate::report::Template::builtin(),
        Some(path) => {
            let source = crate::format::file_text(path, crate::read::MAX_FILE_BYTES)
                .map_err(|d| anyhow::anyhow!("cannot read the template: {d}"))?;
            crate::report::Template::new(&path.display().to_string(), source)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?
        }
    };
    let options = run_options(run, env)?;
    let request = crate::gate::Request {
        base,
        head,
        config_path: config,
        run: &options,
        providers_from_base: false,
    };
    let evidence = crate::gate::run(root, &env.secrets, &request)?;
    let markdown = template
        .render(&evidence, crate::report::COMMENT_LIMIT)
        .map_err(|e| anyhow::anyhow!("cannot render the report: {e:#}"))?;
    if let Some(path) = outputs.evidence {
        let json = serde_json::to_string_pretty(&evidence)?;
        crate::gate::write_file(path, &(json + "\n"))?;
    }
    if let Some(path) = outputs.junit {
        crate::gate::write_file(path, &crate::report::junit::junit(&evidence))?;
    }
    match outputs.report {
        Some(path) => {
            crate::gate::write_file(path, &markdown)?;
            eprintln!(
                "{}",
                crate::diag::terminal_text(evidence.verdict.headline())
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(markdown.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(Exit::of_verdict(evidence.verdict.state))
}

/// The Prometheus server a rollout command names, asked with the retry base of the
/// environment (`PROMPTGATE_RETRY_BASE_MS`).
fn prometheus_source(url: &str, env: &Env) -> anyhow::Result<crate::rollout::prometheus::Source> {
    let base = env
        .retry_base_ms
        .as_deref()
        .map(crate::retry::base_setting)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(crate::rollout::prometheus::Source::new(url, base))
}

/// The request a rollout command makes once (`None` for `watch`, which makes many).
fn rollout_request<'a>(
    command: &'a RolloutCommand,
    root: &'a Path,
    config: Option<&'a str>,
    prometheus: Option<&'a crate::rollout::prometheus::Source>,
) -> Option<ReleaseRequest<'a>> {
    let format = |f: &StatusFormat| match f {
        StatusFormat::Table => Listing::Table,
        StatusFormat::Json => Listing::Json,
    };
    let metrics = |file: &'a Option<PathBuf>| match (file, prometheus) {
        (Some(file), _) => Some(rollout::Metrics::File(file)),
        (None, Some(server)) => Some(rollout::Metrics::Prometheus(server)),
        (None, None) => None,
    };
    Some(match command {
        RolloutCommand::Start {
            artifact,
            version,
            stable,
            evidence,
        } => ReleaseRequest::Start {
            repo: root,
            config,
            artifact,
            version,
            stable: stable.as_deref(),
            evidence: evidence.as_deref(),
        },
        RolloutCommand::Advance {
            artifact,
            from,
            metrics: file,
            force,
            why,
            ..
        } => ReleaseRequest::Advance {
            artifact,
            from: *from,
            metrics: metrics(file),
            force: why.as_deref().filter(|_| *force),
        },
        RolloutCommand::Status {
            artifact,
            format: f,
        } => ReleaseRequest::Status {
            artifact: artifact.as_deref(),
            format: format(f),
        },
        RolloutCommand::Check {
            artifact,
            metrics: file,
            format: f,
            ..
        } => ReleaseRequest::Check {
            artifact,
            // clap requires one of `--metrics` and `--prometheus`.
            metrics: metrics(file)?,
            format: format(f),
        },
        RolloutCommand::Watch { .. } => return None,
    })
}

/// `rollout watch`: checks every `interval` until the rollout ends, or SIGINT or
/// SIGTERM arrives (it is noticed between two checks: a check in progress finishes).
fn watch(
    path: &Path,
    env: &Env,
    request: &crate::rollout::watch::WatchRequest,
    reason: Option<&str>,
    interval: std::time::Duration,
) -> anyhow::Result<Exit> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the timer")?;
    let (mut interrupt, mut terminate) = {
        let _entered = rt.enter();
        (
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        )
    };
    let say = |text: &str| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let wait = || {
        rt.block_on(async {
            tokio::select! {
                () = tokio::time::sleep(interval) => false,
                _ = interrupt.recv() => true,
                _ = terminate.recv() => true,
            }
        })
    };
    let watched = crate::rollout::watch::watch(path, env, request, reason, say, wait)?;
    Ok(match watched {
        crate::rollout::watch::Watched::Promoted | crate::rollout::watch::Watched::Stopped => {
            Exit::Ok
        }
        crate::rollout::watch::Watched::Frozen => Exit::Frozen,
        crate::rollout::watch::Watched::Ended => Exit::ToolError,
    })
}

/// `rollout …` and `rollback`.
fn release(
    path: &Path,
    env: &Env,
    request: &ReleaseRequest,
    reason: Option<&str>,
    flagd: Option<&Path>,
) -> anyhow::Result<Exit> {
    // A change flagd could not be told of is not made: the export is tried first.
    if flagd.is_some() {
        crate::rollout::flagd::export_text(path, &rollout::load(path)?)?;
    }
    let done = rollout::run(path, env, request, reason);
    // Whatever the command did or refused, flagd serves what the file now says.
    if let Some(flagd) = flagd {
        crate::rollout::flagd::mirror(path, flagd)?;
    }
    let done = done?;
    if !done.problems.is_empty() {
        eprintln!("{}", done.problems);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(done.output.as_bytes())?;
    out.flush()?;
    Ok(Exit::of_release(done.end))
}

/// `promptgate resolve`: the version, or with `--format json` the version and why.
fn resolve(
    path: &Path,
    artifact: &str,
    key: &str,
    segments: &[String],
    format: ResolveFormat,
) -> anyhow::Result<Exit> {
    let runtime = rollout::load(path)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some(version) = runtime.resolve_request(artifact, &segments, key) else {
        let mut d = crate::diag::Diagnostics::default();
        let known: Vec<&str> = runtime.artifacts.keys().map(String::as_str).collect();
        d.push(
            &path.display().to_string(),
            crate::diag::Pos::START,
            format!(
                "no artifact `{artifact}` in the runtime config (it has: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
        return Err(d.into());
    };
    let text = match format {
        ResolveFormat::Text => crate::diag::terminal_text(format!("{version}\n")),
        ResolveFormat::Json => {
            let release = &runtime.artifacts[artifact];
            let canary = release.canary.as_ref();
            let doc = serde_json::json!({
                "artifact": artifact,
                "version": version,
                "canary": version != release.stable.version.text(),
                "stable": release.stable.version.text(),
                "stage": canary.map(|c| c.stage.word()),
                "frozen": release.frozen,
                "bucket": crate::rollout::bucket(artifact, key),
            });
            serde_json::to_string_pretty(&doc)? + "\n"
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn learn(
    repo: &crate::learn::Repository,
    from: &Path,
    into: &Path,
    reason: Option<&str>,
    env: &Env,
) -> anyhow::Result<Exit> {
    let learned = crate::learn::run(repo, from, into, reason, env)?;
    if !learned.problems.is_empty() {
        eprintln!("{}", learned.problems);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(crate::diag::terminal_text(learned.summary).as_bytes())?;
    out.flush()?;
    Ok(Exit::from_problems(learned.problems.has_errors()))
}

fn action(env: &Env) -> anyhow::Result<Exit> {
    let ran = crate::action::run(env, progress_style(env))?;
    if let crate::action::Ran::Failed(e) = &ran {
        eprintln!("error: {}", crate::diag::terminal_text(format!("{e:#}")));
    }
    Ok(Exit::of_action(&ran))
}

/// Write `report` in `format` to `path`, or to stdout. JSON is streamed: a large run's
/// document is never held in memory whole.
fn write_eval(report: &EvalReport, format: EvalFormat, path: Option<&Path>) -> anyhow::Result<()> {
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
