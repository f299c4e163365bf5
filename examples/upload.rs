//! Upload throughput of q2z's object-store path on the chunk files of a stage directory, with the
//! same parallelism as `q2z import` (for `benches/compare.sh`, next to raw PUTs with curl).
//! `cargo run --release --example upload -- S3_ENDPOINT BUCKET STAGE_DIR THREADS [no-checksum]`
//! (`no-checksum`: no x-amz-checksum-sha256 header, the request shape of a plain PUT).
//! Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

use q2z::sink::object_store::{StorageConfig, Uploader};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (endpoint, bucket, stage) = (&a[1], &a[2], std::path::Path::new(&a[3]));
    let threads: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(4);
    let checksum = a.get(5).map(String::as_str) != Some("no-checksum");
    let m = q2z::stage::manifest::Manifest::load(stage)
        .unwrap()
        .expect("a stage directory");
    let files: Vec<(String, u64, String)> = m
        .collections
        .values()
        .flat_map(|e| &e.chunks)
        .map(|c| (c.file.clone(), c.bytes, c.sha256.clone()))
        .collect();
    let up = Uploader::s3(StorageConfig {
        endpoint: Some(endpoint.clone()),
        bucket: bucket.clone(),
        prefix: "q2z".into(),
        region: "us-east-1".into(),
        access_key: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        session_token: None,
        ..Default::default()
    })
    .unwrap();
    let queue = std::sync::Mutex::new(files.iter());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    // Take the next file and release the lock before uploading it.
                    let next = queue.lock().unwrap().next();
                    let Some((f, _, sha)) = next else { break };
                    up.put_file(
                        &stage.join(f),
                        &up.key_for(f),
                        checksum.then_some(sha.as_str()),
                    )
                    .unwrap();
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    println!(
        "{} files, {} bytes in {secs:.2}s: {:.1} MB/s",
        files.len(),
        bytes,
        bytes as f64 / secs / 1e6
    );
}
