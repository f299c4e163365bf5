//! One REST v2 endpoint of the Milvus family — a Milvus server, a Zilliz Cloud cluster, or the
//! Zilliz Cloud control plane — and how a request to it is sent: bearer token, `dbName`,
//! `Idempotency-Key`, the one retry contract of [`crate::http::retry`], and answers (HTTP 200
//! with a non-zero `code`) turned into typed errors. [`crate::sink::milvus::Milvus`] and
//! [`crate::sink::zilliz::ControlPlane`] are each built on one.

use crate::error::{Error, Result};
use crate::http::retry::{RetryLogic, RetryPolicy};
use crate::http::{self, strip_credentials};
use crate::sink::milvus::rest_json;
use reqwest::blocking::Client;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a request that may create something may take before the client gives up on it.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(20);

/// What kind of endpoint it is, as its errors name it.
#[derive(Clone, Copy, Debug)]
pub struct Role {
    /// `Milvus` or `Zilliz Cloud`.
    pub what: &'static str,
    /// Where the credentials come from, for a refusal (401 / 403).
    pub auth_flag: &'static str,
    /// What an unknown route (404) means.
    pub not_found: &'static str,
}

/// A Milvus server or Zilliz cluster endpoint.
pub const MILVUS: Role = Role {
    what: "Milvus",
    auth_flag: "--token (user:password for Milvus, an API key for Zilliz) or MILVUS_TOKEN",
    not_found: "no such route: the server is older than Milvus 2.4 (REST v2 is required) or the URL is not a Milvus endpoint",
};

/// The Zilliz Cloud control plane (`api.cloud.zilliz.com`).
pub const ZILLIZ_CONTROL: Role = Role {
    what: "Zilliz Cloud",
    auth_flag: "--zilliz-api-key or ZILLIZ_API_KEY (a Zilliz Cloud API key; default: --token)",
    not_found: "no such route: --zilliz-cloud-url is not the Zilliz Cloud control plane (https://api.cloud.zilliz.com, or .com.cn in China)",
};

/// A REST v2 endpoint. The token is sent as `Authorization: Bearer` and never printed.
#[derive(Clone)]
pub struct Endpoint {
    base: String,
    shown: String,
    token: Option<String>,
    db: Option<String>,
    client: Client,
    policy: RetryPolicy,
    role: Role,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.role.what)
            .field("url", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Milvus codes worth retrying: rate limits and quota pressure.
fn retryable_code(code: i64) -> bool {
    matches!(code, 8 | 9 | 1807 | 10001)
}

/// The `code` of an answer body (0 when absent or not JSON).
fn body_code(body: &[u8]) -> i64 {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        code: i64,
    }
    serde_json::from_slice::<Head>(body)
        .map(|h| h.code)
        .unwrap_or(0)
}

/// The retry classification: the usual statuses, plus HTTP 200 with a rate-limit code.
struct MilvusRetry {
    /// Whether a request that may have reached the server may be sent again.
    idempotent: bool,
}

impl RetryLogic for MilvusRetry {
    fn is_retriable_error(&self, detail: &str) -> bool {
        // A refused connection never reached the server; a timeout or reset may have.
        !http::is_tls(detail) && (self.idempotent || detail.starts_with("connection failed"))
    }
    fn should_retry_response(&self, status: u16, body: &[u8]) -> Option<String> {
        let code = body_code(body);
        if (200..300).contains(&status) && retryable_code(code) {
            return Some(format!("Milvus is rate limiting (code {code})"));
        }
        let passing = status == 429 || (self.idempotent && http::retryable(status));
        passing.then(|| format!("HTTP {status}"))
    }
}

impl Endpoint {
    /// An endpoint at `url` (e.g. `http://localhost:19530`) in `db` (`None`: the server's
    /// default database; never sent to the control plane).
    pub fn new(url: &str, token: Option<String>, db: Option<String>, role: Role) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        Ok(Endpoint {
            shown: strip_credentials(&base),
            base,
            token,
            db,
            client: http::client(Duration::from_secs(120))?,
            policy: RetryPolicy::default(),
            role,
        })
    }

    /// The URL as given, credentials included (for host checks, never printed).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL without credentials.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The database given, if any.
    pub fn db(&self) -> Option<&str> {
        self.db.as_deref()
    }

    /// Whether a token is set.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// POSTs `body` to `path`; `idempotent` false: an attempt that may have reached the server
    /// is not repeated (the caller reconciles instead), and it has a short life
    /// ([`CREATE_TIMEOUT`]); `key` is sent as the `Idempotency-Key` header. Returns `data`.
    pub fn post(
        &self,
        path: &str,
        mut body: Value,
        idempotent: bool,
        key: Option<&str>,
    ) -> Result<Value> {
        if let (Some(db), Some(obj)) = (&self.db, body.as_object_mut()) {
            obj.entry("dbName").or_insert_with(|| json!(db));
        }
        let url = format!("{}{path}", self.base);
        let bytes = rest_json::to_vec(&body);
        let make = || {
            let mut rb = self
                .client
                .post(&url)
                .header("Accept-Type-Allow-Int64", "true")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            if !idempotent {
                // So that after it the caller knows for sure whether the server acted on it.
                rb = rb.timeout(CREATE_TIMEOUT);
            }
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(t);
            }
            if let Some(db) = &self.db {
                rb = rb.header("DB-Name", db);
            }
            if let Some(k) = key {
                rb = rb.header("Idempotency-Key", k);
            }
            rb
        };
        let logic = MilvusRetry { idempotent };
        let what = self.role.what;
        let (status, raw) = http::send(what, &self.shown, &self.policy, &logic, &make)?;
        if status == 401 || status == 403 {
            return Err(Error::Auth {
                what,
                url: self.shown.clone(),
                status,
                flag: self.role.auth_flag,
            });
        }
        if !(200..300).contains(&status) {
            let message = match status {
                404 => self.role.not_found.into(),
                _ => raw.snippet(),
            };
            return Err(Error::Http {
                what,
                call: path.into(),
                status,
                message,
            });
        }
        let v: Value = serde_json::from_slice(&raw.0).map_err(|e| Error::Protocol {
            what,
            call: path.into(),
            message: format!("not JSON ({e}): {}", raw.snippet()),
        })?;
        answer_data(path, v)
    }
}

/// `data` of an answer whose `code` is 0 (Milvus) or 200 (Zilliz Cloud); else the error.
fn answer_data(path: &str, v: Value) -> Result<Value> {
    let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
    if code == 0 || code == 200 {
        return Ok(v.get("data").cloned().unwrap_or(Value::Null));
    }
    let mut message = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if code == 800 {
        // merr.ErrDatabaseNotFound, from handler_v2.go checkDatabase.
        message.push_str(
            "; pass the database the collections belong in with --db, or create it first (POST /v2/vectordb/databases/create)",
        );
    }
    Err(Error::Milvus {
        call: path.into(),
        code,
        message,
    })
}

/// A local HTTP server for unit tests: each request (one per connection) is answered with
/// `answer(path)`'s status and JSON body. Returns its URL.
#[cfg(test)]
pub(crate) fn serve(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            use std::io::{Read, Write};
            let mut buf = [0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let (status, body) = answer(&path);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milvus_retries_rate_limits_in_200_answers_and_never_repeats_an_ambiguous_create() {
        let read = MilvusRetry { idempotent: true };
        let create = MilvusRetry { idempotent: false };
        let limited = br#"{"code":8,"message":"rate limit exceeded"}"#;
        assert!(read.should_retry_response(200, limited).is_some());
        assert!(
            create.should_retry_response(200, limited).is_some(),
            "a refused request created nothing"
        );
        assert!(
            read.should_retry_response(200, br#"{"code":1100,"message":"bad"}"#)
                .is_none()
        );
        assert!(read.should_retry_response(503, b"").is_some());
        assert!(
            create.should_retry_response(503, b"").is_none(),
            "a 503 may come after the job was made"
        );
        assert!(create.should_retry_response(429, b"").is_some());
        assert!(read.is_retriable_error("timed out"));
        assert!(!create.is_retriable_error("timed out"));
        assert!(create.is_retriable_error("connection failed: Connection refused"));
        assert!(!read.is_retriable_error("connection failed: invalid peer certificate"));
    }

    /// A server that answers every request with `status` and `body`, on a local port.
    fn answering(status: u16, body: &'static str) -> String {
        serve(move |_| (status, body.to_string()))
    }

    #[test]
    fn each_endpoint_names_its_own_credentials_and_never_prints_the_token() {
        let url = answering(401, "{}");
        let control = Endpoint::new(&url, Some("secret-key".into()), None, ZILLIZ_CONTROL).unwrap();
        let e = control.post("/v2/vectordb/jobs/import/list", json!({}), true, None);
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("--zilliz-api-key"), "{msg}");
        assert!(msg.contains("Zilliz Cloud"), "{msg}");
        let milvus = Endpoint::new(&url, Some("secret-key".into()), None, MILVUS).unwrap();
        let msg = milvus
            .post("/v2/vectordb/collections/has", json!({}), true, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("--token"), "{msg}");
        assert!(!msg.contains("secret-key") && !format!("{milvus:?}").contains("secret-key"));
    }

    #[test]
    fn an_answer_with_a_code_is_an_error_naming_the_call() {
        let url = answering(
            200,
            r#"{"code":800,"message":"database not found[database=x]"}"#,
        );
        let ep = Endpoint::new(&url, None, Some("x".into()), MILVUS).unwrap();
        let msg = ep
            .post("/v2/vectordb/collections/has", json!({}), true, None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("collections/has") && msg.contains("--db"),
            "{msg}"
        );
        let ok = answering(200, r#"{"code":200,"data":{"jobId":"job-1"}}"#);
        let ep = Endpoint::new(&ok, None, None, ZILLIZ_CONTROL).unwrap();
        let d = ep.post("/v2/vectordb/jobs/import/create", json!({}), false, None);
        assert_eq!(
            d.unwrap()["jobId"],
            "job-1",
            "Zilliz Cloud answers code 200"
        );
    }
}
