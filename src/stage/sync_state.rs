//! What `q2z sync` leaves in a stage, and so what the target must hold after it:
//! `sync-state.json` (the passes, the ranges done, and a record of every range each pass
//! changed, tied to the export they start from); per range, the digests of the rows the target
//! holds (`<collection>/sync-PPPP-RRRR.digests`, the current one named in the state); and per
//! pass and range the rows sent
//! (`sync-PPPP-RRRR.parquet`, the staged schema) and the ids deleted (`.tombstones`).
//! The export's rows, then each pass's rows and tombstones in order, are the target's state:
//! [`current_rows`] gives it for one range (verify and repair read it).

use crate::error::{Error, Result};
use crate::stage::fsutil::write_atomic;
use crate::stage::layout::{self, SYNC_STATE};
use crate::stage::manifest::{Range, stage_err};
use crate::stage::reader::{Row, for_each_record_batch};
pub use crate::stage::sync_lines::FileRef;
use crate::stage::sync_lines::{DigestStream, digest_line};
use crate::stage::{Stage, StagedCollection};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

/// `sync-state.json`: the ranges the current sync pass has finished, per collection, tied to
/// the export they start from.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// sha256 of the export's chunk checksums: state of another export is not used.
    pub export: String,
    pub collections: BTreeMap<String, PassState>,
}

/// One collection's sync passes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PassState {
    /// Passes finished so far.
    pub passes: u64,
    /// Ranges of the running pass that are done.
    pub done: Vec<usize>,
    /// A pass has begun and not finished (also when none of its ranges is done yet).
    #[serde(default)]
    pub running: bool,
    /// Unix seconds when the running pass began.
    #[serde(default)]
    pub started_at: Option<u64>,
    /// Unix seconds when the last finished pass began: the target held every change made
    /// before it once that pass ended.
    #[serde(default)]
    pub last_started_at: Option<u64>,
    /// The change-field bound of the running pass (kept, so a resumed pass reads the same).
    #[serde(default)]
    pub since: Option<Value>,
    /// A counter change field: the largest value the running pass read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seen: Option<Value>,
    /// A counter change field: the largest value the last finished pass read (the next
    /// pass's bound, less the margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_max_seen: Option<Value>,
    /// The target collection's id (`collectionID` of describe) the passes were applied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Every range a pass changed, in pass order.
    #[serde(default)]
    pub records: Vec<DeltaRecord>,
    /// Per range, the digests file of what the target holds (ranges no pass finished: the
    /// staged rows).
    #[serde(default)]
    pub digests: BTreeMap<usize, FileRef>,
}

impl PassState {
    /// The pass being run (or the next one): 1 for the first.
    pub fn current_pass(&self) -> u64 {
        self.passes + 1
    }

    /// Records what a range of the running pass sent (replacing an earlier run's record of it).
    pub fn record(&mut self, r: DeltaRecord) {
        self.records
            .retain(|x| !(x.pass == r.pass && x.range == r.range));
        self.records.push(r);
    }

    /// A pass was stopped part-way: the target is between two states.
    pub fn unfinished(&self, ranges: usize) -> bool {
        (self.running || !self.done.is_empty()) && self.done.len() < ranges
    }
}

/// What one pass changed in one range of the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeltaRecord {
    pub pass: u64,
    pub range: usize,
    /// The rows sent (`None`: none) and how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_file: Option<FileRef>,
    pub rows: u64,
    /// The ids deleted (`None`: none) and how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones_file: Option<FileRef>,
    pub deleted: u64,
    /// Sent by bulk import (null-valued payload keys kept) rather than by upserts.
    #[serde(default)]
    pub bulk: bool,
}

impl Stage {
    /// The sync ledger (empty when no sync ran here).
    pub fn sync_state(&self) -> Result<SyncState> {
        match std::fs::read(self.file(SYNC_STATE)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                stage_err(self.dir(), format!("{SYNC_STATE} is damaged ({e}); delete it and the sync-* files, drop the target collection and import again"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncState::default()),
            Err(e) => Err(Error::io(self.file(SYNC_STATE), e)),
        }
    }

    /// Writes the sync ledger atomically (on object storage: a conditional put).
    pub fn save_sync_state(&self, s: &SyncState) -> Result<()> {
        let text = serde_json::to_vec_pretty(s).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&self.file(SYNC_STATE), &text)?;
        if let Some(r) = self.remote() {
            r.push_state(self.dir(), SYNC_STATE)?;
        }
        Ok(())
    }

    /// The marker beside a sync or repair file that records the object key its import job
    /// reads (`<file>.job`), kept until the job is known to have ended.
    pub fn job_marker(&self, rel: &str) -> std::path::PathBuf {
        self.file(&format!("{rel}.job"))
    }

    /// A small file of the sync record written and, on object storage, uploaded.
    pub fn write_sync_file(&self, rel: &str, bytes: &[u8]) -> Result<FileRef> {
        let sha256 = self.write_small(rel, bytes)?;
        self.publish(rel, &sha256)?;
        Ok(FileRef {
            file: rel.to_string(),
            sha256,
            bytes: bytes.len() as u64,
        })
    }

    /// The local path of a file of the sync record (on object storage: fetched into the
    /// working copy first), checked against its recorded sha256.
    pub fn sync_file(&self, f: &FileRef) -> Result<std::path::PathBuf> {
        let path = match self.remote() {
            Some(r) => r.fetch(self.dir(), &f.file, f.bytes)?,
            None => self.file(&f.file),
        };
        let (sha, _) = crate::stage::writer::sha256_file(&path).map_err(|_| {
            stage_err(self.dir(), format!("{} is missing: the stage's sync record is incomplete (was the stage copied without its sync-* files?); copy it whole, or drop the target collection, import the stage again and sync", f.file))
        })?;
        if sha != f.sha256 {
            return Err(stage_err(
                self.dir(),
                format!(
                    "{} does not match its sha256 in {SYNC_STATE}: the file was damaged or changed; restore it, or drop the target collection, import the stage again and sync",
                    f.file
                ),
            ));
        }
        Ok(path)
    }
}

/// A value with every object's keys in sorted order (gRPC's payload maps have none).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&o[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        v => v.clone(),
    }
}

/// A row's digest: the first 8 bytes of the SHA-256 of its JSON with keys sorted (so a row
/// read over REST and over gRPC, whose payload key orders differ, digest alike).
pub fn digest(row: &Row) -> u64 {
    use sha2::Digest;
    let sorted: BTreeMap<&String, Value> = row.iter().map(|(k, v)| (k, canonical(v))).collect();
    let text = serde_json::to_vec(&sorted).unwrap_or_default();
    let h = sha2::Sha256::digest(&text);
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// An id as the digests files key it.
pub fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// sha256 of the staged chunks' checksums: which export a sync state belongs to.
pub fn export_fingerprint(sc: &[StagedCollection]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for c in sc {
        h.update(c.name.as_bytes());
        for ch in c.chunks() {
            h.update(ch.sha256.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// What the target must hold after the syncs of a collection: per range of the export's
/// plan, id → digest of the row the target holds.
pub struct SyncedView {
    /// Passes finished.
    pub passes: u64,
    /// A pass was stopped part-way (the target is between two states).
    pub unfinished: bool,
    /// The collection's passes (records of what each changed).
    pub pass: PassState,
}

impl SyncedView {
    /// What the target holds of range `r` (id → digest), read from the stage when asked: one
    /// range in memory at a time, whatever the collection's size.
    pub fn range(&self, sc: StagedCollection, r: &Range) -> Result<HashMap<String, u64>> {
        base_digests(sc, Some(&self.pass), r)
    }
}

/// The digest of the row the target holds for an id, a range's digests read when first
/// needed. Disjoint ranges keep only the last one read (picks come chunk by chunk, so range
/// after range); overlapping ones (parts split by shards: every range may hold any id) keep
/// each range read, so a lookup never reads a file twice.
pub struct DigestLookup<'a> {
    sc: StagedCollection<'a>,
    view: &'a SyncedView,
    disjoint: bool,
    held: std::sync::Mutex<HashMap<usize, HashMap<String, u64>>>,
}

impl<'a> DigestLookup<'a> {
    pub fn new(sc: StagedCollection<'a>, view: &'a SyncedView) -> DigestLookup<'a> {
        DigestLookup {
            sc,
            view,
            disjoint: sc.entry.ranges_disjoint(),
            held: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// `None`: deleted, or never there.
    pub fn digest_of(&self, id: &str) -> Result<Option<u64>> {
        let point = crate::model::PointId::from_key_string(id);
        let holds = |r: &&Range| {
            point.as_ref().is_none_or(|p| {
                r.start.as_ref().is_none_or(|s| s <= p) && r.end.as_ref().is_none_or(|e| p < e)
            })
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = held.values().find_map(|m| m.get(id)) {
            return Ok(Some(*d));
        }
        for r in self.sc.entry.ranges.iter().filter(holds) {
            if held.contains_key(&r.index) {
                continue;
            }
            if self.disjoint {
                held.clear();
            }
            let m = self.view.range(self.sc, r)?;
            let found = m.get(id).copied();
            held.insert(r.index, m);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// How reports name a range of a synced collection: its current digests file (which verify
/// counts it by), or its staged rows when no pass has finished it.
pub fn range_label(name: &str, pass: &PassState, range: usize) -> String {
    pass.digests
        .get(&range)
        .map(|f| f.file.clone())
        .unwrap_or_else(|| format!("{name}/range-{range:04} (staged rows)"))
}

/// The sync passes of a collection, if any ran on this export.
pub fn pass_state(sc: StagedCollection) -> Result<Option<PassState>> {
    let stage = sc.stage();
    let state = stage.sync_state()?;
    let manifest = stage.require_manifest()?;
    if state.export != export_fingerprint(&stage.collections(&manifest)) {
        return Ok(None);
    }
    Ok(state.collections.get(sc.name).cloned())
}

/// The target's state after the syncs of this export, if any pass of `sync` ran on it.
pub fn synced_view(sc: StagedCollection) -> Result<Option<SyncedView>> {
    let Some(pass) = pass_state(sc)? else {
        return Ok(None);
    };
    Ok(Some(SyncedView {
        passes: pass.passes,
        unfinished: pass.unfinished(sc.entry.ranges.len()),
        pass,
    }))
}

/// What the target holds for a range: id → digest, from the digests file the last pass of the
/// range recorded in `pass`, else from the staged rows.
pub fn base_digests(
    sc: StagedCollection,
    pass: Option<&PassState>,
    r: &Range,
) -> Result<HashMap<String, u64>> {
    let stage = sc.stage();
    if let Some(f) = pass.and_then(|p| p.digests.get(&r.index)) {
        let path = stage.sync_file(f)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut out = HashMap::new();
        for line in text.lines() {
            let damaged = || stage_err(stage.dir(), format!("{} is damaged", f.file));
            let (id, d) = line.rsplit_once('\t').ok_or_else(damaged)?;
            out.insert(
                id.to_string(),
                u64::from_str_radix(d, 16).map_err(|_| damaged())?,
            );
        }
        return Ok(out);
    }
    let id_field = &sc.entry.mapping.id_field;
    let mut out = HashMap::new();
    for c in sc.chunks().iter().filter(|c| c.range == r.index) {
        sc.for_each_batch(c, 4096, |rows| {
            for row in rows {
                out.insert(id_key(&row[id_field]), digest(&row));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// What the target holds for a range as a [`DigestStream`] in id order: the digests file the
/// last pass of the range recorded in `pass`, else the staged rows' digests (written to a temp
/// file of the stage's working copy, removed when the returned guard drops).
pub fn base_stream(
    sc: StagedCollection,
    pass: Option<&PassState>,
    r: &Range,
) -> Result<(DigestStream, Option<tempfile::TempPath>)> {
    let stage = sc.stage();
    if let Some(f) = pass.and_then(|p| p.digests.get(&r.index)) {
        let path = stage.sync_file(f)?;
        return Ok((DigestStream::open(&path, &f.file, stage.dir())?, None));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".sync-base-")
        .tempfile_in(stage.dir())
        .map_err(|e| Error::io(stage.dir(), e))?;
    write_staged_digests(sc, r, tmp.as_file(), tmp.path())?;
    let path = tmp.path().to_path_buf();
    let name = format!("{}/range-{:04} (staged rows)", sc.name, r.index);
    let stream = DigestStream::open(&path, &name, stage.dir())?;
    Ok((stream, Some(tmp.into_temp_path())))
}

/// Writes the digests of range `r`'s staged rows, in the chunks' (id) order, to `file`.
fn write_staged_digests(
    sc: StagedCollection,
    r: &Range,
    file: &std::fs::File,
    path: &std::path::Path,
) -> Result<()> {
    let mut out = std::io::BufWriter::new(file);
    let id_field = &sc.entry.mapping.id_field;
    for c in sc.chunks().iter().filter(|c| c.range == r.index) {
        sc.for_each_batch(c, 4096, |rows| {
            for row in rows {
                writeln!(
                    out,
                    "{}",
                    digest_line(&id_key(&row[id_field]), digest(&row))
                )
                .map_err(|e| Error::io(path, e))?;
            }
            Ok(())
        })?;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// What the target held of every range when a sync run began: each range's digests kept in a
/// private copy of the stage's working directory (a hard link where the file system allows,
/// else a copy; staged rows' digests written there), so that a stream can be opened on any
/// range at any time while the pass supersedes and removes the originals. Removed on drop.
pub struct HeldDigests {
    dir: tempfile::TempDir,
    names: HashMap<usize, String>,
    stage_dir: std::path::PathBuf,
}

impl HeldDigests {
    /// Holds every range's digests as `pass` records them (the staged rows' where it has none).
    pub fn take(sc: StagedCollection, pass: Option<&PassState>) -> Result<HeldDigests> {
        let stage = sc.stage();
        // Left by a run that was killed: this run holds the stage's lock, so none is in use.
        for e in std::fs::read_dir(stage.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".sync-owners-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(".sync-owners-")
            .tempdir_in(stage.dir())
            .map_err(|e| Error::io(stage.dir(), e))?;
        let mut names = HashMap::new();
        for r in &sc.entry.ranges {
            let held = Self::path_in(dir.path(), r.index);
            match pass.and_then(|p| p.digests.get(&r.index)) {
                Some(f) => {
                    let path = stage.sync_file(f)?;
                    if DigestStream::is_ordered(&path, &f.file, stage.dir())? {
                        if std::fs::hard_link(&path, &held).is_err() {
                            std::fs::copy(&path, &held).map_err(|e| Error::io(&held, e))?;
                        }
                    } else {
                        // Written by an older q2z: held sorted, so no stream sorts it again.
                        let mut s = DigestStream::open(&path, &f.file, stage.dir())?;
                        let file = std::fs::File::create(&held).map_err(|e| Error::io(&held, e))?;
                        s.write_all(&file, &held)?;
                    }
                    names.insert(r.index, f.file.clone());
                }
                None => {
                    let file = std::fs::File::create(&held).map_err(|e| Error::io(&held, e))?;
                    write_staged_digests(sc, r, &file, &held)?;
                    names.insert(
                        r.index,
                        format!("{}/range-{:04} (staged rows)", sc.name, r.index),
                    );
                }
            }
        }
        Ok(HeldDigests {
            dir,
            names,
            stage_dir: stage.dir().to_path_buf(),
        })
    }

    fn path_in(dir: &std::path::Path, range: usize) -> std::path::PathBuf {
        dir.join(format!("range-{range:04}.digests"))
    }

    /// A stream over what range `range` held, in id order (held in order: not checked again
    /// for every range that reads it).
    pub fn stream(&self, range: usize) -> Result<DigestStream> {
        let name = self.names.get(&range).map_or("digests", String::as_str);
        let path = Self::path_in(self.dir.path(), range);
        DigestStream::open_known(&path, name, &self.stage_dir, true)
    }
}

/// Every id a range ever held in the target through q2z: its staged rows, every row a pass
/// sent, every id a pass deleted.
pub fn ids_ever(sc: StagedCollection, pass: &PassState, range: usize) -> Result<HashSet<String>> {
    let m = &sc.entry.mapping;
    let stage = sc.stage();
    let mut out = HashSet::new();
    for c in sc.chunks().iter().filter(|c| c.range == range) {
        out.extend(sc.chunk_ids(c)?.iter().map(id_key));
    }
    for rec in pass.records.iter().filter(|x| x.range == range) {
        if let Some(f) = &rec.rows_file {
            let path = stage.sync_file(f)?;
            out.extend(
                crate::stage::reader::read_ids(&path, &m.id_field)?
                    .iter()
                    .map(id_key),
            );
        }
        if let Some(f) = &rec.tombstones_file {
            let path = stage.sync_file(f)?;
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            out.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
    }
    Ok(out)
}

/// Where a current row was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrigin {
    /// The staged export.
    Staged,
    /// A sync pass's rows (`bulk`: imported by a job, null-valued keys kept).
    Pass { pass: u64, bulk: bool },
}

/// Calls `f` with every batch holding rows the target must hold now in `range`, with the mask
/// of those rows: for each id the range's digests list, the newest version whose digest
/// matches — from the newest pass that sent the range back to the staged chunks (`staged`
/// false: the passes' rows only, e.g. to check them apart from the staged ones). `wanted` is
/// the range's digests as [`base_digests`] reads them.
pub fn current_rows(
    sc: StagedCollection,
    pass: &PassState,
    range: &Range,
    wanted: &HashMap<String, u64>,
    staged: bool,
    mut f: impl FnMut(&RecordBatch, Vec<Row>, Vec<bool>, RowOrigin) -> Result<()>,
) -> Result<()> {
    let stage = sc.stage();
    let m = &sc.entry.mapping;
    let mut found: HashSet<String> = HashSet::new();
    let mut pick = |batch: &RecordBatch, rows: Vec<Row>, origin: RowOrigin| {
        let keep: Vec<bool> = rows
            .iter()
            .map(|row| {
                let id = id_key(&row[&m.id_field]);
                wanted.get(&id) == Some(&digest(row)) && found.insert(id)
            })
            .collect();
        if keep.iter().any(|k| *k) {
            f(batch, rows, keep, origin)?;
        }
        Ok::<(), Error>(())
    };
    let mut recs: Vec<&DeltaRecord> = pass
        .records
        .iter()
        .filter(|x| x.range == range.index && x.rows_file.is_some())
        .collect();
    recs.sort_by_key(|x| std::cmp::Reverse(x.pass));
    for rec in recs {
        let path = stage.sync_file(rec.rows_file.as_ref().expect("filtered"))?;
        let origin = RowOrigin::Pass {
            pass: rec.pass,
            bulk: rec.bulk,
        };
        for_each_record_batch(&path, m, 4096, |b, rows| pick(b, rows, origin))?;
    }
    if !staged {
        return Ok(());
    }
    for c in sc.chunks().iter().filter(|c| c.range == range.index) {
        for_each_record_batch(&sc.chunk_path(c)?, m, 4096, |b, rows| {
            pick(b, rows, RowOrigin::Staged)
        })?;
    }
    if found.len() != wanted.len() {
        let missing = wanted.keys().find(|k| !found.contains(*k)).cloned();
        return Err(stage_err(
            stage.dir(),
            format!(
                "range {} of collection {}: {} of the {} rows the last sync recorded are in no staged or sync file (e.g. id {}); the stage's sync record is incomplete: drop the target collection, import the stage again and sync",
                range.index,
                sc.name,
                wanted.len() - found.len(),
                wanted.len(),
                missing.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Forgets the sync passes of a collection (its target was created anew): its entry in
/// `sync-state.json` and its `sync-*` files go.
pub fn forget(stage: &Stage, sc: StagedCollection) -> Result<()> {
    let mut state = stage.sync_state()?;
    if state.collections.remove(sc.name).is_some() {
        stage.save_sync_state(&state)?;
    }
    let dir = stage.file(sc.name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if layout::is_sync_file(&name) {
            std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}
