//! `import-state.json`: the import ledger, per target (URL + database) and collection. Every
//! state change is written atomically before the next step, so a rerun continues exactly.

use super::fsutil::write_atomic;
use super::layout::IMPORT_STATE;
use crate::error::{Error, Result};
use crate::stage::manifest::{CollectionEntry, stage_err};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a chunk is on its way into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    /// Nothing sent yet.
    #[default]
    Pending,
    /// The file is in the bucket.
    Uploaded,
    /// An import job is about to be created (the id may not be known yet).
    Submitting,
    /// An import job holds it (`job` is set).
    Importing,
    /// Its rows are in the target.
    Imported,
}

/// How a collection's rows reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Parquet files uploaded and imported by bulk-import jobs.
    #[default]
    Bulk,
    /// Batched upserts over REST (they drop null-valued top-level payload keys: a Milvus rule).
    Upsert,
}

/// Ledger entry of one chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChunkLedger {
    pub state: ChunkState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Jobs created for the chunk in the current run of failures (reset when a rerun sends it
    /// again after a stop).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Jobs that held the chunk before (failed, or superseded by a repair): never adopted again
    /// when a lost job creation is reconciled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_jobs: Vec<String>,
    /// When (Unix seconds) the chunk was last marked `Submitting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<u64>,
    /// When (Unix milliseconds) its rows were known to be in the target (the report's import
    /// throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_at_ms: Option<u64>,
}

impl ChunkLedger {
    /// Moves the chunk to `state`; reaching `Imported` records when.
    pub fn set_state(&mut self, state: ChunkState) {
        if state == ChunkState::Imported && self.state != state {
            self.imported_at_ms = Some(crate::stage::evidence::now_ms());
        }
        self.state = state;
    }

    /// Whether the chunk's rows are in the target.
    pub fn imported(&self) -> bool {
        self.state == ChunkState::Imported
    }

    /// Whether a job may be holding the chunk's rows right now.
    pub fn in_flight(&self) -> bool {
        matches!(self.state, ChunkState::Submitting | ChunkState::Importing)
    }

    /// Back to "send again": to the bucket state if the file is there, else pending.
    pub fn resend(&mut self) {
        self.state = if self.key.is_some() {
            ChunkState::Uploaded
        } else {
            ChunkState::Pending
        };
        self.retire_job();
        self.attempts = 0;
    }

    /// Forgets the current job, remembering it as past.
    pub fn retire_job(&mut self) {
        if let Some(j) = self.job.take() {
            self.past_jobs.push(j);
        }
    }
}

/// Ledger of one collection in one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionLedger {
    /// The target collection was created (or adopted) by this import, so a rerun may reuse it.
    pub created: bool,
    pub chunks: BTreeMap<String, ChunkLedger>,
    #[serde(default)]
    pub verified: bool,
    /// The target collection held rows before this import (`--into-existing`): chunks are then
    /// counted by their exact ids, never by key range.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The target collection's id when the import created or adopted it (describe's
    /// `collectionID`): a sync checks it is still the same collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// How the rows were sent (`None` before the first import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ImportMode>,
    /// Some chunks of a bulk import went over REST upserts (rows the release takes over REST
    /// only): their null-valued keys are gone, as in an upsert import (a Milvus rule).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upserted: bool,
}

impl CollectionLedger {
    /// Whether rows reached the target as REST upserts (which drop null-valued keys).
    pub fn has_upserts(&self) -> bool {
        self.mode == Some(ImportMode::Upsert) || self.upserted
    }
}

impl CollectionLedger {
    /// Drops entries of files the manifest does not list (a ledger from another export, or an
    /// edited one), with a warning; nothing is ever looked up for them.
    pub fn forget_unknown(&mut self, entry: &CollectionEntry) {
        let known: std::collections::HashSet<&str> =
            entry.chunks.iter().map(|c| c.file.as_str()).collect();
        self.chunks.retain(|f, _| {
            let keep = known.contains(f.as_str());
            if !keep {
                tracing::warn!(file = %f, "import-state.json lists a file the manifest does not; ignoring it");
            }
            keep
        });
    }

    /// The ledger entry of a chunk (created pending).
    pub fn chunk(&mut self, file: &str) -> &mut ChunkLedger {
        self.chunks.entry(file.to_string()).or_default()
    }

    /// The job ids the ledger knows for this collection.
    pub fn known_jobs(&self) -> std::collections::BTreeSet<String> {
        self.chunks
            .values()
            .flat_map(|l| l.job.iter().chain(&l.past_jobs))
            .cloned()
            .collect()
    }

    /// The state of a chunk (pending when unknown).
    pub fn state(&self, file: &str) -> ChunkState {
        self.chunks.get(file).map(|l| l.state).unwrap_or_default()
    }
}

/// The whole ledger: target key → collection → ledger.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportLedger {
    pub format_version: u32,
    pub targets: BTreeMap<String, BTreeMap<String, CollectionLedger>>,
}

/// The ledger key of a target: its URL without credentials, and the database.
pub fn target_key(url: &str, db: &str) -> String {
    format!("{} db={db}", crate::http::strip_credentials(url))
}

impl ImportLedger {
    /// Reads the ledger (empty if absent).
    pub fn load(dir: &Path) -> Result<ImportLedger> {
        let p = dir.join(IMPORT_STATE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                stage_err(
                    dir,
                    format!(
                        "{IMPORT_STATE} is damaged ({e}); move it away to start the import over (a target that already holds rows then needs --drop-existing)"
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ImportLedger {
                format_version: 1,
                ..Default::default()
            }),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Writes the ledger atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| stage_err(dir, e.to_string()))?;
        write_atomic(&dir.join(IMPORT_STATE), &text)
    }

    /// The collections of a target. A ledger of an older q2z keyed by the URL alone is taken
    /// as the default database's.
    pub fn target_mut(&mut self, url: &str, db: &str) -> &mut BTreeMap<String, CollectionLedger> {
        let key = target_key(url, db);
        let legacy = crate::http::strip_credentials(url);
        if db == "default"
            && !self.targets.contains_key(&key)
            && let Some(old) = self.targets.remove(&legacy)
        {
            self.targets.insert(key.clone(), old);
        }
        self.targets.entry(key).or_default()
    }

    /// The ledger of one collection in a target, if any.
    pub fn get(&self, url: &str, db: &str, collection: &str) -> Option<&CollectionLedger> {
        let legacy = crate::http::strip_credentials(url);
        self.targets
            .get(&target_key(url, db))
            .or_else(|| {
                (db == "default")
                    .then(|| self.targets.get(&legacy))
                    .flatten()
            })
            .and_then(|t| t.get(collection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_told_apart_by_database_and_never_keep_credentials() {
        let mut s = ImportLedger::default();
        s.target_mut("http://u:p@h:19530", "default").insert(
            "c".into(),
            CollectionLedger {
                created: true,
                ..Default::default()
            },
        );
        assert!(s.get("http://h:19530", "default", "c").is_some());
        assert!(
            s.get("http://h:19530", "other", "c").is_none(),
            "another --db is another target"
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("u:p"), "{text}");
        let mut old: ImportLedger = serde_json::from_str(
            r#"{"format_version":1,"targets":{"http://h:19530":{"c":{"created":true,"chunks":{},"mode":"upsert"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            old.get("http://h:19530", "default", "c").unwrap().mode,
            Some(ImportMode::Upsert)
        );
        assert!(
            old.target_mut("http://h:19530", "default")
                .contains_key("c"),
            "legacy key adopted"
        );
    }

    #[test]
    fn resend_goes_back_to_the_bucket_state_and_clears_the_job() {
        let mut l = ChunkLedger {
            state: ChunkState::Importing,
            key: Some("k".into()),
            job: Some("1".into()),
            attempts: 3,
            last_error: None,
            past_jobs: vec![],
            submitted_at: None,
            imported_at_ms: None,
        };
        assert!(l.in_flight());
        l.resend();
        assert_eq!(
            (l.state, l.job.clone(), l.attempts),
            (ChunkState::Uploaded, None, 0)
        );
        assert_eq!(l.past_jobs, ["1"], "the old job is never adopted again");
        let mut s = CollectionLedger::default();
        s.chunks.insert("f".into(), l);
        assert!(s.known_jobs().contains("1"));
        let mut p = ChunkLedger::default();
        p.resend();
        assert_eq!(p.state, ChunkState::Pending);
    }
}
