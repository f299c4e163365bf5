//! Offline export of the real Qdrant 1.19 snapshots: every staged value equals the server's JSON.

mod common;

use common::*;
use q2z::export::{ExportOptions, export};
use q2z::source::SharedSource;
use q2z::source::snapshot::open_snapshot;
use q2z::stage::manifest::{Manifest, SourceInfo};
use q2z::stage::reader::Row;
use std::sync::Arc;

fn export_snapshot(file: &str, name: &str, ranges: usize) -> tempfile::TempDir {
    export_snapshot_with(file, name, ranges, true)
}

fn export_snapshot_with(
    file: &str,
    name: &str,
    ranges: usize,
    compress_vectors: bool,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    let snap = open_snapshot(
        &fixtures().join(file),
        Some(name),
        &dir.path().join("scratch"),
    )
    .unwrap();
    let sources: Vec<SharedSource> = vec![Arc::new(snap)];
    let opts = ExportOptions {
        ranges,
        workers: 2,
        page_size: 40,
        quiet: true,
        compress_vectors,
        ..Default::default()
    };
    let stage = q2z::stage::Stage::open(&stage, "test").unwrap();
    let reports = export(
        &stage,
        &sources,
        SourceInfo::Snapshot { files: vec![] },
        &opts,
    )
    .unwrap();
    assert_eq!(reports[0].staged_rows, reports[0].source_count_at_start);
    dir
}

#[test]
fn collection_snapshots_match_server_json() {
    for (c, ranges) in [("fx_named", 3), ("fx_uuid_mixed", 2), ("fx_empty", 1)] {
        let dir = export_snapshot(&format!("{c}.collection.snapshot"), c, ranges);
        let (rows, mapping, total) = staged_rows(&dir.path().join("stage"), c);
        let points = fixture_points(c);
        assert_eq!(total as usize, points.len(), "{c}: staged rows");
        assert_rows_match(&points, &rows, &mapping);
    }
}

#[test]
fn vector_columns_compressed_or_not_hold_the_same_values() {
    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let c = "fx_named";
    for compress in [false, true] {
        let dir = export_snapshot_with(&format!("{c}.collection.snapshot"), c, 2, compress);
        let stage = dir.path().join("stage");
        let (rows, mapping, _) = staged_rows(&stage, c);
        assert_rows_match(&fixture_points(c), &rows, &mapping);
        let m = Manifest::load(&stage).unwrap().unwrap();
        let mut vector_columns = 0;
        for chunk in &m.collections[c].chunks {
            let f = std::fs::File::open(stage.join(&chunk.file)).unwrap();
            let r = SerializedFileReader::new(f).unwrap();
            for rg in r.metadata().row_groups() {
                for col in rg.columns() {
                    let path = col.column_path().string();
                    let zstd = matches!(col.compression(), Compression::ZSTD(_));
                    if path.ends_with(".list.item") {
                        vector_columns += 1;
                        assert_eq!(zstd, compress, "{path} with compress_vectors={compress}");
                    } else {
                        assert!(zstd, "{path}");
                    }
                }
            }
        }
        assert!(vector_columns > 0, "no vector column seen");
    }
}

#[test]
fn shard_snapshots_match_server_json() {
    for c in ["fx_named", "fx_uuid_mixed"] {
        let dir = export_snapshot(&format!("{c}.shard0.snapshot"), c, 2);
        let (rows, mapping, _) = staged_rows(&dir.path().join("stage"), c);
        assert_rows_match(&fixture_points(c), &rows, &mapping);
    }
}

#[test]
fn mapping_follows_design_defaults() {
    let dir = export_snapshot("fx_uuid_mixed.collection.snapshot", "fx_uuid_mixed", 1);
    let m = Manifest::load(&dir.path().join("stage")).unwrap().unwrap();
    let e = &m.collections["fx_uuid_mixed"];
    // UUIDs and 2^63+5 force a VarChar key; uint8 becomes FloatVector with L2.
    assert_eq!(e.mapping.id_kind, q2z::transform::mapping::IdKind::VarChar);
    assert_eq!(e.mapping.vectors[0].field, "vector");
    assert_eq!(e.mapping.vectors[0].metric, "L2");
    let dir = export_snapshot("fx_named.collection.snapshot", "fx_named", 1);
    let m = Manifest::load(&dir.path().join("stage")).unwrap().unwrap();
    let e = &m.collections["fx_named"];
    assert_eq!(e.mapping.id_kind, q2z::transform::mapping::IdKind::Int64);
    let kinds: Vec<_> = e
        .mapping
        .vectors
        .iter()
        .map(|v| (v.field.as_str(), v.kind.milvus_name(), v.metric.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("image", "Float16Vector", "IP"),
            ("text", "FloatVector", "COSINE"),
            ("keywords", "SparseFloatVector", "IP")
        ]
    );
    assert_eq!(e.mapping.vectors[1].index_params["M"], 20);
    assert_eq!(e.mapping.vectors[1].index_params["efConstruction"], 128);
}

#[test]
fn unpack_dirs_of_killed_runs_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    // A pid that no process has (pid_max is at most 4,194,304) and pid 1, which always runs.
    let dead = scratch.join("q2z-snap-4194399-abc");
    let live = scratch.join("q2z-snap-1-abc");
    let other = scratch.join("not-ours");
    for d in [&dead, &live, &other] {
        std::fs::create_dir_all(d.join("segments")).unwrap();
        std::fs::write(d.join("segments/x"), b"left over").unwrap();
    }
    let snap = open_snapshot(
        &fixtures().join("fx_named.shard0.snapshot"),
        Some("fx_named"),
        &scratch,
    )
    .unwrap();
    assert!(!dead.exists(), "the dead run's unpacked data is removed");
    assert!(live.exists() && other.exists(), "others are left alone");
    drop(snap);
    let ours: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("q2z-snap-{}-", std::process::id())))
        .collect();
    assert!(ours.is_empty(), "closing removes this run's data: {ours:?}");
}

/// A payload field of a staged row: a column of its own, or a key of the dynamic field.
fn payload_field(row: &Row, key: &str) -> Option<serde_json::Value> {
    if let Some(v) = row.get(key) {
        return Some(v.clone());
    }
    match row.get("$meta")? {
        serde_json::Value::String(s) => serde_json::from_str::<serde_json::Value>(s)
            .ok()?
            .get(key)
            .cloned(),
        m => m.get(key).cloned(),
    }
}

/// Segments as a busy server leaves them (several optimized segments, then updates and deletes
/// on top; see the generator's `build_optimized`), with Qdrant 1.19's in-RAM id mappings and
/// with qdrant-edge's disk-resident ones: every live point is staged once, in its last version.
#[test]
fn optimized_segments_export_every_live_point_once_in_its_last_version() {
    let generated = std::path::PathBuf::from(standin("Q2Z_GEN_FIXTURES"));
    for (name, mapping_file) in [
        ("gen_optimized", "id_tracker.mappings"),
        ("gen_optimized_disk", "id_tracker.i2e"),
    ] {
        let file = generated.join(format!("{name}.collection.snapshot"));
        // The layout under test is there: optimized segments with that id-mapping format.
        let mut tar = tar::Archive::new(std::fs::File::open(&file).unwrap());
        let optimized = tar
            .entries()
            .unwrap()
            .filter(|e| {
                let e = e.as_ref().unwrap();
                e.path().unwrap().ends_with(mapping_file)
            })
            .count();
        assert!(optimized >= 2, "{name}: {optimized} optimized segments");
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = run_q2z(&[
            "export",
            "--snapshot",
            file.to_str().unwrap(),
            "--as",
            name,
            "--stage",
            dir.path().to_str().unwrap(),
            "--ranges",
            "3",
        ]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        let (rows, _, total) = staged_rows(dir.path(), name);
        let live: Vec<u64> = (1..=3000u64).filter(|i| !i.is_multiple_of(11)).collect();
        assert_eq!(total, live.len() as u64, "{name}: staged rows");
        let mut ids: Vec<u64> = rows.keys().map(|k| k.parse().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, live, "{name}: the live ids, each once");
        for (key, row) in &rows {
            let id: u64 = key.parse().unwrap();
            assert_eq!(
                payload_field(row, "n"),
                Some(serde_json::json!(id)),
                "{name}: {key}"
            );
            let version = if id.is_multiple_of(7) { 2 } else { 1 };
            assert_eq!(
                payload_field(row, "v"),
                Some(serde_json::json!(version)),
                "{name}: point {key} in its last version"
            );
        }
    }
}
