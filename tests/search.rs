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
        "12",
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
        assert_eq!(p["queries"], 12, "{p}");
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
    let mut offline = vec!["--search", "12", "--seed", "7", "--snapshot"];
    offline.extend(snaps.iter().map(String::as_str));
    let (code, v2, text) = verify_json(stage.path(), &offline);
    assert_eq!(code, 0, "{text}");
    // 10 dense passes as live, plus gen_named's f16 and sp (each unfiltered and filtered).
    assert_eq!(v2["search"].as_array().unwrap().len(), 14, "{v2}");
    // Qdrant weights gen_named's sparse vector by IDF; Milvus cannot: reported, not failed.
    let sp = parity_of(&v2, "gen_named", "sp");
    assert!(sp["note"].as_str().unwrap().contains("idf"), "{sp}");
    assert_eq!(sp["ok"], true, "{sp}");
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

/// Float16 and sparse vectors (no IDF) are searched on both sides too: a float16 query goes
/// to Milvus as a float array, a sparse one as `{"indices", "values"}`; a multivector field is
/// reported as not comparable.
#[test]
fn float16_and_sparse_fields_agree_and_multivectors_are_named() {
    let c = format!("spf16{}", rand::random::<u32>());
    let url = standin("Q2Z_QDRANT_URL");
    create_collection(
        &c,
        json!({"vectors": {"half": {"size": 8, "distance": "Cosine", "datatype": "float16"}},
               "sparse_vectors": {"kw": {}}}),
    );
    let mut seed = 11u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % 10_000) as f32 / 10_000.0
    };
    let points: Vec<Value> = (1..=120u64)
        .map(|i| {
            let half: Vec<f32> = (0..8).map(|_| next() - 0.5).collect();
            // 8 of 24 dimensions: most pairs share some, so scores rarely tie.
            let mut keyed: Vec<(u32, u32)> = (0..24).map(|d| ((next() * 1e6) as u32, d)).collect();
            keyed.sort_unstable();
            let mut idx: Vec<u32> = keyed.into_iter().take(8).map(|k| k.1).collect();
            idx.sort_unstable();
            let vals: Vec<f32> = idx.iter().map(|_| next() + 0.01).collect();
            json!({"id": i, "vector": {"half": half, "kw": {"indices": idx, "values": vals}},
                   "payload": {"i": i}})
        })
        .collect();
    upsert(&c, points);
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sp3_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, text) = verify_json(
        stage.path(),
        &["--search", "25", "--seed", "3", "--qdrant-url", &url],
    );
    assert_eq!(code, 0, "{text}");
    let kw = parity_of(&v, &c, "kw");
    assert_eq!(kw["metric"], "IP", "{kw}");
    assert_eq!(kw["queries"], 25, "{kw}");
    assert_eq!(kw["mean_overlap"], 1.0, "{kw}");
    assert_eq!(kw["mean_rank_correlation"], 1.0, "{kw}");
    assert!(kw["max_score_difference"].as_f64().unwrap() < 1e-4, "{kw}");
    assert!(kw["note"].is_null(), "{kw}");
    let half = parity_of(&v, &c, "half");
    assert_eq!(half["queries"], 25, "{half}");
    assert!(half["mean_overlap"].as_f64().unwrap() >= 0.98, "{half}");
    assert!(
        half["max_score_difference"].as_f64().unwrap() < 1e-2,
        "{half}"
    );
    // A multivector collection: its plain field is compared, the multivector one named.
    let stage = tempfile::tempdir().unwrap();
    stage_export(
        stage.path(),
        "sp3_",
        &["gen_multivector"],
        &["--multivector", "first"],
    );
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, text) = verify_json(stage.path(), &["--search", "10", "--qdrant-url", &url]);
    assert_eq!(code, 0, "{text}");
    let mv = parity_of(&v, "gen_multivector", "colbert");
    assert_eq!(mv["queries"], 0, "{mv}");
    assert!(mv["note"].as_str().unwrap().contains("MaxSim"), "{mv}");
    assert_eq!(
        parity_of(&v, "gen_multivector", "plain")["mean_overlap"],
        1.0
    );
}
