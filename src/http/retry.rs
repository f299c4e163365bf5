//! The one retry contract of every client: a [`RetryPolicy`] (capped exponential backoff with
//! jitter, a bounded `Retry-After`) drives attempts; a [`RetryLogic`] decides which outcomes are
//! worth another attempt (in the style of Vector's `RetryLogic`). Clients use it once per call,
//! never nested.

use crate::error::{Error, Result};
use std::time::Duration;

/// How often and how long to retry a request that failed for a passing reason.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (first try included, at least 1).
    pub attempts: u32,
    /// First backoff; doubles each retry up to `max_backoff`.
    pub base_backoff: Duration,
    /// Upper bound of one wait, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Finished (successfully, or with an answer the caller handles itself).
    Done(T),
    /// Failed for a passing reason: worth another attempt (after `after` if the server said).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Failed for good.
    Fail(Error),
}

/// Decides which outcomes of a request are worth another attempt.
pub trait RetryLogic {
    /// Whether a transport error (connect, timeout, reset) is worth another attempt.
    fn is_retriable_error(&self, detail: &str) -> bool {
        !super::is_tls(detail)
    }
    /// Why an answer should be retried (`None`: take it as it is). Milvus's HTTP 200 with a
    /// rate-limit `code` is such an answer.
    fn should_retry_response(&self, status: u16, body: &[u8]) -> Option<String> {
        let _ = body;
        super::retryable(status).then(|| format!("HTTP {status}"))
    }
}

/// Retries 408, 429 and 5xx answers and every transport error but TLS failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusRetry;

impl RetryLogic for StatusRetry {}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential from
    /// `base_backoff`, capped at `max_backoff`, with up to 25% jitter taken off so that
    /// parallel workers do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        let jitter = rand::random::<f64>() * 0.25;
        capped.mul_f64(1.0 - jitter)
    }

    /// A server's `Retry-After` wait, bounded by `max_backoff` (never negative, never NaN).
    pub fn bounded(&self, after: Duration) -> Duration {
        after.min(self.max_backoff)
    }

    /// Runs `f` (given the attempt number, from 1) until it is done, fails for good or the
    /// attempts are used up; `what`/`url` name the server in the final error (no credentials).
    pub fn run<T>(
        &self,
        what: &'static str,
        url: &str,
        mut f: impl FnMut(u32) -> Attempt<T>,
    ) -> Result<T> {
        let attempts = self.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            crate::interrupt::check()?;
            match f(attempt) {
                Attempt::Done(t) => return Ok(t),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { why, after } => {
                    if attempt == attempts {
                        last = why;
                        break;
                    }
                    let wait = after
                        .map(|a| self.bounded(a))
                        .unwrap_or_else(|| self.backoff(attempt));
                    tracing::warn!(%url, attempt, wait_ms = wait.as_millis() as u64, "{what}: {why}; retrying");
                    last = why;
                    std::thread::sleep(wait);
                }
            }
        }
        Err(Error::Unreachable {
            what,
            url: url.to_string(),
            detail: format!("gave up after {attempts} attempts: {last}"),
        })
    }
}

/// Parses a `Retry-After` header given in seconds; anything else (NaN, negative, infinite, an
/// HTTP date, text) counts as absent. Huge values are bounded by the policy.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let s: f64 = v.trim().parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(24.0 * 3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_never_panics_and_is_bounded() {
        for bad in [
            "nan",
            "NaN",
            "-1",
            "inf",
            "-inf",
            "1e400",
            "soon",
            "",
            "Wed, 21 Oct 2015",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        let huge = parse_retry_after("1e30").unwrap();
        let p = RetryPolicy::default();
        assert_eq!(p.bounded(huge), p.max_backoff);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 20,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let first = p.backoff(1);
        assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(75));
        let third = p.backoff(3);
        assert!(third <= Duration::from_millis(400) && third >= Duration::from_millis(300));
        for a in 5..40 {
            let w = p.backoff(a);
            assert!(
                w <= p.max_backoff && w >= p.max_backoff.mul_f64(0.75),
                "{a}: {w:?}"
            );
        }
    }

    #[test]
    fn run_stops_on_done_and_fail_and_counts_attempts() {
        let p = RetryPolicy {
            attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let mut n = 0;
        let r: Result<u32> = p.run("x", "http://h", |a| {
            n += 1;
            if a < 3 {
                Attempt::Retry {
                    why: "503".into(),
                    after: None,
                }
            } else {
                Attempt::Done(a)
            }
        });
        assert_eq!(r.unwrap(), 3);
        assert_eq!(n, 3);
        let mut n = 0;
        let r: Result<u32> = p.run("x", "http://h", |_| {
            n += 1;
            Attempt::Retry {
                why: "503 again".into(),
                after: Some(Duration::from_secs(3600)),
            }
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("gave up after 3 attempts: 503 again"), "{e}");
        assert_eq!(n, 3);
        let mut n = 0;
        let r: Result<u32> = p.run("x", "http://h", |_| {
            n += 1;
            Attempt::Fail(Error::Other("no".into()))
        });
        assert!(r.is_err());
        assert_eq!(n, 1);
    }
}
