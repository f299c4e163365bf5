//! Every `q2z` command README.md and docs/guide.md show runs here, as written, against the
//! stand-ins (and every relative link of the docs resolves): each bash
//! block in a fresh working directory, with the README's host names and placeholders replaced
//! by the stand-ins' addresses (`http://qdrant:6333` → a Qdrant stand-in holding a `docs`
//! collection, `http://milvus:19530` and `https://CLUSTER_ENDPOINT` → the Milvus stand-in,
//! `http://minio:9000`, `a-bucket`, `my-bucket` → the S3 stand-in, `docs-<peer>-…snapshot` →
//! node snapshots of a generated cluster), and the stand-ins' credentials in the environment.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The `q2z …` commands of each bash block of README.md, `\` continuations joined, leading
/// `VAR=value` assignments and comments left out.
fn readme_blocks() -> Vec<Vec<String>> {
    // README.md, then the guide beside it (its recipes, in the order the README had them).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = ["README.md", "docs/guide.md"]
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .join("\n");
    let mut blocks = Vec::new();
    let mut block: Vec<String> = Vec::new();
    let mut in_bash = false;
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            if in_bash && !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            in_bash = line.trim() == "```bash";
            continue;
        }
        if !in_bash {
            continue;
        }
        let l = line.split(" #").next().unwrap_or("").trim_end();
        let l = if l.trim_start().starts_with('#') {
            ""
        } else {
            l
        };
        let cont = l.ends_with('\\');
        let l = l.trim_end_matches('\\').trim();
        if !cur.is_empty() {
            cur.push(' ');
            cur.push_str(l);
        } else {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words
                .iter()
                .position(|w| !w.contains('=') || w.starts_with('-'))
            {
                Some(i) if words[i] == "q2z" => cur = words[i..].join(" "),
                _ => continue,
            }
        }
        if !cont {
            block.push(std::mem::take(&mut cur));
        }
    }
    blocks
}

/// A Qdrant stand-in of this test's own, holding one collection `docs` (title, year, tenant).
struct OwnQdrant {
    child: Child,
    url: String,
    key: String,
    _data: tempfile::TempDir,
}

impl Drop for OwnQdrant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn own_qdrant() -> OwnQdrant {
    let data = tempfile::tempdir().unwrap();
    let addr_file = data.path().join("addr");
    let key = "readme-key".to_string();
    let bin = PathBuf::from(standin("Q2Z_STANDIN_BIN")).join("qdrant-standin");
    let child = Command::new(bin)
        .args(["serve", "--data"])
        .arg(data.path().join("d"))
        .arg("--addr-file")
        .arg(&addr_file)
        .env("QDRANT_STANDIN_API_KEY", &key)
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let url = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.is_empty()
        {
            break format!("http://{a}");
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "the Qdrant stand-in did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let http = reqwest::blocking::Client::new();
    let r = http
        .put(format!("{url}/collections/docs"))
        .header("api-key", &key)
        .json(&json!({"vectors": {"size": 4, "distance": "Cosine"}}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let points: Vec<_> = (1..=60u64)
        .map(|i| {
            json!({"id": i, "vector": [0.1, 0.2, 0.3, i as f32 / 60.0],
                   "payload": {"title": format!("doc {i}"), "year": 2000 + i % 20, "tenant": if i % 2 == 0 { "a" } else { "b" }}})
        })
        .collect();
    let r = http
        .put(format!("{url}/collections/docs/points?wait=true"))
        .header("api-key", &key)
        .json(&json!({"points": points}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    OwnQdrant {
        child,
        url,
        key,
        _data: data,
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let qdrant = own_qdrant();
    let milvus = standin("Q2Z_MILVUS_URL");
    // The README's migration creates `docs` in the target: start without one (a rerun).
    // (an alias left by an earlier run would keep Milvus from dropping its collection).
    milvus_post("aliases/drop", json!({"aliasName": "docs_live"}));
    milvus_post("collections/drop", json!({"collectionName": "docs"}));
    let blocks = readme_blocks();
    let total: usize = blocks.iter().map(Vec::len).sum();
    assert!(total >= 12, "README has {total} q2z commands");
    for block in blocks {
        let dir = tempfile::tempdir().unwrap();
        for peer in [1111, 2222] {
            let from = PathBuf::from(standin("Q2Z_GEN_FIXTURES")).join(format!(
                "cluster/gen_cluster-{peer}-2026-11-29-10-00-00.snapshot"
            ));
            std::fs::copy(
                from,
                dir.path()
                    .join(format!("docs-{peer}-2026-11-29-10-00-00.snapshot")),
            )
            .unwrap();
        }
        for cmd in &block {
            let line = cmd
                .replace("http://qdrant:6333", &qdrant.url)
                .replace("http://localhost:6333", &qdrant.url)
                .replace("http://milvus:19530", &milvus)
                .replace("https://CLUSTER_ENDPOINT", &milvus)
                .replace("http://minio:9000", &standin("Q2Z_S3_ENDPOINT"))
                .replace("a-bucket", &standin("Q2Z_S3_BUCKET"))
                .replace("my-bucket", &standin("Q2Z_S3_BUCKET"));
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "q2z");
            let out = Command::new(q2z_bin())
                .args(&words[1..])
                .current_dir(dir.path())
                .env("QDRANT_API_KEY", &qdrant.key)
                .env("MILVUS_TOKEN", standin("Q2Z_MILVUS_TOKEN"))
                .env("ZILLIZ_CLOUD_URL", &milvus)
                .env("AWS_ENDPOINT_URL", standin("Q2Z_S3_ENDPOINT"))
                .env("AWS_ACCESS_KEY_ID", standin("Q2Z_S3_ACCESS_KEY"))
                .env("AWS_SECRET_ACCESS_KEY", standin("Q2Z_S3_SECRET_KEY"))
                .env("Q2Z_LOG", "warn")
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "README command failed: {cmd}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Every relative link of README.md and docs/*.md points at a file or directory that exists.
#[test]
fn every_relative_link_of_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut broken = Vec::new();
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for part in text.split("](").skip(1) {
            let Some(target) = part.split(')').next() else {
                continue;
            };
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            seen += 1;
            if !f.parent().unwrap().join(target).exists() {
                broken.push(format!("{}: {target}", f.display()));
            }
        }
    }
    assert!(seen >= 8, "only {seen} relative links found");
    assert!(broken.is_empty(), "{broken:#?}");
}
