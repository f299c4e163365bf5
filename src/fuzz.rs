//! Bounded mutation fuzzing of the parsers that read untrusted bytes: scroll pages, collection
//! configs, manifests, mapping files, snapshot tar listings, header and URL texts. Each target
//! starts from real inputs (the Qdrant 1.19 fixtures and `fuzz/corpus/`), mutates them, and
//! requires an `Ok` or an `Err`, never a panic. The time per target is `Q2Z_FUZZ_SECS` (default
//! 3 s, so CI stays short); `Q2Z_FUZZ_SEED` replays a run (the seed is printed on failure).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn budget() -> Duration {
    let secs = std::env::var("Q2Z_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Tokens that break parsers more often than random bytes.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e400",
    b"NaN",
    b"-0",
    b"18446744073709551616",
    b"9223372036854775808",
    b"\"\\u0000\"",
    b"..",
    b"/",
    b"\xff\xfe",
    b"[[",
    b"]]",
    b"=",
    b"\n",
    b"'",
    b"true",
];

fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if v.is_empty() {
            v.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())]);
            continue;
        }
        let at = rng.random_range(0..v.len());
        match rng.random_range(0..6) {
            0 => v[at] ^= 1 << rng.random_range(0..8),
            1 => v[at] = rng.random(),
            2 => v.truncate(at),
            3 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            4 => {
                let end = (at + rng.random_range(1..64)).min(v.len());
                v.drain(at..end);
            }
            _ => {
                let end = (at + rng.random_range(1..64)).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
        }
    }
    v
}

/// Runs `f` on mutations of `seeds` for the time budget; a panic fails with the seed.
fn fuzz(name: &str, seeds: &[Vec<u8>], mut f: impl FnMut(&[u8])) {
    let seed: u64 = std::env::var("Q2Z_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut n = 0u64;
    for s in seeds {
        f(s);
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < budget() {
        let pick = rng.random_range(0..seeds.len());
        let input = mutate(&mut rng, &seeds[pick]);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)));
        if r.is_err() {
            std::panic::set_hook(hook);
            let shown = String::from_utf8_lossy(&input[..input.len().min(400)]).into_owned();
            panic!("{name}: panic on input #{n} (Q2Z_FUZZ_SEED={seed}): {shown}");
        }
        n += 1;
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz {name}: {n} inputs in {:.1} s, no panic",
        start.elapsed().as_secs_f64()
    );
    assert!(n > 0);
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(root().join(p)).unwrap()
}

fn fixture_response(name: &str) -> Vec<u8> {
    let v: serde_json::Value =
        serde_json::from_slice(&read(format!("fixtures/qdrant-1.19/{name}"))).unwrap();
    serde_json::to_vec(&v["response"]).unwrap()
}

#[test]
fn scroll_pages() {
    let seeds = vec![
        fixture_response("fx_named.scroll_page0.json"),
        fixture_response("fx_uuid_mixed.scroll_page1.json"),
        fixture_response("fx_empty.scroll_page0.json"),
    ];
    fuzz("scroll", &seeds, |b| {
        let _ = crate::source::scroll_json::parse_scroll_bytes("c", b);
    });
}

#[test]
fn collection_configs() {
    let seeds = vec![
        read("fixtures/qdrant-1.19/fx_named.collection_info.json"),
        read("fixtures/qdrant-1.19/fx_uuid_mixed.collection_info.json"),
    ];
    fuzz("config", &seeds, |b| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            let _ = crate::source::config::parse_collection_config("c", &v["result"]["config"]);
        }
    });
}

#[test]
fn manifests() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = vec![read("fuzz/corpus/manifest.json")];
    fuzz("manifest", &seeds, |b| {
        std::fs::write(dir.path().join("manifest.json"), b).unwrap();
        if let Ok(Some(m)) = crate::stage::manifest::Manifest::load(dir.path()) {
            // A manifest that loads names only files inside the stage.
            for (name, e) in &m.collections {
                for c in &e.chunks {
                    assert!(crate::stage::layout::is_staged_file_of(name, &c.file));
                }
            }
        }
    });
}

#[test]
fn mapping_files() {
    let seeds = vec![read("fuzz/corpus/mapping.toml")];
    fuzz("mapping", &seeds, |b| {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            collection: Vec<crate::transform::mapping::CollectionMapping>,
        }
        if let Ok(t) = std::str::from_utf8(b)
            && let Ok(f) = toml::from_str::<File>(t)
        {
            for m in f.collection {
                if m.check_limits().is_ok() {
                    let _ = crate::sink::milvus::schema::milvus_create_body(&m);
                }
            }
        }
    });
}

#[test]
fn snapshot_tar_listings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.snapshot");
    let seeds = vec![read("fixtures/qdrant-1.19/fx_empty.collection.snapshot")];
    fuzz("tar", &seeds, |b| {
        std::fs::write(&path, b).unwrap();
        let _ = crate::source::snapshot::inspect(&path);
    });
}

#[test]
fn header_and_url_texts() {
    let seeds = vec![
        b"120".to_vec(),
        b"http://user:pw@host:6333/x?y#z".to_vec(),
        b"Wed, 21 Oct 2015 07:28:00 GMT".to_vec(),
    ];
    fuzz("texts", &seeds, |b| {
        let t = String::from_utf8_lossy(b);
        if let Some(d) = crate::http::retry::parse_retry_after(&t) {
            assert!(d <= Duration::from_secs(24 * 3600));
        }
        let s = crate::http::strip_credentials(&t);
        if t.contains("://user:pw@") {
            assert!(!s.contains("://user:pw@"), "{s}");
        }
        let _ = crate::stage::layout::is_safe_dir_name(&t);
    });
}
