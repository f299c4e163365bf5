//! The rows a sync pass sends for one range, written as one Parquet file (as the export stages
//! rows) that the stage keeps as its record of the pass; a range whose changed rows reach
//! `--bulk-over` sends that file through bulk import: uploaded, its ids deleted from the
//! target, imported by one job. Milvus's import cannot replace rows, so the delete comes first:
//! the changed points are missing from the target until the job ends.
//!
//! Resume: the object key (unique per pass and range) is recorded beside the file
//! (`<file>.job`) before the job is created; a rerun first waits for any job that reads it, then
//! redoes the range (delete and import again), so no row is imported twice. The marker goes only
//! once that job is known to have ended.

use crate::error::{Error, Result};
use crate::sink::milvus::{JobState, Milvus};
use crate::sink::object_store::{StorageConfig, Uploader};
use crate::stage::Stage;
use crate::stage::StagedWriter;
use crate::stage::sync_state::FileRef;
use crate::stage::writer::{ChunkOptions, WrittenFile};
use crate::transform::batch::arrow_schema;
use crate::transform::mapping::CollectionMapping;
use arrow::array::BooleanArray;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use std::path::PathBuf;
use std::time::Duration;

/// `--bulk-over N` with the bucket the target imports from.
#[derive(Debug, Clone)]
pub struct BulkDelta {
    pub storage: StorageConfig,
    /// Changed rows of one range from which the range goes through bulk import.
    pub over: usize,
    /// Time between two looks at a running job.
    pub poll: Duration,
    /// A job whose progress does not move for this long stops the sync (it stays recorded).
    pub stall_timeout: Duration,
}

/// A file of rows being written into the stage's sync record, as the export writes chunks
/// (its row-group sizing for the collection, its default zstd level).
pub struct DeltaFile<'a> {
    stage: &'a Stage,
    writer: Option<StagedWriter<'a>>,
    rel: String,
    schema: SchemaRef,
    options: ChunkOptions,
}

/// A finished delta file.
pub struct WrittenDelta {
    pub rel: String,
    pub written: WrittenFile,
}

impl WrittenDelta {
    /// The file as the sync state records it.
    pub fn file_ref(&self) -> FileRef {
        FileRef {
            file: self.rel.clone(),
            sha256: self.written.sha256.clone(),
            bytes: self.written.bytes,
        }
    }
}

impl<'a> DeltaFile<'a> {
    /// The file `rel` of the stage (a `layout::sync_*` name) of rows of mapping `m`.
    pub fn new(stage: &'a Stage, rel: String, m: &CollectionMapping) -> DeltaFile<'a> {
        DeltaFile {
            stage,
            writer: None,
            rel,
            schema: arrow_schema(m),
            options: ChunkOptions::defaults_for(m),
        }
    }

    /// Appends the rows of `batch` that `keep` marks.
    pub fn write(&mut self, batch: &RecordBatch, keep: Vec<bool>) -> Result<()> {
        if !keep.iter().any(|k| *k) {
            return Ok(());
        }
        let picked = arrow::compute::filter_record_batch(batch, &BooleanArray::from(keep))
            .map_err(|e| Error::format(self.rel.clone(), e))?;
        let w = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(self.stage.chunk_writer(
                &self.rel,
                self.schema.clone(),
                self.options,
            )?),
        };
        w.write(&picked)
    }

    /// Makes the file durable; `None` when no row was written.
    pub fn finish(self) -> Result<Option<WrittenDelta>> {
        match self.writer {
            None => {
                self.stage.remove_file(&self.rel);
                Ok(None)
            }
            Some(w) => Ok(Some(WrittenDelta {
                written: w.finish()?,
                rel: self.rel,
            })),
        }
    }
}

/// Where a range's delta goes and how its job is followed.
pub struct DeltaImport<'a> {
    pub stage: &'a Stage,
    pub milvus: &'a Milvus,
    pub bulk: &'a BulkDelta,
    pub target: &'a str,
    pub collection: &'a str,
    pub range: usize,
    /// The delta file's name in the stage (unique per pass and range, or per repair).
    pub rel: String,
}

impl DeltaImport<'_> {
    fn job_file(&self) -> PathBuf {
        self.stage.job_marker(&self.rel)
    }

    /// Before a range is read again: waits for the job an earlier run created for it, if any
    /// (its rows would otherwise land after this run's delete). A job that failed is fine (the
    /// range is redone from a delete); one that cannot be waited for keeps its marker and
    /// stops the sync.
    pub fn settle_earlier(&self) -> Result<()> {
        let Ok(key) = std::fs::read_to_string(self.job_file()) else {
            return Ok(());
        };
        let found = self.milvus.find_job_reading(
            self.target,
            std::slice::from_ref(&key),
            &Default::default(),
            Duration::from_secs(120),
        )?;
        if let Some(job) = found {
            // Whatever it ended with, the range is redone from a delete.
            // A two-phase job still uncommitted is aborted: none of its rows ever land.
            let j = self.milvus.wait_job(
                &job,
                self.target,
                self.bulk.poll,
                self.bulk.stall_timeout,
                None,
            )?;
            if j.state == JobState::Failed {
                tracing::warn!(job = %job, "the earlier import job of this range failed; the range is sent again");
            }
        }
        let _ = std::fs::remove_file(self.job_file());
        Ok(())
    }

    /// Deletes the file's ids from the target (`batch` per request, read from its id column),
    /// uploads the file and imports it to the end.
    pub fn run(&self, file: &WrittenDelta, id_field: &str, batch: usize) -> Result<()> {
        // On an `s3://` stage the file went up to the stage when it was finished (and left
        // the working copy): fetched back, checked.
        let local = self.stage.sync_file(&crate::stage::sync_state::FileRef {
            file: file.rel.clone(),
            sha256: file.written.sha256.clone(),
            bytes: file.written.bytes,
        })?;
        crate::stage::reader::for_each_id_batch(&local, id_field, batch.max(1), |ids| {
            for f in crate::verify::id_filters(id_field, &ids) {
                self.milvus.delete(self.target, &f)?;
            }
            Ok(())
        })?;
        let up = Uploader::s3(self.bulk.storage.clone())?;
        let key = up.import_key(&file.rel, &file.written.sha256);
        up.put_file(&local, &key, Some(&file.written.sha256))?;
        crate::stage::fsutil::write_atomic(&self.job_file(), key.as_bytes())?;
        let job = self
            .milvus
            // A pass run again may send the same delta file after a failed job: each creation
            // is its own attempt (the marker, not the key, finds an earlier run's job). Random,
            // not the clock: a run started again within the second of a failed job's would send
            // that job's Idempotency-Key, and a server honouring it answers the failed job.
            .import_create(
                self.target,
                std::slice::from_ref(&key),
                rand::random::<u32>(),
            )?;
        tracing::info!(collection = self.collection, range = self.range, job = %job, rows = file.written.rows, "sync delta import started");
        self.wait(&job, file.written.rows)?;
        let _ = std::fs::remove_file(self.job_file());
        Ok(())
    }

    fn wait(&self, job: &str, rows: u64) -> Result<()> {
        let j = self.milvus.wait_job(
            job,
            self.target,
            self.bulk.poll,
            self.bulk.stall_timeout,
            Some(rows),
        )?;
        if j.state == JobState::Failed {
            return Err(Error::Other(format!(
                "import job {job} of {} (collection {}, range {}) failed: {}; fix the cause and run the same command again (it deletes the file's ids and imports it again)",
                self.rel,
                self.collection,
                self.range,
                j.reason.unwrap_or_default()
            )));
        }
        Ok(())
    }
}
