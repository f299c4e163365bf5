//! One range of a sync pass: read it again from the source (all of it, or the points a change
//! field marks plus an id scan), diff each converted row's digest with what the target holds,
//! look up once more every id that seems gone, then send the changed rows (upserts, or one bulk
//! job), delete the confirmed-gone ids, and record it all in the stage.

use super::bulk::{DeltaFile, DeltaImport, WrittenDelta};
use super::changed::{self, FieldKind};
use super::{SyncOptions, SyncReport};
use crate::error::{Error, Result};
use crate::model::{Point, PointId};
use crate::sink::milvus::Milvus;
use crate::sink::milvus::fit::EmptySparse;
use crate::sink::milvus::rest_json::{rest_refusal, rest_row};
use crate::source::{ScrollOpts, SharedSource, pages};
use crate::stage::layout;
use crate::stage::manifest::Range;
use crate::stage::reader::{Row, rows_of};
use crate::stage::sync_lines::{DigestStream, SyncLines, digest_line};
use crate::stage::sync_state::{
    DeltaRecord, FileRef, HeldDigests, PassState, base_stream, digest, id_key,
};
use crate::stage::{Stage, StagedCollection};
use crate::transform::batch::{arrow_schema, to_batch};
use crate::transform::checks;
use crate::transform::mapping::CollectionMapping;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// One collection's sync.
pub struct CollectionSync<'a> {
    pub stage: &'a Stage,
    pub sc: StagedCollection<'a>,
    pub src: &'a SharedSource,
    pub milvus: &'a Milvus,
    pub opts: &'a SyncOptions,
    /// `--changed-since-field`: the filter of the points to read in full.
    pub filter: Option<Value>,
    /// `--changed-since-field` and what it holds (a counter's largest value is tracked).
    pub change_field: Option<(String, FieldKind)>,
    /// The pass being run.
    pub pass_no: u64,
    /// Where rows without a sparse vector may go on this target.
    pub empty_sparse: EmptySparse,
    /// The collection's passes as this run began them (what the target holds per range).
    pub pass: PassState,
    /// Ranges that overlap (a stage merged from parts split by shards: each part's ranges
    /// cover the whole id space): which range each id belongs to.
    pub owners: Option<std::sync::Arc<Owners>>,
}

/// For overlapping ranges (a stage merged from parts split by shards): an id belongs to the
/// range whose digests hold it (the range that staged or last synced it); an id none holds yet
/// to the first range, by index, whose bounds hold it. Read a window at a time from every
/// range's digests (held as the run began), so memory stays that of a window whatever the
/// collection's size.
pub struct Owners {
    held: HeldDigests,
    ranges: Vec<Range>,
}

impl Owners {
    /// `None` when the ranges are disjoint (every plan of a single export, or parts split by
    /// ranges); else every range's digests of what the target holds, held for the run.
    pub fn of(sc: StagedCollection, pass: Option<&PassState>) -> Result<Option<Owners>> {
        if sc.entry.ranges_disjoint() {
            return Ok(None);
        }
        let mut ranges = sc.entry.ranges.clone();
        ranges.sort_by_key(|r| r.index);
        Ok(Some(Owners {
            held: HeldDigests::take(sc, pass)?,
            ranges,
        }))
    }

    /// The first range, by index, whose bounds hold `id`.
    fn first_holder(&self, id: &PointId) -> Option<usize> {
        self.ranges
            .iter()
            .find(|r| {
                r.start.as_ref().is_none_or(|s| s <= id) && r.end.as_ref().is_none_or(|e| id < e)
            })
            .map(|r| r.index)
    }

    /// The other ranges' digests, to be read alongside range `range`'s windows.
    fn others_of(&self, range: usize) -> Result<OtherRanges> {
        let streams = self
            .ranges
            .iter()
            .filter(|r| r.index != range)
            .map(|r| self.held.stream(r.index))
            .collect::<Result<Vec<_>>>()?;
        Ok(OtherRanges {
            streams,
            ids: HashSet::new(),
            lo: None,
        })
    }
}

/// The ids the other ranges hold within the window being read (overlapping ranges only).
struct OtherRanges {
    streams: Vec<DigestStream>,
    /// Their ids from the window's start up to the last id covered.
    ids: HashSet<String>,
    lo: Option<PointId>,
}

impl OtherRanges {
    /// A new window from `start`: the last one's ids are dropped.
    fn begin(&mut self, start: Option<PointId>) {
        self.ids.clear();
        self.lo = start;
    }

    /// Reads the other ranges' ids up to `hi` (pages come in id order).
    fn cover(&mut self, hi: &PointId) -> Result<()> {
        for s in &mut self.streams {
            s.take_through(self.lo.as_ref(), hi, &mut self.ids)?;
        }
        Ok(())
    }
}

/// What one range of a pass did.
pub struct RangeOutcome {
    pub report: SyncReport,
    /// What it sent and deleted (`None` in a dry run).
    pub record: Option<DeltaRecord>,
    /// What the target holds of the range now (`None` in a dry run).
    pub digests: Option<FileRef>,
    /// A counter change field: the largest value read.
    pub max_seen: Option<Value>,
}

/// The changed rows of one range on their way to the target.
#[derive(Default)]
struct Delta<'a> {
    /// Rows to upsert (all of them until `over`; then the file holds them).
    upserts: Vec<Row>,
    /// The pass's rows of the range (not in a dry run).
    file: Option<DeltaFile<'a>>,
    changed: usize,
    /// The range reached `--bulk-over`, or holds a row REST would change: it goes through
    /// bulk import.
    over: bool,
    /// Points set aside (Qdrant JSON lines).
    aside: Vec<String>,
    /// Set-aside points the target held: their old rows are removed.
    aside_gone: Vec<String>,
    /// A counter change field: the largest value read.
    max_seen: Option<Value>,
    /// The first changed point without a sparse vector, on a target that takes it over REST
    /// only: the range is upserted.
    rest_only: Option<String>,
    /// Why the first row that must go through bulk import cannot go over REST.
    bulk_only: Option<String>,
}

/// The diff of a range as it goes: what the target holds of the window being read (`base`,
/// taken out as ids are seen) and what it will hold (`now`).
struct Diff<'a> {
    base: HashMap<String, u64>,
    /// Overlapping ranges: the other ranges' ids in the window.
    others: Option<OtherRanges>,
    now: Vec<(String, u64)>,
    out: SyncReport,
    delta: Delta<'a>,
}

/// The files a range of a pass writes as it goes (not in a dry run).
struct RangeFiles<'a> {
    digests: SyncLines<'a>,
    tombstones: SyncLines<'a>,
}

impl CollectionSync<'_> {
    fn mapping(&self) -> &CollectionMapping {
        &self.sc.entry.mapping
    }

    /// Calls `f` with every page of range `r` (of the points matching `filter`, if given).
    fn each_page(
        &self,
        r: &Range,
        with_data: bool,
        filter: Option<&Value>,
        d: &mut Diff,
        f: impl FnMut(&mut Diff, Vec<Point>) -> Result<()>,
    ) -> Result<()> {
        let o = ScrollOpts {
            page_size: self.opts.page_size,
            with_data,
            filter,
        };
        self.each_page_in(r, r.start.clone(), r.end.clone(), o, d, f)
    }

    /// Calls `f` with every page of `[start, end)` within range `r`.
    fn each_page_in(
        &self,
        r: &Range,
        start: Option<PointId>,
        end: Option<PointId>,
        o: ScrollOpts,
        d: &mut Diff,
        mut f: impl FnMut(&mut Diff, Vec<Point>) -> Result<()>,
    ) -> Result<()> {
        for page in pages(self.src.as_ref(), start, end, o) {
            let pts = self.owned(r, page?, d)?;
            f(d, pts)?;
        }
        Ok(())
    }

    /// Converts points as the export stages them; compares each row's digest with `base`
    /// (taking it out), counting and gathering the rows to send; records the new digests.
    fn diff(&self, pts: &[Point], d: &mut Diff) -> Result<()> {
        let m = self.mapping();
        d.out.scanned += pts.len() as u64;
        if let Some((field, FieldKind::Integer)) = &self.change_field {
            for p in pts {
                let v = changed::counter_value(&p.payload, field);
                d.delta.max_seen = changed::larger(d.delta.max_seen.take(), v);
            }
        }
        let converted = to_batch(pts, m, &arrow_schema(m))?;
        let rows = rows_of(&converted.batch, m).map_err(Error::Other)?;
        if !converted.set_aside.is_empty() {
            self.set_aside(pts, &rows, converted.set_aside, d);
        }
        let empties: HashSet<String> = match self.empty_sparse {
            EmptySparse::Anywhere => HashSet::new(),
            _ => pts
                .iter()
                .filter(|p| checks::empty_sparse(p, m))
                .map(|p| p.id.to_key_string())
                .collect(),
        };
        let mut keep = Vec::with_capacity(rows.len());
        for row in rows {
            let id = id_key(&row[&m.id_field]);
            let dg = digest(&row);
            let changed = match d.base.remove(&id) {
                Some(old) if old == dg => false,
                Some(_) => {
                    d.out.updated += 1;
                    true
                }
                None => {
                    d.out.inserted += 1;
                    true
                }
            };
            keep.push(changed);
            if changed {
                if empties.contains(&id) {
                    self.empty_sparse_row(&id, &mut d.delta)?;
                }
                self.route_changed(row, &mut d.delta)?;
            }
            d.now.push((id, dg));
        }
        if let Some(f) = &mut d.delta.file {
            f.write(&converted.batch, keep)?;
        }
        match &self.opts.bulk {
            Some(b) if d.delta.changed >= b.over && d.delta.file.is_some() => {
                d.delta.over = true;
                d.delta.upserts.clear();
            }
            Some(_) => {}
            None if d.delta.upserts.len() >= self.opts.batch => self.send(&mut d.delta.upserts)?,
            None => {}
        }
        Ok(())
    }

    /// A changed row, to the upserts — or, holding a value REST would change, the whole range
    /// to bulk import (sync stops naming the point without a bucket to import from).
    fn route_changed(&self, row: Row, delta: &mut Delta) -> Result<()> {
        if let Some(why) = rest_refusal(&row, self.mapping()) {
            if self.opts.bulk.is_none() || delta.file.is_none() {
                if !self.opts.dry_run {
                    return Err(Error::Other(format!(
                        "collection {}, {why}. Sync sends small deltas as REST upserts; give the bucket the target imports from (--s3-endpoint, --s3-bucket) so such rows go through bulk import",
                        self.sc.name
                    )));
                }
            } else {
                delta.over = true;
                delta.upserts.clear();
                delta.bulk_only.get_or_insert(why);
            }
        }
        delta.changed += 1;
        if !delta.over {
            delta.upserts.push(row);
        }
        Ok(())
    }

    /// A changed point without a sparse vector: on a target that takes it over REST only, its
    /// range is upserted; on one that takes it nowhere, sync stops naming it.
    fn empty_sparse_row(&self, id: &str, delta: &mut Delta) -> Result<()> {
        match self.empty_sparse {
            EmptySparse::Anywhere => {}
            EmptySparse::RestOnly => {
                delta.rest_only.get_or_insert_with(|| id.to_string());
            }
            EmptySparse::Nowhere if !self.opts.dry_run => {
                let server = self.milvus.server()?;
                return Err(Error::Other(format!(
                    "collection {}, point {id}: it has no sparse vector (staged as an empty sparse row), which the target ({server}) takes neither over REST (2.4.12+) nor in an import (2.5.7+). Give the point its sparse vector in Qdrant, or sync into a newer Milvus",
                    self.sc.name
                )));
            }
            EmptySparse::Nowhere => {}
        }
        Ok(())
    }

    /// Points that cannot be rows (as at export: a payload over 64 KiB with set-aside, an
    /// invalid value with `--invalid-values set-aside`) are listed, not sent; a row the
    /// target held for one of them is removed, as the export would not have staged it.
    fn set_aside(&self, pts: &[Point], rows: &[Row], lines: Vec<String>, d: &mut Diff) {
        let m = self.mapping();
        let kept: HashSet<String> = rows.iter().map(|r| id_key(&r[&m.id_field])).collect();
        for p in pts {
            let key = p.id.to_key_string();
            if kept.contains(&key) {
                continue;
            }
            d.out.set_aside += 1;
            if d.base.remove(&key).is_some() {
                d.out.set_aside_removed += 1;
                d.delta.aside_gone.push(key);
            }
        }
        d.delta.aside.extend(lines);
    }

    /// Reads the range from the source a window at a time, sends what differs, deletes what
    /// is gone, records what the target holds.
    pub fn sync_range(&self, r: &Range) -> Result<RangeOutcome> {
        let dry = self.opts.dry_run;
        let rel = layout::sync_delta_file(self.sc.name, self.pass_no, r.index);
        let delta_import = self.opts.bulk.as_ref().map(|bulk| DeltaImport {
            stage: self.stage,
            milvus: self.milvus,
            bulk,
            target: &self.mapping().target,
            collection: self.sc.name,
            range: r.index,
            rel: rel.clone(),
        });
        if let Some(d) = &delta_import
            && !dry
        {
            d.settle_earlier()?;
        }
        let (mut base, _base_tmp) = base_stream(self.sc, Some(&self.pass), r)?;
        let others = match &self.owners {
            Some(o) => Some(o.others_of(r.index)?),
            None => None,
        };
        let mut d = Diff {
            base: HashMap::new(),
            others,
            now: Vec::new(),
            out: SyncReport::default(),
            delta: Delta {
                file: (!dry).then(|| DeltaFile::new(self.stage, rel, self.mapping())),
                ..Default::default()
            },
        };
        let mut files = (!dry).then(|| self.range_files(r)).transpose()?;
        let mut start = r.start.clone();
        loop {
            let next = self.read_window(r, start, &mut base, &mut d)?;
            self.confirm_gone(r, &mut d)?;
            self.close_window(&mut d, files.as_mut())?;
            match next {
                Some(id) => start = Some(id),
                None => break,
            }
        }
        match files {
            Some(files) => self.finish_range(r, d, files, delta_import.as_ref()),
            None => Ok(RangeOutcome {
                report: d.out,
                record: None,
                digests: None,
                max_seen: d.delta.max_seen,
            }),
        }
    }

    /// The digests and tombstones files of range `r` in this pass, opened for writing.
    fn range_files(&self, r: &Range) -> Result<RangeFiles<'_>> {
        let (name, pass) = (self.sc.name, self.pass_no);
        Ok(RangeFiles {
            digests: SyncLines::create(
                self.stage,
                &layout::sync_digests_file(name, pass, r.index),
            )?,
            tombstones: SyncLines::create(
                self.stage,
                &layout::sync_tombstones_file(name, pass, r.index),
            )?,
        })
    }

    /// Sends what the range gathered (one bulk job past `--bulk-over`, else the last
    /// upserts), writes its set-aside points and closes its files into the pass's record.
    fn finish_range(
        &self,
        r: &Range,
        mut d: Diff,
        files: RangeFiles,
        delta_import: Option<&DeltaImport>,
    ) -> Result<RangeOutcome> {
        let (name, pass) = (self.sc.name, self.pass_no);
        let written = d
            .delta
            .file
            .take()
            .map(DeltaFile::finish)
            .transpose()?
            .flatten();
        let bulk = match (&written, delta_import) {
            (Some(file), Some(_)) if d.delta.over && d.delta.rest_only.is_some() => {
                self.send_file_rows(file, &d.delta)?;
                false
            }
            (Some(file), Some(di)) if d.delta.over => {
                di.run(file, &self.mapping().id_field, self.opts.batch)?;
                d.out.bulk_rows += d.delta.changed as u64;
                true
            }
            _ => {
                self.send(&mut d.delta.upserts)?;
                false
            }
        };
        let deleted = files.tombstones.lines();
        let tombstones_file = files.tombstones.finish(false)?;
        if !d.delta.aside.is_empty() {
            let mut text = d.delta.aside.join("\n");
            text.push('\n');
            let rel = layout::sync_set_aside_file(name, pass, r.index);
            self.stage.write_sync_file(&rel, text.as_bytes())?;
        }
        let record = DeltaRecord {
            pass,
            range: r.index,
            rows_file: written.as_ref().map(WrittenDelta::file_ref),
            rows: written.as_ref().map_or(0, |w| w.written.rows),
            tombstones_file,
            deleted,
            bulk,
        };
        Ok(RangeOutcome {
            report: d.out,
            record: Some(record),
            digests: files.digests.finish(true)?,
            max_seen: d.delta.max_seen,
        })
    }

    /// Reads the next window of range `r` from `start`: at most `--diff-window` ids of what
    /// the target holds (taken from `base`) and about as many points of the source (cut at a
    /// page boundary), diffed into `d`. Returns where the next window starts (`None`: the
    /// range is read).
    fn read_window(
        &self,
        r: &Range,
        start: Option<PointId>,
        base: &mut DigestStream,
        d: &mut Diff,
    ) -> Result<Option<PointId>> {
        let n = self.opts.window.max(1);
        let mut order = Vec::new();
        let base_end = base.take_window(n, &mut d.base, &mut order)?;
        let end = match (base_end, &r.end) {
            (Some(b), Some(e)) => Some(b.min(e.clone())),
            (b, e) => b.or_else(|| e.clone()),
        };
        // The source's side of the window: its ids only (change field), or its points.
        let mut ids: Vec<String> = Vec::new();
        let mut seen = 0usize;
        let mut cut = None;
        let with_data = self.filter.is_none();
        let o = ScrollOpts {
            page_size: self.opts.page_size,
            with_data,
            filter: None,
        };
        if let Some(w) = &mut d.others {
            w.begin(start.clone());
        }
        let mut it = pages(self.src.as_ref(), start.clone(), end.clone(), o);
        while let Some(page) = it.next() {
            let pts = self.owned(r, page?, d)?;
            seen += pts.len();
            if with_data {
                self.diff(&pts, d)?;
            } else {
                ids.extend(pts.iter().map(|p| p.id.to_key_string()));
            }
            if seen >= n {
                cut = it.cursor().cloned();
                break;
            }
        }
        drop(it);
        let wend = match &cut {
            Some(c) => {
                base.give_back(c, &mut d.base, &order);
                Some(c.clone())
            }
            None => end.clone(),
        };
        if let Some(filter) = &self.filter {
            self.read_changed(r, start, wend.clone(), filter, &ids, d)?;
        }
        // The window ends at the range's end: the range is read.
        Ok(match (&wend, &r.end) {
            (None, _) => None,
            (Some(w), Some(e)) if w >= e => None,
            (Some(w), _) => Some(w.clone()),
        })
    }

    /// The points of a page that belong to range `r` (all, unless ranges overlap): not held
    /// by another range, and held by `r` (in the window's digests) or by none and first within
    /// `r`'s bounds.
    fn owned(&self, r: &Range, mut pts: Vec<Point>, d: &mut Diff) -> Result<Vec<Point>> {
        let (Some(own), Some(w)) = (&self.owners, &mut d.others) else {
            return Ok(pts);
        };
        if let Some(last) = pts.iter().map(|p| &p.id).max() {
            w.cover(last)?;
        }
        let base = &d.base;
        pts.retain(|p| {
            let k = p.id.to_key_string();
            !w.ids.contains(&k)
                && (base.contains_key(&k) || own.first_holder(&p.id) == Some(r.index))
        });
        Ok(pts)
    }

    /// Ends a window: its gone ids (and set-aside points the target held) deleted and listed
    /// as tombstones, what the target now holds appended to the range's digests in id order.
    fn close_window(&self, d: &mut Diff, files: Option<&mut RangeFiles>) -> Result<()> {
        let mut gone: Vec<String> = d.base.drain().map(|(k, _)| k).collect();
        d.out.deleted += gone.len() as u64;
        gone.append(&mut d.delta.aside_gone);
        gone.sort_by_cached_key(|k| PointId::from_key_string(k));
        d.now
            .sort_by_cached_key(|(k, _)| PointId::from_key_string(k));
        d.out.source_points += d.now.len() as u64;
        if let Some(f) = files {
            self.delete(&gone)?;
            for id in &gone {
                f.tombstones.line(id)?;
            }
            for (id, dg) in &d.now {
                f.digests.line(&digest_line(id, *dg))?;
            }
        }
        d.now.clear();
        Ok(())
    }

    /// With a change field, for a window `[start, end)` whose ids are `ids`: reads in full the
    /// points the filter calls changed and the ids the target has never seen; the other ids
    /// still in the source are unchanged.
    fn read_changed(
        &self,
        r: &Range,
        start: Option<PointId>,
        end: Option<PointId>,
        filter: &Value,
        ids: &[String],
        d: &mut Diff,
    ) -> Result<()> {
        let mut read: HashSet<String> = HashSet::new();
        let o = ScrollOpts {
            page_size: self.opts.page_size,
            with_data: true,
            filter: Some(filter),
        };
        self.each_page_in(r, start, end, o, d, |d, pts| {
            read.extend(pts.iter().map(|p| p.id.to_key_string()));
            self.diff(&pts, d)
        })?;
        let mut unseen = Vec::new();
        for id in ids.iter().filter(|i| !read.contains(*i)) {
            match d.base.remove(id) {
                Some(dg) => d.now.push((id.clone(), dg)),
                None => unseen.extend(PointId::from_key_string(id).map(|p| p.to_json())),
            }
        }
        self.read_ids(r, &unseen, d)
    }

    /// Reads the given ids of the range in full and diffs them.
    fn read_ids(&self, r: &Range, ids: &[Value], d: &mut Diff) -> Result<()> {
        for part in ids.chunks(self.opts.page_size.max(1)) {
            let has = json!({"must": [{"has_id": part}]});
            self.each_page(r, true, Some(&has), d, |d, pts| self.diff(&pts, d))?;
        }
        Ok(())
    }

    /// A second look-up of every id the read did not see: a point a scroll missed (a
    /// replica behind, a page lost) is diffed, not deleted; only ids the source confirms
    /// absent stay to be deleted.
    fn confirm_gone(&self, r: &Range, d: &mut Diff) -> Result<()> {
        if d.base.is_empty() {
            return Ok(());
        }
        let before = d.base.len();
        let ids: Vec<Value> = d
            .base
            .keys()
            .filter_map(|i| PointId::from_key_string(i).map(|p| p.to_json()))
            .collect();
        self.read_ids(r, &ids, d)?;
        d.out.delete_checks_kept += (before - d.base.len()) as u64;
        Ok(())
    }

    /// Deletes ids (keys) from the target.
    fn delete(&self, ids: &[String]) -> Result<()> {
        let m = self.mapping();
        for part in ids.chunks(self.opts.batch.max(1)) {
            let values: Vec<Value> = part
                .iter()
                .map(|i| crate::verify::typed_id(m.id_kind, i))
                .collect();
            for f in crate::verify::id_filters(&m.id_field, &values) {
                self.milvus.delete(&m.target, &f)?;
            }
        }
        Ok(())
    }

    /// Upserts the rows of a range's delta file (past `--bulk-over`, on a target whose import
    /// refuses a row it holds without a sparse vector); stops when a row can go over REST no
    /// more than it can be imported.
    fn send_file_rows(&self, file: &WrittenDelta, delta: &Delta) -> Result<()> {
        if let (Some(why), Some(id)) = (&delta.bulk_only, &delta.rest_only) {
            let server = self.milvus.server()?;
            return Err(Error::Other(format!(
                "collection {}: {why}, so it must go through bulk import, but point {id} has no sparse vector, which the target ({server}) refuses in an import before 2.5.7: no one way sends both. Sync into Milvus ≥ 2.5.7, or give point {id} its sparse vector in Qdrant",
                self.sc.name
            )));
        }
        let path = self.stage.sync_file(&file.file_ref())?;
        crate::stage::reader::for_each_record_batch(&path, self.mapping(), 4096, |_, mut rows| {
            self.send(&mut rows)
        })
    }

    /// Upserts the rows gathered so far (nothing in a dry run).
    fn send(&self, rows: &mut Vec<Row>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if !self.opts.dry_run {
            for part in rows.chunks(self.opts.batch.max(1)) {
                let rest: Vec<Row> = part
                    .iter()
                    .cloned()
                    .map(|r| rest_row(r, self.mapping()))
                    .collect();
                self.milvus.upsert(&self.mapping().target, &rest)?;
            }
        }
        rows.clear();
        Ok(())
    }
}
