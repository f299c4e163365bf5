//! The migration report (`q2z report`): one self-contained HTML file and its JSON, built only
//! from what the stage records — the manifest (mapping, counts, chunks), the import ledger
//! (chunk states and times), the sync ledger and `evidence.json` (runs, verifications, search
//! parity, repairs, sync passes, alias). [`build`] gathers it into a [`Report`], [`html`]
//! draws it, [`record`] turns command results into evidence.

pub mod build;
pub mod html;
pub mod record;
pub mod svg;

use crate::stage::evidence::{
    AliasRecord, CountRecord, RepairRecord, RunRecord, SearchRecord, SyncPassRecord,
    VerificationRecord,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use build::build;

/// Everything the report shows; the HTML is drawn from it and `--json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub format_version: u32,
    /// Unix milliseconds.
    pub generated_ms: u64,
    /// The q2z that wrote the report.
    pub q2z_version: String,
    pub commit: String,
    /// The stage directory (or `s3://` URL).
    pub stage: String,
    /// Where the data came from (`Qdrant at URL`, or the snapshot files).
    pub source: String,
    /// The q2z that wrote the stage's manifest.
    pub exported_by: String,
    pub runs: Vec<RunRecord>,
    pub collections: Vec<CollectionReport>,
}

/// One collection's part of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionReport {
    pub name: String,
    pub target: String,
    pub verdict: Verdict,
    /// `planned`, `exporting` or `exported`.
    pub export_state: String,
    pub mapping: MappingView,
    pub set_aside: SetAsideView,
    pub counts: CountsView,
    pub chunks: Vec<ChunkView>,
    /// The target (URL without credentials, and database) the chunk states are from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_target: Option<String>,
    /// `bulk` or `upsert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationRecord>,
    pub repairs: Vec<RepairRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchRecord>,
    pub sync_passes: Vec<SyncPassRecord>,
    /// A sync pass stopped part-way (the target is between two states until it is finished).
    pub sync_unfinished: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasRecord>,
    /// Export and import progress: (Unix ms, rows so far) at each chunk staged / imported.
    pub export_progress: Vec<(u64, u64)>,
    pub import_progress: Vec<(u64, u64)>,
    pub warnings: Vec<String>,
}

/// The one-line outcome of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// Why, in one sentence (for a failure: what differs and what to run).
    pub reason: String,
}

/// PASSED, FAILED, or not yet known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Passed,
    Failed,
    NotVerified,
}

impl Status {
    /// As shown in the report.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "PASSED",
            Status::Failed => "FAILED",
            Status::NotVerified => "NOT VERIFIED",
        }
    }
}

/// The schema the target collection was created with, and where each field came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MappingView {
    pub fields: Vec<FieldView>,
    /// Payload keys indexed in Qdrant that stayed inside `$meta` (with their JSON-path index
    /// in Milvus, if one was made).
    pub meta_keys: Vec<String>,
    /// Vectors of the source left out (`--exclude-vectors`, or not storable).
    pub excluded_vectors: Vec<String>,
}

/// One field of the target collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FieldView {
    pub name: String,
    /// Milvus type, with its dimension or length (`FloatVector(768)`, `VarChar(512)`).
    pub data_type: String,
    /// What it holds from Qdrant.
    pub from: String,
    /// Its index (`HNSW COSINE`, `INVERTED`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// Points set aside in the stage instead of being staged as rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SetAsideView {
    pub points: u64,
    pub files: Vec<String>,
    /// Reason → points, from the files' `q2z_reason` (the first lines of each file).
    pub reasons: BTreeMap<String, u64>,
}

/// Counts of source, stage and target, each with when it was taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountsView {
    pub source: u64,
    /// When the source was counted (Unix ms; `None` for snapshot files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_at_ms: Option<u64>,
    pub staged: u64,
    /// When the last chunk was staged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_at_ms: Option<u64>,
    /// Rows counted in the target by the last command that counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_at_ms: Option<u64>,
    /// Every count recorded (oldest first).
    pub history: Vec<CountRecord>,
}

/// One staged chunk and where it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChunkView {
    pub file: String,
    pub range: usize,
    pub rows: u64,
    pub bytes: u64,
    /// `pending`, `uploaded`, `submitting`, `importing` or `imported`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
