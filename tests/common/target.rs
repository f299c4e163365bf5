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
