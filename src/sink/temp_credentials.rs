//! Temporary object-storage keys that expire (a Zilliz Cloud volume's, from `/v2/volumes/apply`):
//! asked for again shortly before `expireTime`, as pymilvus's volume uploader does, so a long
//! upload never signs a request with keys the store has stopped accepting.

use crate::error::Result;
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// pymilvus `VolumeFileManager._DEFAULT_CREDENTIAL_REFRESH_MARGIN_SECONDS`.
const MARGIN: Duration = Duration::from_secs(300);

/// Temporary keys and when they stop working.
#[derive(Clone)]
pub struct TempCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    /// `None`: they do not expire.
    pub expires: Option<SystemTime>,
}

/// Where fresh keys come from.
pub trait CredentialSource: Send + Sync {
    /// New keys (one request to the issuer).
    fn fetch(&self) -> Result<TempCredentials>;
}

/// The keys in use and when they were issued.
struct Held {
    keys: Arc<AwsCredential>,
    expires: Option<SystemTime>,
    issued: SystemTime,
}

/// An `object_store` credential provider over a [`CredentialSource`]: the keys in hand until
/// they are about to expire (within 5 min, or a quarter of their lifetime when that is
/// shorter), then fresh ones.
pub struct Refreshing {
    source: Arc<dyn CredentialSource>,
    held: Mutex<Held>,
    /// One renewal at a time: the uploads waiting for it take its keys.
    renewing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Refreshing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing").finish_non_exhaustive()
    }
}

fn aws(c: &TempCredentials) -> Arc<AwsCredential> {
    Arc::new(AwsCredential {
        key_id: c.access_key.clone(),
        secret_key: c.secret_key.clone(),
        token: c.session_token.clone().filter(|t| !t.is_empty()),
    })
}

impl Refreshing {
    /// Starts from `first` (the keys already handed out).
    pub fn new(source: Arc<dyn CredentialSource>, first: &TempCredentials) -> Refreshing {
        Refreshing {
            source,
            held: Mutex::new(Held {
                keys: aws(first),
                expires: first.expires,
                issued: SystemTime::now(),
            }),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// The keys in hand, unless they are about to expire.
    fn current(&self) -> Option<Arc<AwsCredential>> {
        let h = self.held.lock().unwrap_or_else(|e| e.into_inner());
        (!expiring(h.issued, h.expires, SystemTime::now())).then(|| h.keys.clone())
    }
}

/// Whether keys issued at `issued` and expiring at `expires` are to be replaced at `now`.
fn expiring(issued: SystemTime, expires: Option<SystemTime>, now: SystemTime) -> bool {
    let Some(expires) = expires else {
        return false;
    };
    let life = expires.duration_since(issued).unwrap_or_default();
    now + MARGIN.min(life / 4) >= expires
}

#[async_trait::async_trait]
impl CredentialProvider for Refreshing {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        if let Some(k) = self.current() {
            return Ok(k);
        }
        let _turn = self.renewing.lock().await;
        // Renewed by the upload that held the turn before.
        if let Some(k) = self.current() {
            return Ok(k);
        }
        let source = self.source.clone();
        let fresh = tokio::task::spawn_blocking(move || source.fetch())
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        tracing::info!("temporary upload keys renewed before they expire");
        let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
        *h = Held {
            keys: aws(&fresh),
            expires: fresh.expires,
            issued: SystemTime::now(),
        };
        Ok(h.keys.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_renewed_within_the_margin_or_a_quarter_of_their_life() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Some(t0 + Duration::from_secs(3600));
        assert!(!expiring(t0, hour, t0 + Duration::from_secs(3299)));
        assert!(expiring(t0, hour, t0 + Duration::from_secs(3300)));
        let short = Some(t0 + Duration::from_secs(8));
        assert!(!expiring(t0, short, t0 + Duration::from_secs(5)));
        assert!(expiring(t0, short, t0 + Duration::from_secs(6)));
        assert!(!expiring(t0, None, t0 + Duration::from_secs(1 << 40)));
    }
}
