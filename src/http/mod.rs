//! Shared blocking HTTP plumbing: one client setup, one send loop driven by the retry
//! contract of [`retry`], response bodies read with a size cap, URLs shown without credentials.

pub mod retry;

use crate::error::{Error, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use retry::{Attempt, RetryLogic, RetryPolicy, parse_retry_after};
use std::io::Read;
use std::time::Duration;

/// The largest response body q2z reads (a scroll page of 1,000 points of 4,096 dims with
/// 64 KiB payloads is about 100 MB).
pub const MAX_BODY_BYTES: u64 = 256 << 20;

/// Builds the HTTP client every stage uses. Redirects are followed only within the same
/// scheme, host and port, so an `api-key` or token never goes to another server.
pub fn client(timeout: Duration) -> Result<Client> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(16)
        .redirect(same_origin_redirects())
        .tls_certs_merge(bundled_roots())
        .build()
        .map_err(|e| Error::Other(format!("the HTTP client could not be set up: {e}")))
}

/// Mozilla's root certificates, built in: with the system's (or `SSL_CERT_FILE`'s, which the
/// platform verifier reads), so a static binary on a machine without a CA bundle still
/// verifies public endpoints such as Zilliz Cloud.
pub fn bundled_roots() -> Vec<reqwest::Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok())
        .collect()
}

/// Follows at most 5 redirects, and only to the same origin.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same = first.is_some_and(|f| {
            f.scheme() == attempt.url().scheme()
                && f.host_str() == attempt.url().host_str()
                && f.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() >= 5 || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Whether a status is worth retrying.
pub(crate) fn retryable(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

/// Sends the request built by `make` (called once per attempt) and returns the status with the
/// full body, retrying what `logic` calls passing. `what` names the server in errors; `url`
/// must carry no credentials (see [`strip_credentials`]).
pub fn send(
    what: &'static str,
    url: &str,
    policy: &RetryPolicy,
    logic: &dyn RetryLogic,
    make: &dyn Fn() -> RequestBuilder,
) -> Result<(u16, Body)> {
    policy.run(what, url, |_| match make().send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            if (300..400).contains(&status) {
                let to = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(strip_credentials)
                    .unwrap_or_default();
                return Attempt::Fail(Error::Http {
                    what,
                    call: url.to_string(),
                    status,
                    message: format!("the server redirects to another address ({to}), which q2z does not follow with your credentials; use that address directly"),
                });
            }
            match read_body(resp) {
                Ok(body) => match logic.should_retry_response(status, &body.0) {
                    Some(why) => Attempt::Retry {
                        why: format!("{why}: {}", body.snippet()),
                        after,
                    },
                    None => Attempt::Done((status, body)),
                },
                Err(BodyError::TooLarge) => Attempt::Fail(Error::Protocol {
                    what,
                    call: url.to_string(),
                    message: format!("the answer is larger than {} MiB; ask for less at a time (a smaller --page-size)", MAX_BODY_BYTES >> 20),
                }),
                Err(BodyError::Read(e)) => Attempt::Retry {
                    why: format!("reading the answer failed: {e}"),
                    after: None,
                },
            }
        }
        Err(e) => {
            let detail = describe(&e);
            if logic.is_retriable_error(&detail) {
                Attempt::Retry { why: detail, after: None }
            } else if is_tls(&detail) {
                Attempt::Fail(Error::Tls {
                    what,
                    url: url.to_string(),
                    detail,
                })
            } else {
                Attempt::Fail(Error::Unreachable {
                    what,
                    url: url.to_string(),
                    detail,
                })
            }
        }
    })
}

enum BodyError {
    TooLarge,
    Read(String),
}

fn read_body(resp: Response) -> std::result::Result<Body, BodyError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = Vec::new();
    resp.take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| BodyError::Read(e.to_string()))?;
    if buf.len() as u64 > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(Body(buf))
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

/// Text of a transport error without any URL, query or credential.
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
        format!("{kind}: {}", strip_credentials(&root))
    }
}

/// Removes `user:password@` from a URL (and from any URL inside a text) before it is logged,
/// stored or shown. After each removal the same `://` is looked at again, so no
/// `scheme://user:pw@` survives even where a removal joins two pieces into a new one.
pub fn strip_credentials(text: &str) -> String {
    let mut s = text.to_string();
    let mut from = 0;
    while let Some(i) = s[from..].find("://") {
        let colon = from + i;
        let start = colon + 3;
        let end = s[start..]
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .map_or(s.len(), |e| start + e);
        match s[start..end].rfind('@') {
            Some(at) => s.replace_range(start..start + at + 1, ""),
            None => from = colon + 1,
        }
    }
    s
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_recognised() {
        assert!(is_tls(
            "connection failed: received corrupt message of type InvalidContentType"
        ));
        assert!(is_tls(
            "connection failed: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_tls(
            "connection failed: Connection refused (os error 111)"
        ));
    }

    #[test]
    fn credentials_are_stripped_from_urls_and_texts() {
        assert_eq!(strip_credentials("http://u:p@h:1/x?y"), "http://h:1/x?y");
        assert_eq!(strip_credentials("https://h/x"), "https://h/x");
        assert_eq!(strip_credentials("http://a@b@h"), "http://h");
        assert_eq!(
            strip_credentials("error sending to http://root:Milvus@h:19530/v2 and https://k:s@o/"),
            "error sending to http://h:19530/v2 and https://o/"
        );
        assert_eq!(strip_credentials("no url here"), "no url here");
        assert_eq!(strip_credentials("s3://bucket/key@x"), "s3://bucket/key@x");
    }
}
