//! What a collection's Qdrant settings suggest for the Milvus side, kept in the mapping's
//! `hints` (so in the file `plan --mapping-out` writes, and in the manifest) and printed by
//! `plan`, for the user to decide: tenant and principal payload indexes, quantization,
//! vectors kept on disk.

use crate::model::CollectionConfig;
use serde_json::Value;

/// Suggestions for a collection mapped with `partition_key` as its partition key (if any).
pub fn suggestions(cfg: &CollectionConfig, partition_key: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for k in &cfg.tenant_keys {
        if partition_key != Some(k.as_str()) {
            out.push(format!(
                "payload key '{k}' is a tenant key in Qdrant (is_tenant): `--promote {k} --partition-key {k}` makes it Milvus's partition key, which keeps each tenant's points together and prunes searches filtered on it"
            ));
        }
    }
    for k in &cfg.principal_keys {
        out.push(format!(
            "payload key '{k}' is Qdrant's principal index (is_principal): in Milvus ≥ 2.5 a clustering key on the promoted field (`--promote {k}`, then isClusteringKey in the collection schema) orders storage by it the same way; q2z does not set it"
        ));
    }
    let raw = &cfg.raw;
    let vectors = raw.pointer("/params/vectors");
    let per_vector: Vec<(String, &Value)> = match vectors {
        Some(v) if v.get("size").is_some() => vec![(String::new(), v)],
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    };
    for (name, v) in &per_vector {
        let shown = if name.is_empty() { "(unnamed)" } else { name };
        let quant = v
            .get("quantization_config")
            .filter(|q| !q.is_null())
            .or_else(|| raw.get("quantization_config").filter(|q| !q.is_null()));
        if let Some(q) = quant {
            let milvus = if q.get("scalar").is_some() {
                Some("HNSW_SQ (Milvus ≥ 2.6) or IVF_SQ8")
            } else if q.get("product").is_some() {
                Some("HNSW_PQ (Milvus ≥ 2.6) or IVF_PQ")
            } else if q.get("binary").is_some() {
                Some("IVF_RABITQ (Milvus ≥ 2.6) or HNSW_PRQ")
            } else {
                None
            };
            if let Some(ix) = milvus {
                out.push(format!(
                    "vector {shown} is quantized in Qdrant ({}): a quantized Milvus index such as {ix} keeps the memory footprint; set index_type in the mapping file (the default HNSW keeps full floats)",
                    q.as_object().and_then(|o| o.keys().next()).map(String::as_str).unwrap_or("?")
                ));
            }
        }
        let on_disk = v.get("on_disk") == Some(&Value::Bool(true));
        let hnsw_on_disk = v.pointer("/hnsw_config/on_disk") == Some(&Value::Bool(true))
            || raw.pointer("/hnsw_config/on_disk") == Some(&Value::Bool(true));
        if on_disk || hnsw_on_disk {
            out.push(format!(
                "vector {shown} is kept on disk in Qdrant ({}): enable mmap for it in Milvus (`mmap.enabled` on the field or the collection) to keep memory low the same way",
                match (on_disk, hnsw_on_disk) {
                    (true, true) => "vectors and HNSW index",
                    (true, false) => "vectors",
                    _ => "HNSW index",
                }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tenants_quantization_and_disk_become_suggestions() {
        let raw = json!({"params": {"vectors": {"a": {"size": 4, "distance": "Cosine", "on_disk": true},
                                                 "b": {"size": 4, "distance": "Dot", "quantization_config": {"product": {"compression": "x16"}}}}},
                         "hnsw_config": {"m": 16}, "quantization_config": {"scalar": {"type": "int8"}}});
        let cfg = CollectionConfig {
            name: "c".into(),
            dense: Default::default(),
            sparse: Default::default(),
            hnsw_m: None,
            hnsw_ef_construct: None,
            shard_number: 1,
            payload_schema: Default::default(),
            tenant_keys: vec!["tenant".into()],
            principal_keys: vec!["ts".into()],
            shard_keys: Vec::new(),
            raw,
        };
        let s = suggestions(&cfg, None);
        let all = s.join("\n");
        assert!(all.contains("--partition-key tenant"), "{all}");
        assert!(
            all.contains("clustering key") && all.contains("'ts'"),
            "{all}"
        );
        assert!(
            all.contains("vector a is quantized in Qdrant (scalar)") && all.contains("HNSW_SQ"),
            "{all}"
        );
        assert!(
            all.contains("vector b is quantized in Qdrant (product)") && all.contains("HNSW_PQ"),
            "{all}"
        );
        assert!(
            all.contains("vector a is kept on disk") && all.contains("mmap"),
            "{all}"
        );
        assert!(
            !suggestions(&cfg, Some("tenant"))
                .join("\n")
                .contains("--partition-key tenant"),
            "no suggestion once it is the partition key"
        );
        // The mapping keeps them (and the file `plan --mapping-out` writes), not its warnings.
        let mut cfg = cfg;
        cfg.dense.insert(
            "a".into(),
            crate::model::DenseParams {
                size: 4,
                distance: crate::model::Distance::Cosine,
                datatype: Default::default(),
                multivector: None,
                hnsw_m: None,
                hnsw_ef_construct: None,
            },
        );
        let (m, warnings) = crate::transform::mapping::default_mapping(
            &cfg,
            crate::transform::mapping::IdKind::Int64,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(m.hints, suggestions(&cfg, None));
        assert!(!warnings.iter().any(|w| w.contains("--partition-key")));
        let text = toml::to_string(&m).unwrap();
        let back: crate::transform::mapping::CollectionMapping = toml::from_str(&text).unwrap();
        assert_eq!(back.hints, m.hints, "{text}");
    }
}
