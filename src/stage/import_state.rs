//! `import-state.json`: the import ledger, per target and collection (design §3). Every state
//! change is written atomically before the next step, so a rerun continues exactly.

use crate::error::{Error, Result};
use crate::stage::manifest::{stage_err, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the ledger.
pub const IMPORT_STATE: &str = "import-state.json";

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

/// Ledger entry of one chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChunkLedger {
    pub state: ChunkState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Ledger of one collection in one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionLedger {
    /// The target collection was created by this import (so a rerun may reuse it).
    pub created: bool,
    pub chunks: BTreeMap<String, ChunkLedger>,
    #[serde(default)]
    pub verified: bool,
    /// `bulk` or `upsert`: upserts drop null-valued top-level payload keys (a Milvus rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// The whole ledger: target key (`url` + `db`) → collection → ledger.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportState {
    pub format_version: u32,
    pub targets: BTreeMap<String, BTreeMap<String, CollectionLedger>>,
}

impl ImportState {
    /// Reads the ledger (empty if absent).
    pub fn load(dir: &Path) -> Result<ImportState> {
        let p = dir.join(IMPORT_STATE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                stage_err(
                    dir,
                    format!(
                        "{IMPORT_STATE} is damaged ({e}); move it away to start the import over"
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ImportState {
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
}
