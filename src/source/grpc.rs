//! Live export over Qdrant's gRPC API (port 6334): vectors arrive as packed floats, so reading
//! a page costs no float parsing. Only the scroll — the hot path — goes over gRPC, its answer
//! decoded by q2z's own messages (`grpc_scroll`; the request and the count and health calls are
//! the official `qdrant-client`'s); the collection's config, counts, filtered reads and searches
//! stay on REST, whose answers the rest of q2z is written against.
//!
//! Fidelity: gRPC's payload `Value` keeps integers (`integer_value`, i64) apart from doubles,
//! so payloads come out as REST shows them — except integers above 2^63-1, which Qdrant's own
//! JSON → gRPC conversion turns into doubles (use `--transport rest` for such payloads).

use crate::error::{Error, Result};
use crate::http::retry::{Attempt, RetryPolicy};
use crate::model::{Point, PointId, VectorValue};
use crate::source::grpc_scroll::{self, ScrollAnswer};
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vector_output::Vector;
use qdrant_client::qdrant::{
    CountPointsBuilder, PointId as GrpcId, ScrollPoints, ScrollPointsBuilder, ShardKey,
    Value as GrpcValue, shard_key,
};
use qdrant_client::{Qdrant, QdrantError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const WHAT: &str = "Qdrant gRPC";

/// A gRPC connection to one Qdrant server, with the runtime its calls run on.
pub struct QdrantGrpc {
    client: Qdrant,
    /// The scroll's own channel: its answers are decoded by q2z's messages (`grpc_scroll`).
    channel: tonic::transport::Channel,
    api_key: Option<tonic::metadata::AsciiMetadataValue>,
    rt: tokio::runtime::Runtime,
    url: String,
}

impl QdrantGrpc {
    /// Connects (lazily) to `url` (`http://host:6334`; `https://` for TLS).
    pub fn new(url: &str, api_key: Option<String>) -> Result<QdrantGrpc> {
        // What is shown (errors, manifest notes, logs) never carries `user:password@`.
        let shown = crate::http::strip_credentials(url);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Other(format!("no runtime for gRPC: {e}")))?;
        let connect_err = |e: &dyn std::fmt::Display| {
            grpc_err(
                "connect",
                &shown,
                &crate::http::strip_credentials(&e.to_string()),
            )
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| connect_err(&e))?
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                .map_err(|e| connect_err(&e))?;
        }
        // The key is never shown: a key that is not valid header text is named as such.
        let key = api_key
            .as_deref()
            .map(|k| {
                k.parse().map_err(|_| {
                    connect_err(&"the API key holds characters a gRPC header cannot carry")
                })
            })
            .transpose()?;
        let (client, channel) = {
            let _in = rt.enter();
            let channel = endpoint.connect_lazy();
            let client = Qdrant::from_url(url)
                .api_key(api_key)
                .timeout(Duration::from_secs(120))
                .skip_compatibility_check()
                .build()
                .map_err(|e| connect_err(&e))?;
            (client, channel)
        };
        Ok(QdrantGrpc {
            client,
            channel,
            api_key: key,
            rt,
            url: shown,
        })
    }

    /// The server's gRPC URL (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server answers gRPC (its health check), within a few seconds.
    pub fn answers(&self) -> bool {
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.client.health_check())
                .await
                .is_ok_and(|r| r.is_ok())
        })
    }

    /// The exact point count of a collection (`Points/Count`).
    pub fn count(&self, name: &str) -> Result<u64> {
        let r = self.retried(|| {
            let r = self
                .rt
                .block_on(self.client.count(CountPointsBuilder::new(name).exact(true)));
            attempt(r, "count", name)
        })?;
        Ok(r.result.map_or(0, |c| c.count))
    }

    /// Runs a read call under the retry policy every client of q2z follows (http::retry).
    fn retried<T>(&self, mut call: impl FnMut() -> Attempt<T>) -> Result<T> {
        RetryPolicy::default().run(WHAT, &self.url, |_| call())
    }

    /// One scroll page from `offset` (inclusive), in Qdrant's id order.
    pub fn scroll(
        &self,
        name: &str,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        let mut req = ScrollPointsBuilder::new(name)
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(with_data)
            .with_vectors(with_data);
        if let Some(o) = offset {
            req = req.offset(to_grpc_id(o));
        }
        let req = req.build();
        let r = self.retried(|| {
            attempt(
                self.rt
                    .block_on(self.scroll_call(req.clone()))
                    .map_err(QdrantError::from),
                "scroll",
                name,
            )
        })?;
        let next = r.next_page_offset.as_ref().map(from_grpc_id).transpose()?;
        let points = r
            .result
            .into_iter()
            .map(to_point)
            .collect::<Result<Vec<Point>>>()?;
        Ok((points, next))
    }

    /// `Points/Scroll` on the scroll's own channel, its answer decoded as a [`ScrollAnswer`]
    /// (what the client's generated call does, with q2z's messages for the answer).
    async fn scroll_call(
        &self,
        req: ScrollPoints,
    ) -> std::result::Result<ScrollAnswer, tonic::Status> {
        let mut grpc =
            tonic::client::Grpc::new(self.channel.clone()).max_decoding_message_size(usize::MAX);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("not ready: {e}")))?;
        let mut request = tonic::Request::new(req);
        if let Some(k) = &self.api_key {
            request.metadata_mut().insert("api-key", k.clone());
        }
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/qdrant.Points/Scroll");
        let codec = tonic_prost::ProstCodec::<ScrollPoints, ScrollAnswer>::default();
        grpc.unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
    }
}

/// What to do with the outcome of a read call: a transport that failed (a reset or refused
/// connection: `Unavailable`), a call that timed out or was aborted, or a busy server
/// (`ResourceExhausted`, after the wait it asks for) is tried again; anything else is an error.
fn attempt<T>(r: std::result::Result<T, QdrantError>, call: &str, name: &str) -> Attempt<T> {
    use tonic::Code;
    match r {
        Ok(t) => Attempt::Done(t),
        Err(QdrantError::ResourceExhaustedError {
            retry_after_seconds,
            ..
        }) => Attempt::Retry {
            why: format!("{call} {name}: resource exhausted"),
            after: Some(Duration::from_secs(retry_after_seconds)),
        },
        Err(QdrantError::ResponseError { status })
            if matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Aborted
            ) =>
        {
            Attempt::Retry {
                why: format!(
                    "{call} {name}: {} {}",
                    status.code(),
                    crate::http::strip_credentials(status.message())
                ),
                after: None,
            }
        }
        Err(e) => Attempt::Fail(grpc_err(
            call,
            name,
            &crate::http::strip_credentials(&e.to_string()),
        )),
    }
}

fn grpc_err(call: &str, what: &str, message: &str) -> Error {
    Error::Protocol {
        what: WHAT,
        call: format!("{call} {what}"),
        message: format!(
            "{message}; check --grpc-url (Qdrant's gRPC port, 6334 by default) or read over REST with --transport rest"
        ),
    }
}

fn to_grpc_id(id: &PointId) -> GrpcId {
    match id {
        PointId::Num(n) => GrpcId::from(*n),
        PointId::Uuid(s) => GrpcId::from(s.clone()),
    }
}

fn from_grpc_id(id: &GrpcId) -> Result<PointId> {
    match &id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(PointId::Num(*n)),
        Some(PointIdOptions::Uuid(s)) => PointId::from_json(&Value::from(s.as_str()))
            .ok_or_else(|| grpc_err("scroll", "point id", &format!("'{s}' is not a UUID"))),
        None => Err(grpc_err("scroll", "point id", "a point without an id")),
    }
}

/// Whether a gRPC error is prost's decoding depth limit (a payload nested deeper than it).
pub fn too_deep(e: &Error) -> bool {
    e.to_string().contains("recursion limit")
}

/// Whether a payload holds a double that may be an integer above i64::MAX that gRPC rounded
/// (an integral value of magnitude 2^63 or more): REST gives its exact digits.
pub fn has_rounded_integer(payload: &Map<String, Value>) -> bool {
    fn rounded(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.as_f64().is_some_and(|d| {
                !n.is_i64()
                    && !n.is_u64()
                    && d.fract() == 0.0
                    && d.abs() >= 9.223_372_036_854_776e18
            }),
            Value::Array(a) => a.iter().any(rounded),
            Value::Object(o) => o.values().any(rounded),
            _ => false,
        }
    }
    payload.values().any(rounded)
}

/// A payload value as Qdrant's REST API shows it.
pub fn to_json(v: GrpcValue) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::IntegerValue(i)) => Value::from(i),
        Some(Kind::DoubleValue(d)) => {
            serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number)
        }
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(to_json).collect()),
        Some(Kind::StructValue(s)) => Value::Object(object(s.fields)),
    }
}

/// Object keys in sorted order, as Qdrant's REST API prints a payload.
fn object(fields: std::collections::HashMap<String, GrpcValue>) -> Map<String, Value> {
    entries(fields.into_iter())
}

/// [`object`] of a map's entries (a key given twice: the last one, as a protobuf map keeps).
fn entries(fields: impl Iterator<Item = (String, GrpcValue)>) -> Map<String, Value> {
    let mut sorted: Vec<(String, GrpcValue)> = fields.collect();
    // Stable: of equal keys the last stays last, and `insert` keeps the last.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Map::with_capacity(sorted.len());
    for (k, v) in sorted {
        out.insert(k, to_json(v));
    }
    out
}

/// A vector as the server sent it: the `vector` oneof (Qdrant ≥ 1.16), else the deprecated
/// flat fields — checked, since a bad `vectors_count` would make the client's own
/// `into_vector` divide by zero.
#[allow(deprecated)]
fn output_vector(v: qdrant_client::qdrant::VectorOutput) -> Result<VectorValue> {
    if let Some(v) = v.vector {
        return Ok(vector_value(v));
    }
    if let Some(ix) = v.indices {
        return Ok(VectorValue::Sparse {
            indices: ix.data,
            values: v.data,
        });
    }
    match v.vectors_count.map(|n| n as usize) {
        None => Ok(VectorValue::Dense(v.data)),
        Some(n) if n > 0 && v.data.len().is_multiple_of(n) => Ok(VectorValue::Multi(
            v.data
                .chunks(v.data.len() / n)
                .map(<[f32]>::to_vec)
                .collect(),
        )),
        Some(n) => Err(grpc_err(
            "scroll",
            "vector",
            &format!(
                "a multivector of {} floats said to hold {n} vectors",
                v.data.len()
            ),
        )),
    }
}

fn vector_value(v: Vector) -> VectorValue {
    match v {
        Vector::Dense(d) => VectorValue::Dense(d.data),
        Vector::Sparse(s) => VectorValue::Sparse {
            indices: s.indices,
            values: s.values,
        },
        Vector::MultiDense(m) => {
            VectorValue::Multi(m.vectors.into_iter().map(|d| d.data).collect())
        }
    }
}

fn shard_key_json(k: ShardKey) -> Option<Value> {
    match k.key? {
        shard_key::Key::Keyword(s) => Some(Value::String(s)),
        shard_key::Key::Number(n) => Some(Value::from(n)),
    }
}

/// A vector of the scroll answer: the `vector` oneof, else the deprecated flat fields.
#[allow(deprecated)]
fn answer_vector(v: grpc_scroll::Vector) -> Result<VectorValue> {
    if let Some(d) = v.dense {
        return Ok(VectorValue::Dense(d.floats()?));
    }
    if let Some(s) = v.sparse {
        return Ok(vector_value(Vector::Sparse(s)));
    }
    if let Some(m) = v.multi_dense {
        return Ok(vector_value(Vector::MultiDense(m)));
    }
    output_vector(qdrant_client::qdrant::VectorOutput {
        data: v.data,
        indices: v.indices,
        vectors_count: v.vectors_count,
        vector: None,
    })
}

fn to_point(p: grpc_scroll::Retrieved) -> Result<Point> {
    let id =
        p.id.as_ref()
            .ok_or_else(|| grpc_err("scroll", "point id", "a point without an id"))
            .and_then(from_grpc_id)?;
    let mut vectors = BTreeMap::new();
    if let Some(v) = p.vectors {
        if let Some(v) = v.vector {
            vectors.insert(crate::model::UNNAMED_VECTOR.to_string(), answer_vector(v)?);
        } else if let Some(named) = v.named {
            for e in named.entries {
                vectors.insert(e.key, answer_vector(e.value.unwrap_or_default())?);
            }
        }
    }
    Ok(Point {
        id,
        vectors,
        payload: entries(
            p.payload
                .into_iter()
                .map(|e| (e.key, e.value.unwrap_or_default())),
        ),
        shard_key: p.shard_key.and_then(shard_key_json),
    })
}

/// Qdrant's gRPC URL next to a REST URL on Qdrant's default port: the same host on 6334
/// (`None` for another REST port: give `--grpc-url`).
pub fn default_grpc_url(rest: &str) -> Option<String> {
    let u = reqwest::Url::parse(rest).ok()?;
    (u.port_or_known_default()? == 6333)
        .then(|| format!("{}://{}:6334", u.scheme(), u.host_str().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_client::qdrant::{ListValue, Struct};
    use serde_json::json;

    #[test]
    fn payload_values_keep_integers_apart_from_doubles() {
        let v = |k| GrpcValue { kind: Some(k) };
        let s = Struct {
            fields: [
                ("b".to_string(), v(Kind::IntegerValue(i64::MIN))),
                ("a".to_string(), v(Kind::DoubleValue(1.0))),
                (
                    "c".to_string(),
                    v(Kind::ListValue(ListValue {
                        values: vec![v(Kind::NullValue(0)), v(Kind::StringValue("é".into()))],
                    })),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let j = to_json(v(Kind::StructValue(s)));
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"a":1.0,"b":-9223372036854775808,"c":[null,"é"]}"#
        );
    }

    #[test]
    #[allow(deprecated)]
    fn a_bad_deprecated_multivector_is_an_error_not_a_panic() {
        let bad = |data: Vec<f32>, n| qdrant_client::qdrant::VectorOutput {
            data,
            indices: None,
            vectors_count: Some(n),
            vector: None,
        };
        for (data, n) in [
            (vec![1.0, 2.0], 0),
            (vec![1.0, 2.0, 3.0], 2),
            (vec![1.0], 4),
        ] {
            let e = output_vector(bad(data, n)).unwrap_err().to_string();
            assert!(
                e.contains("multivector") && e.contains("--transport rest"),
                "{e}"
            );
        }
        let ok = output_vector(bad(vec![1.0, 2.0, 3.0, 4.0], 2)).unwrap();
        assert_eq!(ok, VectorValue::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]]));
    }

    #[test]
    fn doubles_that_may_be_rounded_big_integers_are_noticed() {
        let p = |v: Value| json!({"a": {"b": [v]}}).as_object().unwrap().clone();
        assert!(has_rounded_integer(&p(json!(9.223372036854776e18))));
        assert!(has_rounded_integer(&p(json!(1.8446744073709552e19))));
        assert!(!has_rounded_integer(&p(json!(i64::MAX))));
        assert!(
            !has_rounded_integer(&p(json!(u64::MAX))),
            "an exact u64 (REST) is fine"
        );
        assert!(!has_rounded_integer(&p(json!(0.5))));
        assert!(!has_rounded_integer(&p(json!("9223372036854775808"))));
    }

    #[test]
    fn credentials_in_the_grpc_url_are_never_shown() {
        let g = QdrantGrpc::new("http://user:s3cret@127.0.0.1:9", None).unwrap();
        assert!(!g.url().contains("s3cret"), "{}", g.url());
    }

    #[test]
    fn a_reset_connection_or_a_busy_server_is_tried_again_other_errors_are_not() {
        use super::{Attempt, attempt};
        use qdrant_client::QdrantError;
        let status = |s: tonic::Status| -> std::result::Result<(), QdrantError> {
            Err(QdrantError::ResponseError { status: s })
        };
        for s in [
            tonic::Status::unavailable("error trying to connect: Connection reset by peer"),
            tonic::Status::deadline_exceeded("timeout"),
            tonic::Status::aborted("aborted"),
        ] {
            assert!(
                matches!(attempt(status(s), "scroll", "c"), Attempt::Retry { .. }),
                "tried again"
            );
        }
        let busy = Err::<(), _>(QdrantError::ResourceExhaustedError {
            status: tonic::Status::resource_exhausted("busy"),
            retry_after_seconds: 3,
        });
        assert!(matches!(
            attempt(busy, "scroll", "c"),
            Attempt::Retry { after: Some(d), .. } if d.as_secs() == 3
        ));
        for s in [
            tonic::Status::not_found("Collection c not found"),
            tonic::Status::invalid_argument("bad"),
            tonic::Status::unauthenticated("no key"),
        ] {
            match attempt(status(s), "scroll", "c") {
                Attempt::Fail(e) => assert!(e.to_string().contains("scroll c"), "{e}"),
                _ => panic!("not tried again"),
            }
        }
    }

    #[test]
    fn grpc_port_sits_next_to_the_rest_port() {
        assert_eq!(
            default_grpc_url("http://qdrant:6333").as_deref(),
            Some("http://qdrant:6334")
        );
        assert_eq!(
            default_grpc_url("https://x.cloud.qdrant.io:6333").as_deref(),
            Some("https://x.cloud.qdrant.io:6334")
        );
        assert_eq!(default_grpc_url("http://127.0.0.1:41000/"), None);
    }
}
