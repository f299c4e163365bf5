//! Smoke tests of the Milvus REST v2 and S3 stand-ins: answers in the documented shapes
//! (reference §1: HTTP 200 + non-zero `code` on errors, 401 + code 1800 without auth,
//! `count(*)` rows, import job states, column rules), and SigV4 checked by the S3 stand-in.

mod common;

use common::*;
use serde_json::{Value, json};

fn post(path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let url = standin("Q2Z_MILVUS_URL");
    let mut rb = reqwest::blocking::Client::new()
        .post(format!("{url}{path}"))
        .json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn call(path: &str, body: Value) -> Value {
    let (s, v) = post(
        &format!("/v2/vectordb/{path}"),
        body,
        Some(&standin("Q2Z_MILVUS_TOKEN")),
    );
    assert_eq!(s, 200, "{path}: {v}");
    v
}

#[test]
fn milvus_envelope_errors_and_auth() {
    let (s, v) = post(
        "/v2/vectordb/collections/has",
        json!({"collectionName": "x"}),
        None,
    );
    assert_eq!((s, v["code"].as_i64()), (401, Some(1800)), "{v}");
    let v = call(
        "collections/describe",
        json!({"collectionName": "no_such_collection"}),
    );
    assert_eq!(v["code"], 100, "{v}");
    let v = call("collections/has", json!({}));
    assert_eq!(v["code"], 1802, "{v}");
    let v = call(
        "collections/create",
        json!({"collectionName": "1bad", "schema": {"fields": [{"fieldName": "id", "dataType": "Int64", "isPrimary": true}]}}),
    );
    assert_eq!(v["code"], 1100, "{v}");
    let (s, _) = post(
        "/v2/vectordb/no/such/route",
        json!({}),
        Some(&standin("Q2Z_MILVUS_TOKEN")),
    );
    assert_eq!(s, 404);
}

#[test]
fn milvus_limits_are_enforced() {
    let fields = |n: usize, dim: usize| {
        let mut f = vec![json!({"fieldName": "id", "dataType": "Int64", "isPrimary": true})];
        for i in 0..n {
            f.push(json!({"fieldName": format!("v{i}"), "dataType": "FloatVector", "elementTypeParams": {"dim": dim}}));
        }
        f
    };
    let v = call(
        "collections/create",
        json!({"collectionName": "smoke_lim5", "schema": {"fields": fields(5, 4)}}),
    );
    assert_eq!(v["code"], 1100, "5 vector fields: {v}");
    let v = call(
        "collections/create",
        json!({"collectionName": "smoke_lim1", "schema": {"fields": fields(1, 1)}}),
    );
    assert_eq!(v["code"], 1100, "dim 1: {v}");
    let v = call(
        "collections/create",
        json!({"collectionName": "smoke_lim_vc", "schema": {"fields": [{"fieldName": "id", "dataType": "VarChar", "isPrimary": true, "elementTypeParams": {"max_length": 70000}}, {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]}}),
    );
    assert_eq!(v["code"], 1100, "max_length: {v}");
}

#[test]
fn milvus_rows_count_and_query_shapes() {
    call("collections/drop", json!({"collectionName": "smoke_rows"}));
    let v = call(
        "collections/create",
        json!({
            "collectionName": "smoke_rows",
            "schema": {"autoID": false, "enableDynamicField": true, "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]},
            "indexParams": [{"fieldName": "v", "indexName": "v_idx", "metricType": "L2", "indexType": "HNSW", "params": {"M": 8, "efConstruction": 64}}]
        }),
    );
    assert_eq!(v, json!({"code": 0, "data": {}}));
    let v = call(
        "collections/create",
        json!({"collectionName": "smoke_rows", "schema": {"fields": [{"fieldName": "id", "dataType": "Int64", "isPrimary": true}, {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]}}),
    );
    assert_ne!(v["code"], 0, "duplicate name: {v}");
    let v = call(
        "entities/insert",
        json!({"collectionName": "smoke_rows", "data": [{"id": 1, "v": [0.1, 0.2], "t": "a", "n": null}, {"id": 2, "v": [0.3, 0.4]}]}),
    );
    assert_eq!(v["data"]["insertCount"], 2, "{v}");
    let big = "x".repeat(70_000);
    let v = call(
        "entities/insert",
        json!({"collectionName": "smoke_rows", "data": [{"id": 3, "v": [0.1, 0.2], "big": big}]}),
    );
    assert_eq!(v["code"], 1100, "JSON over 64 KiB on insert: {v}");
    let v = call(
        "entities/query",
        json!({"collectionName": "smoke_rows", "filter": "", "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
    );
    assert_eq!(v["data"], json!([{"count(*)": 2}]));
    let v = call(
        "entities/query",
        json!({"collectionName": "smoke_rows", "filter": "id == 1", "outputFields": ["*"], "limit": 5}),
    );
    assert_eq!(
        v["data"],
        json!([{"id": 1, "v": [0.1, 0.2], "t": "a"}]),
        "a null dynamic value is dropped on insert"
    );
    let v = call(
        "collections/get_load_state",
        json!({"collectionName": "smoke_rows"}),
    );
    assert_eq!(v["data"]["loadState"], "LoadStateLoaded");
}

#[test]
fn milvus_import_job_states_and_column_rules() {
    call("collections/drop", json!({"collectionName": "smoke_imp"}));
    call(
        "collections/create",
        json!({
            "collectionName": "smoke_imp",
            "schema": {"autoID": false, "enableDynamicField": true, "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]},
            "indexParams": [{"fieldName": "v", "metricType": "L2", "indexType": "AUTOINDEX"}]
        }),
    );
    let v = call(
        "jobs/import/create",
        json!({"collectionName": "smoke_imp", "files": [["missing/file.parquet"]]}),
    );
    assert_eq!(v["code"], 0, "{v}");
    let job = v["data"]["jobId"].as_str().unwrap().to_string();
    let mut state = String::new();
    for _ in 0..100 {
        let d = call("jobs/import/describe", json!({"jobId": job}));
        state = d["data"]["state"].as_str().unwrap().to_string();
        assert!(
            ["Pending", "Importing", "Completed", "Failed"].contains(&state.as_str()),
            "{d}"
        );
        if state == "Failed" {
            assert!(
                d["data"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("importing data failed"),
                "{d}"
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state, "Failed");
    let l = call("jobs/import/list", json!({"collectionName": "smoke_imp"}));
    assert!(
        l["data"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["jobId"] == job.as_str())
    );
    let v = call("jobs/import/describe", json!({"jobId": "does-not-exist"}));
    assert_eq!(v["code"], 2100);
}

#[test]
fn s3_standin_checks_signatures() {
    use object_store::ObjectStoreExt;
    let good = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(standin("Q2Z_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_bucket_name(standin("Q2Z_S3_BUCKET"))
        .with_region("us-east-1")
        .with_access_key_id(standin("Q2Z_S3_ACCESS_KEY"))
        .with_secret_access_key(standin("Q2Z_S3_SECRET_KEY"))
        .build()
        .unwrap();
    let bad = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(standin("Q2Z_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_bucket_name(standin("Q2Z_S3_BUCKET"))
        .with_region("us-east-1")
        .with_access_key_id(standin("Q2Z_S3_ACCESS_KEY"))
        .with_secret_access_key("wrong-secret")
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = object_store::path::Path::from("smoke/hello.txt");
    rt.block_on(good.put(&path, "hi".into())).unwrap();
    let got = rt.block_on(async { good.get(&path).await.unwrap().bytes().await.unwrap() });
    assert_eq!(&got[..], b"hi");
    let on_disk = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(standin("Q2Z_S3_BUCKET"))
        .join("smoke/hello.txt");
    assert_eq!(std::fs::read(on_disk).unwrap(), b"hi");
    let Err(err) = rt.block_on(bad.get(&path)) else {
        panic!("a wrong secret must be refused")
    };
    assert!(
        err.to_string().contains("403") || err.to_string().to_lowercase().contains("signature"),
        "{err}"
    );
}
