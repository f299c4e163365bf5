//! Values Milvus's REST layer would change (utils.go `checkAndSetData`: a dynamic-field integer
//! above i64::MAX read by `cast.ToInt64` becomes 0; integers beyond 2^53 inside objects and
//! arrays pass through float64) never go over REST: `import --mode upsert` stops naming the
//! point and the fix, `sync` sends such rows through bulk import when it has the bucket and
//! stops with the fix when it has not; floats always carry a `.` so the layer reads them as
//! floats (`1e21`, `1e-6`). Collections are created with consistency level Strong.

mod common;

use common::*;
use serde_json::{Value, json};

fn point(id: u64, payload: Value) -> Value {
    json!({"id": id, "vector": [0.1, 0.2, 0.3, id as f32], "payload": payload})
}

#[test]
fn rows_rest_would_change_go_through_bulk_or_stop_with_the_fix() {
    let c = format!("restval{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let mut pts: Vec<Value> = (1..=20)
        .map(|i| point(i, json!({"n": i, "f": 1e21, "g": 1e-6})))
        .collect();
    pts[2] = point(3, json!({"u": u64::MAX}));
    pts[3] = point(4, json!({"nested": {"x": [9_007_199_254_740_993u64]}}));
    upsert(&c, pts);
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "rv_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("point 3") && err.contains("--mode bulk"),
        "{err}"
    );
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("rv_{c}");
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "{d:#?}");
    // Created Strong: servers that ignore a query's level use the collection's.
    let v = milvus_post("collections/describe", json!({"collectionName": target}));
    assert_eq!(v["data"]["consistencyLevel"], "Strong", "{v}");
    // A changed row holding such a value: without the bucket sync stops, with it the row goes
    // through bulk import.
    upsert(
        &c,
        vec![
            point(3, json!({"u": u64::MAX - 1})),
            point(5, json!({"n": 5, "f": 2.5e-7})),
        ],
    );
    // (The stand-ins' environment names the bucket in Q2Z_S3_BUCKET: taken away here.)
    let args = sync_args(stage.path(), &c, &[]);
    let out = q2z_command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .env_remove("Q2Z_S3_BUCKET")
        .env_remove("Q2Z_S3_ENDPOINT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("point 3") && text.contains("--s3-bucket"),
        "{text}"
    );
    let bucket = [
        "--s3-endpoint".to_string(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
    ];
    let bucket: Vec<&str> = bucket.iter().map(String::as_str).collect();
    let (code, v, text) = sync(stage.path(), &c, &bucket);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        v[0]["bulk_rows"], 2,
        "the range went through bulk import: {v}"
    );
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "{d:#?}");
    // The REST query output rounds the integers beyond 2^53 (through float64): verify checks
    // them exactly with a filter the server evaluates, and says how many; u64::MAX - 1 (above
    // i64::MAX, no filter literal holds it) is compared to float64 precision, and said so.
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains("1 payload integers beyond 2^53")
            && text.contains("checked exactly by a server-side filter"),
        "{text}"
    );
    assert!(
        text.contains(
            "1 payload integers above the largest Int64 were compared to float64 precision only"
        ),
        "{text}"
    );
}
