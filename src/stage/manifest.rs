//! `manifest.json`: the contract between the export and the import half (docs/design.md §4).

use crate::error::{Error, Result};
use crate::model::PointId;
use crate::transform::mapping::CollectionMapping;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the staging format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
use super::fsutil::write_atomic;
pub use super::layout::MANIFEST;
use super::layout::{is_safe_dir_name, is_staged_file_of};

/// Where the staged data came from (never with credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceInfo {
    /// A live Qdrant server.
    Rest { url: String },
    /// Snapshot files.
    Snapshot { files: Vec<SnapshotFile> },
}

/// One snapshot file used as a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// One id range exported by one worker: `[start, end)` in Qdrant's id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub index: usize,
    /// First id of the range (`None`: from the beginning).
    pub start: Option<PointId>,
    /// First id after the range (`None`: to the end).
    pub end: Option<PointId>,
    /// Where the next chunk of this range starts (scroll offset); `None` before the first chunk.
    pub cursor: Option<PointId>,
    /// All points of the range are staged.
    pub done: bool,
    /// Files of points set aside (payload too large for `$meta`, or values Milvus refuses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SetAsideFile>,
    /// Points staged with an all-zero vector in a COSINE field (reported as a warning).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub zero_cosine: u64,
    /// Points staged with an empty sparse row (`{}`), which Milvus takes over REST from 2.4.12
    /// and in a Parquet import from 2.5.7 only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub empty_sparse: u64,
    /// Points the id scan counted in the range when it was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_points: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A JSON-lines file of whole Qdrant points that could not be staged as rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetAsideFile {
    /// Path relative to the stage directory.
    pub file: String,
    /// Points in the file.
    pub points: u64,
    pub sha256: String,
}

/// One staged Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Path relative to the stage directory.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub range: usize,
    pub seq: u32,
    pub first_id: PointId,
    pub last_id: PointId,
    /// Scroll offset after the chunk's last point (`None`: range finished).
    pub cursor_after: Option<PointId>,
    /// Unix milliseconds when the chunk was staged (the report's export throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at_ms: Option<u64>,
}

/// Export state of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Planned,
    Exporting,
    Exported,
}

/// Everything staged for one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionEntry {
    /// Qdrant's `config` object as read.
    pub qdrant_config: Value,
    pub mapping: CollectionMapping,
    /// The Milvus `collections/create` schema derived from the mapping.
    pub milvus_schema: Value,
    pub warnings: Vec<String>,
    /// Exact point count when the export began.
    pub source_count_at_start: u64,
    pub ranges: Vec<Range>,
    pub chunks: Vec<Chunk>,
    pub state: ExportState,
    /// Which snapshot file each shard was read from (`shard N ← file`), for snapshot sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
    /// Unix seconds at or before which every exported point was written (`None`: unknown,
    /// snapshot files): where `sync --changed-since-field` starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_taken_at: Option<u64>,
    /// In a part stage (`export --part I/N`): this part's share of the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<PartShare>,
}

/// Which share of the work one process of `export --part I/N` takes (docs/design.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// From 0 (Kubernetes' `JOB_COMPLETION_INDEX`).
    pub index: usize,
    /// Number of parts.
    pub of: usize,
}

impl Part {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(s: &str) -> std::result::Result<Part, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not I/N (e.g. 0/3: the first of three parts)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' in '{s}' is not a part number"))?;
        let of: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' in '{s}' is not a number of parts"))?;
        if of == 0 || index >= of {
            return Err(format!(
                "part {index} of {of} does not exist: parts count from 0 to N-1 (like JOB_COMPLETION_INDEX)"
            ));
        }
        Ok(Part { index, of })
    }

    /// Whether the unit at `position` of the whole plan is this part's (round robin).
    pub fn owns(&self, position: usize) -> bool {
        position % self.of == self.index
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// How a collection's work was split between parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Whole shards (snapshot sources with at least N shards): a part unpacks only its own.
    Shards,
    /// Id ranges of one plan (live servers, and snapshots with fewer shards than parts).
    Ranges,
}

impl std::fmt::Display for SplitBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitBy::Shards => "shards",
            SplitBy::Ranges => "id ranges",
        })
    }
}

/// A part's share of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartShare {
    pub by: SplitBy,
    /// This part's units: shard ids, or positions of id ranges in the whole plan (in the
    /// order of this stage's ranges).
    pub units: Vec<u64>,
    /// Every unit of the whole plan.
    pub all: Vec<u64>,
    /// sha256 of the whole plan (the units and, for ranges, their boundaries): parts of one
    /// plan carry the same one.
    pub fingerprint: String,
}

impl CollectionEntry {
    /// Whether the id ranges of the plan do not overlap (every plan of a single export, or
    /// parts split by ranges; not parts split by shards, whose ranges each cover all ids).
    pub fn ranges_disjoint(&self) -> bool {
        let mut spans: Vec<&Range> = self.ranges.iter().collect();
        spans.sort_by(|a, b| a.start.cmp(&b.start));
        spans.windows(2).all(|w| match (&w[0].end, &w[1].start) {
            (Some(e), Some(s)) => e <= s,
            _ => false,
        })
    }

    /// Rows staged so far.
    pub fn staged_rows(&self) -> u64 {
        self.chunks.iter().map(|c| c.rows).sum()
    }

    /// Points set aside instead of staged (see [`SetAsideFile`]).
    pub fn set_aside_points(&self) -> u64 {
        self.ranges
            .iter()
            .flat_map(|r| &r.set_aside)
            .map(|f| f.points)
            .sum()
    }
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool_version: String,
    pub source: SourceInfo,
    /// Set in a part stage (`export --part I/N`); `q2z stage merge` joins the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
    pub collections: BTreeMap<String, CollectionEntry>,
}

impl Manifest {
    /// A new, empty manifest.
    pub fn new(source: SourceInfo) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            source,
            part: None,
            collections: BTreeMap::new(),
        }
    }

    /// Reads `manifest.json` of a stage directory, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| stage_err(dir, format!("manifest.json is not valid JSON ({e}); the stage is damaged: export again with --restart")))?;
        let version = v.get("format_version").and_then(Value::as_u64).unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(stage_err(
                dir,
                format!(
                    "written by a newer q2z (staging format {version}, this build reads up to {FORMAT_VERSION}); upgrade q2z on this machine"
                ),
            ));
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| {
            stage_err(
                dir,
                format!("manifest.json does not match the staging format ({e}); the stage is damaged: copy it again, or export again with --restart"),
            )
        })?;
        m.validate().map_err(|e| stage_err(dir, format!("manifest.json {e}; the stage is damaged or was edited: copy it again, or export again with --restart")))?;
        Ok(Some(m))
    }

    /// Checks what a damaged or edited manifest could turn into harm: every collection name is
    /// a plain directory name, every file it lists is a q2z file inside that directory, chunk
    /// ranges exist, and the mapping stays within Milvus's limits.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, e) in &self.collections {
            if !is_safe_dir_name(name) {
                return Err(format!(
                    "names a collection '{}' that is not a plain directory name",
                    name.escape_debug()
                ));
            }
            let files = e.chunks.iter().map(|c| &c.file).chain(
                e.ranges
                    .iter()
                    .flat_map(|r| r.set_aside.iter().map(|f| &f.file)),
            );
            for f in files {
                if !is_staged_file_of(name, f) {
                    return Err(format!(
                        "lists a file '{}' that is not a staged file of collection '{name}'",
                        f.escape_debug()
                    ));
                }
            }
            for c in &e.chunks {
                if c.range >= e.ranges.len() {
                    return Err(format!(
                        "lists chunk {} of range {}, which the plan does not have",
                        c.file, c.range
                    ));
                }
            }
            for (i, r) in e.ranges.iter().enumerate() {
                if r.index != i {
                    return Err(format!(
                        "has range {} at position {i} of collection '{name}'",
                        r.index
                    ));
                }
            }
            e.mapping
                .check_limits()
                .map_err(|m| format!("has a mapping for '{name}' that Milvus cannot take: {m}"))?;
        }
        Ok(())
    }

    /// Writes the manifest atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| stage_err(dir, e.to_string()))?;
        write_atomic(&dir.join(MANIFEST), &text)
    }
}

/// Error about a stage directory.
pub fn stage_err(dir: &Path, message: impl Into<String>) -> Error {
    Error::Stage {
        path: dir.to_path_buf(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_format_asks_for_an_upgrade_and_a_damaged_one_for_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Manifest::load(dir.path()).unwrap().is_none(),
            "no manifest: nothing staged"
        );
        let m = Manifest::new(SourceInfo::Rest {
            url: "http://h".into(),
        });
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
        std::fs::write(
            dir.path().join(MANIFEST),
            br#"{"format_version": 99, "whatever": true}"#,
        )
        .unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("newer q2z") && e.contains("upgrade"), "{e}");
        std::fs::write(dir.path().join(MANIFEST), b"{").unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("not valid JSON") && e.contains("--restart"),
            "{e}"
        );
    }
}
