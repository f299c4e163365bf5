//! Zilliz Cloud volumes: temporary upload credentials from `POST /v2/volumes/apply`.

use crate::error::{Error, Result};
use crate::sink::milvus::Milvus;
use crate::sink::object_store::StorageConfig;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Applied {
    bucket_name: Option<String>,
    volume_prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    #[serde(default)]
    credentials: Credentials,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    #[serde(rename = "tmpAK")]
    tmp_ak: Option<String>,
    #[serde(rename = "tmpSK")]
    tmp_sk: Option<String>,
    session_token: Option<String>,
}

/// Where files for a Zilliz volume go (bucket, key prefix, temporary keys), and the volume's
/// key prefix that `dataPaths` are relative to. `api` is the control-plane client.
pub fn volume_storage(api: &Milvus, volume: &str) -> Result<(StorageConfig, String)> {
    let d = api
        .post(
            "/v2/volumes/apply",
            serde_json::json!({"volumeName": volume, "path": "q2z/"}),
        )
        .map_err(|e| Error::Other(format!("asking Zilliz Cloud for upload credentials of volume '{volume}' failed: {e}. Does the volume exist in this project? Create it in the console or with POST /v2/volumes/create")))?;
    let a: Applied = serde_json::from_value(d).map_err(|e| {
        Error::Other(format!(
            "Zilliz Cloud's answer for volume '{volume}' is not what q2z knows ({e})"
        ))
    })?;
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
    let storage = StorageConfig {
        endpoint,
        bucket,
        prefix: format!("{prefix}q2z"),
        region: a.region.unwrap_or_else(|| "us-east-1".into()),
        access_key: a.credentials.tmp_ak,
        secret_key: a.credentials.tmp_sk,
        session_token: a.credentials.session_token,
    };
    Ok((storage, prefix))
}
