//! Filters for filtered search parity, built from the data: `key == value` with each query
//! point's own value, as a Qdrant filter (REST JSON) and as the Milvus boolean expression on the
//! promoted field or on the key inside the dynamic field (`$meta["key"]`).

use crate::stage::reader::Row;
use crate::transform::batch::unescape_key;
use crate::transform::mapping::{CollectionMapping, META};
use crate::transform::scalars::{ScalarFrom, ScalarKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The key a filtered pass filters on.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterKey {
    /// The payload key in Qdrant.
    pub qdrant_key: String,
    /// Where the staged row holds its value: a promoted field, or a key of `$meta`.
    column: Column,
    /// The left side of the Milvus expression (`field` or `$meta["key"]`).
    pub milvus_lhs: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Column {
    Field(String),
    Meta(String),
}

/// One query's filter on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryFilter {
    pub qdrant: Value,
    pub milvus: String,
}

/// A key made of letters, digits and `_` only: no quoting, no nested-path reading in either
/// engine.
fn plain(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value an equality filter can take the same way on both sides.
fn usable(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.contains(['"', '\\']) && !s.chars().any(char::is_control),
        Value::Number(n) => n.is_i64(),
        Value::Bool(_) => true,
        _ => false,
    }
}

/// The key to filter on: the first promoted VarChar, Int64 or Bool payload field that some of
/// `rows` hold a value of, else a `$meta` key with string, integer or boolean values: one whose
/// values are shared (a filter that selects a group, not one point, nor everything) if there is
/// one, then the one most rows hold.
pub fn choose_key(m: &CollectionMapping, rows: &[Row]) -> Option<FilterKey> {
    if let Some(f) = m.scalars.iter().find(|f| {
        f.from == ScalarFrom::Payload
            && matches!(
                f.kind,
                ScalarKind::VarChar | ScalarKind::Int64 | ScalarKind::Bool
            )
            && plain(&f.key)
            && rows.iter().any(|r| r.get(&f.field).is_some_and(usable))
    }) {
        return Some(FilterKey {
            qdrant_key: f.key.clone(),
            column: Column::Field(f.field.clone()),
            milvus_lhs: f.field.clone(),
        });
    }
    let statics = m.static_fields();
    let mut seen: BTreeMap<&str, (usize, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for r in rows {
        for (k, v) in r.get(META).and_then(Value::as_object).into_iter().flatten() {
            if usable(v) && plain(k) {
                let e = seen.entry(k.as_str()).or_default();
                e.0 += 1;
                e.1.insert(v.to_string());
            }
        }
    }
    let grouping = |(n, values): &(usize, std::collections::BTreeSet<String>)| {
        values.len() >= 2 && values.len() * 2 <= *n
    };
    let (escaped, _) = seen
        .into_iter()
        .max_by_key(|(k, s)| (grouping(s), s.0, std::cmp::Reverse(*k)))?;
    Some(FilterKey {
        qdrant_key: unescape_key(escaped, &statics).to_string(),
        column: Column::Meta(escaped.to_string()),
        milvus_lhs: format!("{META}[\"{escaped}\"]"),
    })
}

/// `key == (the row's value)`, if the row holds a usable value for the key.
pub fn for_row(key: &FilterKey, row: &Row) -> Option<QueryFilter> {
    let v = match &key.column {
        Column::Field(f) => row.get(f)?,
        Column::Meta(k) => row.get(META)?.get(k)?,
    };
    if !usable(v) {
        return None;
    }
    Some(QueryFilter {
        qdrant: json!({"must": [{"key": key.qdrant_key, "match": {"value": v}}]}),
        milvus: format!("{} == {v}", key.milvus_lhs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::mapping::IdKind;

    fn row(v: Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_most_common_plain_meta_key_is_filtered_with_each_rows_value() {
        let m =
            crate::transform::mapping::test_mapping(crate::model::Distance::Cosine, IdKind::Int64);
        let rows = vec![
            row(
                json!({"id": 1, "$meta": {"tenant": "a", "n": 1.5, "odd key": "x", "rank": 1, "c": 0}}),
            ),
            row(json!({"id": 2, "$meta": {"tenant": "b", "rank": 7, "c": 0}})),
            row(json!({"id": 3, "$meta": {"rank": 8, "tenant": "b", "c": 0}})),
            row(json!({"id": 4, "$meta": {"rank": 9, "tenant": "a", "c": 0}})),
        ];
        let k = choose_key(&m, &rows).unwrap();
        assert_eq!(
            k.qdrant_key, "tenant",
            "shared values win over unique (rank) and constant (c) ones"
        );
        assert_eq!(k.milvus_lhs, "$meta[\"tenant\"]");
        let f = for_row(&k, &rows[1]).unwrap();
        assert_eq!(f.milvus, "$meta[\"tenant\"] == \"b\"");
        assert_eq!(
            f.qdrant,
            json!({"must": [{"key": "tenant", "match": {"value": "b"}}]})
        );
        let quoted = row(json!({"id": 4, "$meta": {"tenant": "say \"hi\""}}));
        assert_eq!(
            for_row(&k, &quoted),
            None,
            "a value that needs escaping is left out"
        );
        assert_eq!(choose_key(&m, &[row(json!({"id": 5}))]), None);
    }
}
