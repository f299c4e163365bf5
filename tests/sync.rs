//! `q2z sync` against the stand-ins: after an export and import, points are inserted, updated
//! (vector only, payload only) and deleted in the live source; `sync --dry-run` counts them
//! exactly and changes nothing, `sync` applies exactly them, and the target then equals a fresh
//! export of the source row for row (`verify --full`); a second sync finds nothing; a sync
//! killed with -9 is finished by running it again.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

fn point(id: u64, seed: f32, tag: &str) -> Value {
    json!({"id": id, "vector": [seed, 1.0 - seed, (id % 7) as f32 / 7.0, 0.5],
           "payload": {"tag": tag, "n": id, "nested": {"a": [1, 2]}}})
}

#[test]
fn sync_applies_exactly_what_changed_and_survives_kill_9() {
    let c = format!("syncsrc{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    upsert(
        &c,
        (1..=300)
            .map(|i| point(i, i as f32 / 300.0, "v1"))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    // Four ranges: the killed sync leaves some done, which the rerun does not read again.
    stage_export(stage.path(), "sync_", &[&c], &["--ranges", "4"]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("sync_{c}");
    // 10 inserted, 5 with a new vector, 5 with a new payload, 5 deleted.
    upsert(&c, (1001..=1010).map(|i| point(i, 0.3, "new")).collect());
    upsert(&c, (1..=5).map(|i| point(i, 0.9, "v1")).collect());
    upsert(
        &c,
        (6..=10).map(|i| point(i, i as f32 / 300.0, "v2")).collect(),
    );
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [11, 12, 13, 14, 15]}),
    );
    let (code, v, text) = sync(stage.path(), &c, &["--dry-run"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (10, 10, 5), "{v}");
    assert_eq!(v[0]["source_points"], 305, "{v}");
    assert_eq!(target_count(&target), 300, "a dry run changes nothing");
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (10, 10, 5), "{v}");
    assert_eq!(v[0]["target_rows"], 305, "{v}");
    assert_target_equals_source(&c);
    // verify checks the target against what the sync left: every range by its exact ids,
    // and the staged rows the source did not change field by field.
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 sync pass(es) left (305 rows)"), "{out}");
    assert!(out.contains("; 15 picked staged rows"), "{out}");
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        counts(&v),
        (0, 0, 0),
        "a second sync finds nothing to do: {v}"
    );
    // A slow source, a sync killed with -9 mid-way, then the same command again.
    upsert(&c, (100..=199).map(|i| point(i, 0.7, "v3")).collect());
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [250, 251]}),
    );
    let mut slow = serde_json::Map::new();
    slow.insert(c.clone(), json!(60));
    qdrant_faults(json!({"slow_ms_by_collection": slow}));
    let url = standin("Q2Z_QDRANT_URL");
    let milvus = standin("Q2Z_MILVUS_URL");
    let stage_s = stage.path().to_str().unwrap().to_string();
    let mut child = Command::new(q2z_bin())
        .args([
            "sync",
            "--stage",
            &stage_s,
            "--qdrant-url",
            &url,
            "--milvus-url",
            &milvus,
            "-c",
            &c,
            "--page-size",
            "10",
            "--batch",
            "10",
        ])
        .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
        .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let killed = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(killed, "the sync finished before the kill; make it slower");
    qdrant_faults(json!({}));
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["target_rows"], 303, "{v}");
    assert_target_equals_source(&c);
    let (_, v, _) = sync(stage.path(), &c, &[]);
    assert_eq!(counts(&v), (0, 0, 0), "{v}");
    // A row lost in the target after the sync: verify names the range's digests file.
    let v = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": "id in [1001]"}),
    );
    assert_eq!(v["code"], 0, "{v}");
    let (code, out, _) = verify(stage.path(), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("-0003.digests"), "{out}");
}

#[test]
fn sync_of_a_collection_with_uuid_ids() {
    let c = format!("syncuuid{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let id = |i: u64| format!("00000000-0000-4000-8000-{i:012x}");
    let pt = |i: u64, seed: f32, tag: &str| {
        let mut p = point(i, seed, tag);
        p["id"] = json!(id(i));
        p
    };
    upsert(&c, (1..=60).map(|i| pt(i, i as f32 / 60.0, "v1")).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sync_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let m = q2z::stage::manifest::Manifest::load(stage.path())
        .unwrap()
        .unwrap();
    assert_eq!(
        m.collections[&c].mapping.id_kind,
        q2z::transform::mapping::IdKind::VarChar
    );
    upsert(&c, (61..=62).map(|i| pt(i, 0.2, "new")).collect());
    upsert(&c, (1..=3).map(|i| pt(i, 0.95, "v2")).collect());
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [id(10), id(11)]}),
    );
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (2, 3, 2), "{v}");
    assert_eq!(v[0]["target_rows"], 60, "{v}");
    assert_target_equals_source(&c);
}

/// `--changed-since-field`: only points whose field moved past the export's start (or that
/// lack the field) are read in full; inserted and deleted ids come from an id-only scan. A
/// payload changed without touching the field is (by design) not seen, and the digest diff
/// then finds it.
#[test]
fn sync_by_a_datetime_change_field_reads_only_what_the_field_marks() {
    let c = format!("syncfield{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    let old = "2020-01-01T00:00:00Z";
    let pt = |i: u64, seed: f32, tag: &str, at: Option<&str>| {
        let mut p = point(i, seed, tag);
        if let Some(at) = at {
            p["payload"]["updated_at"] = json!(at);
        }
        p
    };
    // 190..=200 have no updated_at: read on every pass.
    upsert(
        &c,
        (1..=200)
            .map(|i| pt(i, i as f32 / 200.0, "v1", (i < 190).then_some(old)))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sync_", &[&c], &["--ranges", "3"]);
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let now = "2099-01-01T00:00:00Z";
    upsert(&c, (1..=5).map(|i| pt(i, 0.9, "v1", Some(now))).collect());
    // Changed without a new updated_at: invisible to the field.
    upsert(&c, (6..=8).map(|i| pt(i, 0.5, "v2", Some(old))).collect());
    upsert(&c, vec![pt(195, 0.1, "v2", None)]);
    // A back-filled insert with an old time: the id scan finds it.
    upsert(
        &c,
        (1001..=1003)
            .map(|i| pt(i, 0.3, "new", Some(old)))
            .collect(),
    );
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [20, 21]}),
    );
    let field = ["--changed-since-field", "updated_at"];
    let (code, v, text) = sync(stage.path(), &c, &[&field[..], &["--dry-run"]].concat());
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (3, 6, 2), "{v}");
    let (code, v, text) = sync(stage.path(), &c, &field);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (3, 6, 2), "{v}");
    // 5 marked + 11 without the field + 3 new ids: the other 183 points are not read.
    assert_eq!(v[0]["scanned"], 19, "{v}");
    assert_eq!(v[0]["target_rows"], 201, "{v}");
    let (code, v, text) = sync(stage.path(), &c, &field);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 0, 0), "{v}");
    // The digest diff finds the change the field did not mark; then target = source.
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 3, 0), "{v}");
    assert_target_equals_source(&c);
}

/// An integer change field (a revision counter) with the bound given by `--since`; a field
/// that is not a datetime or a number is refused by name.
#[test]
fn sync_by_an_integer_change_field_from_a_given_bound() {
    let c = format!("syncrev{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Euclid"}}));
    let pt = |i: u64, seed: f32, rev: u64| {
        let mut p = point(i, seed, "v");
        p["payload"]["rev"] = json!(rev);
        p
    };
    upsert(&c, (1..=120).map(|i| pt(i, i as f32 / 120.0, 1)).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sync_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    upsert(&c, (50..=53).map(|i| pt(i, 0.25, 7)).collect());
    let (code, v, text) = sync(
        stage.path(),
        &c,
        &["--changed-since-field", "rev", "--since", "5"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 4, 0), "{v}");
    assert_eq!(v[0]["scanned"], 4, "{v}");
    assert_target_equals_source(&c);
    let (code, _, text) = sync(stage.path(), &c, &["--changed-since-field", "tag"]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("tag") && text.contains("datetime or an integer"),
        "{text}"
    );
}

/// Ranges with many changed rows go through one bulk import job each (ids deleted first);
/// a failed job stops the sync with its id, and the same command then finishes it without a
/// row imported twice; small ranges still use upserts.
#[test]
fn large_sync_deltas_go_through_bulk_import() {
    let c = format!("syncbulk{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    upsert(
        &c,
        (1..=400)
            .map(|i| point(i, i as f32 / 400.0, "v1"))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "sync_", &[&c], &["--ranges", "2"]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    // Range 0 (ids 1..=200): 60 updated; range 1: 3 updated, 50 inserted after 400.
    upsert(&c, (1..=60).map(|i| point(i, 0.8, "v2")).collect());
    upsert(&c, (301..=303).map(|i| point(i, 0.8, "v2")).collect());
    upsert(&c, (401..=450).map(|i| point(i, 0.1, "new")).collect());
    let s3 = [
        "--s3-endpoint",
        &standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket",
        &standin("Q2Z_S3_BUCKET"),
        "--bulk-over",
        "40",
        "--workers",
        "1",
    ]
    .map(str::to_string);
    let s3: Vec<&str> = s3.iter().map(String::as_str).collect();
    milvus_faults(json!({"fail_import": 1}));
    let (code, _, text) = sync(stage.path(), &c, &s3);
    milvus_faults(json!({}));
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("import job") && text.contains("run the same command again"),
        "{text}"
    );
    let (code, v, text) = sync(stage.path(), &c, &s3);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["target_rows"], 450, "{v}");
    // One range at a time: the failed job stopped the run in range 0. Both ranges reached
    // 40 changed rows: 60 + 53 rows imported, none upserted.
    assert_eq!(v[0]["bulk_rows"], 113, "{v}");
    assert_target_equals_source(&c);
    assert_eq!(target_count(&format!("sync_{c}")), 450);
    // Below the threshold: upserts, no job.
    upsert(&c, (5..=6).map(|i| point(i, 0.2, "v3")).collect());
    let (code, v, text) = sync(stage.path(), &c, &s3);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 2, 0), "{v}");
    assert_eq!(v[0]["bulk_rows"], 0, "{v}");
    assert_target_equals_source(&c);
    let leftovers: Vec<_> = std::fs::read_dir(stage.path().join(&c))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".job"))
        .collect();
    assert!(leftovers.is_empty(), "no job marker left: {leftovers:?}");
}
