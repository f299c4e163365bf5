//! Helpers for tests that stage into and import to the Milvus stand-in.

use super::*;
use serde_json::{Value, json};
use std::path::Path;

/// POSTs to the Milvus stand-in's REST v2 API.
pub fn milvus_post(path: &str, body: Value) -> Value {
    let url = standin("Q2Z_MILVUS_URL");
    reqwest::blocking::Client::new()
        .post(format!("{url}/v2/vectordb/{path}"))
        .bearer_auth(standin("Q2Z_MILVUS_TOKEN"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Rows of a target collection as the stand-in's engine stores them (a query body; the
/// stand-in's test endpoint, not a Milvus API: Milvus's REST output rounds dynamic values).
pub fn standin_rows(body: Value) -> Value {
    let url = standin("Q2Z_MILVUS_URL");
    reqwest::blocking::Client::new()
        .post(format!("{url}/__standin/rows"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// `count(*)` of a target collection.
pub fn target_count(name: &str) -> u64 {
    let v = milvus_post(
        "entities/query",
        json!({"collectionName": name, "filter": "", "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
    );
    assert_eq!(v["code"], 0, "{v}");
    let c = &v["data"][0]["count(*)"];
    c.as_u64()
        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}

/// Runs `q2z export` from the Qdrant stand-in into `stage` for one or more collections.
pub fn live_export(stage: &Path, collections: &[&str], extra: &[&str]) -> (i32, String, String) {
    let url = standin("Q2Z_QDRANT_URL");
    let mut args = vec![
        "export",
        "--qdrant-url",
        &url,
        "--stage",
        stage.to_str().unwrap(),
    ];
    for c in collections {
        args.extend(["-c", c]);
    }
    args.extend_from_slice(extra);
    run_q2z(&args)
}

/// Exports collections from the Qdrant stand-in into `stage` (asserts success).
pub fn stage_export(stage: &Path, prefix: &str, collections: &[&str], extra: &[&str]) {
    let mut args = vec!["--target-prefix", prefix, "--page-size", "64"];
    args.extend_from_slice(extra);
    let (code, out, err) = live_export(stage, collections, &args);
    assert_eq!(code, 0, "export: {out}{err}");
}

/// Arguments of `q2z import` against the stand-ins.
pub fn import_args(stage: &Path, mode: &str) -> Vec<String> {
    vec![
        "import".into(),
        "--stage".into(),
        stage.to_str().unwrap().into(),
        "--milvus-url".into(),
        standin("Q2Z_MILVUS_URL"),
        "--mode".into(),
        mode.into(),
        "--s3-endpoint".into(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
        "--sample".into(),
        "400".into(),
    ]
}

/// Runs `q2z import`.
pub fn import(stage: &Path, mode: &str, extra: &[&str]) -> (i32, String, String) {
    let mut a = import_args(stage, mode);
    a.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run_q2z(&refs)
}

/// Runs `q2z verify`.
pub fn verify(stage: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut a = vec!["verify", "--stage", stage.to_str().unwrap(), "--milvus-url"];
    let url = standin("Q2Z_MILVUS_URL");
    a.push(&url);
    a.extend_from_slice(extra);
    run_q2z(&a)
}

/// Runs `q2z sync --json` of one collection from the Qdrant stand-in into the Milvus stand-in:
/// (exit code, the JSON report, all output).
pub fn sync(stage: &std::path::Path, c: &str, extra: &[&str]) -> (i32, Value, String) {
    let args = sync_args(stage, c, extra);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--json");
    let (code, out, err) = run_q2z(&args);
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, v, format!("{out}{err}"))
}

/// The arguments of `q2z sync` of one collection between the stand-ins, then `extra`.
pub fn sync_args(stage: &std::path::Path, c: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sync",
        "--stage",
        stage.to_str().unwrap(),
        "--qdrant-url",
        &standin("Q2Z_QDRANT_URL"),
        "--milvus-url",
        &standin("Q2Z_MILVUS_URL"),
        "-c",
        c,
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// (inserted, updated, deleted) of a one-collection sync report.
pub fn counts(v: &Value) -> (u64, u64, u64) {
    let r = &v[0];
    (
        r["inserted"].as_u64().unwrap(),
        r["updated"].as_u64().unwrap(),
        r["deleted"].as_u64().unwrap(),
    )
}

/// The target equals the source now: a fresh export verified against it, every row.
pub fn assert_target_equals_source(c: &str) {
    let fresh = tempfile::tempdir().unwrap();
    stage_export(fresh.path(), "sync_", &[c], &[]);
    let (code, out, err) = verify(fresh.path(), &["--full"]);
    assert_eq!(code, 0, "the target differs from the source:\n{out}{err}");
}

/// Every row of a target collection, by id key (queried in id slices of 500).
pub fn target_rows(target: &str, ids: &[String]) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for part in ids.chunks(500) {
        let filter = format!("id in [{}]", part.join(","));
        // What the engine stores: the stand-in's REST output, like Milvus's, carries dynamic
        // values through float64 (integers beyond 2^53 rounded).
        let v = standin_rows(
            json!({"collectionName": target, "filter": filter, "outputFields": ["*"], "limit": part.len() * 2 + 1, "consistencyLevel": "Strong"}),
        );
        assert_eq!(v["code"], 0, "{v}");
        for row in v["data"].as_array().unwrap() {
            let id = match &row["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(id, row.clone());
        }
    }
    out
}

/// The target holds exactly the source's points, value for value, read back from both
/// servers (not from q2z's stage): the same ids, the unnamed 4-d vector, and each payload key
/// (null-valued keys may be absent: Milvus's upserts drop them). Returns a description of
/// the first differences, empty when equal.
pub fn target_vs_source(c: &str, target: &str) -> Vec<String> {
    let src = scroll_all(c);
    let total = target_count(target);
    let ids: Vec<String> = src.iter().map(|p| p["id"].to_string()).collect();
    let rows = target_rows(target, &ids);
    let mut diffs = Vec::new();
    if total != src.len() as u64 {
        diffs.push(format!(
            "target holds {total} rows, source {} points",
            src.len()
        ));
    }
    for p in &src {
        let id = p["id"].to_string();
        let Some(row) = rows.get(&id) else {
            diffs.push(format!("id {id}: missing in the target"));
            continue;
        };
        let v: Vec<f64> = p["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let t: Vec<f64> = row["vector"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
            .unwrap_or_default();
        if v.iter().map(|x| *x as f32).collect::<Vec<_>>()
            != t.iter().map(|x| *x as f32).collect::<Vec<_>>()
        {
            diffs.push(format!("id {id}: vector {v:?} vs {t:?}"));
        }
        // Keys that collide with a field name are escaped in the target (`id` → `id_`).
        let escaped = |k: &str| {
            if ["id", "vector", "$meta"].contains(&k.trim_end_matches('_')) {
                format!("{k}_")
            } else {
                k.to_string()
            }
        };
        let payload: serde_json::Map<String, Value> = p["payload"]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (escaped(&k), v))
            .collect();
        for (k, want) in &payload {
            let got = row.get(k).unwrap_or(&Value::Null);
            if !same_value(got, want) {
                diffs.push(format!(
                    "id {id}: payload {k} = {want} in the source, {got} in the target"
                ));
            }
        }
        for (k, got) in row.as_object().unwrap() {
            if k != "id" && k != "vector" && !payload.contains_key(k) && !got.is_null() {
                diffs.push(format!("id {id}: key {k} = {got} only in the target"));
            }
        }
    }
    diffs.truncate(10);
    diffs
}

/// JSON values equal as values: a number equal to a float by value is the same (Milvus's REST
/// insert stores a float64 as Go writes it: `5.0` as `5`); integers compare exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || ((x.is_f64() || y.is_f64()) && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        (a, b) => a == b,
    }
}

/// The arguments `verify` takes to repair through the S3 stand-in, then `extra`.
pub fn repair_args(extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--repair".to_string(),
        "--s3-endpoint".into(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}
