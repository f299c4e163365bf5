//! Cut-over integrity: import, sync, verify and repair combined, against the stand-ins. Each
//! test names the finding of the cut-over integrity issue it pins (they failed before the
//! fix); the lifecycle test at the end generates its own histories of source changes and q2z
//! commands and checks after every completed sync that the target holds exactly the source's
//! points, read back from both servers.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;

/// The Qdrant stand-in's faults are one state for every test of this binary (running side by
/// side): a test holds this while its faults are on.
fn faults_lock() -> std::sync::MutexGuard<'static, ()> {
    static FAULTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    FAULTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn point(id: u64, seed: f32, payload: Value) -> Value {
    json!({"id": id, "vector": [seed, 1.0 - seed, (id % 7) as f32 / 7.0, 0.5], "payload": payload})
}

/// A live collection `<name><random>` of points 1..=n with payload `{"n": i}`, exported (with
/// `export_extra`) and imported (`mode`): (collection, stage, target).
fn migrated(
    name: &str,
    n: u64,
    export_extra: &[&str],
    mode: &str,
) -> (String, tempfile::TempDir, String) {
    let c = format!("{name}{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(
        &c,
        (1..=n).map(|i| point(i, 0.5, json!({"n": i}))).collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], export_extra);
    let (code, out, err) = import(stage.path(), mode, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("cut_{c}");
    (c, stage, target)
}

/// Deletes points in the Qdrant stand-in.
fn delete_points(c: &str, ids: &[u64]) {
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": ids}),
    );
}

/// Deletes target rows behind q2z's back.
fn delete_target_rows(target: &str, ids: &[u64]) {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let v = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": format!("id in [{}]", ids.join(","))}),
    );
    assert_eq!(v["code"], 0, "{v}");
}

fn repair(stage: &Path, extra: &[&str]) -> (i32, String, String) {
    let a = repair_args(extra);
    verify(stage, &a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn assert_equal(c: &str, target: &str, when: &str) {
    let d = target_vs_source(c, target);
    assert!(
        d.is_empty(),
        "{when}: the target differs from the source: {d:#?}"
    );
}

/// Finding 1: repair after a sync re-sends the rows as the sync left them — no point the
/// sync deleted comes back, no point it updated is reverted — and later verifies pass.
#[test]
fn repair_after_a_sync_neither_reverts_nor_resurrects() {
    let c = format!("cutrepair{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    upsert(
        &c,
        (1..=200)
            .map(|i| point(i, i as f32 / 200.0, json!({"v": 1, "n": i})))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], &["--ranges", "3"]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("cut_{c}");
    // The application: new payload key on 1..=40, deletes of 41..=50, inserts 1001..=1010.
    upsert(
        &c,
        (1..=40)
            .map(|i| point(i, 0.9, json!({"v": 2, "n": i, "app": "set"})))
            .collect(),
    );
    delete_points(&c, &(41..=50).collect::<Vec<_>>());
    upsert(
        &c,
        (1001..=1010)
            .map(|i| point(i, 0.3, json!({"v": 1, "n": i})))
            .collect(),
    );
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["target_rows"], 200, "{v}");
    assert_equal(&c, &target, "after the sync");
    // Rows lost behind q2z's back, in every range: a synced one, a staged one, an inserted one.
    delete_target_rows(&target, &[5, 120, 199, 1005]);
    let (code, out, _) = verify(stage.path(), &[]);
    assert_eq!(code, 3, "verify sees the loss: {out}");
    let (code, out, err) = repair(stage.path(), &[]);
    assert_eq!(code, 0, "repair restores the synced state:\n{out}{err}");
    assert_equal(&c, &target, "after the repair");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    // A further sync finds nothing to do.
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 0, 0), "{v}");
    // The stage records each pass's rows and tombstones.
    let dir = stage.path().join(&c);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("sync-0001-") && n.ends_with(".parquet")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("sync-0001-") && n.ends_with(".tombstones")),
        "{names:?}"
    );
}

/// Finding 2: a sync starts only on a finished import into the same target collection.
#[test]
fn sync_refuses_a_target_the_stage_did_not_finish_importing() {
    let c = format!("cutcheck{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(
        &c,
        (1..=50).map(|i| point(i, 0.5, json!({"n": i}))).collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], &[]);
    let (code, _, text) = sync(stage.path(), &c, &[]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("never imported") && text.contains("q2z import"),
        "{text}"
    );
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    // Another database of the same server: not the target the stage imported into.
    let (code, _, text) = sync(stage.path(), &c, &["--db", "default2"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("never imported"), "{text}");
    // The target collection dropped and created again by someone else under the same name.
    let target = format!("cut_{c}");
    let v = milvus_post("collections/drop", json!({"collectionName": target}));
    assert_eq!(v["code"], 0, "{v}");
    let other = tempfile::tempdir().unwrap();
    stage_export(other.path(), "cut_", &[&c], &[]);
    let (code, out, err) = import(other.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, text) = sync(stage.path(), &c, &[]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("not the one this stage imported"), "{text}");
    // The stage that made it syncs.
    let (code, _, text) = sync(other.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
}

/// Finding 4: with a counter change field, the bound of a pass without `--since` is the
/// largest value the last pass read (less the margin), not a time: every update is read.
#[test]
fn a_counter_change_field_reads_every_update_pass_after_pass() {
    let c = format!("cutrev{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Euclid"}}));
    let pt = |i: u64, seed: f32, rev: u64| point(i, seed, json!({"rev": rev, "n": i}));
    upsert(&c, (1..=60).map(|i| pt(i, 0.1, 1)).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("cut_{c}");
    upsert(&c, (1..=3).map(|i| pt(i, 0.7, 10)).collect());
    let cf = ["--changed-since-field", "rev", "--since-margin", "2"];
    let mut first = cf.to_vec();
    first.extend(["--since", "5"]);
    let (code, v, text) = sync(stage.path(), &c, &first);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["updated"], 3, "{v}");
    upsert(&c, (4..=6).map(|i| pt(i, 0.8, 11)).collect());
    let (code, v, text) = sync(stage.path(), &c, &cf);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        v[0]["since"], 8,
        "the bound is the largest value read (10) less 2: {v}"
    );
    assert_eq!(v[0]["updated"], 3, "{v}");
    assert_equal(&c, &target, "after two counter passes");
    upsert(&c, (7..=9).map(|i| pt(i, 0.9, 12)).collect());
    let (code, v, text) = sync(stage.path(), &c, &cf);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["since"], 9, "{v}");
    assert_eq!(v[0]["updated"], 3, "{v}");
    assert_equal(&c, &target, "after three counter passes");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Flat sync memory: a range is diffed a window of `--diff-window` ids at a time on each side
/// (the target's record, the source). Windows of a few points — smaller than a page, smaller
/// than a run of inserts or deletes between two recorded ids — find exactly what one window
/// over the whole range finds, by digest and by change field, and the pass leaves the target
/// equal to the source with its digests recorded in id order.
#[test]
fn a_range_read_in_small_windows_finds_what_one_window_finds() {
    let c = format!("cutwin{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Euclid"}}));
    let pt = |i: u64, seed: f32, rev: u64| point(i, seed, json!({"rev": rev, "n": i}));
    upsert(&c, (1..=40).map(|i| pt(i * 10, 0.1, 1)).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "upsert", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("cut_{c}");
    // Inserts before the first id, between recorded ids (a run of five), past the last (a
    // run longer than any window); updates; deletes in a run and at the end.
    let inserts: Vec<u64> = [1, 15, 16, 17, 18, 19, 55]
        .into_iter()
        .chain(401..=420)
        .collect();
    upsert(&c, inserts.iter().map(|&i| pt(i, 0.5, 2)).collect());
    upsert(&c, [20, 30, 200].map(|i| pt(i, 0.9, 3)).to_vec());
    delete_points(&c, &[100, 110, 120, 130, 140, 150, 400]);
    let want = (27, 3, 7);
    let changed = ["--changed-since-field", "rev", "--since", "2"];
    for cf in [&[][..], &changed[..]] {
        for (window, page) in [("1000000", "256"), ("1", "1"), ("3", "2"), ("4", "16")] {
            let mut args = vec!["--dry-run", "--diff-window", window, "--page-size", page];
            args.extend_from_slice(cf);
            let (code, v, text) = sync(stage.path(), &c, &args);
            assert_eq!(code, 0, "{text}");
            assert_eq!(
                counts(&v),
                want,
                "window {window}, page {page}, {cf:?}: {v}"
            );
            assert_eq!(v[0]["source_points"], 60, "{v}");
        }
    }
    let (code, v, text) = sync(
        stage.path(),
        &c,
        &["--diff-window", "3", "--page-size", "2"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), want, "{v}");
    assert_equal(&c, &target, "after a pass in windows of 3");
    let digests = std::fs::read_to_string(stage.path().join(format!("{c}/sync-0001-0000.digests")))
        .expect("the pass's digests of range 0");
    let ids: Vec<u64> = digests
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 60, "one digest per source point");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    // The next pass reads the recorded digests in windows too.
    upsert(&c, [15, 410].map(|i| pt(i, 0.3, 4)).to_vec());
    delete_points(&c, &[19]);
    let mut args = vec!["--diff-window", "2", "--page-size", "3"];
    args.extend_from_slice(&changed[..2]);
    args.extend(["--since", "4"]);
    let (code, v, text) = sync(stage.path(), &c, &args);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 2, 1), "{v}");
    assert_equal(&c, &target, "after a second pass in windows of 2");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Finding 8: a point whose payload grew past the set-aside limit is listed in a set-aside
/// file of the pass and counted; its old row leaves the target, as the export would not have
/// staged it; verify agrees.
#[test]
fn a_point_set_aside_by_a_sync_is_listed_and_counted() {
    let (c, stage, _target) = migrated(
        "cutaside",
        30,
        &["--oversize-payload", "set-aside"],
        "upsert",
    );
    upsert(
        &c,
        vec![point(7, 0.5, json!({"n": 7, "big": "x".repeat(70_000)}))],
    );
    for extra in [&[][..], &["--changed-since-field", "n", "--since", "0"][..]] {
        let (code, v, text) = sync(stage.path(), &c, extra);
        assert_eq!(code, 0, "{text}");
        assert_eq!(v[0]["set_aside"], 1, "{extra:?}: {v}");
        assert_eq!(v[0]["target_rows"], 29, "{extra:?}: {v}");
    }
    let dir = stage.path().join(&c);
    let aside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".set-aside.jsonl"))
        .collect();
    assert!(!aside.is_empty(), "no set-aside file written");
    let text = std::fs::read_to_string(dir.join(&aside[0])).unwrap();
    assert!(
        text.contains("\"id\":7") && text.contains("q2z_reason"),
        "{text:.200}"
    );
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Finding 3: every pass's bulk delta has its own file and object key.
#[test]
fn bulk_deltas_of_two_passes_have_their_own_files() {
    let c = format!("cutbulk{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    upsert(
        &c,
        (1..=40).map(|i| point(i, 0.2, json!({"n": i}))).collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "cut_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let s3 = [
        "--s3-endpoint".to_string(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
        "--bulk-over".into(),
        "2".into(),
    ];
    let s3: Vec<&str> = s3.iter().map(String::as_str).collect();
    for pass in 1..=2u64 {
        upsert(
            &c,
            (1..=5)
                .map(|i| point(i, 0.1 * pass as f32, json!({"n": i, "pass": pass})))
                .collect(),
        );
        let (code, v, text) = sync(stage.path(), &c, &s3);
        assert_eq!(code, 0, "{text}");
        assert_eq!(v[0]["bulk_rows"], 5, "{v}");
        assert_eq!(v[0]["pass"], pass, "{v}");
        assert!(
            stage
                .path()
                .join(&c)
                .join(format!("sync-{pass:04}-0000.parquet"))
                .exists()
        );
        assert!(
            !stage
                .path()
                .join(&c)
                .join(format!("sync-{pass:04}-0000.parquet.job"))
                .exists(),
            "the job marker goes once the job ended"
        );
    }
    assert_equal(&c, &format!("cut_{c}"), "after two bulk passes");
}

/// What the histories did, to print.
#[derive(Default, Debug)]
struct Tally {
    steps: usize,
    changes: usize,
    digest_syncs: usize,
    datetime_syncs: usize,
    counter_syncs: usize,
    bulk_syncs: usize,
    windowed: usize,
    repairs: usize,
    bulk_imports: usize,
    kills: usize,
    merged: usize,
}

/// Starts `q2z sync` on a source slowed by `slow_ms` per page and kills it with -9 after `ms`
/// milliseconds; whether it was still running (if not, the kill landed on nothing).
fn kill_sync_midway(stage: &Path, c: &str, extra: &[&str], ms: u64, slow_ms: u64) -> bool {
    let _faults = faults_lock();
    let mut slow = serde_json::Map::new();
    slow.insert(c.to_string(), json!(slow_ms));
    qdrant_faults(json!({"slow_ms_by_collection": slow}));
    let mut more = vec!["--batch", "8"];
    if !extra.contains(&"--page-size") {
        more.extend(["--page-size", "8"]);
    }
    more.extend_from_slice(extra);
    let args = sync_args(stage, c, &more);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = q2z_command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    qdrant_faults(json!({}));
    running
}

/// One random history: a collection, an export and an import, then steps of source changes
/// and q2z commands; after every completed sync the target equals the source.
fn history(seed: u64, steps: usize, t: &mut Tally) {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = format!("life{seed}x{}", rand::random::<u16>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    let mut rev = 1u64;
    let mut live: std::collections::BTreeMap<u64, Value> = std::collections::BTreeMap::new();
    let mut gone: Vec<u64> = Vec::new();
    let payload = |rng: &mut StdRng, rev: u64| {
        let mut p = json!({"rev": rev, "updated_at": chrono_now(), "n": rng.random_range(0..1000)});
        if rng.random_bool(0.5) {
            p["tag"] = json!(["a", "b", "c"][rng.random_range(0..3)]);
        }
        if rng.random_bool(0.3) {
            p["nested"] = json!({"k": [rng.random_range(0..9), 2]});
        }
        p
    };
    let n0 = rng.random_range(20..60u64);
    let first: Vec<Value> = (1..=n0)
        .map(|i| point(i, rng.random_range(0.05..0.95), payload(&mut rng, rev)))
        .collect();
    for p in &first {
        live.insert(p["id"].as_u64().unwrap(), p.clone());
    }
    upsert(&c, first);
    let stage_dir = tempfile::tempdir().unwrap();
    let mut stage = stage_dir.path().to_path_buf();
    let ranges = rng.random_range(1..=3).to_string();
    if rng.random_bool(0.25) {
        // Exported in two parts (as two machines would), merged into one stage.
        t.merged += 1;
        let parts: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        for (i, p) in parts.iter().enumerate() {
            let part = format!("{i}/2");
            stage_export(
                p.path(),
                "life_",
                &[&c],
                &["--ranges", &ranges, "--part", &part],
            );
        }
        let into = stage_dir.path().join("merged");
        let mut a = vec!["stage", "merge"];
        a.extend(parts.iter().map(|p| p.path().to_str().unwrap()));
        a.extend(["--into", into.to_str().unwrap()]);
        let (code, out, err) = run_q2z(&a);
        assert_eq!(code, 0, "seed {seed}: merge: {out}{err}");
        stage = into;
    } else {
        stage_export(&stage, "life_", &[&c], &["--ranges", &ranges]);
    }
    let mode = if rng.random_bool(0.5) {
        "bulk"
    } else {
        "upsert"
    };
    t.bulk_imports += usize::from(mode == "bulk");
    let (code, out, err) = import(&stage, mode, &[]);
    assert_eq!(code, 0, "seed {seed}: import {mode}: {out}{err}");
    let target = format!("life_{c}");
    let mut counter_started = false;
    for step in 0..steps {
        t.steps += 1;
        // Source changes of every kind.
        for _ in 0..rng.random_range(1..6) {
            rev += 1;
            t.changes += 1;
            match rng.random_range(0..6) {
                0 => {
                    let id = 1000 + rng.random_range(0..500u64);
                    let p = point(id, rng.random_range(0.05..0.95), payload(&mut rng, rev));
                    live.insert(id, p.clone());
                    upsert(&c, vec![p]);
                }
                1 | 2 if !live.is_empty() => {
                    let id = *live.keys().nth(rng.random_range(0..live.len())).unwrap();
                    let mut p = live[&id].clone();
                    if rng.random_bool(0.5) {
                        p["vector"] =
                            point(id, rng.random_range(0.05..0.95), json!({}))["vector"].clone();
                    }
                    let old = p["payload"].as_object().cloned().unwrap_or_default();
                    let mut np = payload(&mut rng, rev);
                    if rng.random_bool(0.3) {
                        // A key set by the application on top of the old payload.
                        let mut merged = old.clone();
                        merged.extend(np.as_object().unwrap().clone());
                        merged.insert("app".into(), json!(rng.random_range(0..5)));
                        np = Value::Object(merged);
                    }
                    p["payload"] = np;
                    live.insert(id, p.clone());
                    upsert(&c, vec![p]);
                }
                3 if !live.is_empty() => {
                    let id = *live.keys().nth(rng.random_range(0..live.len())).unwrap();
                    live.remove(&id);
                    gone.push(id);
                    delete_points(&c, &[id]);
                }
                4 if !gone.is_empty() => {
                    let id = gone.swap_remove(rng.random_range(0..gone.len()));
                    let p = point(id, rng.random_range(0.05..0.95), payload(&mut rng, rev));
                    live.insert(id, p.clone());
                    upsert(&c, vec![p]);
                }
                _ => {}
            }
        }
        let mut args: Vec<String> = Vec::new();
        match rng.random_range(0..3) {
            0 => t.digest_syncs += 1,
            1 => {
                t.datetime_syncs += 1;
                args.extend(["--changed-since-field".into(), "updated_at".into()])
            }
            _ => {
                t.counter_syncs += 1;
                args.extend([
                    "--changed-since-field".into(),
                    "rev".into(),
                    "--since-margin".into(),
                    "0".into(),
                ]);
                if !counter_started {
                    args.extend(["--since".into(), "0".into()]);
                    counter_started = true;
                }
            }
        }
        if rng.random_bool(0.4) {
            // Windows of a few ids (flat memory), pages smaller than a window.
            t.windowed += 1;
            let w = rng.random_range(1..6u32);
            args.extend(["--diff-window".into(), w.to_string()]);
            args.extend(["--page-size".into(), rng.random_range(1..=w).to_string()]);
        }
        if rng.random_bool(0.3) {
            t.bulk_syncs += 1;
            args.extend([
                "--s3-endpoint".into(),
                standin("Q2Z_S3_ENDPOINT"),
                "--s3-bucket".into(),
                standin("Q2Z_S3_BUCKET"),
                "--bulk-over".into(),
                "2".into(),
            ]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        if rng.random_bool(0.2) {
            // The sync killed with -9 at a random moment; the same command then finishes it.
            t.kills += 1;
            kill_sync_midway(&stage, &c, &refs, rng.random_range(20..500), 25);
        }
        let (code, _, text) = sync(&stage, &c, &refs);
        assert_eq!(code, 0, "seed {seed} step {step}: sync {args:?}: {text}");
        let d = target_vs_source(&c, &target);
        assert!(
            d.is_empty(),
            "seed {seed} step {step}: after sync {args:?} the target differs: {d:#?}"
        );
        let (code, out, err) = verify(&stage, &[]);
        assert_eq!(code, 0, "seed {seed} step {step}: verify: {out}{err}");
        if rng.random_bool(0.25) && !live.is_empty() {
            // Damage behind q2z's back, then repair.
            t.repairs += 1;
            let ids: Vec<u64> = (0..rng.random_range(1..4))
                .map(|_| *live.keys().nth(rng.random_range(0..live.len())).unwrap())
                .collect();
            delete_target_rows(&target, &ids);
            let (code, out, _) = verify(&stage, &[]);
            assert_eq!(
                code, 3,
                "seed {seed} step {step}: verify sees {ids:?} missing: {out}"
            );
            let (code, out, err) = repair(&stage, &[]);
            assert_eq!(code, 0, "seed {seed} step {step}: repair: {out}{err}");
            let d = target_vs_source(&c, &target);
            assert!(
                d.is_empty(),
                "seed {seed} step {step}: after repair the target differs: {d:#?}"
            );
        }
    }
    // Both collections go once the history held, so thousands of histories do not pile up
    // thousands of collections in the servers.
    qdrant(
        reqwest::Method::DELETE,
        &format!("/collections/{c}"),
        json!({}),
    );
    milvus_post("collections/drop", json!({"collectionName": target}));
}

/// RFC 3339 now, with milliseconds.
fn chrono_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    chrono::DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos())
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Histories in CI: `Q2Z_LIFECYCLE_HISTORIES` (default 52, run by 4 threads side by side: they
/// wait on the servers more than they compute) of `Q2Z_LIFECYCLE_STEPS` steps (default 8),
/// seeds from `Q2Z_LIFECYCLE_SEED` (default 1) on; `benches/lifecycle.sh` runs thousands.
#[test]
fn lifecycle_histories() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let histories = env("Q2Z_LIFECYCLE_HISTORIES", 52);
    let steps = env("Q2Z_LIFECYCLE_STEPS", 8) as usize;
    let base = env("Q2Z_LIFECYCLE_SEED", 1);
    let threads = env("Q2Z_LIFECYCLE_THREADS", 4);
    let tallies: Vec<(u64, Tally)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|part| {
                s.spawn(move || {
                    let mut t = Tally::default();
                    let mut n = 0;
                    for h in (0..histories).filter(|h| h % threads == part) {
                        history(base + h, steps, &mut t);
                        n += 1;
                    }
                    (n, t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let n: u64 = tallies.iter().map(|x| x.0).sum();
    let done: usize = tallies.iter().map(|x| x.1.steps).sum();
    // Printed through the harness's capture: `cargo test -- --nocapture` shows it.
    eprintln!("lifecycle: {n} histories, {done} steps, every invariant held");
    for (_, t) in &tallies {
        eprintln!("  {t:?}");
    }
    assert_eq!(done as u64, n * steps as u64);
}

/// Finding 9: over gRPC, integers above i64::MAX arrive as doubles (Qdrant's `json_to_proto`,
/// which the stand-in reproduces); such pages are read again over REST, so the export over
/// gRPC stages them exactly, and a sync over gRPC of a REST-exported stage sees no change.
#[test]
fn grpc_reads_keep_integers_above_i64_max_exact() {
    let c = format!("cutbig{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let big = json!({"u": u64::MAX, "h": 9_223_372_036_854_775_808u64, "nested": {"x": [u64::MAX]}, "f": 1.5});
    upsert(
        &c,
        (1..=20)
            .map(|i| {
                point(
                    i,
                    0.5,
                    if i % 4 == 0 {
                        big.clone()
                    } else {
                        json!({"n": i})
                    },
                )
            })
            .collect(),
    );
    let grpc = standin("Q2Z_QDRANT_GRPC_URL");
    let over_grpc = tempfile::tempdir().unwrap();
    stage_export(
        over_grpc.path(),
        "cut_",
        &[&c],
        &["--transport", "grpc", "--grpc-url", &grpc],
    );
    let (rows, _, n) = staged_rows(over_grpc.path(), &c);
    assert_eq!(n, 20);
    let meta = &rows["4"]["$meta"];
    assert_eq!(meta["u"].to_string(), "18446744073709551615", "{meta}");
    assert_eq!(meta["h"].to_string(), "9223372036854775808", "{meta}");
    assert_eq!(
        meta["nested"]["x"][0].to_string(),
        "18446744073709551615",
        "{meta}"
    );
    // A REST export, imported, then synced over gRPC: nothing changed.
    let over_rest = tempfile::tempdir().unwrap();
    stage_export(over_rest.path(), "cut_", &[&c], &["--transport", "rest"]);
    let (code, out, err) = import(over_rest.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, text) = sync(
        over_rest.path(),
        &c,
        &["--transport", "grpc", "--grpc-url", &grpc],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 0, 0), "{v}");
}

/// Finding 5: gRPC and REST must reach the same collection. With a gRPC URL of another server
/// (a stale `QDRANT_GRPC_URL`) holding a collection of that name, `--transport grpc` stops
/// with the fix and `auto` reads every page over REST (said in a warning), so the stage holds
/// the REST server's points and a sync's deletes follow them.
#[test]
fn a_grpc_url_of_another_server_is_never_followed() {
    let c = format!("cutother{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(
        &c,
        (1..=30).map(|i| point(i, 0.5, json!({"n": i}))).collect(),
    );
    // Another server: an empty Qdrant stand-in, then the same collection name with 3 points.
    let dir = tempfile::tempdir().unwrap();
    let (addr, grpc_addr) = (dir.path().join("addr"), dir.path().join("grpc"));
    let bin = std::path::PathBuf::from(standin("Q2Z_STANDIN_BIN")).join("qdrant-standin");
    let mut other = std::process::Command::new(bin)
        .args(["serve", "--data"])
        .arg(dir.path().join("data"))
        .arg("--addr-file")
        .arg(&addr)
        .arg("--grpc-addr-file")
        .arg(&grpc_addr)
        .env("QDRANT_STANDIN_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let read = |p: &Path| {
        for _ in 0..200 {
            if let Ok(s) = std::fs::read_to_string(p)
                && !s.trim().is_empty()
            {
                return format!("http://{}", s.trim());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the second stand-in did not start");
    };
    let (other_rest, other_grpc) = (read(&addr), read(&grpc_addr));
    let client = reqwest::blocking::Client::new();
    let call = |m: reqwest::Method, path: &str, body: Value| {
        let r = client
            .request(m, format!("{other_rest}{path}"))
            .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    };
    call(
        reqwest::Method::PUT,
        &format!("/collections/{c}"),
        json!({"vectors": {"size": 4, "distance": "Dot"}}),
    );
    call(
        reqwest::Method::PUT,
        &format!("/collections/{c}/points?wait=true"),
        json!({"points": (1..=3).map(|i| point(i, 0.9, json!({"other": true}))).collect::<Vec<_>>()}),
    );
    let stage = tempfile::tempdir().unwrap();
    let (code, out, err) = live_export(
        stage.path(),
        &[&c],
        &["--transport", "grpc", "--grpc-url", &other_grpc],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("not the same server") && err.contains("--grpc-url"),
        "{err}"
    );
    let (code, out, err) = live_export(
        stage.path(),
        &[&c],
        &[
            "--transport",
            "auto",
            "--grpc-url",
            &other_grpc,
            "--target-prefix",
            "cut_",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (rows, _, n) = staged_rows(stage.path(), &c);
    assert_eq!(n, 30, "the REST server's points");
    assert_eq!(rows["1"]["$meta"]["n"], 1);
    let _ = other.kill();
    let _ = other.wait();
}

/// Finding 10: deletes rest on a second look-up. A scroll answered by a replica that has not
/// applied some points yet leaves them out (the stand-in's `stale_replica` fault); the sync
/// looks the missing ids up again, finds them, and deletes nothing.
#[test]
fn ids_a_stale_replica_leaves_out_are_not_deleted() {
    let (c, stage, _target) = migrated("cutstale", 40, &["--ranges", "2"], "upsert");
    upsert(&c, vec![point(5, 0.9, json!({"n": 5, "changed": true}))]);
    let mut stale = serde_json::Map::new();
    stale.insert(c.clone(), json!([5, 6, 33]));
    let faults = faults_lock();
    qdrant_faults(json!({"stale_replica": stale}));
    let (code, v, text) = sync(stage.path(), &c, &[]);
    qdrant_faults(json!({}));
    drop(faults);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["deleted"], 0, "{v}");
    assert_eq!(v[0]["delete_checks_kept"], 3, "{v}");
    assert_eq!(
        v[0]["updated"], 1,
        "the point the look-up found changed is sent: {v}"
    );
    assert_equal(&c, &format!("cut_{c}"), "after a sync over a stale replica");
}

/// Finding 10: a pass whose first range failed is unfinished, for verify too.
#[test]
fn a_pass_stopped_before_its_first_range_is_unfinished() {
    let (c, stage, _target) = migrated("cutfirst", 20, &[], "upsert");
    upsert(&c, vec![point(3, 0.9, json!({"n": 3, "changed": true}))]);
    // Killed while the only range is read: the pass began, no range is done.
    assert!(
        kill_sync_midway(stage.path(), &c, &[], 1500, 1000),
        "the sync ended before the kill; make it slower"
    );
    let (code, out, _) = verify(stage.path(), &[]);
    assert_eq!(code, 3, "an unfinished pass fails verify: {out}");
    assert!(out.contains("stopped part-way"), "{out}");
    let (code, _, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    let (code, out, err) = verify(stage.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Finding 9: a payload nested deeper than prost's decoding limit (100 messages: ~33 JSON
/// levels) fails a gRPC page; that page is read over REST, and the export stages it exactly.
#[test]
fn payloads_nested_deeper_than_grpc_decodes_are_read_over_rest() {
    let c = format!("cutdeep{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let mut deep = json!({"leaf": 1});
    for i in 0..40 {
        deep = json!({format!("l{i}"): deep});
    }
    upsert(
        &c,
        (1..=12)
            .map(|i| {
                point(
                    i,
                    0.5,
                    if i == 7 {
                        json!({"deep": deep})
                    } else {
                        json!({"n": i})
                    },
                )
            })
            .collect(),
    );
    let grpc = standin("Q2Z_QDRANT_GRPC_URL");
    let stage = tempfile::tempdir().unwrap();
    stage_export(
        stage.path(),
        "cut_",
        &[&c],
        &["--transport", "grpc", "--grpc-url", &grpc],
    );
    let (rows, _, n) = staged_rows(stage.path(), &c);
    assert_eq!(n, 12);
    assert_eq!(rows["7"]["$meta"]["deep"], deep);
}
