//! Milvus REST v2 client (self-hosted Milvus ≥ 2.4 and Zilliz cluster endpoints): collections,
//! rows, counts, import jobs, schema; requests go through one [`Endpoint`].

pub mod fit;
pub mod jobs;
pub mod rest_json;
pub mod schema;
pub mod version;

use crate::error::{Error, Result};
use crate::sink::endpoint::{self, Endpoint};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use version::{Known, ServerKind, Target};

pub use jobs::{CloudImport, ImportJob, JobFile, JobState, JobSummary};

/// A Milvus endpoint (or a Zilliz Cloud cluster's). The token is never printed.
#[derive(Clone)]
pub struct Milvus {
    ep: Endpoint,
    cloud: Option<Box<CloudImport>>,
    /// `--milvus-version`, if given.
    given: Option<ServerKind>,
    /// The server, once known (given, or probed at first need).
    target: Arc<OnceLock<Target>>,
    /// Per collection: whether its queries may answer a stale view (see [`Milvus::count`]).
    stale_reads: Arc<Mutex<HashMap<String, bool>>>,
}

impl std::fmt::Debug for Milvus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Milvus")
            .field("endpoint", &self.ep)
            .field(
                "cloud_import",
                &self.cloud.as_ref().map(|c| (&c.api, &c.cluster_id)),
            )
            .finish()
    }
}

const WHAT: &str = "Milvus";

/// Most reads of a count that must settle (one a second) on a server answering stale views.
const STABLE_READS: usize = 10;

impl Milvus {
    /// A client for `url` (e.g. `http://localhost:19530`).
    pub fn new(url: &str, token: Option<String>, db: Option<String>) -> Result<Milvus> {
        Ok(Milvus {
            ep: Endpoint::new(url, token, db, endpoint::MILVUS)?,
            cloud: None,
            given: None,
            target: Arc::new(OnceLock::new()),
            stale_reads: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Takes the server's release as given (`--milvus-version`) instead of probing it.
    pub fn with_version(mut self, v: Option<ServerKind>) -> Milvus {
        self.given = v;
        self
    }

    /// The server and its REST rules: as given, Zilliz Cloud by its host, or probed once.
    pub fn server(&self) -> Result<Target> {
        if let Some(t) = self.target.get() {
            return Ok(*t);
        }
        let t = match self.given {
            Some(kind) => Target {
                kind,
                known: Known::Given,
            },
            None if version::is_zilliz_host(self.ep.base()) => Target {
                kind: ServerKind::Zilliz,
                known: Known::Host,
            },
            None => {
                // REST v2 reports no version. `collections/flush` arrived in 2.5.4: a 404 is older.
                let probe = json!({"collectionName": "q2z_version_probe_no_such_collection"});
                let release = match self.call("collections/flush", probe) {
                    Err(Error::Http { status: 404, .. }) => version::Release(2, 4, 0),
                    Err(e @ (Error::Auth { .. } | Error::Tls { .. })) => return Err(e),
                    _ => version::Release(2, 5, 4),
                };
                Target {
                    kind: ServerKind::Milvus(release),
                    known: Known::Probed,
                }
            }
        };
        tracing::info!(target = %self.ep.shown(), "target server: {t}");
        Ok(*self.target.get_or_init(|| t))
    }

    /// Runs import jobs through the Zilliz Cloud control plane instead of this endpoint.
    pub fn with_cloud_import(mut self, c: CloudImport) -> Milvus {
        self.cloud = Some(Box::new(c));
        self
    }

    /// The endpoint URL without credentials.
    pub fn url(&self) -> &str {
        self.ep.shown()
    }

    /// The database the client works in (`default` when none was given).
    pub fn db(&self) -> &str {
        self.ep.db().unwrap_or("default")
    }

    /// POSTs `body` to `/v2/vectordb/{path}` and returns `data`.
    pub fn call(&self, path: &str, body: Value) -> Result<Value> {
        self.post(&format!("/v2/vectordb/{path}"), body)
    }

    /// POSTs `body` to any path of this endpoint (e.g. `/v2/vectordb/indexes/create`) and
    /// returns `data`.
    pub fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.ep.post(path, body, true, None)
    }

    /// POSTs a request that may create something: never repeated once it may have reached
    /// the server (the caller reconciles instead); `key` is sent as `Idempotency-Key`.
    fn post_create(&self, path: &str, body: Value, key: Option<&str>) -> Result<Value> {
        self.ep.post(path, body, false, key)
    }

    /// Decodes a typed answer.
    fn typed<T: serde::de::DeserializeOwned>(call: &str, v: Value) -> Result<T> {
        serde_json::from_value(v).map_err(|e| Error::Protocol {
            what: WHAT,
            call: call.into(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Whether a collection exists.
    pub fn has_collection(&self, name: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Has {
            #[serde(default)]
            has: bool,
        }
        let d = self.call("collections/has", json!({"collectionName": name}))?;
        Ok(Self::typed::<Has>("collections/has", d)?.has)
    }

    /// Creates a collection from a `collections/create` body; nullable fields are refused
    /// with the fix on a server that has none (2.4 would make them required, silently).
    pub fn create_collection(&self, body: &Value) -> Result<()> {
        let fields = || body["schema"]["fields"].as_array().into_iter().flatten();
        let nullable: Vec<&str> = fields()
            .filter(|f| f["nullable"] == json!(true))
            .filter_map(|f| f["fieldName"].as_str())
            .collect();
        let server = self.server()?;
        // Fields of a type this release lacks (the 2.6 line's GEOMETRY, TIMESTAMPTZ; the 3.0
        // line's Array of Structs, which older REST layers drop unread).
        let structs = body["schema"]["structFields"]
            .as_array()
            .into_iter()
            .flatten();
        let typed = fields()
            .filter_map(|f| Some((f["fieldName"].as_str()?, f["dataType"].as_str()?)))
            .chain(structs.filter_map(|f| Some((f["fieldName"].as_str()?, "ArrayOfStruct"))));
        let mut fix = Vec::new();
        let lacking: Vec<String> = typed
            .filter_map(|(name, t)| {
                let since = server.kind.lacks_type(t)?;
                fix.push(if t == "ArrayOfStruct" {
                    "export the multivectors again with --multivector first or skip"
                } else {
                    "change their type in the mapping file (JSON keeps the value as Qdrant wrote it, VarChar a datetime's text)"
                });
                Some(format!("{name} ({t}, {since}+)"))
            })
            .collect();
        fix.sort_unstable();
        fix.dedup();
        let fix = fix.join(", or ");
        let collection = body["collectionName"].as_str().unwrap_or("?");
        // Every need the release is known not to meet, said at once, before anything is made.
        let mut unmet = Vec::new();
        if !lacking.is_empty() && server.known != Known::Probed {
            unmet.push(format!(
                "fields {} are of types {server} does not have: {fix}",
                lacking.join(", ")
            ));
        }
        if !nullable.is_empty() && !server.kind.has_nullable() {
            unmet.push(format!(
                "fields {} are nullable (payload keys promoted with --promote, absent on some points), which {server} does not support (it would make them required and refuse every point without them): export again without --promote (the keys stay in the dynamic field $meta)",
                nullable.join(", ")
            ));
        }
        if !unmet.is_empty() {
            return Err(Error::Other(format!(
                "collection {collection}: {}; or import into a newer Milvus / Zilliz Cloud",
                unmet.join("; and ")
            )));
        }
        match self.call("collections/create", body.clone()) {
            // A release only probed may lack them: the server's refusal gets the fix. (A REST
            // layer that drops `structFields` unread refuses the index on `F[v]` before it
            // creates anything: handler_v2.go createCollection, "`F[v]` hasn't defined in
            // schema", 1802.)
            Err(Error::Milvus { message, .. }) if !lacking.is_empty() => {
                Err(Error::Other(format!(
                    "collection {collection}: the target refused fields {} ({message}); {fix}, or import into a newer Milvus / Zilliz Cloud",
                    lacking.join(", ")
                )))
            }
            r => r.map(|_| ()),
        }
    }

    /// The names of the database's collections.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let d = self.call("collections/list", json!({}))?;
        Self::typed("collections/list", d)
    }

    /// Drops a collection.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.call("collections/drop", json!({"collectionName": name}))
            .map(|_| ())
    }

    /// Points alias `alias` at `collection`: created if missing, switched (`aliases/alter`,
    /// one atomic step for the readers) if it points elsewhere. Returns the collection it
    /// pointed at before, if any.
    pub fn set_alias(&self, alias: &str, collection: &str) -> Result<Option<String>> {
        let before = match self.call("aliases/describe", json!({"aliasName": alias})) {
            Ok(d) => d
                .get("collectionName")
                .and_then(Value::as_str)
                .map(str::to_string),
            // Milvus answers a missing alias with an error code (1600 and others by version).
            Err(Error::Milvus { .. }) => None,
            Err(e) => return Err(e),
        };
        let body = json!({"aliasName": alias, "collectionName": collection});
        match &before {
            Some(c) if c == collection => {}
            Some(_) => {
                self.call("aliases/alter", body)?;
            }
            None => {
                self.call("aliases/create", body)?;
            }
        }
        Ok(before)
    }

    /// The fields of a collection (`collections/describe`).
    pub fn describe(&self, name: &str) -> Result<schema::CollectionDescription> {
        let d = self.call("collections/describe", json!({"collectionName": name}))?;
        Self::typed("collections/describe", d)
    }

    /// Loads a collection and waits until it is loaded.
    pub fn load(&self, name: &str) -> Result<()> {
        #[derive(Deserialize)]
        struct LoadState {
            #[serde(default, rename = "loadState")]
            load_state: String,
        }
        self.call("collections/load", json!({"collectionName": name}))?;
        let loaded =
            crate::wait::until(Duration::from_millis(200), Duration::from_secs(120), || {
                let s = self.call(
                    "collections/get_load_state",
                    json!({"collectionName": name}),
                )?;
                let state = Self::typed::<LoadState>("collections/get_load_state", s)?.load_state;
                Ok((state == "LoadStateLoaded").then_some(()))
            })?;
        loaded.ok_or_else(|| Error::Other(format!(
            "collection {name} did not finish loading in 2 minutes; check the target's query nodes, then run the same command again"
        )))
    }

    /// Flushes a collection where the server has the call (2.5.4+; before, a 404 is ignored).
    pub fn flush(&self, name: &str) -> Result<()> {
        if !self.server()?.kind.has_flush() {
            return Ok(());
        }
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

    /// `count(*)` with Strong consistency, optionally filtered. Where the server ignores the
    /// request's level and the collection's own is weaker (a collection q2z did not create, on
    /// Milvus before 2.5.12), the count is read again a second apart until two reads agree.
    pub fn count(&self, name: &str, filter: &str) -> Result<u64> {
        let mut last = self.count_once(name, filter)?;
        if !self.reads_may_be_stale(name)? {
            return Ok(last);
        }
        let limit = Duration::from_secs(STABLE_READS as u64);
        // The first look waits: a read a second after the last one.
        let mut first = true;
        let settled = crate::wait::until(Duration::from_secs(1), limit, || {
            if std::mem::take(&mut first) {
                return Ok(None);
            }
            let now = self.count_once(name, filter)?;
            let agreed = now == last;
            last = now;
            Ok(agreed.then_some(now))
        })?;
        settled.ok_or_else(|| Error::Other(format!(
            "collection {name}: its row count kept changing over {STABLE_READS} s (the server answers queries at the collection's consistency level, not Strong); let writes to it settle, then run the same command again"
        )))
    }

    /// Whether queries on `name` may answer a view older than the last write.
    fn reads_may_be_stale(&self, name: &str) -> Result<bool> {
        if self.server()?.kind.query_takes_consistency() {
            return Ok(false);
        }
        if let Some(&s) = self.lock_stale().get(name) {
            return Ok(s);
        }
        let stale = self.describe(name)?.consistency_level.as_deref() != Some("Strong");
        self.lock_stale().insert(name.to_string(), stale);
        Ok(stale)
    }

    fn lock_stale(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.stale_reads.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_once(&self, name: &str, filter: &str) -> Result<u64> {
        let d = self.call("entities/query", json!({"collectionName": name, "filter": filter, "outputFields": ["count(*)"], "consistencyLevel": "Strong"}))?;
        d.get(0)
            .and_then(|r| as_u64(r.get("count(*)")))
            .ok_or_else(|| Error::Protocol {
                what: WHAT,
                call: "entities/query count(*)".into(),
                message: format!("no count in {}", crate::model::short_json(&d)),
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
}

/// Reads a number that may come as a JSON number or a string (Accept-Type-Allow-Int64).
pub fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_count_on_a_server_ignoring_strong_reads_is_read_until_two_reads_agree() {
        let counts = [5u64, 7, 7, 9];
        let reads = Arc::new(AtomicUsize::new(0));
        let seen = reads.clone();
        let url = crate::sink::endpoint::serve(move |path| {
            let body = if path.ends_with("collections/describe") {
                json!({"code": 0, "data": {"consistencyLevel": "Bounded"}})
            } else {
                let n = counts[seen.fetch_add(1, Ordering::SeqCst).min(3)];
                json!({"code": 0, "data": [{"count(*)": n}]})
            };
            (200, body.to_string())
        });
        let before = version::Release(2, 4, 9);
        let m = Milvus::new(&url, None, None)
            .unwrap()
            .with_version(Some(ServerKind::Milvus(before)));
        let t = std::time::Instant::now();
        assert_eq!(
            m.count("c", "").unwrap(),
            7,
            "the count two reads agreed on"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        assert!(
            t.elapsed() >= Duration::from_secs(2),
            "a second between reads"
        );
    }
}
