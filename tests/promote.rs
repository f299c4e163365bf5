//! Mapping choices beyond the defaults: payload keys promoted to typed nullable fields, a
//! partition key, the null policy, and points set aside because their payload is too large.

mod common;

use common::*;
use q2z::stage::manifest::Manifest;
use q2z::transform::scalars::ScalarKind;
use serde_json::{Value, json};

fn export_err(collection: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = live_export(dir.path(), &[collection], extra);
    assert_eq!(code, 1, "export should fail: {out}{err}");
    err
}

#[test]
fn promoted_keys_become_typed_fields_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "promo_",
        &["fx_named"],
        &[
            "--promote",
            "title",
            "--promote",
            "n:Int64",
            "--promote",
            "score:Double",
            "--promote",
            "flag:Bool",
            "--promote",
            "tags:Array<VarChar>",
            "--promote",
            "geo:JSON",
            "--null-values",
            "drop",
        ],
    );
    let (rows, mapping, _) = staged_rows(dir.path(), "fx_named");
    let kinds: Vec<(&str, ScalarKind)> = mapping
        .scalars
        .iter()
        .map(|f| (f.field.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("title", ScalarKind::VarChar),
            ("n", ScalarKind::Int64),
            ("score", ScalarKind::Double),
            ("flag", ScalarKind::Bool),
            ("tags", ScalarKind::Array),
            ("geo", ScalarKind::Json)
        ],
        "title's type comes from Qdrant's keyword index"
    );
    let indexed: Vec<(&str, Option<&str>)> = mapping
        .scalars
        .iter()
        .map(|f| (f.field.as_str(), f.index.as_deref()))
        .collect();
    assert_eq!(
        indexed[0],
        ("title", Some("INVERTED")),
        "Qdrant's payload index on title becomes an INVERTED index"
    );
    assert!(indexed[1..].iter().all(|(_, i)| i.is_none()), "{indexed:?}");
    // Every promoted value equals the payload's (null where the key is absent); $meta keeps the
    // rest without nulls.
    assert_rows_match(&fixture_points("fx_named"), &rows, &mapping);
    let nulls = rows.values().filter(|r| r["geo"].is_null()).count();
    assert_eq!(nulls, 297 - 34, "points without geo get a null cell");

    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    let d = milvus_post(
        "collections/describe",
        json!({"collectionName": "promo_fx_named"}),
    );
    let fields = d["data"]["fields"].as_array().unwrap();
    let idx = milvus_post("indexes/list", json!({"collectionName": "promo_fx_named"}));
    assert!(
        idx["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "title_idx"),
        "{idx}"
    );
    let tags = fields.iter().find(|f| f["name"] == "tags").unwrap();
    assert_eq!(tags["type"], "Array");
    assert_eq!(tags["nullable"], true);
    // Typed values read back from the target.
    let src = fixture_points("fx_named");
    let with_geo = src
        .iter()
        .find(|p| p["payload"].get("geo").is_some())
        .unwrap();
    let without = src
        .iter()
        .find(|p| p["payload"].get("title").is_none())
        .unwrap();
    for p in [with_geo, without] {
        let v = milvus_post(
            "entities/query",
            json!({"collectionName": "promo_fx_named", "filter": format!("id == {}", p["id"]), "outputFields": ["*"]}),
        );
        let row = &v["data"][0];
        for key in ["title", "n", "flag", "tags", "geo"] {
            assert_eq!(
                row.get(key).unwrap_or(&Value::Null),
                p["payload"].get(key).unwrap_or(&Value::Null),
                "point {} field {key}: {row}",
                p["id"]
            );
        }
        assert_eq!(
            row["score"].as_f64(),
            p["payload"].get("score").and_then(Value::as_f64)
        );
    }
    // The same stage through REST upserts also verifies.
    let (code, out, err) = import(
        dir.path(),
        "upsert",
        &["--drop-existing", "--collection", "fx_named"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
}

#[test]
fn partition_key_collection_migrates() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "pk_",
        &["gen_tenants"],
        &["--partition-key", "tenant", "--promote", "tenant:VarChar"],
    );
    let m = Manifest::load(dir.path()).unwrap().unwrap();
    let e = &m.collections["gen_tenants"];
    let field = e.milvus_schema["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fieldName"] == "tenant")
        .unwrap()
        .clone();
    assert_eq!(field["isPartitionKey"], true);
    assert!(field.get("nullable").is_none(), "{field}");
    let (rows, mapping, _) = staged_rows(dir.path(), "gen_tenants");
    assert_rows_match(&scroll_all("gen_tenants"), &rows, &mapping);
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    let d = milvus_post(
        "collections/describe",
        json!({"collectionName": "pk_gen_tenants"}),
    );
    let t = d["data"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tenant")
        .unwrap()
        .clone();
    assert_eq!(t["partitionKey"], true, "{d}");
    assert_eq!(target_count("pk_gen_tenants"), 120);
}

#[test]
fn values_that_do_not_fit_are_named_with_the_fix() {
    let err = export_err("fx_named", &["--promote", "title:Int64"]);
    assert!(
        err.contains("'title' promoted to Int64") && err.contains("(a string is not Int64)"),
        "{err}"
    );
    assert!(
        err.contains("1 (a string is not Int64)"),
        "ids come first: {err}"
    );
    let err = export_err("fx_named", &["--partition-key", "title"]);
    assert!(
        err.contains("'title' promoted to VarChar") && err.contains("(no value)"),
        "points without the partition key are counted and named: {err}"
    );
    let err = export_err("fx_named", &["--promote", "nested"]);
    assert!(
        err.contains("no payload index") && err.contains("--promote nested:VarChar"),
        "{err}"
    );
    let err = export_err("fx_named", &["--promote", "geo:Decimal"]);
    assert!(err.contains("unknown type 'Decimal'"), "{err}");
    let err = export_err("gen_big_payload", &["--promote", "blob:VarChar"]);
    assert!(
        err.contains("3 (a 70000-byte string, over max_length 65535)"),
        "{err}"
    );
}

#[test]
fn oversized_payloads_are_set_aside_whole_and_accounted_for() {
    let err = export_err("gen_big_payload", &[]);
    assert!(
        err.contains("3 (70011 bytes)") && err.contains("--oversize-payload set-aside"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "aside_",
        &["gen_big_payload"],
        &["--oversize-payload", "set-aside"],
    );
    let m = Manifest::load(dir.path()).unwrap().unwrap();
    let e = &m.collections["gen_big_payload"];
    assert_eq!((e.staged_rows(), e.set_aside_points()), (4, 1));
    let files: Vec<_> = e.ranges.iter().flat_map(|r| &r.set_aside).collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(dir.path().join(&files[0].file)).unwrap();
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    let src = scroll_all("gen_big_payload");
    let p3 = src.iter().find(|p| p["id"] == 3).unwrap();
    assert_eq!(line["id"], 3);
    assert_eq!(line["payload"], p3["payload"], "kept whole");
    assert_eq!(line["vector"], p3["vector"]);
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    assert!(
        out.contains("1 points were set aside at export (a payload over 64 KiB"),
        "{out}"
    );
    assert_eq!(target_count("aside_gen_big_payload"), 4);
}

/// A key Qdrant indexed that stays in `$meta` gets a JSON-path index (Milvus ≥ 2.5.11:
/// `indexes/create` with the key as field name, `json_path`, `json_cast_type`); a target that
/// refuses it (an older Milvus) is named in a warning and the import goes on.
#[test]
fn indexed_meta_keys_get_json_path_indexes_or_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "jidx_", &["fx_named"], &[]);
    let m = Manifest::load(dir.path()).unwrap().unwrap();
    let e = &m.collections["fx_named"];
    let ix: Vec<(&str, &str)> = e
        .mapping
        .json_indexes
        .iter()
        .map(|i| (i.key.as_str(), i.cast_type.as_str()))
        .collect();
    assert_eq!(
        ix,
        [("title", "VARCHAR")],
        "fx_named's keyword index on title"
    );
    assert!(
        e.warnings.iter().any(|w| w.contains("2.5.11")),
        "{:?}",
        e.warnings
    );
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let idx = milvus_post("indexes/list", json!({"collectionName": "jidx_fx_named"}));
    assert!(
        idx["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "meta_title_idx"),
        "{idx}"
    );
    assert!(!err.contains("no JSON-path index"), "{err}");
    let old = tempfile::tempdir().unwrap();
    stage_export(old.path(), "jidx_old_", &["fx_named"], &[]);
    milvus_faults(json!({"old_milvus": 1}));
    let (code, out, err) = import(old.path(), "bulk", &["--drop-existing"]);
    milvus_faults(json!({}));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    assert!(
        err.contains("no JSON-path index on $meta key 'title'") && err.contains("2.5.11"),
        "{err}"
    );
    let idx = milvus_post(
        "indexes/list",
        json!({"collectionName": "jidx_old_fx_named"}),
    );
    assert!(
        !idx["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "meta_title_idx"),
        "{idx}"
    );
}
