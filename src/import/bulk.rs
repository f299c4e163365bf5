//! Bulk import: upload the chunk files (several at once, each recorded as it lands), create
//! import jobs of at most 1,000 files and 1 TB, poll them to the end. A job creation whose
//! answer is lost is reconciled against the server's job list before anything is sent again.

use super::ledger_book::LedgerBook;
use super::{ImportOptions, settle_by_count};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::sink::milvus::fit::EmptySparse;
use crate::sink::milvus::jobs::CREATE_WINDOW;
use crate::sink::milvus::version::Known;
use crate::sink::milvus::{ImportJob, JobState, Milvus};
use crate::sink::object_store::Uploader;
use crate::stage::StagedCollection;
use crate::stage::ledger::ChunkState;
use crate::stage::manifest::Chunk;
use std::collections::BTreeMap;
use std::time::Duration;

/// Files per import job (Milvus and Zilliz Cloud accept at most 1,000–1,024).
const JOB_MAX_FILES: usize = 1000;
/// Bytes per import job (Zilliz Cloud: 1 TB per import).
const JOB_MAX_BYTES: u64 = 1_000_000_000_000;
/// Files uploaded at once.
const UPLOAD_THREADS: usize = 4;

/// The rate, bytes a second, at which `files` go up to `up` as an import sends them (as many
/// at once), measured under a scratch prefix whose objects are deleted afterwards (`q2z plan`).
/// The files go up twice and the faster round counts: the first pays for connections an
/// import opens once for all its files, and a round of a few files is easily slowed by what
/// else the machine does. Calibration objects an hour old, left by a plan killed while timing,
/// are deleted first.
pub fn upload_rate(up: &Uploader, files: &[std::path::PathBuf]) -> Result<f64> {
    remove_stale_calibrations(up);
    let scratch = format!("{CALIBRATION_PREFIX}/{:016x}", rand::random::<u64>());
    let put = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let round = |r: usize| -> Result<(u64, f64)> {
        let keys: Vec<(String, &std::path::PathBuf)> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (up.key_for(&format!("{scratch}/{r}-{i}.parquet")), f))
            .collect();
        let sent = std::sync::atomic::AtomicU64::new(0);
        let start = std::time::Instant::now();
        crate::pool::run(keys, UPLOAD_THREADS, |(key, f)| {
            let n = up.put_file(f, &key, None)?;
            sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            put.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
            Ok(())
        })?;
        Ok((sent.into_inner(), start.elapsed().as_secs_f64()))
    };
    let ran = round(0).and_then(|a| Ok((a, round(1)?)));
    for key in put.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if let Err(e) = up.delete(&key) {
            tracing::warn!("the calibration file {key} was left in the bucket (delete it): {e}");
        }
    }
    let ((a, ta), (b, tb)) = ran?;
    Ok((a as f64 / ta.max(1e-9)).max(b as f64 / tb.max(1e-9)))
}

/// Where `plan` times the upload, under the stage's prefix.
const CALIBRATION_PREFIX: &str = "q2z-plan-calibration";
/// A calibration object this old belongs to no running plan (the timing takes seconds).
const STALE_CALIBRATION_SECS: i64 = 3600;

/// Deletes calibration objects left by plans killed while timing the upload; a store that
/// refuses the listing (keys that may only write) keeps them, noted in the log.
fn remove_stale_calibrations(up: &Uploader) {
    let root = up.key_for(CALIBRATION_PREFIX);
    let before = unix_now() as i64 - STALE_CALIBRATION_SECS;
    match up.keys_modified_before(&root, before) {
        Ok(keys) => {
            for key in keys {
                tracing::info!("removing {key}, left in the bucket by an interrupted plan");
                if let Err(e) = up.delete(&key) {
                    tracing::warn!(
                        "the calibration file {key} was left in the bucket (delete it): {e}"
                    );
                }
            }
        }
        Err(e) => tracing::debug!("calibration files of interrupted plans not looked for: {e}"),
    }
}

/// How long a reconciliation waits for a new job to list its files.
const RECONCILE_WAIT: Duration = Duration::from_secs(120);

use crate::source::unix_now;

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
        if let Some(g) = out.last_mut() {
            g.push(f.clone());
        }
        bytes += b;
    }
    out
}

/// Runs the bulk import of one collection to its end.
pub fn import_all(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<()> {
    let storage = opts.storage.clone().ok_or_else(|| Error::Other(
        "bulk import needs the bucket Milvus reads from: pass --s3-endpoint, --s3-bucket and the keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or use --mode upsert".into(),
    ))?;
    upsert_rest_only_chunks(milvus, sc, book, opts, progress)?;
    check_limits(&storage.limits, sc, book)?;
    let up = Uploader::s3(storage)?;
    reconcile_submissions(milvus, sc, book)?;
    // A chunk whose jobs failed in an earlier run is sent again: the rerun is the user's
    // "try again" after fixing the cause.
    for c in sc.chunks() {
        let l = book.get().chunk(&c.file);
        if l.state == ChunkState::Uploaded {
            l.attempts = 0;
        }
    }
    loop {
        upload_pending(sc, &up, book)?;
        submit_uploaded(milvus, sc, book)?;
        let mut jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (f, l) in &book.get().chunks {
            if l.state == ChunkState::Importing
                && let Some(j) = &l.job
            {
                jobs.entry(j.clone()).or_default().push(f.clone());
            }
        }
        if jobs.is_empty() {
            break;
        }
        poll_jobs(milvus, sc, book, jobs, opts, progress)?;
        book.save()?;
        if sc
            .chunks()
            .iter()
            .all(|c| book.get().state(&c.file) == ChunkState::Imported)
        {
            break;
        }
    }
    progress.set(sc.rows());
    Ok(())
}

/// On a release known to take a row without its sparse vector (an empty sparse row) over REST
/// but to fail a Parquet import on it (2.4.12–2.5.6), each chunk holding one and not yet in a
/// job is upserted instead (idempotent: a rerun sends it again whole); the other chunks go on to
/// the bulk import. (A release only probed is left to the import, with check_empty_sparse's
/// warning: most servers that answer like 2.5.4 are newer and import them.)
fn upsert_rest_only_chunks(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<()> {
    let server = milvus.server()?;
    if server.known == Known::Probed
        || EmptySparse::of(server, &sc.entry.mapping) != EmptySparse::RestOnly
    {
        return Ok(());
    }
    let (mut chunks, mut rows) = (0, 0);
    for c in sc.chunks() {
        let free = matches!(
            book.get().state(&c.file),
            ChunkState::Pending | ChunkState::Uploaded
        );
        if !free
            || sc
                .entry
                .ranges
                .get(c.range)
                .is_some_and(|r| r.empty_sparse == 0)
        {
            continue;
        }
        let n = sc.chunk_empty_sparse(c)?;
        if n == 0 {
            continue;
        }
        let fix = format!(
            "The chunk goes over REST because it also holds {n} rows without their sparse vector, which {server} fails in a Parquet import (2.5.7+): give those points their sparse vector in Qdrant, or import into Milvus ≥ 2.5.7"
        );
        book.get().upserted = true;
        book.save()?;
        super::upsert::upsert_chunk(milvus, sc, c, opts.batch_bytes, progress, &fix)?;
        book.get().chunk(&c.file).set_state(ChunkState::Imported);
        book.save()?;
        (chunks, rows) = (chunks + 1, rows + n);
    }
    if chunks > 0 {
        tracing::info!(
            collection = sc.name,
            "{chunks} of {} chunks upserted over REST: they hold {rows} rows without their sparse vector, which {server} takes over REST but not in a Parquet import (2.5.7+)",
            sc.chunks().len()
        );
    }
    Ok(())
}

/// A Zilliz volume's upload limits (`maxContentLength`, `maxFileNumber`), checked against the
/// collection's files still to upload before the first one goes up (as pymilvus does).
fn check_limits(
    limits: &crate::sink::object_store::UploadLimits,
    sc: StagedCollection,
    book: &mut LedgerBook,
) -> Result<()> {
    let pending: Vec<&Chunk> = sc
        .chunks()
        .iter()
        .filter(|c| book.get().state(&c.file) == ChunkState::Pending)
        .collect();
    let bytes: u64 = pending.iter().map(|c| c.bytes).sum();
    let over = match (limits.max_bytes, limits.max_files) {
        (Some(max), _) if bytes > max => Some(format!("{bytes} bytes, over its limit of {max}")),
        (_, Some(max)) if pending.len() as u64 > max => {
            Some(format!("{} files, over its limit of {max}", pending.len()))
        }
        _ => None,
    };
    match over {
        Some(why) => Err(Error::Other(format!(
            "{}: the upload to the Zilliz volume would hold {why} (the volume's plan). Nothing was uploaded. Move the volume to a pay-as-you-go plan, stage the collection with larger --max-file-bytes (fewer files), or import from your own bucket with --s3-bucket",
            sc.entry.mapping.target
        ))),
        None => Ok(()),
    }
}

/// Chunks left `Submitting` (a run stopped, or a creation's answer was lost): the job that
/// reads them is looked up on the server (files as Milvus reports them); without one, the
/// target is counted.
fn reconcile_submissions(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
) -> Result<()> {
    let submitting: Vec<String> = book
        .get()
        .chunks
        .iter()
        .filter(|(_, l)| l.state == ChunkState::Submitting)
        .map(|(f, _)| f.clone())
        .collect();
    if submitting.is_empty() {
        return Ok(());
    }
    let known = book.get().known_jobs();
    let target = &sc.entry.mapping.target;
    for f in submitting {
        let (key, since) = {
            let l = book.get().chunk(&f);
            (
                l.key.clone().unwrap_or_default(),
                l.submitted_at.unwrap_or(0),
            )
        };
        let found = find_created_job(milvus, target, std::slice::from_ref(&key), &known, since)?;
        let state = match &found {
            Some(id) => {
                tracing::info!(file = %f, job = %id, "found the import job of an interrupted submission");
                ChunkState::Importing
            }
            None => settle_by_count(milvus, sc, &f)?,
        };
        let l = book.get().chunk(&f);
        l.set_state(state);
        l.job = found;
        book.save()?;
    }
    Ok(())
}

/// The job a creation request sent at `since` (Unix seconds) made for any of `keys`, if any.
/// A request still on its way (its sender was killed, or its answer lost) can leave its job a
/// moment later, so "no job" is the answer only once the request's window has passed.
fn find_created_job(
    milvus: &Milvus,
    target: &str,
    keys: &[String],
    known: &std::collections::BTreeSet<String>,
    since: u64,
) -> Result<Option<String>> {
    let window = Duration::from_secs((since + CREATE_WINDOW.as_secs()).saturating_sub(unix_now()));
    crate::wait::until(Duration::from_secs(2), window, || {
        milvus.find_job_reading(target, keys, known, RECONCILE_WAIT)
    })
}

/// On a server that honours `Idempotency-Key`: the creation sent again with the same key
/// answers the job the lost answer was about (or creates the one that was never made) — one
/// job either way. `None` if the server stays unreachable (the job list is searched then).
fn resend_with_same_key(
    milvus: &Milvus,
    target: &str,
    keys: &[String],
    attempt: u32,
) -> Option<String> {
    for n in 1..=5u64 {
        std::thread::sleep(Duration::from_secs(n));
        match milvus.import_create(target, keys, attempt) {
            Ok(job) => {
                tracing::info!(job = %job, "the job creation sent again with the same Idempotency-Key answered its job");
                return Some(job);
            }
            Err(e) => tracing::warn!(
                "sending the job creation again with the same Idempotency-Key failed: {e}"
            ),
        }
    }
    None
}

/// Where an import job reads a staged file: a stage on object storage keeps its own object
/// (the uploader's prefix is the stage's), a local stage's file goes to a key of its content
/// ([`Uploader::import_key`]).
pub fn object_key(stage: &crate::stage::Stage, up: &Uploader, rel: &str, sha256: &str) -> String {
    if stage.remote().is_some() {
        up.key_for(rel)
    } else {
        up.import_key(rel, sha256)
    }
}

/// Uploads what is not in the bucket yet, several files at once; each file is recorded as
/// uploaded as soon as it is there.
fn upload_pending(sc: StagedCollection, up: &Uploader, book: &mut LedgerBook) -> Result<()> {
    let pending: Vec<&Chunk> = sc
        .chunks()
        .iter()
        .filter(|c| book.get().state(&c.file) == ChunkState::Pending)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let book = std::sync::Mutex::new(book);
    crate::pool::run(pending, UPLOAD_THREADS, |c| {
        let key = object_key(sc.stage(), up, &c.file, &c.sha256);
        // A stage on object storage in the import's bucket is already there.
        if !up.holds(&key, c.bytes, &c.sha256, &sc.local_path(c))? {
            up.put_file(&sc.chunk_path(c)?, &key, Some(&c.sha256))?;
        }
        // Recorded as soon as it is there.
        let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
        let l = b.get().chunk(&c.file);
        l.key = Some(key);
        l.state = ChunkState::Uploaded;
        b.save()
    })
}

/// Creates jobs for the uploaded chunks (at most 1,000 files and 1 TB each). Each group is
/// marked `Submitting` before the request; an answer that is lost (timeout, 5xx, reset) is
/// reconciled against the server's jobs instead of creating a second job.
fn submit_uploaded(milvus: &Milvus, sc: StagedCollection, book: &mut LedgerBook) -> Result<()> {
    let ready: Vec<(String, u64)> = sc
        .chunks()
        .iter()
        .filter(|c| book.get().state(&c.file) == ChunkState::Uploaded)
        .map(|c| (c.file.clone(), c.bytes))
        .collect();
    let target = &sc.entry.mapping.target;
    for group in job_groups(&ready, JOB_MAX_FILES, JOB_MAX_BYTES) {
        let known = book.get().known_jobs();
        let mut keys = Vec::with_capacity(group.len());
        for f in &group {
            let l = book.get().chunk(f);
            l.state = ChunkState::Submitting;
            l.submitted_at = Some(unix_now());
            keys.push(l.key.clone().unwrap_or_default());
        }
        book.save()?;
        let sent = unix_now();
        // Jobs these files ever had: a new job after a failed or repaired one gets a new key,
        // a creation whose answer was lost (nothing recorded) the same.
        let attempt = group
            .iter()
            .map(|f| {
                let l = book.get().chunk(f);
                (l.past_jobs.len() + usize::from(l.job.is_some())) as u32
            })
            .max()
            .unwrap_or(0);
        let job = match milvus.import_create(target, &keys, attempt) {
            Ok(job) => job,
            Err(e @ (Error::Unreachable { .. } | Error::Http { .. } | Error::Protocol { .. })) => {
                tracing::warn!(
                    "the answer to an import-job creation was lost ({e}); looking for the job on the server"
                );
                let again = if milvus.server()?.kind.import_idempotency() {
                    resend_with_same_key(milvus, target, &keys, attempt)
                } else {
                    None
                };
                match again.map_or_else(
                    || find_created_job(milvus, target, &keys, &known, sent),
                    |j| Ok(Some(j)),
                )? {
                    Some(job) => job,
                    None => {
                        // Nothing was created: the group goes back to the bucket state and is
                        // sent by the next round (or the next run).
                        for f in &group {
                            book.get().chunk(f).state = ChunkState::Uploaded;
                        }
                        book.save()?;
                        return Err(e);
                    }
                }
            }
            Err(e) => {
                for f in &group {
                    book.get().chunk(f).state = ChunkState::Uploaded;
                }
                book.save()?;
                return Err(e);
            }
        };
        for f in &group {
            let l = book.get().chunk(f);
            l.job = Some(job.clone());
            l.state = ChunkState::Importing;
            l.attempts += 1;
        }
        book.save()?;
        tracing::info!(job = %job, files = group.len(), "import job created");
    }
    Ok(())
}

/// Polls the running jobs until each ends; failed ones are sent again up to
/// `max_attempts` jobs per chunk, then the run stops with the server's reason.
fn poll_jobs(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
    mut jobs: BTreeMap<String, Vec<String>>,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<()> {
    let mut running: BTreeMap<String, u64> = BTreeMap::new();
    let mut stall = crate::sink::milvus::jobs::StallWatch::default();
    crate::wait::until(opts.poll_interval, Duration::MAX, || {
        let mut finished = Vec::new();
        for (job, files) in &jobs {
            let d = match milvus.import_describe(job) {
                Ok(d) => d,
                Err(Error::Milvus { code: 2100, .. }) => {
                    tracing::warn!(job = %job, "the target no longer knows this job (past its retention); settling by counting rows");
                    for f in files {
                        let st = settle_by_count(milvus, sc, f)?;
                        book.get().chunk(f).set_state(st);
                    }
                    finished.push(job.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            running.insert(job.clone(), d.imported_rows);
            stall.check(&d, &sc.entry.mapping.target, opts.stall_timeout)?;
            if job_ended(milvus, &d, files, sc, book, opts)? {
                finished.push(job.clone());
            }
        }
        for j in finished {
            jobs.remove(&j);
            running.remove(&j);
        }
        book.save()?;
        let imported: u64 = sc
            .chunks()
            .iter()
            .filter(|c| book.get().state(&c.file) == ChunkState::Imported)
            .map(|c| c.rows)
            .sum();
        progress.set(imported + running.values().sum::<u64>());
        Ok(jobs.is_empty().then_some(()))
    })?;
    Ok(())
}

/// Records a job's end in the ledger: completed → imported; failed → back to the bucket
/// state (an error once a chunk's jobs failed `max_attempts` times). A two-phase job (3.0)
/// waiting Uncommitted is committed when it read the stage's rows of its files, and aborted
/// otherwise: its files are then checked in the bucket and sent again. Returns whether it ended.
fn job_ended(
    milvus: &Milvus,
    d: &ImportJob,
    files: &[String],
    sc: StagedCollection,
    book: &mut LedgerBook,
    opts: &ImportOptions,
) -> Result<bool> {
    let (reason, back_to) = match d.state {
        JobState::Completed => {
            for f in files {
                book.get().chunk(f).set_state(ChunkState::Imported);
            }
            return Ok(true);
        }
        JobState::Uncommitted => {
            let want = sc
                .chunks()
                .iter()
                .filter(|c| files.contains(&c.file))
                .map(|c| c.rows)
                .sum();
            match milvus.settle_uncommitted(d, Some(want))? {
                None => return Ok(false),
                // What the server read is not what the stage holds: the upload is checked
                // again before the next job.
                Some(why) => (why, ChunkState::Pending),
            }
        }
        JobState::Failed => (
            d.reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "no reason given".into()),
            // Back to the bucket state: this run or the next sends it again.
            ChunkState::Uploaded,
        ),
        _ => return Ok(false),
    };
    let mut exhausted = false;
    for f in files {
        let l = book.get().chunk(f);
        l.last_error = Some(reason.clone());
        exhausted |= l.attempts >= opts.max_attempts;
        l.state = back_to;
        l.retire_job();
    }
    book.save()?;
    if exhausted {
        return Err(Error::Other(format!(
            "import job {} failed for {}: {reason}. Files: {}. Fix the cause and run the same command again (only these files are sent again)",
            d.job_id,
            sc.entry.mapping.target,
            files.join(", ")
        )));
    }
    tracing::warn!(job = %d.job_id, %reason, "import job failed; its files will be sent again");
    Ok(true)
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
