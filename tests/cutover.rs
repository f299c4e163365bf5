//! The cut-over step: `plan` lists the Qdrant aliases of a collection, and `import --alias`
//! points a Milvus alias at the imported collection once verification passes — created the
//! first time, switched from the previous collection the next.

mod common;

use common::*;
use serde_json::json;

#[test]
fn qdrant_aliases_are_listed_and_the_milvus_alias_follows_each_verified_import() {
    let url = standin("Q2Z_QDRANT_URL");
    let r: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/collections/aliases"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .json(&json!({"actions": [{"create_alias": {"collection_name": "gen_tenants", "alias_name": "tenants_live"}}]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["result"], true, "{r}");
    let (code, out, err) = run_q2z(&["plan", "--qdrant-url", &url, "-c", "gen_tenants"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Qdrant alias 'tenants_live'") && out.contains("--alias tenants_live"),
        "{out}"
    );
    milvus_post("aliases/drop", json!({"aliasName": "tenants_live"}));
    let mut targets = Vec::new();
    for prefix in ["al1_", "al2_"] {
        let stage = tempfile::tempdir().unwrap();
        stage_export(stage.path(), prefix, &["gen_tenants"], &[]);
        let target = format!("{prefix}gen_tenants");
        milvus_post("collections/drop", json!({"collectionName": target}));
        let (code, out, err) = import(stage.path(), "bulk", &["--alias", "tenants_live"]);
        assert_eq!(code, 0, "{out}{err}");
        let expected = match targets.last() {
            None => format!("alias tenants_live → {target} (created)"),
            Some(before) => format!("alias tenants_live → {target} (switched from {before})"),
        };
        assert!(err.contains(&expected), "{err}");
        let d = milvus_post("aliases/describe", json!({"aliasName": "tenants_live"}));
        assert_eq!(d["data"]["collectionName"], target.as_str(), "{d}");
        // Readers that use the alias now reach the new collection.
        assert_eq!(target_count("tenants_live"), 120);
        targets.push(target);
    }
    // An alias names one collection: a stage with two needs -c.
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "al3_", &["gen_tenants", "gen_ints"], &[]);
    let (code, _, err) = import(stage.path(), "bulk", &["--alias", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-c NAME"), "{err}");
    milvus_post("aliases/drop", json!({"aliasName": "tenants_live"}));
}
