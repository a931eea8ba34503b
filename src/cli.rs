//! The command line: parsing, logging, and running each command to an exit code.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::changes::{self, Refs, render};
use crate::env::Env;
use crate::exit::Exit;
use crate::repo::Snapshot;
use crate::source::fs::{WorkTree, find_root};
use crate::source::git::Git;
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

pub fn init_logging(cli: &Cli, env: &Env) {
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = env
        .log_filter
        .clone()
        .unwrap_or_else(|| default.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!env.no_color && !env.ci)
        .with_target(false)
        .try_init();
}

/// Run the command; errors are printed here and become exit codes.
pub fn run(cli: Cli, env: &Env) -> Exit {
    match dispatch(cli, env) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::ToolError
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

fn dispatch(cli: Cli, _env: &Env) -> anyhow::Result<Exit> {
    let root = repo_root(&cli)?;
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
            let git = Git::open(&root)?;
            let (head_commit, merge_base, entries) = git.pull_request_diff(base, head)?;
            let base_tree = git.tree(&merge_base)?;
            let head_tree = git.tree(&head_commit)?;
            let base_snap = Snapshot::open(&base_tree, cli.config.as_deref());
            let head_snap = Snapshot::open(&head_tree, cli.config.as_deref());
            let set = changes::detect(
                &base_snap,
                &head_snap,
                &entries,
                Refs {
                    base: base.clone(),
                    head: head.clone(),
                    merge_base,
                    head_commit,
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
    }
}
