//! Uploads to a bucket that takes an OAuth bearer token instead of SigV4 keys: a Zilliz volume
//! on GCP, whose `/v2/volumes/apply` session token pymilvus sends as `Authorization: Bearer`
//! (`OAuthMinio`) to the GCS XML API (`PUT /bucket/key`; one PUT holds up to 5 TiB there).

use crate::error::{Error, Result};
use crate::sink::temp_credentials::Refreshing;
use object_store::CredentialProvider;
use std::path::Path;
use std::sync::Arc;

/// One bucket on an endpoint that takes bearer tokens.
pub struct BearerStore {
    pub base: String,
    pub bucket: String,
    pub http: reqwest::Client,
    /// The token (in `AwsCredential::token`), renewed before it expires.
    pub auth: Arc<Refreshing>,
}

impl BearerStore {
    fn url(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.base.trim_end_matches('/'), self.bucket)
    }

    async fn token(&self) -> Result<String> {
        let c =
            self.auth.get_credential().await.map_err(|e| {
                Error::Other(format!("renewing the volume's upload token failed: {e}"))
            })?;
        Ok(c.token.clone().unwrap_or_default())
    }

    fn failed(&self, what: &str, key: &str, e: &reqwest::Error) -> Error {
        Error::Other(format!(
            "object storage: {what} of gs://{}/{key} failed: {}; check the network, then run the same command again",
            self.bucket,
            crate::http::describe(e)
        ))
    }

    /// The object's size, if it exists.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        let resp = self
            .http
            .head(self.url(key))
            .bearer_auth(self.token().await?)
            .send()
            .await
            .map_err(|e| self.failed("HEAD", key, &e))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            s if (200..300).contains(&s) => Ok(resp.content_length()),
            s => Err(Error::Other(format!(
                "object storage refused HEAD of gs://{}/{key} (HTTP {s}); check the volume and its credentials",
                self.bucket
            ))),
        }
    }

    /// One PUT of the whole file, streamed from disk: (status, body).
    pub async fn put_once(&self, file: &Path, key: &str, len: u64) -> Result<(u16, String)> {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::io(file, e))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
        let resp = self
            .http
            .put(self.url(key))
            .bearer_auth(self.token().await?)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| self.failed("PUT", key, &e))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    /// Deletes an object (gone already is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let resp = self
            .http
            .delete(self.url(key))
            .bearer_auth(self.token().await?)
            .send()
            .await
            .map_err(|e| self.failed("DELETE", key, &e))?;
        match resp.status().as_u16() {
            s if (200..300).contains(&s) || s == 404 => Ok(()),
            s => Err(Error::Other(format!(
                "object storage refused DELETE of gs://{}/{key} (HTTP {s})",
                self.bucket
            ))),
        }
    }
}
