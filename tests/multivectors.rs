//! Qdrant multivectors kept whole (`--multivector struct`): an Array of Structs field with a
//! MAX_SIM index where the line has it over REST (3.0+), every sub-vector exact through bulk
//! import, verify and sync, search parity by MaxSim on both sides; an older line is refused
//! with the fix before anything is created. scripts/test.sh runs this file against the main
//! Milvus stand-in and the stand-in following each other release line.

mod common;

use common::*;
use serde_json::{Value, json};

fn at_least(v: (u16, u16, u16)) -> bool {
    let p = std::env::var("Q2Z_MILVUS_PROFILE").unwrap_or_else(|_| "2.5.16".into());
    let p: Vec<u16> = p.split('.').map(|x| x.parse().unwrap()).collect();
    (p[0], p[1], p[2]) >= v
}

/// `n` vectors of 4 floats for point `id` (seeded, distinct: no ties in the searches), values
/// whose float32 text is long (exactness shows).
fn vectors(id: u64, n: u64, salt: u64) -> Vec<Vec<f32>> {
    let mut seed = id * 1_000_003 + salt;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % 1_000_003) as f32 / 1_000_003.0 - 0.5
    };
    (0..n).map(|_| (0..4).map(|_| next()).collect()).collect()
}

fn point(id: u64, colbert: Vec<Vec<f32>>) -> Value {
    json!({"id": id, "vector": {"colbert": colbert, "plain": [0.5, -0.25, id as f32 / 10.0, 1.0]},
           "payload": {"i": id}})
}

/// A JSON array of numbers as f32s.
fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Each point's multivector as the Qdrant stand-in answers it, by id.
fn source_lists(c: &str) -> std::collections::BTreeMap<u64, Vec<Vec<f32>>> {
    scroll_all(c)
        .iter()
        .map(|p| {
            let list = p["vector"]["colbert"]
                .as_array()
                .unwrap_or_else(|| panic!("{p}"))
                .iter()
                .map(floats)
                .collect();
            (p["id"].as_u64().unwrap(), list)
        })
        .collect()
}

/// The sub-vectors of each row of a target's struct field, by id.
fn target_lists(target: &str) -> std::collections::BTreeMap<u64, Vec<Vec<f32>>> {
    let q = milvus_post(
        "entities/query",
        json!({"collectionName": target, "filter": "id > 0", "outputFields": ["colbert"],
               "consistencyLevel": "Strong", "limit": 100}),
    );
    q["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}"))
        .iter()
        .map(|r| {
            let list = r["colbert"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .iter()
                .map(|e| floats(&e["v"]))
                .collect();
            (r["id"].as_u64().unwrap(), list)
        })
        .collect()
}

/// Imports a stage holding a struct field (`mode`): true where the line has Array of Structs
/// over REST (3.0+); on an older one, asserts the refusal names the field, its release and the
/// fix, and that nothing was created (told the release, or probed and refused by the server).
fn imported_where_the_line_has_it(stage: &std::path::Path, mode: &str, target: &str) -> bool {
    let (code, out, err) = import(stage, mode, &[]);
    let text = format!("{out}{err}");
    if at_least((3, 0, 0)) {
        assert_eq!(code, 0, "{text}");
        return true;
    }
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("colbert (ArrayOfStruct, 3.0.0+)")
            && text.contains("--multivector first or skip"),
        "{text}"
    );
    let has = milvus_post("collections/has", json!({"collectionName": target}));
    assert_eq!(has["data"]["has"], json!(false), "nothing created: {text}");
    false
}

/// The parity of field `colbert` in a `verify --json --search` answer.
fn colbert_parity(out: &str) -> Value {
    let v: Value = serde_json::from_str(out).unwrap();
    v["search"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["field"] == "colbert" && p["filtered_on"].is_null())
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

#[test]
fn multivectors_arrive_whole_as_arrays_of_structs_where_the_line_has_them() {
    let c = format!("mvs{}", rand::random::<u32>());
    create_collection(
        &c,
        json!({"vectors": {
            "colbert": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
            "plain": {"size": 4, "distance": "Dot"}}}),
    );
    upsert(
        &c,
        (1..=30u64)
            .map(|i| point(i, vectors(i, i % 4 + 1, 0)))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "mvs_", &[&c], &["--multivector", "struct"]);
    let target = format!("mvs_{c}");
    if !imported_where_the_line_has_it(stage.path(), "bulk", &target) {
        return;
    }
    // The schema: a struct field of one FloatVector sub-field, its MAX_SIM index on colbert[v].
    let d = milvus_post("collections/describe", json!({"collectionName": target}));
    let s = &d["data"]["structFields"][0];
    assert_eq!(s["name"], "colbert", "{d}");
    assert_eq!(s["type"], "ArrayOfStruct", "{d}");
    assert_eq!(s["fields"][0]["elementType"], "FloatVector", "{d}");
    // Every sub-vector as the source holds it (Qdrant normalises Cosine vectors), exact, in
    // its order.
    assert_eq!(target_lists(&target), source_lists(&c));
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    // Search parity by MaxSim on both sides.
    let (code, out, err) = verify(
        stage.path(),
        &[
            "--json",
            "--search",
            "10",
            "--qdrant-url",
            &standin("Q2Z_QDRANT_URL"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let p = colbert_parity(&out);
    assert_eq!(p["queries"], 10, "{p}");
    assert_eq!(p["mean_overlap"], 1.0, "{p}");
    assert!(p["max_score_difference"].as_f64().unwrap() < 1e-4, "{p}");
    assert!(p["note"].is_null(), "{p}");
    // A point whose multivector grew reaches the target through sync's REST upserts.
    upsert(&c, vec![point(2, vectors(2, 5, 1))]);
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 1, 0), "{v}");
    let want = source_lists(&c);
    assert_eq!(want[&2].len(), 5);
    assert_eq!(target_lists(&target), want);
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_snapshot_multivector_goes_whole_over_rest_upserts_and_is_searched_offline_by_maxsim() {
    // gen_multivector's snapshot (written by the Qdrant stand-in in Qdrant 1.19's format),
    // exported offline, imported by REST upserts (rows of `[{"v": [..]}]`), verified field by
    // field and searched through qdrant-edge against the target, both by MaxSim.
    let snap = std::path::PathBuf::from(standin("Q2Z_GEN_FIXTURES"))
        .join("gen_multivector.collection.snapshot");
    let snap = snap.to_str().unwrap();
    let stage = tempfile::tempdir().unwrap();
    let prefix = format!("mvo{}_", rand::random::<u32>());
    let (code, out, err) = run_q2z(&[
        "export",
        "--snapshot",
        snap,
        "--stage",
        stage.path().to_str().unwrap(),
        "--target-prefix",
        &prefix,
        "--multivector",
        "struct",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("{prefix}gen_multivector");
    if !imported_where_the_line_has_it(stage.path(), "upsert", &target) {
        return;
    }
    assert_eq!(target_count(&target), 50);
    assert_eq!(target_lists(&target), source_lists("gen_multivector"));
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = verify(
        stage.path(),
        &["--json", "--search", "12", "--snapshot", snap],
    );
    assert_eq!(code, 0, "{out}{err}");
    let p = colbert_parity(&out);
    assert_eq!(p["queries"], 12, "{p}");
    assert_eq!(p["mean_overlap"], 1.0, "{p}");
    assert!(p["max_score_difference"].as_f64().unwrap() < 1e-4, "{p}");
}
