//! What differs between Milvus release lines, end to end: scripts/test.sh runs this file once
//! against the main Milvus stand-in (2.5.16) and once against the stand-in following each other
//! line (`Q2Z_MILVUS_PROFILE` = 2.4.9, 2.5.4, 2.6.24, 3.0.2; q2z told the release through
//! MILVUS_VERSION, as `--milvus-version` would). The payload set REST would change (`1e-6`,
//! `1e21`, 2^63+5, 2^64-1, nested 2^53+1, a null) and float16 vectors (2.4 reads only base64)
//! go through migrate, sync and verify exact on every line; what a line lacks (nullable fields
//! before 2.5, flush before 2.5.4) is refused with the fix or skipped; the stand-in's own
//! release rules (routes, two-phase import, Idempotency-Key) are checked over raw REST.

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

/// The release the target stand-in follows.
fn profile() -> (u16, u16, u16) {
    let v = std::env::var("Q2Z_MILVUS_PROFILE").unwrap_or_else(|_| "2.5.16".into());
    let p: Vec<u16> = v.split('.').map(|x| x.parse().unwrap()).collect();
    (p[0], p[1], p[2])
}

fn at_least(v: (u16, u16, u16)) -> bool {
    profile() >= v
}

/// Whether the release answers a repeated `Idempotency-Key` with the first job (2.6.24, 3.0.2).
fn honours_idempotency_key() -> bool {
    at_least((3, 0, 2)) || (profile().1 == 6 && at_least((2, 6, 24)))
}

fn point(id: u64, payload: Value) -> Value {
    json!({"id": id, "vector": [0.25, -0.5, 0.125, id as f32], "payload": payload})
}

fn bucket_args() -> Vec<String> {
    vec![
        "--s3-endpoint".into(),
        standin("Q2Z_S3_ENDPOINT"),
        "--s3-bucket".into(),
        standin("Q2Z_S3_BUCKET"),
    ]
}

/// A source collection of `n` points named `<tag><random>`, exported into a new stage with
/// target prefix `prefix`: (collection, stage, target name).
fn staged_source(tag: &str, prefix: &str, n: u64) -> (String, tempfile::TempDir, String) {
    let c = format!("{tag}{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(&c, (1..=n).map(|i| point(i, json!({"i": i}))).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), prefix, &[&c], &[]);
    let target = format!("{prefix}{c}");
    (c, stage, target)
}

/// `q2z import --mode bulk --drop-existing` of a stage with info logs: (success, all output).
fn bulk_import_logged(stage: &std::path::Path) -> (bool, String) {
    let args = import_args(stage, "bulk");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--drop-existing");
    let out = q2z_command(&args).env("Q2Z_LOG", "info").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_payload_set_rest_would_change_arrives_exact_through_import_sync_and_verify() {
    let c = format!("profpay{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let set = json!({"tiny": 1e-6, "huge": 1e21, "over": 9_223_372_036_854_775_813u64,
                     "max": u64::MAX, "nested": {"x": [9_007_199_254_740_993u64]},
                     "gone": null, "plain": 7});
    let pts: Vec<Value> = (1..=30)
        .map(|i| {
            point(
                i,
                if i % 3 == 0 {
                    set.clone()
                } else {
                    json!({"n": i, "f": 0.5})
                },
            )
        })
        .collect();
    upsert(&c, pts);
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pp_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("pp_{c}");
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "after import: {d:#?}");
    // Changes of every kind, some holding the set: sync sends those through bulk import.
    upsert(
        &c,
        vec![
            point(2, set.clone()),
            point(4, json!({"n": 4, "f": 2.5e-7, "huge": 3e30})),
            point(
                40,
                json!({"nested": {"y": [{"z": 18_014_398_509_481_985u64}]}}),
            ),
        ],
    );
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [5, 6]}),
    );
    let bucket = bucket_args();
    let bucket: Vec<&str> = bucket.iter().map(String::as_str).collect();
    let (code, v, text) = sync(stage.path(), &c, &bucket);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (1, 2, 2), "{v}");
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "after sync: {d:#?}");
    for _ in 0..2 {
        let (code, out, err) = verify(stage.path(), &["--full", "--repair"]);
        assert_eq!(code, 0, "no mismatch, nothing to repair, twice: {out}{err}");
        assert!(!format!("{out}{err}").contains("sent again"), "{out}{err}");
    }
}

#[test]
fn float16_vectors_reach_every_line_exact_over_rest_and_bulk() {
    let c = format!("proff16{}", rand::random::<u32>());
    create_collection(
        &c,
        json!({"vectors": {"half": {"size": 4, "distance": "Cosine", "datatype": "float16"}}}),
    );
    let vector = |i: u64, k: f32| json!({"half": [0.1 * k, -(i as f32) / 3.0, 1.0e-3, 65504.0]});
    upsert(
        &c,
        (1..=12)
            .map(|i| json!({"id": i, "vector": vector(i, 1.0), "payload": {"i": i}}))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pf_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    // Changed vectors go over REST (upserts): as base64 bytes, the one form 2.4 reads.
    upsert(
        &c,
        (1..=4)
            .map(|i| json!({"id": i, "vector": vector(i, 7.0), "payload": {"i": i}}))
            .collect(),
    );
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 4, 0), "{v}");
    let target = format!("pf_{c}");
    let rows = standin_rows(json!({"collectionName": target, "filter": "id > 0",
                                   "outputFields": ["id", "half"], "limit": 100}));
    let rows = rows["data"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 12);
    for p in scroll_all(&c) {
        let want: Vec<u8> = p["vector"]["half"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|x| half::f16::from_f64(x.as_f64().unwrap()).to_le_bytes())
            .collect();
        let row = rows.iter().find(|r| r["id"] == p["id"]).unwrap();
        let got = base64::engine::general_purpose::STANDARD
            .decode(row["half"].as_str().unwrap())
            .unwrap();
        assert_eq!(got, want, "point {}: float16 bytes", p["id"]);
    }
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn promoted_keys_need_nullable_fields_and_a_line_without_them_is_refused_with_the_fix() {
    let c = format!("profnull{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(
        &c,
        (1..=6)
            .map(|i| {
                point(
                    i,
                    if i % 2 == 0 {
                        json!({"k": i})
                    } else {
                        json!({})
                    },
                )
            })
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pn_", &[&c], &["--promote", "k:Int64"]);
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    if at_least((2, 5, 0)) {
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(target_count(&format!("pn_{c}")), 6);
    } else {
        assert_ne!(code, 0, "{out}{err}");
        assert!(
            err.contains("nullable") && err.contains("without --promote"),
            "{err}"
        );
        let has = milvus_post(
            "collections/has",
            json!({"collectionName": format!("pn_{c}")}),
        );
        assert_eq!(has["data"]["has"], false, "nothing created: {has}");
    }
}

#[test]
fn doctor_names_the_release_given_or_probed() {
    let url = standin("Q2Z_MILVUS_URL");
    let out = q2z_command(&["doctor", "--milvus-url", &url, "--milvus-version", "2.6.24"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Milvus 2.6.24 (as given"), "{text}");
    assert!(text.contains("[x] Idempotency-Key"), "{text}");
    let out = q2z_command(&["doctor", "--milvus-url", &url, "--json"])
        .env_remove("MILVUS_VERSION")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = if at_least((2, 5, 4)) {
        "Milvus 2.5.4 (probed"
    } else {
        "Milvus 2.4.0 (probed"
    };
    assert!(v["server"].as_str().unwrap().starts_with(want), "{v}");
}

/// The Parquet files of an import (object keys, from the stage's ledger).
fn imported_keys(stage: &std::path::Path, c: &str) -> Vec<String> {
    let ledger: Value =
        serde_json::from_slice(&std::fs::read(stage.join("import-state.json")).unwrap()).unwrap();
    ledger["targets"]
        .as_object()
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|t| t.pointer(&format!("/{c}/chunks")))
        .filter_map(Value::as_object)
        .flat_map(|c| c.values())
        .filter_map(|c| c["key"].as_str().map(String::from))
        .collect()
}

/// POSTs to the target with extra headers.
fn milvus_post_with(path: &str, body: Value, headers: &[(&str, &str)]) -> Value {
    let url = standin("Q2Z_MILVUS_URL");
    let mut rb = reqwest::blocking::Client::new()
        .post(format!("{url}/v2/vectordb/{path}"))
        .bearer_auth(standin("Q2Z_MILVUS_TOKEN"))
        .json(&body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().unwrap();
    if r.status() == 404 {
        return json!({"http": 404});
    }
    r.json().unwrap()
}

fn wait_state(job: &str, done: &[&str]) -> Value {
    for _ in 0..300 {
        let d = milvus_post("jobs/import/get_progress", json!({"jobId": job}));
        let s = d["data"]["state"].as_str().unwrap_or("").to_string();
        if done.contains(&s.as_str()) {
            return d["data"].clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("job {job} never reached {done:?}");
}

#[test]
fn the_stand_in_follows_the_release_routes_two_phase_import_and_idempotency_key() {
    let c = format!("profjob{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(&c, (1..=8).map(|i| point(i, json!({"i": i}))).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pj_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("pj_{c}");
    let keys = imported_keys(stage.path(), &c);
    assert!(!keys.is_empty());
    let files: Vec<Vec<&String>> = keys.iter().map(|k| vec![k]).collect();
    // Routes by release.
    let flush = milvus_post_with("collections/flush", json!({"collectionName": target}), &[]);
    assert_eq!(flush.get("http").is_some(), !at_least((2, 5, 4)), "{flush}");
    let describe = milvus_post_with("jobs/import/describe", json!({"jobId": "1"}), &[]);
    assert_eq!(
        describe.get("http").is_some(),
        !at_least((2, 4, 13)),
        "{describe}"
    );
    // Option values are strings on every line (request_v2.go ImportReq.Options).
    let bad = milvus_post(
        "jobs/import/create",
        json!({"collectionName": target, "files": files, "options": {"auto_commit": false}}),
    );
    assert_eq!(bad["code"], 1801, "{bad}");
    // Two-phase import (3.0): the rows wait, invisible, until the commit.
    let cleared = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": "id > 0"}),
    );
    assert_eq!(cleared["code"], 0, "{cleared}");
    assert_eq!(target_count(&target), 0);
    let created = milvus_post(
        "jobs/import/create",
        json!({"collectionName": target, "files": files, "options": {"auto_commit": "false"}}),
    );
    let job = created["data"]["jobId"].as_str().unwrap().to_string();
    if at_least((3, 0, 0)) {
        let u = wait_state(&job, &["Uncommitted"]);
        // import_util.go GetJobProgress: progress 99, importedRows = totalRows = rows read.
        assert_eq!(
            (&u["progress"], &u["importedRows"], &u["totalRows"]),
            (&json!(99), &json!(8), &json!(8)),
            "{u}"
        );
        assert_eq!(
            target_count(&target),
            0,
            "nothing visible before the commit"
        );
        let r = milvus_post("jobs/import/commit", json!({"jobId": job}));
        assert_eq!(r["code"], 0, "{r}");
        wait_state(&job, &["Completed"]);
        assert_eq!(target_count(&target), 8);
        let late = milvus_post("jobs/import/abort", json!({"jobId": job}));
        assert_eq!(late["code"], 2100, "too late to abort: {late}");
    } else {
        // Before 3.0 the option means nothing: the job commits itself.
        wait_state(&job, &["Completed"]);
        assert_eq!(target_count(&target), 8);
        let r = milvus_post_with("jobs/import/commit", json!({"jobId": job}), &[]);
        assert_eq!(r["http"], 404, "{r}");
    }
    // Idempotency-Key (2.6.24, 3.0.2): the same key answers the first job.
    let key = [("Idempotency-Key", "q2z-test-key-1")];
    let body = json!({"collectionName": target, "files": files});
    let a = milvus_post_with("jobs/import/create", body.clone(), &key);
    let b = milvus_post_with("jobs/import/create", body, &key);
    let (a, b) = (a["data"]["jobId"].clone(), b["data"]["jobId"].clone());
    let honoured = honours_idempotency_key();
    assert_eq!(a == b, honoured, "{a} {b}");
    for j in [&a, &b] {
        let d = wait_state(j.as_str().unwrap(), &["Completed"]);
        assert_eq!(d["importedRows"], 8, "{d}");
    }
}

#[test]
fn a_repair_imports_its_rows_again_under_a_new_job_key() {
    // On a release that honours Idempotency-Key, a key reused for the repair's job would answer
    // the first import's job and send nothing: the rows deleted here would stay missing.
    let c = format!("profrep{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    upsert(&c, (1..=20).map(|i| point(i, json!({"i": i}))).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pr_", &[&c], &[]);
    let (code, out, err) = import(stage.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let target = format!("pr_{c}");
    let r = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": "id in [1, 2, 3, 4, 5]"}),
    );
    assert_eq!(r["code"], 0, "{r}");
    let (code, out, err) = verify(stage.path(), &[]);
    assert_eq!(code, 3, "{out}{err}");
    let mut args = vec!["--repair"];
    let bucket = bucket_args();
    args.extend(bucket.iter().map(String::as_str));
    let (code, out, err) = verify(stage.path(), &args);
    assert_eq!(code, 0, "{out}{err}");
    let d = target_vs_source(&c, &target);
    assert!(d.is_empty(), "after the repair: {d:#?}");
}

#[test]
fn a_lost_job_creation_answer_leaves_one_job_on_every_line() {
    // The job is made, its answer lost (a proxy timing out): where the release honours
    // Idempotency-Key the creation is sent again with the same key and answers that job;
    // elsewhere the job list is searched. One job, the rows once, either way.
    let (_, stage, target) = staged_source("proflost", "pl_", 10);
    milvus_faults(json!({"lose_import_answer_for": target}));
    let (ok, text) = bulk_import_logged(stage.path());
    assert!(ok, "{text}");
    assert!(
        text.contains("answer to an import-job creation was lost"),
        "{text}"
    );
    let honoured = honours_idempotency_key();
    assert_eq!(
        text.contains("same Idempotency-Key answered its job"),
        honoured,
        "{text}"
    );
    let jobs = milvus_post("jobs/import/list", json!({"collectionName": target}));
    assert_eq!(
        jobs["data"]["records"].as_array().unwrap().len(),
        1,
        "{jobs}"
    );
    assert_eq!(target_count(&target), 10);
}

/// The import jobs of a collection as the stand-in lists them: (job id, state).
fn jobs_of(target: &str) -> Vec<(String, String)> {
    let jobs = milvus_post("jobs/import/list", json!({"collectionName": target}));
    jobs["data"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["jobId"].as_str().unwrap_or_default().to_string(),
                r["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_job_that_read_other_rows_than_the_stage_is_aborted_on_3_0_and_caught_by_the_count_before() {
    // The server reads one row fewer than the file holds. On the 3.0 line (two-phase import)
    // q2z sees it while the job is Uncommitted, aborts it (nothing lands), checks the upload
    // and sends the files again: the target ends exact. Earlier lines commit by themselves:
    // the rows land short, and the import's own count says so.
    let (c, stage, target) = staged_source("profshort", "ps_", 20);
    milvus_faults(json!({"drop_rows_for": target}));
    let (ok, text) = bulk_import_logged(stage.path());
    let jobs = jobs_of(&target);
    if at_least((3, 0, 0)) {
        assert!(ok, "{text}");
        assert!(
            text.contains("the job read 19 rows where the stage holds 20"),
            "{text}"
        );
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        assert!(jobs.iter().any(|(_, s)| s == "Failed"), "{jobs:?}");
        assert_eq!(target_count(&target), 20);
        assert!(target_vs_source(&c, &target).is_empty());
    } else {
        assert!(!ok, "a short import must not pass: {text}");
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(target_count(&target), 19, "{text}");
    }
}

#[test]
fn an_import_killed_between_uncommitted_and_commit_is_committed_by_the_rerun() {
    let (c, stage, target) = staged_source("profkill", "pk_", 12);
    let args = import_args(stage.path(), "bulk");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--drop-existing");
    if !at_least((3, 0, 0)) {
        // No two-phase import before 3.0: q2z sends no commit (the route is absent, a call
        // would fail the import) and the job completes by itself.
        let (code, out, err) = run_q2z(&args);
        assert_eq!(code, 0, "{out}{err}");
        let jobs = jobs_of(&target);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].1, "Completed");
        assert_eq!(target_count(&target), 12);
        return;
    }
    milvus_faults(json!({"hang_commit_for": target, "commit_hung": null}));
    let mut child = q2z_command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let f = milvus_faults(json!({}));
        if f["data"]["commit_hung"].is_string() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "q2z never sent the commit: {f}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // q2z is inside its commit request: kill -9.
    child.kill().unwrap();
    child.wait().unwrap();
    milvus_faults(json!({"hang_commit_for": null}));
    let jobs = jobs_of(&target);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].1, "Uncommitted", "{jobs:?}");
    assert_eq!(
        target_count(&target),
        0,
        "nothing visible before the commit"
    );
    // The same command again: the ledger's job is found Uncommitted, checked and committed.
    let args: Vec<&str> = args
        .into_iter()
        .filter(|a| *a != "--drop-existing")
        .collect();
    let (code, out, err) = run_q2z(&args);
    assert_eq!(code, 0, "{out}{err}");
    let jobs = jobs_of(&target);
    assert_eq!(jobs.len(), 1, "no second job: {jobs:?}");
    assert_eq!(jobs[0].1, "Completed", "{jobs:?}");
    assert_eq!(target_count(&target), 12);
    assert!(target_vs_source(&c, &target).is_empty());
}

#[test]
fn a_creation_refused_by_the_job_limit_is_sent_again_and_makes_one_job() {
    // datacoord refuses a new job while maxImportJobNum jobs run (before it looks at the
    // Idempotency-Key): q2z waits and sends the same creation again. One job, the rows once.
    let (c, stage, target) = staged_source("proflimit", "plim_", 10);
    milvus_faults(json!({"job_limit_for": {"collection": target, "seconds": 5}}));
    let (ok, text) = bulk_import_logged(stage.path());
    assert!(ok, "{text}");
    assert!(text.contains("import job limit is reached"), "{text}");
    let jobs = jobs_of(&target);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(target_count(&target), 10);
    // While the limit holds, the raw creation is refused with the server's words.
    milvus_faults(json!({"job_limit_for": {"collection": target, "seconds": 60}}));
    let keys = imported_keys(stage.path(), &c);
    let files: Vec<Vec<&String>> = keys.iter().map(|k| vec![k]).collect();
    let r = milvus_post(
        "jobs/import/create",
        json!({"collectionName": target, "files": files}),
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("The number of jobs has reached the limit"),
        "{r}"
    );
    milvus_faults(json!({"job_limit_for": null}));
}

#[test]
fn plan_against_the_target_says_what_its_release_lacks_for_the_mapping() {
    // gen_named: a sparse vector; `flag` promoted to a nullable field.
    let qdrant = standin("Q2Z_QDRANT_URL");
    let milvus = standin("Q2Z_MILVUS_URL");
    let (code, out, err) = run_q2z(&[
        "plan",
        "--qdrant-url",
        &qdrant,
        "-c",
        "gen_named",
        "--promote",
        "flag:Bool",
        "--milvus-url",
        &milvus,
        // The release the stand-in follows (probing answers the oldest of its line).
        "--milvus-version",
        &std::env::var("Q2Z_MILVUS_PROFILE").unwrap_or_else(|_| "2.5.16".into()),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let t = &v[0]["target"];
    assert!(t["server"].as_str().unwrap().contains("Milvus"), "{t}");
    let notes: Vec<&str> = t["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let has = |s: &str| notes.iter().any(|n| n.contains(s));
    assert_eq!(has("are nullable"), !at_least((2, 5, 0)), "{notes:#?}");
    assert_eq!(has("empty sparse row"), !at_least((2, 5, 7)), "{notes:#?}");
    // What the collection gets there: exactly-once jobs by two-phase commit from 3.0.
    let gets = t["gets"].to_string();
    assert_eq!(gets.contains("two-phase"), at_least((3, 0, 0)), "{gets}");
    assert_eq!(
        has("refuses over REST"),
        !at_least((2, 4, 12)),
        "{notes:#?}"
    );
}

#[test]
fn points_without_their_sparse_vector_go_where_the_line_takes_them_or_are_refused_up_front() {
    // A missing sparse vector is staged as an empty sparse row: REST takes it from 2.4.12, a
    // Parquet import from 2.5.7. On 2.4.12–2.5.6 (or a release only probed) a bulk import
    // upserts the chunks holding one and imports the others; before 2.4.12 nothing is created
    // and the error names the fix. Every line ends with every point, sparse vectors exact.
    let c = format!("profsp{}", rand::random::<u32>());
    create_collection(
        &c,
        json!({"vectors": {"d": {"size": 4, "distance": "Dot"}}, "sparse_vectors": {"sp": {}}}),
    );
    let pts: Vec<Value> = (1..=12u64)
        .map(|i| {
            let mut v = json!({"d": [0.25, -0.5, 0.125, i as f32]});
            if i < 10 {
                v["sp"] = json!({"indices": [i as u32, 100], "values": [0.5, 1.5]});
            }
            // A null-valued key (REST upserts drop it, an import keeps it: verify must know
            // which way the chunk went).
            json!({"id": i, "vector": v, "payload": {"i": i, "maybe": null}})
        })
        .collect();
    upsert(&c, pts);
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "psp_", &[&c], &["--ranges", "3"]);
    let target = format!("psp_{c}");
    let (ok, text) = bulk_import_logged(stage.path());
    let has =
        || milvus_post("collections/has", json!({"collectionName": target}))["data"]["has"].clone();
    if !at_least((2, 4, 12)) {
        assert!(!ok, "{text}");
        assert!(
            text.contains("3 points are staged with an empty sparse row")
                && text.contains("import into a newer Milvus"),
            "{text}"
        );
        assert_eq!(has(), json!(false), "nothing created: {text}");
        return;
    }
    assert!(ok, "{text}");
    assert_eq!(target_count(&target), 12);
    // Told the release, q2z imports every chunk from 2.5.7 and on 2.4.12–2.5.6 upserts the one
    // chunk holding points 10–12 and imports the other two. Not told (a probe bounds the
    // release from below only), it imports them all, with a warning.
    let told = std::env::var("MILVUS_VERSION").is_ok();
    let routed = text
        .contains("1 of 3 chunks upserted over REST: they hold 3 rows without their sparse vector");
    assert_eq!(routed, told && !at_least((2, 5, 7)), "{text}");
    assert_eq!(text.contains("give --milvus-version"), !told, "{text}");
    // Field by field, the sparse vectors (the empty ones included).
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_synced_point_without_its_sparse_vector_goes_where_the_line_takes_it() {
    // Imported whole (every point has its sparse vector), then a new point without one and
    // some updates synced past --bulk-over: from 2.5.7 through bulk import; on 2.4.12–2.5.6
    // (whose import fails on an empty sparse row) the range is upserted instead; before
    // 2.4.12 (REST refuses it too) sync stops naming the point.
    let c = format!("profss{}", rand::random::<u32>());
    create_collection(
        &c,
        json!({"vectors": {"d": {"size": 4, "distance": "Dot"}}, "sparse_vectors": {"sp": {}}}),
    );
    let pt = |i: u64, sparse: bool, tag: u64| {
        let mut v = json!({"d": [0.25, -0.5, 0.125, i as f32]});
        if sparse {
            v["sp"] = json!({"indices": [i as u32, 100], "values": [0.5, 1.5]});
        }
        json!({"id": i, "vector": v, "payload": {"i": i, "tag": tag}})
    };
    upsert(&c, (1..=12u64).map(|i| pt(i, true, 0)).collect());
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pss_", &[&c], &[]);
    let target = format!("pss_{c}");
    let (ok, text) = bulk_import_logged(stage.path());
    assert!(ok, "{text}");
    let mut changes: Vec<Value> = (1..=4u64).map(|i| pt(i, true, 1)).collect();
    changes.push(pt(77, false, 1));
    upsert(&c, changes);
    let mut args = bucket_args();
    args.extend(["--bulk-over".into(), "1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, v, text) = sync(stage.path(), &c, &args);
    if !at_least((2, 4, 12)) {
        assert_ne!(code, 0, "{text}");
        assert!(
            text.contains("point 77") && text.contains("no sparse vector"),
            "{text}"
        );
        return;
    }
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (1, 4, 0), "{v}");
    let bulk_rows = v[0]["bulk_rows"].as_u64().unwrap_or(0);
    // Told the release (MILVUS_VERSION), q2z imports from 2.5.7. Not told (the main stand-in's
    // run), it probes: REST reports no version and the probe only bounds it from below (2.5.4
    // where `collections/flush` answers), so the rows go the way every release since 2.4.12
    // takes: upserts.
    let told = std::env::var("MILVUS_VERSION").is_ok();
    if at_least((2, 5, 7)) && told {
        assert_eq!(bulk_rows, 5, "past --bulk-over: one bulk job: {v}");
    } else {
        assert_eq!(bulk_rows, 0, "upserted, not imported: {v}");
    }
    assert_eq!(target_count(&target), 13);
    let q = milvus_post(
        "entities/query",
        json!({"collectionName": target, "filter": "tag == 1", "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
    );
    assert_eq!(q["data"][0]["count(*)"], 5, "every change landed: {q}");
    // Field by field, the sparse vectors (and point 77's empty one) included.
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn geo_points_become_geometry_fields_where_the_line_has_them() {
    // A key Qdrant indexes as geo, promoted (its type taken from the index): from 2.6.4 a
    // GEOMETRY field (RTREE) whose WKT, read back from the target, holds every coordinate
    // exact, verified field by field and kept up by sync; an older line refuses it before
    // anything is created (told the release) or names the fix with the server's refusal.
    let c = indexed_collection("profgeo", "loc", "geo");
    let fine = -73.98565 + 1e-9;
    let loc = |i: u64| match i % 4 {
        0 => json!({"lon": 13.408223, "lat": 52.516876}),
        1 => json!({"lon": fine, "lat": 40.748817}),
        2 => json!([{"lon": 151.20929, "lat": -33.868820000000014}, {"lon": 0.1, "lat": -0.2}]),
        _ => Value::Null,
    };
    upsert(
        &c,
        (1..=12u64)
            .map(|i| point(i, json!({"i": i, "loc": loc(i)})))
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(stage.path(), "pgeo_", &[&c], &["--promote", "loc"]);
    let target = format!("pgeo_{c}");
    let (ok, text) = bulk_import_logged(stage.path());
    let has =
        || milvus_post("collections/has", json!({"collectionName": target}))["data"]["has"].clone();
    if !at_least((2, 6, 4)) {
        assert!(!ok, "{text}");
        assert!(
            text.contains("loc (Geometry, 2.6.4+)") && text.contains("JSON"),
            "{text}"
        );
        assert_eq!(has(), json!(false), "nothing created: {text}");
        return;
    }
    assert!(ok, "{text}");
    let locs = || field_values(&target, "loc");
    let got = locs();
    assert_eq!(got[&4], "POINT (13.408223 52.516876)", "{got:?}");
    assert_eq!(
        got[&1],
        json!(format!("POINT ({fine} 40.748817)")),
        "{got:?}"
    );
    assert_eq!(
        got[&2], "MULTIPOINT (151.20929 -33.868820000000014, 0.1 -0.2)",
        "{got:?}"
    );
    assert_eq!(got[&3], Value::Null, "{got:?}");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    // A point that moved reaches the target through sync's REST upserts.
    upsert(
        &c,
        vec![point(
            4,
            json!({"i": 4, "loc": {"lon": 2.2945, "lat": 48.8584}}),
        )],
    );
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 1, 0), "{v}");
    assert_eq!(locs()[&4], "POINT (2.2945 48.8584)");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn datetimes_promoted_as_timestamptz_arrive_as_their_instants_where_the_line_has_it() {
    // A key Qdrant indexes as datetime, promoted as Timestamptz: from 2.6.6 each value arrives as
    // its instant (UTC, to the microsecond) in every text form Qdrant reads — some of which
    // Milvus itself would refuse (a date alone, `+0130`) — verified and kept up by sync; an
    // older line is refused with the fix.
    let c = indexed_collection("proftz", "at", "datetime");
    let texts = [
        "2024-01-01T10:00:00+02:00",
        "2024-01-01T10:00:00.123456789Z",
        "2024-03-05 07:08:09",
        "2024-03-05",
        "2024-03-05 07:08:09+0130",
    ];
    upsert(
        &c,
        (1..=6u64)
            .map(|i| {
                let at = texts.get(i as usize - 1).map_or(Value::Null, |t| json!(t));
                point(i, json!({"i": i, "at": at}))
            })
            .collect(),
    );
    let stage = tempfile::tempdir().unwrap();
    stage_export(
        stage.path(),
        "ptz_",
        &[&c],
        &["--promote", "at:Timestamptz"],
    );
    let target = format!("ptz_{c}");
    let (ok, text) = bulk_import_logged(stage.path());
    if !at_least((2, 6, 6)) {
        assert!(!ok, "{text}");
        assert!(text.contains("at (Timestamptz, 2.6.6+)"), "{text}");
        let has = milvus_post("collections/has", json!({"collectionName": target}));
        assert_eq!(has["data"]["has"], json!(false), "nothing created: {text}");
        return;
    }
    assert!(ok, "{text}");
    let ats = || {
        field_values(&target, "at")
            .into_values()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ats(),
        vec![
            json!("2024-01-01T08:00:00Z"),
            json!("2024-01-01T10:00:00.123456Z"),
            json!("2024-03-05T07:08:09Z"),
            json!("2024-03-05T00:00:00Z"),
            json!("2024-03-05T05:38:09Z"),
            Value::Null,
        ]
    );
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
    upsert(
        &c,
        vec![point(
            6,
            json!({"i": 6, "at": "2025-06-30T23:59:59.5-03:00"}),
        )],
    );
    let (code, v, text) = sync(stage.path(), &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(counts(&v), (0, 1, 0), "{v}");
    assert_eq!(ats()[5], "2025-07-01T02:59:59.5Z");
    let (code, out, err) = verify(stage.path(), &["--full"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A Qdrant collection (4-d, Dot) with a payload index of `schema` on `key`.
fn indexed_collection(prefix: &str, key: &str, schema: &str) -> String {
    let c = format!("{prefix}{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let r = qdrant(
        reqwest::Method::PUT,
        &format!("/collections/{c}/index"),
        json!({"field_name": key, "field_schema": schema}),
    );
    assert_eq!(r["status"], "ok", "{r}");
    c
}

/// A field's value in every row of a target collection (at most 100), by id, as its REST
/// query output carries it.
fn field_values(target: &str, field: &str) -> std::collections::BTreeMap<u64, Value> {
    let q = milvus_post(
        "entities/query",
        json!({"collectionName": target, "filter": "id > 0", "outputFields": [field], "consistencyLevel": "Strong", "limit": 100}),
    );
    q["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}"))
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r[field].clone()))
        .collect()
}
