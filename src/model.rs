//! Source-neutral point and collection types shared by every stage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A Qdrant point id: an unsigned integer or a UUID (kept as lowercase hyphenated text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum PointId {
    /// Integer id (the full u64 range is valid in Qdrant).
    Num(u64),
    /// UUID id, lowercase and hyphenated as Qdrant prints it.
    Uuid(String),
}

impl PointId {
    /// Text form used for a VarChar primary key and in messages.
    pub fn to_key_string(&self) -> String {
        match self {
            PointId::Num(n) => n.to_string(),
            PointId::Uuid(s) => s.clone(),
        }
    }

    /// Parses [`PointId::to_key_string`]'s text back.
    pub fn from_key_string(s: &str) -> Option<PointId> {
        match s.parse::<u64>() {
            Ok(n) => Some(PointId::Num(n)),
            Err(_) => PointId::from_json(&Value::from(s)),
        }
    }

    /// The JSON value Qdrant uses for this id (`offset` in scroll requests).
    pub fn to_json(&self) -> Value {
        match self {
            PointId::Num(n) => Value::from(*n),
            PointId::Uuid(s) => Value::from(s.as_str()),
        }
    }

    /// Parses an id from Qdrant JSON (number or UUID string).
    pub fn from_json(v: &Value) -> Option<PointId> {
        match v {
            Value::Number(n) => n.as_u64().map(PointId::Num),
            Value::String(s) => uuid::Uuid::parse_str(s)
                .ok()
                .map(|u| PointId::Uuid(u.hyphenated().to_string())),
            _ => None,
        }
    }
}

/// Read back from a manifest: a number, or a UUID in any form Qdrant accepts (normalised);
/// anything else is refused rather than turned into some other id.
impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        PointId::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{v} is not a Qdrant point id (an unsigned integer or a UUID)"
            ))
        })
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

/// Qdrant's scroll order: integers ascending first, then UUIDs ascending.
impl Ord for PointId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PointId::Num(a), PointId::Num(b)) => a.cmp(b),
            (PointId::Num(_), PointId::Uuid(_)) => Ordering::Less,
            (PointId::Uuid(_), PointId::Num(_)) => Ordering::Greater,
            (PointId::Uuid(a), PointId::Uuid(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for PointId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One vector value of a point, as Qdrant returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorValue {
    /// Dense vector (float32 values; float16/uint8 storage is widened by Qdrant).
    Dense(Vec<f32>),
    /// Sparse vector.
    Sparse { indices: Vec<u32>, values: Vec<f32> },
    /// Multivector (list of dense vectors).
    Multi(Vec<Vec<f32>>),
}

/// A point read from any source.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Point id.
    pub id: PointId,
    /// Vectors by name; the unnamed vector is stored under [`UNNAMED_VECTOR`].
    pub vectors: BTreeMap<String, VectorValue>,
    /// Payload object (empty when the point has none).
    pub payload: Map<String, Value>,
    /// The shard key of the shard it was read from (custom sharding, snapshot sources).
    pub shard_key: Option<Value>,
}

/// A search query: a dense vector, or a sparse one (Qdrant's `{"indices", "values"}`).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryVector {
    Dense(Vec<f32>),
    Sparse {
        indices: Vec<u32>,
        values: Vec<f32>,
    },
    /// A multivector (scored by MaxSim).
    Multi(Vec<Vec<f32>>),
}

impl QueryVector {
    /// As Qdrant's `query` takes it.
    pub fn to_qdrant_json(&self) -> Value {
        match self {
            QueryVector::Dense(v) => serde_json::json!(v),
            QueryVector::Sparse { indices, values } => {
                serde_json::json!({"indices": indices, "values": values})
            }
            QueryVector::Multi(m) => serde_json::json!(m),
        }
    }

    /// From Qdrant's `query` JSON (a float array, an array of float arrays, or
    /// `{"indices", "values"}`).
    pub fn from_qdrant_json(v: &Value) -> Option<QueryVector> {
        let floats = |a: &Value| -> Option<Vec<f32>> {
            a.as_array()?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect()
        };
        match v {
            Value::Array(a) if a.first().is_some_and(Value::is_array) => a
                .iter()
                .map(floats)
                .collect::<Option<Vec<_>>>()
                .map(QueryVector::Multi),
            Value::Array(_) => floats(v).map(QueryVector::Dense),
            Value::Object(o) => {
                let indices = o
                    .get("indices")?
                    .as_array()?
                    .iter()
                    .map(|x| x.as_u64().and_then(|i| u32::try_from(i).ok()))
                    .collect::<Option<Vec<u32>>>()?;
                let values = floats(o.get("values")?)?;
                (indices.len() == values.len()).then_some(QueryVector::Sparse { indices, values })
            }
            _ => None,
        }
    }
}

/// Key under which the single unnamed vector of a collection is kept.
pub const UNNAMED_VECTOR: &str = "";

/// Storage datatype of a dense Qdrant vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    /// 32-bit float (Qdrant's default).
    #[default]
    Float32,
    /// IEEE half precision.
    Float16,
    /// Unsigned byte.
    Uint8,
}

/// Qdrant distance names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    Cosine,
    Euclid,
    Dot,
    Manhattan,
}

/// Parameters of one dense vector of a Qdrant collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseParams {
    pub size: usize,
    pub distance: Distance,
    #[serde(default)]
    pub datatype: Datatype,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_m: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_ef_construct: Option<u64>,
}

/// Parameters of one sparse vector of a Qdrant collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<String>,
}

/// The parts of a Qdrant collection's config that the migration needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Collection name in Qdrant.
    pub name: String,
    /// Dense vectors by name ([`UNNAMED_VECTOR`] for the single unnamed one).
    pub dense: BTreeMap<String, DenseParams>,
    /// Sparse vectors by name.
    pub sparse: BTreeMap<String, SparseParams>,
    /// Collection-level HNSW `m`.
    pub hnsw_m: Option<u64>,
    /// Collection-level HNSW `ef_construct`.
    pub hnsw_ef_construct: Option<u64>,
    /// Number of shards.
    pub shard_number: u64,
    /// Indexed payload keys and their Qdrant index type (`keyword`, `integer`, …).
    #[serde(default)]
    pub payload_schema: BTreeMap<String, String>,
    /// Payload keys Qdrant indexes as a tenant (`is_tenant`) or as the principal key
    /// (`is_principal`), from a live server's `payload_schema`.
    #[serde(default)]
    pub tenant_keys: Vec<String>,
    #[serde(default)]
    pub principal_keys: Vec<String>,
    /// Custom sharding: the shard keys, when the source tells each point's (snapshot files
    /// carry `shard_key_mapping.json`; a live scroll does not say).
    #[serde(default)]
    pub shard_keys: Vec<Value>,
    /// The raw `config` object as Qdrant reported it, kept in the manifest.
    pub raw: Value,
}

impl CollectionConfig {
    /// A config of these vectors and nothing else set: one shard, no HNSW settings, no payload
    /// indexes, no custom sharding, `raw` null (tests, benches, hand-built sources).
    pub fn of_vectors(
        name: &str,
        dense: BTreeMap<String, DenseParams>,
        sparse: BTreeMap<String, SparseParams>,
    ) -> CollectionConfig {
        CollectionConfig {
            name: name.to_string(),
            dense,
            sparse,
            hnsw_m: None,
            hnsw_ef_construct: None,
            shard_number: 1,
            payload_schema: BTreeMap::new(),
            tenant_keys: Vec::new(),
            principal_keys: Vec::new(),
            shard_keys: Vec::new(),
            raw: Value::Null,
        }
    }
}

impl Point {
    /// The point as Qdrant's REST API prints it (`unnamed`: the collection has one unnamed vector).
    pub fn to_qdrant_json(&self, unnamed: bool) -> Value {
        fn dense(v: &[f32]) -> Value {
            Value::Array(v.iter().map(|x| f32_json(*x)).collect())
        }
        fn one(v: &VectorValue) -> Value {
            match v {
                VectorValue::Dense(d) => dense(d),
                VectorValue::Multi(m) => Value::Array(m.iter().map(|d| dense(d)).collect()),
                VectorValue::Sparse { indices, values } => {
                    serde_json::json!({"indices": indices, "values": dense(values)})
                }
            }
        }
        let vector = match (unnamed, self.vectors.get(UNNAMED_VECTOR)) {
            (true, Some(v)) => one(v),
            _ => Value::Object(
                self.vectors
                    .iter()
                    .map(|(k, v)| (k.clone(), one(v)))
                    .collect(),
            ),
        };
        let mut p = serde_json::json!({"id": self.id.to_json(), "payload": Value::Object(self.payload.clone()), "vector": vector});
        if let Some(k) = &self.shard_key {
            p["shard_key"] = k.clone();
        }
        p
    }
}

/// A float32 as a JSON number without widening noise (`0.1f32` stays `0.1`).
pub fn f32_json(x: f32) -> Value {
    // serde_json prints an f32 with ryu's shortest round-trip text, as Qdrant's server does.
    serde_json::to_string(&x)
        .unwrap_or_default()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A value's JSON text cut to 80 characters (never inside a character).
pub fn short_json(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}
