//! Uploads staged files to S3-compatible object storage: each file streamed from disk in one
//! PUT to a URL presigned by `object_store` (its SHA-256 from the manifest bound to the signature,
//! so the store checks every byte), multipart only above S3's 5 GiB single-PUT limit; several
//! files at once; what is already there is skipped.

use crate::error::{Error, Result};
use crate::http::retry::{Attempt, RetryLogic};
use crate::sink::temp_credentials::{CredentialSource, Refreshing, TempCredentials};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use reqwest::header::{HeaderName, HeaderValue};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where import files go. The secret is never printed.
#[derive(Clone, Default)]
pub struct StorageConfig {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// STS session token of temporary credentials (Zilliz volumes); never printed.
    pub session_token: Option<String>,
    /// Temporary keys (a Zilliz volume's): when they expire and where fresh ones come from.
    pub renew: Option<(Option<std::time::SystemTime>, Arc<dyn CredentialSource>)>,
    /// The most an upload may hold (a Zilliz volume's `condition`).
    pub limits: UploadLimits,
    /// The session token is an OAuth bearer, not a SigV4 key (a Zilliz volume on GCP).
    pub bearer: bool,
}

/// Keys that never change (a bearer token given without a way to renew it).
struct Fixed(TempCredentials);

impl CredentialSource for Fixed {
    fn fetch(&self) -> Result<TempCredentials> {
        Ok(self.0.clone())
    }
}

/// Upload limits of a Zilliz volume (`condition` of `/v2/volumes/apply`): checked before the
/// first file goes up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadLimits {
    /// `maxContentLength`: bytes of one upload.
    pub max_bytes: Option<u64>,
    /// `maxFileNumber`: files of one upload.
    pub max_files: Option<u64>,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// An object store plus the runtime that drives it.
pub struct Uploader {
    store: Arc<object_store::aws::AmazonS3>,
    /// Sends the presigned PUTs: no overall timeout (a file may take long); a stalled read fails.
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    cfg: StorageConfig,
    /// Bearer-token uploads (GCP volumes) instead of presigned S3 requests.
    bearer: Option<crate::sink::bearer_store::BearerStore>,
}

/// Files above this size go up in parts (S3's limit for one PUT).
const MULTIPART_ABOVE: u64 = 5 << 30;
/// Part size: 10,000 parts (S3's most) carry 160 GiB; 3 parts in memory per file at most.
const PART: usize = 16 << 20;
/// How long a presigned PUT URL stays valid; one is made per attempt.
const URL_VALID: Duration = Duration::from_secs(3600);

impl Uploader {
    /// Connects to S3 (or an S3-compatible endpoint such as Milvus's MinIO).
    pub fn s3(cfg: StorageConfig) -> Result<Uploader> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region);
        // Over TLS the payload needs no SHA-256 of its own (as the AWS CLI does); hashing every
        // byte before sending cost 4× the upload time on loopback. Plain HTTP keeps it signed.
        let tls = cfg
            .endpoint
            .as_deref()
            .is_none_or(|e| e.starts_with("https://"));
        b = b.with_unsigned_payload(tls || std::env::var_os("Q2Z_S3_UNSIGNED_PAYLOAD").is_some());
        if let Some(e) = &cfg.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        match (&cfg.access_key, &cfg.secret_key, &cfg.renew) {
            (Some(a), Some(s), Some((expires, source))) => {
                let first = TempCredentials {
                    access_key: a.clone(),
                    secret_key: s.clone(),
                    session_token: cfg.session_token.clone(),
                    expires: *expires,
                };
                b = b.with_credentials(Arc::new(Refreshing::new(source.clone(), &first)));
            }
            (Some(a), Some(s), None) => {
                b = b.with_access_key_id(a).with_secret_access_key(s);
                if let Some(t) = cfg.session_token.as_ref().filter(|t| !t.is_empty()) {
                    b = b.with_token(t);
                }
            }
            _ => {}
        }
        let store = b.build().map_err(|e| {
            Error::Other(format!(
                "object storage settings for bucket '{}' are incomplete: {e}",
                cfg.bucket
            ))
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Other(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(crate::http::bundled_roots())
            .read_timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Other(format!("the HTTP client for uploads did not build: {e}")))?;
        let bearer = cfg.bearer.then(|| {
            let first = TempCredentials {
                access_key: String::new(),
                secret_key: String::new(),
                session_token: cfg.session_token.clone(),
                expires: cfg.renew.as_ref().and_then(|r| r.0),
            };
            let source = cfg.renew.as_ref().map_or_else(
                || Arc::new(Fixed(first.clone())) as Arc<dyn CredentialSource>,
                |r| r.1.clone(),
            );
            crate::sink::bearer_store::BearerStore {
                base: cfg
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| "https://storage.googleapis.com".into()),
                bucket: cfg.bucket.clone(),
                http: http.clone(),
                auth: Arc::new(Refreshing::new(source, &first)),
            }
        });
        Ok(Uploader {
            store: Arc::new(store),
            http,
            rt,
            cfg,
            bearer,
        })
    }

    /// The object key for a staged file (relative path under the prefix).
    pub fn key_for(&self, rel: &str) -> String {
        let p = self.cfg.prefix.trim_matches('/');
        if p.is_empty() {
            rel.to_string()
        } else {
            format!("{p}/{rel}")
        }
    }

    /// The object key an import reads a staged file from: `key_for(rel)` with the first 16 hex
    /// digits of the file's SHA-256 before its extension (`c/part-0000-000000.<sha>.parquet`).
    /// Stages of the same collection name (two exports, two machines, the default prefix) then
    /// never write to one key: an import job can only read the bytes its own stage recorded,
    /// whatever else runs against the bucket.
    pub fn import_key(&self, rel: &str, sha256: &str) -> String {
        let tag = sha256.get(..16).unwrap_or(sha256);
        let named = match rel.rsplit_once('.') {
            Some((stem, ext)) if !ext.contains('/') => format!("{stem}.{tag}.{ext}"),
            _ => format!("{rel}.{tag}"),
        };
        self.key_for(&named)
    }

    /// Deletes an object (gone already is fine).
    pub fn delete(&self, key: &str) -> Result<()> {
        if let Some(b) = &self.bearer {
            return self.rt.block_on(b.delete(key));
        }
        self.rt.block_on(async {
            match self.store.delete(&ObjPath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err(key, e)),
            }
        })
    }

    /// The keys of the objects under `prefix` and its direct subfolders last modified before
    /// `unix_secs` (an S3 listing; a bearer-token store lists none).
    pub fn keys_modified_before(&self, prefix: &str, unix_secs: i64) -> Result<Vec<String>> {
        if self.bearer.is_some() {
            return Ok(Vec::new());
        }
        self.rt.block_on(async {
            let list = |p: ObjPath| async move {
                self.store
                    .list_with_delimiter(Some(&p))
                    .await
                    .map_err(|e| self.err(p.as_ref(), e))
            };
            let top = list(ObjPath::from(prefix)).await?;
            let mut objects = top.objects;
            for dir in top.common_prefixes {
                objects.extend(list(dir).await?.objects);
            }
            Ok(objects
                .into_iter()
                .filter(|o| o.last_modified.timestamp() < unix_secs)
                .map(|o| o.location.to_string())
                .collect())
        })
    }

    /// Size of an object, if it exists.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        if let Some(b) = &self.bearer {
            return self.rt.block_on(b.size(key));
        }
        match self.rt.block_on(self.store.head(&ObjPath::from(key))) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Whether `key` already holds this staged file: the same size and, where the store reports
    /// the object's SHA-256 (every object q2z puts carries one), the same SHA-256.
    pub fn holds(&self, key: &str, bytes: u64, sha256: &str, file: &Path) -> Result<bool> {
        if self.size(key)? != Some(bytes) {
            return Ok(false);
        }
        let want = checksum_header(sha256, file)?;
        Ok(self.stored_sha256(key).is_none_or(|got| got == want))
    }

    /// The full-object SHA-256 the store keeps for `key` (HEAD with checksum mode), if it
    /// reports one; composite multipart checksums and failures count as none.
    fn stored_sha256(&self, key: &str) -> Option<HeaderValue> {
        // GCS reports MD5 and CRC32C only: the size decides there.
        if self.bearer.is_some() {
            return None;
        }
        let mode = HeaderValue::from_static("ENABLED");
        let opts = SignedUrlOptions::default()
            .with_signed_header(HeaderName::from_static(CHECKSUM_MODE), mode.clone());
        self.rt.block_on(async {
            let url = self
                .store
                .signed_url_opts(reqwest::Method::HEAD, &ObjPath::from(key), URL_VALID, &opts)
                .await
                .ok()?;
            let resp = self
                .http
                .head(url)
                .header(CHECKSUM_MODE, mode)
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let v = resp.headers().get(CHECKSUM_HEADER)?;
            (!v.as_bytes().contains(&b'-')).then(|| v.clone())
        })
    }

    /// Uploads `file` to `key` and returns the bytes sent. `sha256` (hex, from the manifest)
    /// is sent as `x-amz-checksum-sha256` and signed, so the store refuses a body that differs.
    pub fn put_file(&self, file: &Path, key: &str, sha256: Option<&str>) -> Result<u64> {
        let len = std::fs::metadata(file)
            .map_err(|e| Error::io(file, e))?
            .len();
        if let Some(b) = &self.bearer {
            return self.put_bearer(b, file, key, len);
        }
        if len > MULTIPART_ABOVE {
            return self.put_multipart(file, key, len);
        }
        let path = ObjPath::from(key);
        let checksum = sha256.map(|h| checksum_header(h, file)).transpose()?;
        let mut opts = SignedUrlOptions::default();
        if let Some(v) = &checksum {
            opts = opts.with_signed_header(HeaderName::from_static(CHECKSUM_HEADER), v.clone());
        }
        // Errors name the object, never the presigned URL (signature, token).
        let shown = format!("s3://{}/{key}", self.cfg.bucket);
        let policy = crate::http::retry::RetryPolicy::default();
        let logic = crate::http::retry::StatusRetry;
        policy.run("object storage", &shown, |_| {
            match self.put_once(&path, file, len, &opts, checksum.as_ref()) {
                Ok((status, _)) if (200..300).contains(&status) => Attempt::Done(len),
                Ok((status, text)) => match logic.should_retry_response(status, text.as_bytes()) {
                    Some(why) => Attempt::Retry {
                        why: format!("{why} {}", xml_field(&text, "Code").unwrap_or("")),
                        after: None,
                    },
                    None => {
                        if bad_digest(&text) {
                            // Some stores (s3s-fs) keep the body they refused; a later run
                            // would take an object of the right size for an uploaded file.
                            let _ = self.rt.block_on(self.store.delete(&path));
                        }
                        Attempt::Fail(self.refused(file, key, status, &text))
                    }
                },
                Err(PutError::Local(e)) => Attempt::Fail(e),
                Err(PutError::Transport(detail)) if logic.is_retriable_error(&detail) => {
                    Attempt::Retry {
                        why: format!("uploading {}: {detail}", file.display()),
                        after: None,
                    }
                }
                Err(PutError::Transport(detail)) => Attempt::Fail(Error::Tls {
                    what: "object storage",
                    url: shown.clone(),
                    detail,
                }),
            }
        })
    }

    /// A PUT with a bearer token (GCP volumes), retried as presigned ones are.
    fn put_bearer(
        &self,
        b: &crate::sink::bearer_store::BearerStore,
        file: &Path,
        key: &str,
        len: u64,
    ) -> Result<u64> {
        let shown = format!("gs://{}/{key}", self.cfg.bucket);
        let logic = crate::http::retry::StatusRetry;
        crate::http::retry::RetryPolicy::default().run("object storage", &shown, |_| {
            match self.rt.block_on(b.put_once(file, key, len)) {
                Ok((status, _)) if (200..300).contains(&status) => Attempt::Done(len),
                Ok((status, text)) => match logic.should_retry_response(status, text.as_bytes()) {
                    Some(why) => Attempt::Retry { why, after: None },
                    None => Attempt::Fail(self.refused(file, key, status, &text)),
                },
                Err(e) => Attempt::Retry {
                    why: e.to_string(),
                    after: None,
                },
            }
        })
    }

    /// One presigned PUT of the whole file, streamed from disk in 1 MiB pieces.
    fn put_once(
        &self,
        path: &ObjPath,
        file: &Path,
        len: u64,
        opts: &SignedUrlOptions,
        checksum: Option<&HeaderValue>,
    ) -> std::result::Result<(u16, String), PutError> {
        let key = path.as_ref();
        let f = std::fs::File::open(file).map_err(|e| PutError::Local(Error::io(file, e)))?;
        self.rt.block_on(async {
            let url = self
                .store
                .signed_url_opts(reqwest::Method::PUT, path, URL_VALID, opts)
                .await
                .map_err(|e| PutError::Local(self.err(key, e)))?;
            let stream =
                tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(f), 1 << 20);
            let mut req = self
                .http
                .put(url)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream));
            if let Some(v) = checksum {
                req = req.header(CHECKSUM_HEADER, v.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| PutError::Transport(crate::http::describe(&e)))?;
            let status = resp.status().as_u16();
            Ok((status, resp.text().await.unwrap_or_default()))
        })
    }

    /// The error for a PUT the store refused, with its S3 error code and what to do.
    fn refused(&self, file: &Path, key: &str, status: u16, text: &str) -> Error {
        let code = xml_field(text, "Code").unwrap_or("");
        let message = xml_field(text, "Message").unwrap_or("");
        let hint = if bad_digest(text) {
            format!(
                "the bytes of {} differ from the sha256 in the manifest; run `q2z verify` on the stage or copy the file again",
                file.display()
            )
        } else if crate::http::retryable(status) {
            "the store kept failing or throttling after every retry; run the same command again later (what is uploaded stays)".into()
        } else {
            "check the bucket, the endpoint and the access keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)".into()
        };
        Error::Other(format!(
            "object storage refused PUT of s3://{}/{key} (HTTP {status} {code}: {}); {hint}",
            self.cfg.bucket,
            redact(message, self.cfg.secret_key.as_deref())
        ))
    }

    /// Uploads a file above the single-PUT limit in parts.
    fn put_multipart(&self, file: &Path, key: &str, len: u64) -> Result<u64> {
        let path = ObjPath::from(key);
        self.rt.block_on(async {
            use std::io::Read;
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| self.err(key, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
            let mut buf = vec![0u8; PART];
            loop {
                let n = f.read(&mut buf).map_err(|e| Error::io(file, e))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(2).await.map_err(|e| self.err(key, e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(|e| self.err(key, e))?;
            Ok(len)
        })
    }

    /// A small object (a stage's manifest or ledger) and its ETag, if it exists.
    pub fn get_small(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        self.rt.block_on(async {
            match self.store.get(&ObjPath::from(key)).await {
                Ok(r) => {
                    let etag = r.meta.e_tag.clone();
                    let bytes = r.bytes().await.map_err(|e| self.err(key, e))?;
                    Ok(Some((bytes.to_vec(), etag)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(key, e)),
            }
        })
    }

    /// Writes a small object only if it is still the version `etag` (`None`: only if there is
    /// none yet). `Ok(None)`: another writer changed it first; `Ok(Some(etag))`: written.
    pub fn put_small_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: Option<&str>,
    ) -> Result<Option<Option<String>>> {
        use object_store::{PutMode, PutOptions, UpdateVersion};
        let mode = match etag {
            Some(e) => PutMode::Update(UpdateVersion {
                e_tag: Some(e.to_string()),
                version: None,
            }),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.rt.block_on(async {
            match self
                .store
                .put_opts(&ObjPath::from(key), bytes.into(), opts)
                .await
            {
                Ok(r) => Ok(Some(r.e_tag)),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => Ok(None),
                Err(e) => Err(self.err(key, e)),
            }
        })
    }

    /// Downloads an object into `dest` (a temp file renamed into place once complete).
    pub fn get_to_file(&self, key: &str, dest: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = dest.with_file_name(format!(
            ".{}.download.tmp",
            dest.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let shown = format!("s3://{}/{key}", self.cfg.bucket);
        self.rt.block_on(async {
            // A presigned GET read piece by piece: a chunk file never sits in memory whole.
            let url = self
                .store
                .signed_url(reqwest::Method::GET, &ObjPath::from(key), URL_VALID)
                .await
                .map_err(|e| self.err(key, e))?;
            let mut resp = self.http.get(url).send().await.map_err(|e| Error::Tls {
                what: "object storage",
                url: shown.clone(),
                detail: crate::http::describe(&e),
            })?;
            if !resp.status().is_success() {
                return Err(Error::Other(format!(
                    "object storage answered HTTP {} to GET {shown}; check that the stage is complete there and the access keys",
                    resp.status().as_u16()
                )));
            }
            while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Tls {
                what: "object storage",
                url: shown.clone(),
                detail: crate::http::describe(&e),
            })? {
                f.write_all(&chunk).map_err(|e| Error::io(&tmp, e))?;
            }
            Ok::<(), Error>(())
        })?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    }

    /// Copies an object inside the bucket (server side).
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.rt
            .block_on(self.store.copy(&ObjPath::from(from), &ObjPath::from(to)))
            .map_err(|e| self.err(to, e))
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.cfg.bucket
    }

    fn err(&self, key: &str, e: object_store::Error) -> Error {
        Error::Other(format!(
            "object storage: {} on s3://{}/{key}: {}. Check the bucket, the endpoint and the access keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
            op_name(&e),
            self.cfg.bucket,
            redact(&e.to_string(), self.cfg.secret_key.as_deref())
        ))
    }
}

/// Why one PUT attempt failed before the store answered.
enum PutError {
    /// On this side (file, signing): retrying does not help.
    Local(Error),
    /// On the wire: worth another attempt.
    Transport(String),
}

const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";
const CHECKSUM_MODE: &str = "x-amz-checksum-mode";

/// The manifest's hex SHA-256 of `file` as the base64 value of `x-amz-checksum-sha256`.
fn checksum_header(sha256_hex: &str, file: &Path) -> Result<HeaderValue> {
    use base64::Engine;
    let raw = hex::decode(sha256_hex).map_err(|_| {
        Error::Other(format!(
            "the manifest's sha256 of {} is not hex; export the stage again",
            file.display()
        ))
    })?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    Ok(HeaderValue::from_str(&b64).expect("base64 is a valid header value"))
}

/// Whether an S3 error body says the body did not match its checksum.
fn bad_digest(xml: &str) -> bool {
    xml_field(xml, "Code").is_some_and(|c| c == "BadDigest" || c.contains("Checksum"))
}

/// The text of `<name>…</name>` in an S3 XML error body.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn op_name(e: &object_store::Error) -> &'static str {
    match e {
        object_store::Error::NotFound { .. } => "not found",
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => "access denied",
        _ => "request failed",
    }
}

/// Removes a secret from a message, in case a library echoed it.
pub fn redact(msg: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => msg.replace(s, "***"),
        _ => msg.to_string(),
    }
}
