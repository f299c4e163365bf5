//! Smoke tests of the Qdrant stand-in: its answers must have the shape a real Qdrant 1.19
//! server gave for the same data (golden JSON in fixtures/qdrant-1.19).

mod common;

use common::*;
use serde_json::{Value, json};

fn get(path: &str, key: Option<&str>) -> (u16, Value) {
    let url = standin("Q2Z_QDRANT_URL");
    let mut rb = reqwest::blocking::Client::new().get(format!("{url}{path}"));
    if let Some(k) = key {
        rb = rb.header("api-key", k);
    }
    let r = rb.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn post(path: &str, body: Value) -> (u16, Value) {
    let url = standin("Q2Z_QDRANT_URL");
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}{path}"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .json(&body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn golden(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(file)).unwrap()).unwrap()
}

/// Envelope keys and types as a real Qdrant writes them.
fn assert_envelope(v: &Value) {
    assert_eq!(v["status"], "ok", "{v}");
    assert!(v["time"].is_f64(), "time is a float: {v}");
    assert!(v.get("result").is_some());
}

#[test]
fn lists_collections_like_qdrant() {
    let (s, v) = get("/collections", Some(&standin("Q2Z_QDRANT_API_KEY")));
    assert_eq!(s, 200);
    assert_envelope(&v);
    let names: Vec<&str> = v["result"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in golden("collections_list.json")["result"]["collections"]
        .as_array()
        .unwrap()
    {
        assert!(names.contains(&c["name"].as_str().unwrap()), "{names:?}");
    }
    assert!(names.contains(&"gen_named"));
}

#[test]
fn collection_info_matches_real_server() {
    for c in ["fx_named", "fx_uuid_mixed", "fx_empty"] {
        let (s, v) = get(
            &format!("/collections/{c}"),
            Some(&standin("Q2Z_QDRANT_API_KEY")),
        );
        assert_eq!(s, 200);
        assert_envelope(&v);
        let want = golden(&format!("{c}.collection_info.json"));
        assert_eq!(
            v["result"]["config"], want["result"]["config"],
            "{c}: config"
        );
        assert_eq!(
            v["result"]["points_count"], want["result"]["points_count"],
            "{c}: points_count"
        );
        assert_eq!(
            v["result"]["payload_schema"], want["result"]["payload_schema"],
            "{c}: payload_schema"
        );
        let mut got_keys: Vec<&String> = v["result"].as_object().unwrap().keys().collect();
        let mut want_keys: Vec<&String> = want["result"].as_object().unwrap().keys().collect();
        got_keys.sort();
        want_keys.sort();
        assert_eq!(got_keys, want_keys, "{c}: result keys");
    }
}

#[test]
fn scroll_pages_match_real_server() {
    for c in ["fx_named", "fx_uuid_mixed", "fx_empty"] {
        for page in ["scroll_page0", "scroll_page1"] {
            let path = fixtures().join(format!("{c}.{page}.json"));
            if !path.exists() {
                continue;
            }
            let g = golden(&format!("{c}.{page}.json"));
            let (s, v) = post(
                &format!("/collections/{c}/points/scroll"),
                g["request"].clone(),
            );
            assert_eq!(s, 200);
            assert_envelope(&v);
            assert_eq!(v["result"], g["response"]["result"], "{c} {page}");
        }
    }
}

#[test]
fn count_matches_real_server() {
    for c in ["fx_named", "fx_uuid_mixed", "fx_empty"] {
        let (_, v) = post(
            &format!("/collections/{c}/points/count"),
            json!({"exact": true}),
        );
        assert_eq!(
            v["result"],
            golden(&format!("{c}.count_exact.json"))["result"]
        );
    }
}

#[test]
fn wrong_or_missing_key_is_401_and_unknown_collection_404() {
    assert_eq!(get("/collections", None).0, 401);
    assert_eq!(get("/collections", Some("wrong")).0, 401);
    let (s, v) = get("/collections/nope", Some(&standin("Q2Z_QDRANT_API_KEY")));
    assert_eq!(s, 404);
    assert!(
        v["status"]["error"]
            .as_str()
            .unwrap()
            .contains("doesn't exist"),
        "{v}"
    );
}

#[test]
fn snapshot_create_list_download_with_checksum() {
    let (s, v) = post("/collections/fx_uuid_mixed/snapshots", json!({}));
    assert_eq!(s, 200, "{v}");
    let want = golden("fx_uuid_mixed.snapshot_create.json");
    let mut got_keys: Vec<_> = v["result"].as_object().unwrap().keys().cloned().collect();
    let mut want_keys: Vec<_> = want["result"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    got_keys.sort();
    want_keys.sort();
    assert_eq!(got_keys, want_keys);
    let name = v["result"]["name"].as_str().unwrap().to_string();
    let (_, list) = get(
        "/collections/fx_uuid_mixed/snapshots",
        Some(&standin("Q2Z_QDRANT_API_KEY")),
    );
    assert!(
        list["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name.as_str())
    );
    let url = standin("Q2Z_QDRANT_URL");
    let bytes = reqwest::blocking::Client::new()
        .get(format!("{url}/collections/fx_uuid_mixed/snapshots/{name}"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        v["result"]["checksum"].as_str().unwrap()
    );
    assert_eq!(bytes.len() as u64, v["result"]["size"].as_u64().unwrap());
}
