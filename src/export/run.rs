//! Running the planned ranges: each range scrolled page by page, converted on all cores and
//! written into chunks, the manifest updated after every chunk so a rerun resumes there.

use super::*;

/// Exports the ranges not done yet, `opts.workers` at a time; the first error stops the rest
/// (the manifest keeps what was recorded).
pub(super) fn run_ranges(
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

/// Exports one range from its cursor to its end, chunk by chunk; each chunk is recorded in the
/// manifest (with the cursor after it) only once its file is durable.
pub(super) fn export_range(
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
    let job = RangeJob::new(src, &mapping, range.end.clone(), opts, progress);
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
pub(super) struct RangeJob<'a> {
    src: &'a SharedSource,
    mapping: &'a CollectionMapping,
    schema: arrow::datatypes::SchemaRef,
    /// First id after the range (`None`: to the end).
    end: Option<PointId>,
    opts: &'a ExportOptions,
    progress: &'a Progress,
}

/// One chunk's worth of a range, staged but not yet recorded.
pub(super) struct StagedPart {
    pub(super) written: Option<crate::stage::writer::WrittenFile>,
    first: Option<PointId>,
    last: Option<PointId>,
    /// Points set aside (JSON lines).
    pub(super) aside: Vec<String>,
    /// Points with an all-zero vector in a COSINE field.
    zero_cosine: u64,
    /// Points with an empty sparse row.
    empty_sparse: u64,
    /// Where the next chunk starts (`None`: the range is done).
    cursor_after: Option<PointId>,
}

impl<'a> RangeJob<'a> {
    /// A reader of the range ending before `end` (`None`: to the end) of `src`.
    pub(super) fn new(
        src: &'a SharedSource,
        mapping: &'a CollectionMapping,
        end: Option<PointId>,
        opts: &'a ExportOptions,
        progress: &'a Progress,
    ) -> RangeJob<'a> {
        RangeJob {
            src,
            schema: arrow_schema(mapping),
            mapping,
            end,
            opts,
            progress,
        }
    }

    /// Scrolls from `cursor` until the range ends or the file reaches `max_file_bytes`,
    /// writing the rows to the stage's file `rel` (durable and published when this returns).
    pub(super) fn stage_chunk(
        &self,
        stage: &Stage,
        rel: &str,
        cursor: Option<PointId>,
    ) -> Result<StagedPart> {
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

pub(super) fn manifest_aside_count(manifest: &Mutex<Manifest>, name: &str, idx: usize) -> usize {
    let m = manifest.lock().unwrap_or_else(|e| e.into_inner());
    m.collections[name].ranges[idx].set_aside.len()
}

/// Writes the points set aside while staging one chunk of a range (named by the range and the
/// count of earlier set-aside files, so a rerun after a crash rewrites the same file).
pub(super) fn write_set_aside(
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

/// Points converted as one slice; a larger page is cut into slices of this many.
const SLICE: usize = 512;

/// Converts a page on the rayon pool, in slices, keeping the order. A page of one slice is
/// converted on the calling worker: the export's workers already keep the cores busy, and
/// handing a page to the pool and back costs a wake-up of its threads for nothing.
pub(super) fn convert(
    points: &[Point],
    m: &CollectionMapping,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<Vec<Converted>> {
    if points.len() <= SLICE {
        return Ok(vec![to_batch(points, m, schema)?]);
    }
    points
        .par_chunks(SLICE)
        .map(|c| to_batch(c, m, schema))
        .collect()
}
