//! `promptgate rollout watch`: the canary judged from Prometheus on a schedule, by the
//! same requests `rollout check` and `rollout advance` make. A breach counts and, past
//! `failure_limit`, freezes (all traffic on stable); a healthy canary advances when
//! `--auto-advance` allows it; it ends when the rollout does. Each change is mirrored to
//! the flagd file and announced to a Slack-compatible webhook.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::command::{self, End, Listing, Metrics, ReleaseRequest};
use super::{Refused, Release, Runtime, prometheus};
use crate::secret::Secret;

/// A `rollout watch` request, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest<'a> {
    pub artifact: &'a str,
    pub source: &'a prometheus::Source,
    /// Advance a healthy canary (with enough samples) without a person.
    pub auto_advance: bool,
    /// Also write the flagd flag definition here after each change.
    pub flagd: Option<&'a Path>,
    /// A Slack-compatible incoming webhook told of each breach, freeze, advance and
    /// promotion.
    pub notify: Option<&'a Secret>,
}

/// How a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// The canary became stable for everyone.
    Promoted,
    /// A breach froze the rollout (or it was frozen meanwhile): everyone on stable.
    Frozen,
    /// The rollout ended otherwise: rolled back, or another version's started.
    Ended,
    /// A signal asked it to stop, between two checks.
    Stopped,
}

/// Whether the rollout of `version` is over, and how; `None` while it goes on.
fn ended(artifact: &str, release: Option<&Release>, version: &str) -> Option<(Watched, String)> {
    let Some(release) = release else {
        return Some((
            Watched::Ended,
            format!("{artifact}: no longer in the runtime config; the watch ends"),
        ));
    };
    if release.frozen {
        return Some((
            Watched::Frozen,
            format!(
                "{artifact}: frozen ({}); all traffic on stable version {}; the watch ends",
                release.frozen_because.as_deref().unwrap_or("by hand"),
                release.stable.version.text()
            ),
        ));
    }
    match &release.canary {
        Some(c) if c.version.text() == version => None,
        None if release.stable.version.text() == version => Some((
            Watched::Promoted,
            format!(
                "{artifact}: version {version} is stable for everyone; the rollout is complete"
            ),
        )),
        _ => Some((
            Watched::Ended,
            format!(
                "{artifact}: the rollout of version {version} ended without promotion (rolled back, or replaced); the watch ends"
            ),
        )),
    }
}

/// What a change from `before` to `after` is worth telling people: a breach counted, a
/// freeze, an advance, a promotion.
pub fn events(artifact: &str, before: Option<&Release>, after: Option<&Release>) -> Vec<String> {
    let (Some(before), Some(after)) = (before, after) else {
        return Vec::new();
    };
    let Some(was) = &before.canary else {
        return Vec::new();
    };
    let version = was.version.text();
    let mut out = Vec::new();
    if after.frozen && !before.frozen {
        out.push(format!(
            "promptgate: `{artifact}` version {version} FROZEN at stage {}: all traffic back on stable version {} ({})",
            was.stage.word(),
            after.stable.version.text(),
            after.frozen_because.as_deref().unwrap_or("by hand")
        ));
        return out;
    }
    match &after.canary {
        Some(now) if now.version.text() == version => {
            if now.breaches > was.breaches {
                out.push(format!(
                    "promptgate: `{artifact}` version {version} breached its thresholds at stage {} ({} in a row; it freezes after {})",
                    now.stage.word(),
                    now.breaches,
                    after.thresholds.failure_limit + 1
                ));
            }
            if now.stage != was.stage {
                out.push(format!(
                    "promptgate: `{artifact}` version {version} advanced from stage {} to stage {} ({}% of {})",
                    was.stage.word(),
                    now.stage.word(),
                    now.percent,
                    now.segments.join(", ")
                ));
            }
        }
        None if after.stable.version.text() == version => out.push(format!(
            "promptgate: `{artifact}` version {version} promoted: stable for everyone"
        )),
        _ => {}
    }
    out
}

/// POST `{"text": …}` to a Slack-compatible webhook, once (a notification sent twice is
/// worse than one late). The URL is a secret and is never in the error.
pub fn notify(url: &Secret, text: &str) -> Result<(), String> {
    let post = async {
        let client =
            prometheus::client(Duration::from_secs(10)).map_err(prometheus::error_chain)?;
        let response = client
            .post(url.expose())
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map_err(prometheus::error_chain)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                url.scrub(&body.chars().take(200).collect::<String>())
            ))
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(post)
}

/// Watch the canary of `request.artifact` until its rollout ends or `wait` (called
/// between checks, the interval's sleep) says to stop. Each check is `rollout advance
/// --from STAGE` with `auto_advance`, else `rollout check`, against Prometheus; what it
/// prints goes to `say`. An unreadable Prometheus holds and the watch goes on.
pub fn watch(
    path: &Path,
    env: &crate::env::Env,
    request: &WatchRequest,
    reason: Option<&str>,
    mut say: impl FnMut(&str),
    mut wait: impl FnMut() -> bool,
) -> Result<Watched> {
    let artifact = request.artifact;
    let first = command::load(path)?;
    let release = first
        .artifacts
        .get(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.to_string()))?;
    let version = release
        .canary
        .as_ref()
        .ok_or_else(|| Refused::NoCanary(artifact.to_string()))?
        .version
        .text();
    // A change flagd could not be told of is not made: the export is tried first.
    if request.flagd.is_some() {
        super::flagd::export_text(path, &first)?;
    }
    let tell = |text: &str| {
        if let Some(url) = request.notify
            && let Err(e) = notify(url, text)
        {
            tracing::warn!("the notification webhook failed: {e}");
        }
    };
    loop {
        let before: Runtime = command::load(path)?;
        if let Some((end, words)) = ended(artifact, before.artifacts.get(artifact), &version) {
            say(&crate::diag::terminal_text(format!("{words}\n")));
            return Ok(end);
        }
        let stage = before.artifacts[artifact]
            .canary
            .as_ref()
            .map(|c| c.stage)
            .ok_or_else(|| Refused::NoCanary(artifact.to_string()))?;
        let metrics = Metrics::Prometheus(request.source);
        let auto_advance =
            request.auto_advance || before.artifacts[artifact].thresholds.auto_advance;
        let check = if auto_advance {
            ReleaseRequest::Advance {
                artifact,
                from: stage,
                metrics: Some(metrics),
                force: None,
            }
        } else {
            ReleaseRequest::Check {
                artifact,
                metrics,
                format: Listing::Table,
            }
        };
        match command::run(path, env, &check, reason) {
            Ok(done) => {
                if !done.problems.is_empty() {
                    say(&format!("{}\n", done.problems));
                }
                say(&done.output);
                if done.end == End::Unavailable {
                    tracing::warn!("{artifact}: Prometheus could not be read; the canary holds");
                }
            }
            // Someone moved or froze it between the read and the check: look again.
            Err(e)
                if matches!(
                    e.downcast_ref::<Refused>(),
                    Some(Refused::Moved { .. } | Refused::Frozen { .. })
                ) =>
            {
                say(&crate::diag::terminal_text(format!(
                    "{artifact}: {e}; looking again\n"
                )));
            }
            Err(e) => return Err(e),
        }
        let after = command::load(path)?;
        if after != before {
            if let Some(flagd) = request.flagd {
                super::flagd::mirror(path, flagd)?;
            }
            for text in events(
                artifact,
                before.artifacts.get(artifact),
                after.artifacts.get(artifact),
            ) {
                tell(&text);
            }
        }
        if let Some((end, words)) = ended(artifact, after.artifacts.get(artifact), &version) {
            say(&crate::diag::terminal_text(format!("{words}\n")));
            return Ok(end);
        }
        if wait() {
            say(&crate::diag::terminal_text(format!(
                "{artifact}: stopped by a signal; the rollout of version {version} goes on, unwatched\n"
            )));
            return Ok(Watched::Stopped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{advance, breached, freeze};

    fn runtime() -> Runtime {
        crate::rollout::started()
    }

    /// The webhook URL is a credential: a failure says what happened, not where.
    #[test]
    fn a_failing_webhook_is_an_error_without_its_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let url = Secret::new(format!(
            "http://127.0.0.1:{port}/services/T0/B0/XOXB-SECRET"
        ));
        let err = notify(&url, "frozen").expect_err("nothing listens");
        assert!(
            !err.contains("XOXB-SECRET") && !err.contains("/services/"),
            "{err}"
        );
        assert!(
            err.contains("Connection refused") || err.contains("connect"),
            "{err}"
        );
    }

    fn events_of(before: &Runtime, after: &Runtime) -> Vec<String> {
        events("a", before.artifacts.get("a"), after.artifacts.get("a"))
    }

    #[test]
    fn breaches_freezes_advances_and_promotion_are_told() {
        let rt = runtime();
        let mut breach = rt.clone();
        breached(&mut breach, "a", "4", crate::rollout::Stage::Internal, "x").expect("counts");
        let told = events_of(&rt, &breach);
        assert!(
            told[0].contains(
                "breached its thresholds at stage internal (1 in a row; it freezes after 2)"
            ),
            "{told:?}"
        );

        let mut frozen = breach.clone();
        freeze(&mut frozen, "a", "fallback rate 20%").expect("freezes");
        let told = events_of(&breach, &frozen);
        assert_eq!(told.len(), 1);
        assert!(
            told[0].contains(
                "FROZEN at stage internal: all traffic back on stable version 3 (fallback rate 20%)"
            ),
            "{told:?}"
        );
        assert_eq!(
            ended("a", frozen.artifacts.get("a"), "4").map(|e| e.0),
            Some(Watched::Frozen)
        );

        let mut walked = rt.clone();
        advance(&mut walked, "a", crate::rollout::Stage::Internal, "t").expect("advances");
        assert!(
            events_of(&rt, &walked)[0].contains("advanced from stage internal to stage low-risk")
        );
        for from in [
            crate::rollout::Stage::LowRisk,
            crate::rollout::Stage::Cohort,
        ] {
            advance(&mut walked, "a", from, "t").expect("advances");
        }
        let before = walked.clone();
        advance(&mut walked, "a", crate::rollout::Stage::All, "t").expect("promotes");
        assert_eq!(
            events_of(&before, &walked),
            ["promptgate: `a` version 4 promoted: stable for everyone"]
        );
        assert_eq!(
            ended("a", walked.artifacts.get("a"), "4").map(|e| e.0),
            Some(Watched::Promoted)
        );
        // Nothing changed, nothing told; a rollback is the end of the watch.
        assert!(events_of(&rt, &rt).is_empty());
        let mut rolled = rt.clone();
        crate::rollout::rollback(
            &mut rolled,
            "a",
            &crate::artifact::native::Version::Number(4),
        )
        .expect("rolls back");
        assert_eq!(
            ended("a", rolled.artifacts.get("a"), "4").map(|e| e.0),
            Some(Watched::Ended)
        );
        assert_eq!(ended("a", rt.artifacts.get("a"), "4"), None);
    }
}
