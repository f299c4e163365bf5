//! Parses a Qdrant collection `config` object (REST `GET /collections/{name}` or a snapshot's
//! `config.json`) into a [`CollectionConfig`].

use crate::error::{Error, Result};
use crate::model::{
    CollectionConfig, Datatype, DenseParams, Distance, SparseParams, UNNAMED_VECTOR,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// Builds the config from the `config` object (`params`, `hnsw_config`, ...).
pub fn parse_collection_config(name: &str, config: &Value) -> Result<CollectionConfig> {
    let bad = |m: String| Error::Mapping {
        collection: name.to_string(),
        message: m,
    };
    let params = config
        .get("params")
        .ok_or_else(|| bad("config has no 'params'".into()))?;
    let hnsw = config.get("hnsw_config");
    let hnsw_m = hnsw.and_then(|h| h.get("m")).and_then(Value::as_u64);
    let hnsw_ef = hnsw
        .and_then(|h| h.get("ef_construct"))
        .and_then(Value::as_u64);
    let mut dense = BTreeMap::new();
    match params.get("vectors") {
        None | Some(Value::Null) => {}
        Some(v) if v.get("size").is_some() => {
            dense.insert(
                UNNAMED_VECTOR.to_string(),
                parse_dense(name, UNNAMED_VECTOR, v)?,
            );
        }
        Some(Value::Object(map)) => {
            for (vname, v) in map {
                dense.insert(vname.clone(), parse_dense(name, vname, v)?);
            }
        }
        Some(other) => return Err(bad(format!("unexpected 'vectors' value {other}"))),
    }
    let mut sparse = BTreeMap::new();
    if let Some(Value::Object(map)) = params.get("sparse_vectors") {
        for (vname, v) in map {
            let modifier = v
                .get("modifier")
                .and_then(Value::as_str)
                .map(str::to_string);
            sparse.insert(vname.clone(), SparseParams { modifier });
        }
    }
    Ok(CollectionConfig {
        name: name.to_string(),
        dense,
        sparse,
        hnsw_m,
        hnsw_ef_construct: hnsw_ef,
        shard_number: params
            .get("shard_number")
            .and_then(Value::as_u64)
            .unwrap_or(1),
        payload_schema: BTreeMap::new(),
        tenant_keys: Vec::new(),
        principal_keys: Vec::new(),
        shard_keys: Vec::new(),
        raw: config.clone(),
    })
}

fn parse_dense(collection: &str, vname: &str, v: &Value) -> Result<DenseParams> {
    let bad = |m: String| Error::Mapping {
        collection: collection.to_string(),
        message: m,
    };
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(format!("vector '{vname}' has no size")))? as usize;
    let distance = match v.get("distance").and_then(Value::as_str) {
        Some("Cosine") => Distance::Cosine,
        Some("Euclid") => Distance::Euclid,
        Some("Dot") => Distance::Dot,
        Some("Manhattan") => Distance::Manhattan,
        other => {
            return Err(bad(format!(
                "vector '{vname}' has unknown distance {other:?}"
            )));
        }
    };
    let datatype = match v.get("datatype").and_then(Value::as_str) {
        None | Some("float32") => Datatype::Float32,
        Some("float16") => Datatype::Float16,
        Some("uint8") => Datatype::Uint8,
        Some(other) => {
            return Err(bad(format!(
                "vector '{vname}' has unknown datatype '{other}'"
            )));
        }
    };
    let hnsw = v.get("hnsw_config");
    Ok(DenseParams {
        size,
        distance,
        datatype,
        multivector: v
            .get("multivector_config")
            .filter(|m| !m.is_null())
            .cloned(),
        hnsw_m: hnsw.and_then(|h| h.get("m")).and_then(Value::as_u64),
        hnsw_ef_construct: hnsw
            .and_then(|h| h.get("ef_construct"))
            .and_then(Value::as_u64),
    })
}

/// Records one entry of Qdrant's `payload_schema` (`{"data_type", "params"}`, as REST shows it
/// and as qdrant-edge's shard info serializes it): its type, and whether it is a tenant or the
/// principal key.
pub fn add_payload_index(c: &mut CollectionConfig, key: &str, v: &Value) {
    if let Some(t) = v.get("data_type").and_then(Value::as_str) {
        c.payload_schema.insert(key.to_string(), t.to_string());
    }
    let flag = |f: &str| v.pointer(&format!("/params/{f}")) == Some(&Value::Bool(true));
    if flag("is_tenant") && !c.tenant_keys.iter().any(|k| k == key) {
        c.tenant_keys.push(key.to_string());
    }
    if flag("is_principal") && !c.principal_keys.iter().any(|k| k == key) {
        c.principal_keys.push(key.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_and_unnamed_configs() {
        let named: Value = serde_json::json!({"params":{"vectors":{"image":{"size":4,"distance":"Dot","datatype":"float16"},"text":{"size":8,"distance":"Cosine"}},"sparse_vectors":{"keywords":{"modifier":"idf"}},"shard_number":2},"hnsw_config":{"m":20,"ef_construct":128}});
        let c = parse_collection_config("fx", &named).unwrap();
        assert_eq!(c.dense["image"].datatype, Datatype::Float16);
        assert_eq!(c.dense["text"].distance, Distance::Cosine);
        assert_eq!(c.sparse["keywords"].modifier.as_deref(), Some("idf"));
        assert_eq!(
            (c.hnsw_m, c.hnsw_ef_construct, c.shard_number),
            (Some(20), Some(128), 2)
        );
        let unnamed: Value = serde_json::json!({"params":{"vectors":{"size":6,"distance":"Euclid","datatype":"uint8"}}});
        let c = parse_collection_config("u", &unnamed).unwrap();
        assert_eq!(c.dense[UNNAMED_VECTOR].size, 6);
        assert!(
            parse_collection_config(
                "x",
                &serde_json::json!({"params":{"vectors":{"size":2,"distance":"Hamming"}}})
            )
            .is_err()
        );
    }
}
