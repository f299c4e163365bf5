//! A stage on object storage (`--stage s3://bucket/prefix`; docs/design.md §10): the bucket
//! holds the stage, a local working copy (the cache) is what a run reads and writes. A staged
//! file goes up before any manifest that lists it; `manifest.json` and `import-state.json` are
//! written with conditional puts (If-Match on the ETag read, If-None-Match for the first), so
//! two runs that write one stage at once are told apart instead of overwriting each other; a
//! run that changes the stage holds its lease ([`super::lease`]), so no second run uploads a
//! staged file over one the first listed.

use super::layout::{IMPORT_STATE, MANIFEST, SYNC_STATE};
use super::lease::{LEASE, Lease};
use super::manifest::stage_err;
use crate::error::Result;
use crate::sink::object_store::{StorageConfig, Uploader};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Whether a `--stage` value names object storage.
pub fn is_remote(stage: &Path) -> bool {
    stage.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// `s3://bucket/prefix` → (bucket, prefix without slashes at either end).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let ok = !bucket.is_empty()
        && !prefix.split('/').any(|p| p == ".." || p == ".")
        && !prefix.contains("//");
    ok.then(|| (bucket.to_string(), prefix.to_string()))
}

/// The object-storage side of a stage.
pub struct RemoteStage {
    store: Arc<Uploader>,
    url: String,
    prefix: String,
    /// ETag of each state file as last read or written (`None`: not there).
    etags: Mutex<BTreeMap<&'static str, Option<String>>>,
    /// Staged files known to be in the bucket.
    present: Mutex<HashSet<String>>,
    /// Held by a run that changes the stage: no other run writes it meanwhile.
    lease: Option<Lease>,
}

impl std::fmt::Debug for RemoteStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStage")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteStage {
    /// Connects to `s3://bucket/prefix`: endpoint, region and keys from the environment
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`), as the AWS tools read them.
    pub fn connect(url: &str) -> Result<RemoteStage> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| {
            stage_err(
                Path::new(url),
                "is not s3://BUCKET/PREFIX (no '.' or '..' parts); give a bucket and a key prefix",
            )
        })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let store = Arc::new(Uploader::s3(StorageConfig {
            endpoint: env("AWS_ENDPOINT_URL"),
            bucket,
            prefix: prefix.clone(),
            region: env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key: env("AWS_ACCESS_KEY_ID"),
            secret_key: env("AWS_SECRET_ACCESS_KEY"),
            session_token: env("AWS_SESSION_TOKEN"),
            ..Default::default()
        })?);
        Ok(RemoteStage {
            store,
            url: url.trim_end_matches('/').to_string(),
            prefix,
            etags: Mutex::new(BTreeMap::new()),
            present: Mutex::new(HashSet::new()),
            lease: None,
        })
    }

    /// Takes the stage's lease for a run of `command` that changes it (see [`super::lease`]):
    /// refused while another run holds it.
    pub fn take_lease(&mut self, command: &str) -> Result<()> {
        let key = self.key(LEASE);
        self.lease = Some(Lease::acquire(
            Arc::clone(&self.store),
            key,
            &self.url,
            command,
        )?);
        Ok(())
    }

    /// Ok unless this run took the lease and lost it (then it must write nothing more).
    fn still_held(&self) -> Result<()> {
        self.lease.as_ref().map_or(Ok(()), Lease::check)
    }

    /// `s3://bucket/prefix`, as shown.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        self.store.bucket()
    }

    /// The key prefix of the stage in its bucket.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object key of a file of the stage.
    pub fn key(&self, rel: &str) -> String {
        self.store.key_for(rel)
    }

    /// A local directory for the working copy of this stage (under the system temp dir).
    pub fn default_cache(url: &str) -> PathBuf {
        use sha2::Digest;
        let h = hex::encode(sha2::Sha256::digest(url.trim_end_matches('/').as_bytes()));
        std::env::temp_dir().join(format!("q2z-stage-{}", &h[..16]))
    }

    /// Makes the working copy's state files (manifest, ledger) those of the bucket: the
    /// bucket's copy replaces the local one, and a local one the bucket lacks is removed.
    pub fn pull_state(&self, dir: &Path) -> Result<()> {
        for name in [
            MANIFEST,
            IMPORT_STATE,
            SYNC_STATE,
            super::evidence::EVIDENCE,
        ] {
            let local = dir.join(name);
            let got = self.store.get_small(&self.key(name))?;
            match &got {
                Some((bytes, _)) => super::fsutil::write_atomic(&local, bytes)?,
                None => match std::fs::remove_file(&local) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(crate::error::Error::io(&local, e)),
                },
            }
            self.lock_etags().insert(name, got.and_then(|(_, e)| e));
        }
        Ok(())
    }

    /// Puts a state file of the working copy if the bucket still holds the version this run
    /// last read or wrote; another run's write in between is an error that says so.
    pub fn push_state(&self, dir: &Path, name: &'static str) -> Result<()> {
        self.still_held()?;
        let local = dir.join(name);
        let bytes = std::fs::read(&local).map_err(|e| crate::error::Error::io(&local, e))?;
        let expected = self.lock_etags().get(name).cloned().flatten();
        match self
            .store
            .put_small_if(&self.key(name), bytes, expected.as_deref())?
        {
            Some(etag) => {
                self.lock_etags().insert(name, etag);
                Ok(())
            }
            None => Err(stage_err(
                Path::new(&self.url),
                format!(
                    "its {name} was changed by another run while this one worked (the conditional put was refused); only one q2z run may write a stage at a time. Let the other run finish, then run this command again"
                ),
            )),
        }
    }

    /// Records staged files as being in the bucket (those a manifest read from it lists).
    pub fn mark_present<'a>(&self, files: impl IntoIterator<Item = &'a str>) {
        let mut p = self.lock_present();
        p.extend(files.into_iter().map(str::to_string));
    }

    /// Uploads a staged file of the working copy unless it is known to be there, with its
    /// sha256 checked by the store; the local copy is then removed (the working copy of an
    /// export holds only the files in flight; a run that needs one later downloads it).
    pub fn publish(&self, dir: &Path, rel: &str, sha256: &str) -> Result<()> {
        if self.lock_present().contains(rel) {
            return Ok(());
        }
        self.still_held()?;
        let key = self.key(rel);
        let local = dir.join(rel);
        let bytes = std::fs::metadata(&local)
            .map_err(|e| crate::error::Error::io(&local, e))?
            .len();
        if !self.store.holds(&key, bytes, sha256, &local)? {
            self.store.put_file(&local, &key, Some(sha256))?;
        }
        self.lock_present().insert(rel.to_string());
        let _ = std::fs::remove_file(&local);
        Ok(())
    }

    /// Downloads a staged file into the working copy unless it is there with its size.
    pub fn fetch(&self, dir: &Path, rel: &str, bytes: u64) -> Result<PathBuf> {
        let local = dir.join(rel);
        if std::fs::metadata(&local).is_ok_and(|m| m.len() == bytes) {
            return Ok(local);
        }
        self.store.get_to_file(&self.key(rel), &local)?;
        Ok(local)
    }

    /// Whether the bucket holds a staged file with its size and (where reported) sha256.
    pub fn holds(&self, dir: &Path, rel: &str, bytes: u64, sha256: &str) -> Result<bool> {
        self.store
            .holds(&self.key(rel), bytes, sha256, &dir.join(rel))
    }

    /// Copies a staged file of another stage in the same bucket to `rel` here (server side).
    pub fn copy_from(&self, other: &RemoteStage, from_rel: &str, rel: &str) -> Result<()> {
        self.still_held()?;
        self.store.copy(&other.key(from_rel), &self.key(rel))?;
        self.lock_present().insert(rel.to_string());
        Ok(())
    }

    fn lock_etags(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Option<String>>> {
        self.etags.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_present(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.present.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_s3_urls_name_a_remote_stage() {
        assert_eq!(
            parse_url("s3://b/stages/docs/"),
            Some(("b".into(), "stages/docs".into()))
        );
        assert_eq!(parse_url("s3://b"), Some(("b".into(), String::new())));
        for bad in [
            "s3://",
            "s3:///x",
            "s3://b/../x",
            "s3://b/a//c",
            "/tmp/s3",
            "b/x",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
        assert!(is_remote(Path::new("s3://b/x")) && !is_remote(Path::new("./s3")));
    }
}
