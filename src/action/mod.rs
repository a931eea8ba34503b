//! `promptgate action`: the container entrypoint. Reads the runner's environment and
//! event, runs the gate (or only the approval step), keeps one sticky comment on the
//! pull request, and sets the required status.
//!
//! | event | what runs |
//! |---|---|
//! | `pull_request` opened, synchronize, reopened, ready_for_review, edited | the gate, then approvals |
//! | `pull_request` labeled, unlabeled; `pull_request_review` | approvals only, reusing the evaluation recorded for the same head commit (the gate if there is none) |
//! | `pull_request` closed | nothing |
//! | `workflow_dispatch` with input `pull-request` | the gate on that pull request (how a maintainer evaluates a fork's PR) |
//! | `workflow_dispatch`, `push` | the gate on the pushed commit: outputs, summary, a status under `<context>/<event>`; no comment or approvals |
//! | any, with input `head-ref` | the gate on that ref against `base-ref`, like `push` |
//!
//! A pull request from a fork gets no secrets: the status stays pending and says a
//! maintainer must run the evaluation. The status is never success on an error, and if
//! it cannot be posted the action fails.

mod comment;
mod eligibility;
mod event;
mod git;
mod output;
mod project;
mod runner;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use jiff::Timestamp;

use crate::approval::{self, Approvals, Eligibility, LabelEvent};
use crate::config::ApprovalsConfig;
use crate::diag::terminal_text;
use crate::env::Env;
use crate::eval::RunOptions;
use crate::eval::progress::Style;
use crate::evidence::Evidence;
use crate::github::GitHub;
use crate::policy::State;
use crate::report::{COMMENT_LIMIT, Template, utf16_len};
use crate::status::StatusState;
use comment::Record;
use eligibility::eligibility;
use event::{PrTarget, Task};
use git::{ensure_commits, rev_parse};
use output::{Annotation, Level};
use project::{annotations, commit_status, failed, regressions, state_word, word};
use runner::Runner;

/// Annotations per run; GitHub shows ten per step anyway.
const MAX_ANNOTATIONS: usize = 10;
/// Room the comment keeps free for its approvals table, which a label run rewrites and
/// may lengthen (a reason per role), so the rewritten comment stays under the limit.
const APPROVALS_ROOM: usize = 2_000;
/// Room for the report in the job summary and `report-path`: as much as the template
/// shows, in UTF-16 units few enough that the UTF-8 fits the summary's byte cap.
const FULL_ROOM: usize = output::SUMMARY_LIMIT / 3;

/// How a run of the action ended: nothing to do, the status it set on the commit, or
/// a failure after which it set the status to `error` (an error like any other, but
/// the commit says so: exit 5, not 1).
#[derive(Debug)]
pub enum Ran {
    Skipped,
    Status(StatusState),
    Failed(anyhow::Error),
}

/// Run the action in the runner's environment; `progress` is how evaluations show
/// their progress on stderr.
pub fn run(env: &Env, progress: Style) -> Result<Ran> {
    let runner = Runner::read(env)?;
    let token = runner
        .inputs
        .token
        .clone()
        .context("input `github-token` is empty: pass `github-token: ${{ github.token }}` (the default) or another token")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // octocrab starts its connection worker on the current runtime.
    let _entered = rt.enter();
    let gh = GitHub::new(
        &runner.api_url,
        token.expose(),
        &runner.repository,
        runner.github_timeout,
    )?;
    let gh = match runner.retry_base {
        Some(base) => gh.with_retry(crate::retry::Backoff {
            base,
            ..GitHub::backoff()
        }),
        None => gh,
    };
    // Nothing a pull request controls (an artifact's text in an error, a model's answer)
    // may be taken for a workflow command: commands stay off except for our own
    // annotations, printed between a resume and a new stop.
    let resume = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    println!("::stop-commands::{resume}");
    let job = rt.block_on(event::task(&runner, &gh))?;
    let action = Action {
        runner: &runner,
        gh: &gh,
        rt: &rt,
        env,
        identity: std::cell::OnceCell::new(),
        status_set: std::cell::Cell::new(None),
        resume,
        progress,
    };
    let ran = match job {
        Task::Skip(why) => {
            println!("promptgate: nothing to do: {}", terminal_text(why));
            Ok(Ran::Skipped)
        }
        Task::Fork(pr) => action.fork(&pr),
        Task::Gate(pr) => action.gate_pr(&pr),
        Task::Approvals(pr) => action.approvals_only(&pr),
        Task::Commit { base, head } => action.gate_commit(&base, &head),
    };
    match ran {
        Ok(ran) => Ok(ran),
        Err(e) => {
            // The outputs say what the commit now shows, also when the run failed.
            let _ = action.write_outputs(&Finished {
                state: StatusState::Error,
                description: failed(&e),
                verdict: Some(State::Error),
                regressions: 0,
                report_path: None,
                evidence_path: None,
                junit_path: None,
            });
            match action.status_set.get() {
                Some(StatusState::Error) => Ok(Ran::Failed(e)),
                _ => Err(e),
            }
        }
    }
}

struct Action<'a> {
    runner: &'a Runner,
    gh: &'a GitHub,
    rt: &'a tokio::runtime::Runtime,
    env: &'a Env,
    /// The account the action writes as, learnt from the first status it posts.
    identity: std::cell::OnceCell<String>,
    /// The last status this run set on the commit, if any: what the `status` output
    /// says and what decides the exit code of a failed run.
    status_set: std::cell::Cell<Option<StatusState>>,
    /// Workflow commands are off while anything else is printed (see [`run`]); this
    /// turns them back on.
    resume: String,
    progress: Style,
}

/// What one run decided, for outputs and the exit code.
struct Finished {
    state: StatusState,
    description: String,
    verdict: Option<State>,
    regressions: usize,
    report_path: Option<PathBuf>,
    evidence_path: Option<PathBuf>,
    junit_path: Option<PathBuf>,
}

/// Where a run wrote its files (see [`Action::write_files`]).
struct Files {
    report: PathBuf,
    evidence: PathBuf,
    junit: PathBuf,
}

impl Action<'_> {
    fn root(&self) -> PathBuf {
        self.runner
            .workspace
            .join(&self.runner.inputs.working_directory)
    }

    /// The login our comments carry: the `comment-author` input, else the account that
    /// posted this run's first status. Never a guess: with a GitHub App's token,
    /// assuming `github-actions[bot]` would trust comments any workflow can write.
    fn identity(&self) -> Result<String> {
        if let Some(login) = &self.runner.inputs.comment_author {
            return Ok(login.clone());
        }
        self.identity
            .get()
            .cloned()
            .context("the account the action writes as is not known yet (no status posted)")
    }

    /// Post a commit status (and learn from it who we are).
    fn set_status(
        &self,
        sha: &str,
        context: &str,
        state: StatusState,
        description: &str,
    ) -> Result<()> {
        let description = approval::truncate(description, approval::DESCRIPTION_LIMIT);
        let url = self.runner.run_url();
        let status = self
            .rt
            .block_on(self.gh.set_status(sha, state, context, &description, url.as_deref()))
            .with_context(|| format!("cannot set the `{context}` status on {sha}: the pull request is left without a verdict"))?;
        self.status_set.set(Some(state));
        if let Some(creator) = status.creator {
            let _ = self.identity.set(creator.login);
        }
        Ok(())
    }

    /// Run `job` on pull request `pr`; if it fails, the status says so (fail closed)
    /// and so does our comment, before the error is returned.
    fn fail_closed(
        &self,
        pr: &PrTarget,
        context: &str,
        job: impl FnOnce() -> Result<Ran>,
    ) -> Result<Ran> {
        job().inspect_err(|e| {
            let why = failed(e);
            if let Err(e2) = self.set_status(&pr.head_sha, context, StatusState::Error, &why) {
                eprintln!("promptgate: {}", terminal_text(format!("{e2:#}")));
            }
            if self.runner.inputs.comment
                && let Err(e2) = self.mark_comment_failed(pr, &why)
            {
                eprintln!("promptgate: {}", terminal_text(format!("{e2:#}")));
            }
        })
    }

    /// Our comment, if there is one, after a failed run: it says the run failed, and
    /// shows no approvals this run could not check.
    fn mark_comment_failed(&self, pr: &PrTarget, why: &str) -> Result<()> {
        let identity = self.identity()?;
        let comments = self.rt.block_on(self.gh.comments(pr.number))?;
        let Some(ours) = comment::find_ours(&comments, &identity) else {
            return Ok(());
        };
        let body = ours.body.clone().unwrap_or_default();
        let updated = comment::mark_failed(&body, why, self.runner.run_url().as_deref());
        if updated != body {
            self.rt
                .block_on(self.gh.update_comment(ours.id, &updated))
                .context("cannot say in the comment that the run failed")?;
        }
        Ok(())
    }

    /// Print annotations: the only workflow commands the action lets through.
    fn annotate(&self, annotations: &[Annotation]) {
        if annotations.is_empty() {
            return;
        }
        println!("::{}::", self.resume);
        for a in annotations {
            println!("{}", a.command());
        }
        println!("::stop-commands::{}", self.resume);
    }

    /// The commits present and the policy read from the base: what every pull request
    /// job needs before it may post a status. A failure here is posted under the
    /// default context, the only one known.
    fn prepare(&self, base: &str, head: &str) -> Result<crate::config::Config> {
        let root = self.root();
        let config = self.runner.inputs.config.as_deref();
        ensure_commits(&root, base, head)
            .and_then(|()| crate::gate::policy_config(&root, base, head, config))
            .inspect_err(|e| {
                let context = crate::config::Config::default().status_context;
                let _ = self.set_status(head, &context, StatusState::Error, &failed(e));
            })
    }

    fn base_of(&self, pr: &PrTarget) -> String {
        self.runner
            .inputs
            .base_ref
            .clone()
            .unwrap_or_else(|| pr.base_sha.clone())
    }

    /// A fork's pull request: no secrets, so no evaluation. Pending, never success, and
    /// no failure a contributor cannot act on.
    fn fork(&self, pr: &PrTarget) -> Result<Ran> {
        let description = "fork pull request: a maintainer must run the evaluation";
        let context = self
            .prepare(&self.base_of(pr), &pr.head_sha)
            .map(|c| c.status_context)
            .unwrap_or_else(|_| crate::config::Config::default().status_context);
        let explanation = format!(
            "{}\n## promptgate: ⏳ Waiting for a maintainer\n\nThis pull request comes from a fork, and workflows on forks get no secrets, so promptgate could not evaluate the prompt changes here. A maintainer can run the evaluation from the Actions tab (the `workflow_dispatch` workflow, with `pull-request: {}`); until then the `{context}` status stays pending.\n",
            comment::MARKER,
            pr.number
        );
        match self.set_status(&pr.head_sha, &context, StatusState::Pending, description) {
            // The usual case: a fork's token may not write. Say so, do not fail.
            Err(e) => self.read_only(&e, description),
            Ok(()) => {
                if self.runner.inputs.comment
                    && let Err(e) = self.upsert_comment(pr.number, &explanation)
                {
                    tracing::warn!("cannot post the explanation comment: {e:#}");
                }
            }
        }
        if let Some(path) = &self.runner.step_summary {
            output::write_summary(path, &explanation.replace(comment::MARKER, ""))?;
        }
        self.write_outputs(&Finished {
            state: StatusState::Pending,
            description: description.into(),
            verdict: None,
            regressions: 0,
            report_path: None,
            evidence_path: None,
            junit_path: None,
        })?;
        Ok(Ran::Status(StatusState::Pending))
    }

    /// A fork's run whose token may not write: a notice instead of a failure.
    fn read_only(&self, e: &anyhow::Error, description: &str) {
        eprintln!("promptgate: {}", terminal_text(format!("{e:#}")));
        self.annotate(&[Annotation {
            level: Level::Notice,
            file: None,
            line: None,
            title: "promptgate".into(),
            message: format!(
                "{description}; this run's token cannot post the status (read-only on forks)"
            ),
        }]);
    }

    /// Label or review changes: reuse the evaluation of this head commit if our comment
    /// recorded one, else evaluate.
    fn approvals_only(&self, pr: &PrTarget) -> Result<Ran> {
        let policy = self.prepare(&self.base_of(pr), &pr.head_sha)?;
        let context = policy.status_context;
        if let Err(e) = self.set_status(
            &pr.head_sha,
            &context,
            StatusState::Pending,
            "checking approvals…",
        ) {
            if pr.fork {
                self.read_only(
                    &e,
                    "fork pull request: approvals are checked by a maintainer's run",
                );
                return Ok(Ran::Status(StatusState::Pending));
            }
            return Err(e);
        }
        let identity = self.identity()?;
        let comments = self.rt.block_on(self.gh.comments(pr.number))?;
        let ours = comment::find_ours(&comments, &identity);
        let record = ours
            .and_then(|c| c.body.as_deref())
            .and_then(comment::record)
            .filter(|r| r.head_sha == pr.head_sha);
        let (Some(ours), Some(record)) = (ours, record) else {
            if pr.fork {
                return self.fork(pr);
            }
            println!(
                "promptgate: no evaluation recorded for {}; evaluating",
                pr.head_sha
            );
            return self.evaluate_pr(pr, &self.base_of(pr), &context);
        };
        let ours = ours.clone();
        self.fail_closed(pr, &context, || {
            let approvals = self.approvals(pr, &record.approval_rules, record.head_arrived_at)?;
            let (state, description) = approval::status(&record.verdict, &approvals);
            self.set_status(&pr.head_sha, &context, state, &description)?;
            let section = Template::builtin()
                .render_approvals(&approvals.role_states())
                .map_err(|e| anyhow::anyhow!("cannot render the approvals: {e:#}"))?;
            let body = ours.body.clone().unwrap_or_default();
            if let Some(updated) = comment::replace_approvals(&comment::clear_failed(&body), &section)
                && self.runner.inputs.comment
                && updated != body
            {
                // The status is right either way; only the table in the comment is stale.
                if utf16_len(&updated) > COMMENT_LIMIT {
                    tracing::warn!(
                        "the approvals table would take the comment past GitHub's limit; left as it was"
                    );
                } else if let Err(e) =
                    self.rt.block_on(self.gh.update_comment(ours.id, &updated))
                {
                    tracing::warn!("cannot update the approvals in the comment: {e:#}");
                }
            }
            let outcome = Finished {
                state,
                description,
                verdict: Some(record.verdict.state),
                regressions: record.regressions,
                report_path: None,
                evidence_path: None,
                junit_path: None,
            };
            self.write_outputs(&outcome)?;
            self.say(&outcome);
            Ok(Ran::Status(outcome.state))
        })
    }

    /// When the head commit arrived, from times GitHub wrote (a pull request's author
    /// can backdate a commit, not these): for a push, the event's time; otherwise the
    /// first status the action posted on the commit under the policy's context (every
    /// run posts one before it evaluates). Labels applied before it do not count with
    /// `dismiss_on_push`.
    fn head_arrived_at(&self, pr: &PrTarget, context: &str) -> Result<Timestamp> {
        if let ("opened" | "synchronize" | "reopened", Some(at)) =
            (self.runner.action(), pr.updated_at)
        {
            return Ok(at);
        }
        let identity = self.identity()?;
        let first_status = self
            .rt
            .block_on(self.gh.statuses(&pr.head_sha))?
            .into_iter()
            .filter(|s| {
                s.context == context
                    && s.creator
                        .as_ref()
                        .is_some_and(|c| c.login.eq_ignore_ascii_case(&identity))
            })
            .map(|s| s.created_at)
            .min();
        Ok(first_status.unwrap_or_else(Timestamp::now))
    }

    /// The full job on a pull request.
    fn gate_pr(&self, pr: &PrTarget) -> Result<Ran> {
        let base = self.base_of(pr);
        let policy = self.prepare(&base, &pr.head_sha)?;
        // The policy's context: a pull request cannot rename its own required check.
        self.evaluate_pr(pr, &base, &policy.status_context)
    }

    /// The gate on a prepared pull request ([`Action::prepare`]), under `context`.
    fn evaluate_pr(&self, pr: &PrTarget, base: &str, context: &str) -> Result<Ran> {
        self.set_status(
            &pr.head_sha,
            context,
            StatusState::Pending,
            "evaluating the prompt changes…",
        )?;
        self.fail_closed(pr, context, || {
            let identity = self.identity()?;
            let comments = self.rt.block_on(self.gh.comments(pr.number))?;
            let previous = comment::find_ours(&comments, &identity)
                .and_then(|c| c.body.as_deref())
                .and_then(comment::record)
                .filter(|r| r.head_sha == pr.head_sha);
            let mut evidence = self.evaluate(base, &pr.head_sha, pr.fork)?;
            // The header names branches, as the local `gate` does, not commit ids
            // (which it shows beside them); a `base-ref` input is named as given.
            if let (None, Some(name)) = (&self.runner.inputs.base_ref, &pr.base_branch) {
                evidence.base.clone_from(name);
            }
            if let Some(name) = &pr.head_branch {
                evidence.head.clone_from(name);
            }
            let arrived = match previous {
                Some(r) => r.head_arrived_at,
                None => self.head_arrived_at(pr, context)?,
            };
            let approvals = self.approvals(pr, &evidence.approval_rules, arrived)?;
            evidence.approvals = approvals.role_states();
            let regressions = regressions(&evidence);
            let record = Record::new(&pr.head_sha, arrived, &evidence, regressions);
            let report = self.render(&evidence, FULL_ROOM)?;
            let files = self.write_files(&evidence, &report)?;
            if self.runner.inputs.comment {
                let room = COMMENT_LIMIT
                    .saturating_sub(comment::compose("", &record).len() + APPROVALS_ROOM);
                let shown = self.comment_report(&evidence, room)?;
                self.upsert_comment(pr.number, &comment::compose(&shown, &record))?;
            }
            let (state, description) = approval::status(&evidence.verdict, &approvals);
            self.set_status(&pr.head_sha, context, state, &description)?;
            let outcome = Finished {
                state,
                description,
                verdict: Some(evidence.verdict.state),
                regressions,
                report_path: Some(files.report),
                evidence_path: Some(files.evidence),
                junit_path: Some(files.junit),
            };
            self.finish(&evidence, &report, &outcome)
        })
    }

    /// The gate on a commit, not a pull request: no comment, no approvals. Its status
    /// has a context of its own (`promptgate/push`), so it never stands in for the
    /// pull request's required check, which needs the approvals.
    fn gate_commit(&self, base: &str, head: &str) -> Result<Ran> {
        let policy = self.prepare(base, head)?;
        let context = format!("{}/{}", policy.status_context, self.runner.event_name);
        // A status belongs on a commit GitHub knows: the workflow's own.
        let own = rev_parse(&self.root(), head).as_deref() == Some(self.runner.sha.as_str());
        let post = |state: StatusState, description: &str| -> Result<()> {
            if own {
                self.set_status(head, &context, state, description)
            } else {
                println!(
                    "promptgate: no status set: the evaluated commit is not this workflow's commit {}",
                    self.runner.sha
                );
                Ok(())
            }
        };
        let evidence = match self.evaluate(base, head, false) {
            Ok(e) => e,
            Err(e) => {
                let _ = post(StatusState::Error, &failed(&e));
                return Err(e);
            }
        };
        let report = self.render(&evidence, FULL_ROOM)?;
        let files = self.write_files(&evidence, &report)?;
        let (state, description) = commit_status(&evidence.verdict);
        post(state, &description)?;
        let outcome = Finished {
            state,
            description,
            verdict: Some(evidence.verdict.state),
            regressions: regressions(&evidence),
            report_path: Some(files.report),
            evidence_path: Some(files.evidence),
            junit_path: Some(files.junit),
        };
        self.finish(&evidence, &report, &outcome)
    }

    /// Run the gate; [`Action::prepare`] has made sure the commits are there.
    fn evaluate(&self, base: &str, head: &str, fork: bool) -> Result<Evidence> {
        let root = self.root();
        let run = RunOptions {
            provider: self.runner.inputs.provider.clone(),
            repeats: None,
            record: None,
            cache: self.cache_dir().or_else(|| self.env.cache_dir.clone()),
            progress: Some(self.progress),
            retry_base: self.runner.retry_base,
        };
        let request = crate::gate::Request {
            base,
            head,
            config_path: self.runner.inputs.config.as_deref(),
            run: &run,
            providers_from_base: fork,
        };
        let evidence = crate::gate::run(&root, &self.env.secrets, &request);
        if let Some(dir) = self.cache_dir() {
            // Kept for the next job by `actions/cache`: keep it within its cap.
            let max = self.runner.inputs.cache_max_bytes;
            let p = crate::eval::cache::prune(&dir, max);
            println!(
                "promptgate: answer cache: {} entries, {:.1} MB; {} pruned (cap {} MB)",
                p.kept,
                p.kept_bytes as f64 / 1e6,
                p.removed,
                max / (1024 * 1024)
            );
        }
        evidence
    }

    /// The `cache-dir` input, in the workspace.
    fn cache_dir(&self) -> Option<PathBuf> {
        let dir = self.runner.inputs.cache_dir.as_ref()?;
        Some(self.runner.workspace.join(dir))
    }

    fn render(&self, evidence: &Evidence, room: usize) -> Result<String> {
        Template::builtin()
            .render(evidence, room)
            .map_err(|e| anyhow::anyhow!("cannot render the report: {e:#}"))
    }

    /// The report for the comment, within `room` (UTF-16 units). When it shows less than
    /// the job summary does, it says so under its title, and where the rest is.
    fn comment_report(&self, evidence: &Evidence, room: usize) -> Result<String> {
        let summary = match self.runner.run_url() {
            Some(url) => format!("the job summary of [this workflow run]({url})"),
            None => "this workflow run's job summary".to_string(),
        };
        let note = format!(
            "> ✂️ **Shortened to fit GitHub's {COMMENT_LIMIT}-character comment limit.** The full report is in {summary}; the evidence bundle (JSON: the action's `evidence-path` output, beside the JUnit XML) has every case."
        );
        let fitted = Template::builtin()
            .fit(evidence, room.saturating_sub(utf16_len(&note) + 2))
            .map_err(|e| anyhow::anyhow!("cannot render the report: {e:#}"))?;
        if !fitted.shortened {
            return Ok(fitted.text);
        }
        Ok(match fitted.text.split_once('\n') {
            Some((title, rest)) => format!("{title}\n\n{note}\n{rest}"),
            None => format!("{note}\n\n{}", fitted.text),
        })
    }

    /// The report, evidence bundle and JUnit XML under the runner's temp directory.
    fn write_files(&self, evidence: &Evidence, report: &str) -> Result<Files> {
        let dir = self.runner.temp.join("promptgate");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let report_path = dir.join("report.md");
        let evidence_path = dir.join("evidence.json");
        crate::gate::write_file(&report_path, report)?;
        crate::gate::write_file(
            &evidence_path,
            &(serde_json::to_string_pretty(evidence)? + "\n"),
        )?;
        let junit = dir.join("junit.xml");
        crate::gate::write_file(&junit, &crate::report::junit::junit(evidence))?;
        Ok(Files {
            report: report_path,
            evidence: evidence_path,
            junit,
        })
    }

    /// Create the sticky comment or update it in place.
    fn upsert_comment(&self, number: u64, body: &str) -> Result<()> {
        let identity = self.identity()?;
        let find = || -> Result<Option<u64>> {
            let comments = self.rt.block_on(self.gh.comments(number))?;
            Ok(comment::find_ours(&comments, &identity).map(|c| c.id))
        };
        if let Some(id) = find()? {
            self.rt
                .block_on(self.gh.update_comment(id, body))
                .context("cannot update the report comment")?;
            return Ok(());
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let Err(e) = self.rt.block_on(self.gh.create_comment(number, body)) else {
                return Ok(());
            };
            // GitHub refused it (a 422 for a body it will not take, say): the same POST
            // would be refused again.
            if crate::github::refused(&e) {
                return Err(e.context("cannot post the report comment"));
            }
            // The POST may have been carried out before the failure: look again rather
            // than risk a second comment, and post again only if it is not there.
            match find()? {
                Some(id) => {
                    self.rt
                        .block_on(self.gh.update_comment(id, body))
                        .context("cannot update the report comment")?;
                    return Ok(());
                }
                None if tries < 2 => {
                    tracing::warn!("posting the comment failed: {e:#}; trying again")
                }
                None => return Err(e.context("cannot post the report comment")),
            }
        }
    }

    /// Approvals from the pull request's label events.
    fn approvals(
        &self,
        pr: &PrTarget,
        rules: &ApprovalsConfig,
        arrived: Timestamp,
    ) -> Result<Approvals> {
        let events: Vec<LabelEvent> = self
            .rt
            .block_on(self.gh.issue_events(pr.number))?
            .into_iter()
            .filter_map(|e| {
                let applied = match e.event.as_str() {
                    "labeled" => true,
                    "unlabeled" => false,
                    _ => return None,
                };
                // A deleted account is "ghost": its events still count as events
                // (an `unlabeled` still removes), never as an approval.
                let (actor, bot) = e.actor.map_or(("ghost".to_string(), true), |a| {
                    (a.login.clone(), a.is_bot())
                });
                Some(LabelEvent {
                    applied,
                    label: e.label?.name,
                    actor,
                    bot,
                    at: e.created_at,
                })
            })
            .collect();
        let subject = approval::Submission {
            author: &pr.author,
            head_arrived_at: arrived,
        };
        let mut answers = Vec::new();
        for (role, login) in approval::to_check(&events, &subject, rules) {
            let answer = self.rt.block_on(eligibility(self.gh, rules, role, &login));
            answers.push((role, login, answer));
        }
        Ok(approval::decide(&events, &subject, rules, |role, login| {
            answers
                .iter()
                .find(|(r, l, _)| *r == role && l == login)
                .map_or(Eligibility::No, |(_, _, a)| a.clone())
        }))
    }

    fn finish(&self, evidence: &Evidence, report: &str, outcome: &Finished) -> Result<Ran> {
        if let Some(path) = &self.runner.step_summary {
            output::write_summary(path, report)?;
        }
        // Annotations name files from the repository root; the config may live deeper.
        let prefix = Path::new(&self.runner.inputs.working_directory);
        let mut list = annotations(evidence);
        list.truncate(MAX_ANNOTATIONS);
        for a in &mut list {
            a.file = a.file.take().map(|f| {
                let joined = prefix.join(&f);
                let joined = joined.strip_prefix(".").unwrap_or(&joined);
                joined.display().to_string()
            });
        }
        self.annotate(&list);
        self.write_outputs(outcome)?;
        self.say(outcome);
        Ok(Ran::Status(outcome.state))
    }

    /// The run's last line.
    fn say(&self, o: &Finished) {
        println!(
            "promptgate: {} — {}",
            word(o.state),
            terminal_text(o.description.clone())
        );
    }

    fn write_outputs(&self, o: &Finished) -> Result<()> {
        let Some(path) = &self.runner.output else {
            return Ok(());
        };
        let path_text = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        output::write_outputs(
            path,
            &[
                (
                    "verdict",
                    o.verdict.map_or("not-evaluated", state_word).to_string(),
                ),
                // What the commit shows: nothing when no status could be set.
                ("status", self.status_set.get().map_or("", word).to_string()),
                ("regressions", o.regressions.to_string()),
                ("report-path", path_text(&o.report_path)),
                ("evidence-path", path_text(&o.evidence_path)),
                ("junit-path", path_text(&o.junit_path)),
            ],
        )
    }
}
