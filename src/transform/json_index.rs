//! JSON-path indexes on payload keys left in `$meta`: what Qdrant indexed for filtering stays
//! fast to filter in Milvus ≥ 2.5.11 / Zilliz Cloud, which index a key of the dynamic field by
//! its path (`indexes/create` with `json_path` and `json_cast_type`). Older targets refuse; the
//! import then goes on with a warning (filters on the key scan `$meta`).

use crate::model::CollectionConfig;
use crate::transform::scalars::ScalarField;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The oldest Milvus that indexes keys of the dynamic field.
pub const NEEDS: &str = "Milvus ≥ 2.5.11 or Zilliz Cloud";

/// An index on one key of `$meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaIndex {
    /// Payload key (Qdrant's path: `a` or `a.b`).
    pub key: String,
    /// Milvus `json_cast_type`: VARCHAR, DOUBLE or BOOL.
    pub cast_type: String,
}

impl MetaIndex {
    /// The `indexParams` entry of `indexes/create` for collection `target`'s dynamic field:
    /// the field name is the key's first segment, the path the whole key.
    pub fn request(&self, target: &str) -> Value {
        let mut parts = self.key.split('.');
        let top = parts.next().unwrap_or_default();
        let mut path = top.to_string();
        for p in parts {
            path.push_str(&format!("[{}]", json!(p)));
        }
        json!({
            "collectionName": target,
            "indexParams": [{
                "fieldName": top,
                "indexName": index_name(&self.key),
                "indexType": "INVERTED",
                "params": {"json_path": path, "json_cast_type": self.cast_type},
            }],
        })
    }
}

/// The index name of a key (`[A-Za-z0-9_]`, as Milvus requires).
fn index_name(key: &str) -> String {
    let body: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("meta_{body}_idx")
}

/// The cast type for a Qdrant payload index type (`None`: no JSON-path index fits — full-text
/// `text` and `geo` have no Milvus JSON-path counterpart).
pub fn cast_type(qdrant_index: &str) -> Option<&'static str> {
    Some(match qdrant_index {
        "keyword" | "uuid" | "datetime" => "VARCHAR",
        "integer" | "float" => "DOUBLE",
        "bool" => "BOOL",
        _ => return None,
    })
}

/// A key whose every segment can be a Milvus field name or JSON key without quoting.
fn plain_key(key: &str) -> bool {
    key.split('.').all(|s| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
    })
}

/// The JSON-path indexes for the keys Qdrant indexed that stay in `$meta` (not promoted);
/// what cannot be indexed is said in `warnings`.
pub fn meta_indexes(
    cfg: &CollectionConfig,
    scalars: &[ScalarField],
    warnings: &mut Vec<String>,
) -> Vec<MetaIndex> {
    let mut out = Vec::new();
    for (key, ty) in &cfg.payload_schema {
        if scalars.iter().any(|s| &s.key == key) {
            continue;
        }
        match cast_type(ty) {
            Some(cast) if plain_key(key) => out.push(MetaIndex {
                key: key.clone(),
                cast_type: cast.into(),
            }),
            Some(_) => warnings.push(format!(
                "payload key '{key}' (a {ty} index in Qdrant) cannot get a JSON-path index under that name: promote it (--promote {key}) to keep filters on it fast"
            )),
            None => warnings.push(format!(
                "payload key '{key}' has a Qdrant {ty} index, which has no Milvus JSON-path counterpart: filters on it scan $meta"
            )),
        }
    }
    if !out.is_empty() {
        let keys: Vec<String> = out
            .iter()
            .map(|m| format!("{} ({})", m.key, m.cast_type))
            .collect();
        warnings.push(format!(
            "JSON-path indexes on $meta keys Qdrant indexed: {}. They need {NEEDS}; an older target refuses them and the import goes on without (remove them from `json_indexes` in the mapping file to skip)",
            keys.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_milvus_json_path_syntax() {
        let m = MetaIndex {
            key: "meta.color".into(),
            cast_type: "VARCHAR".into(),
        };
        let r = m.request("docs");
        let p = &r["indexParams"][0];
        assert_eq!(p["fieldName"], "meta");
        assert_eq!(p["indexType"], "INVERTED");
        assert_eq!(p["params"]["json_path"], "meta[\"color\"]");
        assert_eq!(p["params"]["json_cast_type"], "VARCHAR");
        assert_eq!(p["indexName"], "meta_meta_color_idx");
    }

    #[test]
    fn cast_types_cover_qdrant_index_types() {
        assert_eq!(cast_type("keyword"), Some("VARCHAR"));
        assert_eq!(cast_type("integer"), Some("DOUBLE"));
        assert_eq!(cast_type("bool"), Some("BOOL"));
        assert_eq!(cast_type("text"), None);
        assert!(plain_key("a.b_2") && !plain_key("a-b") && !plain_key("tags[]"));
    }
}
