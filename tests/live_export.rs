//! Live export from the Qdrant stand-in: every staged value equals the source; faults and
//! kill -9 at random moments still end with every point staged exactly once.

mod common;

use common::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

fn export(stage: &std::path::Path, collection: &str, extra: &[&str]) -> (i32, String, String) {
    live_export(stage, &[collection], extra)
}

#[test]
fn real_fixtures_export_live_and_match_server_json() {
    for c in ["fx_named", "fx_uuid_mixed", "fx_empty"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = export(dir.path(), c, &["--page-size", "50", "--ranges", "3"]);
        assert_eq!(code, 0, "{out}{err}");
        let (rows, mapping, _) = staged_rows(dir.path(), c);
        assert_rows_match(&fixture_points(c), &rows, &mapping);
    }
}

#[test]
fn generated_collections_export_live_and_match_source() {
    for c in ["gen_ints", "gen_mixed_ids", "gen_named", "gen_empty"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = export(
            dir.path(),
            c,
            &["--page-size", "64", "--ranges", "4", "--workers", "3"],
        );
        assert_eq!(code, 0, "{c}: {out}{err}");
        let (rows, mapping, _) = staged_rows(dir.path(), c);
        assert_rows_match(&scroll_all(c), &rows, &mapping);
    }
}

#[test]
fn live_and_snapshot_exports_are_row_for_row_identical() {
    let live = tempfile::tempdir().unwrap();
    let (code, _, err) = export(live.path(), "fx_named", &["--ranges", "1"]);
    assert_eq!(code, 0, "{err}");
    let snap = tempfile::tempdir().unwrap();
    let file = fixtures().join("fx_named.collection.snapshot");
    let (code, _, err) = run_q2z(&[
        "export",
        "--snapshot",
        file.to_str().unwrap(),
        "--as",
        "fx_named",
        "--stage",
        snap.path().to_str().unwrap(),
        "--ranges",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let (a, ma, _) = staged_rows(live.path(), "fx_named");
    let (b, mb, _) = staged_rows(snap.path(), "fx_named");
    assert_eq!(ma, mb, "same mapping");
    assert_eq!(a, b, "same rows");
}

#[test]
fn kill_9_at_random_moments_then_rerun_stages_each_point_once() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let url = standin("Q2Z_QDRANT_URL");
    let args = [
        "export",
        "--qdrant-url",
        &url,
        "--stage",
        &stage,
        "-c",
        "gen_kill",
        "--page-size",
        "10",
        "--max-file-bytes",
        "6000",
        "--ranges",
        "3",
        "--workers",
        "2",
    ];
    qdrant_faults(json!({"slow_ms_by_collection": {"gen_kill": 40}}));
    let mut kills = 0;
    let mut finished_early = false;
    for i in 0..12u64 {
        let mut child = Command::new(q2z_bin())
            .args(args)
            .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
            .env("Q2Z_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(
            150 + rand::random::<u64>() % 400 + i * 20,
        ));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "export failed on its own");
                finished_early = true;
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(kills >= 5 || finished_early, "killed {kills} times");
    assert!(
        kills >= 5,
        "the export finished before 5 kills; make it slower (kills: {kills})"
    );
    let (code, out, err) = run_q2z(&args);
    assert_eq!(code, 0, "{out}{err}");
    let (rows, mapping, total) = staged_rows(dir.path(), "gen_kill");
    assert_eq!(total as usize, rows.len(), "no point staged twice");
    assert_rows_match(&scroll_all("gen_kill"), &rows, &mapping);
}

#[test]
fn clear_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = export(dir.path(), "gen_manhattan", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Manhattan") && err.contains("--manhattan-as"),
        "{err}"
    );
    let (code, _, err) = export(dir.path(), "gen_five_vectors", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--exclude-vector") && err.contains("limit of 4"),
        "{err}"
    );
    let (code, _, err) = export(dir.path(), "gen_multivector", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("multivector") && err.contains("--multivector first"),
        "{err}"
    );
    let (code, _, err) = export(dir.path(), "no_such_collection", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not exist") && err.contains("fx_named"),
        "{err}"
    );
    let (code, _, err) = run_q2z(&[
        "export",
        "--qdrant-url",
        &standin("Q2Z_QDRANT_URL"),
        "--api-key",
        "wrong",
        "--stage",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("rejected the credentials") && err.contains("--api-key"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the key must not be echoed: {err}");
    let (code, _, err) = run_q2z(&[
        "export",
        "--qdrant-url",
        "http://127.0.0.1:1",
        "--stage",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach Qdrant"), "{err}");
    let (code, _, err) = export(dir.path(), "gen_big_payload", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("3 (70011 bytes)") && err.contains("65,536"),
        "{err}"
    );
}

#[test]
fn choices_make_the_refused_collections_export() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = export(dir.path(), "gen_manhattan", &["--manhattan-as", "L2"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = export(dir.path(), "gen_five_vectors", &["--exclude-vector", "e"]);
    assert_eq!(code, 0, "{err}");
    let (rows, mapping, _) = staged_rows(dir.path(), "gen_five_vectors");
    assert_eq!(rows.len(), 10);
    assert_eq!(mapping.vectors.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = export(dir.path(), "gen_multivector", &["--multivector", "first"]);
    assert_eq!(code, 0, "{err}");
    let (rows, _, _) = staged_rows(dir.path(), "gen_multivector");
    let src = scroll_all("gen_multivector");
    for p in &src {
        let row = &rows[&p["id"].to_string()];
        let first: Vec<f32> = p["vector"]["colbert"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let got: Vec<f32> = row["colbert"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, first);
    }
}

#[test]
fn via_snapshot_gives_the_same_rows_as_a_live_export() {
    let live = tempfile::tempdir().unwrap();
    let (code, _, err) = export(live.path(), "gen_named", &["--ranges", "1"]);
    assert_eq!(code, 0, "{err}");
    let snap = tempfile::tempdir().unwrap();
    let (code, out, err) = export(
        snap.path(),
        "gen_named",
        &["--ranges", "1", "--via-snapshot"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (a, _, _) = staged_rows(live.path(), "gen_named");
    let (b, _, _) = staged_rows(snap.path(), "gen_named");
    assert_eq!(a, b);
    // The server-side snapshot was deleted afterwards.
    let url = standin("Q2Z_QDRANT_URL");
    let list: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{url}/collections/gen_named/snapshots"))
        .header("api-key", standin("Q2Z_QDRANT_API_KEY"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["result"], json!([]), "{list}");
}

#[test]
fn tls_failure_names_the_fix_without_retrying() {
    // A plain-HTTP server spoken to over https:// fails the handshake.
    let url = standin("Q2Z_QDRANT_URL").replace("http://", "https://");
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = run_q2z(&[
        "export",
        "--qdrant-url",
        &url,
        "--stage",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("TLS handshake") && err.contains("SSL_CERT_FILE"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a TLS failure is not retried with backoff"
    );
}

#[test]
fn parts_of_a_live_export_merge_into_the_rows_of_one_run_even_after_kill_9() {
    let url = standin("Q2Z_QDRANT_URL");
    let base = tempfile::tempdir().unwrap();
    let part_dir = |i: usize| base.path().join(format!("part-{i}"));
    let args = |i: usize| -> Vec<String> {
        [
            "export",
            "--qdrant-url",
            &url,
            "-c",
            "gen_kill",
            "--page-size",
            "20",
            "--max-file-bytes",
            "6000",
            "--part",
            &format!("{i}/3"),
            "--stage",
            part_dir(i).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    qdrant_faults(json!({"slow_ms_by_collection": {"gen_kill": 40}}));
    // Part 1 is killed mid-way while the others run beside it, then run again.
    let spawn = |i: usize| {
        Command::new(q2z_bin())
            .args(args(i))
            .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
            .env("Q2Z_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<_> = (0..3).map(spawn).collect();
    std::thread::sleep(Duration::from_millis(500));
    let killed = children[1].try_wait().unwrap().is_none();
    children[1].kill().unwrap();
    for c in &mut children {
        c.wait().unwrap();
    }
    assert!(killed, "part 1 finished before the kill; make it slower");
    let m = q2z::stage::manifest::Manifest::load(&part_dir(1))
        .unwrap()
        .unwrap();
    assert_ne!(
        m.collections["gen_kill"].state,
        q2z::stage::manifest::ExportState::Exported,
        "killed mid-way"
    );
    let into = base.path().join("merged");
    let parts: Vec<String> = (0..3)
        .map(|i| part_dir(i).to_string_lossy().into_owned())
        .collect();
    let merge = |parts: &[String]| {
        let mut a = vec!["stage", "merge"];
        a.extend(parts.iter().map(String::as_str));
        a.extend(["--into", into.to_str().unwrap()]);
        run_q2z(&a)
    };
    let (code, _, err) = merge(&parts);
    assert_ne!(code, 0, "an unfinished part is not merged");
    assert!(err.contains("part 1/3 is not finished"), "{err}");
    let a1 = args(1);
    let (code, out, err) = run_q2z(&a1.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = merge(&parts[..2]);
    assert!(code != 0 && err.contains("part 2/3 missing"), "{err}");
    let (code, out, err) = merge(&parts);
    assert_eq!(code, 0, "{out}{err}");
    let m = q2z::stage::manifest::Manifest::load(&part_dir(0))
        .unwrap()
        .unwrap();
    let share = m.collections["gen_kill"].share.clone().unwrap();
    assert_eq!(share.by, q2z::stage::manifest::SplitBy::Ranges);
    assert!(!share.units.is_empty() && share.units.len() < share.all.len());
    let (rows, mapping, total) = staged_rows(&into, "gen_kill");
    assert_eq!(total as usize, rows.len(), "no point staged twice");
    assert_rows_match(&scroll_all("gen_kill"), &rows, &mapping);
    // The merged stage is a whole export: the status shows every range done.
    let (code, out, _) = run_q2z(&["status", "--stage", into.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("1500 of 1500 points staged"), "{out}");
}

/// Over Qdrant's gRPC API (`--transport grpc`) every collection stages exactly the rows of a
/// REST export (ids ≥ 2^63 and UUIDs, float16 / uint8 / sparse / missing named vectors, shard
/// keys, payload integers, floats, nulls and unicode); the real fixtures also match the
/// server's JSON. A gRPC URL that does not answer stops `--transport grpc` with the fix, and
/// `auto` reads over REST instead.
#[test]
fn grpc_export_stages_the_rows_of_a_rest_export() {
    let grpc = standin("Q2Z_QDRANT_GRPC_URL");
    for c in [
        "fx_named",
        "fx_uuid_mixed",
        "fx_empty",
        "gen_ints",
        "gen_mixed_ids",
        "gen_named",
        "gen_custom",
    ] {
        let over_grpc = tempfile::tempdir().unwrap();
        let (code, out, err) = export(
            over_grpc.path(),
            c,
            &[
                "--transport",
                "grpc",
                "--grpc-url",
                &grpc,
                "--ranges",
                "3",
                "--page-size",
                "40",
            ],
        );
        assert_eq!(code, 0, "{c}: {out}{err}");
        let m = q2z::stage::manifest::Manifest::load(over_grpc.path())
            .unwrap()
            .unwrap();
        let notes = &m.collections[c].warnings;
        assert!(
            notes.iter().any(|w| w.contains("pages read over gRPC")),
            "{c}: {notes:?}"
        );
        let over_rest = tempfile::tempdir().unwrap();
        let (code, out, err) = export(
            over_rest.path(),
            c,
            &["--transport", "rest", "--ranges", "3", "--page-size", "40"],
        );
        assert_eq!(code, 0, "{c}: {out}{err}");
        let (a, ma, na) = staged_rows(over_grpc.path(), c);
        let (b, mb, nb) = staged_rows(over_rest.path(), c);
        assert_eq!(ma, mb, "{c}: same mapping");
        assert_eq!((na, a.len()), (nb, b.len()), "{c}: same row count");
        assert_eq!(a, b, "{c}: same rows");
        if c.starts_with("fx_") {
            assert_rows_match(&fixture_points(c), &a, &ma);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let dead = "http://127.0.0.1:9";
    let (code, _, err) = export(
        dir.path(),
        "gen_ints",
        &["--transport", "grpc", "--grpc-url", dead],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--grpc-url") && err.contains("--transport rest"),
        "{err}"
    );
    let (code, out, err) = export(dir.path(), "gen_ints", &["--grpc-url", dead]);
    assert_eq!(code, 0, "auto falls back to REST: {out}{err}");
    assert!(err.contains("reading pages over REST"), "{err}");
}

#[test]
fn auto_transport_reads_each_collection_over_the_one_measured_faster() {
    // Two collections; the stand-in answers one's REST scrolls late and the other's gRPC
    // scrolls late. `--transport auto` times both on each collection's first pages and reads
    // each over the faster; the manifest says which, with both rates; the rows are the source's.
    let grpc = standin("Q2Z_QDRANT_GRPC_URL");
    let tag = rand::random::<u32>();
    let (slow_rest, slow_grpc) = (format!("trr{tag}"), format!("trg{tag}"));
    for c in [&slow_rest, &slow_grpc] {
        create_collection(c, json!({"vectors": {"size": 8, "distance": "Dot"}}));
        upsert(
            c,
            (1..=300u64)
                .map(|i| {
                    json!({"id": i, "vector": [i as f32 / 7.0, 0.5, -0.25, 1.0, 2.0, 3.0, 4.0, 5.0],
                           "payload": {"i": i, "text": format!("point {i}")}})
                })
                .collect(),
        );
    }
    qdrant_faults(json!({
        "slow_ms_by_collection": {slow_rest.clone(): 80},
        "slow_grpc_ms_by_collection": {slow_grpc.clone(): 80},
    }));
    let stage = tempfile::tempdir().unwrap();
    let (code, out, err) = live_export(
        stage.path(),
        &[&slow_rest, &slow_grpc],
        &["--grpc-url", &grpc, "--page-size", "100"],
    );
    qdrant_faults(json!({
        "slow_ms_by_collection": {slow_rest.clone(): 0},
        "slow_grpc_ms_by_collection": {slow_grpc.clone(): 0},
    }));
    assert_eq!(code, 0, "{out}{err}");
    let m = q2z::stage::manifest::Manifest::load(stage.path())
        .unwrap()
        .unwrap();
    for (c, over) in [(&slow_rest, "gRPC"), (&slow_grpc, "REST")] {
        let notes = &m.collections[c.as_str()].warnings;
        assert!(
            notes
                .iter()
                .any(|w| w.starts_with(&format!("pages read over {over}: "))
                    && w.contains("points/s against")),
            "{c}: {notes:?}"
        );
        let (rows, mapping, _) = staged_rows(stage.path(), c);
        assert_rows_match(&scroll_all(c), &rows, &mapping);
    }
}

#[test]
fn plan_predicts_the_stage_and_measures_the_upload_without_leaving_a_file() {
    // A collection the calibration reads whole: its predicted stage is the export's, give or
    // take the Parquet framing of a different number of files.
    let c = "gen_mixed_ids";
    let prefix = format!("plan-test-{}", rand::random::<u32>());
    let url = standin("Q2Z_QDRANT_URL");
    let s3 = standin("Q2Z_S3_ENDPOINT");
    let bucket = standin("Q2Z_S3_BUCKET");
    let plan = |deadline: &str| {
        let (code, out, err) = run_q2z(&[
            "plan",
            "--qdrant-url",
            &url,
            "-c",
            c,
            "--workers",
            "3",
            "--deadline",
            deadline,
            "--s3-endpoint",
            &s3,
            "--s3-bucket",
            &bucket,
            "--s3-prefix",
            &prefix,
            "--json",
        ]);
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    };
    // Calibration files of a plan killed two hours ago go; those of a plan running now stay.
    let left = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(&bucket)
        .join(&prefix)
        .join("q2z-plan-calibration");
    let put = |dir: &str, age: u64| {
        let f = left.join(dir).join("0-0.parquet");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, b"PAR1").unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(when)
            .unwrap();
        f
    };
    let killed = put("0123456789abcdef", 7200);
    let running = put("fedcba9876543210", 60);
    let p = plan("1d");
    assert!(!killed.exists() && running.exists());
    std::fs::remove_dir_all(running.parent().unwrap()).unwrap();
    let e = &p["estimate"];
    let count = p["points"].as_u64().unwrap();
    assert!(count > 0, "{p}");
    assert_eq!(e["calibration"]["points"].as_u64(), Some(count), "{e}");
    assert_eq!(e["calibration"]["workers"].as_u64(), Some(3), "{e}");
    assert!(e["points_per_second"].as_f64().unwrap() > 0.0, "{e}");
    assert!(e["peak_memory_bytes"].as_u64().unwrap() > 1 << 20, "{e}");
    assert!(e["upload_bytes_per_second"].as_f64().unwrap() > 0.0, "{e}");
    assert!(e["upload_seconds"].as_f64().unwrap() > 0.0, "{e}");
    // One machine meets a day; the whole run's figures are the collection's plus the opening.
    let run = &p["run"];
    assert_eq!(run["parts"].as_u64(), Some(1), "{run}");
    assert!(
        run["export_seconds"].as_f64().unwrap() >= e["export_seconds"].as_f64().unwrap(),
        "{run}"
    );
    // The calibration files were deleted from the bucket.
    let files = files_under(&left);
    assert!(files.is_empty(), "left in the bucket: {files:?}");

    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = export(dir.path(), c, &["--workers", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    let staged: u64 = files_under(&dir.path().join(c))
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "parquet"))
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let predicted = e["stage_bytes"].as_u64().unwrap();
    let ratio = predicted as f64 / staged as f64;
    assert!(
        (0.75..=1.25).contains(&ratio),
        "predicted {predicted} staged bytes, the export wrote {staged}"
    );

    // A deadline shorter than the id scan cannot be met by splitting a live export.
    let p = plan("0.000001s");
    assert!(p["run"]["parts"].is_null(), "{}", p["run"]);
    assert!(
        p["run"]["part_seconds"].as_f64().unwrap() > 0.0,
        "{}",
        p["run"]
    );
}
