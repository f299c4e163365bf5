//! Field-by-field comparison of staged rows with the rows the target returns.

use crate::error::Result;
use crate::model::short_json as short;
use crate::sink::milvus::Milvus;
use crate::stage::StagedCollection;
use crate::stage::reader::Row;
use crate::transform::mapping::{CollectionMapping, META, VectorKind};
use crate::transform::scalars::ScalarKind;
use crate::transform::wkt;
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Dense values of a JSON vector: a float array, or base64 little-endian float16 bytes.
fn dense_values(v: &Value, kind: VectorKind) -> Option<Vec<f32>> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect(),
        Value::String(s) if kind == VectorKind::Float16Vector => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            Some(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            )
        }
        _ => None,
    }
}

/// A sparse vector as sorted (index, value) pairs, from `{"indices","values"}` or `{"12": 0.5}`.
fn sparse_pairs(v: &Value) -> Option<Vec<(u64, f32)>> {
    let o = v.as_object()?;
    let mut pairs: Vec<(u64, f32)> = if let (Some(i), Some(x)) = (o.get("indices"), o.get("values"))
    {
        i.as_array()?
            .iter()
            .zip(x.as_array()?)
            .map(|(i, x)| Some((i.as_u64()?, x.as_f64()? as f32)))
            .collect::<Option<_>>()?
    } else {
        o.iter()
            .map(|(k, x)| Some((k.parse().ok()?, x.as_f64()? as f32)))
            .collect::<Option<_>>()?
    };
    pairs.sort_by_key(|p| p.0);
    Some(pairs)
}

/// Compares one staged row with the target's row; returns the differences.
pub fn compare_row(
    m: &CollectionMapping,
    staged: &Row,
    target: &Map<String, Value>,
    upsert_mode: bool,
    dropped_nulls: &mut usize,
    rounded: &mut Vec<Rounded>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let id = &staged[&m.id_field];
    for v in &m.vectors {
        let (s, t) = (
            &staged[&v.field],
            target.get(&v.field).unwrap_or(&Value::Null),
        );
        let same = match v.kind {
            VectorKind::SparseFloatVector => {
                sparse_pairs(s).is_some() && sparse_pairs(s) == sparse_pairs(t)
            }
            VectorKind::EmbeddingList => {
                let vectors = crate::transform::embedding_list::from_json;
                vectors(s).is_some() && vectors(s) == vectors(t)
            }
            k => dense_values(s, k).is_some() && dense_values(s, k) == dense_values(t, k),
        };
        if !same {
            diffs.push(format!(
                "id {id}: field '{}' differs (staged {}, target {})",
                v.field,
                short(s),
                short(t)
            ));
        }
    }
    for f in &m.scalars {
        let s = staged.get(&f.field).unwrap_or(&Value::Null);
        let t = target.get(&f.field).unwrap_or(&Value::Null);
        let same = match (f.kind, s, t) {
            (ScalarKind::Geometry, Value::String(a), Value::String(b)) => wkt::same(a, b),
            (ScalarKind::Timestamptz, Value::String(a), Value::String(b)) => {
                crate::transform::instant::same(a, b)
            }
            _ => same_scalar(s, t),
        };
        if !same {
            diffs.push(format!(
                "id {id}: field '{}' differs (staged {}, target {})",
                f.field,
                short(s),
                short(t)
            ));
        }
    }
    let statics = m.static_fields();
    let dynamic: Map<String, Value> = target
        .iter()
        .filter(|(k, _)| !statics.contains(&k.as_str()) && k.as_str() != META)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut want = staged
        .get(META)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut dynamic = dynamic;
    if upsert_mode {
        // Rows upserted drop null-valued keys; rows bulk-imported (a sync's bulk delta, a
        // repair) keep them: neither is a difference.
        let before = want.len();
        want.retain(|_, v| !v.is_null());
        *dropped_nulls += before - want.len();
        dynamic.retain(|_, v| !v.is_null());
    }
    let all: std::collections::BTreeSet<&String> = want.keys().chain(dynamic.keys()).collect();
    let keys: Vec<&String> = all
        .into_iter()
        .filter(|k| {
            let (s, t) = (want.get(*k), dynamic.get(*k));
            match (s, t) {
                (Some(s), Some(t)) => {
                    let mut path = format!("{META}[{}]", Value::from(k.as_str()));
                    !same_meta(s, t, &mut path, id, rounded)
                }
                _ => true,
            }
        })
        .collect();
    if !keys.is_empty() {
        diffs.push(format!("id {id}: payload differs in keys {keys:?}"));
    }
    diffs
}

/// A payload integer beyond 2^53 that the target answered rounded (Milvus's query output reads
/// `$meta` into float64: `buildQueryResp`, internal/distributed/proxy/httpserver/utils.go): to
/// be checked exactly by a filter the server evaluates on the stored JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Rounded {
    /// The row's primary key.
    pub id: Value,
    /// The value's JSON path in a filter (`$meta["k"]["x"][0]`).
    pub path: String,
    /// The staged (exact) integer.
    pub exact: serde_json::Number,
}

fn beyond_f64(n: &serde_json::Number) -> bool {
    const EXACT: u64 = 1 << 53;
    n.as_u64().is_some_and(|u| u > EXACT) || n.as_i64().is_some_and(|i| i.unsigned_abs() > EXACT)
}

/// A `$meta` value against the target's answer, as the REST query output carries numbers
/// (through float64: an integral float comes back as an integer, an integer beyond 2^53
/// rounded): equal by value; an integer beyond 2^53 answered as its rounding is noted in
/// `rounded` to be checked server-side.
fn same_meta(
    s: &Value,
    t: &Value,
    path: &mut String,
    id: &Value,
    rounded: &mut Vec<Rounded>,
) -> bool {
    match (s, t) {
        (Value::Number(a), Value::Number(b)) => {
            if a == b {
                return true;
            }
            if a.as_f64() != b.as_f64() {
                return false;
            }
            if beyond_f64(a) && (a.is_i64() || a.is_u64()) {
                rounded.push(Rounded {
                    id: id.clone(),
                    path: path.clone(),
                    exact: a.clone(),
                });
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).enumerate().all(|(i, (a, b))| {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    let same = same_meta(a, b, path, id, rounded);
                    path.truncate(len);
                    same
                })
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, a)| {
                    y.get(k).is_some_and(|b| {
                        let len = path.len();
                        path.push_str(&format!("[{}]", Value::from(k.as_str())));
                        let same = same_meta(a, b, path, id, rounded);
                        path.truncate(len);
                        same
                    })
                })
        }
        (a, b) => a == b,
    }
}

/// Checks rounded answers exactly where the server can: one count per value of `id == X and
/// <path> == <exact>` (a filter literal is an Int64; keys holding `"` or `\` cannot be named).
/// Returns (checked exactly, compared to float64 precision only) and adds a line per value the
/// server does not hold exactly.
pub fn check_rounded(
    milvus: &Milvus,
    m: &CollectionMapping,
    rounded: &[Rounded],
    mismatches: &mut Vec<String>,
) -> Result<(usize, usize)> {
    let (mut exact, mut float_only) = (0, 0);
    for r in rounded {
        if r.exact.as_i64().is_none() || r.path.contains('\\') {
            float_only += 1;
            continue;
        }
        let filter = format!(
            "{} in {} and {} == {}",
            m.id_field,
            Value::Array(vec![r.id.clone()]),
            r.path,
            r.exact
        );
        if milvus.count(&m.target, &filter)? == 1 {
            exact += 1;
        } else {
            mismatches.push(format!(
                "id {}: payload value {} is not {} in the target (checked server-side)",
                r.id, r.path, r.exact
            ));
        }
    }
    Ok((exact, float_only))
}

/// Scalar equality across the forms Milvus answers in: Int64 as text, JSON fields as text,
/// numbers compared by value.
pub fn same_scalar(s: &Value, t: &Value) -> bool {
    match (s, t) {
        (Value::Number(a), Value::Number(b)) => {
            a.as_f64() == b.as_f64() && a.as_i64() == b.as_i64()
        }
        (Value::Number(a), Value::String(b)) => b.parse::<i64>().ok() == a.as_i64() && a.is_i64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_scalar(x, y))
        }
        (a, Value::String(b)) if !a.is_string() => {
            serde_json::from_str::<Value>(b).is_ok_and(|v| same_scalar(a, &v))
        }
        (a, b) => a == b,
    }
}

/// What a comparison of staged rows with the target found.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Rows compared.
    pub checked: usize,
    /// One line per difference.
    pub mismatches: Vec<String>,
    /// Chunks holding a difference.
    pub chunks: Vec<String>,
    /// Notes that are not failures.
    pub notes: Vec<String>,
    /// Picked rows left out (`keep` said no).
    pub skipped: usize,
    /// Payload integers beyond 2^53 the query output rounds, checked exactly by a filter.
    pub exact_server_side: usize,
    /// Payload integers above i64::MAX, which no filter literal holds: compared to float64
    /// precision only.
    pub float64_only: usize,
}

impl Comparison {
    /// The notes on how rounded payload integers were compared.
    pub fn note_rounded(&mut self) {
        if self.exact_server_side > 0 {
            self.notes.push(format!("{} payload integers beyond 2^53 (which Milvus's REST query output rounds through float64) were checked exactly by a server-side filter", self.exact_server_side));
        }
        if self.float64_only > 0 {
            self.notes.push(format!("{} payload integers above the largest Int64 were compared to float64 precision only (no Milvus filter literal holds them)", self.float64_only));
        }
    }
}

/// Reads the picked rows (chunk index, sorted row positions) from the stage, fetches them from
/// the target by id and compares them field by field.
pub fn compare_rows(
    milvus: &Milvus,
    sc: StagedCollection,
    picks: &[(usize, Vec<usize>)],
    upsert_mode: bool,
    keep: &dyn Fn(&Row) -> bool,
) -> Result<Comparison> {
    let m = &sc.entry.mapping;
    let mut out = Comparison::default();
    let mut dropped = 0usize;
    for (ci, idx) in picks {
        let Some(chunk) = sc.chunks().get(*ci) else {
            continue;
        };
        let mut rows: Vec<Row> = Vec::with_capacity(idx.len());
        let mut pos = 0usize;
        let mut want = idx.iter().peekable();
        sc.for_each_batch(chunk, 4096, |batch| {
            crate::interrupt::check()?;
            for r in batch {
                if want.peek() == Some(&&pos) {
                    if keep(&r) {
                        rows.push(r);
                    } else {
                        out.skipped += 1;
                    }
                    want.next();
                }
                pos += 1;
            }
            Ok(())
        })?;
        let before = out.mismatches.len();
        compare_fetched(milvus, m, &rows, upsert_mode, &mut dropped, &mut out)?;
        if out.mismatches.len() > before {
            out.chunks.push(chunk.file.clone());
        }
    }
    if dropped > 0 {
        out.notes.push(format!("{dropped} null-valued payload keys in the compared rows were dropped by Milvus's insert API (upsert mode); --mode bulk keeps them"));
    }
    out.note_rounded();
    Ok(out)
}

/// Fetches rows from the target by id (100 at a time) and compares them field by field,
/// adding to `out`.
pub fn compare_fetched(
    milvus: &Milvus,
    m: &CollectionMapping,
    rows: &[Row],
    upsert_mode: bool,
    dropped: &mut usize,
    out: &mut Comparison,
) -> Result<()> {
    for group in rows.chunks(100) {
        crate::interrupt::check()?;
        let ids: Vec<Value> = group.iter().map(|r| r[&m.id_field].clone()).collect();
        let filter = format!("{} in {}", m.id_field, Value::Array(ids));
        let got = milvus.query(&m.target, &filter, group.len() * 2 + 1)?;
        let mut by_id: HashMap<String, Map<String, Value>> = HashMap::new();
        for g in got {
            if let Value::Object(o) = g {
                let key = id_key(o.get(&m.id_field).unwrap_or(&Value::Null));
                by_id.insert(key, o);
            }
        }
        let mut rounded = Vec::new();
        for r in group {
            out.checked += 1;
            let key = id_key(&r[&m.id_field]);
            match by_id.get(&key) {
                None => out
                    .mismatches
                    .push(format!("id {key}: missing in the target")),
                Some(t) => {
                    out.mismatches
                        .extend(compare_row(m, r, t, upsert_mode, dropped, &mut rounded))
                }
            }
        }
        let (exact, float_only) = check_rounded(milvus, m, &rounded, &mut out.mismatches)?;
        out.exact_server_side += exact;
        out.float64_only += float_only;
    }
    Ok(())
}

/// Id as text whatever its JSON form (Int64 may arrive as a string).
pub fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_compare_across_the_forms_milvus_answers_in() {
        assert!(same_scalar(&json!(5), &json!("5")), "Int64 as text");
        assert!(!same_scalar(&json!(5.5), &json!("5")));
        assert!(same_scalar(&json!(1.5), &json!(1.5)));
        assert!(!same_scalar(&json!(1), &json!(1.5)));
        assert!(
            same_scalar(&json!({"a": [1, null]}), &json!("{\"a\":[1,null]}")),
            "JSON field as text"
        );
        assert!(same_scalar(&json!([1, 2]), &json!(["1", "2"])));
        assert!(!same_scalar(&json!([1, 2]), &json!([1])));
        assert!(same_scalar(&json!(null), &json!(null)));
        assert!(!same_scalar(&json!("x"), &json!("y")));
    }

    fn mapping() -> CollectionMapping {
        crate::transform::mapping::test_mapping(
            crate::model::Distance::Dot,
            crate::transform::mapping::IdKind::Int64,
        )
    }

    #[test]
    fn rows_compare_field_by_field_in_the_forms_milvus_answers() {
        let m = mapping();
        let staged: Row = serde_json::from_value(json!({
            "id": 7, "d": [0.5, 0.25], "s": {"indices": [3, 1], "values": [0.5, 0.25]},
            "$meta": {"a": 1, "n": null}
        }))
        .unwrap();
        let same: Map<String, Value> = serde_json::from_value(json!({
            "id": "7", "d": [0.5, 0.25], "s": {"1": 0.25, "3": 0.5}, "a": 1, "n": null
        }))
        .unwrap();
        let mut dropped = 0;
        assert!(compare_row(&m, &staged, &same, false, &mut dropped, &mut Vec::new()).is_empty());
        let mut other = same.clone();
        other.insert("d".into(), json!([0.5, 0.75]));
        other.insert("a".into(), json!(2));
        let diffs = compare_row(&m, &staged, &other, false, &mut dropped, &mut Vec::new());
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(
            diffs[0].contains("field 'd' differs") && diffs[1].contains("[\"a\"]"),
            "{diffs:?}"
        );
        // Upserts drop null-valued keys (a Milvus rule): not a difference in upsert mode.
        let mut no_null = same.clone();
        no_null.remove("n");
        assert_eq!(
            compare_row(&m, &staged, &no_null, false, &mut dropped, &mut Vec::new()).len(),
            1
        );
        assert!(compare_row(&m, &staged, &no_null, true, &mut dropped, &mut Vec::new()).is_empty());
        assert_eq!(dropped, 1);
    }

    #[test]
    fn payload_numbers_compare_as_the_rest_query_output_carries_them() {
        let m = mapping();
        let staged: Row = serde_json::from_value(json!({
            "id": 7, "d": [0.5, 0.25], "s": {"indices": [1], "values": [0.5]},
            "$meta": {"f": 5.0, "big": 9_007_199_254_740_993u64, "n": {"x": [u64::MAX]}, "k\"q": 9_007_199_254_740_995u64}
        }))
        .unwrap();
        // Through float64: 5.0 comes back as 5, the big integers rounded.
        let answered: Map<String, Value> = serde_json::from_value(json!({
            "id": 7, "d": [0.5, 0.25], "s": {"1": 0.5}, "f": 5,
            "big": 9_007_199_254_740_992u64, "n": {"x": [18_446_744_073_709_551_616.0]},
            "k\"q": 9_007_199_254_740_996u64
        }))
        .unwrap();
        let mut rounded = Vec::new();
        let diffs = compare_row(&m, &staged, &answered, false, &mut 0, &mut rounded);
        assert!(diffs.is_empty(), "{diffs:?}");
        let paths: Vec<&str> = rounded.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$meta[\"big\"]",
                "$meta[\"k\\\"q\"]",
                "$meta[\"n\"][\"x\"][0]"
            ]
        );
        assert_eq!(rounded[0].exact.as_u64(), Some(9_007_199_254_740_993));
        // A value that differs beyond float64's rounding is a difference.
        let mut wrong = answered.clone();
        wrong.insert("big".into(), json!(9_007_199_254_740_000u64));
        let diffs = compare_row(&m, &staged, &wrong, false, &mut 0, &mut Vec::new());
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].contains("\"big\""), "{diffs:?}");
    }

    #[test]
    fn short_never_cuts_a_character() {
        let v = json!("é".repeat(200));
        let s = short(&v);
        assert!(s.ends_with('…'));
        assert_eq!(s.chars().count(), 81);
        assert_eq!(short(&json!("ok")), "\"ok\"");
    }
}
