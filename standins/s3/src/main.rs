//! `s3-standin`: S3 on a local directory through s3s-fs, with SigV4 signature checking.
//! Objects are plain files under `ROOT/<bucket>/<key>`.
//!
//! Besides S3, two test routes (not S3 APIs): `POST /__standin/sts?seconds=N` hands out
//! temporary keys valid N seconds, as STS `AssumeRole` does (AWS answers a request signed with
//! expired ones 400 `ExpiredToken`, "The provided token has expired."), and
//! `POST /__standin/faults?put_delay_ms=N&put_delay_prefix=P` answers PUTs of keys under P
//! N ms late (a slow upload; its keys checked on arrival).

use clap::Parser;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The long-lived key and the temporary ones handed out by `/__standin/sts` (access key →
/// secret and expiry; session token → expiry, for OAuth bearer requests).
#[derive(Debug, Default)]
struct Keys {
    main: (String, String),
    temporary: Mutex<HashMap<String, (String, Instant)>>,
    tokens: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone)]
struct Auth(Arc<Keys>);

#[async_trait::async_trait]
impl s3s::auth::S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        if access_key == self.0.main.0 {
            return Ok(self.0.main.1.as_str().into());
        }
        let t = self.0.temporary.lock().unwrap_or_else(|e| e.into_inner());
        match t.get(access_key) {
            Some((sk, until)) if Instant::now() < *until => Ok(sk.as_str().into()),
            Some(_) => Err(s3s::s3_error!(
                ExpiredToken,
                "The provided token has expired."
            )),
            None => Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// A random hex string (std's per-process random hasher keys; enough for a stand-in).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i ^ Instant::now().elapsed().as_nanos() as u64);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn query_param<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn json_response(body: String) -> hyper::Response<s3s::Body> {
    let mut r = hyper::Response::new(s3s::Body::from(body));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A GCS XML API request with an OAuth bearer token (how pymilvus's `OAuthMinio` uploads to a
/// Zilliz volume on GCP): PUT, HEAD, GET and DELETE of `/bucket/key` on the same files s3s-fs
/// serves. A token that is unknown or expired: 401 `AuthenticationRequired` (GCS's answer to a
/// missing or invalid credential); a missing object: 404 `NoSuchKey`.
async fn bearer(
    root: &std::path::Path,
    keys: &Keys,
    token: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<s3s::Body> {
    use http_body_util::BodyExt;
    let xml = |status: u16, code: &str, message: &str| {
        let mut r = hyper::Response::new(s3s::Body::from(format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )));
        *r.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
        r
    };
    let live = keys
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(token)
        .is_some_and(|until| Instant::now() < *until);
    if !live {
        return xml(401, "AuthenticationRequired", "Authentication required.");
    }
    let rel = req.uri().path().trim_start_matches('/').to_string();
    if rel.split('/').any(|p| p == ".." || p.is_empty()) {
        return xml(400, "InvalidArgument", "Invalid object name.");
    }
    let path = root.join(&rel);
    match *req.method() {
        hyper::Method::PUT => {
            let Ok(body) = req.into_body().collect().await else {
                return xml(400, "IncompleteBody", "The request body is incomplete.");
            };
            let bytes = body.to_bytes();
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::write(&path, &bytes) {
                Ok(()) => hyper::Response::new(s3s::Body::from(Vec::new())),
                Err(e) => xml(500, "InternalError", &e.to_string()),
            }
        }
        hyper::Method::HEAD | hyper::Method::GET => match std::fs::read(&path) {
            Ok(data) => {
                let len = data.len();
                let body = if req.method() == hyper::Method::GET {
                    data
                } else {
                    Vec::new()
                };
                let mut r = hyper::Response::new(s3s::Body::from(body));
                r.headers_mut().insert(
                    hyper::header::CONTENT_LENGTH,
                    hyper::header::HeaderValue::from(len),
                );
                r
            }
            Err(_) => xml(404, "NoSuchKey", "The specified key does not exist."),
        },
        hyper::Method::DELETE => {
            let _ = std::fs::remove_file(&path);
            let mut r = hyper::Response::new(s3s::Body::from(Vec::new()));
            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
            r
        }
        _ => xml(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed.",
        ),
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    for b in &cli.bucket {
        std::fs::create_dir_all(cli.root.join(b)).expect("create bucket directory");
    }
    let fs = s3s_fs::FileSystem::new(&cli.root).expect("s3s-fs root");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    let keys = Arc::new(Keys {
        main: (cli.access_key.clone(), cli.secret_key.clone()),
        ..Keys::default()
    });
    builder.set_auth(Auth(keys.clone()));
    // (delay, key prefix) of `/__standin/faults`.
    let delay: Arc<Mutex<(u64, String)>> = Arc::default();
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
    let root = Arc::new(cli.root.clone());
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let service = service.clone();
        let root = root.clone();
        let conditional = conditional.clone();
        let keys = keys.clone();
        let delay = delay.clone();
        async move {
            let q = req.uri().query().unwrap_or("").to_string();
            if req.uri().path() == "/__standin/sts" {
                let secs: u64 = query_param(&q, "seconds")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(3600);
                let (ak, sk, token) = (
                    format!("ASIA{}", &random_hex()[..16].to_uppercase()),
                    random_hex(),
                    random_hex(),
                );
                let until = Instant::now() + Duration::from_secs(secs);
                keys.temporary
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ak.clone(), (sk.clone(), until));
                keys.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(token.clone(), until);
                return Ok(json_response(format!(
                    "{{\"accessKeyId\":\"{ak}\",\"secretAccessKey\":\"{sk}\",\"sessionToken\":\"{token}\",\"seconds\":{secs}}}"
                )));
            }
            if req.uri().path() == "/__standin/faults" {
                let mut d = delay.lock().unwrap_or_else(|e| e.into_inner());
                d.0 = query_param(&q, "put_delay_ms")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                d.1 = query_param(&q, "put_delay_prefix")
                    .unwrap_or("")
                    .to_string();
                return Ok(json_response(format!("{{\"put_delay_ms\":{}}}", d.0)));
            }
            if let Some(token) = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
            {
                return Ok(bearer(&root, &keys, &token, req).await);
            }
            let pause = {
                let d = delay.lock().unwrap_or_else(|e| e.into_inner());
                let key = req.uri().path().splitn(3, '/').nth(2).unwrap_or("");
                (req.method() == hyper::Method::PUT && d.0 > 0 && key.starts_with(d.1.as_str()))
                    .then(|| Duration::from_millis(d.0))
            };
            let guarded = req.method() == hyper::Method::PUT
                && (req.headers().contains_key("if-none-match")
                    || req.headers().contains_key("if-match"));
            let _turn = if guarded {
                Some(conditional.lock().await)
            } else {
                None
            };
            let answer = hyper::service::Service::call(&service, req).await;
            // A slow upload: accepted (and its keys checked) on arrival, answered late.
            if let Some(p) = pause {
                tokio::time::sleep(p).await;
            }
            answer
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
