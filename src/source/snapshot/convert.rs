//! qdrant-edge values to q2z's model: the shard config as Qdrant's `config` object, point ids,
//! vectors and records.

use super::*;

/// Renders a qdrant-edge shard config in the shape of Qdrant's collection `config` object.
pub fn edge_config_to_qdrant(cfg: &EdgeConfig) -> Value {
    let mut vectors = Map::new();
    for (name, p) in &cfg.vectors {
        let mut v = Map::new();
        v.insert("size".into(), json!(p.size));
        v.insert(
            "distance".into(),
            serde_json::to_value(p.distance).unwrap_or(Value::Null),
        );
        if let Some(dt) = p.datatype {
            v.insert(
                "datatype".into(),
                serde_json::to_value(dt).unwrap_or(Value::Null),
            );
        }
        if let Some(mv) = &p.multivector_config {
            v.insert(
                "multivector_config".into(),
                serde_json::to_value(mv).unwrap_or(Value::Null),
            );
        }
        if let Some(h) = &p.hnsw_config {
            v.insert(
                "hnsw_config".into(),
                serde_json::to_value(h).unwrap_or(Value::Null),
            );
        }
        vectors.insert(name.to_string(), Value::Object(v));
    }
    let vectors = if vectors.len() == 1 && vectors.contains_key(UNNAMED_VECTOR) {
        vectors.remove(UNNAMED_VECTOR).unwrap_or(Value::Null)
    } else {
        Value::Object(vectors)
    };
    let mut sparse = Map::new();
    for (name, p) in &cfg.sparse_vectors {
        let mut v = Map::new();
        if let Some(m) = p.modifier {
            v.insert(
                "modifier".into(),
                serde_json::to_value(m).unwrap_or(Value::Null),
            );
        }
        sparse.insert(name.to_string(), Value::Object(v));
    }
    let mut params = Map::new();
    params.insert("vectors".into(), vectors);
    params.insert("shard_number".into(), json!(1));
    params.insert("replication_factor".into(), json!(1));
    params.insert("write_consistency_factor".into(), json!(1));
    params.insert("on_disk_payload".into(), json!(cfg.on_disk_payload()));
    if !sparse.is_empty() {
        params.insert("sparse_vectors".into(), Value::Object(sparse));
    }
    let hnsw = serde_json::to_value(cfg.hnsw_config()).unwrap_or(Value::Null);
    json!({ "params": Value::Object(params), "hnsw_config": hnsw })
}

/// Converts a qdrant-edge id.
pub fn from_edge_id(id: &EdgeId) -> PointId {
    match id {
        EdgeId::NumId(n) => PointId::Num(*n),
        EdgeId::Uuid(u) => PointId::Uuid(u.hyphenated().to_string()),
    }
}

/// Converts an id to qdrant-edge's type.
pub fn to_edge_id(id: &PointId) -> Result<EdgeId> {
    match id {
        PointId::Num(n) => Ok(EdgeId::NumId(*n)),
        PointId::Uuid(s) => uuid::Uuid::parse_str(s).map(EdgeId::Uuid).map_err(|_| {
            Error::Other(format!(
                "'{s}' is not a UUID, so it cannot be a scroll position; the stage's manifest is damaged: export again with --restart"
            ))
        }),
    }
}

pub(super) fn convert_vector(v: VectorInternal) -> VectorValue {
    match v {
        VectorInternal::Dense(d) => VectorValue::Dense(d),
        VectorInternal::Sparse(s) => VectorValue::Sparse {
            indices: s.indices,
            values: s.values,
        },
        VectorInternal::MultiDense(m) => VectorValue::Multi(m.into_multi_vectors()),
    }
}

/// Converts a qdrant-edge record into a [`Point`].
pub fn record_to_point(r: Record) -> Point {
    let mut vectors = BTreeMap::new();
    match r.vector {
        None => {}
        Some(VectorStructInternal::Single(d)) => {
            vectors.insert(UNNAMED_VECTOR.to_string(), VectorValue::Dense(d));
        }
        Some(VectorStructInternal::MultiDense(m)) => {
            vectors.insert(
                UNNAMED_VECTOR.to_string(),
                VectorValue::Multi(m.into_multi_vectors()),
            );
        }
        Some(VectorStructInternal::Named(map)) => {
            for (k, v) in map {
                vectors.insert(k.to_string(), convert_vector(v));
            }
        }
    }
    Point {
        id: from_edge_id(&r.id),
        vectors,
        payload: r.payload.map(|p| p.0).unwrap_or_default(),
        shard_key: None,
    }
}
