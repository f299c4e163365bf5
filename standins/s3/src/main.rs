//! `s3-standin`: S3 on a local directory through s3s-fs, with SigV4 signature checking.
//! Objects are plain files under `ROOT/<bucket>/<key>`.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "S3 stand-in (s3s-fs, SigV4-checking)")]
struct Cli {
    /// Directory holding the buckets.
    #[arg(long)]
    root: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Access key.
    #[arg(long)]
    access_key: String,
    /// Secret key.
    #[arg(long, env = "S3_STANDIN_SECRET", hide_env_values = true)]
    secret_key: String,
    /// Buckets to create at start.
    #[arg(long)]
    bucket: Vec<String>,
    /// Write the bound address to this file once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    for b in &cli.bucket {
        std::fs::create_dir_all(cli.root.join(b)).expect("create bucket directory");
    }
    let fs = s3s_fs::FileSystem::new(&cli.root).expect("s3s-fs root");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        cli.access_key.as_str(),
        cli.secret_key.as_str(),
    ));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    if let Some(f) = &cli.addr_file {
        std::fs::write(f, addr.to_string()).expect("write addr file");
    }
    eprintln!("s3-standin listening on http://{addr}");
    // Real S3 decides conditional writes (`If-None-Match: *`, `If-Match`) atomically: of two
    // racing ones, one succeeds and the other gets 412 (AWS S3 user guide, "conditional
    // writes"). s3s-fs checks the condition and then writes (s3s-fs/src/s3.rs `put_object`),
    // so two racing creates could both succeed here: conditional PUTs are serialized.
    let conditional = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let service = service.clone();
        let conditional = conditional.clone();
        async move {
            let guarded = req.method() == hyper::Method::PUT
                && (req.headers().contains_key("if-none-match")
                    || req.headers().contains_key("if-match"));
            let _turn = if guarded {
                Some(conditional.lock().await)
            } else {
                None
            };
            hyper::service::Service::call(&service, req).await
        }
    });
    let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(sock), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
