//! Hostile and unlucky inputs against the built binary: bad flags, hostile server answers
//! (fake servers started here), tampered stages, bad mapping files, concurrent runs. Each case
//! asserts a clear error that names the fix, exit code 1 or 2 (never a panic's 101 or an
//! abort's 134), nothing written or deleted outside the stage, and no secret in any output.

mod common;

use common::fake_http::{Req, Resp, serve, serve_on};
use common::fixtures;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "SECRETKEY-h0st1le";

/// Runs q2z (no stand-ins needed) with a time limit; returns (code, stdout + stderr).
fn q2z(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_q2z"))
        .args(args)
        .env("Q2Z_LOG", "warn")
        .env_remove("QDRANT_API_KEY")
        .env_remove("MILVUS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            child.kill().unwrap();
            panic!("q2z {args:?} ran for 90 s (a loop that never ends?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(
        !text.contains(SECRET),
        "a secret reached the output of {args:?}:\n{text}"
    );
    assert!(!text.contains("panicked"), "panic in {args:?}:\n{text}");
    assert!(
        code != 101 && code != 134 && code != -1,
        "q2z {args:?} crashed ({code}):\n{text}"
    );
    (code, text)
}

/// Every file under `root` (except under `except`) with its size.
fn tree(root: &Path, except: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.starts_with(except) {
                continue;
            }
            if p.is_dir() {
                out.insert(p.clone(), 0);
                stack.push(p);
            } else {
                out.insert(p.clone(), e.metadata().map(|m| m.len()).unwrap_or(0));
            }
        }
    }
    out
}

/// `q2z export --qdrant-url URL -c fx_named --stage <area's stage> EXTRA...`.
fn export_fx_named(url: &str, a: &Area, extra: &[&str]) -> (i32, String) {
    let stage = a.s();
    let mut args = vec![
        "export",
        "--qdrant-url",
        url,
        "-c",
        "fx_named",
        "--stage",
        &stage,
    ];
    args.extend_from_slice(extra);
    q2z(&args)
}

/// A work area: `root` with a user's file in it, and `root/stage`.
struct Area {
    root: tempfile::TempDir,
}

impl Area {
    fn new() -> Area {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("users-file.txt"), b"not q2z's").unwrap();
        Area { root }
    }
    fn stage(&self) -> PathBuf {
        self.root.path().join("stage")
    }
    fn s(&self) -> String {
        self.stage().to_str().unwrap().to_string()
    }
    fn outside(&self) -> BTreeMap<PathBuf, u64> {
        tree(self.root.path(), &self.stage())
    }
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn snapshot(c: &str) -> String {
    fixtures()
        .join(format!("{c}.collection.snapshot"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A fake Qdrant serving the real fx_named answers, with `scroll` deciding each scroll page.
fn fake_qdrant(
    scroll: impl Fn(&Value) -> Value + Send + Sync + 'static,
) -> common::fake_http::Fake {
    let info = fixture_json("fx_named.collection_info.json");
    let count = fixture_json("fx_named.count_exact.json");
    serve(move |r: &Req| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/collections") => Resp::json(
            200,
            &json!({"result": {"collections": [{"name": "fx_named"}]}, "status": "ok"}),
        ),
        ("GET", "/collections/fx_named") => Resp::json(200, &info),
        ("POST", "/collections/fx_named/points/count") => Resp::json(200, &count),
        ("POST", "/collections/fx_named/points/scroll") => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            Resp::json(200, &scroll(&body))
        }
        _ => Resp::json(404, &json!({"status": {"error": "not found"}})),
    })
}

/// The real first scroll page of fx_named (ids 1..), as the server sent it.
fn page0() -> Value {
    fixture_json("fx_named.scroll_page0.json")["response"].clone()
}

#[test]
fn bad_flags_are_usage_errors() {
    let a = Area::new();
    let stage = a.s();
    let typo = a
        .root
        .path()
        .join("typo-stage")
        .to_string_lossy()
        .into_owned();
    let before = a.outside();
    for (args, says, want) in [
        (
            vec!["export", "--snapshot", "x", "--workers", "0"],
            "--workers",
            2,
        ),
        (
            vec!["export", "--snapshot", "x", "--page-size", "0"],
            "--page-size",
            2,
        ),
        (
            vec!["export", "--snapshot", "x", "--zstd-level", "99"],
            "--zstd-level",
            2,
        ),
        (
            vec!["export", "--snapshot", "x", "--max-file-bytes", "0"],
            "--max-file-bytes",
            2,
        ),
        (vec!["import", "--stage", "s"], "--milvus-url", 2),
        (
            vec![
                "import",
                "--stage",
                typo.as_str(),
                "--milvus-url",
                "http://127.0.0.1:9",
            ],
            "does not exist",
            1,
        ),
        (
            vec!["export", "--snapshot", "x", "--promote", "k:Float128"],
            "unknown type",
            1,
        ),
        (
            vec!["export", "--snapshot", "x", "--manhattan-as", "L3"],
            "--manhattan-as",
            2,
        ),
        (
            vec!["export", "--snapshot", "no-such.snapshot"],
            "check the path given to --snapshot",
            1,
        ),
    ] {
        let mut full = args.clone();
        if full[0] == "export" {
            full.extend(["--stage", stage.as_str()]);
        }
        let (code, text) = q2z(&full);
        assert_eq!(code, want, "{full:?}: {text}");
        assert!(text.contains(says), "{full:?} should name {says}: {text}");
    }
    assert_eq!(a.outside(), before);
}

#[test]
fn scratch_directory_of_the_user_is_kept_with_its_files() {
    let a = Area::new();
    let scratch = a.root.path().join("my-tmp");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(scratch.join("important.db"), b"user data").unwrap();
    let before = a.outside();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &snapshot("fx_named"),
        "--stage",
        &a.s(),
        "--scratch",
        scratch.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        a.outside(),
        before,
        "the scratch directory and its files are as they were"
    );
    // The README's air-gapped check runs without any target flag.
    let (code, text) = q2z(&["verify", "--stage", &a.s(), "--stage-only"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("all present with the sha256"), "{text}");
    let (code, text) = q2z(&["verify", "--stage", &a.s()]);
    assert_eq!(
        code, 0,
        "without --milvus-url, verify checks the stage: {text}"
    );
}

#[test]
fn a_scroll_that_does_not_advance_or_repeats_ids_stops_the_export() {
    let first = page0();
    let stuck = fake_qdrant(move |_| {
        let mut p = first.clone();
        let id = p["result"]["points"][0]["id"].clone();
        p["result"]["next_page_offset"] = id; // points back at its own first point
        p
    });
    let a = Area::new();
    let before = a.outside();
    let (code, text) = q2z(&[
        "export",
        "--qdrant-url",
        &stuck.url,
        "--api-key",
        SECRET,
        "--stage",
        &a.s(),
        "--ranges",
        "1",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("scroll order is broken") && text.contains("--snapshot"),
        "{text}"
    );
    assert_eq!(a.outside(), before);
    let parts = std::fs::read_dir(a.stage().join("fx_named"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(parts <= 1, "{parts} files staged before stopping");

    let first = page0();
    let repeats = fake_qdrant(move |_| first.clone()); // every page is the first page again
    let a = Area::new();
    let (code, text) = q2z(&[
        "export",
        "--qdrant-url",
        &repeats.url,
        "--stage",
        &a.s(),
        "--ranges",
        "1",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("comes after"), "{text}");
}

#[test]
fn hostile_headers_and_bodies_never_panic() {
    // Retry-After: nan (then negative, then huge) on the first answers, then the real ones.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let info = fixture_json("fx_empty.collection_info.json");
    let fake = serve(move |r: &Req| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if i < 3 {
            let after = ["nan", "-5", "1e300"][i];
            let mut resp = Resp::json(503, &json!({"status": {"error": "busy"}}));
            resp.headers.push(("retry-after".into(), after.into()));
            return resp;
        }
        match r.path.as_str() {
            "/collections/fx_empty" => Resp::json(200, &info),
            p if p.ends_with("/count") => {
                Resp::json(200, &json!({"result": {"count": 0}, "status": "ok"}))
            }
            p if p.ends_with("/scroll") => Resp::json(
                200,
                &json!({"result": {"points": [], "next_page_offset": null}, "status": "ok"}),
            ),
            _ => Resp::json(404, &json!({})),
        }
    });
    let (code, text) = q2z(&["plan", "--qdrant-url", &fake.url, "-c", "fx_empty"]);
    assert_eq!(code, 0, "{text}");

    // A body announced larger than any answer q2z reads.
    let huge = serve(|_| Resp {
        status: 200,
        headers: vec![("content-length".into(), (1u64 << 40).to_string())],
        body: Some(b"{}".to_vec()),
    });
    let (code, text) = q2z(&["plan", "--qdrant-url", &huge.url, "-c", "x"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("larger than"), "{text}");

    // Credentials in the URL never reach the output, even in retry warnings.
    let down = serve(|_| {
        let mut r = Resp::json(503, &json!({}));
        r.headers.push(("retry-after".into(), "0".into()));
        r
    });
    let with_password = down
        .url
        .replace("http://", &format!("http://admin:{SECRET}@"));
    let (code, text) = q2z(&["plan", "--qdrant-url", &with_password, "-c", "x"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("gave up after 8 attempts"), "{text}");
}

#[test]
fn redirects_to_another_host_are_not_followed_with_the_api_key() {
    let other = serve_on("127.0.0.2", |_| {
        Resp::json(200, &json!({"result": {"collections": []}}))
    });
    let target = format!("{}/collections", other.url);
    let redirecting = serve(move |_| Resp {
        status: 302,
        headers: vec![("location".into(), target.clone())],
        body: Some(Vec::new()),
    });
    let (code, text) = q2z(&[
        "plan",
        "--qdrant-url",
        &redirecting.url,
        "--api-key",
        SECRET,
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("redirects to another address"), "{text}");
    let seen = other.seen.lock().unwrap();
    assert!(
        seen.iter().all(|r| r.header("api-key").is_none()),
        "the key went to another host"
    );
}

#[test]
fn via_snapshot_never_writes_where_the_server_name_points() {
    let evil = std::env::temp_dir().join(format!("q2z-evil-{}.snapshot", std::process::id()));
    let _ = std::fs::remove_file(&evil);
    let bytes = std::fs::read(fixtures().join("fx_empty.collection.snapshot")).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let info = fixture_json("fx_empty.collection_info.json");
    let name = evil.to_str().unwrap().to_string();
    let fake = serve(move |r: &Req| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/collections/fx_empty") => Resp::json(200, &info),
        ("POST", p) if p.starts_with("/collections/fx_empty/snapshots") => Resp::json(
            200,
            &json!({"result": {"name": name, "size": bytes.len(), "checksum": sha}, "status": "ok"}),
        ),
        ("GET", p) if p.starts_with("/collections/fx_empty/snapshots/") => Resp {
            status: 200,
            headers: vec![],
            body: Some(bytes.clone()),
        },
        ("DELETE", _) => Resp::json(200, &json!({"result": true, "status": "ok"})),
        _ => Resp::json(404, &json!({})),
    });
    let a = Area::new();
    let before = a.outside();
    let (code, text) = q2z(&[
        "export",
        "--qdrant-url",
        &fake.url,
        "-c",
        "fx_empty",
        "--via-snapshot",
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        !evil.exists(),
        "the server's snapshot name chose a path: {}",
        evil.display()
    );
    assert_eq!(a.outside(), before);
    let left: Vec<_> = std::fs::read_dir(a.stage())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().contains(".scratch")),
        "scratch left: {left:?}"
    );
}

/// Exports fx_empty and fx_named offline into a new area's stage.
fn staged_area() -> Area {
    let a = Area::new();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &snapshot("fx_named"),
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 0, "{text}");
    a
}

#[test]
fn tampered_manifests_are_refused_and_restart_deletes_nothing_outside() {
    let a = staged_area();
    let victim = a.root.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("part-0000-000000.parquet"), b"someone else's").unwrap();
    let manifest_path = a.stage().join("manifest.json");
    let good: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut m = good.clone();
        f(&mut m);
        std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    };
    type Tamper<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a chunk outside the stage",
            Box::new(|m: &mut Value| {
                m["collections"]["fx_named"]["chunks"][0]["file"] =
                    json!("../victim/part-0000-000000.parquet");
            }),
        ),
        (
            "a collection named like a path",
            Box::new(|m: &mut Value| {
                let e = m["collections"]["fx_named"].take();
                m["collections"]["../victim"] = e;
                m["collections"].as_object_mut().unwrap().remove("fx_named");
            }),
        ),
        (
            "an absolute chunk path",
            Box::new(|m: &mut Value| {
                m["collections"]["fx_named"]["chunks"][0]["file"] =
                    json!(victim.join("part-0000-000000.parquet"));
            }),
        ),
        (
            "a cursor that is no point id",
            Box::new(|m: &mut Value| {
                m["collections"]["fx_named"]["ranges"][0]["cursor"] = json!("not-a-uuid");
            }),
        ),
        (
            "a chunk of a range that does not exist",
            Box::new(|m: &mut Value| {
                m["collections"]["fx_named"]["chunks"][0]["range"] = json!(99);
            }),
        ),
        (
            "a dim Milvus cannot take",
            Box::new(|m: &mut Value| {
                m["collections"]["fx_named"]["mapping"]["vectors"][0]["dim"] =
                    json!(1_000_000_000_000u64);
            }),
        ),
        ("not JSON", Box::new(|m: &mut Value| *m = json!("}{"))),
    ];
    for (what, f) in &cases {
        tamper(f.as_ref());
        let before = a.outside();
        for args in [
            vec!["status", "--stage", &a.s()],
            vec!["verify", "--stage", &a.s(), "--stage-only"],
            vec![
                "export",
                "--snapshot",
                &snapshot("fx_named"),
                "--stage",
                &a.s(),
            ],
        ] {
            let (code, text) = q2z(&args);
            assert_eq!(code, 1, "{what}: {args:?}: {text}");
            assert!(
                text.contains("manifest.json"),
                "{what}: names the file: {text}"
            );
            assert!(
                text.contains("--restart") || text.contains("copy it again"),
                "{what}: names the fix: {text}"
            );
        }
        let (code, text) = q2z(&[
            "export",
            "--snapshot",
            &snapshot("fx_named"),
            "--stage",
            &a.s(),
            "--restart",
        ]);
        assert_eq!(code, 0, "{what}: restart starts over: {text}");
        assert_eq!(
            a.outside(),
            before,
            "{what}: restart touched files outside the stage"
        );
        assert!(victim.join("part-0000-000000.parquet").exists());
    }
}

#[test]
fn a_bad_mapping_file_is_refused_with_the_limit() {
    let a = Area::new();
    let mapping = a.root.path().join("mapping.toml");
    let (code, text) = q2z(&[
        "plan",
        "--snapshot",
        &snapshot("fx_named"),
        "--mapping-out",
        mapping.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let good = std::fs::read_to_string(&mapping).unwrap();
    let first_dim = good
        .lines()
        .find(|l| l.starts_with("dim = "))
        .unwrap()
        .to_string();
    for (bad, says) in [
        (good.replacen(&first_dim, "dim = 1000000000000", 1), "dim"),
        (good.replacen(&first_dim, "dim = 7", 1), "dim = 7"),
        (
            good.replace("id_max_length = 64", "id_max_length = 0"),
            "id_max_length",
        ),
        ("[[collection]]\nsource = 1\n".to_string(), "not valid"),
    ] {
        std::fs::write(&mapping, &bad).unwrap();
        let (code, text) = q2z(&[
            "export",
            "--snapshot",
            &snapshot("fx_named"),
            "--stage",
            &a.s(),
            "--mapping",
            mapping.to_str().unwrap(),
        ]);
        assert!(code == 1 || code == 2, "{says}: {text}");
        assert!(text.contains(says), "should name {says}: {text}");
        assert!(
            !a.stage().join("manifest.json").exists(),
            "a refused mapping is not saved into the stage"
        );
    }
}

#[test]
fn two_runs_on_one_stage_the_second_waits_for_the_first_to_end_even_by_kill_9() {
    // A source that never answers its count: the first export holds the stage meanwhile.
    let info = fixture_json("fx_named.collection_info.json");
    let stall = serve(move |r: &Req| {
        if r.path.ends_with("/count") {
            std::thread::sleep(Duration::from_secs(120));
        }
        Resp::json(
            200,
            &json!({"result": info["result"].clone(), "status": "ok"}),
        )
    });
    let a = Area::new();
    let mut first = Command::new(env!("CARGO_BIN_EXE_q2z"))
        .args([
            "export",
            "--qdrant-url",
            &stall.url,
            "-c",
            "fx_named",
            "--stage",
            &a.s(),
        ])
        .env("Q2Z_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = a.stage().join(".q2z.lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&format!("pid {}", first.id()))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &snapshot("fx_empty"),
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("another q2z run is using it")
            && text.contains(&format!("pid {}", first.id())),
        "{text}"
    );
    // kill -9: the OS lock goes with the process; no stale lock blocks the next run.
    first.kill().unwrap();
    first.wait().unwrap();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &snapshot("fx_empty"),
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn values_milvus_refuses_stop_the_export_or_are_set_aside() {
    // The real first page of fx_named as the whole collection, with one sparse value made
    // negative (Qdrant accepts it; Milvus import refuses it).
    let mut page = page0();
    page["result"]["next_page_offset"] = Value::Null;
    let n = page["result"]["points"].as_array().unwrap().len();
    let bad_id = page["result"]["points"][3]["id"].clone();
    page["result"]["points"][3]["vector"]["keywords"]["values"][0] = json!(-0.25);
    let info = fixture_json("fx_named.collection_info.json");
    let fake = serve(move |r: &Req| match r.path.as_str() {
        "/collections/fx_named" => Resp::json(200, &info),
        p if p.ends_with("/count") => {
            Resp::json(200, &json!({"result": {"count": n}, "status": "ok"}))
        }
        p if p.ends_with("/scroll") => Resp::json(200, &page),
        _ => Resp::json(404, &json!({})),
    });
    let a = Area::new();
    let (code, text) = export_fx_named(&fake.url, &a, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("{bad_id}: sparse vector 'keywords' holds -0.25"))
            && text.contains("--invalid-values set-aside"),
        "names the point, the value and the fix: {text}"
    );
    let (code, text) = export_fx_named(
        &fake.url,
        &a,
        &["--restart", "--invalid-values", "set-aside"],
    );
    assert_eq!(code, 0, "{text}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(a.stage().join("manifest.json")).unwrap())
            .unwrap();
    let e = &m["collections"]["fx_named"];
    let staged: u64 = e["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        staged as usize,
        n - 1,
        "the point is not in the Parquet files"
    );
    let aside = e["ranges"][0]["set_aside"][0]["file"].as_str().unwrap();
    let line = std::fs::read_to_string(a.stage().join(aside)).unwrap();
    assert!(
        line.contains("\"q2z_reason\"") && line.contains("-0.25"),
        "{line}"
    );
}

#[test]
fn sources_that_would_stage_into_one_place_are_refused_before_writing() {
    let a = Area::new();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        &snapshot("fx_empty"),
        &snapshot("fx_empty"),
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("given twice"), "{text}");
    assert!(!a.stage().join("manifest.json").exists(), "nothing staged");
    let dir = a.root.path().join("snaps");
    std::fs::create_dir(&dir).unwrap();
    let (x, y) = (
        dir.join("Docs-2024.snapshot"),
        dir.join("Docs_2024.snapshot"),
    );
    std::fs::copy(snapshot("fx_empty"), &x).unwrap();
    std::fs::copy(snapshot("fx_empty"), &y).unwrap();
    let (code, text) = q2z(&[
        "export",
        "--snapshot",
        x.to_str().unwrap(),
        y.to_str().unwrap(),
        "--stage",
        &a.s(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("target collection 'Docs_2024' is also the target of 'Docs-2024'")
            && text.contains("mapping file"),
        "{text}"
    );
    assert!(!a.stage().join("manifest.json").exists(), "nothing staged");
}

/// A fake Qdrant serving the whole real fx_named collection (points.jsonl) with working scroll
/// offsets, as Qdrant orders them.
fn fake_fx_named() -> common::fake_http::Fake {
    let info = fixture_json("fx_named.collection_info.json");
    let mut points = common::fixture_points("fx_named");
    points.sort_by_key(|p| p["id"].as_u64().unwrap());
    serve(move |r: &Req| match r.path.as_str() {
        "/collections/fx_named" => Resp::json(200, &info),
        p if p.ends_with("/count") => Resp::json(
            200,
            &json!({"result": {"count": points.len()}, "status": "ok"}),
        ),
        p if p.ends_with("/scroll") => {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let from = body["offset"].as_u64().unwrap_or(0);
            let limit = body["limit"].as_u64().unwrap() as usize;
            let mut page: Vec<Value> = points
                .iter()
                .filter(|p| p["id"].as_u64().unwrap() >= from)
                .take(limit + 1)
                .cloned()
                .collect();
            let next = if page.len() > limit {
                page.pop().map(|p| p["id"].clone())
            } else {
                None
            };
            if body["with_vector"] == json!(false) {
                for p in &mut page {
                    p.as_object_mut().unwrap().remove("vector");
                    p.as_object_mut().unwrap().remove("payload");
                }
            }
            Resp::json(
                200,
                &json!({"result": {"points": page, "next_page_offset": next}, "status": "ok"}),
            )
        }
        _ => Resp::json(404, &json!({})),
    })
}

#[test]
fn a_full_disk_fails_cleanly_and_the_rerun_finishes_exactly() {
    use std::os::unix::process::CommandExt;
    let fake = fake_fx_named();
    let a = Area::new();
    let args = [
        "export",
        "--qdrant-url",
        &fake.url,
        "-c",
        "fx_named",
        "--stage",
        &a.s(),
        "--ranges",
        "1",
        "--page-size",
        "4",
        "--max-file-bytes",
        "6000",
    ];
    // No file may grow past 7 KB: chunk files stay under it (about 4 KB each), the manifest
    // (about 5 KB, plus 350 bytes a chunk) outgrows it after some chunks.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_q2z"));
    let limited = cmd
        .args(args)
        .env("Q2Z_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit only, between fork and exec.
    let out = unsafe {
        limited.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 7_000,
                rlim_max: 7_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a clean failure, not a signal: {text}"
    );
    assert!(
        text.contains("manifest.json") || text.contains(".parquet"),
        "names the file: {text}"
    );
    // What the manifest records is whole: every listed file has its sha256.
    let (code, check) = q2z(&["verify", "--stage", &a.s(), "--stage-only"]);
    assert_eq!(code, 0, "{check}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(a.stage().join("manifest.json")).unwrap())
            .unwrap();
    let before = m["collections"]["fx_named"]["chunks"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        before > 0,
        "the limit was hit mid-way, after some chunks: {check}"
    );
    // The rerun with space finishes: every point exactly once.
    let (code, text) = q2z(&args);
    assert_eq!(code, 0, "{text}");
    let (rows, mapping, total) = common::staged_rows(&a.stage(), "fx_named");
    assert_eq!(total, 297);
    common::assert_rows_match(&common::fixture_points("fx_named"), &rows, &mapping);
    let leftovers: Vec<_> = std::fs::read_dir(a.stage().join("fx_named"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn via_snapshot_refuses_a_collection_with_shards_on_other_nodes() {
    let info = fixture_json("fx_named.collection_info.json");
    let fake = serve(move |r: &Req| match r.path.as_str() {
        "/collections/fx_named" => Resp::json(200, &info),
        "/collections/fx_named/cluster" => Resp::json(
            200,
            &json!({"result": {
            "peer_id": 111, "shard_count": 2,
            "local_shards": [{"shard_id": 0, "points_count": 10, "state": "Active"}],
            "remote_shards": [{"shard_id": 1, "peer_id": 222, "state": "Active"}],
            "shard_transfers": []}, "status": "ok"}),
        ),
        _ => Resp::json(
            500,
            &json!({"status": {"error": "no snapshot must be taken"}}),
        ),
    });
    let a = Area::new();
    let (code, text) = export_fx_named(&fake.url, &a, &["--via-snapshot"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("shard 1 on peer 222") && text.contains("give all the files to --snapshot"),
        "{text}"
    );
    assert!(
        fake.seen
            .lock()
            .unwrap()
            .iter()
            .all(|r| !r.path.contains("/snapshots")),
        "no snapshot was asked for"
    );
}
