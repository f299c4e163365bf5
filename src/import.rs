//! The import half: staging directory → target, resumable through `import-state.json`
//! (design §3: a file is never imported twice; job ids are recorded before polling).

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::stage::import_state::{ChunkLedger, ChunkState, CollectionLedger, ImportState};
use crate::stage::lock::StageLock;
use crate::stage::manifest::{Chunk, CollectionEntry, ExportState, Manifest, stage_err};
use crate::stage::reader::{Row, for_each_batch};
use crate::stage::writer::sha256_file;
use crate::target::milvus::{Milvus, as_u64};
use crate::target::upload::{StorageConfig, Uploader};
use crate::transform::mapping::META;
use crate::verify::{VerifyReport, chunk_filters, verify_collection};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How rows reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Upload the Parquet files and run bulk-import jobs.
    Bulk,
    /// Batched upserts over REST.
    Upsert,
}

/// Knobs of an import run.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub stage: PathBuf,
    pub mode: ImportMode,
    pub into_existing: bool,
    pub drop_existing: bool,
    pub batch_bytes: usize,
    pub sample: usize,
    pub collections: Vec<String>,
    pub storage: Option<StorageConfig>,
    pub quiet: bool,
    pub poll_interval: Duration,
    /// Attempts per chunk before a failed job stops the run.
    pub max_attempts: u32,
    /// A job whose imported rows do not move for this long is reported as stuck.
    pub stall_timeout: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            stage: PathBuf::from("stage"),
            mode: ImportMode::Bulk,
            into_existing: false,
            drop_existing: false,
            batch_bytes: 8 << 20,
            sample: 1000,
            collections: Vec::new(),
            storage: None,
            quiet: false,
            poll_interval: Duration::from_millis(500),
            max_attempts: 3,
            stall_timeout: Duration::from_secs(1800),
        }
    }
}

/// The ledger key of a target.
fn target_key(milvus: &Milvus) -> String {
    milvus.url().to_string()
}

/// Imports every staged collection (or the chosen ones) and verifies each.
pub fn import(milvus: &Milvus, opts: &ImportOptions) -> Result<Vec<VerifyReport>> {
    let stage = opts.stage.as_path();
    let _lock = StageLock::acquire(stage, "import")?;
    let manifest = Manifest::load(stage)?.ok_or_else(|| {
        stage_err(
            stage,
            "no manifest.json: this is not a staging directory (run q2z export first)",
        )
    })?;
    let mut state = ImportState::load(stage)?;
    let mut reports = Vec::new();
    for (name, entry) in &manifest.collections {
        if !opts.collections.is_empty() && !opts.collections.contains(name) {
            continue;
        }
        if entry.state != ExportState::Exported {
            return Err(stage_err(
                stage,
                format!(
                    "collection '{name}' is not fully exported yet; run the same export command again to finish it"
                ),
            ));
        }
        check_files(stage, entry)?;
        let mut ledger = state
            .targets
            .entry(target_key(milvus))
            .or_default()
            .remove(name)
            .unwrap_or_default();
        let r = import_collection(milvus, stage, entry, &mut ledger, &mut state, opts);
        state
            .targets
            .entry(target_key(milvus))
            .or_default()
            .insert(name.clone(), ledger);
        state.save(stage)?;
        reports.push(r?);
    }
    Ok(reports)
}

/// Refuses any staged file whose size or sha256 differs from the manifest.
pub fn check_files(stage: &Path, entry: &CollectionEntry) -> Result<()> {
    for c in &entry.chunks {
        let p = stage.join(&c.file);
        let (sha, bytes) = sha256_file(&p).map_err(|_| {
            stage_err(
                stage,
                format!(
                    "staged file {} is missing; copy the whole staging directory again",
                    c.file
                ),
            )
        })?;
        if sha != c.sha256 || bytes != c.bytes {
            return Err(stage_err(
                stage,
                format!(
                    "staged file {} is damaged (sha256 or size differs from the manifest); it will not be imported. Copy it again from the export machine",
                    c.file
                ),
            ));
        }
    }
    Ok(())
}

/// Files per import job (Milvus and Zilliz Cloud accept at most 1,000–1,024).
const JOB_MAX_FILES: usize = 1000;
/// Bytes per import job (Zilliz Cloud: 1 TB per import).
const JOB_MAX_BYTES: u64 = 1_000_000_000_000;

/// Splits files (name, bytes) into consecutive job groups under both limits.
fn job_groups(files: &[(String, u64)], max_files: usize, max_bytes: u64) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0u64;
    for (f, b) in files {
        let full = out
            .last()
            .is_none_or(|g| g.len() >= max_files || bytes + b > max_bytes);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        out.last_mut().expect("group").push(f.clone());
        bytes += b;
    }
    out
}

/// Files uploaded at once.
const UPLOAD_THREADS: usize = 4;

fn save(
    state: &mut ImportState,
    milvus: &Milvus,
    name: &str,
    ledger: &CollectionLedger,
    stage: &Path,
) -> Result<()> {
    state
        .targets
        .entry(target_key(milvus))
        .or_default()
        .insert(name.to_string(), ledger.clone());
    state.save(stage)
}

fn ensure_collection(
    milvus: &Milvus,
    entry: &CollectionEntry,
    ledger: &mut CollectionLedger,
    opts: &ImportOptions,
) -> Result<()> {
    let target = &entry.mapping.target;
    let exists = milvus.has_collection(target)?;
    if exists && !ledger.created {
        if opts.drop_existing {
            milvus.drop_collection(target)?;
        } else if opts.into_existing {
            check_schema(milvus, entry)?;
            ledger.created = true;
            return Ok(());
        } else {
            return Err(Error::Mapping {
                collection: entry.mapping.source.clone(),
                message: format!(
                    "the target already has a collection named '{target}'. Use --into-existing to append to it (same schema), --drop-existing to replace it, or set another `target` in the mapping file"
                ),
            });
        }
    }
    if !milvus.has_collection(target)? {
        milvus.create_collection(&entry.milvus_schema)?;
    }
    ledger.created = true;
    Ok(())
}

/// Checks that an existing collection has the staged fields with the same types.
fn check_schema(milvus: &Milvus, entry: &CollectionEntry) -> Result<()> {
    let d = milvus.describe(&entry.mapping.target)?;
    let have: BTreeMap<String, String> = d
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("name")?.as_str()?.to_string(),
                f.get("type")?.as_str()?.to_string(),
            ))
        })
        .collect();
    for f in entry.milvus_schema["schema"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = f["fieldName"].as_str().unwrap_or_default();
        let ty = f["dataType"].as_str().unwrap_or_default();
        if have.get(name).map(String::as_str) != Some(ty) {
            return Err(Error::Mapping {
                collection: entry.mapping.source.clone(),
                message: format!(
                    "--into-existing: the existing collection '{}' has no field '{name}' of type {ty}; use --drop-existing or another target name",
                    entry.mapping.target
                ),
            });
        }
    }
    Ok(())
}

fn import_collection(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    ledger: &mut CollectionLedger,
    state: &mut ImportState,
    opts: &ImportOptions,
) -> Result<VerifyReport> {
    let name = entry.mapping.source.clone();
    ensure_collection(milvus, entry, ledger, opts)?;
    let mode = match opts.mode {
        ImportMode::Bulk => "bulk",
        ImportMode::Upsert => "upsert",
    };
    if ledger.mode.as_deref() != Some("upsert") {
        ledger.mode = Some(mode.into());
    }
    save(state, milvus, &name, ledger, stage)?;
    let progress = Progress::new(
        &format!("import {name}"),
        entry.staged_rows(),
        "rows",
        opts.quiet,
    );
    match opts.mode {
        ImportMode::Upsert => {
            for c in &entry.chunks {
                let l = ledger.chunks.entry(c.file.clone()).or_default();
                if l.state == ChunkState::Imported {
                    progress.inc(c.rows);
                    continue;
                }
                if l.state != ChunkState::Pending {
                    return Err(stage_err(
                        stage,
                        format!(
                            "chunk {} was sent by a bulk import that has not finished; rerun with --mode bulk to finish it first",
                            c.file
                        ),
                    ));
                }
                upsert_chunk(milvus, stage, entry, c, opts.batch_bytes, &progress)?;
                ledger.chunks.get_mut(&c.file).expect("entry").state = ChunkState::Imported;
                save(state, milvus, &name, ledger, stage)?;
            }
        }
        ImportMode::Bulk => bulk_import(milvus, stage, entry, ledger, state, opts, &progress)?,
    }
    progress.finish();
    milvus.flush(&entry.mapping.target)?;
    milvus.load(&entry.mapping.target)?;
    let report = wait_and_verify(
        milvus,
        stage,
        entry,
        opts.sample,
        ledger.mode.as_deref() == Some("upsert"),
    )?;
    ledger.verified = report.ok;
    save(state, milvus, &name, ledger, stage)?;
    Ok(report)
}

/// Imported rows may take a moment to become visible to a Strong count; poll briefly.
fn wait_and_verify(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    sample: usize,
    upsert: bool,
) -> Result<VerifyReport> {
    for _ in 0..60 {
        if milvus.count(&entry.mapping.target, "")? >= entry.staged_rows() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    verify_collection(milvus, stage, entry, sample, upsert)
}

/// Turns a staged row into a REST row: `$meta` keys go to the top level (the dynamic field).
pub fn rest_row(mut r: Row) -> Row {
    if let Some(Value::Object(meta)) = r.remove(META) {
        for (k, v) in meta {
            r.insert(k, v);
        }
    }
    r
}

/// Sends one chunk as upserts in batches of at most `batch_bytes`.
pub fn upsert_chunk(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    c: &Chunk,
    batch_bytes: usize,
    progress: &Progress,
) -> Result<()> {
    let target = &entry.mapping.target;
    let mut batch: Vec<Map<String, Value>> = Vec::new();
    let mut bytes = 0usize;
    let flush = |batch: &mut Vec<Map<String, Value>>, bytes: &mut usize| -> Result<()> {
        if !batch.is_empty() {
            milvus.upsert(target, batch)?;
            progress.inc(batch.len() as u64);
            batch.clear();
            *bytes = 0;
        }
        Ok(())
    };
    for_each_batch(&stage.join(&c.file), &entry.mapping, 1024, |rows| {
        crate::interrupt::check()?;
        for r in rows {
            let row = rest_row(r);
            let size = serde_json::to_vec(&row).map(|v| v.len()).unwrap_or(0);
            if bytes + size > batch_bytes && !batch.is_empty() {
                flush(&mut batch, &mut bytes)?;
            }
            bytes += size;
            batch.push(row);
        }
        Ok(())
    })?;
    flush(&mut batch, &mut bytes)
}

/// Deletes a chunk's rows from the target (before re-sending it).
pub fn delete_chunk(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    c: &Chunk,
) -> Result<()> {
    for f in chunk_filters(stage, &entry.mapping, c)? {
        milvus.delete(&entry.mapping.target, &f)?;
    }
    Ok(())
}

/// Settles a chunk whose job is unknown (lost id or forgotten after retention) by counting:
/// all rows present → imported; none → send again; some → delete them, send again.
fn settle_by_count(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    c: &Chunk,
) -> Result<ChunkState> {
    milvus.flush(&entry.mapping.target)?;
    let n = crate::verify::chunk_count(milvus, stage, &entry.mapping, c)?;
    if n == c.rows {
        return Ok(ChunkState::Imported);
    }
    if n > 0 {
        tracing::warn!(file = %c.file, found = n, rows = c.rows, "partial or doubled chunk in the target; deleting its rows before sending it again");
        delete_chunk(milvus, stage, entry, c)?;
    }
    Ok(ChunkState::Uploaded)
}

fn bulk_import(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    ledger: &mut CollectionLedger,
    state: &mut ImportState,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<()> {
    let name = entry.mapping.source.clone();
    let target = entry.mapping.target.clone();
    let storage = opts.storage.clone().ok_or_else(|| Error::Other(
        "bulk import needs the bucket Milvus reads from: pass --s3-endpoint, --s3-bucket and the keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or use --mode upsert".into(),
    ))?;
    let up = Uploader::s3(storage)?;
    let chunks: BTreeMap<String, &Chunk> =
        entry.chunks.iter().map(|c| (c.file.clone(), c)).collect();
    // Resume: chunks whose job creation may have happened without its id being recorded.
    let submitting: Vec<String> = ledger
        .chunks
        .iter()
        .filter(|(_, l)| l.state == ChunkState::Submitting)
        .map(|(f, _)| f.clone())
        .collect();
    if !submitting.is_empty() {
        let jobs = milvus.import_list(&target)?;
        for f in submitting {
            let key = ledger.chunks[&f].key.clone().unwrap_or_default();
            let mut found = None;
            for j in &jobs {
                let id = j
                    .get("jobId")
                    .map(crate::verify::compare::id_key)
                    .unwrap_or_default();
                if let Ok(d) = milvus.import_describe(&id) {
                    let names: Vec<String> = d
                        .get("details")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.get("fileName")?.as_str().map(str::to_string))
                        .collect();
                    if names.iter().any(|n| n == &key || n.ends_with(&key)) {
                        found = Some(id);
                    }
                }
            }
            let l = ledger.chunks.get_mut(&f).expect("ledger");
            match found {
                Some(id) => {
                    tracing::info!(file = %f, job = %id, "found the import job of an interrupted submission");
                    l.job = Some(id);
                    l.state = ChunkState::Importing;
                }
                None => l.state = settle_by_count(milvus, stage, entry, chunks[&f])?,
            }
        }
        save(state, milvus, &name, ledger, stage)?;
    }
    loop {
        // Upload what is not in the bucket yet, several files at once; each file is recorded
        // as uploaded as soon as it is there.
        let pending: Vec<&Chunk> = entry
            .chunks
            .iter()
            .filter(|c| {
                ledger.chunks.entry(c.file.clone()).or_default().state == ChunkState::Pending
            })
            .collect();
        if !pending.is_empty() {
            let queue = std::sync::Mutex::new(pending.into_iter());
            let (tx, rx) = std::sync::mpsc::channel::<Result<(String, String)>>();
            let mut first_err = None;
            std::thread::scope(|s| -> Result<()> {
                for _ in 0..UPLOAD_THREADS {
                    let tx = tx.clone();
                    let (queue, up) = (&queue, &up);
                    s.spawn(move || {
                        loop {
                            let next = queue.lock().ok().and_then(|mut q| q.next());
                            let Some(c) = next else { return };
                            let key = up.key_for(&c.file);
                            let r = (|| {
                                crate::interrupt::check()?;
                                if !up.holds(&key, c.bytes, &c.sha256, &stage.join(&c.file))? {
                                    up.put_file(&stage.join(&c.file), &key, Some(&c.sha256))?;
                                }
                                Ok((c.file.clone(), key))
                            })();
                            let failed = r.is_err();
                            if tx.send(r).is_err() || failed {
                                return;
                            }
                        }
                    });
                }
                drop(tx);
                for r in rx {
                    match r {
                        Ok((file, key)) => {
                            let l = ledger.chunks.get_mut(&file).expect("ledger");
                            l.key = Some(key);
                            l.state = ChunkState::Uploaded;
                            save(state, milvus, &name, ledger, stage)?;
                        }
                        Err(e) => {
                            if let Ok(mut q) = queue.lock() {
                                q.by_ref().for_each(drop);
                            }
                            first_err.get_or_insert(e);
                        }
                    }
                }
                Ok(())
            })?;
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        // Submit uploaded chunks: at most 1,000 files and 1 TB per job (Zilliz Cloud's limits).
        let ready: Vec<(String, u64)> = entry
            .chunks
            .iter()
            .filter(|c| ledger.chunks[&c.file].state == ChunkState::Uploaded)
            .map(|c| (c.file.clone(), c.bytes))
            .collect();
        for group in job_groups(&ready, JOB_MAX_FILES, JOB_MAX_BYTES) {
            for f in &group {
                ledger.chunks.get_mut(f).expect("ledger").state = ChunkState::Submitting;
            }
            save(state, milvus, &name, ledger, stage)?;
            let keys: Vec<String> = group
                .iter()
                .map(|f| ledger.chunks[f].key.clone().unwrap_or_default())
                .collect();
            let job = milvus.import_create(&target, &keys)?;
            for f in &group {
                let l = ledger.chunks.get_mut(f).expect("ledger");
                l.job = Some(job.clone());
                l.state = ChunkState::Importing;
                l.attempts += 1;
            }
            save(state, milvus, &name, ledger, stage)?;
            tracing::info!(job = %job, files = group.len(), "import job created");
        }
        // Poll every running job until it ends.
        let mut jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (f, l) in &ledger.chunks {
            if l.state == ChunkState::Importing {
                jobs.entry(l.job.clone().unwrap_or_default())
                    .or_default()
                    .push(f.clone());
            }
        }
        if jobs.is_empty() {
            break;
        }
        let done_rows: u64 = entry
            .chunks
            .iter()
            .filter(|c| ledger.chunks[&c.file].state == ChunkState::Imported)
            .map(|c| c.rows)
            .sum();
        poll_jobs(
            milvus, stage, entry, ledger, jobs, &chunks, opts, progress, done_rows,
        )?;
        save(state, milvus, &name, ledger, stage)?;
        if entry
            .chunks
            .iter()
            .all(|c| ledger.chunks[&c.file].state == ChunkState::Imported)
        {
            break;
        }
    }
    progress.set(entry.staged_rows());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn poll_jobs(
    milvus: &Milvus,
    stage: &Path,
    entry: &CollectionEntry,
    ledger: &mut CollectionLedger,
    mut jobs: BTreeMap<String, Vec<String>>,
    chunks: &BTreeMap<String, &Chunk>,
    opts: &ImportOptions,
    progress: &Progress,
    done_rows: u64,
) -> Result<()> {
    let mut running: BTreeMap<String, u64> = BTreeMap::new();
    let mut moved: BTreeMap<String, (String, std::time::Instant)> = BTreeMap::new();
    while !jobs.is_empty() {
        crate::interrupt::check()?;
        let mut finished = Vec::new();
        for (job, files) in &jobs {
            let d = match milvus.import_describe(job) {
                Ok(d) => d,
                Err(Error::Milvus { code: 2100, .. }) => {
                    tracing::warn!(job = %job, "the target no longer knows this job (past its retention); settling by counting rows");
                    for f in files {
                        let st = settle_by_count(milvus, stage, entry, chunks[f])?;
                        ledger.chunks.get_mut(f).expect("ledger").state = st;
                    }
                    finished.push(job.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let st = d.get("state").and_then(Value::as_str).unwrap_or("");
            running.insert(job.clone(), as_u64(d.get("importedRows")).unwrap_or(0));
            let mark = format!(
                "{st}/{}/{}",
                d.get("progress").unwrap_or(&Value::Null),
                d.get("importedRows").unwrap_or(&Value::Null)
            );
            let since = moved
                .entry(job.clone())
                .or_insert_with(|| (mark.clone(), std::time::Instant::now()));
            if since.0 != mark {
                *since = (mark, std::time::Instant::now());
            } else if since.1.elapsed() > opts.stall_timeout && st != "Completed" && st != "Failed"
            {
                return Err(Error::Other(format!(
                    "import job {job} into {} has made no progress for {} s (state {st}). It is recorded in import-state.json: run the same command later to keep waiting, or cancel it on the server and rerun",
                    entry.mapping.target,
                    opts.stall_timeout.as_secs()
                )));
            }
            match st {
                "Completed" => {
                    for f in files {
                        ledger.chunks.get_mut(f).expect("ledger").state = ChunkState::Imported;
                    }
                    finished.push(job.clone());
                }
                "Failed" => {
                    let reason = d
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                        .to_string();
                    for f in files {
                        let l = ledger.chunks.get_mut(f).expect("ledger");
                        l.last_error = Some(reason.clone());
                        if l.attempts >= opts.max_attempts {
                            return Err(Error::Other(format!(
                                "import job {job} failed for {}: {reason}. Files: {}. Fix the cause and run the same command again (only these files are re-sent)",
                                entry.mapping.target,
                                files.join(", ")
                            )));
                        }
                        tracing::warn!(job = %job, file = %f, %reason, "import job failed; the chunk will be sent again");
                        l.state = ChunkState::Uploaded;
                        l.job = None;
                    }
                    finished.push(job.clone());
                }
                _ => {}
            }
        }
        for j in finished {
            jobs.remove(&j);
            running.remove(&j);
        }
        let imported: u64 = entry
            .chunks
            .iter()
            .filter(|c| ledger.chunks[&c.file].state == ChunkState::Imported)
            .map(|c| c.rows)
            .sum();
        progress.set(imported.max(done_rows) + running.values().sum::<u64>());
        if !jobs.is_empty() {
            std::thread::sleep(opts.poll_interval);
        }
    }
    Ok(())
}

impl ChunkLedger {
    /// Whether the chunk's rows are in the target.
    pub fn imported(&self) -> bool {
        self.state == ChunkState::Imported
    }
}

#[cfg(test)]
mod tests {
    use super::job_groups;

    #[test]
    fn jobs_respect_file_and_byte_limits() {
        let files: Vec<(String, u64)> = (0..7).map(|i| (format!("f{i}"), 400)).collect();
        let g = job_groups(&files, 3, 1000);
        let sizes: Vec<usize> = g.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 1], "1,000 bytes allow two 400-byte files");
        let g = job_groups(&files, 3, u64::MAX);
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert!(job_groups(&[], 3, 10).is_empty());
        let big = [("huge".to_string(), 5000)];
        assert_eq!(job_groups(&big, 3, 1000), [vec!["huge".to_string()]]);
    }
}
