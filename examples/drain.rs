//! Raw drain rate of a Qdrant collection: scroll pages with N cursors over the same id ranges
//! q2z plans, and throw them away. The limit the source sets for `q2z export`.
//! `cargo run --release --example drain -- URL COLLECTION WORKERS PAGE_SIZE`

use q2z::export::{plan_ranges, scan_ids};
use q2z::source::rest::QdrantRest;
use q2z::source::{LiveCollection, SharedSource};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(serde::Deserialize)]
struct Answer {
    result: Page,
}

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    next_page_offset: serde_json::Value,
    #[allow(dead_code)]
    points: serde::de::IgnoredAny,
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (url, coll) = (&a[1], &a[2]);
    let workers: usize = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let page: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(256);
    let key = std::env::var("QDRANT_API_KEY").ok();
    let client = QdrantRest::new(url, key.clone(), Default::default()).unwrap();
    let config = client.collection_config(coll).unwrap();
    let src: SharedSource = Arc::new(LiveCollection {
        client: client.clone(),
        config,
        opened_at: q2z::source::unix_now(),
        pages: q2z::source::transport_choice::PageTransport::rest(),
    });
    let scan = scan_ids(&src, src.count().unwrap()).unwrap();
    let ranges = plan_ranges(&scan, workers * 4);
    let http = reqwest::blocking::Client::new();
    let queue = std::sync::Mutex::new(ranges);
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    // Take the lock only to pop: a `while let` on the guard would hold it for the
                    // whole range and serialise the workers.
                    let next = queue.lock().unwrap().pop();
                    let Some(r) = next else { break };
                    let mut offset = r.start.map(|p| p.to_json());
                    loop {
                        let mut body =
                            json!({"limit": page, "with_payload": true, "with_vector": true});
                        if let Some(o) = &offset {
                            body["offset"] = o.clone();
                        }
                        let mut rb = http
                            .post(format!("{url}/collections/{coll}/points/scroll"))
                            .json(&body);
                        if let Some(k) = &key {
                            rb = rb.header("api-key", k);
                        }
                        let text = rb.send().unwrap().bytes().unwrap();
                        bytes.fetch_add(text.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        // Only the next offset is read; the points are skipped unparsed.
                        let v: Answer = serde_json::from_slice(&text).unwrap();
                        let next = v.result.next_page_offset;
                        let end = r.end.as_ref().map(|e| e.to_json());
                        let past_end = match (&next, &end) {
                            (serde_json::Value::Number(n), Some(serde_json::Value::Number(e))) => {
                                n.as_u64() >= e.as_u64()
                            }
                            (serde_json::Value::Null, _) => true,
                            (n, Some(e)) => n == e,
                            _ => false,
                        };
                        if past_end {
                            break;
                        }
                        offset = Some(next);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let b = bytes.load(std::sync::atomic::Ordering::Relaxed) as f64;
    println!(
        "drain: {} points in {secs:.2}s = {:.0} points/s, {:.1} MB/s of JSON",
        scan.count,
        scan.count as f64 / secs,
        b / secs / 1e6
    );
}
