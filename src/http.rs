//! Shared blocking HTTP plumbing: one client, retries with backoff on 429/5xx/timeouts/resets.

use crate::error::{Error, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use std::time::Duration;

/// How often and how long to retry a request that failed for a passing reason.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub attempts: u32,
    /// First backoff; doubles each retry up to `max_backoff`.
    pub base_backoff: Duration,
    /// Upper bound of one backoff.
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

/// Builds the HTTP client every stage uses.
pub fn client(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(16)
        .build()
        .expect("the HTTP client builds with static settings")
}

/// Whether a status is worth retrying.
pub(crate) fn retryable(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

/// Sends the request built by `make` (called once per attempt) and returns the response with
/// its full body, retrying on connection errors, body read errors, 408/429/5xx.
/// `what` names the server in errors; `url` must carry no credentials.
pub fn send(
    what: &'static str,
    url: &str,
    policy: &RetryPolicy,
    make: &dyn Fn() -> RequestBuilder,
) -> Result<(u16, bytes_body::Body)> {
    let mut backoff = policy.base_backoff;
    let mut last_err = String::new();
    for attempt in 1..=policy.attempts {
        match make().send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(&resp);
                match read_body(resp) {
                    Ok(body) if !retryable(status) || attempt == policy.attempts => {
                        return Ok((status, body));
                    }
                    Ok(body) => {
                        last_err = format!("HTTP {status}: {}", body.snippet());
                        let wait = retry_after.unwrap_or(backoff);
                        tracing::warn!(%url, status, attempt, wait_ms = wait.as_millis() as u64, "{what} answered {status}, retrying");
                        std::thread::sleep(wait.min(policy.max_backoff.max(wait)));
                    }
                    Err(e) => {
                        last_err = format!("reading the body failed: {e}");
                        tracing::warn!(%url, attempt, "{what}: {last_err}, retrying");
                        std::thread::sleep(backoff);
                    }
                }
            }
            Err(e) => {
                last_err = describe(&e);
                if is_tls(&last_err) {
                    // Retrying does not fix a certificate.
                    return Err(Error::Tls {
                        what,
                        url: url.to_string(),
                        detail: last_err,
                    });
                }
                tracing::warn!(%url, attempt, "{what}: {last_err}, retrying");
                std::thread::sleep(backoff);
            }
        }
        backoff = (backoff * 2).min(policy.max_backoff);
    }
    Err(Error::Unreachable {
        what,
        url: url.to_string(),
        detail: format!("gave up after {} attempts: {last_err}", policy.attempts),
    })
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 120.0)))
}

fn read_body(resp: Response) -> std::result::Result<bytes_body::Body, reqwest::Error> {
    resp.bytes().map(|b| bytes_body::Body(b.to_vec()))
}

/// Whether a transport error is a TLS failure (certificate, handshake, protocol).
pub(crate) fn is_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "ssl",
        "handshake",
        "invalid peer",
        "unknownissuer",
        "corrupt message",
        "fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .iter()
    .any(|w| d.contains(w))
}

/// Text of a transport error without any URL query or credential.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body broke off"
    } else {
        "request failed"
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = src {
        root = s.to_string();
        src = s.source();
    }
    if root.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {root}")
    }
}

/// A response body.
pub mod bytes_body {
    /// Raw bytes of a response body.
    #[derive(Debug, Clone)]
    pub struct Body(pub Vec<u8>);

    impl Body {
        /// The first 300 characters, for error messages.
        pub fn snippet(&self) -> String {
            let s = String::from_utf8_lossy(&self.0);
            s.chars().take(300).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_failures_are_recognised() {
        assert!(super::is_tls(
            "connection failed: received corrupt message of type InvalidContentType"
        ));
        assert!(super::is_tls(
            "connection failed: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!super::is_tls(
            "connection failed: Connection refused (os error 111)"
        ));
    }
}
