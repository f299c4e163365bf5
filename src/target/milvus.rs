//! Milvus REST v2 client (self-hosted Milvus ≥ 2.4 and Zilliz cluster endpoints).
//! Errors arrive as HTTP 200 with a non-zero `code`; rate limits (8, 1807) and 408 are retried.

use crate::error::{Error, Result};
use crate::http::{self, RetryPolicy};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// A Milvus endpoint. The token is sent as `Authorization: Bearer` and never printed.
#[derive(Clone)]
pub struct Milvus {
    base: String,
    token: Option<String>,
    db: Option<String>,
    client: Client,
    policy: RetryPolicy,
    cloud: Option<Box<CloudImport>>,
}

/// Bulk imports through the Zilliz Cloud control plane (`api.cloud.zilliz.com`) from the
/// user's own bucket (`objectUrls` + keys), for clusters whose internal bucket is not writable.
#[derive(Clone)]
pub struct CloudImport {
    /// Control-plane client (its token is the Zilliz API key).
    pub api: Milvus,
    /// Cluster id (`in01-…`).
    pub cluster_id: String,
    /// Prefix that turns an object key into the URL Zilliz reads (`s3://bucket/`); with a
    /// volume, the volume's key prefix that is cut off to get the `dataPaths`.
    pub url_base: String,
    /// Import from this Zilliz volume (`volumeName` + `dataPaths`) instead of `objectUrls`.
    pub volume: Option<String>,
    /// Bucket credentials handed to the import job (never printed).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for Milvus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Milvus")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field(
                "cloud_import",
                &self.cloud.as_ref().map(|c| (&c.api.base, &c.cluster_id)),
            )
            .finish()
    }
}

const WHAT: &str = "Milvus";

/// Milvus codes worth retrying: rate limits and quota pressure.
fn retryable_code(code: i64) -> bool {
    matches!(code, 8 | 9 | 1807 | 10001)
}

impl Milvus {
    /// A client for `url` (e.g. `http://localhost:19530`).
    pub fn new(url: &str, token: Option<String>, db: Option<String>) -> Milvus {
        Milvus {
            base: url.trim_end_matches('/').to_string(),
            token,
            db,
            client: http::client(Duration::from_secs(120)),
            policy: RetryPolicy::default(),
            cloud: None,
        }
    }

    /// Runs import jobs through the Zilliz Cloud control plane instead of this endpoint.
    pub fn with_cloud_import(mut self, c: CloudImport) -> Milvus {
        self.cloud = Some(Box::new(c));
        self
    }

    /// The endpoint URL (no credentials).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// POSTs `body` to `/v2/vectordb/{path}` and returns `data`.
    pub fn call(&self, path: &str, body: Value) -> Result<Value> {
        self.post(&format!("/v2/vectordb/{path}"), body)
    }

    /// POSTs `body` to any path of this endpoint (e.g. `/v2/volumes/apply`) and returns `data`.
    pub fn post(&self, path: &str, mut body: Value) -> Result<Value> {
        if let (Some(db), Some(obj)) = (&self.db, body.as_object_mut()) {
            obj.entry("dbName").or_insert_with(|| json!(db));
        }
        let url = format!("{}{path}", self.base);
        let mut backoff = self.policy.base_backoff;
        for attempt in 1..=self.policy.attempts {
            let make = || {
                let mut rb = self
                    .client
                    .post(&url)
                    .header("Accept-Type-Allow-Int64", "true")
                    .json(&body);
                if let Some(t) = &self.token {
                    rb = rb.bearer_auth(t);
                }
                if let Some(db) = &self.db {
                    rb = rb.header("DB-Name", db);
                }
                rb
            };
            let (status, raw) = http::send(WHAT, &self.base, &self.policy, &make)?;
            if status == 401 || status == 403 {
                return Err(Error::Auth {
                    what: WHAT,
                    url: self.base.clone(),
                    status,
                    flag: "--token (user:password for Milvus, an API key for Zilliz) or MILVUS_TOKEN",
                });
            }
            if status == 404 {
                return Err(Error::Http { what: WHAT, call: path.into(), status, message: "no such route: the server is older than Milvus 2.4 (REST v2 is required) or the URL is not a Milvus endpoint".into() });
            }
            let v: Value = serde_json::from_slice(&raw.0).map_err(|e| Error::Protocol {
                what: WHAT,
                call: path.into(),
                message: format!("not JSON ({e}): {}", raw.snippet()),
            })?;
            if !(200..300).contains(&status) {
                return Err(Error::Http {
                    what: WHAT,
                    call: path.into(),
                    status,
                    message: raw.snippet(),
                });
            }
            let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
            if code == 0 || code == 200 {
                return Ok(v.get("data").cloned().unwrap_or(Value::Null));
            }
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if retryable_code(code) && attempt < self.policy.attempts {
                tracing::warn!(
                    code,
                    attempt,
                    "Milvus is rate limiting ({message}); backing off"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(self.policy.max_backoff);
                continue;
            }
            return Err(Error::Milvus {
                call: path.into(),
                code,
                message,
            });
        }
        unreachable!("the loop returns")
    }

    /// Whether a collection exists.
    pub fn has_collection(&self, name: &str) -> Result<bool> {
        Ok(self
            .call("collections/has", json!({"collectionName": name}))?
            .get("has")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// Creates a collection from a `collections/create` body.
    pub fn create_collection(&self, body: &Value) -> Result<()> {
        self.call("collections/create", body.clone()).map(|_| ())
    }

    /// Drops a collection.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.call("collections/drop", json!({"collectionName": name}))
            .map(|_| ())
    }

    /// Describes a collection.
    pub fn describe(&self, name: &str) -> Result<Value> {
        self.call("collections/describe", json!({"collectionName": name}))
    }

    /// Loads a collection and waits until it is loaded.
    pub fn load(&self, name: &str) -> Result<()> {
        self.call("collections/load", json!({"collectionName": name}))?;
        for _ in 0..600 {
            let s = self.call(
                "collections/get_load_state",
                json!({"collectionName": name}),
            )?;
            if s.get("loadState").and_then(Value::as_str) == Some("LoadStateLoaded") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(Error::Other(format!(
            "collection {name} did not finish loading in 2 minutes"
        )))
    }

    /// Flushes a collection (absent on Milvus 2.4.0: a 404 is ignored).
    pub fn flush(&self, name: &str) -> Result<()> {
        match self.call("collections/flush", json!({"collectionName": name})) {
            Err(Error::Http { status: 404, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Upserts rows; returns the upserted count.
    pub fn upsert(&self, name: &str, rows: &[serde_json::Map<String, Value>]) -> Result<u64> {
        let d = self.call(
            "entities/upsert",
            json!({"collectionName": name, "data": rows}),
        )?;
        Ok(as_u64(d.get("upsertCount")).unwrap_or(rows.len() as u64))
    }

    /// `count(*)` with Strong consistency, optionally filtered.
    pub fn count(&self, name: &str, filter: &str) -> Result<u64> {
        let d = self.call("entities/query", json!({"collectionName": name, "filter": filter, "outputFields": ["count(*)"], "consistencyLevel": "Strong"}))?;
        d.get(0)
            .and_then(|r| as_u64(r.get("count(*)")))
            .ok_or_else(|| Error::Protocol {
                what: WHAT,
                call: "entities/query count(*)".into(),
                message: format!("no count in {d}"),
            })
    }

    /// Rows matching a filter (all output fields).
    pub fn query(&self, name: &str, filter: &str, limit: usize) -> Result<Vec<Value>> {
        let d = self.call("entities/query", json!({"collectionName": name, "filter": filter, "outputFields": ["*"], "limit": limit, "consistencyLevel": "Strong"}))?;
        Ok(d.as_array().cloned().unwrap_or_default())
    }

    /// Deletes the rows matching a filter.
    pub fn delete(&self, name: &str, filter: &str) -> Result<()> {
        self.call(
            "entities/delete",
            json!({"collectionName": name, "filter": filter}),
        )
        .map(|_| ())
    }

    /// Starts an import job over object keys (in Milvus's bucket, or in the user's bucket when
    /// imports go through Zilliz Cloud); returns the job id.
    pub fn import_create(&self, name: &str, files: &[String]) -> Result<String> {
        let d = match &self.cloud {
            None => {
                let groups: Vec<Vec<&String>> = files.iter().map(|f| vec![f]).collect();
                self.call(
                    "jobs/import/create",
                    json!({"collectionName": name, "files": groups}),
                )?
            }
            Some(c) => {
                let mut body = json!({
                    "clusterId": c.cluster_id, "collectionName": name,
                    "dbName": self.db.clone().unwrap_or_default(), "partitionName": "",
                    "options": {},
                });
                if let Some(v) = &c.volume {
                    let paths: Vec<Vec<&str>> = files
                        .iter()
                        .map(|f| vec![f.strip_prefix(c.url_base.as_str()).unwrap_or(f)])
                        .collect();
                    body["volumeName"] = json!(v);
                    body["dataPaths"] = json!(paths);
                } else {
                    let urls: Vec<Vec<String>> = files
                        .iter()
                        .map(|f| vec![format!("{}{f}", c.url_base)])
                        .collect();
                    body["objectUrls"] = json!(urls);
                }
                if let (None, Some(a), Some(s)) = (&c.volume, &c.access_key, &c.secret_key) {
                    body["accessKey"] = json!(a);
                    body["secretKey"] = json!(s);
                }
                c.api.call("jobs/import/create", body)?
            }
        };
        job_id(&d)
    }

    /// Describes an import job (`describe`, falling back to `get_progress` on Milvus 2.4).
    pub fn import_describe(&self, job: &str) -> Result<Value> {
        if let Some(c) = &self.cloud {
            return c.api.call(
                "jobs/import/describe",
                json!({"jobId": job, "clusterId": c.cluster_id}),
            );
        }
        match self.call("jobs/import/describe", json!({"jobId": job})) {
            Err(Error::Http { status: 404, .. }) => {
                self.call("jobs/import/get_progress", json!({"jobId": job}))
            }
            r => r,
        }
    }

    /// Import jobs of a collection.
    pub fn import_list(&self, name: &str) -> Result<Vec<Value>> {
        let d = match &self.cloud {
            Some(c) => c.api.call(
                "jobs/import/list",
                json!({"clusterId": c.cluster_id, "collectionName": name, "pageSize": 100, "currentPage": 1}),
            )?,
            None => self.call("jobs/import/list", json!({"collectionName": name}))?,
        };
        Ok(d.get("records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }
}

/// Reads a number that may come as a JSON number or a string (Accept-Type-Allow-Int64).
pub fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn job_id(d: &Value) -> Result<String> {
    match d.get("jobId") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Error::Protocol {
            what: WHAT,
            call: "jobs/import/create".into(),
            message: format!("no jobId in {d}"),
        }),
    }
}
