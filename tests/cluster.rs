//! Collections of a multi-node Qdrant cluster, offline: the collection snapshots of three nodes
//! (4 shards, replication 2, written with qdrant-edge by the stand-in's generator) are merged
//! shard by shard — every point exactly once, whatever the order of the files — and a shard no
//! file holds is named with the peers that hold it.

mod common;

use common::{staged_rows, standin};
use std::path::PathBuf;

fn cluster_dir() -> PathBuf {
    PathBuf::from(standin("Q2Z_GEN_FIXTURES")).join("cluster")
}

fn node(peer: u64) -> String {
    cluster_dir()
        .join(format!("gen_cluster-{peer}-2026-11-29-10-00-00.snapshot"))
        .to_string_lossy()
        .into_owned()
}

fn q2z(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(common::q2z_bin())
        .args(args)
        .env("Q2Z_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The cluster's collection exported from the one file that holds all of it (the reference).
fn export_whole() -> tempfile::TempDir {
    let whole = tempfile::tempdir().unwrap();
    let file = cluster_dir().join("whole/gen_cluster.collection.snapshot");
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        file.to_str().unwrap(),
        "--stage",
        whole.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    whole
}

#[test]
fn node_snapshots_in_any_order_stage_every_point_once() {
    let whole = export_whole();
    let (expected, _, total) = staged_rows(whole.path(), "gen_cluster");
    assert_eq!(total, 1000);
    let peers = [1111u64, 2222, 3333];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let files: Vec<String> = order.iter().map(|i| node(peers[*i])).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "export",
            "--stage",
            dir.path().to_str().unwrap(),
            "--snapshot",
        ];
        args.extend(files.iter().map(String::as_str));
        let (code, text) = q2z(&args);
        assert_eq!(code, 0, "{order:?}: {text}");
        let (rows, _, total) = staged_rows(dir.path(), "gen_cluster");
        assert_eq!(
            total, 1000,
            "{order:?}: every point once (staged_rows refuses an id twice)"
        );
        assert_eq!(
            rows, expected,
            "{order:?}: the same rows as the whole collection"
        );
        let m = q2z::stage::manifest::Manifest::load(dir.path())
            .unwrap()
            .unwrap();
        let w = m.collections["gen_cluster"].warnings.join("\n");
        assert_eq!(
            w.matches("its replicas agree").count(),
            4,
            "each shard's replicas are counted and compared: {w}"
        );
    }
}

#[test]
fn a_shard_in_no_file_is_named_with_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap();
    let (code, text) = q2z(&["export", "--snapshot", &node(1111), "--stage", stage]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("2 of 4 shards are in none of the files given")
            && text.contains("shard 2 (held by peer 2222, 3333)")
            && text.contains("shard 3 (held by peer 2222, 3333)")
            && text.contains("--allow-missing-shards"),
        "{text}"
    );
    assert!(!dir.path().join("manifest.json").exists(), "nothing staged");
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &node(1111),
        "--stage",
        stage,
        "--allow-missing-shards",
    ]);
    assert_eq!(code, 0, "{text}");
    let (_, _, total) = staged_rows(dir.path(), "gen_cluster");
    assert_eq!(total, 500, "shards 0 and 1 hold points i % 4 == 0, 1");
    let m = q2z::stage::manifest::Manifest::load(dir.path())
        .unwrap()
        .unwrap();
    assert!(
        m.collections["gen_cluster"]
            .warnings
            .iter()
            .any(|w| w.contains("exported without them"))
    );
}

#[test]
fn plan_shows_which_file_each_shard_comes_from() {
    let (code, text) = q2z(&["plan", "--snapshot", &node(2222), &node(1111), &node(3333)]);
    assert_eq!(code, 0, "{text}");
    for (shard, peer) in [(0, 1111), (1, 2222), (2, 2222), (3, 2222)] {
        assert!(
            text.contains(&format!("shard {shard} ← {}", node(peer))),
            "shard {shard}: {text}"
        );
    }
}

#[test]
fn unequal_replicas_are_named_and_the_fuller_one_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap();
    let (stale, a, b, c) = (node(4444), node(1111), node(2222), node(3333));
    let (code, text) = q2z(&["export", "--stage", stage, "--snapshot", &stale, &a, &b, &c]);
    assert_eq!(code, 0, "{text}");
    let (_, _, total) = staged_rows(dir.path(), "gen_cluster");
    assert_eq!(total, 1000, "the stale replica is not the one read");
    let m = q2z::stage::manifest::Manifest::load(dir.path())
        .unwrap()
        .unwrap();
    let w = m.collections["gen_cluster"].warnings.join("\n");
    assert!(
        w.contains(&format!("shard 1: its replicas differ (250 points in {a}, 250 points in {b}, 225 points in {stale})"))
            && w.contains(&format!("read the one with the most points, from {a}")),
        "{w}"
    );
    // --replicas first reads the first file given, as documented (and says so).
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap();
    let (code, text) = q2z(&[
        "export",
        "--stage",
        stage,
        "--replicas",
        "first",
        "--snapshot",
        &stale,
        &a,
        &b,
        &c,
    ]);
    assert_eq!(code, 0, "{text}");
    let (_, _, total) = staged_rows(dir.path(), "gen_cluster");
    assert_eq!(total, 975);
    let m = q2z::stage::manifest::Manifest::load(dir.path())
        .unwrap()
        .unwrap();
    assert!(
        m.collections["gen_cluster"]
            .warnings
            .iter()
            .any(|w| w.contains("--replicas first"))
    );
}

/// Runs `export --part I/N` for every I at once (as N machines would), returns the stages.
fn export_parts(base: &std::path::Path, n: usize, files: &[String]) -> Vec<String> {
    let dirs: Vec<String> = (0..n)
        .map(|i| {
            base.join(format!("n{n}-part{i}"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut args = vec![
                "export".to_string(),
                "--stage".into(),
                d.clone(),
                "--part".into(),
                format!("{i}/{n}"),
                "--snapshot".into(),
            ];
            args.extend(files.iter().cloned());
            std::process::Command::new(common::q2z_bin())
                .args(args)
                .env("Q2Z_LOG", "warn")
                .output()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.unwrap();
        assert!(
            out.status.success(),
            "part {i}/{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dirs
}

fn merge(parts: &[String], into: &std::path::Path) -> (i32, String) {
    let mut args = vec!["stage", "merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["--into", into.to_str().unwrap()]);
    q2z(&args)
}

#[test]
fn parts_of_node_snapshots_merge_into_the_rows_of_one_run() {
    let whole = export_whole();
    let (expected, _, _) = staged_rows(whole.path(), "gen_cluster");
    let files: Vec<String> = [1111u64, 2222, 3333].iter().map(|p| node(*p)).collect();
    let base = tempfile::tempdir().unwrap();
    let mut stages = std::collections::BTreeMap::new();
    for n in [1usize, 3, 4] {
        let parts = export_parts(base.path(), n, &files);
        let mut shards_seen = Vec::new();
        for p in &parts {
            let m = q2z::stage::manifest::Manifest::load(std::path::Path::new(p))
                .unwrap()
                .unwrap();
            let share = m.collections["gen_cluster"].share.clone().unwrap();
            assert_eq!(share.by, q2z::stage::manifest::SplitBy::Shards, "n={n}");
            assert_eq!(share.all, [0, 1, 2, 3]);
            assert_eq!(
                m.collections["gen_cluster"].shards.len(),
                share.units.len(),
                "n={n}: a part reads only its own shards"
            );
            shards_seen.extend(share.units);
        }
        shards_seen.sort();
        assert_eq!(shards_seen, [0, 1, 2, 3], "n={n}: each shard in one part");
        let into = base.path().join(format!("merged-{n}"));
        let (code, text) = merge(&parts, &into);
        assert_eq!(code, 0, "n={n}: {text}");
        let (rows, _, total) = staged_rows(&into, "gen_cluster");
        assert_eq!(total, 1000, "n={n}: every point once");
        assert_eq!(rows, expected, "n={n}: the rows of one whole run");
        // Merging again finishes or repeats nothing; the stage stays the same.
        let (code, text) = merge(&parts, &into);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("(0 linked, 0 copied, ") && text.contains(" already there)"),
            "{text}"
        );
        stages.insert(n, parts);
    }
    // The merged stage imports like a whole export (bulk import, then verification).
    common::milvus_post(
        "collections/drop",
        serde_json::json!({"collectionName": "gen_cluster"}),
    );
    let merged = base.path().join("merged-3");
    let (code, out, err) = common::import(&merged, "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(common::target_count("gen_cluster"), 1000);
    // Parts of different splits, a part twice, a whole export: refused, nothing written.
    let mixed = [
        stages[&3][0].clone(),
        stages[&4][1].clone(),
        stages[&3][2].clone(),
    ];
    let (code, text) = merge(&mixed, &base.path().join("mixed"));
    assert!(code != 0 && text.contains("different splits"), "{text}");
    let twice = [
        stages[&3][0].clone(),
        stages[&3][0].clone(),
        stages[&3][2].clone(),
    ];
    let (code, text) = merge(&twice, &base.path().join("twice"));
    assert!(code != 0 && text.contains("given twice"), "{text}");
    let other = base.path().join("copy-of-part0");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(
        std::path::Path::new(&stages[&3][0]).join("manifest.json"),
        other.join("manifest.json"),
    )
    .unwrap();
    let again = [
        stages[&3][0].clone(),
        other.to_string_lossy().into_owned(),
        stages[&3][2].clone(),
    ];
    let (code, text) = merge(&again, &base.path().join("again"));
    assert!(code != 0 && text.contains("is part 0/3 again"), "{text}");
    let (code, text) = merge(
        &[whole.path().to_string_lossy().into_owned()],
        &base.path().join("whole"),
    );
    assert!(code != 0 && text.contains("whole export"), "{text}");
    for d in ["mixed", "twice", "again"] {
        assert!(
            !base.path().join(d).join("manifest.json").exists(),
            "{d}: nothing merged"
        );
    }
    // A part rerun with another --part is refused (its stage holds the other part).
    let (code, text) = q2z(&[
        "export",
        "--stage",
        &stages[&3][0],
        "--part",
        "1/3",
        "--snapshot",
        &files[0],
        &files[1],
        &files[2],
    ]);
    assert!(code != 0 && text.contains("holds part 0/3"), "{text}");
}

/// Custom sharding (`sharding_method: custom`, shard keys `tenant_a`, `tenant_b`, 7): each
/// point's shard key — from the snapshot's `shard_key_mapping.json` offline, from the scroll's
/// `shard_key` live — becomes the partition-key field `shard_key`, the same both ways, and the
/// target answers a filter on it.
#[test]
fn custom_shard_keys_become_a_partition_key_field_offline_and_live() {
    let file = PathBuf::from(standin("Q2Z_GEN_FIXTURES")).join("gen_custom.collection.snapshot");
    let offline = tempfile::tempdir().unwrap();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        file.to_str().unwrap(),
        "--stage",
        offline.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let (rows, mapping, total) = staged_rows(offline.path(), "gen_custom");
    assert_eq!(total, 90);
    let f = mapping
        .scalars
        .iter()
        .find(|s| s.from == q2z::transform::scalars::ScalarFrom::ShardKey)
        .expect("a shard key field");
    assert_eq!(f.field, "shard_key");
    assert!(f.partition_key && !f.nullable, "{f:?}");
    // The generator put point i into the shard of key (i - 1) % 3.
    let keys = ["tenant_a", "tenant_b", "7"];
    for (id, row) in &rows {
        let i: usize = id.parse().unwrap();
        assert_eq!(row["shard_key"], keys[(i - 1) % 3], "point {i}");
    }
    let live = tempfile::tempdir().unwrap();
    let (code, out, err) = common::live_export(live.path(), &["gen_custom"], &["--ranges", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let (live_rows, live_mapping, _) = staged_rows(live.path(), "gen_custom");
    assert_eq!(live_mapping, mapping, "the same mapping live and offline");
    assert_eq!(live_rows, rows, "the same rows live and offline");
    common::assert_rows_match(&common::scroll_all("gen_custom"), &live_rows, &live_mapping);
    // Imported, the target holds the partition key and answers a filter on it.
    common::milvus_post(
        "collections/drop",
        serde_json::json!({"collectionName": "gen_custom"}),
    );
    let (code, out, err) = common::import(offline.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let d = common::milvus_post(
        "collections/describe",
        serde_json::json!({"collectionName": "gen_custom"}),
    );
    let field = d["data"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "shard_key")
        .cloned()
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(field["partitionKey"], true, "{field}");
    let q = common::milvus_post(
        "entities/query",
        serde_json::json!({"collectionName": "gen_custom", "filter": "shard_key == \"tenant_b\"", "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
    );
    assert_eq!(q["data"][0]["count(*)"], 30, "{q}");
}

/// A stage merged from parts split by shards has ranges that overlap (each part's cover the
/// whole id space). Synced from the live collection, each id belongs to the one range that
/// staged it (new ids: the first range whose bounds hold them): the source counted once,
/// nothing upserted that did not change, the target equal to the source (cut-over integrity,
/// finding 6).
#[test]
fn a_stage_merged_from_shard_parts_syncs_like_a_whole_export() {
    // On a local disk, then on object storage (the parts merged there, the sync's held digests
    // read from the working copy): one after the other, as both use the same source collection.
    merged_parts_sync(false);
    merged_parts_sync(true);
}

/// Exports the node snapshots in two parts (split by shards: each part's ranges cover the whole
/// id space), merges them, imports, then syncs changes; `on_s3`: every stage in the S3
/// stand-in's bucket.
fn merged_parts_sync(on_s3: bool) {
    use common::*;
    use serde_json::{Value, json};
    let whole = export_whole();
    let (rows, _, _) = staged_rows(whole.path(), "gen_cluster");
    // The live collection the node snapshots were taken of (the stand-in serves none by that
    // name; another run of this test may have left one).
    let url = standin("Q2Z_QDRANT_URL");
    let _ = reqwest::blocking::Client::new()
        .delete(format!("{url}/collections/gen_cluster"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .send();
    create_collection(
        "gen_cluster",
        json!({"vectors": {"size": 6, "distance": "Dot"}, "shard_number": 4}),
    );
    // The payload back from the staged row: `$meta`, with the keys the mapping escaped because
    // they collide with a field name (`id` → `id_`, `id_` → `id__`, …) named as the source has them.
    let pts: Vec<Value> = rows
        .values()
        .map(|r| {
            let payload: serde_json::Map<String, Value> = r["$meta"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let reserved = ["id", "vector", "$meta"].contains(&k.trim_end_matches('_'));
                    let k = if reserved && k.ends_with('_') {
                        &k[..k.len() - 1]
                    } else {
                        k
                    };
                    (k.to_string(), v.clone())
                })
                .collect();
            json!({"id": r["id"].as_u64().unwrap(), "vector": r["vector"], "payload": payload})
        })
        .collect();
    for part in pts.chunks(250) {
        upsert("gen_cluster", part.to_vec());
    }
    let base = tempfile::tempdir().unwrap();
    let bucket = standin("Q2Z_S3_BUCKET");
    let root = if on_s3 {
        format!("s3://{bucket}/stages/merged-{}", rand::random::<u32>())
    } else {
        base.path().to_string_lossy().into_owned()
    };
    // Where a stage's files are on this disk (s3s-fs keeps each object as a file).
    let on_disk = |s: &str| match s.strip_prefix("s3://") {
        Some(key) => PathBuf::from(standin("Q2Z_S3_ROOT")).join(key),
        None => PathBuf::from(s),
    };
    let files: Vec<String> = [1111u64, 2222, 3333].iter().map(|p| node(*p)).collect();
    let mut parts = Vec::new();
    for i in 0..2 {
        let d = format!("{root}/p{i}");
        let mut a = vec!["export", "--stage", &d, "--target-prefix", "f6_"];
        let part = format!("{i}/2");
        a.extend(["--part", &part, "--snapshot"]);
        a.extend(files.iter().map(String::as_str));
        let (code, out, err) = run_q2z(&a);
        assert_eq!(code, 0, "{out}{err}");
        parts.push(d);
    }
    let merged = format!("{root}/merged");
    let into = std::path::Path::new(&merged);
    let mut a = vec!["stage", "merge"];
    a.extend(parts.iter().map(String::as_str));
    a.extend(["--into", &merged]);
    let (code, out, err) = run_q2z(&a);
    assert_eq!(code, 0, "{out}{err}");
    let m = q2z::stage::manifest::Manifest::load(&on_disk(&merged))
        .unwrap()
        .unwrap();
    let e = &m.collections["gen_cluster"];
    assert!(
        e.ranges.iter().filter(|r| r.start.is_none()).count() > 1,
        "ranges overlap: {:?}",
        e.ranges
    );
    milvus_post(
        "collections/drop",
        json!({"collectionName": "f6_gen_cluster"}),
    );
    let (code, out, err) = import(into, "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    // Nothing changed yet: nothing to do. Small windows: the other ranges' ids are read a
    // window at a time beside each range's (memory of a window, not of the collection).
    let (code, v, text) = sync(into, "gen_cluster", &["--diff-window", "13"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v[0]["source_points"], 1000, "each point counted once: {v}");
    assert_eq!(counts(&v), (0, 0, 0), "{v}");
    // Changes: updates, deletes, new ids.
    let changed: Vec<Value> = pts[..10]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["payload"]["changed"] = json!(true);
            p
        })
        .collect();
    upsert("gen_cluster", changed);
    let gone: Vec<u64> = pts[10..15]
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    qdrant(
        reqwest::Method::POST,
        "/collections/gen_cluster/points/delete?wait=true",
        json!({"points": gone}),
    );
    upsert(
        "gen_cluster",
        (0..5).map(|i| json!({"id": 900_000 + i, "vector": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "payload": {"new": i}})).collect(),
    );
    let (code, v, text) = sync(into, "gen_cluster", &["--diff-window", "37"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (5, 10, 5), "{v}");
    assert_eq!(v[0]["target_rows"], 1000, "{v}");
    let d = target_vs_source("gen_cluster", "f6_gen_cluster");
    assert!(d.is_empty(), "{d:#?}");
    let (code, out, err) = verify(into, &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}
