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
    // The proxy's checks of the files (task_import.go): ErrImportFailed (2100), except an
    // empty request (1100).
    for (files, code, why) in [
        (
            json!([["a.parquet", "b.parquet"]]),
            2100,
            "accepts only one file",
        ),
        (json!([["a.csv"]]), 2100, "unexpected file type"),
        (json!([[]]), 1100, "import request is empty"),
    ] {
        let v = call(
            "jobs/import/create",
            json!({"collectionName": "smoke_imp", "files": files}),
        );
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
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

/// Milvus's REST insert of dynamic values (httpserver/utils.go `checkAndSetData` over gjson): a
/// number whose text has no `.` through `cast.ToInt64` (`1e-6`, `1e21`, integers above
/// i64::MAX become 0), one with a `.` through `cast.ToFloat64`, objects and arrays through
/// float64, `null` dropped; the query output (`buildQueryResp`) reads `$meta` through float64.
/// A filter on the stored JSON compares exactly. The engine's rows are what the stand-in's test
/// endpoint returns.
#[test]
fn milvus_rest_layer_coerces_dynamic_numbers_as_go_does() {
    call("collections/drop", json!({"collectionName": "smoke_nums"}));
    let v = call(
        "collections/create",
        json!({
            "collectionName": "smoke_nums",
            "schema": {"autoID": false, "enableDynamicField": true, "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]},
            "indexParams": [{"fieldName": "v", "indexName": "v_idx", "metricType": "L2", "indexType": "FLAT", "params": {}}]
        }),
    );
    assert_eq!(v["code"], 0, "{v}");
    // Raw text: serde_json would write the numbers its own way.
    let body = r#"{"collectionName": "smoke_nums", "data": [{"id": 1, "v": [0.1, 0.2],
        "tiny": 1e-6, "huge": 1e21, "over": 9223372036854775813, "max": 18446744073709551615,
        "nested": {"x": [9007199254740993]}, "half": 2.5, "five": 5.0, "gone": null,
        "tiny_dot": 0.000001, "huge_dot": 1000000000000000000000.0, "i": -7},
        {"id": 2, "v": [0.3, 0.4], "big": 9007199254740993}]}"#;
    let url = standin("Q2Z_MILVUS_URL");
    let v: Value = reqwest::blocking::Client::new()
        .post(format!("{url}/v2/vectordb/entities/insert"))
        .bearer_auth(standin("Q2Z_MILVUS_TOKEN"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["data"]["insertCount"], 2, "{v}");
    let q = |filter: &str| json!({"collectionName": "smoke_nums", "filter": filter, "outputFields": ["*"], "limit": 5, "consistencyLevel": "Strong"});
    let stored = standin_rows(q("id == 1"))["data"][0].clone();
    for (k, want) in [
        ("tiny", json!(0)),
        ("huge", json!(0)),
        ("over", json!(0)),
        ("max", json!(0)),
        ("nested", json!({"x": [9_007_199_254_740_992u64]})),
        ("half", json!(2.5)),
        ("five", json!(5)),
        ("tiny_dot", json!(0.000001)),
        ("huge_dot", json!(1e21)),
        ("i", json!(-7)),
    ] {
        assert_eq!(stored[k], want, "{k}: {stored}");
    }
    assert!(stored.get("gone").is_none(), "{stored}");
    // Stored exactly at the top level, answered through float64, matched exactly by a filter.
    assert_eq!(
        standin_rows(q("id == 2"))["data"][0]["big"],
        9_007_199_254_740_993u64
    );
    let v = call("entities/query", q("id == 2"));
    assert_eq!(v["data"][0]["big"], 9_007_199_254_740_992u64, "{v}");
    for (filter, n) in [
        (r#"id in [2] and $meta["big"] == 9007199254740993"#, 1),
        (r#"id in [2] and $meta["big"] == 9007199254740992"#, 0),
    ] {
        let v = call(
            "entities/query",
            json!({"collectionName": "smoke_nums", "filter": filter, "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
        );
        assert_eq!(v["data"][0]["count(*)"], n, "{filter}: {v}");
    }
}

/// Every REST v2 call names its database (body `dbName`, else the `DB-Name` header, else
/// "default"); handler_v2.go `checkDatabase` answers code 800 for one that does not exist.
#[test]
fn milvus_calls_check_their_database() {
    let v = call(
        "collections/has",
        json!({"dbName": "nosuch", "collectionName": "x"}),
    );
    assert_eq!(v["code"], 800, "{v}");
    assert_eq!(v["message"], "database not found, database: nosuch");
    let url = standin("Q2Z_MILVUS_URL");
    let v: Value = reqwest::blocking::Client::new()
        .post(format!("{url}/v2/vectordb/collections/has"))
        .bearer_auth(standin("Q2Z_MILVUS_TOKEN"))
        .header("DB-Name", "nosuch_either")
        .json(&json!({"collectionName": "x"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["code"], 800, "the header names it too: {v}");
    let db = format!("db{}", rand::random::<u32>());
    let v = call("databases/create", json!({"dbName": db}));
    assert_eq!(v["code"], 0, "{v}");
    let v = call("databases/list", json!({}));
    assert!(v["data"].as_array().unwrap().contains(&json!(db)), "{v}");
    let v = call(
        "collections/has",
        json!({"dbName": db, "collectionName": "x"}),
    );
    assert_eq!(v, json!({"code": 0, "data": {"has": false}}));
    // Each database is a namespace of its own: the same name in two databases is two
    // collections, and a list shows a database's own names.
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), &format!("{db}_"), &["fx_named"], &[]);
    let name = format!("{db}_fx_named");
    let (code, out, err) = import(stage.path(), "bulk", &["--db", &db]);
    assert_eq!(code, 0, "{out}{err}");
    let count = |d: &str| {
        call(
            "entities/query",
            json!({"dbName": d, "collectionName": name, "outputFields": ["count(*)"], "filter": ""}),
        )
    };
    assert_eq!(
        count(&db)["data"][0]["count(*)"],
        json!(scroll_all("fx_named").len())
    );
    let v = call("collections/has", json!({"collectionName": name}));
    assert_eq!(v["data"]["has"], false, "not in default: {v}");
    let v = call("collections/list", json!({"dbName": db}));
    assert_eq!(v["data"], json!([name]), "{v}");
    let v = call("collections/list", json!({}));
    assert!(!v["data"].as_array().unwrap().contains(&json!(name)), "{v}");
    let d = call(
        "collections/describe",
        json!({"dbName": db, "collectionName": name}),
    );
    assert_eq!(d["data"]["collectionName"], json!(name), "{d}");
}
