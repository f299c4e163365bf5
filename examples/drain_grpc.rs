//! Raw gRPC drain rate of a Qdrant collection: scroll pages over Qdrant's gRPC API with N
//! cursors over the same id ranges q2z plans, decode them (protobuf) and throw them away. The
//! limit the source sets for `q2z export --transport grpc`.
//! `cargo run --release --example drain_grpc -- REST_URL GRPC_URL COLLECTION WORKERS PAGE_SIZE`

use q2z::export::{plan_ranges, scan_ids};
use q2z::model::PointId;
use q2z::source::rest::QdrantRest;
use q2z::source::{LiveCollection, SharedSource};
use qdrant_client::Qdrant;
use qdrant_client::qdrant::ScrollPointsBuilder;
use qdrant_client::qdrant::point_id::PointIdOptions;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (url, grpc_url, coll) = (&a[1], &a[2], &a[3]);
    let workers: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(4);
    let page: u32 = a.get(5).and_then(|s| s.parse().ok()).unwrap_or(256);
    let key = std::env::var("QDRANT_API_KEY").ok();
    let client = QdrantRest::new(url, key.clone(), Default::default()).unwrap();
    let config = client.collection_config(coll).unwrap();
    let src: SharedSource = Arc::new(LiveCollection {
        client,
        config,
        opened_at: q2z::source::unix_now(),
        pages: q2z::source::transport_choice::PageTransport::rest(),
    });
    let scan = scan_ids(&src, src.count().unwrap()).unwrap();
    let ranges = plan_ranges(&scan, workers * 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let grpc = {
        let _in = rt.enter();
        Qdrant::from_url(grpc_url)
            .api_key(key)
            .skip_compatibility_check()
            .build()
            .unwrap()
    };
    let queue = std::sync::Mutex::new(ranges);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some(r) = next else { break };
                    let mut offset = r.start.clone();
                    loop {
                        let mut req = ScrollPointsBuilder::new(coll.as_str())
                            .limit(page)
                            .with_payload(true)
                            .with_vectors(true);
                        if let Some(o) = &offset {
                            req = req.offset(match o {
                                PointId::Num(n) => qdrant_client::qdrant::PointId::from(*n),
                                PointId::Uuid(u) => qdrant_client::qdrant::PointId::from(u.clone()),
                            });
                        }
                        let answer = rt.block_on(grpc.scroll(req)).unwrap();
                        let next = answer
                            .next_page_offset
                            .and_then(|p| match p.point_id_options {
                                Some(PointIdOptions::Num(n)) => Some(PointId::Num(n)),
                                Some(PointIdOptions::Uuid(u)) => Some(PointId::Uuid(u)),
                                None => None,
                            });
                        match (next, &r.end) {
                            (Some(n), Some(e)) if &n < e => offset = Some(n),
                            (Some(n), None) => offset = Some(n),
                            _ => break,
                        }
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "drain over gRPC: {} points in {secs:.2}s = {:.0} points/s",
        scan.count,
        scan.count as f64 / secs
    );
}
