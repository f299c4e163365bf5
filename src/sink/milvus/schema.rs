//! The Milvus `collections/create` request derived from a mapping (REST v2; docs/design.md §6).

use crate::transform::columns::columns;
use crate::transform::mapping::{CollectionMapping, EMBEDDING, MAX_EMBEDDINGS, VectorKind};
use serde_json::{Map, Value, json};

/// The body of `POST /v2/vectordb/collections/create` for a mapping: autoID off, dynamic field
/// on, an index for every vector field (so the server also loads the collection).
pub fn milvus_create_body(m: &CollectionMapping) -> Value {
    let fields: Vec<Value> = columns(m)
        .iter()
        .filter_map(|c| c.milvus_field(m))
        .collect();
    let mut indexes = Vec::new();
    let mut structs = Vec::new();
    for v in &m.vectors {
        let params: Map<String, Value> = v
            .index_params
            .iter()
            .map(|(k, x)| (k.clone(), json!(x)))
            .collect();
        let mut idx = json!({"fieldName": v.field, "indexName": format!("{}_idx", v.field), "metricType": v.metric, "indexType": v.index_type});
        if v.kind == VectorKind::EmbeddingList {
            // handler_v2.go createCollection `schema.structFields` (PR 49165, the 3.0 line):
            // short sub-field names, `max_capacity` in the sub-field; the index names the
            // sub-vector as `F[v]` (typeutil.ConcatStructFieldName) with a MAX_SIM metric.
            structs.push(json!({
                "fieldName": v.field,
                "fields": [{
                    "fieldName": EMBEDDING,
                    "dataType": "ArrayOfVector",
                    "elementDataType": "FloatVector",
                    "elementTypeParams": {"dim": v.dim.unwrap_or(0), "max_capacity": MAX_EMBEDDINGS},
                }],
            }));
            let (field, metric) =
                crate::transform::embedding_list::search_target(&v.field, &v.metric);
            idx["fieldName"] = json!(field);
            idx["metricType"] = json!(metric);
        }
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
    let mut schema = json!({"autoID": false, "enableDynamicField": true, "fields": fields});
    if !structs.is_empty() {
        schema["structFields"] = Value::Array(structs);
    }
    json!({
        "collectionName": m.target,
        "description": m.description,
        "schema": schema,
        "indexParams": indexes,
        "params": params,
    })
}

/// A collection as `collections/describe` shows it (the parts q2z checks).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CollectionDescription {
    #[serde(default)]
    pub fields: Vec<FieldDescription>,
    /// `structFields` (httpserver `printStructArrayFieldsV2`, the 3.0 line): Array of Structs
    /// fields, `type` "ArrayOfStruct".
    #[serde(default, rename = "structFields")]
    pub struct_fields: Vec<FieldDescription>,
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
            .chain(
                create_body["schema"]["structFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let name = f["fieldName"].as_str().unwrap_or_default();
                        (name.to_string(), "ArrayOfStruct".to_string())
                    }),
            )
            .find(|(name, ty)| {
                !self
                    .fields
                    .iter()
                    .chain(&self.struct_fields)
                    .any(|f| &f.name == name && &f.data_type == ty)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CollectionConfig, DenseParams, Distance};
    use crate::transform::mapping::{IdKind, MappingOptions, MultivectorPolicy, default_mapping};

    fn config(datatype: crate::model::Datatype) -> CollectionConfig {
        let mut dense = std::collections::BTreeMap::new();
        dense.insert(
            "colbert".to_string(),
            DenseParams {
                size: 4,
                distance: Distance::Dot,
                datatype,
                multivector: Some(json!({"comparator": "max_sim"})),
                hnsw_m: None,
                hnsw_ef_construct: None,
            },
        );
        CollectionConfig::of_vectors("c", dense, Default::default())
    }

    #[test]
    fn a_multivector_kept_whole_is_a_struct_field_with_a_max_sim_index_on_its_sub_vector() {
        let opts = MappingOptions {
            multivector: MultivectorPolicy::Struct,
            autoindex: true,
            ..Default::default()
        };
        let cfg = config(crate::model::Datatype::Float32);
        let m = default_mapping(&cfg, IdKind::Int64, &opts).unwrap().0;
        m.validate(&cfg).unwrap();
        let body = milvus_create_body(&m);
        let fields = body["schema"]["fields"].as_array().unwrap();
        assert!(fields.iter().all(|f| f["fieldName"] != "colbert"), "{body}");
        let s = &body["schema"]["structFields"][0];
        assert_eq!(s["fieldName"], "colbert");
        assert_eq!(s["fields"][0]["fieldName"], EMBEDDING);
        assert_eq!(s["fields"][0]["dataType"], "ArrayOfVector");
        assert_eq!(s["fields"][0]["elementTypeParams"]["dim"], 4);
        let idx = &body["indexParams"][0];
        assert_eq!(idx["fieldName"], "colbert[v]");
        assert_eq!(idx["metricType"], "MAX_SIM_IP");
        // MAX_SIM is built by HNSW, even where AUTOINDEX was asked for the other vectors.
        assert_eq!(idx["indexType"], "HNSW");
        // A float16 multivector is not kept whole: the choice is refused with the others.
        let e = default_mapping(
            &config(crate::model::Datatype::Float16),
            IdKind::Int64,
            &opts,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--multivector first or skip"), "{e}");
    }
}
