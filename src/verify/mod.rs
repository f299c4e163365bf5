//! Verify: counts (total and per chunk) and rows compared field by field (a random sample, or
//! every row with `full`) between the staging directory and the target
//! (`crate::import::repair` re-sends exactly the chunks found bad).

pub mod compare;
pub mod filters;
pub mod search;
pub mod synced;

use crate::error::Result;
use crate::model::PointId;
use crate::sink::milvus::Milvus;
use crate::stage::StagedCollection;
use crate::stage::ledger::CollectionLedger;
use crate::stage::manifest::{Chunk, CollectionEntry};
use crate::transform::mapping::IdKind;
use rand::seq::index::sample as sample_indices;
use serde::Serialize;
use serde_json::Value;

/// How a collection is verified.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Rows compared field by field (spread over the chunks by size).
    pub sample: usize,
    /// Compare every row instead of a sample.
    pub full: bool,
    /// Count each chunk by its exact staged ids rather than by its key range (needed when the
    /// target collection also holds rows that did not come from the stage).
    pub exact_counts: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sample: 1000,
            full: false,
            exact_counts: false,
        }
    }
}

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
    /// Chunks holding rows whose values differ (counts may be right).
    pub chunks_with_differences: Vec<String>,
    /// Notes that are not failures (e.g. null keys dropped by the upsert API).
    pub notes: Vec<String>,
    pub ok: bool,
}

impl VerifyReport {
    /// Every chunk that repair should send again.
    pub fn chunks_to_repair(&self) -> Vec<String> {
        let mut v: Vec<String> = self.bad_chunks.iter().map(|c| c.file.clone()).collect();
        v.extend(self.chunks_with_differences.iter().cloned());
        v.sort();
        v.dedup();
        v
    }
}

/// Ids per `in [...]` filter.
const IDS_PER_FILTER: usize = 500;

/// `field in [...]` filters over ids, `IDS_PER_FILTER` at a time.
pub fn id_filters(field: &str, ids: &[Value]) -> Vec<String> {
    ids.chunks(IDS_PER_FILTER)
        .map(|g| format!("{field} in {}", Value::Array(g.to_vec())))
        .collect()
}

/// Rows of the target whose primary key is one of `ids`.
fn count_ids(
    milvus: &Milvus,
    m: &crate::transform::mapping::CollectionMapping,
    ids: &[Value],
) -> Result<u64> {
    let mut n = 0;
    for f in id_filters(&m.id_field, ids) {
        n += milvus.count(&m.target, &f)?;
    }
    Ok(n)
}

/// Rows of a chunk in the target, counted by its exact staged ids.
pub fn chunk_count_by_ids(milvus: &Milvus, sc: StagedCollection, c: &Chunk) -> Result<u64> {
    count_ids(milvus, &sc.entry.mapping, &sc.chunk_ids(c)?)
}

/// Rows of a chunk in the target: by its key range for an Int64 key (one query), by its
/// exact ids otherwise (string order differs from Qdrant's) or when `exact` is asked for.
pub fn chunk_count(milvus: &Milvus, sc: StagedCollection, c: &Chunk, exact: bool) -> Result<u64> {
    let m = &sc.entry.mapping;
    if m.id_kind == IdKind::Int64 && !exact {
        let f = format!(
            "{} >= {} and {} <= {}",
            m.id_field, c.first_id, m.id_field, c.last_id
        );
        return milvus.count(&m.target, &f);
    }
    chunk_count_by_ids(milvus, sc, c)
}

/// Verifies a collection the way its import ledger says it was imported: upserts drop
/// null-valued keys (a Milvus rule), and a target that also holds other rows (`shared`) is
/// counted by exact ids.
pub fn verify_imported(
    milvus: &Milvus,
    sc: StagedCollection,
    ledger: Option<&CollectionLedger>,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let mut o = opts.clone();
    o.exact_counts |= ledger.is_some_and(|l| l.shared);
    let upsert = ledger.is_some_and(CollectionLedger::has_upserts);
    verify_collection(milvus, sc, upsert, &o)
}

/// Verifies one collection: total and per-chunk counts, then rows field by field.
pub fn verify_collection(
    milvus: &Milvus,
    sc: StagedCollection,
    upsert_mode: bool,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let entry = sc.entry;
    let m = &entry.mapping;
    let staged = entry.staged_rows();
    let target_count = milvus.count(&m.target, "")?;
    let synced = crate::stage::sync_state::synced_view(sc)?;
    let mut counts = match &synced {
        Some(view) => count_synced_ranges(milvus, sc, view, target_count, opts)?,
        None => count_chunks(milvus, sc, target_count, opts)?,
    };
    let cmp = compare_values(milvus, sc, synced.as_ref(), upsert_mode, opts)?;
    counts.notes.extend(cmp.notes);
    if let Some(v) = &synced {
        counts.notes.push(format!(
            "checked against the state {} sync pass(es) left ({} rows); {} picked staged rows that a sync replaced or deleted since the export were left out of the staged-row check (their current versions are checked among the rows the passes sent)",
            v.passes, counts.synced_rows, cmp.skipped
        ));
    }
    let aside = entry.set_aside_points();
    if staged + aside != entry.source_count_at_start {
        counts
            .problems
            .push("staged rows differ from the source count");
    }
    if aside > 0 {
        counts.notes.push(format!("{aside} points were set aside at export (a payload over 64 KiB or a value Milvus refuses; listed with the reason in the stage's set-aside-*.jsonl files) and are not in the target"));
    }
    let ok = counts.problems.is_empty() && counts.bad.is_empty() && cmp.mismatches.is_empty();
    Ok(VerifyReport {
        collection: entry.mapping.source.clone(),
        target: m.target.clone(),
        source_count_at_start: entry.source_count_at_start,
        staged_rows: staged,
        set_aside: aside,
        target_count,
        bad_chunks: counts.bad,
        sample_checked: cmp.checked,
        sample_mismatches: cmp.mismatches,
        chunks_with_differences: cmp.chunks,
        notes: counts.notes,
        ok,
    })
}

/// What the count checks found.
#[derive(Default)]
struct Counts {
    /// Chunks (or synced ranges) whose count differs.
    bad: Vec<ChunkDiff>,
    /// Failures that are no single chunk's.
    problems: Vec<&'static str>,
    notes: Vec<String>,
    /// Rows the last sync left (after a sync).
    synced_rows: u64,
}

/// After `q2z sync` the target holds what the last pass left: each range is counted by the
/// exact ids the pass recorded.
fn count_synced_ranges(
    milvus: &Milvus,
    sc: StagedCollection,
    view: &crate::stage::sync_state::SyncedView,
    target_count: u64,
    opts: &VerifyOptions,
) -> Result<Counts> {
    let m = &sc.entry.mapping;
    let mut c = Counts::default();
    if view.unfinished {
        c.problems.push("a sync pass was stopped part-way");
        c.notes.push(
            "a `q2z sync` pass was stopped part-way: run the same sync command again, then verify"
                .into(),
        );
    }
    for range in &sc.entry.ranges {
        crate::interrupt::check()?;
        let ids = view.range(sc, range)?;
        c.synced_rows += ids.len() as u64;
        let values: Vec<Value> = ids.keys().map(|k| typed_id(m.id_kind, k)).collect();
        drop(ids);
        let t = count_ids(milvus, m, &values)?;
        if t != values.len() as u64 {
            c.bad.push(ChunkDiff {
                file: crate::stage::sync_state::range_label(sc.name, &view.pass, range.index),
                staged: values.len() as u64,
                target: t,
            });
        }
    }
    if target_count != c.synced_rows && !opts.exact_counts {
        c.problems
            .push("target count differs from the rows the last sync left");
    }
    Ok(c)
}

/// Before any sync: each chunk counted in the target against its staged rows.
fn count_chunks(
    milvus: &Milvus,
    sc: StagedCollection,
    target_count: u64,
    opts: &VerifyOptions,
) -> Result<Counts> {
    let entry = sc.entry;
    let mut c = Counts::default();
    // Chunks of shards merged from parts interleave in id order: a key range then holds
    // other chunks' rows, so those are counted by their exact ids.
    let exact = opts.exact_counts || !chunk_ranges_disjoint(entry);
    for ch in &entry.chunks {
        crate::interrupt::check()?;
        let t = chunk_count(milvus, sc, ch, exact)?;
        if t != ch.rows {
            c.bad.push(ChunkDiff {
                file: ch.file.clone(),
                staged: ch.rows,
                target: t,
            });
        }
    }
    if target_count != entry.staged_rows() && !opts.exact_counts {
        c.problems.push("target count differs from staged rows");
    }
    Ok(c)
}

/// Rows compared field by field: picked staged rows (those a sync replaced or deleted since
/// left out), then the rows the sync passes sent.
fn compare_values(
    milvus: &Milvus,
    sc: StagedCollection,
    synced: Option<&crate::stage::sync_state::SyncedView>,
    upsert_mode: bool,
    opts: &VerifyOptions,
) -> Result<compare::Comparison> {
    let m = &sc.entry.mapping;
    let picks = if opts.full {
        every_row(sc.entry)
    } else {
        pick_sample(sc.entry, opts.sample)
    };
    let lookup = synced.map(|v| crate::stage::sync_state::DigestLookup::new(sc, v));
    let unchanged = |row: &crate::stage::reader::Row| {
        lookup.as_ref().is_none_or(|l| {
            let id = crate::stage::sync_state::id_key(&row[&m.id_field]);
            match l.digest_of(&id) {
                Ok(d) => d == Some(crate::stage::sync_state::digest(row)),
                Err(e) => {
                    // Read a moment ago for the counts: left out of this check, and said.
                    tracing::warn!(collection = sc.name, "digests of the last sync could not be read again ({e}); point {id} is left out of the staged-row check");
                    false
                }
            }
        })
    };
    let mut cmp = compare::compare_rows(milvus, sc, &picks, upsert_mode, &unchanged)?;
    if let Some(v) = synced {
        let limit = if opts.full { usize::MAX } else { opts.sample };
        let more = synced::compare_pass_rows(milvus, sc, v, limit)?;
        cmp.checked += more.checked;
        cmp.mismatches.extend(more.mismatches);
        cmp.chunks.extend(more.chunks);
        cmp.notes.extend(more.notes);
    }
    Ok(cmp)
}

/// An id key as the target's primary key holds it (a number for Int64 keys).
pub fn typed_id(kind: IdKind, key: &str) -> Value {
    match kind {
        IdKind::Int64 => key
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(key)),
        IdKind::VarChar => Value::from(key),
    }
}

/// Whether no chunk's `[first_id, last_id]` overlaps another's.
pub fn chunk_ranges_disjoint(entry: &CollectionEntry) -> bool {
    let mut spans: Vec<(&PointId, &PointId)> = entry
        .chunks
        .iter()
        .map(|c| (&c.first_id, &c.last_id))
        .collect();
    spans.sort();
    spans.windows(2).all(|w| w[0].1 < w[1].0)
}

/// Every row of every chunk, as (chunk index, row positions).
pub fn every_row(entry: &CollectionEntry) -> Vec<(usize, Vec<usize>)> {
    entry
        .chunks
        .iter()
        .enumerate()
        .map(|(ci, c)| (ci, (0..c.rows as usize).collect()))
        .collect()
}

/// Picks about `n` random (chunk, row) positions, proportional to chunk sizes.
pub fn pick_sample(entry: &CollectionEntry, n: usize) -> Vec<(usize, Vec<usize>)> {
    let total = entry.staged_rows() as usize;
    if total == 0 || n == 0 {
        return Vec::new();
    }
    if n >= total {
        return every_row(entry);
    }
    let mut rng = rand::rng();
    let mut out = Vec::new();
    for (ci, c) in entry.chunks.iter().enumerate() {
        let rows = c.rows as usize;
        let k = ((n as u128 * rows as u128).div_ceil(total as u128) as usize).min(rows);
        if k > 0 {
            let mut idx = sample_indices(&mut rng, rows, k).into_vec();
            idx.sort_unstable();
            out.push((ci, idx));
        }
    }
    out
}
