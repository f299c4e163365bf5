//! Import into the Milvus REST v2 stand-in (Milvus Lite 2.5.1 engine) through the S3 stand-in:
//! both modes, verification, corruption + repair, failed/forgotten jobs, kills, bad input.

mod common;

use common::*;
use q2z::stage::manifest::Manifest;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

const COLLS: [&str; 5] = [
    "fx_named",
    "fx_uuid_mixed",
    "fx_empty",
    "gen_named",
    "gen_ints",
];

fn expected(c: &str) -> u64 {
    scroll_all(c).len() as u64
}

#[test]
fn bulk_import_migrates_every_collection_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "bulk_", &COLLS, &[]);
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches("verification: PASSED").count(),
        COLLS.len(),
        "{out}"
    );
    for c in COLLS {
        assert_eq!(target_count(&format!("bulk_{c}")), expected(c), "{c}");
    }
    // Running the same command again sends nothing twice.
    let (code, out, err) = import(dir.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    for c in COLLS {
        assert_eq!(
            target_count(&format!("bulk_{c}")),
            expected(c),
            "{c} after rerun"
        );
    }
    let (code, out, _) = run_q2z(&["status", "--stage", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("verified: true").count(), COLLS.len(), "{out}");
    assert!(
        out.contains("fx_named: export Exported, 297 of 297 points"),
        "{out}"
    );
    // Field-by-field: a point with nulls, unicode and escaped keys reads back as staged.
    let v = milvus_post(
        "entities/query",
        json!({"collectionName": "bulk_fx_uuid_mixed", "filter": "id in [\"9223372036854775813\"]", "outputFields": ["*"], "limit": 5}),
    );
    let row = &v["data"][0];
    let src = fixture_points("fx_uuid_mixed")
        .into_iter()
        .find(|p| p["id"] == json!(9223372036854775813u64))
        .unwrap();
    for (k, val) in src["payload"].as_object().unwrap() {
        let key = if k == "id" || k == "vector" {
            format!("{k}_")
        } else {
            k.clone()
        };
        assert_eq!(&row[&key], val, "payload key {k}");
    }
}

#[test]
fn upsert_import_migrates_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "ups_", &COLLS, &[]);
    milvus_faults(json!({"rate_limit": 2, "timeout": 1}));
    let (code, out, err) = import(
        dir.path(),
        "upsert",
        &["--batch-bytes", "20000", "--drop-existing"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches("verification: PASSED").count(),
        COLLS.len(),
        "{out}"
    );
    for c in COLLS {
        assert_eq!(target_count(&format!("ups_{c}")), expected(c), "{c}");
    }
}

#[test]
fn verify_finds_corrupted_chunks_and_repair_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "rep_",
        &["gen_ints"],
        &["--max-file-bytes", "20000", "--ranges", "3"],
    );
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    // Delete some rows, and insert duplicates of others.
    let del = milvus_post(
        "entities/delete",
        json!({"collectionName": "rep_gen_ints", "filter": "id in [2, 3, 4]"}),
    );
    assert_eq!(del["code"], 0, "{del}");
    let dup = milvus_post(
        "entities/query",
        json!({"collectionName": "rep_gen_ints", "filter": "id >= 500 and id <= 505", "outputFields": ["*"], "limit": 10}),
    );
    let rows: Vec<Value> = dup["data"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    let ins = milvus_post(
        "entities/insert",
        json!({"collectionName": "rep_gen_ints", "data": rows}),
    );
    assert_eq!(ins["code"], 0, "{ins}");
    let (code, out, _) = verify(dir.path(), &[]);
    assert_eq!(code, 3, "{out}");
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("chunk "))
        .collect();
    assert_eq!(bad.len(), 2, "exactly the two damaged chunks: {out}");
    let (code, out, err) = verify(
        dir.path(),
        &[
            "--repair",
            "--s3-endpoint",
            &standin("Q2Z_S3_ENDPOINT"),
            "--s3-bucket",
            &standin("Q2Z_S3_BUCKET"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(target_count("rep_gen_ints"), expected("gen_ints"));
}

#[test]
fn failed_job_is_retried_and_lost_or_forgotten_jobs_are_settled() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "job_",
        &["gen_named"],
        &["--max-file-bytes", "30000"],
    );
    milvus_faults(json!({"fail_import": 1}));
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(target_count("job_gen_named"), expected("gen_named"));
    // A kill between "job created" and "job id recorded": the ledger says Submitting, no id.
    let ledger_path = dir.path().join("import-state.json");
    let mut ledger: Value =
        serde_json::from_str(&std::fs::read_to_string(&ledger_path).unwrap()).unwrap();
    for t in ledger["targets"].as_object_mut().unwrap().values_mut() {
        for c in t["gen_named"]["chunks"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            c["state"] = json!("submitting");
            c.as_object_mut().unwrap().remove("job");
        }
    }
    std::fs::write(&ledger_path, serde_json::to_vec(&ledger).unwrap()).unwrap();
    let (code, out, err) = import(dir.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        target_count("job_gen_named"),
        expected("gen_named"),
        "no chunk imported twice"
    );
    // A job the server has forgotten (past retention): settled by counting.
    for t in ledger["targets"].as_object_mut().unwrap().values_mut() {
        for c in t["gen_named"]["chunks"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            c["state"] = json!("importing");
            c["job"] = json!("999999999");
        }
    }
    std::fs::write(&ledger_path, serde_json::to_vec(&ledger).unwrap()).unwrap();
    let (code, out, err) = import(dir.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        target_count("job_gen_named"),
        expected("gen_named"),
        "no chunk imported twice"
    );
}

#[test]
fn kill_9_during_import_then_rerun_gives_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "kill_",
        &["gen_kill"],
        &["--max-file-bytes", "15000", "--ranges", "4"],
    );
    let mut args = import_args(dir.path(), "bulk");
    args.push("--drop-existing".into());
    let mut kills = 0;
    for i in 0..10u64 {
        let mut child = Command::new(q2z_bin())
            .args(&args)
            .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
            .env("AWS_ACCESS_KEY_ID", standin("Q2Z_S3_ACCESS_KEY"))
            .env("AWS_SECRET_ACCESS_KEY", standin("Q2Z_S3_SECRET_KEY"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(
            300 + rand::random::<u64>() % 900 + i * 150,
        ));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 5,
        "the import finished before 5 kills (kills: {kills})"
    );
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(target_count("kill_gen_kill"), expected("gen_kill"));
}

#[test]
fn bad_input_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "bad_", &["fx_uuid_mixed"], &[]);
    // Wrong token.
    let mut a = import_args(dir.path(), "upsert");
    a.extend(["--token".to_string(), "root:wrong".to_string()]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, _, err) = run_q2z(&refs);
    assert_ne!(code, 0);
    assert!(
        err.contains("rejected the credentials") && err.contains("--token"),
        "{err}"
    );
    assert!(!err.contains("root:wrong"), "token echoed: {err}");
    // A damaged staged file is never imported.
    let m = q2z::stage::manifest::Manifest::load(dir.path())
        .unwrap()
        .unwrap();
    let file = dir
        .path()
        .join(&m.collections["fx_uuid_mixed"].chunks[0].file);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let (code, _, err) = import(dir.path(), "bulk", &[]);
    assert_ne!(code, 0);
    assert!(err.contains("damaged") && err.contains("part-"), "{err}");
    // A name clash without a choice.
    let other = tempfile::tempdir().unwrap();
    stage_export(other.path(), "bad_", &["fx_empty"], &[]);
    let (code, _, err) = import(other.path(), "upsert", &["--drop-existing"]);
    assert_eq!(code, 0, "{err}");
    let third = tempfile::tempdir().unwrap();
    stage_export(third.path(), "bad_", &["fx_empty"], &[]);
    let (code, _, err) = import(third.path(), "upsert", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--into-existing") && err.contains("--drop-existing"),
        "{err}"
    );
    let (code, _, err) = import(third.path(), "upsert", &["--into-existing"]);
    assert_eq!(code, 0, "{err}");
    // A database the server does not have (Milvus code 800): named, with the fix.
    let (code, _, err) = import(third.path(), "upsert", &["--db", "no_such_db"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("database not found, database: no_such_db") && err.contains("--db"),
        "{err}"
    );
}

#[test]
fn zilliz_control_plane_imports_from_the_users_bucket() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "zc_", &["fx_uuid_mixed"], &[]);
    let cloud = standin("Q2Z_MILVUS_URL");
    let (code, out, err) = import(
        dir.path(),
        "bulk",
        &[
            "--drop-existing",
            "--zilliz-cluster-id",
            "in01-q2ztest",
            "--zilliz-cloud-url",
            &cloud,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    assert_eq!(target_count("zc_fx_uuid_mixed"), expected("fx_uuid_mixed"));
    let state = std::fs::read_to_string(dir.path().join("import-state.json")).unwrap();
    assert!(
        state.contains("\"job-"),
        "the job came from the control plane (Zilliz job ids): {state}"
    );
    assert!(
        !state.contains(&standin("Q2Z_S3_SECRET_KEY")),
        "no secret in the ledger"
    );
}

#[test]
fn zilliz_volume_needs_nothing_but_the_api_key() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "zv_", &["fx_named"], &[]);
    // No bucket, endpoint or S3 keys: the volume hands out temporary credentials.
    let (code, out, err) = volume_import(dir.path().to_str().unwrap(), "vol_q2z");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    assert_eq!(target_count("zv_fx_named"), expected("fx_named"));
    let uploaded = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(standin("Q2Z_S3_BUCKET"))
        .join("volumes/vol_q2z/q2z/fx_named");
    assert!(
        uploaded.is_dir(),
        "files went under the volume's prefix: {}",
        uploaded.display()
    );
}

#[test]
fn migrate_uploads_chunks_while_the_export_is_still_running() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap();
    qdrant_faults(json!({"slow_ms_by_collection": {"gen_mixed_ids": 150}}));
    // A prefix of its own: the bucket outlives a run, and a file already there (by size and
    // SHA-256) is not sent again, so a rerun against the same stand-ins would upload nothing.
    let prefix = format!(
        "q2z-early-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let out = Command::new(q2z_bin())
        .args([
            "migrate",
            "--s3-prefix",
            &prefix,
            "--qdrant-url",
            &standin("Q2Z_QDRANT_URL"),
            "-c",
            "gen_mixed_ids",
            "--stage",
            stage,
            "--target-prefix",
            "mig_",
            "--page-size",
            "20",
            "--workers",
            "1",
            "--max-file-bytes",
            "4000",
            "--milvus-url",
            &standin("Q2Z_MILVUS_URL"),
            "--s3-endpoint",
            &standin("Q2Z_S3_ENDPOINT"),
            "--s3-bucket",
            &standin("Q2Z_S3_BUCKET"),
            "--drop-existing",
        ])
        .env("QDRANT_API_KEY", standin("Q2Z_QDRANT_API_KEY"))
        .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
        .env("AWS_ACCESS_KEY_ID", standin("Q2Z_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", standin("Q2Z_S3_SECRET_KEY"))
        .env("Q2Z_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    qdrant_faults(json!({}));
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("verification: PASSED"), "{so}");
    assert_eq!(target_count("mig_gen_mixed_ids"), expected("gen_mixed_ids"));
    let line = se
        .lines()
        .find(|l| l.contains("files uploaded while exporting"))
        .unwrap_or_else(|| panic!("no early-upload report: {se}"));
    let during: u64 = line
        .split("during=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let chunks = Manifest::load(dir.path()).unwrap().unwrap().collections["gen_mixed_ids"]
        .chunks
        .len() as u64;
    assert!(
        chunks > 2 && during >= 1,
        "chunks ({chunks}) went up while the export was still running: {line}"
    );
}

#[test]
fn upload_is_checked_by_the_store_against_the_manifest_sha256() {
    use q2z::sink::object_store::{StorageConfig, Uploader};
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chunk.parquet");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let right = hex::encode(sha2::Sha256::digest(&data));
    let up = Uploader::s3(StorageConfig {
        endpoint: Some(standin("Q2Z_S3_ENDPOINT")),
        bucket: standin("Q2Z_S3_BUCKET"),
        prefix: "checksum-test".into(),
        region: "us-east-1".into(),
        access_key: Some(standin("Q2Z_S3_ACCESS_KEY")),
        secret_key: Some(standin("Q2Z_S3_SECRET_KEY")),
        session_token: None,
        ..Default::default()
    })
    .unwrap();
    let key = up.key_for("good.parquet");
    assert_eq!(
        up.put_file(&file, &key, Some(&right)).unwrap(),
        data.len() as u64
    );
    let stored = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(standin("Q2Z_S3_BUCKET"))
        .join(&key);
    assert!(
        std::fs::read(&stored).unwrap() == data,
        "stored bytes differ"
    );
    assert_eq!(up.size(&key).unwrap(), Some(data.len() as u64));
    // A rerun skips the object only if the store's SHA-256 of it is the manifest's.
    let len = data.len() as u64;
    assert!(up.holds(&key, len, &right, &file).unwrap());
    let same_size_other_bytes = hex::encode(sha2::Sha256::digest(b"other bytes"));
    assert!(!up.holds(&key, len, &same_size_other_bytes, &file).unwrap());
    assert!(
        !up.holds(&up.key_for("missing.parquet"), len, &right, &file)
            .unwrap()
    );

    // A checksum that does not match what is sent: the store refuses it, nothing is stored,
    // and the error names the file and what to do.
    let wrong = hex::encode(sha2::Sha256::digest(b"something else"));
    let key = up.key_for("bad.parquet");
    let err = up
        .put_file(&file, &key, Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(err.contains("chunk.parquet"), "{err}");
    assert!(err.contains("differ from the sha256"), "{err}");
    assert!(!err.contains(&standin("Q2Z_S3_SECRET_KEY")), "{err}");
    assert!(!err.contains("X-Amz-Signature"), "{err}");
    assert_eq!(up.size(&key).unwrap(), None);
}

/// Sets the S3 stand-in's PUT delay for keys under `prefix` (0: none).
fn s3_put_delay(ms: u64, prefix: &str) {
    reqwest::blocking::Client::new()
        .post(format!(
            "{}/__standin/faults?put_delay_ms={ms}&put_delay_prefix={prefix}",
            standin("Q2Z_S3_ENDPOINT")
        ))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap();
}

fn volume_import(stage: &str, volume: &str) -> (i32, String, String) {
    let cloud = standin("Q2Z_MILVUS_URL");
    run_q2z(&[
        "import",
        "--stage",
        stage,
        "--milvus-url",
        &cloud,
        "--drop-existing",
        "--zilliz-cluster-id",
        "in01-q2ztest",
        "--zilliz-volume",
        volume,
        "--zilliz-cloud-url",
        &cloud,
    ])
}

#[test]
fn zilliz_volume_keys_are_renewed_before_they_expire() {
    // The volume's keys live 4 s (the S3 stand-in refuses them after, ExpiredToken as AWS
    // does); each PUT is answered 3 s late and 4 go at once. q2z renews keys in the last
    // quarter of their life (from 3 s at the latest, whatever fraction of a second the
    // expireTime's whole seconds cut off), so the second round of PUTs, which cannot start
    // before 3 s, must renew them: a 2 s delay left that to the third round, and a stage whose
    // files made only two rounds passed or failed by the clock's fraction (CI, session 17).
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = live_export(
        dir.path(),
        &["gen_mixed_ids"],
        &[
            "--target-prefix",
            "zt_",
            "--max-file-bytes",
            "4000",
            "--page-size",
            "20",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let files = std::fs::read_dir(dir.path().join("gen_mixed_ids"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".parquet")
        })
        .count();
    assert!(
        files >= 9,
        "{files} files: the upload must take longer than the keys live"
    );
    // A volume of its own: files an earlier run left in another would not be sent again.
    let vol = format!("vol_ttl{}", rand::random::<u32>());
    let before = milvus_faults(json!({"volume_credential_ttl": {vol.as_str(): 4}}));
    let applied = |f: &Value| {
        f["data"]["volume_applies"][vol.as_str()]
            .as_u64()
            .unwrap_or(0)
    };
    s3_put_delay(3000, &format!("volumes/{vol}/"));
    let (code, out, err) = volume_import(dir.path().to_str().unwrap(), &vol);
    s3_put_delay(0, "");
    let after = milvus_faults(json!({"volume_credential_ttl": {}}));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        applied(&after) >= applied(&before) + 2,
        "the keys were asked for again: {before} → {after}\n{err}"
    );
    assert_eq!(target_count("zt_gen_mixed_ids"), expected("gen_mixed_ids"));
}

#[test]
fn a_zilliz_volume_limit_refuses_the_upload_before_any_file_goes_up() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "zl_", &["fx_named"], &[]);
    // A free-tier volume's condition, shrunk below the stage's bytes.
    milvus_faults(json!({"volume_condition": {"vol_lim": {"maxContentLength": 100}}}));
    let (code, out, err) = volume_import(dir.path().to_str().unwrap(), "vol_lim");
    milvus_faults(json!({"volume_condition": {}}));
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("over its limit of 100"), "{err}");
    assert!(err.contains("Nothing was uploaded"), "{err}");
    let uploaded = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(standin("Q2Z_S3_BUCKET"))
        .join("volumes/vol_lim");
    assert!(!uploaded.exists(), "nothing under {}", uploaded.display());
}

#[test]
fn a_zilliz_volume_on_gcp_is_uploaded_to_with_its_token_as_a_bearer() {
    // `cloud: gcp`: no tmpAK/tmpSK, the session token goes as `Authorization: Bearer` (GCS XML
    // API, as pymilvus's OAuthMinio sends it); the S3 stand-in answers such requests only for
    // a live token it handed out.
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "zg_", &["fx_named"], &[]);
    let vol = format!("vol_gcp{}", rand::random::<u32>());
    milvus_faults(json!({"volume_cloud": {vol.as_str(): "gcp"}}));
    let (code, out, err) = volume_import(dir.path().to_str().unwrap(), &vol);
    milvus_faults(json!({"volume_cloud": {}}));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verification: PASSED"), "{out}");
    assert_eq!(target_count("zg_fx_named"), expected("fx_named"));
    let uploaded = std::path::Path::new(&standin("Q2Z_S3_ROOT"))
        .join(standin("Q2Z_S3_BUCKET"))
        .join(format!("volumes/{vol}/q2z/fx_named"));
    assert!(uploaded.is_dir(), "{}", uploaded.display());
}

#[test]
fn two_stages_of_one_collection_never_share_an_object_key() {
    // Two exports of fx_named (one promotes `title`, so their files differ) imported into the
    // same bucket under the default prefix: each import job reads an object named by its own
    // file's SHA-256, so neither can read the other's bytes, whatever the timing (before, both
    // wrote q2z/fx_named/part-0000-000000.parquet: an import running beside the other read a
    // file with `title` in $meta and failed, or imported the other stage's rows).
    let plain = tempfile::tempdir().unwrap();
    let promoted = tempfile::tempdir().unwrap();
    stage_export(plain.path(), "keya_", &["fx_named"], &[]);
    stage_export(
        promoted.path(),
        "keyb_",
        &["fx_named"],
        &["--promote", "title"],
    );
    let bucket = std::path::Path::new(&standin("Q2Z_S3_ROOT")).join(standin("Q2Z_S3_BUCKET"));
    let mut keys = Vec::new();
    for (dir, target) in [(&plain, "keya_fx_named"), (&promoted, "keyb_fx_named")] {
        let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("verification: PASSED"), "{out}");
        assert_eq!(target_count(target), expected("fx_named"));
        let m = Manifest::load(dir.path()).unwrap().unwrap();
        for c in &m.collections["fx_named"].chunks {
            let name = c.file.trim_end_matches(".parquet");
            let key = format!("q2z/{name}.{}.parquet", &c.sha256[..16]);
            let bytes = std::fs::read(bucket.join(&key)).unwrap_or_else(|e| panic!("{key}: {e}"));
            use sha2::Digest;
            assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), c.sha256, "{key}");
            keys.push(key);
        }
    }
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "{keys:?}");
}
