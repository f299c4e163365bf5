//! Live source: a Qdrant server over its REST API.

use crate::error::{Error, Result};
use crate::http::{self, RetryPolicy};
use crate::model::{CollectionConfig, Point, PointId, UNNAMED_VECTOR, VectorValue};
use crate::source::config::parse_collection_config;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// A Qdrant server. The API key is sent as a header and never printed.
#[derive(Clone)]
pub struct QdrantRest {
    base: String,
    api_key: Option<String>,
    client: Client,
    policy: RetryPolicy,
}

impl std::fmt::Debug for QdrantRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantRest")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

const WHAT: &str = "Qdrant";

impl QdrantRest {
    /// A client for `url` (e.g. `http://localhost:6333`).
    pub fn new(url: &str, api_key: Option<String>, policy: RetryPolicy) -> QdrantRest {
        QdrantRest {
            base: url.trim_end_matches('/').to_string(),
            api_key,
            client: http::client(Duration::from_secs(120)),
            policy,
        }
    }

    /// The server URL, without credentials (safe to log and to write in the manifest).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
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
        let (status, body) = http::send(WHAT, &self.base, &self.policy, &make)?;
        let call = format!("{method} {path}");
        if status == 401 || status == 403 {
            return Err(Error::Auth {
                what: WHAT,
                url: self.base.clone(),
                status,
                flag: "--api-key or QDRANT_API_KEY",
            });
        }
        let v: Value = serde_json::from_slice(&body.0).map_err(|e| Error::Protocol {
            what: WHAT,
            call: call.clone(),
            message: format!("not JSON ({e}): {}", body.snippet()),
        })?;
        if !(200..300).contains(&status) {
            let message = v
                .pointer("/status/error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| body.snippet());
            return Err(Error::Http {
                what: WHAT,
                call,
                status,
                message,
            });
        }
        v.get("result").cloned().ok_or_else(|| Error::Protocol {
            what: WHAT,
            call,
            message: "no 'result' in the answer".into(),
        })
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
                parse_collection_config(name, cfg)
            }
            Err(Error::Http { status: 404, .. }) => Err(Error::UnknownCollection {
                name: name.to_string(),
                source_desc: format!("Qdrant at {}", self.base),
                known: self
                    .list_collections()
                    .map(|l| l.join(", "))
                    .unwrap_or_default(),
            }),
            Err(e) => Err(e),
        }
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

    /// One scroll page from `offset` (inclusive).
    pub fn scroll(
        &self,
        name: &str,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        let mut body = json!({"limit": limit, "with_payload": with_data, "with_vector": with_data});
        if let Some(o) = offset {
            body["offset"] = o.to_json();
        }
        let r = self.call(
            reqwest::Method::POST,
            &format!("/collections/{}/points/scroll", enc(name)),
            Some(&body),
        )?;
        parse_scroll_result(name, r)
    }

    /// Raw scroll (for the drain benchmark): the page's byte count.
    pub fn base_client(&self) -> (&Client, Option<&str>) {
        (&self.client, self.api_key.as_deref())
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

/// Parses a scroll `result` object into points and the next offset.
pub fn parse_scroll_result(collection: &str, r: Value) -> Result<(Vec<Point>, Option<PointId>)> {
    let bad = |m: String| Error::Protocol {
        what: WHAT,
        call: format!("scroll of {collection}"),
        message: m,
    };
    let next = match r.get("next_page_offset") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(PointId::from_json(v).ok_or_else(|| bad(format!("bad next_page_offset {v}")))?)
        }
    };
    let Some(Value::Array(points)) = r.get("points").cloned() else {
        return Err(bad("no points array".into()));
    };
    let points = points
        .into_iter()
        .map(|p| point_from_json(collection, p))
        .collect::<Result<Vec<_>>>()?;
    Ok((points, next))
}

/// Parses one point as Qdrant's REST API prints it.
pub fn point_from_json(collection: &str, p: Value) -> Result<Point> {
    let bad = |m: String| Error::Protocol {
        what: WHAT,
        call: format!("scroll of {collection}"),
        message: m,
    };
    let Value::Object(mut obj) = p else {
        return Err(bad("point is not an object".into()));
    };
    let idv = obj.remove("id").unwrap_or(Value::Null);
    let id = PointId::from_json(&idv).ok_or_else(|| bad(format!("bad point id {idv}")))?;
    let payload = match obj.remove("payload") {
        Some(Value::Object(m)) => m,
        _ => Default::default(),
    };
    let mut vectors = BTreeMap::new();
    match obj.remove("vector") {
        None | Some(Value::Null) => {}
        Some(Value::Object(named)) => {
            for (k, v) in named {
                vectors.insert(
                    k,
                    vector_from_json(&v).ok_or_else(|| bad(format!("point {id}: bad vector")))?,
                );
            }
        }
        Some(v) => {
            vectors.insert(
                UNNAMED_VECTOR.to_string(),
                vector_from_json(&v).ok_or_else(|| bad(format!("point {id}: bad vector")))?,
            );
        }
    }
    Ok(Point {
        id,
        vectors,
        payload,
    })
}

fn floats(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

fn vector_from_json(v: &Value) -> Option<VectorValue> {
    match v {
        Value::Array(a) if a.first().is_some_and(Value::is_array) => Some(VectorValue::Multi(
            a.iter().map(floats).collect::<Option<Vec<_>>>()?,
        )),
        Value::Array(_) => Some(VectorValue::Dense(floats(v)?)),
        Value::Object(o) => {
            let indices = o
                .get("indices")?
                .as_array()?
                .iter()
                .map(|x| x.as_u64().map(|n| n as u32))
                .collect::<Option<Vec<_>>>()?;
            let values = floats(o.get("values")?)?;
            Some(VectorValue::Sparse { indices, values })
        }
        _ => None,
    }
}
