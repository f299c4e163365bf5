//! Helpers shared by the integration tests: fixture paths, and an independent Qdrant-point →
//! expected-Milvus-row conversion used to check staged data value by value.
#![allow(dead_code)]

use q2z::stage::manifest::Manifest;
use q2z::stage::reader::{Row, for_each_batch};
use q2z::transform::mapping::{CollectionMapping, IdKind, NullPolicy, VectorKind};
use q2z::transform::scalars::{ScalarFrom, ScalarKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod fake_http;
pub mod target;
#[allow(unused_imports)]
pub use target::*;

/// `fixtures/qdrant-1.19` (a verbatim copy of the real Qdrant 1.19 answers and snapshots from
/// `../shared/`), overridable with Q2Z_FIXTURES.
pub fn fixtures() -> PathBuf {
    if let Ok(p) = std::env::var("Q2Z_FIXTURES") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/qdrant-1.19");
    assert!(
        p.is_dir(),
        "real-server fixtures not found at {} (set Q2Z_FIXTURES)",
        p.display()
    );
    p
}

/// Every point of a fixture collection (the server's scroll order).
pub fn fixture_points(collection: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(fixtures().join(format!("{collection}.points.jsonl"))).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// All staged rows of a collection, keyed by the id's text, with the mapping.
pub fn staged_rows(
    stage: &Path,
    collection: &str,
) -> (BTreeMap<String, Row>, CollectionMapping, u64) {
    let m = Manifest::load(stage).unwrap().expect("manifest");
    let e = &m.collections[collection];
    let mut rows = BTreeMap::new();
    let mut total = 0u64;
    for c in &e.chunks {
        for_each_batch(&stage.join(&c.file), &e.mapping, 1000, |batch| {
            for r in batch {
                total += 1;
                let key = match &r[&e.mapping.id_field] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                assert!(
                    rows.insert(key.clone(), r).is_none(),
                    "id {key} staged twice"
                );
            }
            Ok(())
        })
        .unwrap();
    }
    (rows, e.mapping.clone(), total)
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Escapes payload keys as documented in the README (independent of the library's code).
fn escaped(key: &str, statics: &[String]) -> String {
    let base = key.trim_end_matches('_');
    if statics.iter().any(|s| s == base) || base == "$meta" {
        format!("{key}_")
    } else {
        key.to_string()
    }
}

/// Asserts that the staged rows equal the Qdrant points, value by value: ids, float32 vectors
/// exact, float16 exact after f16 rounding, sparse equal, `$meta` JSON-equal (nulls kept).
pub fn assert_rows_match(points: &[Value], rows: &BTreeMap<String, Row>, m: &CollectionMapping) {
    assert_eq!(rows.len(), points.len(), "staged row count");
    let mut statics = vec![m.id_field.clone()];
    statics.extend(m.vectors.iter().map(|v| v.field.clone()));
    statics.extend(m.scalars.iter().map(|f| f.field.clone()));
    for p in points {
        let key = match &p["id"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let row = rows
            .get(&key)
            .unwrap_or_else(|| panic!("point {key} not staged"));
        match m.id_kind {
            IdKind::Int64 => assert_eq!(
                row[&m.id_field].as_i64().map(|x| x.to_string()),
                Some(key.clone())
            ),
            IdKind::VarChar => assert_eq!(row[&m.id_field].as_str(), Some(key.as_str())),
        }
        for v in &m.vectors {
            let src = if v.source.is_empty() {
                Some(&p["vector"])
            } else {
                p["vector"].get(&v.source)
            };
            let got = &row[&v.field];
            match (v.kind, src) {
                (VectorKind::FloatVector, Some(s)) => {
                    assert_eq!(f32s(got), f32s(s), "point {key} vector {}", v.source)
                }
                (VectorKind::EmbeddingList, Some(s)) => {
                    let staged: Vec<Vec<f32>> = got
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| f32s(&e["v"]))
                        .collect();
                    let source: Vec<Vec<f32>> = s.as_array().unwrap().iter().map(f32s).collect();
                    assert_eq!(staged, source, "point {key} multivector {}", v.source)
                }
                (VectorKind::Float16Vector, Some(s)) => {
                    let want: Vec<f32> = f32s(s)
                        .iter()
                        .map(|x| half::f16::from_f32(*x).to_f32())
                        .collect();
                    assert_eq!(f32s(got), want, "point {key} float16 vector {}", v.source);
                    assert_eq!(
                        f32s(got),
                        f32s(s),
                        "float16 values from Qdrant are exact halves"
                    );
                }
                (VectorKind::SparseFloatVector, Some(s)) => {
                    let gi: Vec<u64> = got["indices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap())
                        .collect();
                    let si: Vec<u64> = s["indices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap())
                        .collect();
                    assert_eq!(gi, si, "point {key} sparse indices");
                    assert_eq!(
                        f32s(&got["values"]),
                        f32s(&s["values"]),
                        "point {key} sparse values"
                    );
                }
                (VectorKind::SparseFloatVector, None) => {
                    assert_eq!(got, &serde_json::json!({}), "missing sparse is empty")
                }
                (_, None) => assert!(
                    f32s(got).iter().all(|x| *x == 0.0),
                    "missing dense is zeros"
                ),
            }
        }
        let payload = p["payload"].as_object().cloned().unwrap_or_default();
        for f in &m.scalars {
            let want = match f.from {
                ScalarFrom::Payload => payload.get(&f.key).cloned().unwrap_or(Value::Null),
                // A shard key staged in a VarChar field is text, whatever its JSON type.
                ScalarFrom::ShardKey => match &p["shard_key"] {
                    Value::Number(n) if f.kind == ScalarKind::VarChar => n.to_string().into(),
                    k => k.clone(),
                },
            };
            let got = &row[&f.field];
            match (want.as_f64(), got.as_f64()) {
                (Some(a), Some(b)) => assert_eq!(a, b, "point {key} field {}", f.field),
                _ => assert_eq!(got, &want, "point {key} field {}", f.field),
            }
        }
        let drop_nulls = m.null_values == NullPolicy::Drop;
        let want: Map<String, Value> = payload
            .iter()
            .filter(|(k, v)| {
                let promoted = m
                    .scalars
                    .iter()
                    .any(|f| f.from == ScalarFrom::Payload && &f.key == *k);
                let dropped = drop_nulls && v.is_null();
                !promoted && !dropped
            })
            .map(|(k, v)| (escaped(k, &statics), v.clone()))
            .collect();
        assert_eq!(row["$meta"], Value::Object(want), "point {key} $meta");
    }
}

/// A stand-in setting from the environment that `scripts/standins.sh start` writes.
/// Missing means the stand-ins are not running: fail loudly, never skip.
pub fn standin(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the stand-ins first (scripts/standins.sh start && . .cache/run/env), or run scripts/test.sh")
    })
}

/// The q2z binary built for this test run.
pub fn q2z_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_q2z"))
}

/// A q2z command with args and the stand-in credentials in its environment.
pub fn q2z_command(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(q2z_bin());
    c.args(args)
        .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
        .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
        .env("AWS_ACCESS_KEY_ID", standin("Q2Z_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", standin("Q2Z_S3_SECRET_KEY"))
        // The endpoint of an s3:// stage (read for those only).
        .env("AWS_ENDPOINT_URL", standin("Q2Z_S3_ENDPOINT"))
        .env(
            "Q2Z_LOG",
            std::env::var("Q2Z_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    c
}

/// Runs q2z with args and the stand-in credentials in its environment; returns (code, stdout, stderr).
pub fn run_q2z(args: &[&str]) -> (i32, String, String) {
    let out = q2z_command(args).output().expect("run q2z");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every point of a collection as the Qdrant stand-in serves it (scrolled over REST).
pub fn scroll_all(collection: &str) -> Vec<Value> {
    let url = standin("Q2Z_QDRANT_URL");
    let key = standin("Q2Z_QDRANT_API_KEY");
    let client = reqwest::blocking::Client::new();
    let mut out = Vec::new();
    let mut offset = Value::Null;
    loop {
        let mut body = serde_json::json!({"limit": 100, "with_payload": true, "with_vector": true});
        if !offset.is_null() {
            body["offset"] = offset.clone();
        }
        let r: Value = client
            .post(format!("{url}/collections/{collection}/points/scroll"))
            .header("api-key", &key)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        out.extend(r["result"]["points"].as_array().unwrap().iter().cloned());
        offset = r["result"]["next_page_offset"].clone();
        if offset.is_null() {
            return out;
        }
    }
}

/// Switches faults on in the stand-in whose URL is in `url_var`.
fn post_faults(url_var: &str, f: Value) -> Value {
    let url = standin(url_var);
    reqwest::blocking::Client::new()
        .post(format!("{url}/__standin/faults"))
        .json(&f)
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap_or(Value::Null)
}

/// Calls the Qdrant stand-in's REST API (asserts success) and returns the answer.
pub fn qdrant(method: reqwest::Method, path: &str, body: Value) -> Value {
    let url = standin("Q2Z_QDRANT_URL");
    let r = reqwest::blocking::Client::new()
        .request(method, format!("{url}{path}"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .json(&body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().unwrap()
}

/// Creates a collection in the Qdrant stand-in over REST (`PUT /collections/{c}`).
pub fn create_collection(c: &str, config: Value) {
    qdrant(reqwest::Method::PUT, &format!("/collections/{c}"), config);
}

/// Upserts points into a Qdrant stand-in collection and waits for them.
pub fn upsert(c: &str, points: Vec<Value>) {
    qdrant(
        reqwest::Method::PUT,
        &format!("/collections/{c}/points?wait=true"),
        serde_json::json!({"points": points}),
    );
}

/// Switches faults on in the Qdrant stand-in.
pub fn qdrant_faults(f: Value) {
    post_faults("Q2Z_QDRANT_URL", f);
}

/// Switches faults on in the Milvus stand-in; answers the faults now set (`data`).
pub fn milvus_faults(f: Value) -> Value {
    post_faults("Q2Z_MILVUS_URL", f)
}

/// Every file under `dir`, at any depth (none if it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
