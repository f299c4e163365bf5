//! Large sync deltas through bulk import: a range whose changed rows reach `--bulk-over` is
//! written as one Parquet file (as the export stages rows), uploaded, its ids deleted from the
//! target, and imported by one job. Milvus's import cannot replace rows, so the delete comes
//! first: the changed points are missing from the target until the job ends.
//!
//! Resume: the object key is recorded beside the file (`sync-delta-RRRR.job`) before the job
//! is created; a rerun first waits for any job that reads it, then redoes the range (delete
//! and import again), so no row is imported twice.

use crate::error::{Error, Result};
use crate::sink::milvus::{JobState, Milvus};
use crate::sink::object_store::{StorageConfig, Uploader};
use crate::stage::fsutil::write_atomic;
use crate::stage::writer::{ChunkWriter, WrittenFile};
use crate::stage::{Stage, layout};
use arrow::array::BooleanArray;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::Value;
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
}

/// The delta file of one range being written.
pub struct DeltaFile {
    writer: Option<ChunkWriter>,
    path: PathBuf,
    rel: String,
    schema: SchemaRef,
}

impl DeltaFile {
    pub fn new(stage: &Stage, collection: &str, range: usize, schema: SchemaRef) -> DeltaFile {
        let rel = layout::sync_delta_file(collection, range);
        DeltaFile {
            writer: None,
            path: stage.file(&rel),
            rel,
            schema,
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
            None => self.writer.insert(ChunkWriter::create(
                &self.path,
                self.schema.clone(),
                4096,
                3,
                false,
            )?),
        };
        w.write(&picked)
    }

    /// Drops what was written (the range's delta went through upserts).
    pub fn abandon(self) {
        if let Some(w) = self.writer {
            w.abort();
        }
    }

    fn finish(self) -> Result<Option<(PathBuf, String, WrittenFile)>> {
        match self.writer {
            None => Ok(None),
            Some(w) => Ok(Some((self.path, self.rel, w.finish()?))),
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
}

impl DeltaImport<'_> {
    fn job_file(&self) -> PathBuf {
        self.stage.file(&format!(
            "{}.job",
            layout::sync_delta_file(self.collection, self.range)
        ))
    }

    /// Before a range is read again: waits for the job an earlier run created for it, if any
    /// (its rows would otherwise land after this run's delete).
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
            let _ = self.wait(&job, &key);
        }
        let _ = std::fs::remove_file(self.job_file());
        Ok(())
    }

    /// Deletes the delta's ids from the target, uploads the file and imports it to the end.
    pub fn run(&self, file: DeltaFile, ids: &[Value], id_field: &str) -> Result<()> {
        let Some((path, rel, written)) = file.finish()? else {
            return Ok(());
        };
        for f in crate::verify::id_filters(id_field, ids) {
            self.milvus.delete(self.target, &f)?;
        }
        let up = Uploader::s3(self.bulk.storage.clone())?;
        let key = up.key_for(&rel);
        up.put_file(&path, &key, Some(&written.sha256))?;
        write_atomic(&self.job_file(), key.as_bytes())?;
        let job = self
            .milvus
            .import_create(self.target, std::slice::from_ref(&key))?;
        tracing::info!(collection = self.collection, range = self.range, job = %job, rows = written.rows, "sync delta import started");
        self.wait(&job, &key)?;
        let _ = std::fs::remove_file(self.job_file());
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    fn wait(&self, job: &str, key: &str) -> Result<()> {
        loop {
            crate::interrupt::check()?;
            let j = self.milvus.import_describe(job)?;
            match j.state {
                JobState::Completed => return Ok(()),
                JobState::Failed => {
                    return Err(Error::Other(format!(
                        "import job {job} of the sync delta {key} (collection {}, range {}) failed: {}; fix the cause and run the same sync again (it deletes the delta's ids and imports it again)",
                        self.collection,
                        self.range,
                        j.reason.unwrap_or_default()
                    )));
                }
                _ => std::thread::sleep(self.bulk.poll),
            }
        }
    }
}
