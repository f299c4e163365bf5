//! Live source: a Qdrant server over its REST API.

use crate::error::{Error, Result};
use crate::http::retry::{Attempt, RetryPolicy, StatusRetry};
use crate::http::{self, strip_credentials};
use crate::model::{CollectionConfig, Point, PointId};
use crate::source::config::parse_collection_config;
use crate::source::scroll_json::parse_scroll_bytes;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// A Qdrant server. The API key is sent as a header and never printed.
#[derive(Clone)]
pub struct QdrantRest {
    base: String,
    shown: String,
    api_key: Option<String>,
    client: Client,
    policy: RetryPolicy,
}

impl std::fmt::Debug for QdrantRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantRest")
            .field("url", &self.shown)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

const WHAT: &str = "Qdrant";

impl QdrantRest {
    /// A client for `url` (e.g. `http://localhost:6333`).
    pub fn new(url: &str, api_key: Option<String>, policy: RetryPolicy) -> Result<QdrantRest> {
        let base = url.trim_end_matches('/').to_string();
        Ok(QdrantRest {
            shown: strip_credentials(&base),
            base,
            api_key,
            client: http::client(Duration::from_secs(120))?,
            policy,
        })
    }

    /// The server URL, without credentials (safe to log and to write in the manifest).
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let call = format!("{method} {path}");
        let bytes = self.call_bytes(method, path, body)?;
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            what: WHAT,
            call: call.clone(),
            message: format!("not JSON ({e}): {}", http::Body(bytes).snippet()),
        })?;
        match v.get_mut("result") {
            Some(r) => Ok(r.take()),
            None => Err(Error::Protocol {
                what: WHAT,
                call,
                message: "no 'result' in the answer".into(),
            }),
        }
    }

    /// A successful answer's raw bytes; a non-2xx answer becomes an error with Qdrant's message.
    fn call_bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>> {
        let url = format!("{}{}", self.base, path);
        let make = || {
            let mut rb = self.client.request(method.clone(), &url);
            if let Some(k) = &self.api_key {
                rb = rb.header("api-key", k);
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            rb
        };
        let (status, body) = http::send(WHAT, &self.shown, &self.policy, &StatusRetry, &make)?;
        self.check_auth(status)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<Value>(&body.0)
                .ok()
                .and_then(|v| {
                    v.pointer("/status/error")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| body.snippet());
            return Err(Error::Http {
                what: WHAT,
                call: format!("{method} {path}"),
                status,
                message,
            });
        }
        Ok(body.0)
    }

    /// A 401/403 becomes the error that names the API-key flag.
    fn check_auth(&self, status: u16) -> Result<()> {
        if status == 401 || status == 403 {
            return Err(Error::Auth {
                what: WHAT,
                url: self.shown.clone(),
                status,
                flag: "--api-key or QDRANT_API_KEY",
            });
        }
        Ok(())
    }

    /// Names of all collections.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let r = self.call(reqwest::Method::GET, "/collections", None)?;
        Ok(r.get("collections")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The collection's config (`GET /collections/{name}`).
    pub fn collection_config(&self, name: &str) -> Result<CollectionConfig> {
        match self.call(
            reqwest::Method::GET,
            &format!("/collections/{}", enc(name)),
            None,
        ) {
            Ok(r) => {
                let cfg = r.get("config").ok_or_else(|| Error::Protocol {
                    what: WHAT,
                    call: format!("GET /collections/{name}"),
                    message: "no config".into(),
                })?;
                let mut c = parse_collection_config(name, cfg)?;
                if let Some(ps) = r.get("payload_schema").and_then(Value::as_object) {
                    for (k, v) in ps {
                        crate::source::config::add_payload_index(&mut c, k, v);
                    }
                }
                Ok(c)
            }
            Err(Error::Http { status: 404, .. }) => Err(Error::UnknownCollection {
                name: name.to_string(),
                source_desc: format!("Qdrant at {}", self.shown),
                known: self
                    .list_collections()
                    .map(|l| l.join(", "))
                    .unwrap_or_default(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The `k` nearest points to a dense vector (`POST /collections/{name}/points/query`,
    /// `params.exact` for brute force): (id, score), best first.
    pub fn nearest(
        &self,
        name: &str,
        using: &str,
        vector: &crate::model::QueryVector,
        k: usize,
        exact: bool,
        filter: Option<&Value>,
    ) -> Result<Vec<(Value, f32)>> {
        let mut body = json!({"query": vector.to_qdrant_json(), "limit": k, "params": {"exact": exact}, "with_payload": false, "with_vector": false});
        if let Some(f) = filter {
            body["filter"] = f.clone();
        }
        if !using.is_empty() {
            body["using"] = json!(using);
        }
        let r = self.call(
            reqwest::Method::POST,
            &format!("/collections/{}/points/query", enc(name)),
            Some(&body),
        )?;
        Ok(r.get("points")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get("id")?.clone(), p.get("score")?.as_f64()? as f32)))
            .collect())
    }

    /// The aliases that point at a collection (`GET /collections/{name}/aliases`).
    pub fn aliases(&self, name: &str) -> Result<Vec<String>> {
        let r = self.call(
            reqwest::Method::GET,
            &format!("/collections/{}/aliases", enc(name)),
            None,
        )?;
        Ok(r.get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("alias_name")?.as_str().map(str::to_string))
            .collect())
    }

    /// Exact point count.
    pub fn count(&self, name: &str) -> Result<u64> {
        let r = self.call(
            reqwest::Method::POST,
            &format!("/collections/{}/points/count", enc(name)),
            Some(&json!({"exact": true})),
        )?;
        r.get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Protocol {
                what: WHAT,
                call: "points/count".into(),
                message: "no count".into(),
            })
    }

    /// One scroll page from `offset` (inclusive), of the points that match `filter` if given.
    pub fn scroll(
        &self,
        name: &str,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
        filter: Option<&Value>,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        let mut body = json!({"limit": limit, "with_payload": with_data, "with_vector": with_data});
        if let Some(o) = offset {
            body["offset"] = o.to_json();
        }
        if let Some(f) = filter {
            body["filter"] = f.clone();
        }
        let bytes = self.call_bytes(
            reqwest::Method::POST,
            &format!("/collections/{}/points/scroll", enc(name)),
            Some(&body),
        )?;
        parse_scroll_bytes(name, &bytes)
    }

    /// The shards of a collection that live on other peers than the one answering
    /// (`GET /collections/{name}/cluster`), as (shard id, peer id); `None` where the server has
    /// no such endpoint.
    pub fn remote_shards(&self, name: &str) -> Result<Option<Vec<(u64, u64)>>> {
        let r = match self.call(
            reqwest::Method::GET,
            &format!("/collections/{}/cluster", enc(name)),
            None,
        ) {
            Ok(r) => r,
            Err(Error::Http { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let local: Vec<u64> = r
            .get("local_shards")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("shard_id").and_then(Value::as_u64))
            .collect();
        Ok(Some(
            r.get("remote_shards")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s.get("shard_id")?.as_u64()?, s.get("peer_id")?.as_u64()?)))
                .filter(|(id, _)| !local.contains(id))
                .collect(),
        ))
    }

    /// Creates a collection snapshot on the server; returns (name, size, sha256).
    pub fn create_snapshot(&self, name: &str) -> Result<(String, u64, Option<String>)> {
        let r = self.call(
            reqwest::Method::POST,
            &format!("/collections/{}/snapshots?wait=true", enc(name)),
            None,
        )?;
        let snap = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol {
                what: WHAT,
                call: "create snapshot".into(),
                message: format!("no name in {r}"),
            })?;
        Ok((
            snap.to_string(),
            r.get("size").and_then(Value::as_u64).unwrap_or(0),
            r.get("checksum")
                .and_then(Value::as_str)
                .map(str::to_string),
        ))
    }

    /// Deletes a collection snapshot on the server.
    pub fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!(
                "/collections/{}/snapshots/{}?wait=true",
                enc(name),
                enc(snapshot)
            ),
            None,
        )
        .map(|_| ())
    }

    /// Streams a collection snapshot to `dest`, resuming a partial download with a Range request
    /// where the server allows it; a read that stalls for 2 minutes is retried from where it
    /// stopped; checks the sha256 the server reported.
    pub fn download_snapshot(
        &self,
        name: &str,
        snapshot: &str,
        dest: &std::path::Path,
        checksum: Option<&str>,
    ) -> Result<()> {
        let url = format!(
            "{}/collections/{}/snapshots/{}",
            self.base,
            enc(name),
            enc(snapshot)
        );
        let call = format!("download snapshot {snapshot} of {name}");
        self.policy.run(WHAT, &self.shown, |_| {
            match self.download_once(&url, dest, &call) {
                Ok(Attempt::Done(())) => {}
                Ok(other) => return other,
                Err(e) => return Attempt::Fail(e),
            }
            let Some(want) = checksum else {
                return Attempt::Done(());
            };
            match crate::stage::writer::sha256_file(dest) {
                Ok((got, _)) if got == want => Attempt::Done(()),
                Ok((got, _)) => {
                    let _ = std::fs::remove_file(dest);
                    Attempt::Retry {
                        why: format!("{call}: sha256 {got} differs from the server's {want}"),
                        after: None,
                    }
                }
                Err(e) => Attempt::Fail(e),
            }
        })
    }

    /// One download attempt: appends to what `dest` holds when the server answers a Range
    /// request with 206, else rewrites it.
    fn download_once(&self, url: &str, dest: &std::path::Path, call: &str) -> Result<Attempt<()>> {
        use std::io::{Read, Write};
        let have = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        let mut rb = self.client.get(url).timeout(Duration::from_secs(120));
        if let Some(k) = &self.api_key {
            rb = rb.header("api-key", k);
        }
        if have > 0 {
            rb = rb.header("Range", format!("bytes={have}-"));
        }
        let retry = |why: String| Ok(Attempt::Retry { why, after: None });
        let mut resp = match rb.send() {
            Ok(r) => r,
            Err(e) => return retry(format!("{call}: {}", http::describe(&e))),
        };
        let status = resp.status().as_u16();
        self.check_auth(status)?;
        if !(200..300).contains(&status) {
            if http::retryable(status) {
                return retry(format!("{call}: HTTP {status}"));
            }
            return Err(Error::Http {
                what: WHAT,
                call: call.to_string(),
                status,
                message: "download refused".into(),
            });
        }
        let append = status == 206;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(dest)
            .map_err(|e| Error::io(dest, e))?;
        let mut buf = vec![0u8; 1 << 20];
        let broke = loop {
            crate::interrupt::check()?;
            match resp.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => f.write_all(&buf[..n]).map_err(|e| Error::io(dest, e))?,
                Err(e) => break Some(e.to_string()),
            }
        };
        f.sync_all().map_err(|e| Error::io(dest, e))?;
        match broke {
            Some(why) => retry(format!("{call}: the download broke off ({why})")),
            None => Ok(Attempt::Done(())),
        }
    }
}

fn enc(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
