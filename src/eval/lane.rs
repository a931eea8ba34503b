//! A provider's lane: bounded concurrency, pacing to its requests-per-minute limit, and
//! the retrying request (backoff that honours `Retry-After`, through [`crate::retry`]).
//! An answer with nothing in it is no answer: retried like an unreadable one.

use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};

use super::provider::{Completion, Provider, ProviderError, Settings};
use super::request::ChatRequest;
use crate::retry::Backoff;

/// Longest `Retry-After` honoured; a provider asking for more fails the request.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Spaces requests to stay under a requests-per-minute limit.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(per_minute: u32) -> Self {
        Pacer {
            interval: Duration::from_secs(60) / per_minute,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// A provider with its limits.
pub(super) struct Lane {
    pub(super) name: String,
    pub(super) provider: Box<dyn Provider>,
    permits: Semaphore,
    pacer: Option<Pacer>,
    max_retries: u32,
}

/// An answer from the provider itself, with how long the attempt that gave it took
/// and the retries before it.
pub(super) struct Answered {
    pub(super) completion: Completion,
    pub(super) elapsed: Duration,
    pub(super) retries: u32,
}

impl Lane {
    /// The lane of provider `name`, which `settings` describe, built as `provider`.
    pub(super) fn new(name: &str, settings: &Settings, provider: Box<dyn Provider>) -> Lane {
        Lane {
            name: name.to_string(),
            provider,
            permits: Semaphore::new(settings.concurrency),
            pacer: settings.requests_per_minute.map(Pacer::new),
            max_retries: settings.max_retries,
        }
    }

    /// Requests the lane lets run at once.
    pub(super) fn concurrency(&self) -> usize {
        self.permits.available_permits()
    }

    /// Ask the provider, within the lane's limits, retrying what may succeed on another
    /// try after the waits `backoff` gives. The error carries the retries made.
    pub(super) async fn complete(
        &self,
        request: &ChatRequest,
        sample: u32,
        backoff: &Backoff,
    ) -> Result<Answered, (ProviderError, u32)> {
        let attempt = |_| async move {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| ProviderError::Unavailable("engine closed".into()))?;
            if let Some(pacer) = &self.pacer {
                pacer.wait().await;
            }
            let start = Instant::now();
            let completion = self.provider.complete(request, sample).await?;
            if !completion.is_answer() {
                // Unreadable, like a mangled body: a live model may answer on another
                // try; a recording will not.
                let why = completion.emptiness();
                return Err(match self.provider.live() {
                    true => ProviderError::Malformed(why),
                    false => ProviderError::Unavailable(format!("recorded answer: {why}")),
                });
            }
            Ok((completion, start.elapsed()))
        };
        let wait = |e: &ProviderError, retry: u32| {
            if !e.retryable() || e.retry_after().is_some_and(|d| d > MAX_RETRY_AFTER) {
                return None;
            }
            let wait = backoff.wait(retry, e.retry_after());
            tracing::debug!(
                "provider `{}`: {e}; retry {} in {wait:.1?}",
                self.name,
                retry + 1
            );
            Some(wait)
        };
        backoff.run(self.max_retries, attempt, wait).await.map(
            |((completion, elapsed), retries)| Answered {
                completion,
                elapsed,
                retries,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::config::ProviderKind;
    use crate::eval::request::{Format, Params};
    use crate::retry::Sleeper;

    /// A provider that answers with `script`'s results in turn, then `ok`; live unless
    /// said.
    struct Scripted(StdMutex<Vec<Result<Completion, ProviderError>>>, bool);

    fn text(text: &str) -> Completion {
        Completion {
            text: text.into(),
            ..Completion::default()
        }
    }

    impl Provider for Scripted {
        fn identity(&self) -> String {
            "scripted".into()
        }

        fn live(&self) -> bool {
            self.1
        }

        fn complete<'a>(
            &'a self,
            _: &'a ChatRequest,
            _: u32,
        ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
            let mut script = self.0.lock().expect("script");
            let next = if script.is_empty() {
                Ok(text("ok"))
            } else {
                script.remove(0)
            };
            Box::pin(async move { next })
        }
    }

    fn lane(max_retries: u32, script: Vec<Result<Completion, ProviderError>>) -> Lane {
        scripted(max_retries, script, true)
    }

    fn scripted(
        max_retries: u32,
        script: Vec<Result<Completion, ProviderError>>,
        live: bool,
    ) -> Lane {
        let settings = Settings {
            name: "scripted".into(),
            kind: ProviderKind::Openai,
            base_url: String::new(),
            api_key: None,
            api_key_env: None,
            concurrency: 1,
            requests_per_minute: None,
            timeout: Duration::from_secs(60),
            max_retries,
            dir: None,
        };
        Lane::new(
            "scripted",
            &settings,
            Box::new(Scripted(StdMutex::new(script), live)),
        )
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            params: Params::default(),
            format: Format::Text,
            messages: Vec::new(),
            tools: Vec::new(),
        }
    }

    fn limited(after_s: u64) -> Result<Completion, ProviderError> {
        Err(ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(after_s)),
            body: "slow down".into(),
        })
    }

    fn server() -> Result<Completion, ProviderError> {
        Err(ProviderError::Server {
            status: 503,
            body: "busy".into(),
        })
    }

    fn recorded() -> (Backoff, crate::retry::Waits) {
        let (sleeper, waits) = Sleeper::recording();
        let backoff = Backoff {
            sleeper,
            ..Backoff::default()
        };
        (backoff, waits)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff_on_the_given_clock() {
        // Tokio's clock, paused: the waits pass at once, and are measured.
        let backoff = Backoff::default();
        let start = tokio::time::Instant::now();
        let got = lane(4, vec![server(), server(), limited(3)])
            .complete(&request(), 0, &backoff)
            .await
            .map_err(|(e, _)| e)
            .expect("answers after three retries");
        assert_eq!(got.retries, 3);
        let waited = start.elapsed();
        // 250–500 ms, 500 ms–1 s, then the Retry-After's 3 s plus up to 10%.
        let (least, most) = (Duration::from_millis(3_750), Duration::from_millis(4_800));
        assert!(waited >= least && waited <= most, "{waited:?}");
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_its_limit() {
        let (backoff, waits) = recorded();
        let got = lane(4, vec![limited(2)])
            .complete(&request(), 0, &backoff)
            .await
            .map_err(|(e, _)| e)
            .expect("answers");
        assert_eq!(got.retries, 1);
        let waited = waits.take();
        assert!(
            waited.len() == 1
                && waited[0] >= Duration::from_secs(2)
                && waited[0] <= Duration::from_millis(2_200),
            "{waited:?}"
        );
        // Longer than promptgate waits: the request fails at once.
        let Err((e, retries)) = lane(4, vec![limited(121)])
            .complete(&request(), 0, &backoff)
            .await
        else {
            panic!("a 121 s Retry-After is not waited for");
        };
        assert!(matches!(e, ProviderError::RateLimited { .. }), "{e}");
        assert_eq!(retries, 0);
        assert!(waits.take().is_empty());
    }

    #[tokio::test]
    async fn the_retries_run_out_and_a_refusal_is_not_retried() {
        let (backoff, waits) = recorded();
        let Err((e, retries)) = lane(2, vec![server(), server(), server(), server()])
            .complete(&request(), 0, &backoff)
            .await
        else {
            panic!("fails after two retries");
        };
        assert!(matches!(e, ProviderError::Server { .. }), "{e}");
        assert_eq!(retries, 2);
        assert_eq!(waits.take().len(), 2);

        let refused = Err(ProviderError::Refused {
            status: 400,
            body: "bad request".into(),
        });
        let Err((e, retries)) = lane(2, vec![refused])
            .complete(&request(), 0, &backoff)
            .await
        else {
            panic!("a refusal is final");
        };
        assert!(matches!(e, ProviderError::Refused { .. }), "{e}");
        assert_eq!(retries, 0);
        assert!(waits.take().is_empty());
    }

    #[tokio::test]
    async fn an_answer_with_nothing_in_it_is_retried_then_an_error() {
        let (backoff, waits) = recorded();
        let nothing = || {
            Ok(Completion {
                text: " \n".into(),
                finish_reason: Some("stop".into()),
                ..Completion::default()
            })
        };
        // Live: retried like an unreadable answer; the next one is judged.
        let got = lane(2, vec![nothing()])
            .complete(&request(), 0, &backoff)
            .await
            .map_err(|(e, _)| e)
            .expect("answers on the retry");
        assert_eq!((got.completion.text.as_str(), got.retries), ("ok", 1));
        waits.take();
        // Nothing on every try: an error, never an empty answer.
        let Err((e, retries)) = lane(2, vec![nothing(), nothing(), nothing()])
            .complete(&request(), 0, &backoff)
            .await
        else {
            panic!("an empty answer is not an answer");
        };
        assert_eq!(
            e.to_string(),
            "answer unreadable: no text and no tool call in the answer (finish reason `stop`)"
        );
        assert_eq!(retries, 2);
        waits.take();
        // A recording of nothing: not asked again.
        let Err((e, retries)) = scripted(2, vec![nothing()], false)
            .complete(&request(), 0, &backoff)
            .await
        else {
            panic!("an empty recording is not an answer");
        };
        assert!(matches!(e, ProviderError::Unavailable(_)), "{e}");
        assert_eq!(retries, 0);
        assert!(waits.take().is_empty());
        // A refusal with its text, and a tool call without text, are answers.
        let refused = Completion {
            refusal: true,
            ..text(crate::eval::provider::REFUSED_WITHOUT_TEXT)
        };
        let calls = Completion {
            calls: vec![crate::eval::request::Call {
                id: "c".into(),
                name: "lookup".into(),
                arguments: serde_json::json!({}),
            }],
            ..Completion::default()
        };
        for answer in [refused, calls] {
            let got = lane(0, vec![Ok(answer.clone())])
                .complete(&request(), 0, &backoff)
                .await
                .map_err(|(e, _)| e)
                .expect("an answer");
            assert_eq!(got.completion, answer);
        }
    }
}
