//! `q2z sync`: brings the target up to date with what changed in the live source since the
//! stage was exported (docs/design.md §12). Range by range of the export's plan, the source is
//! read again and every point converted as the export would stage it; a 64-bit digest of each
//! converted row is compared with the digest of the row the target holds — the staged row, or
//! the row an earlier sync sent — so only inserted and changed points are upserted and only
//! vanished ids deleted. What a range left in the target is recorded (`<collection>/sync-RRRR.
//! digests`) only after it was applied, and `sync-state.json` records the ranges done, so a
//! sync that stops is finished by running it again.
//!
//! With `--changed-since-field F` only the points whose field `F` is at or after the pass's
//! bound (or that lack `F`) are read in full; an id-only scan finds the inserted and deleted
//! ones (module [`changed`]).

pub mod bulk;
pub mod changed;

use crate::error::{Error, Result};
use crate::import::upsert::rest_row;
use crate::model::{Point, PointId};
use crate::sink::milvus::Milvus;
use crate::source::{SharedSource, scroll_checked};
use crate::stage::fsutil::write_atomic;
use crate::stage::layout::{SYNC_STATE, sync_digests_file};
use crate::stage::manifest::{Range, stage_err};
use crate::stage::reader::{Row, rows_of};
use crate::stage::sync_state::{SyncState, base_digests, digest, export_fingerprint, id_key};
use crate::stage::{Stage, StagedCollection};
use crate::transform::batch::{arrow_schema, to_batch};
use crate::transform::mapping::CollectionMapping;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// Bound given by the user (a number or an RFC 3339 time); else the start of the last
    /// pass, or of the export, less `margin_secs`.
    pub since: Option<Value>,
    /// Seconds taken off a time bound: clocks of writers and of this machine differ.
    pub margin_secs: u64,
}

/// What a sync did (or would do) to one collection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub collection: String,
    pub target: String,
    /// Points read from the source.
    pub scanned: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows in the target afterwards (counted), or expected (dry run).
    pub target_rows: u64,
    /// Points the scan saw as rows, which the target must hold.
    pub source_points: u64,
    /// Of the inserted and updated rows, those sent by bulk import (`--bulk-over`).
    pub bulk_rows: u64,
    /// Points that cannot be rows (set aside, as the export does), not in the target.
    pub set_aside: u64,
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
    report.source_points += o.source_points;
    report.bulk_rows += o.bulk_rows;
    report.set_aside += o.set_aside;
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
    let state_path = stage.file(SYNC_STATE);
    let mut state: SyncState = match std::fs::read(&state_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            stage_err(stage.dir(), format!("{SYNC_STATE} is damaged ({e}); delete it and the sync-*.digests files, drop the target collection and import again"))
        })?,
        Err(_) => SyncState::default(),
    };
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
        reports.push(sync_collection(
            CollectionSync {
                stage,
                sc,
                src,
                milvus,
                opts,
                filter: None,
            },
            &mut state,
            &state_path,
        )?);
    }
    Ok(reports)
}

/// Syncs one collection: the ranges its pass has not done, `opts.workers` at a time; each
/// range done is recorded in `state` (saved at `state_path`).
fn sync_collection(
    job: CollectionSync,
    state: &mut SyncState,
    state_path: &std::path::Path,
) -> Result<SyncReport> {
    let (sc, opts, milvus) = (job.sc, job.opts, job.milvus);
    let t = std::time::Instant::now();
    let mut pass = state.collections.get(sc.name).cloned().unwrap_or_default();
    if pass.done.len() == sc.entry.ranges.len() {
        pass.done.clear();
    }
    if pass.done.is_empty() {
        pass.started_at = Some(crate::source::unix_now());
        pass.since = None;
    }
    pass.since = match &opts.changed_since {
        None => None,
        Some(cf) => Some(match (&cf.since, &pass.since) {
            (Some(v), _) | (None, Some(v)) => v.clone(),
            (None, None) => {
                let from = pass.last_started_at.or(sc.entry.source_taken_at).ok_or_else(|| Error::Other(format!(
                    "collection {} was exported from snapshot files, whose time q2z cannot know, and has not been synced since: give --since with the time the snapshot was taken (RFC 3339, e.g. 2026-11-30T08:00:00Z, or the field's own number), or run this first sync without --changed-since-field (the digest diff)",
                    sc.name
                )))?;
                let kind = changed::field_kind(job.src.as_ref(), &cf.field)?;
                changed::bound(kind, from.saturating_sub(cf.margin_secs))
            }
        }),
    };
    let filter = opts
        .changed_since
        .as_ref()
        .zip(pass.since.as_ref())
        .map(|(cf, since)| changed::changed_filter(&cf.field, since));
    let job = CollectionSync { filter, ..job };
    let mut report = SyncReport {
        collection: sc.name.to_string(),
        target: sc.entry.mapping.target.clone(),
        dry_run: opts.dry_run,
        ..Default::default()
    };
    // Finished by an earlier run of this pass: count what it left.
    for r in sc
        .entry
        .ranges
        .iter()
        .filter(|r| pass.done.contains(&r.index))
    {
        if !opts.dry_run {
            report.source_points += job.base_digests(r)?.len() as u64;
        }
    }
    let todo: Vec<&Range> = sc
        .entry
        .ranges
        .iter()
        .filter(|r| opts.dry_run || !pass.done.contains(&r.index))
        .collect();
    let shared = std::sync::Mutex::new((pass, state, &mut report));
    let queue = std::sync::Mutex::new(todo.into_iter());
    let first_err: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| {
                loop {
                    let stop = first_err.lock().map(|e| e.is_some()).unwrap_or(true);
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let (false, Some(r)) = (stop, next) else {
                        return;
                    };
                    let done = crate::interrupt::check()
                        .and_then(|()| job.sync_range(r))
                        .and_then(|o| {
                            let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                            let (pass, state, report) = &mut *g;
                            add(report, &o);
                            if opts.dry_run {
                                return Ok(());
                            }
                            pass.done.push(r.index);
                            if pass.done.len() == sc.entry.ranges.len() {
                                pass.passes += 1;
                                pass.last_started_at = pass.started_at;
                            }
                            state.collections.insert(sc.name.to_string(), pass.clone());
                            state.save(state_path)
                        });
                    if let Err(e) = done {
                        first_err
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    drop(shared);
    if let Some(e) = first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
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

/// The changed rows of one range on their way to the target.
#[derive(Default)]
struct Delta {
    /// Rows to upsert (all of them until `over`; then the file holds them).
    upserts: Vec<Row>,
    /// The delta file, when bulk import is possible.
    file: Option<bulk::DeltaFile>,
    /// Ids of the changed rows (kept while a file is written).
    ids: Vec<Value>,
    changed: usize,
    /// The range reached `--bulk-over`: it goes through bulk import.
    over: bool,
}

/// One collection's sync.
struct CollectionSync<'a> {
    stage: &'a Stage,
    sc: StagedCollection<'a>,
    src: &'a SharedSource,
    milvus: &'a Milvus,
    opts: &'a SyncOptions,
    /// `--changed-since-field`: the filter of the points to read in full.
    filter: Option<Value>,
}

impl CollectionSync<'_> {
    fn mapping(&self) -> &CollectionMapping {
        &self.sc.entry.mapping
    }

    fn base_digests(&self, r: &Range) -> Result<HashMap<String, u64>> {
        base_digests(self.stage, self.sc, r)
    }

    /// Calls `f` with every page of range `r` (of the points matching `filter`, if given).
    fn each_page(
        &self,
        r: &Range,
        with_data: bool,
        filter: Option<&Value>,
        mut f: impl FnMut(Vec<Point>) -> Result<()>,
    ) -> Result<()> {
        let src = self.src.as_ref();
        let mut cursor: Option<PointId> = r.start.clone();
        loop {
            let (mut pts, mut next) = match filter {
                None => scroll_checked(src, cursor.as_ref(), self.opts.page_size, with_data)?,
                Some(flt) => {
                    src.scroll_where(cursor.as_ref(), self.opts.page_size, with_data, flt)?
                }
            };
            if let Some(end) = &r.end {
                if let Some(cut) = pts.iter().position(|p| &p.id >= end) {
                    pts.truncate(cut);
                    next = None;
                }
                if next.as_ref().is_some_and(|n| n >= end) {
                    next = None;
                }
            }
            f(pts)?;
            cursor = next;
            if cursor.is_none() {
                return Ok(());
            }
        }
    }

    /// Converts points as the export stages them; compares each row's digest with `base`
    /// (taking it out), counting and gathering the rows to send; records the new digests.
    fn diff(
        &self,
        pts: &[Point],
        base: &mut HashMap<String, u64>,
        out: &mut SyncReport,
        now: &mut Vec<(String, u64)>,
        delta: &mut Delta,
    ) -> Result<()> {
        let m = self.mapping();
        out.scanned += pts.len() as u64;
        let converted = to_batch(pts, m, &arrow_schema(m))?;
        // Points that cannot be rows (a payload over 64 KiB, with --oversize-payload
        // set-aside) are not in the target, as after the export: counted, not sent.
        out.set_aside += converted.set_aside.len() as u64;
        let rows = rows_of(&converted.batch, m).map_err(Error::Other)?;
        let mut keep = Vec::with_capacity(rows.len());
        for row in rows {
            let id = id_key(&row[&m.id_field]);
            let d = digest(&row);
            let changed = match base.remove(&id) {
                Some(old) if old == d => false,
                Some(_) => {
                    out.updated += 1;
                    true
                }
                None => {
                    out.inserted += 1;
                    true
                }
            };
            keep.push(changed);
            if changed {
                delta.changed += 1;
                if delta.file.is_some() {
                    delta.ids.push(row[&m.id_field].clone());
                }
                if !delta.over {
                    delta.upserts.push(row);
                }
            }
            now.push((id, d));
        }
        if let Some(f) = &mut delta.file {
            f.write(&converted.batch, keep)?;
            if let Some(b) = &self.opts.bulk
                && delta.changed >= b.over
            {
                delta.over = true;
                delta.upserts.clear();
            }
        } else if delta.upserts.len() >= self.opts.batch {
            self.send(&mut delta.upserts)?;
        }
        Ok(())
    }

    /// Reads the range from the source, sends what differs, records what the target holds.
    fn sync_range(&self, r: &Range) -> Result<SyncReport> {
        let mut out = SyncReport::default();
        let delta_import = self.opts.bulk.as_ref().map(|bulk| bulk::DeltaImport {
            stage: self.stage,
            milvus: self.milvus,
            bulk,
            target: &self.mapping().target,
            collection: self.sc.name,
            range: r.index,
        });
        if let Some(d) = &delta_import
            && !self.opts.dry_run
        {
            d.settle_earlier()?;
        }
        let mut base = self.base_digests(r)?;
        let mut now: Vec<(String, u64)> = Vec::new();
        let mut delta = Delta {
            file: (delta_import.is_some() && !self.opts.dry_run).then(|| {
                bulk::DeltaFile::new(
                    self.stage,
                    self.sc.name,
                    r.index,
                    arrow_schema(self.mapping()),
                )
            }),
            ..Default::default()
        };
        match &self.filter {
            None => self.each_page(r, true, None, |pts| {
                self.diff(&pts, &mut base, &mut out, &mut now, &mut delta)
            })?,
            Some(filter) => {
                // Which ids the range holds now (ids only), then in full: the points the
                // filter calls changed, and the ids the target has never seen.
                let mut ids: HashSet<String> = HashSet::new();
                self.each_page(r, false, None, |pts| {
                    ids.extend(pts.iter().map(|p| p.id.to_key_string()));
                    Ok(())
                })?;
                let mut read: HashSet<String> = HashSet::new();
                self.each_page(r, true, Some(filter), |pts| {
                    read.extend(pts.iter().map(|p| p.id.to_key_string()));
                    self.diff(&pts, &mut base, &mut out, &mut now, &mut delta)
                })?;
                let unseen: Vec<Value> = ids
                    .iter()
                    .filter(|i| !read.contains(*i) && !base.contains_key(*i))
                    .filter_map(|i| PointId::from_key_string(i).map(|p| p.to_json()))
                    .collect();
                for part in unseen.chunks(self.opts.page_size.max(1)) {
                    let has = json!({"must": [{"has_id": part}]});
                    self.each_page(r, true, Some(&has), |pts| {
                        self.diff(&pts, &mut base, &mut out, &mut now, &mut delta)
                    })?;
                }
                // Ids still in the source that were not read are unchanged.
                base.retain(|id, d| {
                    let kept = ids.contains(id);
                    if kept {
                        now.push((id.clone(), *d));
                    }
                    !kept
                });
            }
        }
        let m = self.mapping();
        match (delta.file.take(), &delta_import) {
            (Some(file), Some(d)) if delta.over => {
                d.run(file, &delta.ids, &m.id_field)?;
                out.bulk_rows += delta.changed as u64;
            }
            (file, _) => {
                if let Some(f) = file {
                    f.abandon();
                }
                self.send(&mut delta.upserts)?;
            }
        }
        // What the target holds of this range and the source no longer has.
        let gone: Vec<String> = base.into_keys().collect();
        out.deleted += gone.len() as u64;
        out.source_points += now.len() as u64;
        if !self.opts.dry_run {
            for ids in gone.chunks(self.opts.batch.max(1)) {
                let values: Vec<Value> = ids
                    .iter()
                    .map(|i| crate::verify::typed_id(m.id_kind, i))
                    .collect();
                for f in crate::verify::id_filters(&m.id_field, &values) {
                    self.milvus.delete(&m.target, &f)?;
                }
            }
            now.sort_unstable();
            let mut text = String::with_capacity(now.len() * 24);
            for (id, d) in &now {
                text.push_str(id);
                text.push('\t');
                text.push_str(&format!("{d:016x}\n"));
            }
            write_atomic(
                &self.stage.file(&sync_digests_file(self.sc.name, r.index)),
                text.as_bytes(),
            )?;
        }
        Ok(out)
    }

    /// Upserts the rows gathered so far (nothing in a dry run).
    fn send(&self, rows: &mut Vec<Row>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if !self.opts.dry_run {
            for part in rows.chunks(self.opts.batch.max(1)) {
                let rest: Vec<Row> = part.iter().cloned().map(rest_row).collect();
                self.milvus.upsert(&self.mapping().target, &rest)?;
            }
        }
        rows.clear();
        Ok(())
    }
}
