//! The fixture generator: collections that cover every mapping case of design §5, built with
//! real Qdrant storage (qdrant-edge) and written as collection snapshot files.

use crate::store;
use q2z::source::snapshot::SnapshotCollection;
use qdrant_edge::{
    EdgeConfig, EdgeShard, PointInsertOperations, PointOperations, PointStructPersisted,
    UpdateOperation,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;

fn dense(rng: &mut StdRng, dim: usize) -> Value {
    json!(
        (0..dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    )
}

fn payload(rng: &mut StdRng, i: u64) -> Value {
    let mut p = json!({
        "title": format!("doc {i} — naïve café 東京 🚀"),
        "n": i,
        "score": rng.random_range(0.0..100.0f64),
        "flag": i.is_multiple_of(2),
        "nested": {"a": {"b": i, "c": [1, null, {"d": null}]}, "empty": {}},
        "tags": (0..(i % 4)).map(|t| format!("t{t}")).collect::<Vec<_>>(),
        "dotted.key": "dot",
        "spaced key": "space",
        "big": 4611686018427388019u64,
        "neg": -(i as i64),
    });
    match i % 7 {
        0 => p["maybe"] = Value::Null,
        1 => p["id"] = json!(format!("payload-id-{i}")),
        2 => p["vector"] = json!([1, 2, 3]),
        3 => p["$meta"] = json!({"inner": true}),
        4 => p = json!({}),
        5 => p["id_"] = json!("already escaped-looking"),
        _ => {}
    }
    p
}

/// Writes a built collection as `<out>/<file>`, a collection snapshot.
fn write_snapshot(coll: SnapshotCollection, out: &Path, file: &str) -> Result<(), String> {
    let served = store::Served { coll, origin: None };
    store::write_collection_snapshot(&served, &out.join(file)).map_err(|e| e.to_string())
}

/// The shard config of a create body; `id_tracker_on_disk`: optimized segments keep
/// qdrant-edge's disk-resident id mappings.
fn edge_config(create: &Value, id_tracker_on_disk: bool) -> Result<EdgeConfig, String> {
    let mut cfg = store::edge_config_from_create(create)?;
    if id_tracker_on_disk {
        cfg.id_tracker_memory = Some(qdrant_edge::Memory::Cold);
    }
    Ok(cfg)
}

/// Upserts a batch of points into a shard.
fn upsert(name: &str, s: &EdgeShard, batch: Vec<PointStructPersisted>) -> Result<(), String> {
    s.update(UpdateOperation::PointOperation(
        PointOperations::UpsertPoints(PointInsertOperations::PointsList(batch)),
    ))
    .map_err(|e| format!("{name}: {e}"))
}

/// Deletes points (ids as REST JSON) from a shard.
fn delete(name: &str, s: &EdgeShard, ids: &[Value]) -> Result<(), String> {
    let ids = ids
        .iter()
        .map(|d| serde_json::from_value(d.clone()).map_err(|e| format!("{name}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    s.update(UpdateOperation::PointOperation(
        PointOperations::DeletePoints { ids },
    ))
    .map_err(|e| format!("{name}: {e}"))
}

/// Runs Qdrant's optimizers on a shard, then flushes: the flush removes the segments the
/// optimizers replaced and the WAL they made redundant (both are kept until then), so the work
/// directory stays about the data's size.
fn optimize(name: &str, s: &EdgeShard) -> Result<(), String> {
    s.optimize()
        .and_then(|_| s.flush())
        .map_err(|e| format!("{name}: optimize: {e}"))
}

/// Builds one collection from a create body and points, deletes `deleted`, writes its snapshot.
fn build(
    out: &Path,
    name: &str,
    create: Value,
    shards: usize,
    points: impl IntoIterator<Item = Value>,
    deleted: Vec<Value>,
) -> Result<(), String> {
    let coll = build_shards(name, create, shards, points, deleted, Tuning::default())?;
    write_snapshot(coll, out, &format!("{name}.collection.snapshot"))
}

/// Builds a collection's shards in real Qdrant storage (point `i` goes to shard `i % shards`).
/// `tuning.optimize_every` > 0: runs Qdrant's optimizers on a shard each time it has taken that
/// many more points, and at the end, as a server does in the background: full appendable
/// segments become optimized (non-appendable) ones of at most the optimizer's maximum size.
fn build_shards(
    name: &str,
    create: Value,
    shards: usize,
    points: impl IntoIterator<Item = Value>,
    deleted: Vec<Value>,
    tuning: Tuning,
) -> Result<SnapshotCollection, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cfg = edge_config(&create, tuning.id_tracker_on_disk)?;
    let optimize_every = tuning.optimize_every;
    let mut edge = Vec::new();
    for i in 0..shards {
        edge.push(
            EdgeShard::new(&work.path().join(format!("s{i}")), cfg.clone())
                .map_err(|e| e.to_string())?,
        );
    }
    // Points go in 500 at a time per shard as they are produced, so a bulk collection of any
    // size never sits in memory as JSON.
    let mut by_shard: Vec<Vec<PointStructPersisted>> = (0..shards).map(|_| Vec::new()).collect();
    // Points each shard took since its optimizers last ran.
    let mut taken = vec![0usize; shards];
    for (i, p) in points.into_iter().enumerate() {
        let ps: PointStructPersisted =
            serde_json::from_value(p).map_err(|e| format!("{name}: {e}"))?;
        let k = i % shards;
        by_shard[k].push(ps);
        if by_shard[k].len() == 500 {
            upsert(name, &edge[k], std::mem::take(&mut by_shard[k]))?;
            taken[k] += 500;
            if optimize_every > 0 && taken[k] >= optimize_every {
                optimize(name, &edge[k])?;
                taken[k] = 0;
            }
        }
    }
    for (s, rest) in edge.iter().zip(by_shard) {
        if !rest.is_empty() {
            upsert(name, s, rest)?;
        }
        if optimize_every > 0 {
            optimize(name, s)?;
        }
        if !deleted.is_empty() {
            delete(name, s, &deleted)?;
        }
        s.flush().map_err(|e| e.to_string())?;
    }
    let mut config_json = q2z::source::snapshot::edge_config_to_qdrant(&cfg);
    config_json["params"]["shard_number"] = json!(shards);
    SnapshotCollection::from_shards(name, config_json, edge, work).map_err(|e| e.to_string())
}

/// Custom sharding (`sharding_method: custom`): three shard keys, two strings and an integer,
/// a shard each; point `i` is in the shard of key `i % 3`.
fn build_custom(out: &Path, rng: &mut StdRng) -> Result<(), String> {
    let pts: Vec<Value> = (1..=90u64)
        .map(|i| json!({"id": i, "vector": dense(rng, 4), "payload": {"n": i}}))
        .collect();
    let create = json!({"vectors": {"size": 4, "distance": "Cosine"}});
    let mut coll = build_shards("gen_custom", create, 3, pts, vec![], Tuning::default())?;
    coll.config_json["params"]["sharding_method"] = json!("custom");
    coll.config_json["params"]["shard_number"] = json!(1);
    coll.shard_keys = vec![
        Some(json!("tenant_a")),
        Some(json!("tenant_b")),
        Some(json!(7)),
    ];
    write_snapshot(coll, out, "gen_custom.collection.snapshot")
}

/// Points of the optimized collections, and which of them were updated or deleted afterwards.
const OPTIMIZED_POINTS: u64 = 3000;
/// `id % 7 == 0` were upserted again (payload `v: 2`) after the optimizers ran.
const OPTIMIZED_UPDATED_EVERY: u64 = 7;
/// `id % 11 == 0` were deleted after the optimizers ran.
const OPTIMIZED_DELETED_EVERY: u64 = 11;

/// A collection laid out as a busy server leaves one: optimized (non-appendable) segments built
/// by Qdrant's optimizers, then updates and deletes on top — an updated point's old version stays
/// in its optimized segment (marked deleted) and the new one goes to the appendable segment.
/// Payloads: `{"n": id, "v": 1}`, `v: 2` once updated. `id_tracker_on_disk`: the optimized
/// segments keep qdrant-edge's disk-resident id mappings instead of Qdrant 1.19's in-RAM ones.
fn build_optimized(
    out: &Path,
    rng: &mut StdRng,
    name: &str,
    id_tracker_on_disk: bool,
) -> Result<(), String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 0}});
    let cfg = edge_config(&create, id_tracker_on_disk)?;
    let err = |e: qdrant_edge::OperationError| format!("{name}: {e}");
    let shard = EdgeShard::new(&work.path().join("s0"), cfg.clone()).map_err(err)?;
    // Small thresholds, so that 3,000 small points make several optimized segments.
    shard
        .set_optimizers_config(qdrant_edge::EdgeOptimizersConfig {
            indexing_threshold: Some(10),
            max_segment_size: Some(30),
            default_segment_number: Some(2),
            ..Default::default()
        })
        .map_err(err)?;
    let upsert_json = |pts: Vec<Value>| -> Result<(), String> {
        let batch = pts
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<PointStructPersisted>, _>>()
            .map_err(|e| format!("{name}: {e}"))?;
        upsert(name, &shard, batch)
    };
    for start in (1..=OPTIMIZED_POINTS).step_by(500) {
        upsert_json(
            (start..(start + 500).min(OPTIMIZED_POINTS + 1))
                .map(|i| json!({"id": i, "vector": dense(rng, 4), "payload": {"n": i, "v": 1}}))
                .collect(),
        )?;
        if (start + 499).is_multiple_of(1000) {
            optimize(name, &shard)?;
        }
    }
    optimize(name, &shard)?;
    upsert_json(
        (1..=OPTIMIZED_POINTS)
            .filter(|i| i.is_multiple_of(OPTIMIZED_UPDATED_EVERY))
            .map(|i| json!({"id": i, "vector": dense(rng, 4), "payload": {"n": i, "v": 2}}))
            .collect(),
    )?;
    let ids: Vec<Value> = (1..=OPTIMIZED_POINTS)
        .filter(|i| i.is_multiple_of(OPTIMIZED_DELETED_EVERY))
        .map(|i| json!(i))
        .collect();
    delete(name, &shard, &ids)?;
    shard.flush().map_err(err)?;
    let config_json = q2z::source::snapshot::edge_config_to_qdrant(&cfg);
    let coll = SnapshotCollection::from_shards(name, config_json, vec![shard], work)
        .map_err(|e| e.to_string())?;
    write_snapshot(coll, out, &format!("{name}.collection.snapshot"))
}

/// Peers of the generated cluster, and the shards each holds (4 shards, each on 2 nodes).
pub const CLUSTER_NODES: [(u64, &[u32]); 3] =
    [(1111, &[0, 1]), (2222, &[1, 2, 3]), (3333, &[2, 3, 0])];

/// A 4-shard collection with replication 2, as the collection snapshots of three nodes
/// (`cluster/gen_cluster-<peer>-<date>.snapshot`), a fourth node (4444) holding a stale replica
/// of shard 1 (25 points fewer), and the whole collection in one file
/// (`cluster/whole/gen_cluster.collection.snapshot`) to compare with.
fn build_cluster(out: &Path, rng: &mut StdRng) -> Result<(), String> {
    let dir = out.join("cluster");
    std::fs::create_dir_all(dir.join("whole")).map_err(|e| e.to_string())?;
    let pts: Vec<Value> = (1..=1000u64)
        .map(|i| json!({"id": i, "vector": dense(rng, 6), "payload": payload(rng, i)}))
        .collect();
    let create = json!({"vectors": {"size": 6, "distance": "Dot"}});
    // A stale replica of shard 1 (ids ≡ 2 mod 4) on a fourth node: 25 of its points missing.
    let stale_ids: Vec<Value> = (901..=1000u64)
        .filter(|i| i % 4 == 2)
        .map(|i| json!(i))
        .collect();
    let stale = build_shards(
        "gen_cluster",
        create.clone(),
        4,
        pts.clone(),
        stale_ids,
        Tuning::default(),
    )?;
    let coll = build_shards("gen_cluster", create, 4, pts, vec![], Tuning::default())?;
    let mut holders: Vec<Vec<u64>> = vec![Vec::new(); 4];
    for (peer, shards) in CLUSTER_NODES {
        for s in shards {
            holders[*s as usize].push(peer);
        }
    }
    for (peer, _) in CLUSTER_NODES {
        let f = dir.join(format!("gen_cluster-{peer}-2026-11-29-10-00-00.snapshot"));
        store::write_node_snapshot(&coll, peer, &holders, &f).map_err(|e| e.to_string())?;
    }
    let mut with_stale = holders.clone();
    with_stale[1].push(4444);
    let f = dir.join("gen_cluster-4444-2026-11-29-10-00-00.snapshot");
    store::write_node_snapshot(&stale, 4444, &with_stale, &f).map_err(|e| e.to_string())?;
    write_snapshot(coll, &dir, "whole/gen_cluster.collection.snapshot")
}

/// How the shards' segments are laid out.
#[derive(Debug, Clone, Copy, Default)]
struct Tuning {
    /// Run the optimizers every this many points per shard (0: never).
    optimize_every: usize,
    /// Optimized segments keep their id mappings in qdrant-edge's disk-resident format
    /// (`EdgeConfig::id_tracker_memory = Cold`) instead of Qdrant 1.19's in-RAM one.
    id_tracker_on_disk: bool,
}

/// The generated `bulk` collection (benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulk {
    /// Points (0: no bulk collection).
    pub points: usize,
    /// Dimension of its unnamed float32 vector.
    pub dim: usize,
    /// Shards.
    pub shards: usize,
    /// Payloads without the ~800-byte text field (~300 bytes of JSON each).
    pub small_payloads: bool,
    /// Run Qdrant's optimizers every this many points per shard (0: never; all points stay in
    /// one appendable segment per shard). HNSW is off (`m: 0`) then, so that indexing does not
    /// dominate the generation; exports never read the graph.
    pub optimize_every: usize,
    /// Optimized segments with qdrant-edge's disk-resident id tracker (`id_tracker.i2e`/`.e2i`,
    /// not a format Qdrant 1.19 writes): shows what an export costs when the id mappings stay
    /// on disk.
    pub id_tracker_on_disk: bool,
}

/// Writes every generated collection into `out`.
pub fn generate(out: &Path, bulk: Bulk) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(7);
    // Integer ids, unnamed float32 vector, rich payloads, deleted points, two shards.
    let pts: Vec<Value> = (1..=600u64)
        .map(|i| json!({"id": i, "vector": dense(&mut rng, 8), "payload": payload(&mut rng, i)}))
        .collect();
    build(
        out,
        "gen_ints",
        json!({"vectors": {"size": 8, "distance": "Cosine"}}),
        2,
        pts,
        (1..=600u64).step_by(37).map(|i| json!(i)).collect(),
    )?;
    // UUID, mixed and above-2^63 ids, Euclid.
    let mut pts = Vec::new();
    for i in 0..200u64 {
        let id = match i % 4 {
            0 => json!(uuid::Uuid::from_u128(rng.random()).hyphenated().to_string()),
            1 => json!(i),
            2 => json!(u64::MAX - i),
            _ => json!((1u64 << 63) + i),
        };
        pts.push(json!({"id": id, "vector": dense(&mut rng, 4), "payload": payload(&mut rng, i)}));
    }
    build(
        out,
        "gen_mixed_ids",
        json!({"vectors": {"size": 4, "distance": "Euclid"}}),
        1,
        pts,
        vec![],
    )?;
    // Named vectors: float32, float16, uint8, sparse; some points lack some vectors.
    let pts: Vec<Value> = (1..=300u64)
        .map(|i| {
            let mut v = json!({"f32": dense(&mut rng, 6), "f16": dense(&mut rng, 4), "u8": (0..5).map(|_| rng.random_range(0..=255u8) as f32).collect::<Vec<_>>()});
            if i % 5 != 0 {
                let mut idx: Vec<u32> = (0..(i % 9 + 1)).map(|_| rng.random_range(0..30000)).collect();
                idx.sort();
                idx.dedup();
                let vals: Vec<f32> = idx.iter().map(|_| rng.random_range(0.0..3.0)).collect();
                v["sp"] = json!({"indices": idx, "values": vals});
            }
            if i % 11 == 0 {
                v.as_object_mut().expect("obj").remove("f16");
            }
            json!({"id": i, "vector": v, "payload": payload(&mut rng, i)})
        })
        .collect();
    build(
        out,
        "gen_named",
        json!({"vectors": {"f32": {"size": 6, "distance": "Dot"}, "f16": {"size": 4, "distance": "Cosine", "datatype": "float16"}, "u8": {"size": 5, "distance": "Euclid", "datatype": "uint8"}}, "sparse_vectors": {"sp": {"modifier": "idf"}}, "hnsw_config": {"m": 24, "ef_construct": 150}}),
        1,
        pts,
        vec![json!(7), json!(8)],
    )?;
    // A multivector.
    let pts: Vec<Value> = (1..=50u64).map(|i| json!({"id": i, "vector": {"colbert": (0..(i % 3 + 1)).map(|_| dense(&mut rng, 4)).collect::<Vec<_>>(), "plain": dense(&mut rng, 4)}, "payload": {"i": i}})).collect();
    build(
        out,
        "gen_multivector",
        json!({"vectors": {"colbert": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}, "plain": {"size": 4, "distance": "Dot"}}}),
        1,
        pts,
        vec![],
    )?;
    // Manhattan distance.
    let pts: Vec<Value> = (1..=20u64)
        .map(|i| json!({"id": i, "vector": dense(&mut rng, 3), "payload": {}}))
        .collect();
    build(
        out,
        "gen_manhattan",
        json!({"vectors": {"size": 3, "distance": "Manhattan"}}),
        1,
        pts,
        vec![],
    )?;
    // More than 4 named vectors.
    let names = ["a", "b", "c", "d", "e"];
    let pts: Vec<Value> = (1..=10u64).map(|i| json!({"id": i, "vector": names.iter().map(|n| (n.to_string(), dense(&mut rng, 2))).collect::<serde_json::Map<_, _>>(), "payload": {}})).collect();
    build(
        out,
        "gen_five_vectors",
        json!({"vectors": names.iter().map(|n| (n.to_string(), json!({"size": 2, "distance": "Dot"}))).collect::<serde_json::Map<_, _>>()}),
        1,
        pts,
        vec![],
    )?;
    // Every point has a tenant (partition-key candidate) and a rank.
    let pts: Vec<Value> = (1..=120u64).map(|i| json!({"id": i, "vector": dense(&mut rng, 8), "payload": {"tenant": format!("tenant-{}", i % 5), "rank": i, "note": if i % 3 == 0 { Value::Null } else { json!("n") }}})).collect();
    build(
        out,
        "gen_tenants",
        json!({"vectors": {"size": 8, "distance": "Cosine"}}),
        1,
        pts,
        vec![],
    )?;
    // A payload over 64 KiB.
    let pts: Vec<Value> = (1..=5u64).map(|i| json!({"id": i, "vector": dense(&mut rng, 2), "payload": {"blob": if i == 3 { "x".repeat(70_000) } else { "small".into() }}})).collect();
    build(
        out,
        "gen_big_payload",
        json!({"vectors": {"size": 2, "distance": "Dot"}}),
        1,
        pts,
        vec![],
    )?;
    // For the kill -9 test (served slowly on request).
    let pts: Vec<Value> = (1..=1500u64).map(|i| json!({"id": i * 3, "vector": dense(&mut rng, 16), "payload": payload(&mut rng, i)})).collect();
    build(
        out,
        "gen_kill",
        json!({"vectors": {"size": 16, "distance": "Cosine"}}),
        1,
        pts,
        vec![],
    )?;
    build_cluster(out, &mut rng)?;
    build_custom(out, &mut rng)?;
    build_optimized(out, &mut rng, "gen_optimized", false)?;
    build_optimized(out, &mut rng, "gen_optimized_disk", true)?;
    // Empty.
    build(
        out,
        "gen_empty",
        json!({"vectors": {"size": 2, "distance": "Cosine"}}),
        1,
        vec![],
        vec![],
    )?;
    if bulk.points > 0 {
        let pts = (1..=bulk.points as u64).map(|i| {
            let mut p = payload(&mut rng, i);
            if !bulk.small_payloads {
                p["text"] = json!("lorem ipsum dolor sit amet ".repeat(30));
            }
            json!({"id": i, "vector": dense(&mut rng, bulk.dim), "payload": p})
        });
        let mut create = json!({"vectors": {"size": bulk.dim, "distance": "Cosine"}});
        if bulk.optimize_every > 0 {
            create["hnsw_config"] = json!({"m": 0});
        }
        let coll = build_shards(
            "bulk",
            create,
            bulk.shards.max(1),
            pts,
            vec![],
            Tuning {
                optimize_every: bulk.optimize_every,
                id_tracker_on_disk: bulk.id_tracker_on_disk,
            },
        )?;
        write_snapshot(coll, out, "bulk.collection.snapshot")?;
    }
    Ok(())
}
