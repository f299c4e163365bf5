//! Uploads staged files to object storage with `object_store` (S3, GCS, Azure, local):
//! multipart for large files, several files at once, skip what is already there.

use crate::error::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::path::Path;
use std::sync::Arc;

/// Where import files go. The secret is never printed.
#[derive(Clone)]
pub struct StorageConfig {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// STS session token of temporary credentials (Zilliz volumes); never printed.
    pub session_token: Option<String>,
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
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    cfg: StorageConfig,
}

/// Files above this size go up in parts.
const MULTIPART_ABOVE: u64 = 16 << 20;
const PART: usize = 8 << 20;

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
        if let (Some(a), Some(s)) = (&cfg.access_key, &cfg.secret_key) {
            b = b.with_access_key_id(a).with_secret_access_key(s);
        }
        if let Some(t) = cfg.session_token.as_ref().filter(|t| !t.is_empty()) {
            b = b.with_token(t);
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
        Ok(Uploader {
            store: Arc::new(store),
            rt,
            cfg,
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

    /// Size of an object, if it exists.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.rt.block_on(self.store.head(&ObjPath::from(key))) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Uploads `file` to `key` (multipart when large); returns the bytes sent.
    pub fn put_file(&self, file: &Path, key: &str) -> Result<u64> {
        let len = std::fs::metadata(file)
            .map_err(|e| Error::io(file, e))?
            .len();
        let path = ObjPath::from(key);
        if len <= MULTIPART_ABOVE {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            self.rt
                .block_on(self.store.put(&path, PutPayload::from(bytes)))
                .map_err(|e| self.err(key, e))?;
            return Ok(len);
        }
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
                w.wait_for_capacity(4).await.map_err(|e| self.err(key, e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(|e| self.err(key, e))?;
            Ok(len)
        })
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
