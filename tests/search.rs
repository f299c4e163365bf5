//! Search parity (`verify --search N`): the same top-k searches in the Qdrant stand-in (live, or
//! the snapshot offline, both through qdrant-edge) and in the Milvus stand-in (Milvus Lite) agree
//! on every fixture and metric (exact search in the source), and a target whose vectors were
//! changed is caught with exit code 3.

mod common;

use common::*;
use serde_json::{Value, json};

fn verify_json(stage: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = verify(stage, &args);
    let v = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, v, format!("{out}{err}"))
}

/// The parity of a field, unfiltered or filtered (`filtered_on` names the key).
fn parity_in<'a>(v: &'a Value, collection: &str, field: &str, filtered: bool) -> &'a Value {
    v["search"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["collection"] == collection
                && p["field"] == field
                && p["filtered_on"].is_string() == filtered
        })
        .unwrap_or_else(|| panic!("no parity for {collection}.{field} (filtered: {filtered}): {v}"))
}

fn parity_of<'a>(v: &'a Value, collection: &str, field: &str) -> &'a Value {
    parity_in(v, collection, field, false)
}

#[test]
fn every_metric_agrees_live_and_offline_and_a_changed_target_is_caught() {
    let stage = tempfile::tempdir().unwrap();
    let colls = ["gen_ints", "gen_mixed_ids", "gen_named", "gen_tenants"];
    // tenant: a promoted field in gen_tenants (all null, so never filtered on, elsewhere).
    stage_export(
        stage.path(),
        "sp_",
        &colls,
        &["--promote", "tenant:VarChar"],
    );
    for c in colls {
        milvus_post(
            "collections/drop",
            json!({"collectionName": format!("sp_{c}")}),
        );
    }
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let url = standin("Q2Z_QDRANT_URL");
    let live = [
        "--search",
        "30",
        "--seed",
        "7",
        "--min-overlap",
        "1.0",
        "--qdrant-url",
        &url,
    ];
    let (code, v, text) = verify_json(stage.path(), &live);
    assert_eq!(code, 0, "{text}");
    // Cosine, Euclid (L2, compared as distances: Milvus answers its square) and Dot (IP).
    for (c, f, metric) in [
        ("gen_ints", "vector", "COSINE"),
        ("gen_mixed_ids", "vector", "L2"),
        ("gen_named", "f32", "IP"),
        ("gen_named", "u8", "L2"),
    ] {
        let p = parity_of(&v, c, f);
        assert_eq!(p["metric"], metric, "{p}");
        assert_eq!(p["queries"], 30, "{p}");
        assert_eq!(p["mean_overlap"], 1.0, "{p}");
        assert_eq!(p["min_overlap"], 1.0, "{p}");
        assert_eq!(p["mean_rank_correlation"], 1.0, "{p}");
        assert!(p["max_score_difference"].as_f64().unwrap() < 1e-4, "{p}");
        // Filtered on a payload key left in $meta, with each query point's own value
        // (Qdrant filter JSON on one side, `$meta["key"] == value` on the other).
        let p = parity_in(&v, c, f, true);
        assert_eq!(p["filtered_on"], "flag", "{p}");
        assert!(p["queries"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["mean_overlap"], 1.0, "{p}");
    }
    // Filtered on a promoted field: `tenant == value` in Milvus, a match on the key in Qdrant.
    let p = parity_in(&v, "gen_tenants", "vector", true);
    assert_eq!(p["filtered_on"], "tenant", "{p}");
    assert_eq!(p["mean_overlap"], 1.0, "{p}");
    // Offline: the snapshot searched through qdrant-edge gives the same answer.
    let fixtures_dir = std::path::PathBuf::from(standin("Q2Z_GEN_FIXTURES"));
    let snaps: Vec<String> = colls
        .iter()
        .map(|c| {
            fixtures_dir
                .join(format!("{c}.collection.snapshot"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut offline = vec!["--search", "30", "--seed", "7", "--snapshot"];
    offline.extend(snaps.iter().map(String::as_str));
    let (code, v2, text) = verify_json(stage.path(), &offline);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v2["search"].as_array().unwrap().len(), 10, "{v2}");
    assert_eq!(parity_in(&v2, "gen_named", "u8", true)["mean_overlap"], 1.0);
    assert_eq!(parity_of(&v2, "gen_ints", "vector")["mean_overlap"], 1.0);
    // Change the vectors of 60 points in the target: the searches no longer agree.
    let (rows, _, _) = staged_rows(stage.path(), "gen_ints");
    let changed: Vec<Value> = rows
        .values()
        .take(60)
        .map(|r| {
            let neg: Vec<f64> = r["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| -x.as_f64().unwrap())
                .collect();
            json!({"id": r["id"], "vector": neg})
        })
        .collect();
    let up = milvus_post(
        "entities/upsert",
        json!({"collectionName": "sp_gen_ints", "data": changed}),
    );
    assert_eq!(up["code"], 0, "{up}");
    let (code, v3, text) = verify_json(stage.path(), &live);
    assert_eq!(code, 3, "{text}");
    let p = parity_of(&v3, "gen_ints", "vector");
    assert!(p["mean_overlap"].as_f64().unwrap() < 1.0, "{p}");
    assert_eq!(p["ok"], false);
    assert!(!p["weakest"].as_array().unwrap().is_empty(), "{p}");
    // The same seed picks the same queries: the untouched collections still agree exactly.
    assert_eq!(parity_of(&v3, "gen_named", "f32")["mean_overlap"], 1.0);
}

#[test]
fn search_without_a_source_says_which_flag_to_give() {
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sp2_", &["gen_tenants"], &[]);
    let (code, _, err) = verify(stage.path(), &["--search", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--qdrant-url") && err.contains("--snapshot"),
        "{err}"
    );
}
