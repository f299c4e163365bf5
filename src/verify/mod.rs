//! Verify: counts (total and per chunk, by primary-key ranges) and a random sample compared
//! field by field between the staging directory and the target; repair of bad chunks.

pub mod compare;

use crate::error::Result;
use crate::stage::manifest::{Chunk, CollectionEntry};
use crate::stage::reader::for_each_batch;
use crate::target::milvus::Milvus;
use crate::transform::mapping::{CollectionMapping, IdKind};
use rand::seq::index::sample as sample_indices;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// A chunk whose count in the target differs from its staged rows.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkDiff {
    pub file: String,
    pub staged: u64,
    pub target: u64,
}

/// The verification of one collection.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub collection: String,
    pub target: String,
    pub source_count_at_start: u64,
    pub staged_rows: u64,
    /// Points kept apart in the stage (payload over 64 KiB), not in the target.
    pub set_aside: u64,
    pub target_count: u64,
    pub bad_chunks: Vec<ChunkDiff>,
    pub sample_checked: usize,
    pub sample_mismatches: Vec<String>,
    /// Notes that are not failures (e.g. null keys dropped by the upsert API).
    pub notes: Vec<String>,
    pub ok: bool,
}

/// Filters that select exactly a chunk's rows in the target: one range filter for an Int64
/// key; `id in [...]` batches for a VarChar key (string order differs from Qdrant's).
pub fn chunk_filters(stage: &Path, m: &CollectionMapping, c: &Chunk) -> Result<Vec<String>> {
    match (m.id_kind, &c.first_id, &c.last_id) {
        (IdKind::Int64, first, last) => Ok(vec![format!(
            "{} >= {} and {} <= {}",
            m.id_field, first, m.id_field, last
        )]),
        (IdKind::VarChar, _, _) => {
            let mut filters = Vec::new();
            for_each_batch(&stage.join(&c.file), m, 500, |rows| {
                let ids: Vec<Value> = rows.iter().map(|r| r[&m.id_field].clone()).collect();
                filters.push(format!("{} in {}", m.id_field, Value::Array(ids)));
                Ok(())
            })?;
            Ok(filters)
        }
    }
}

/// Rows of a chunk in the target.
pub fn chunk_count(milvus: &Milvus, stage: &Path, m: &CollectionMapping, c: &Chunk) -> Result<u64> {
    let mut n = 0;
    for f in chunk_filters(stage, m, c)? {
        n += milvus.count(&m.target, &f)?;
    }
    Ok(n)
}

/// Verifies one collection: total and per-chunk counts, then `sample` rows field by field.
pub fn verify_collection(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    sample: usize,
    upsert_mode: bool,
) -> Result<VerifyReport> {
    let m = &entry.mapping;
    let staged = entry.staged_rows();
    let target_count = milvus.count(&m.target, "")?;
    let mut bad = Vec::new();
    for c in &entry.chunks {
        let t = chunk_count(milvus, stage, m, c)?;
        if t != c.rows {
            bad.push(ChunkDiff {
                file: c.file.clone(),
                staged: c.rows,
                target: t,
            });
        }
    }
    let (checked, mismatches, mut notes) =
        compare::sample_compare(milvus, stage, entry, sample, upsert_mode)?;
    let mut problems = Vec::new();
    let aside = entry.set_aside_points();
    if staged + aside != entry.source_count_at_start {
        problems.push("staged rows differ from the source count");
    }
    if target_count != staged {
        problems.push("target count differs from staged rows");
    }
    if aside > 0 {
        notes.push(format!("{aside} points with payloads over 64 KiB were set aside at export (listed in the stage's set-aside-*.jsonl files) and are not in the target"));
    }
    let ok = problems.is_empty() && bad.is_empty() && mismatches.is_empty();
    Ok(VerifyReport {
        collection: entry.mapping.source.clone(),
        target: m.target.clone(),
        source_count_at_start: entry.source_count_at_start,
        staged_rows: staged,
        set_aside: aside,
        target_count,
        bad_chunks: bad,
        sample_checked: checked,
        sample_mismatches: mismatches,
        notes,
        ok,
    })
}

/// Picks about `n` random (chunk, row) positions, proportional to chunk sizes.
pub fn pick_sample(entry: &CollectionEntry, n: usize) -> Vec<(usize, Vec<usize>)> {
    let total = entry.staged_rows() as usize;
    if total == 0 || n == 0 {
        return Vec::new();
    }
    let mut rng = rand::rng();
    let mut out = Vec::new();
    for (ci, c) in entry.chunks.iter().enumerate() {
        let rows = c.rows as usize;
        let k = ((n * rows).div_ceil(total)).min(rows);
        if k > 0 {
            let mut idx = sample_indices(&mut rng, rows, k).into_vec();
            idx.sort_unstable();
            out.push((ci, idx));
        }
    }
    out
}
