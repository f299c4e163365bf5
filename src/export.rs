//! The export half: source → transform → stage, resumable at chunk granularity
//! (docs/design.md §3).

use crate::error::{Error, Result};
use crate::model::{Point, PointId};
use crate::progress::Progress;
use crate::sink::milvus::schema::milvus_create_body;
use crate::source::{ScrollOpts, SharedSource, pages};
use crate::stage::Stage;
use crate::stage::layout;
use crate::stage::manifest::{
    Chunk, CollectionEntry, ExportState, Manifest, Part, PartShare, Range, SetAsideFile,
    SourceInfo, SplitBy, stage_err,
};
use crate::stage::writer::ChunkOptions;
use crate::transform::batch::{Converted, arrow_schema, to_batch};
use crate::transform::mapping::{CollectionMapping, IdKind, MappingOptions, default_mapping};
use rayon::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Knobs of an export run.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Parallel scroll cursors (at least 1).
    pub workers: usize,
    /// Id ranges to plan (0: decided from the count and workers).
    pub ranges: usize,
    /// Points per scroll page.
    pub page_size: usize,
    /// A chunk file is closed once it reaches this size.
    pub max_file_bytes: u64,
    /// zstd level of the Parquet files.
    pub zstd_level: i32,
    /// Compress the vector columns too (smaller files, more CPU).
    pub compress_vectors: bool,
    /// Throw away the stage's state and start over.
    pub restart: bool,
    /// Options for the default mapping.
    pub mapping: MappingOptions,
    /// Mappings read from the user's mapping file, by Qdrant collection name.
    pub mapping_overrides: BTreeMap<String, CollectionMapping>,
    /// No progress bars.
    pub quiet: bool,
    /// Take only this share of the work (`--part I/N`; docs/design.md §9).
    pub part: Option<Part>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            workers: 4,
            ranges: 0,
            page_size: 256,
            max_file_bytes: 1 << 30,
            zstd_level: crate::stage::writer::ZSTD_LEVEL,
            compress_vectors: false,
            restart: false,
            mapping: MappingOptions::default(),
            mapping_overrides: BTreeMap::new(),
            quiet: false,
            part: None,
        }
    }
}

/// What an export did, per collection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionReport {
    pub collection: String,
    pub target: String,
    pub source_count_at_start: u64,
    pub staged_rows: u64,
    /// Points kept apart in `set-aside-*.jsonl` (payload over 64 KiB, `--oversize-payload set-aside`).
    pub set_aside: u64,
    pub chunks: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

/// An id scan keeps every id of a small collection, and at most every 1000th of a large one
/// (about 10,000 boundary candidates, at most 1 in 1000 ids in memory).
fn scan_stride(count_hint: u64) -> u64 {
    (count_hint / 10_000).clamp(1, 1000)
}

/// Result of an id scan: exact count, key type and range boundaries.
#[derive(Debug, Clone)]
pub struct IdScan {
    pub count: u64,
    pub id_kind: IdKind,
    /// Every `stride`-th id in Qdrant order (boundary candidates).
    pub samples: Vec<PointId>,
    /// Ids between two samples.
    pub stride: u64,
    /// The shard keys the points carry (custom sharding), each once.
    pub shard_keys: Vec<serde_json::Value>,
}

impl IdScan {
    /// The collection's config with the shard keys the scan saw, for the default mapping.
    pub fn with_keys(
        &self,
        cfg: &crate::model::CollectionConfig,
    ) -> crate::model::CollectionConfig {
        crate::model::CollectionConfig {
            shard_keys: self.shard_keys.clone(),
            ..cfg.clone()
        }
    }
}

/// Reads every id once (no payload, no vectors) to decide the key type exactly; `count_hint`
/// (the collection's point count) sets how many ids are kept as range boundaries.
pub fn scan_ids(src: &SharedSource, count_hint: u64) -> Result<IdScan> {
    let stride = scan_stride(count_hint);
    let mut count = 0u64;
    let mut varchar = false;
    let mut samples = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for page in pages(src.as_ref(), None, None, ScrollOpts::ids(10_000)) {
        for p in &page? {
            if count.is_multiple_of(stride) {
                samples.push(p.id.clone());
            }
            count += 1;
            if let Some(k) = &p.shard_key
                && keys.len() < 100_000
            {
                keys.insert(k.to_string());
            }
            match &p.id {
                PointId::Num(n) if *n > i64::MAX as u64 => varchar = true,
                PointId::Uuid(_) => varchar = true,
                _ => {}
            }
        }
    }
    Ok(IdScan {
        count,
        id_kind: if varchar {
            IdKind::VarChar
        } else {
            IdKind::Int64
        },
        samples,
        stride,
        shard_keys: keys
            .iter()
            .filter_map(|k| serde_json::from_str(k).ok())
            .collect(),
    })
}

/// Splits the sampled ids into `n` ranges covering everything; each range knows how many
/// points the scan counted in it.
pub fn plan_ranges(scan: &IdScan, n: usize) -> Vec<Range> {
    let samples = &scan.samples;
    let n = n.max(1).min(samples.len().max(1));
    // Sample k is the id at scan position k * stride, so a range from sample a to sample b
    // holds exactly (b - a) * stride points of the scan.
    let mut starts: Vec<usize> = (0..n).map(|i| i * samples.len() / n).collect();
    starts.dedup();
    let pos = |k: usize| (k as u64 * scan.stride).min(scan.count);
    starts
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let next = starts.get(i + 1).copied();
            Range {
                set_aside: Vec::new(),
                zero_cosine: 0,
                empty_sparse: 0,
                index: i,
                start: (i > 0).then(|| samples[k].clone()),
                end: next.map(|k| samples[k].clone()),
                cursor: None,
                done: false,
                planned_points: Some(next.map_or(scan.count, pos) - pos(k)),
            }
        })
        .collect()
}

/// Runs (or resumes) an export of `sources` into the stage directory.
pub fn export(
    stage: &Stage,
    sources: &[SharedSource],
    source_info: SourceInfo,
    opts: &ExportOptions,
) -> Result<Vec<CollectionReport>> {
    if opts.restart {
        stage.reset()?;
    }
    let mut manifest = match stage.manifest()? {
        Some(m) => {
            if m.source != source_info {
                return Err(stage_err(
                    stage.dir(),
                    format!(
                        "it holds an export from another source ({}); use another --stage, or --restart to throw it away",
                        serde_json::to_string(&m.source).unwrap_or_default()
                    ),
                ));
            }
            if m.part != opts.part {
                let held = m
                    .part
                    .map_or("a whole export".to_string(), |p| format!("part {p}"));
                let asked = opts
                    .part
                    .map_or("a whole export".to_string(), |p| format!("part {p}"));
                return Err(stage_err(
                    stage.dir(),
                    format!(
                        "it holds {held}, and this run asks for {asked}; give each part its own --stage and the same --part on every rerun"
                    ),
                ));
            }
            m
        }
        None => Manifest {
            part: opts.part,
            ..Manifest::new(source_info)
        },
    };
    check_distinct(sources, &manifest, opts)?;
    let mut reports = Vec::new();
    for src in sources {
        reports.push(export_collection(stage, src, &mut manifest, opts)?);
    }
    Ok(reports)
}

/// Refuses, before anything is written, sources that would stage into one place: the same
/// collection twice (e.g. the snapshots of two cluster nodes), or two collections whose target
/// names are the same once sanitised (`Docs-2024.v1` and `Docs_2024_v1`).
fn check_distinct(
    sources: &[SharedSource],
    manifest: &Manifest,
    opts: &ExportOptions,
) -> Result<()> {
    let mut targets: BTreeMap<String, String> = manifest
        .collections
        .iter()
        .map(|(n, e)| (e.mapping.target.clone(), n.clone()))
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for src in sources {
        let name = &src.config().name;
        if !names.insert(name.clone()) {
            return Err(Error::Mapping {
                collection: name.clone(),
                message: "given twice: two sources hold this collection. Give each collection once"
                    .into(),
            });
        }
        let target = match opts.mapping_overrides.get(name) {
            Some(m) => m.target.clone(),
            None => match manifest.collections.get(name) {
                Some(e) => e.mapping.target.clone(),
                None => crate::transform::mapping::default_target(name, &opts.mapping),
            },
        };
        match targets.get(&target) {
            Some(other) if other != name => {
                return Err(Error::Mapping {
                    collection: name.clone(),
                    message: format!(
                        "its target collection '{target}' is also the target of '{other}'; give one of them another `target` in the mapping file (q2z plan --mapping-out), or export them into separate stages"
                    ),
                });
            }
            _ => {
                targets.insert(target, name.clone());
            }
        }
    }
    Ok(())
}

fn export_collection(
    stage: &Stage,
    src: &SharedSource,
    manifest: &mut Manifest,
    opts: &ExportOptions,
) -> Result<CollectionReport> {
    let name = src.config().name.clone();
    let started = std::time::Instant::now();
    if !manifest.collections.contains_key(&name) {
        stage.collection_dir(&name)?;
        let entry = plan_collection(src, opts)?;
        manifest.collections.insert(name.clone(), entry);
        stage.save_manifest(manifest)?;
    }
    let entry = manifest.collections[&name].clone();
    stage.clean_collection_dir(&name, &entry)?;
    if entry.state != ExportState::Exported {
        run_ranges(stage, src, manifest, &entry, opts)?;
        check_complete(stage, src, manifest)?;
    }
    let e = &manifest.collections[&name];
    Ok(CollectionReport {
        collection: name.clone(),
        target: e.mapping.target.clone(),
        source_count_at_start: e.source_count_at_start,
        staged_rows: e.staged_rows(),
        set_aside: e.set_aside_points(),
        chunks: e.chunks.len(),
        bytes: e.chunks.iter().map(|c| c.bytes).sum(),
        seconds: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        warnings: e.warnings.clone(),
    })
}

/// The plan of a collection not staged yet: exact count, id scan, mapping, id ranges.
fn plan_collection(src: &SharedSource, opts: &ExportOptions) -> Result<CollectionEntry> {
    let cfg = src.config();
    // A source that cannot change is counted by its id scan alone (a second full read of the
    // ids would find the same number).
    let (count, scan) = if src.unchanging() {
        let scan = scan_ids(src, src.count_hint()?)?;
        (scan.count, scan)
    } else {
        let count = src.count()?;
        (count, scan_ids(src, count)?)
    };
    let (mapping, mut warnings) = match opts.mapping_overrides.get(&cfg.name) {
        Some(m) => {
            m.validate(cfg)?;
            if m.id_kind == IdKind::Int64 && scan.id_kind == IdKind::VarChar {
                return Err(Error::Mapping { collection: cfg.name.clone(), message: "the mapping file says id_kind = Int64 but the collection has UUIDs or ids above 2^63-1; set id_kind = \"VarChar\"".into() });
            }
            (m.clone(), Vec::new())
        }
        None => default_mapping(&scan.with_keys(cfg), scan.id_kind, &opts.mapping)?,
    };
    warnings.extend(src.notes());
    if scan.count != count {
        warnings.push(format!("the id scan saw {} points, the exact count said {count}: the collection is being written to; use --via-snapshot for a point-in-time export", scan.count));
    }
    let n = if opts.ranges > 0 {
        opts.ranges
    } else if let Some(p) = opts.part.filter(|_| src.shard_split().is_none()) {
        // The same on every machine, whatever its flags: the parts must share one plan. Eight
        // ranges per part (each at least ~1024 points), and at least one per part.
        (p.of * 8).min((count / 1024).max(p.of as u64) as usize)
    } else {
        // Every worker has a range from the first page on (once each range holds a few pages);
        // more ranges for large collections.
        let few_pages = (count / (4 * opts.page_size.max(1) as u64)).max(1);
        (count / 50_000)
            .clamp(opts.workers as u64, (opts.workers * 4) as u64)
            .min(few_pages) as usize
    };
    let mut ranges = plan_ranges(&scan, n);
    let share = opts
        .part
        .map(|p| take_share(&cfg.name, p, src, &mut ranges));
    let source_count_at_start = match &share {
        Some(s) if s.by == SplitBy::Ranges => ranges.iter().filter_map(|r| r.planned_points).sum(),
        _ => count,
    };
    Ok(CollectionEntry {
        qdrant_config: src.raw_config(),
        milvus_schema: milvus_create_body(&mapping),
        mapping,
        warnings,
        source_count_at_start,
        ranges,
        chunks: Vec::new(),
        state: ExportState::Planned,
        shards: src.shard_origins(),
        source_taken_at: src.taken_at(),
        share,
    })
}

/// A part's share of a collection: its shards when the source was opened with only this
/// part's shards, else every N-th range of the whole plan (`ranges` keeps only those,
/// renumbered). The fingerprint covers the whole plan, so parts of different plans are told
/// apart when merged.
fn take_share(name: &str, part: Part, src: &SharedSource, ranges: &mut Vec<Range>) -> PartShare {
    use sha2::Digest;
    let (by, units, all, bounds) = match src.shard_split() {
        Some((mine, all)) => (
            SplitBy::Shards,
            mine.into_iter().map(u64::from).collect(),
            all.into_iter().map(u64::from).collect(),
            Vec::new(),
        ),
        None => {
            let all: Vec<u64> = (0..ranges.len() as u64).collect();
            let bounds: Vec<Option<PointId>> = ranges.iter().map(|r| r.end.clone()).collect();
            ranges.retain(|r| part.owns(r.index));
            let units = ranges.iter().map(|r| r.index as u64).collect();
            for (i, r) in ranges.iter_mut().enumerate() {
                r.index = i;
            }
            (SplitBy::Ranges, units, all, bounds)
        }
    };
    let plan = serde_json::json!({"collection": name, "by": by, "all": all, "bounds": bounds});
    PartShare {
        by,
        units,
        all,
        fingerprint: hex::encode(sha2::Sha256::digest(plan.to_string().as_bytes())),
    }
}

/// Points in the given id ranges now (ids only), for a part whose staged rows differ from its
/// plan's count.
fn count_in_ranges(src: &SharedSource, ranges: &[Range]) -> Result<u64> {
    let mut n = 0;
    for r in ranges {
        for page in pages(
            src.as_ref(),
            r.start.clone(),
            r.end.clone(),
            ScrollOpts::ids(10_000),
        ) {
            n += page?.len() as u64;
        }
    }
    Ok(n)
}

/// Exports the ranges not done yet, `opts.workers` at a time; the first error stops the rest
/// (the manifest keeps what was recorded).
fn run_ranges(
    stage: &Stage,
    src: &SharedSource,
    manifest: &mut Manifest,
    entry: &CollectionEntry,
    opts: &ExportOptions,
) -> Result<()> {
    let name = &src.config().name;
    let pending: VecDeque<usize> = entry
        .ranges
        .iter()
        .filter(|r| !r.done)
        .map(|r| r.index)
        .collect();
    let progress = Progress::new(
        &format!("export {name}"),
        entry.source_count_at_start,
        "points",
        opts.quiet,
    );
    progress.inc(entry.staged_rows());
    let shared = Mutex::new(std::mem::replace(
        manifest,
        Manifest::new(manifest.source.clone()),
    ));
    if let Some(e) = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .collections
        .get_mut(name)
    {
        e.state = ExportState::Exporting;
    }
    let threads = opts.workers.max(1).min(entry.ranges.len().max(1));
    let ran = crate::pool::run(pending.into_iter().collect(), threads, |idx| {
        export_range(stage, src, name, idx, &shared, opts, &progress)
    });
    progress.finish();
    *manifest = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = ran {
        stage.save_manifest(manifest)?;
        return Err(e);
    }
    Ok(())
}

/// Staged + set aside must equal the source's count at the start (or now, with a warning);
/// then the collection is marked exported.
fn check_complete(stage: &Stage, src: &SharedSource, manifest: &mut Manifest) -> Result<()> {
    let name = &src.config().name;
    let Some(e) = manifest.collections.get_mut(name) else {
        return Ok(());
    };
    let zero: u64 = e.ranges.iter().map(|r| r.zero_cosine).sum();
    if zero > 0 {
        e.warnings.push(format!("{zero} points have an all-zero vector in a COSINE field (a missing named vector is staged as zeros): Milvus cannot rank them by COSINE. Set missing_vector = \"error\" in the mapping to refuse points without the vector, or exclude the vector"));
    }
    let staged = e.staged_rows() + e.set_aside_points();
    if staged != e.source_count_at_start {
        let now = match &e.share {
            Some(s) if s.by == SplitBy::Ranges => count_in_ranges(src, &e.ranges)?,
            _ => src.count()?,
        };
        let msg = format!(
            "staged {staged} points, the source had {} when the export began and has {now} now: it changed during the export. Use --via-snapshot (or --snapshot) for a point-in-time copy",
            e.source_count_at_start
        );
        if staged != now {
            stage.save_manifest(manifest)?;
            return Err(Error::Mismatch(format!("collection {name}: {msg}")));
        }
        e.warnings.push(msg);
    }
    e.state = ExportState::Exported;
    stage.save_manifest(manifest)
}

/// Exports one range from its cursor to its end, chunk by chunk; each chunk is recorded in the
/// manifest (with the cursor after it) only once its file is durable.
fn export_range(
    stage: &Stage,
    src: &SharedSource,
    name: &str,
    idx: usize,
    manifest: &Mutex<Manifest>,
    opts: &ExportOptions,
    progress: &Progress,
) -> Result<()> {
    let (range, mapping, mut seq) = {
        let m = manifest.lock().unwrap_or_else(|e| e.into_inner());
        let e = &m.collections[name];
        let seq = e
            .chunks
            .iter()
            .filter(|c| c.range == idx)
            .map(|c| c.seq + 1)
            .max()
            .unwrap_or(0);
        (e.ranges[idx].clone(), e.mapping.clone(), seq)
    };
    let job = RangeJob {
        src,
        schema: arrow_schema(&mapping),
        mapping: &mapping,
        end: range.end.clone(),
        opts,
        progress,
    };
    let mut cursor = range.cursor.clone().or(range.start.clone());
    let mut finished = range.cursor.is_none() && range.done;
    while !finished {
        let rel = layout::chunk_file(name, idx, seq);
        // On object storage the file goes up from this worker, beside the others.
        let part = job.stage_chunk(stage, &rel, cursor.take())?;
        cursor = part.cursor_after.clone();
        finished = cursor.is_none();
        let aside_file = if part.aside.is_empty() {
            None
        } else {
            let n = manifest_aside_count(manifest, name, idx);
            Some(write_set_aside(stage, name, idx, n, part.aside)?)
        };
        let mut m = manifest.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.collections.get_mut(name).expect("planned");
        if let Some(f) = aside_file {
            tracing::warn!(collection = name, file = %f.file, points = f.points, "points with payloads over 64 KiB set aside");
            e.ranges[idx].set_aside.push(f);
        }
        if let (Some(w), Some(first), Some(last)) = (part.written, part.first, part.last) {
            e.chunks.push(Chunk {
                file: rel,
                rows: w.rows,
                bytes: w.bytes,
                sha256: w.sha256,
                range: idx,
                seq,
                first_id: first,
                last_id: last,
                cursor_after: cursor.clone(),
                written_at_ms: Some(crate::stage::evidence::now_ms()),
            });
            seq += 1;
        }
        e.ranges[idx].cursor = cursor.clone();
        e.ranges[idx].done = finished;
        e.ranges[idx].zero_cosine += part.zero_cosine;
        e.ranges[idx].empty_sparse += part.empty_sparse;
        stage.save_manifest(&m)?;
    }
    Ok(())
}

/// What a range's worker reads with.
struct RangeJob<'a> {
    src: &'a SharedSource,
    mapping: &'a CollectionMapping,
    schema: arrow::datatypes::SchemaRef,
    /// First id after the range (`None`: to the end).
    end: Option<PointId>,
    opts: &'a ExportOptions,
    progress: &'a Progress,
}

/// One chunk's worth of a range, staged but not yet recorded.
struct StagedPart {
    written: Option<crate::stage::writer::WrittenFile>,
    first: Option<PointId>,
    last: Option<PointId>,
    /// Points set aside (JSON lines).
    aside: Vec<String>,
    /// Points with an all-zero vector in a COSINE field.
    zero_cosine: u64,
    /// Points with an empty sparse row.
    empty_sparse: u64,
    /// Where the next chunk starts (`None`: the range is done).
    cursor_after: Option<PointId>,
}

impl RangeJob<'_> {
    /// Scrolls from `cursor` until the range ends or the file reaches `max_file_bytes`,
    /// writing the rows to the stage's file `rel` (durable and published when this returns).
    fn stage_chunk(&self, stage: &Stage, rel: &str, cursor: Option<PointId>) -> Result<StagedPart> {
        let opts = self.opts;
        let mut writer: Option<crate::stage::StagedWriter> = None;
        let mut part = StagedPart {
            written: None,
            first: None,
            last: None,
            aside: Vec::new(),
            zero_cosine: 0,
            empty_sparse: 0,
            cursor_after: None,
        };
        let mut reader = pages(
            self.src.as_ref(),
            cursor,
            self.end.clone(),
            ScrollOpts::points(opts.page_size),
        );
        for page in reader.by_ref() {
            let pts = page?;
            if let (Some(f), Some(l)) = (pts.first(), pts.last()) {
                part.first.get_or_insert_with(|| f.id.clone());
                part.last = Some(l.id.clone());
                for c in convert(&pts, self.mapping, &self.schema)? {
                    part.aside.extend(c.set_aside);
                    part.zero_cosine += c.zero_cosine;
                    part.empty_sparse += c.empty_sparse;
                    if c.batch.num_rows() == 0 {
                        continue;
                    }
                    let w = match &mut writer {
                        Some(w) => w,
                        None => writer.insert(stage.chunk_writer(
                            rel,
                            self.schema.clone(),
                            ChunkOptions {
                                row_bytes: ChunkOptions::row_bytes(self.mapping),
                                zstd_level: opts.zstd_level,
                                compress_vectors: opts.compress_vectors,
                            },
                        )?),
                    };
                    w.write(&c.batch)?;
                }
                self.progress.inc(pts.len() as u64);
            }
            let full = writer
                .as_ref()
                .is_some_and(|w| w.approx_bytes() >= opts.max_file_bytes);
            if full {
                break;
            }
        }
        let cursor = reader.cursor().cloned();
        part.cursor_after = cursor;
        part.written = writer.map(crate::stage::StagedWriter::finish).transpose()?;
        Ok(part)
    }
}

fn manifest_aside_count(manifest: &Mutex<Manifest>, name: &str, idx: usize) -> usize {
    let m = manifest.lock().unwrap_or_else(|e| e.into_inner());
    m.collections[name].ranges[idx].set_aside.len()
}

/// Writes the points set aside while staging one chunk of a range (named by the range and the
/// count of earlier set-aside files, so a rerun after a crash rewrites the same file).
fn write_set_aside(
    stage: &Stage,
    name: &str,
    idx: usize,
    n: usize,
    lines: Vec<String>,
) -> Result<SetAsideFile> {
    let rel = layout::set_aside_file(name, idx, n);
    let mut text = lines.join("\n");
    text.push('\n');
    let sha256 = stage.write_small(&rel, text.as_bytes())?;
    Ok(SetAsideFile {
        file: rel,
        points: lines.len() as u64,
        sha256,
    })
}

/// Converts a page on the rayon pool, in slices, keeping the order.
fn convert(
    points: &[Point],
    m: &CollectionMapping,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<Vec<Converted>> {
    points
        .par_chunks(512)
        .map(|c| to_batch(c, m, schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{IdScan, plan_ranges};
    use crate::model::PointId;

    fn scan(n: u64) -> IdScan {
        IdScan {
            count: n,
            id_kind: crate::transform::mapping::IdKind::Int64,
            samples: (0..n).step_by(1000).map(PointId::Num).collect(),
            stride: 1000,
            shard_keys: Vec::new(),
        }
    }

    #[test]
    fn ranges_cover_everything_once_in_order() {
        let s = scan(10_000);
        let r = plan_ranges(&s, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].start, None, "the first range starts at the beginning");
        assert_eq!(r[3].end, None, "the last range runs to the end");
        for w in r.windows(2) {
            assert_eq!(w[0].end, w[1].start, "no gap, no overlap");
            assert!(w[0].start < w[1].start);
        }
        assert!(
            r.iter()
                .enumerate()
                .all(|(i, x)| x.index == i && !x.done && x.cursor.is_none())
        );
        assert_eq!(
            r.iter()
                .map(|x| x.planned_points.unwrap())
                .collect::<Vec<_>>(),
            [2000, 3000, 2000, 3000],
            "each range knows its points exactly"
        );
        // More ranges than samples, or none asked: never an empty or repeated range.
        let few = plan_ranges(&scan(1500), 8);
        assert_eq!(few.len(), 2);
        assert_eq!(few[1].planned_points, Some(500));
        assert_eq!(plan_ranges(&scan(0), 4).len(), 1);
        assert_eq!(plan_ranges(&scan(0), 4)[0].planned_points, Some(0));
        assert_eq!(plan_ranges(&s, 0).len(), 1);
    }
}
