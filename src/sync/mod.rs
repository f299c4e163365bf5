//! `q2z sync`: brings the target up to date with what changed in the live source since the
//! stage was exported (docs/design.md §12). Range by range of the export's plan, the source is
//! read again and every point converted as the export would stage it; a 64-bit digest of each
//! converted row is compared with the digest of the row the target holds — the staged row, or
//! the row an earlier sync sent — so only inserted and changed points are sent and only ids
//! the source confirms gone are deleted. Every pass records in the stage what it sent and
//! deleted ([`crate::stage::sync_state`]), only after it was applied, so a sync that stops is
//! finished by running it again, and verify and repair know what the target must hold.
//!
//! A sync starts only on a finished import into the same target collection ([`target`]).
//! With `--changed-since-field F` only the points whose field `F` is at or after the pass's
//! bound (or that lack `F`) are read in full; an id-only scan finds the inserted and deleted
//! ones (module [`changed`]).

pub mod bulk;
pub mod changed;
mod range;
pub mod target;

use crate::error::{Error, Result};
use crate::sink::milvus::Milvus;
use crate::source::SharedSource;
use crate::stage::Stage;
use crate::stage::sync_state::{PassState, SyncState, base_stream, export_fingerprint};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Knobs of a sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Count what would change; write nothing.
    pub dry_run: bool,
    /// Points per scroll page.
    pub page_size: usize,
    /// Rows per upsert request, ids per delete request.
    pub batch: usize,
    /// Collections to sync (empty: all staged).
    pub collections: Vec<String>,
    /// Ranges read at once (each its own scroll cursor).
    pub workers: usize,
    /// Ids of one range diffed at once (on each side): what bounds a range's memory.
    pub window: usize,
    /// Read only points changed after a bound, by a payload field the application keeps.
    pub changed_since: Option<ChangeField>,
    /// Ranges with many changed rows go through bulk import.
    pub bulk: Option<bulk::BulkDelta>,
}

/// `--changed-since-field`, `--since`, `--since-margin`.
#[derive(Debug, Clone)]
pub struct ChangeField {
    /// Payload field (dotted path) set on every write: a datetime or an integer.
    pub field: String,
    /// Bound given by the user (a number or an RFC 3339 time); else derived from the last
    /// pass (a counter: the largest value it read; a time: its start), or from the export.
    pub since: Option<Value>,
    /// Taken off a derived bound: seconds for a time (clocks of writers and of this machine
    /// differ), units for a counter (writes still in flight when the last pass read).
    pub margin_secs: u64,
}

/// What a sync did (or would do) to one collection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub collection: String,
    pub target: String,
    /// The pass this run made (or finished); 0 in a dry run.
    pub pass: u64,
    /// Points read from the source.
    pub scanned: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Ids the first read missed but the second look-up found (not deleted).
    pub delete_checks_kept: u64,
    /// Rows in the target afterwards (counted), or expected (dry run).
    pub target_rows: u64,
    /// Points the scan saw as rows, which the target must hold.
    pub source_points: u64,
    /// Of the inserted and updated rows, those sent by bulk import (`--bulk-over`).
    pub bulk_rows: u64,
    /// Points that cannot be rows (set aside, as the export does): not in the target, listed
    /// in the pass's `sync-PPPP-RRRR.set-aside.jsonl` files.
    pub set_aside: u64,
    /// Of those, points the target held until this pass (their old row was removed).
    pub set_aside_removed: u64,
    /// The change-field bound this pass read from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Value>,
    pub seconds: f64,
    pub dry_run: bool,
    pub ok: bool,
}

/// Adds one range's counts to a collection's report.
fn add(report: &mut SyncReport, o: &SyncReport) {
    report.scanned += o.scanned;
    report.inserted += o.inserted;
    report.updated += o.updated;
    report.deleted += o.deleted;
    report.delete_checks_kept += o.delete_checks_kept;
    report.source_points += o.source_points;
    report.bulk_rows += o.bulk_rows;
    report.set_aside += o.set_aside;
    report.set_aside_removed += o.set_aside_removed;
}

/// Syncs the staged collections whose source is in `sources` into the target.
pub fn sync(
    stage: &Stage,
    sources: &[SharedSource],
    milvus: &Milvus,
    opts: &SyncOptions,
) -> Result<Vec<SyncReport>> {
    let manifest = stage.require_manifest()?;
    let all = stage.collections(&manifest);
    let fingerprint = export_fingerprint(&all);
    let staged = all
        .into_iter()
        .filter(|c| opts.collections.is_empty() || opts.collections.iter().any(|n| n == c.name));
    let mut state = stage.sync_state()?;
    if state.export != fingerprint {
        state = SyncState {
            export: fingerprint,
            collections: BTreeMap::new(),
        };
    }
    let mut reports = Vec::new();
    for sc in staged {
        let Some(src) = sources.iter().find(|s| s.config().name == sc.name) else {
            return Err(Error::Other(format!(
                "collection {} is not on the source given; give the live server it was exported from (--qdrant-url)",
                sc.name
            )));
        };
        let target_id = target::check_imported(stage, milvus, sc)?;
        let pass = state.collections.get(sc.name).cloned().unwrap_or_default();
        target::check_same_target(sc, &pass, target_id.as_deref())?;
        reports.push(sync_collection(
            range::CollectionSync {
                stage,
                sc,
                src,
                milvus,
                opts,
                filter: None,
                change_field: None,
                pass_no: 0,
                empty_sparse: crate::sink::milvus::fit::EmptySparse::of(
                    milvus.server()?,
                    &sc.entry.mapping,
                ),
                owners: range::Owners::of(sc, state.collections.get(sc.name))?
                    .map(std::sync::Arc::new),
                pass: Default::default(),
            },
            &mut state,
            target_id,
        )?);
    }
    Ok(reports)
}

/// Syncs one collection: the ranges its pass has not done, `opts.workers` at a time; each
/// range done is recorded in `state` (saved in the stage).
fn sync_collection(
    job: range::CollectionSync,
    state: &mut SyncState,
    target_id: Option<String>,
) -> Result<SyncReport> {
    let (sc, opts, milvus, stage) = (job.sc, job.opts, job.milvus, job.stage);
    let t = std::time::Instant::now();
    let mut pass = state.collections.get(sc.name).cloned().unwrap_or_default();
    let (filter, change_field) = start_pass(&job, &mut pass, target_id)?;
    if !opts.dry_run {
        state.collections.insert(sc.name.to_string(), pass.clone());
        stage.save_sync_state(state)?;
    }
    let job = range::CollectionSync {
        filter,
        change_field,
        pass_no: pass.current_pass(),
        pass: pass.clone(),
        ..job
    };
    let mut report = SyncReport {
        collection: sc.name.to_string(),
        target: sc.entry.mapping.target.clone(),
        dry_run: opts.dry_run,
        pass: if opts.dry_run { 0 } else { pass.current_pass() },
        since: pass.since.clone(),
        source_points: if opts.dry_run {
            0
        } else {
            done_points(sc, &pass)?
        },
        ..Default::default()
    };
    run_ranges(&job, pass, state, &mut report)?;
    report.target_rows = if opts.dry_run {
        report.source_points
    } else {
        milvus.flush(&report.target)?;
        milvus.count(&report.target, "")?
    };
    report.ok = report.target_rows == report.source_points;
    report.seconds = (t.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    Ok(report)
}

/// Points of the ranges an earlier run of this pass finished (what it left in the target).
fn done_points(sc: crate::stage::StagedCollection, pass: &PassState) -> Result<u64> {
    let mut n = 0;
    for r in sc
        .entry
        .ranges
        .iter()
        .filter(|r| pass.done.contains(&r.index))
    {
        let (base, _tmp) = base_stream(sc, Some(pass), r)?;
        n += base.count()?;
    }
    Ok(n)
}

/// Runs the pass's ranges not done yet (all of them in a dry run), `--workers` at a time,
/// adding each one's counts to `report` and saving the state after each.
fn run_ranges(
    job: &range::CollectionSync,
    pass: PassState,
    state: &mut SyncState,
    report: &mut SyncReport,
) -> Result<()> {
    let (sc, opts, stage) = (job.sc, job.opts, job.stage);
    let todo: Vec<&crate::stage::manifest::Range> = sc
        .entry
        .ranges
        .iter()
        .filter(|r| opts.dry_run || !pass.done.contains(&r.index))
        .collect();
    let shared = std::sync::Mutex::new((pass, state, report));
    crate::pool::run(todo, opts.workers, |r| {
        let o = job.sync_range(r)?;
        let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
        let (pass, state, report) = &mut *g;
        add(report, &o.report);
        if opts.dry_run {
            return Ok(());
        }
        let superseded = finish_range(pass, r.index, o, sc.entry.ranges.len());
        state.collections.insert(sc.name.to_string(), pass.clone());
        stage.save_sync_state(state)?;
        // The digests the target no longer matches: the record's rows and tombstones keep
        // the history.
        if let Some(old) = superseded {
            stage.remove_file(&old.file);
        }
        Ok(())
    })
}

/// Records a range of the running pass as done (the last one ends the pass); returns the
/// digests file it supersedes.
fn finish_range(
    pass: &mut PassState,
    range: usize,
    o: range::RangeOutcome,
    ranges: usize,
) -> Option<crate::stage::sync_state::FileRef> {
    pass.done.push(range);
    if let Some(rec) = o.record {
        pass.record(rec);
    }
    let superseded = o
        .digests
        .and_then(|d| pass.digests.insert(range, d))
        .filter(|old| {
            pass.digests
                .get(&range)
                .is_none_or(|new| new.file != old.file)
        });
    pass.max_seen = changed::larger(pass.max_seen.take(), o.max_seen);
    if pass.done.len() == ranges {
        pass.passes += 1;
        pass.running = false;
        pass.last_started_at = pass.started_at;
        if let Some(m) = pass.max_seen.take() {
            pass.last_max_seen = Some(m);
        }
    }
    superseded
}

/// What a pass reads: the filter of the points read in full, and the change field (its name
/// and kind), with `--changed-since-field`.
type PassReads = (Option<Value>, Option<(String, changed::FieldKind)>);

/// Begins a pass (or resumes the running one): its start time and change-field bound.
fn start_pass(
    job: &range::CollectionSync,
    pass: &mut PassState,
    target_id: Option<String>,
) -> Result<PassReads> {
    let sc = job.sc;
    if pass.done.len() == sc.entry.ranges.len() {
        pass.done.clear();
    }
    if pass.target_id.is_none() {
        pass.target_id = target_id;
    }
    if pass.done.is_empty() {
        pass.started_at = Some(crate::source::unix_now());
        pass.since = None;
        pass.max_seen = None;
    }
    pass.running = true;
    let Some(cf) = &job.opts.changed_since else {
        pass.since = None;
        return Ok((None, None));
    };
    let kind = changed::field_kind(job.src.as_ref(), &cf.field)?;
    let since = match (&cf.since, &pass.since) {
        (Some(v), _) | (None, Some(v)) => v.clone(),
        (None, None) => changed::next_bound(
            &cf.field,
            kind,
            cf.margin_secs,
            pass,
            sc.entry.source_taken_at,
        )
        .map_err(|why| Error::Other(format!("collection {}: {why}", sc.name)))?,
    };
    pass.since = Some(since.clone());
    Ok((
        Some(changed::changed_filter(&cf.field, &since)),
        Some((cf.field.clone(), kind)),
    ))
}
