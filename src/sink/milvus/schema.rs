//! The Milvus `collections/create` request derived from a mapping (REST v2; docs/design.md §6).

use crate::transform::columns::columns;
use crate::transform::mapping::CollectionMapping;
use serde_json::{Map, Value, json};

/// The body of `POST /v2/vectordb/collections/create` for a mapping: autoID off, dynamic field
/// on, an index for every vector field (so the server also loads the collection).
pub fn milvus_create_body(m: &CollectionMapping) -> Value {
    let fields: Vec<Value> = columns(m)
        .iter()
        .filter_map(|c| c.milvus_field(m))
        .collect();
    let mut indexes = Vec::new();
    for v in &m.vectors {
        let params: Map<String, Value> = v
            .index_params
            .iter()
            .map(|(k, x)| (k.clone(), json!(x)))
            .collect();
        let mut idx = json!({"fieldName": v.field, "indexName": format!("{}_idx", v.field), "metricType": v.metric, "indexType": v.index_type});
        if !params.is_empty() {
            idx["params"] = Value::Object(params);
        }
        indexes.push(idx);
    }
    for s in m.scalars.iter() {
        if let Some(ix) = &s.index {
            indexes.push(json!({"fieldName": s.field, "indexName": format!("{}_idx", s.field), "indexType": ix}));
        }
    }
    // Strong: a collection's default consistency is what queries get on servers that ignore
    // the request's level (before mid-2025 builds, `entities/query` used the collection's:
    // Bounded unless set here; handler_v2.go `createCollection` reads `params.consistencyLevel`).
    let mut params = json!({"consistencyLevel": "Strong"});
    if let (Some(n), true) = (m.partitions_num, m.scalars.iter().any(|s| s.partition_key)) {
        params["partitionsNum"] = json!(n);
    }
    json!({
        "collectionName": m.target,
        "description": m.description,
        "schema": {"autoID": false, "enableDynamicField": true, "fields": fields},
        "indexParams": indexes,
        "params": params,
    })
}

/// A collection as `collections/describe` shows it (the parts q2z checks).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CollectionDescription {
    #[serde(default)]
    pub fields: Vec<FieldDescription>,
    /// `collectionID` (handler_v2.go `describeCollection`: the int64 the root coordinator
    /// allocated at creation; a collection dropped and created again gets another).
    #[serde(default, rename = "collectionID")]
    pub collection_id: serde_json::Value,
    /// `consistencyLevel`: the level set at create (`params.consistencyLevel`), else Bounded.
    #[serde(default, rename = "consistencyLevel")]
    pub consistency_level: Option<String>,
}

/// One field of a described collection.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FieldDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

impl CollectionDescription {
    /// The collection's id as text (`None` when the server reports none, or 0).
    pub fn id(&self) -> Option<String> {
        match &self.collection_id {
            serde_json::Value::Number(n) if n.as_u64() != Some(0) => Some(n.to_string()),
            serde_json::Value::String(s) if !s.is_empty() && s != "0" => Some(s.clone()),
            _ => None,
        }
    }

    /// The first field of a `collections/create` body that this collection lacks (by name and
    /// type), as `(name, type)`.
    pub fn missing_field(&self, create_body: &Value) -> Option<(String, String)> {
        create_body["schema"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["fieldName"].as_str().unwrap_or_default().to_string(),
                    f["dataType"].as_str().unwrap_or_default().to_string(),
                )
            })
            .find(|(name, ty)| {
                !self
                    .fields
                    .iter()
                    .any(|f| &f.name == name && &f.data_type == ty)
            })
    }
}
