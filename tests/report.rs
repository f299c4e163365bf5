//! The migration report (`q2z report`): built from what export, import, verify, search parity
//! and repair record in the stage; its JSON fields, its verdicts (passed, and failed with the
//! fix), and the HTML opened in headless Chromium (Debian's package, installed by .ci/run):
//! no console error, each verdict shown, no URL in the file, under 1 MB for 100 collections.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The bundled snapshots `scripts/demo.sh` migrates: a real Qdrant 1.19 one (named float32 and
/// float16 vectors, a sparse vector) and a generated one of two shards.
fn demo_snapshots() -> [String; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    [
        "qdrant-1.19/fx_named.collection.snapshot",
        "gen_ints.collection.snapshot",
    ]
    .map(|f| root.join(f).to_string_lossy().into_owned())
}

fn snapshot() -> String {
    demo_snapshots()[1].clone()
}

/// Exports `snapshots` into `stage` under target prefix `prefix`, and imports them.
fn migrated_from(stage: &Path, prefix: &str, snapshots: &[String]) {
    let s = stage.to_str().unwrap();
    let mut args = vec!["export", "--snapshot"];
    args.extend(snapshots.iter().map(String::as_str));
    args.extend(["--stage", s, "--target-prefix", prefix]);
    let (code, out, err) = run_q2z(&args);
    assert_eq!(code, 0, "export: {out}{err}");
    // The token on the command line (not only in the environment): the report must not show it.
    let token = standin("Q2Z_MILVUS_TOKEN");
    let (code, out, err) = import(stage, "bulk", &["--drop-existing", "--token", &token]);
    assert_eq!(code, 0, "import: {out}{err}");
}

/// The bundled generated snapshot exported and imported: its target collection.
fn migrated(stage: &Path, prefix: &str) -> String {
    migrated_from(stage, prefix, &[snapshot()]);
    format!("{prefix}gen_ints")
}

/// `q2z report --json` of `stage`: (the JSON printed, the HTML written).
fn report(stage: &Path) -> (Value, String, PathBuf) {
    let out_file = stage.join("report.html");
    let (code, out, err) = run_q2z(&[
        "report",
        "--stage",
        stage.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "report: {out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let beside: Value =
        serde_json::from_slice(&std::fs::read(out_file.with_extension("json")).unwrap()).unwrap();
    assert_eq!(v, beside, "the JSON file holds what --json printed");
    let html = std::fs::read_to_string(&out_file).unwrap();
    (v, html, out_file)
}

/// Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Missing: fail loudly.
fn chromium() -> &'static str {
    let bin = "/usr/bin/chromium";
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: install Debian's chromium package (apt-get install -y chromium), as .ci/run does"
    );
    bin
}

/// Opens `page` in headless Chromium: (the DOM after load, the console messages).
fn open_in_chromium(page: &Path, screenshot: Option<&Path>) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,2400",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match screenshot {
        Some(p) => c.arg(format!("--screenshot={}", p.display())),
        None => c.arg("--dump-dom"),
    };
    let out = c
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {out:?}");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// The checks every report page passes: no URL, each collection's verdict in the DOM after
/// Chromium loaded it, and nothing on the console.
fn check_page(html: &str, file: &Path, verdicts: &[(&str, &str)]) {
    assert!(
        !html.to_lowercase().contains("http"),
        "the page holds a URL: {}",
        html.lines()
            .find(|l| l.to_lowercase().contains("http"))
            .unwrap_or("")
    );
    for bad in ["<script", "<img", "<link", "url(", "@import"] {
        assert!(!html.contains(bad), "the page holds {bad}");
    }
    let (dom, console) = open_in_chromium(file, None);
    assert!(console.is_empty(), "console messages: {console:#?}");
    for (name, verdict) in verdicts {
        let section = dom
            .split(&format!("<section id=\"c-{name}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section of {name} in the DOM"));
        let heading = &section[..section.find("</h2>").unwrap()];
        assert!(
            heading.contains(&format!(">{verdict}</span>")),
            "{name}: wanted {verdict} in {heading}"
        );
    }
}

#[test]
fn the_console_check_sees_a_broken_page() {
    // The check below would pass on any page if Chromium's console never reached us.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.html");
    std::fs::write(
        &p,
        "<!DOCTYPE html><html><body><svg width=\"9\" height=\"9\"><path d=\"M1,x\"/></svg></body></html>",
    )
    .unwrap();
    let (_, console) = open_in_chromium(&p, None);
    assert!(
        console.iter().any(|l| l.contains("attribute d")),
        "{console:?}"
    );
}

#[test]
fn a_migration_report_shows_its_evidence_and_opens_offline() {
    let stage_dir = tempfile::tempdir().unwrap();
    let stage = stage_dir.path();
    // The demo's collections (the demo itself runs `migrate`; here each step on its own, so
    // every kind of run is recorded).
    let snaps = demo_snapshots();
    migrated_from(stage, "rep_", &snaps);
    let target = "rep_gen_ints";
    let mut args = vec!["--search", "20", "--seed", "5", "--snapshot"];
    args.extend(snaps.iter().map(String::as_str));
    let (code, out, err) = verify(stage, &args);
    assert_eq!(code, 0, "verify --search: {out}{err}");
    let (v, html, file) = report(stage);

    let names: Vec<&str> = v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fx_named", "gen_ints"]);
    assert_eq!(v["collections"][0]["verdict"]["status"], "PASSED");
    let c = &v["collections"][1];
    assert_eq!(c["target"], target);
    assert_eq!(c["verdict"]["status"], "PASSED", "{}", c["verdict"]);
    let staged = c["counts"]["staged"].as_u64().unwrap();
    assert!(staged > 0);
    assert_eq!(c["counts"]["target"].as_u64(), Some(staged));
    assert_eq!(
        target_count(target),
        staged,
        "the report's count is the target's"
    );
    // The stage's rows reached the target chunk by chunk, each with its time.
    assert_eq!(
        c["export_progress"].as_array().unwrap().last().unwrap()[1],
        staged
    );
    assert_eq!(
        c["import_progress"].as_array().unwrap().last().unwrap()[1],
        staged
    );
    assert!(
        c["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "imported")
    );
    // The verify run's verification is the one kept, with how much it compared.
    let ver = &c["verification"];
    assert_eq!(ver["by"], "verify");
    assert_eq!(ver["ok"], true);
    assert_eq!(ver["rows_compared"].as_u64(), Some(staged.min(1000)));
    assert!(ver["fields_per_row"].as_u64().unwrap() >= 3, "{ver}");
    assert!(
        ver["target_release"]
            .as_str()
            .unwrap()
            .starts_with("Milvus ")
    );
    // Mapping: the id, the vector with its index, $meta.
    let fields: Vec<&str> = c["mapping"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"id") && fields.contains(&"$meta"),
        "{fields:?}"
    );
    // Search parity: every query's figures, within their ranges.
    let sfields = c["search"]["fields"].as_array().unwrap();
    assert!(!sfields.is_empty());
    for f in sfields {
        let qs = f["queries"].as_array().unwrap();
        assert!(!qs.is_empty() && qs.len() <= 20, "{f}");
        for q in qs {
            let o = q["overlap"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&o));
            assert!(q["point"].is_string());
        }
    }
    // Every run, in order, as typed but without the token.
    let runs = v["runs"].as_array().unwrap();
    let commands: Vec<&str> = runs
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["export", "import", "verify"]);
    assert!(
        runs.iter()
            .all(|r| r["exit_code"] == 0 && r["commit"].is_string())
    );
    let token = standin("Q2Z_MILVUS_TOKEN");
    let text = v.to_string();
    assert!(!text.contains(&token), "the token reached the report");
    assert!(runs[1]["args"].as_array().unwrap().contains(&json!("***")));

    assert!(!html.contains(&token));
    // Each plain pass's distributions: charts, or one line when every query had one value.
    assert_eq!(
        html.matches("overlap@k per query").count(),
        4,
        "fx_named's three fields and gen_ints's one"
    );
    check_page(
        &html,
        &file,
        &[("fx_named", "PASSED"), ("gen_ints", "PASSED")],
    );
    let shot = stage.join("report.png");
    let (_, console) = open_in_chromium(&file, Some(&shot));
    assert!(console.is_empty(), "{console:?}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot was taken"
    );

    // 100 collections (each with a thousand chunks) stay under 1 MB: the HTML is drawn from
    // the JSON, and its long lists are cut (the JSON keeps them).
    let mut big: q2z::report::Report = serde_json::from_value(v.clone()).unwrap();
    // fx_named: three vector fields, each searched plain and filtered (the most charts).
    let one = big.collections[0].clone();
    big.collections = (0..100)
        .map(|i| {
            let mut c = one.clone();
            c.name = format!("collection_{i}");
            let chunk = c.chunks[0].clone();
            c.chunks = vec![chunk; 1000];
            c
        })
        .collect();
    let page = q2z::report::html::render(&big);
    eprintln!("report of 100 collections: {} bytes", page.len());
    assert!(page.len() < 1 << 20, "{} bytes", page.len());
    assert_eq!(page.matches(">PASSED</span>").count(), 200);
}

#[test]
fn a_failed_verification_is_reported_with_its_fix_then_passes_after_repair() {
    let stage_dir = tempfile::tempdir().unwrap();
    let stage = stage_dir.path();
    let target = migrated(stage, "repf_");
    let m: Value =
        serde_json::from_slice(&std::fs::read(stage.join("manifest.json")).unwrap()).unwrap();
    let first = m["collections"]["gen_ints"]["chunks"][0]["first_id"]
        .as_u64()
        .unwrap();
    let v = milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": format!("id in [{first}]")}),
    );
    assert_eq!(v["code"], 0, "{v}");
    let (code, out, err) = verify(stage, &[]);
    assert_eq!(code, 3, "verify sees the row gone: {out}{err}");
    let (v, html, file) = report(stage);
    let c = &v["collections"][0];
    assert_eq!(c["verdict"]["status"], "FAILED");
    let why = c["verdict"]["reason"].as_str().unwrap();
    assert!(why.contains("verify --repair"), "{why}");
    assert_eq!(
        c["counts"]["target"].as_u64().unwrap() + 1,
        c["counts"]["staged"].as_u64().unwrap()
    );
    assert!(
        !c["verification"]["bad_chunks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        v["runs"].as_array().unwrap().last().unwrap()["exit_code"],
        3
    );
    check_page(&html, &file, &[("gen_ints", "FAILED")]);

    let a = repair_args(&[]);
    let (code, out, err) = verify(stage, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "repair: {out}{err}");
    let (v, html, file) = report(stage);
    let c = &v["collections"][0];
    assert_eq!(c["verdict"]["status"], "PASSED", "{}", c["verdict"]);
    assert_eq!(c["repairs"].as_array().unwrap().len(), 1);
    let history = c["counts"]["history"].as_array().unwrap();
    assert!(
        history.len() >= 3,
        "import, failed verify and repair counted: {history:?}"
    );
    check_page(&html, &file, &[("gen_ints", "PASSED")]);
}

#[test]
fn sync_passes_and_the_alias_switch_are_reported_and_a_sync_after_verify_asks_for_another() {
    let c = format!("rep_sync{}", rand::random::<u32>());
    create_collection(&c, json!({"vectors": {"size": 4, "distance": "Cosine"}}));
    let point = |id: u64, n: u64| json!({"id": id, "vector": [0.1 + id as f32 / 100.0, 0.5, 0.2, 0.9], "payload": {"n": n}});
    upsert(&c, (1..=30).map(|i| point(i, i)).collect());
    let stage_dir = tempfile::tempdir().unwrap();
    let stage = stage_dir.path();
    stage_export(stage, "", &[&c], &[]);
    let alias = format!("{c}_live");
    let (code, out, err) = import(stage, "upsert", &["--alias", &alias]);
    assert_eq!(code, 0, "import: {out}{err}");
    // Changed in the source after the export: two new points, one changed, one deleted.
    upsert(&c, vec![point(31, 1), point(32, 1), point(5, 500)]);
    qdrant(
        reqwest::Method::POST,
        &format!("/collections/{c}/points/delete?wait=true"),
        json!({"points": [7]}),
    );
    let (code, rep, text) = sync(stage, &c, &[]);
    assert_eq!(code, 0, "sync: {text}");
    let (v, _, _) = report(stage);
    let col = &v["collections"][0];
    let passes = col["sync_passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "{passes:?}");
    assert_eq!(passes[0]["pass"], rep[0]["pass"]);
    assert_eq!(
        (
            passes[0]["inserted"].as_u64(),
            passes[0]["updated"].as_u64(),
            passes[0]["deleted"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(passes[0]["target_rows"], 31);
    assert!(passes[0]["ended_ms"].as_u64() >= passes[0]["started_ms"].as_u64());
    // The import's verification is older than the pass: not a sign-off any more.
    assert_eq!(
        col["verdict"]["status"], "NOT_VERIFIED",
        "{}",
        col["verdict"]
    );
    assert!(
        col["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("run q2z verify")
    );
    assert_eq!(col["alias"]["alias"], alias.as_str());
    assert_eq!(col["alias"]["target"], c.as_str());
    let (code, out, err) = verify(stage, &[]);
    assert_eq!(code, 0, "verify after sync: {out}{err}");
    let (v, html, file) = report(stage);
    let col = &v["collections"][0];
    assert_eq!(col["verdict"]["status"], "PASSED", "{}", col["verdict"]);
    assert_eq!(col["counts"]["target"], 31);
    assert!(html.contains("Sync passes") && html.contains("Cut-over"));
    check_page(&html, &file, &[(&c, "PASSED")]);
}
