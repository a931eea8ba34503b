//! Trying an HTTP call again: the one retry mechanism every client uses (the GitHub
//! client and the model providers' lanes).
//!
//! - [`Backoff`]: how long to wait before retry *n* (exponential from a base, capped,
//!   with jitter or without), and the loop that makes the attempts ([`Backoff::run`]).
//! - [`retry_after`]: the `Retry-After` header in both of its forms, delta-seconds and
//!   HTTP-date, against a given "now".
//! - [`classify`]: whether an HTTP answer that is not a success is worth sending again.
//! - [`Sleeper`]: the clock the waits are spent on, a value the client is given, so a
//!   test never sleeps in real time.
//!
//! A leaf: it knows HTTP, not GitHub's or a provider's types.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Waits between attempts: base·2ⁿ for retry *n*, capped, spent on a [`Sleeper`].
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The wait before the first retry (before jitter).
    pub base: Duration,
    /// No computed wait is longer (a server's `Retry-After` is the caller's to bound).
    pub cap: Duration,
    /// Spread the waits so clients that failed together do not return together: a
    /// computed wait becomes half of itself plus a random part of the other half, a
    /// server's `Retry-After` grows by up to 10%.
    pub jitter: bool,
    /// Where the waits are spent.
    pub sleeper: Sleeper,
}

impl Default for Backoff {
    /// The model providers' backoff: 500 ms doubling up to 30 s, jittered, in real time.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            jitter: true,
            sleeper: Sleeper::default(),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based) without jitter: base·2ⁿ, capped.
    pub fn delay(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.cap)
    }

    /// The wait before retry number `retry` (0-based): the server's `Retry-After` when
    /// it gave one, else [`Backoff::delay`]; jittered when [`Backoff::jitter`] is set.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        self.jittered(retry, retry_after, fastrand::f64())
    }

    /// [`Backoff::wait`] with the random draw `r` in `[0, 1)` given, for testing.
    fn jittered(&self, retry: u32, retry_after: Option<Duration>, r: f64) -> Duration {
        match (retry_after, self.jitter) {
            (Some(after), true) => after + after.mul_f64(r * 0.1),
            (Some(after), false) => after,
            (None, true) => {
                let full = self.delay(retry);
                full / 2 + full.mul_f64(r / 2.0)
            }
            (None, false) => self.delay(retry),
        }
    }

    /// Spend `wait` on the sleeper.
    pub async fn sleep(&self, wait: Duration) {
        self.sleeper.sleep(wait).await;
    }

    /// Call `attempt(n)` for n = 0, 1, … until it succeeds, at most `max_retries` times
    /// after the first. After a failure `wait(&error, n)` says how long to wait before
    /// retry `n`, or `None` to give up (it is not asked once the retries are used up).
    /// Returns the value or the last error, each with the number of retries made.
    pub async fn run<T, E, F, Fut>(
        &self,
        max_retries: u32,
        mut attempt: F,
        mut wait: impl FnMut(&E, u32) -> Option<Duration>,
    ) -> Result<(T, u32), (E, u32)>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut retry = 0;
        loop {
            match attempt(retry).await {
                Ok(value) => return Ok((value, retry)),
                Err(e) if retry < max_retries => match wait(&e, retry) {
                    Some(pause) => {
                        self.sleep(pause).await;
                        retry += 1;
                    }
                    None => return Err((e, retry)),
                },
                Err(e) => return Err((e, retry)),
            }
        }
    }
}

/// The clock waits are spent on.
#[derive(Debug, Clone, Default)]
pub enum Sleeper {
    /// Tokio's timer: real time, or the test's paused clock under
    /// `#[tokio::test(start_paused = true)]`.
    #[default]
    Tokio,
    /// Return at once and note the wait asked for: for tests that talk to a real
    /// socket, where a paused clock would run the request timeouts out too.
    Record(Waits),
}

impl Sleeper {
    /// A sleeper that records instead of waiting, and the record.
    pub fn recording() -> (Sleeper, Waits) {
        let waits = Waits::default();
        (Sleeper::Record(waits.clone()), waits)
    }

    pub async fn sleep(&self, wait: Duration) {
        match self {
            Sleeper::Tokio => tokio::time::sleep(wait).await,
            Sleeper::Record(waits) => waits.push(wait),
        }
    }
}

/// The waits a [`Sleeper::Record`] was asked for, in order.
#[derive(Debug, Clone, Default)]
pub struct Waits(Arc<Mutex<Vec<Duration>>>);

impl Waits {
    fn push(&self, wait: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(wait);
    }

    /// Every wait so far, and forget them.
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `Retry-After` as delta-seconds (fractions accepted) or as an HTTP-date, as the wait
/// from `now`; a date already past is no wait. `None` when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// What an answer that is not a success says about sending the request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Rate limited, or told to come back later: the request was not carried out, so
    /// even one that is not idempotent may go again, after `after` when the server said
    /// how long (`Retry-After`, or GitHub's `x-ratelimit-reset`).
    Limited { after: Option<Duration> },
    /// A server error (5xx): the request may have been carried out, so only what is
    /// safe to repeat goes again; after `after` when the server said.
    Server { after: Option<Duration> },
    /// Anything else: sending the same request again cannot help.
    Final,
}

/// Classify an answer by its status, headers and error message (the body's message,
/// where GitHub says "secondary rate limit"), at time `now`:
///
/// | answer | class |
/// |---|---|
/// | 5xx | [`Class::Server`], with its `Retry-After` |
/// | 429; 403 with `x-ratelimit-remaining: 0` or "rate limit" in the message | [`Class::Limited`], after `Retry-After`, else after `x-ratelimit-reset` (Unix seconds, one second past) when none remain |
/// | any other with a valid `Retry-After` | [`Class::Limited`] after it |
/// | any other | [`Class::Final`] |
pub fn classify(status: u16, headers: &http::HeaderMap, message: &str, now: SystemTime) -> Class {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let after = header("retry-after").and_then(|v| retry_after(v, now));
    if status >= 500 {
        return Class::Server { after };
    }
    let exhausted = header("x-ratelimit-remaining").map(str::trim) == Some("0");
    let limited = status == 429
        || (status == 403 && (exhausted || message.to_lowercase().contains("rate limit")));
    if limited {
        let reset = || {
            let reset = header("x-ratelimit-reset")?.trim().parse::<u64>().ok()?;
            let now = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Some(Duration::from_secs(reset.saturating_sub(now) + 1))
        };
        return Class::Limited {
            after: after.or_else(|| exhausted.then(reset).flatten()),
        };
    }
    match after {
        Some(after) => Class::Limited { after: Some(after) },
        None => Class::Final,
    }
}

/// The first wait between attempts as `PROMPTGATE_RETRY_BASE_MS` gives it: a whole
/// number of milliseconds (later waits double from it). Tests use it to retry without
/// waiting; an impatient local run can too.
pub fn base_setting(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            format!("PROMPTGATE_RETRY_BASE_MS: `{text}` is not a whole number of milliseconds")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().expect("header value"));
        }
        h
    }

    /// 2015-10-21T07:28:00Z.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after("2", now()), Some(2 * SEC));
        assert_eq!(retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(retry_after("0.5", now()), Some(SEC / 2));
        assert_eq!(retry_after("-1", now()), None);
        assert_eq!(retry_after("1e20", now()), None);
        assert_eq!(retry_after("NaN", now()), None);
    }

    #[test]
    fn retry_after_as_an_http_date_counts_from_now() {
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now()),
            Some(30 * SEC)
        );
        // The obsolete forms HTTP still allows.
        assert_eq!(
            retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now()),
            Some(60 * SEC)
        );
        assert_eq!(
            retry_after("Wed Oct 21 07:28:05 2015", now()),
            Some(5 * SEC)
        );
        // Past is no wait, not an error.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&httpdate::fmt_http_date(now()), now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_garbage_is_none() {
        for garbage in ["", "soon", "Wed, 32 Oct 2015 07:28:00 GMT", "2 s", "0x10"] {
            assert_eq!(retry_after(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn classification() {
        let none = headers(&[]);
        let after3 = headers(&[("retry-after", "3")]);
        let reset = now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            + 9;
        let reset = reset.to_string();
        let exhausted = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        let limited = |after| Class::Limited { after };
        let secondary = "You have exceeded a secondary rate limit";
        let table: &[(u16, &http::HeaderMap, &str, Class)] = &[
            (500, &none, "", Class::Server { after: None }),
            (502, &none, "Bad Gateway", Class::Server { after: None }),
            (
                503,
                &after3,
                "",
                Class::Server {
                    after: Some(3 * SEC),
                },
            ),
            (429, &none, "", limited(None)),
            (429, &after3, "", limited(Some(3 * SEC))),
            (403, &none, secondary, limited(None)),
            (403, &after3, secondary, limited(Some(3 * SEC))),
            (403, &none, "API RATE LIMIT exceeded", limited(None)),
            // Primary limit: one second past the reset; Retry-After wins over it.
            (403, &exhausted, "", limited(Some(10 * SEC))),
            (429, &exhausted, "", limited(Some(10 * SEC))),
            (
                403,
                &headers(&[
                    ("retry-after", "3"),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset),
                ]),
                "",
                limited(Some(3 * SEC)),
            ),
            // Remaining but not exhausted: the reset does not apply.
            (
                429,
                &headers(&[
                    ("x-ratelimit-remaining", "7"),
                    ("x-ratelimit-reset", &reset),
                ]),
                "",
                limited(None),
            ),
            (
                403,
                &none,
                "Resource not accessible by integration",
                Class::Final,
            ),
            (404, &none, "Not Found", Class::Final),
            (422, &none, "Validation Failed", Class::Final),
            (401, &none, "Bad credentials", Class::Final),
            // Told to come back later, whatever the status.
            (404, &after3, "", limited(Some(3 * SEC))),
            (400, &headers(&[("retry-after", "soon")]), "", Class::Final),
        ];
        for (status, headers, message, class) in table {
            assert_eq!(
                classify(*status, headers, message, now()),
                *class,
                "{status} {headers:?} {message:?}"
            );
        }
    }

    #[test]
    fn delays_double_and_are_capped() {
        let b = Backoff {
            base: SEC,
            cap: 5 * SEC,
            jitter: false,
            ..Backoff::default()
        };
        let delays: Vec<_> = (0..5).map(|n| b.delay(n)).collect();
        assert_eq!(delays, [SEC, 2 * SEC, 4 * SEC, 5 * SEC, 5 * SEC]);
        assert_eq!(b.delay(u32::MAX), 5 * SEC, "no overflow");
        assert_eq!(b.wait(1, None), 2 * SEC, "without jitter");
        assert_eq!(b.wait(1, Some(7 * SEC)), 7 * SEC);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: SEC,
            ..Backoff::default()
        };
        for retry in 0..3 {
            let full = Duration::from_millis(100 * (1 << retry));
            assert_eq!(b.jittered(retry, None, 0.0), full / 2);
            assert!(b.jittered(retry, None, 0.999_999) <= full);
            for _ in 0..100 {
                let w = b.wait(retry, None);
                assert!(w >= full / 2 && w <= full, "retry {retry}: {w:?}");
            }
        }
        assert!(b.wait(10, None) <= SEC);
        assert_eq!(b.jittered(0, Some(2 * SEC), 0.0), 2 * SEC);
        assert!(b.jittered(0, Some(2 * SEC), 0.999_999) <= Duration::from_millis(2200));
        for _ in 0..100 {
            let w = b.wait(0, Some(2 * SEC));
            assert!(w >= 2 * SEC && w <= Duration::from_millis(2200), "{w:?}");
        }
    }

    #[test]
    fn the_default_is_the_providers_backoff() {
        let b = Backoff::default();
        assert_eq!(
            (b.base, b.cap, b.jitter),
            (Duration::from_millis(500), 30 * SEC, true)
        );
        assert!(matches!(b.sleeper, Sleeper::Tokio));
    }

    fn recorded() -> (Backoff, Waits) {
        let (sleeper, waits) = Sleeper::recording();
        let b = Backoff {
            base: SEC,
            cap: 60 * SEC,
            jitter: false,
            sleeper,
        };
        (b, waits)
    }

    #[tokio::test]
    async fn run_retries_until_success_and_counts() {
        let (b, waits) = recorded();
        let result: Result<(&str, u32), (&str, u32)> = b
            .run(
                5,
                |n| async move { if n < 2 { Err("busy") } else { Ok("done") } },
                |_, n| Some(b.delay(n)),
            )
            .await;
        assert_eq!(result, Ok(("done", 2)));
        assert_eq!(waits.take(), [SEC, 2 * SEC]);
    }

    #[tokio::test]
    async fn run_stops_when_told_or_out_of_retries() {
        let (b, waits) = recorded();
        let out_of_retries: Result<((), u32), (u32, u32)> = b
            .run(3, |n| async move { Err(n) }, |_, n| Some(b.delay(n)))
            .await;
        assert_eq!(out_of_retries, Err((3, 3)), "the last attempt's error");
        assert_eq!(waits.take(), [SEC, 2 * SEC, 4 * SEC]);

        let mut asked = 0;
        let given_up: Result<((), u32), (u32, u32)> = b
            .run(
                3,
                |n| async move { Err(n) },
                |_, _| {
                    asked += 1;
                    None
                },
            )
            .await;
        assert_eq!(given_up, Err((0, 0)));
        assert_eq!(asked, 1);
        assert!(waits.take().is_empty());

        let no_retries: Result<((), u32), (u32, u32)> =
            b.run(0, |n| async move { Err(n) }, |_, _| Some(SEC)).await;
        assert_eq!(no_retries, Err((0, 0)));
        assert!(waits.take().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_sleeper_follows_the_paused_clock() {
        let b = Backoff::default();
        let start = tokio::time::Instant::now();
        b.sleep(60 * SEC).await;
        assert_eq!(start.elapsed(), 60 * SEC);
    }

    #[test]
    fn the_base_setting_is_whole_milliseconds() {
        assert_eq!(base_setting(" 5 "), Ok(Duration::from_millis(5)));
        assert_eq!(base_setting("0"), Ok(Duration::ZERO));
        let err = base_setting("1.5s").expect_err("not whole milliseconds");
        assert!(err.contains("`1.5s`"), "{err}");
    }
}
