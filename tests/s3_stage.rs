//! A stage on object storage (`--stage s3://bucket/prefix`) against the S3 stand-in (s3s-fs,
//! which keeps each object as a file under its root, so the bucket's copy of the stage is read
//! back as a directory): export killed with -9 and resumed from another working copy (another
//! machine), imported without a second upload, and two runs on one stage told apart by the
//! stage's lease (another machine's live lease refused, an expired one taken over).

mod common;

use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn q2z_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(q2z_bin());
    c.args(args)
        .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
        .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
        .env("AWS_ENDPOINT_URL", standin("Q2Z_S3_ENDPOINT"))
        .env("AWS_ACCESS_KEY_ID", standin("Q2Z_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", standin("Q2Z_S3_SECRET_KEY"))
        .env("Q2Z_LOG", "warn");
    c
}

fn run(args: &[&str]) -> (i32, String) {
    let out = q2z_cmd(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A fresh prefix in the stand-in's bucket: (its s3:// URL, where s3s-fs keeps it on disk).
fn fresh_stage(name: &str) -> (String, PathBuf) {
    let prefix = format!("stages/{name}-{}", rand::random::<u32>());
    let bucket = standin("Q2Z_S3_BUCKET");
    (
        format!("s3://{bucket}/{prefix}"),
        PathBuf::from(standin("Q2Z_S3_ROOT"))
            .join(bucket)
            .join(prefix),
    )
}

fn export_args<'a>(url: &'a str, stage: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "export",
        "--qdrant-url",
        url,
        "-c",
        "gen_kill",
        "--target-prefix",
        "s3st_",
        "--page-size",
        "10",
        "--max-file-bytes",
        "6000",
        "--ranges",
        "3",
        "--workers",
        "2",
        "--stage",
        stage,
        "--stage-cache",
        cache,
    ]
}

#[test]
fn export_killed_resumes_from_another_machine_and_imports_without_a_second_upload() {
    let (stage, on_disk) = fresh_stage("kill");
    let url = standin("Q2Z_QDRANT_URL");
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    qdrant_faults(json!({"slow_ms_by_collection": {"gen_kill": 40}}));
    let cache1 = first.path().to_string_lossy().into_owned();
    let mut child = q2z_cmd(&export_args(&url, &stage, &cache1))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export finished before the kill; make it slower"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let m = q2z::stage::manifest::Manifest::load(&on_disk)
        .unwrap()
        .expect("the bucket holds the manifest of the killed run");
    let before = m.collections["gen_kill"].chunks.len();
    assert!(before > 0, "chunks were recorded before the kill");
    // Another machine: an empty working copy. The bucket's manifest is the truth.
    let cache2 = second.path().to_string_lossy().into_owned();
    let (code, text) = run(&export_args(&url, &stage, &cache2));
    assert_eq!(code, 0, "{text}");
    let (rows, mapping, total) = staged_rows(&on_disk, "gen_kill");
    assert_eq!(total as usize, rows.len(), "no point staged twice");
    assert_rows_match(&scroll_all("gen_kill"), &rows, &mapping);
    let (code, text) = run(&["verify", "--stage", &stage, "--stage-only"]);
    assert_eq!(code, 0, "{text}");
    // Import from the bucket Milvus reads: the files are imported where they are.
    milvus_post(
        "collections/drop",
        json!({"collectionName": "s3st_gen_kill"}),
    );
    let mut args = import_args(std::path::Path::new(&stage), "bulk");
    args.extend(["--stage-cache".into(), cache2.clone()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, text) = run(&refs);
    assert_eq!(code, 0, "{text}");
    assert_eq!(target_count("s3st_gen_kill"), 1500);
    let ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(on_disk.join("import-state.json")).unwrap())
            .expect("the ledger is in the bucket too");
    let prefix = stage.split_once("/stages/").unwrap().1;
    let keys: Vec<String> = ledger
        .pointer("/targets")
        .and_then(|t| t.as_object())
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|t| t.pointer("/gen_kill/chunks"))
        .filter_map(|c| c.as_object())
        .flat_map(|c| c.values())
        .filter_map(|c| c["key"].as_str().map(String::from))
        .collect();
    assert_eq!(keys.len(), rows_files(&on_disk), "{ledger}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("stages/{prefix}/gen_kill/part-"))),
        "imported from the stage's own objects, nothing uploaded again: {keys:?}"
    );
}

fn rows_files(stage: &std::path::Path) -> usize {
    q2z::stage::manifest::Manifest::load(stage)
        .unwrap()
        .unwrap()
        .collections["gen_kill"]
        .chunks
        .len()
}

#[test]
fn two_runs_on_one_stage_on_object_storage_are_told_apart() {
    let (stage, on_disk) = fresh_stage("two");
    let url = standin("Q2Z_QDRANT_URL");
    qdrant_faults(json!({"slow_ms_by_collection": {"gen_kill": 40}}));
    let caches = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let names: Vec<String> = caches
        .iter()
        .map(|c| c.path().to_string_lossy().into_owned())
        .collect();
    let children: Vec<_> = names
        .iter()
        .map(|c| {
            q2z_cmd(&export_args(&url, &stage, c))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let failed: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "exactly one of two runs on one stage stops"
    );
    assert!(
        failed[0].contains("being written by another q2z run"),
        "{}",
        failed[0]
    );
    // The run that went on staged every point once; running the other again finds it done.
    let (code, text) = run(&export_args(&url, &stage, &names[0]));
    assert_eq!(code, 0, "{text}");
    let (rows, _, total) = staged_rows(&on_disk, "gen_kill");
    assert_eq!((total, rows.len()), (1500, 1500));
    // A stage on object storage is never thrown away by q2z.
    let mut args = export_args(&url, &stage, &names[1]);
    args.push("--restart");
    let (code, text) = run(&args);
    assert!(
        code != 0 && text.contains("does not throw a stage away"),
        "{text}"
    );
}

/// A client of the stand-in's bucket at the prefix of `stage` (what another machine sees).
fn bucket_client(stage: &str) -> q2z::sink::object_store::Uploader {
    let (bucket, prefix) = q2z::stage::remote::parse_url(stage).unwrap();
    q2z::sink::object_store::Uploader::s3(q2z::sink::object_store::StorageConfig {
        endpoint: Some(standin("Q2Z_S3_ENDPOINT")),
        bucket,
        prefix,
        region: "us-east-1".into(),
        access_key: Some(standin("Q2Z_S3_ACCESS_KEY")),
        secret_key: Some(standin("Q2Z_S3_SECRET_KEY")),
        session_token: None,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_stage_leased_by_a_run_on_another_machine_is_refused_until_the_lease_expires() {
    let (stage, on_disk) = fresh_stage("lease");
    let url = standin("Q2Z_QDRANT_URL");
    let bucket = bucket_client(&stage);
    let key = bucket.key_for(".q2z.lease");
    let now = q2z::source::unix_now();
    let lease = |expires: u64| {
        json!({"run": "r1", "host": "another-machine", "pid": 1,
               "command": "sync", "expires_unix": expires})
        .to_string()
        .into_bytes()
    };
    bucket
        .put_small_if(&key, lease(now + 600), None)
        .unwrap()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_string_lossy().into_owned();
    let (code, text) = run(&export_args(&url, &stage, &cache));
    assert!(
        code != 0
            && text.contains("being written by another q2z run")
            && text.contains("`sync` on host another-machine"),
        "{text}"
    );
    let written: Vec<_> = files_under(&on_disk)
        .into_iter()
        .filter(|p| !p.ends_with(".q2z.lease"))
        .collect();
    assert!(
        written.is_empty(),
        "the refused run wrote nothing: {written:?}"
    );
    // The other machine stopped renewing: once expired, the lease is taken over.
    let (_, etag) = bucket.get_small(&key).unwrap().unwrap();
    bucket
        .put_small_if(&key, lease(now - 1), etag.as_deref())
        .unwrap()
        .unwrap();
    let (code, text) = run(&export_args(&url, &stage, &cache));
    assert_eq!(code, 0, "{text}");
    let (rows, _, total) = staged_rows(&on_disk, "gen_kill");
    assert_eq!((total, rows.len()), (1500, 1500));
    assert_eq!(
        bucket.get_small(&key).unwrap(),
        None,
        "a run releases its lease when it ends"
    );
}

#[test]
fn parts_on_object_storage_merge_there_by_server_side_copies() {
    let url = standin("Q2Z_QDRANT_URL");
    let parts: Vec<(String, PathBuf)> = (0..2).map(|i| fresh_stage(&format!("part{i}"))).collect();
    for (i, (stage, _)) in parts.iter().enumerate() {
        let part = format!("{i}/2");
        let (code, text) = run(&[
            "export",
            "--qdrant-url",
            &url,
            "-c",
            "gen_ints",
            "--part",
            &part,
            "--stage",
            stage,
        ]);
        assert_eq!(code, 0, "{text}");
    }
    let (into, on_disk) = fresh_stage("merged");
    let merge = || run(&["stage", "merge", &parts[0].0, &parts[1].0, "--into", &into]);
    let (code, text) = merge();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("0 linked") && !text.contains(" 0 copied"),
        "{text}"
    );
    let (rows, mapping, total) = staged_rows(&on_disk, "gen_ints");
    assert_eq!(total as usize, rows.len(), "no point twice");
    assert_rows_match(&scroll_all("gen_ints"), &rows, &mapping);
    let (code, text) = merge();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("0 copied"),
        "a rerun copies nothing again: {text}"
    );
    // A local directory and an s3:// stage do not mix.
    let local = tempfile::tempdir().unwrap();
    let (code, text) = run(&[
        "stage",
        "merge",
        &parts[0].0,
        &parts[1].0,
        "--into",
        local.path().to_str().unwrap(),
    ]);
    assert!(
        code != 0 && text.contains("all s3:// stages in one bucket"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(local.path()).unwrap().next().is_none(),
        "nothing written into --into when refused"
    );
}

/// The sync record lives with an `s3://` stage: a sync from one machine, then verify and
/// repair from another working copy (the first one gone) check against what the sync left,
/// not against the export (cut-over integrity, finding 7).
#[test]
fn a_sync_of_a_stage_on_object_storage_is_seen_from_another_machine() {
    let (stage, on_disk) = fresh_stage("sync");
    let c = format!("s3sync{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let pt = |i: u64, v: u64| json!({"id": i, "vector": [0.1, 0.2, 0.3, (i % 5) as f32], "payload": {"v": v}});
    upsert(&c, (1..=60).map(|i| pt(i, 1)).collect());
    let url = standin("Q2Z_QDRANT_URL");
    let milvus = standin("Q2Z_MILVUS_URL");
    let s3 = [
        "--s3-endpoint".to_string(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
    ];
    let machine = |n: &str| {
        let d = tempfile::tempdir().unwrap();
        (d.path().join(n).to_str().unwrap().to_string(), d)
    };
    let (cache1, d1) = machine("one");
    let (code, text) = run(&[
        "export",
        "--qdrant-url",
        &url,
        "-c",
        &c,
        "--target-prefix",
        "s3s_",
        "--stage",
        &stage,
        "--stage-cache",
        &cache1,
    ]);
    assert_eq!(code, 0, "{text}");
    let mut a: Vec<String> = vec![
        "import".into(),
        "--stage".into(),
        stage.clone(),
        "--stage-cache".into(),
        cache1.clone(),
        "--milvus-url".into(),
        milvus.clone(),
        "--mode".into(),
        "bulk".into(),
    ];
    a.extend(s3.iter().cloned());
    let (code, text) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{text}");
    upsert(&c, (1..=10).map(|i| pt(i, 2)).collect());
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [50, 51]}),
    );
    let (code, text) = run(&[
        "sync",
        "--stage",
        &stage,
        "--stage-cache",
        &cache1,
        "--qdrant-url",
        &url,
        "--milvus-url",
        &milvus,
        "-c",
        &c,
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        on_disk.join("sync-state.json").exists(),
        "the sync record is in the bucket"
    );
    drop(d1);
    // Another machine: a new working copy, the first one gone.
    let (cache2, _d2) = machine("two");
    let (code, text) = run(&[
        "verify",
        "--stage",
        &stage,
        "--stage-cache",
        &cache2,
        "--milvus-url",
        &milvus,
        "--full",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("sync pass"),
        "verified against what the sync left: {text}"
    );
    let target = format!("s3s_{c}");
    let v = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": "id in [3, 40]"}),
    );
    assert_eq!(v["code"], 0, "{v}");
    let (cache3, _d3) = machine("three");
    let mut a: Vec<String> = vec![
        "verify".into(),
        "--stage".into(),
        stage.clone(),
        "--stage-cache".into(),
        cache3,
        "--milvus-url".into(),
        milvus.clone(),
        "--repair".into(),
    ];
    a.extend(s3.iter().cloned());
    let (code, text) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{text}");
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "{d:#?}");
}
