//! Zilliz Cloud's control plane (`api.cloud.zilliz.com`): its client, and volumes —
//! temporary upload credentials from `POST /v2/volumes/apply`, asked for again before they
//! expire, and the volume's upload limits. Import jobs through it: [`crate::sink::milvus::jobs`].

use crate::error::{Error, Result};
use crate::sink::endpoint::{self, Endpoint};
use crate::sink::object_store::{StorageConfig, UploadLimits};
use crate::sink::temp_credentials::{CredentialSource, TempCredentials};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The Zilliz Cloud control plane: the project's import jobs and volumes, addressed by cluster
/// id, authorised by a Zilliz Cloud API key (never printed). Not a Milvus endpoint: it holds
/// no collections and answers none of their calls.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    ep: Endpoint,
}

impl ControlPlane {
    /// A client for `url` (`https://api.cloud.zilliz.com`) with `api_key`.
    pub fn new(url: &str, api_key: String) -> Result<ControlPlane> {
        Ok(ControlPlane {
            ep: Endpoint::new(url, Some(api_key), None, endpoint::ZILLIZ_CONTROL)?,
        })
    }

    /// POSTs `body` to `/v2/vectordb/{path}` (`jobs/import/describe`, `…/list`) and returns
    /// `data`.
    pub fn call(&self, path: &str, body: Value) -> Result<Value> {
        self.ep
            .post(&format!("/v2/vectordb/{path}"), body, true, None)
    }

    /// `jobs/import/create`: never sent again once it may have reached the server (the caller
    /// reconciles through `jobs/import/list` instead).
    pub fn create_import(&self, body: Value) -> Result<Value> {
        self.ep
            .post("/v2/vectordb/jobs/import/create", body, false, None)
    }

    /// `POST /v2/volumes/apply`.
    fn apply_volume(&self, body: Value) -> Result<Value> {
        self.ep.post("/v2/volumes/apply", body, true, None)
    }
}

/// `data` of `/v2/volumes/apply` (pymilvus volume_file_manager.py reads the same keys).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Applied {
    bucket_name: Option<String>,
    volume_prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    /// `aws`, `gcp`, `azure`, `aliyun`, …
    cloud: Option<String>,
    #[serde(default)]
    credentials: Credentials,
    #[serde(default)]
    condition: Condition,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    #[serde(rename = "tmpAK")]
    tmp_ak: Option<String>,
    #[serde(rename = "tmpSK")]
    tmp_sk: Option<String>,
    session_token: Option<String>,
    /// ISO-8601, e.g. `2026-12-04T12:00:00Z`.
    expire_time: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Condition {
    max_content_length: Option<u64>,
    max_file_number: Option<u64>,
}

/// The request for upload credentials of `volume`.
fn apply(api: &ControlPlane, volume: &str) -> Result<Applied> {
    let d = api
        .apply_volume(serde_json::json!({"volumeName": volume, "path": "q2z/"}))
        .map_err(|e| Error::Other(format!("asking Zilliz Cloud for upload credentials of volume '{volume}' failed: {e}. Does the volume exist in this project? Create it in the console or with POST /v2/volumes/create")))?;
    serde_json::from_value(d).map_err(|e| {
        Error::Other(format!(
            "Zilliz Cloud's answer for volume '{volume}' is not what q2z knows ({e})"
        ))
    })
}

fn temp_credentials(volume: &str, a: &Applied) -> Result<TempCredentials> {
    let c = &a.credentials;
    let bearer = a.cloud.as_deref() == Some("gcp");
    let (ak, sk) = match (&c.tmp_ak, &c.tmp_sk, &c.session_token) {
        (_, _, Some(t)) if bearer && !t.is_empty() => (String::new(), String::new()),
        (Some(ak), Some(sk), _) if !bearer => (ak.clone(), sk.clone()),
        _ => {
            return Err(Error::Other(format!(
                "Zilliz Cloud's answer for volume '{volume}' has no temporary {}",
                if bearer {
                    "token (sessionToken)"
                } else {
                    "keys (tmpAK/tmpSK)"
                }
            )));
        }
    };
    let expires = match &c.expire_time {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(std::time::SystemTime::from)
                .map_err(|e| {
                    Error::Other(format!(
                        "Zilliz Cloud's expireTime '{t}' for volume '{volume}' is not ISO-8601 ({e})"
                    ))
                })?,
        ),
    };
    Ok(TempCredentials {
        access_key: ak,
        secret_key: sk,
        session_token: c.session_token.clone(),
        expires,
    })
}

/// Fresh keys of one volume, from the control plane.
struct VolumeKeys {
    api: ControlPlane,
    volume: String,
}

impl CredentialSource for VolumeKeys {
    fn fetch(&self) -> Result<TempCredentials> {
        temp_credentials(&self.volume, &apply(&self.api, &self.volume)?)
    }
}

/// Where files for a Zilliz volume go (bucket, key prefix, temporary keys renewed before they
/// expire, the volume's limits), and the volume's key prefix that `dataPaths` are relative to.
/// `api` is the control-plane client.
pub fn volume_storage(api: &ControlPlane, volume: &str) -> Result<(StorageConfig, String)> {
    let a = apply(api, volume)?;
    // pymilvus uploads to GCP volumes with the session token as an OAuth bearer (OAuthMinio),
    // not SigV4 keys.
    let bearer = a.cloud.as_deref() == Some("gcp");
    let keys = temp_credentials(volume, &a)?;
    let (Some(bucket), Some(prefix)) = (a.bucket_name, a.volume_prefix) else {
        return Err(Error::Other(format!(
            "Zilliz Cloud's answer for volume '{volume}' has no bucketName/volumePrefix"
        )));
    };
    let endpoint = a.endpoint.map(|e| {
        if e.contains("://") {
            e
        } else {
            format!("https://{e}")
        }
    });
    let source: Arc<dyn CredentialSource> = Arc::new(VolumeKeys {
        api: api.clone(),
        volume: volume.to_string(),
    });
    let storage = StorageConfig {
        endpoint,
        bucket,
        prefix: format!("{prefix}q2z"),
        region: a.region.unwrap_or_else(|| "us-east-1".into()),
        access_key: (!bearer).then_some(keys.access_key),
        secret_key: (!bearer).then_some(keys.secret_key),
        session_token: keys.session_token,
        renew: Some((keys.expires, source)),
        bearer,
        limits: UploadLimits {
            max_bytes: a.condition.max_content_length,
            max_files: a.condition.max_file_number,
        },
    };
    Ok((storage, prefix))
}
