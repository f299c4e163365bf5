//! Stage: the portable staging directory — Parquet chunks, `manifest.json`, the import ledger,
//! set-aside files — owned by one [`Stage`] value that holds the directory's lock for the run.
//! Export, import, verify, repair and status reach the directory only through it.

pub mod evidence;
pub mod fsutil;
pub mod layout;
pub mod lease;
pub mod ledger;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod reader;
pub mod remote;
pub mod sync_lines;
pub mod sync_state;
pub mod writer;

use crate::error::{Error, Result};
use layout::{IMPORT_STATE, MANIFEST, SCRATCH, is_own_file, is_safe_dir_name};
use ledger::ImportLedger;
use lock::StageLock;
use manifest::{Chunk, CollectionEntry, Manifest, stage_err};
use std::path::{Path, PathBuf};

/// A staging directory opened for one run.
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
    _lock: Option<StageLock>,
    /// For a stage on object storage: the bucket side (`dir` is then the working copy).
    remote: Option<remote::RemoteStage>,
}

/// What a run needs of the stage it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Created if missing (export, migrate).
    Create,
    /// Must exist (import, verify).
    Existing,
    /// Read only (status, `verify --stage-only`).
    Read,
}

impl Stage {
    /// Opens (creating it if needed) for a run that changes it; the lock is held until the
    /// value is dropped, so a second run on the same directory is refused meanwhile.
    pub fn open(dir: &Path, what: &str) -> Result<Stage> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = StageLock::acquire(dir, what)?;
        Ok(Stage {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
            remote: None,
        })
    }

    /// Opens the `--stage` a command names: a directory, or `s3://bucket/prefix` (worked on in
    /// the local copy `cache`, by default one of q2z's own in the system temp directory).
    pub fn open_at(stage: &Path, cache: Option<&Path>, what: &str, need: Need) -> Result<Stage> {
        if !remote::is_remote(stage) {
            return match need {
                Need::Create => Stage::open(stage, what),
                Need::Existing => Stage::open_existing(stage, what),
                Need::Read => Stage::open_read(stage),
            };
        }
        let url = stage.to_string_lossy().into_owned();
        let mut r = remote::RemoteStage::connect(&url)?;
        if need != Need::Read {
            r.take_lease(what)?;
        }
        let cache = cache
            .map(Path::to_path_buf)
            .unwrap_or_else(|| remote::RemoteStage::default_cache(&url));
        let mut s = Stage::open(&cache, what)?;
        r.pull_state(&cache)?;
        let m = Manifest::load(&cache)?;
        if need != Need::Create && m.is_none() {
            return Err(stage_err(
                stage,
                format!(
                    "holds no staged export (no {MANIFEST} there); give the s3:// stage that q2z export wrote"
                ),
            ));
        }
        if let Some(m) = &m {
            r.mark_present(m.collections.values().flat_map(entry_files).map(|(f, _)| f));
        }
        tracing::info!(stage = %url, cache = %cache.display(), "stage on object storage; working copy in the cache");
        s.remote = Some(r);
        Ok(s)
    }

    /// The object-storage side of the stage, if it lives there.
    pub fn remote(&self) -> Option<&remote::RemoteStage> {
        self.remote.as_ref()
    }

    /// Sends a staged file of the working copy to the bucket now (a stage on object storage;
    /// nothing to do for a directory). [`Stage::save_manifest`] sends what is not there yet.
    pub fn publish(&self, rel: &str, sha256: &str) -> Result<()> {
        match &self.remote {
            Some(r) => r.publish(&self.dir, rel, sha256),
            None => Ok(()),
        }
    }

    /// Opens an existing staging directory for a run that changes it (import, verify): a
    /// mistyped `--stage` is an error, not a new empty directory.
    pub fn open_existing(dir: &Path, what: &str) -> Result<Stage> {
        if !dir.is_dir() {
            return Err(stage_err(
                dir,
                "does not exist; give the --stage directory that q2z export wrote",
            ));
        }
        Stage::open(dir, what)
    }

    /// Opens an existing directory to read only (`status`, `verify --stage-only`): no lock is
    /// taken, as every file q2z writes there is replaced atomically.
    pub fn open_read(dir: &Path) -> Result<Stage> {
        if !dir.is_dir() {
            return Err(stage_err(
                dir,
                "does not exist; give the --stage directory that q2z export wrote",
            ));
        }
        Ok(Stage {
            dir: dir.to_path_buf(),
            _lock: None,
            remote: None,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest, if an export has started here (checked: see [`Manifest::validate`]).
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        Manifest::load(&self.dir)
    }

    /// The manifest of an export, or an error that says to export first.
    pub fn require_manifest(&self) -> Result<Manifest> {
        self.manifest()?.ok_or_else(|| {
            stage_err(
                &self.dir,
                format!("holds no staged export (no {MANIFEST}); run q2z export first, or give the directory it wrote"),
            )
        })
    }

    /// Saves the manifest atomically; on object storage, every file it lists goes up first,
    /// then the manifest with a conditional put.
    pub fn save_manifest(&self, m: &Manifest) -> Result<()> {
        m.save(&self.dir)?;
        if let Some(r) = &self.remote {
            for (rel, sha) in m.collections.values().flat_map(entry_files) {
                r.publish(&self.dir, rel, sha)?;
            }
            r.push_state(&self.dir, MANIFEST)?;
        }
        Ok(())
    }

    /// The import ledger (empty if no import ran).
    pub fn ledger(&self) -> Result<ImportLedger> {
        ImportLedger::load(&self.dir)
    }

    /// Saves the import ledger atomically (on object storage: a conditional put).
    pub fn save_ledger(&self, s: &ImportLedger) -> Result<()> {
        s.save(&self.dir)?;
        if let Some(r) = &self.remote {
            r.push_state(&self.dir, IMPORT_STATE)?;
        }
        Ok(())
    }

    /// Starts the staged Parquet file `rel` (a [`layout`] name): written under a temp name and
    /// put in place — fsynced, and on object storage uploaded — only by
    /// [`StagedWriter::finish`].
    pub fn chunk_writer(
        &self,
        rel: &str,
        schema: arrow::datatypes::SchemaRef,
        o: writer::ChunkOptions,
    ) -> Result<StagedWriter<'_>> {
        self.parent_of(rel)?;
        let inner = writer::ChunkWriter::create(
            &self.file(rel),
            schema,
            o.row_bytes,
            o.zstd_level,
            o.compress_vectors,
        )?;
        Ok(StagedWriter {
            stage: self,
            rel: rel.to_string(),
            inner,
        })
    }

    /// Creates the directory a staged file goes in (a fresh working copy of an `s3://` stage
    /// holds only what was fetched).
    fn parent_of(&self, rel: &str) -> Result<()> {
        if let Some(d) = self.file(rel).parent()
            && !d.is_dir()
        {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(())
    }

    /// Writes a small staged file `rel` (a [`layout`] name) atomically; returns its sha256.
    pub fn write_small(&self, rel: &str, bytes: &[u8]) -> Result<String> {
        use sha2::Digest;
        self.parent_of(rel)?;
        fsutil::write_atomic(&self.file(rel), bytes)?;
        Ok(hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// Where a staged file listed by the manifest is (or would be) in the working copy, not
    /// fetched (a stage on object storage may not hold it locally).
    pub fn local_path(&self, rel: &str) -> PathBuf {
        self.file(rel)
    }

    /// Removes a file q2z wrote into the stage (a name from [`layout`]), if it is there.
    pub fn remove_file(&self, rel: &str) {
        let _ = std::fs::remove_file(self.file(rel));
    }

    /// The path of a staged file listed by the manifest (checked when the manifest was read).
    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The directory of a collection's files, created if needed.
    pub fn collection_dir(&self, name: &str) -> Result<PathBuf> {
        if !is_safe_dir_name(name) {
            return Err(Error::Mapping {
                collection: name.escape_debug().to_string(),
                message: "this collection name cannot be a directory name in the stage (it holds '/', '\\', ':', a control character, starts with '.', or is too long); rename the collection in Qdrant or export the others with -c".into(),
            });
        }
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        Ok(d)
    }

    /// Where snapshots are unpacked when no `--scratch` is given.
    pub fn default_scratch(&self) -> PathBuf {
        self.dir.join(SCRATCH)
    }

    /// One staged collection of a manifest.
    pub fn collection<'a>(
        &'a self,
        m: &'a Manifest,
        name: &'a str,
    ) -> Option<StagedCollection<'a>> {
        m.collections.get(name).map(|entry| StagedCollection {
            stage: self,
            name,
            entry,
        })
    }

    /// Every collection of the manifest, in name order.
    pub fn collections<'a>(&'a self, m: &'a Manifest) -> Vec<StagedCollection<'a>> {
        m.collections
            .iter()
            .map(|(name, entry)| StagedCollection {
                stage: self,
                name,
                entry,
            })
            .collect()
    }

    /// Removes what q2z wrote here (`export --restart`): the manifest, the ledger and the
    /// q2z files in each collection directory the manifest names; nothing else. A manifest
    /// that does not pass its checks names no directory to clean.
    pub fn reset(&self) -> Result<()> {
        if let Some(r) = &self.remote {
            return Err(stage_err(
                Path::new(r.url()),
                "is on object storage, where q2z does not throw a stage away; export into another prefix, or delete this one yourself",
            ));
        }
        let names: Vec<String> = match Manifest::load(&self.dir) {
            Ok(Some(m)) => m.collections.into_keys().collect(),
            _ => Vec::new(),
        };
        for name in names {
            let dir = self.dir.join(&name);
            if dir.is_dir() {
                self.remove_own_files(&dir, |_| true)?;
                let _ = std::fs::remove_dir(&dir);
            }
        }
        for f in [
            MANIFEST,
            IMPORT_STATE,
            layout::SYNC_STATE,
            evidence::EVIDENCE,
        ] {
            let p = self.dir.join(f);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        Ok(())
    }

    /// Deletes temp files and chunk files of a collection that the manifest does not list (a
    /// crash after a rename but before the manifest was saved): they would otherwise be
    /// imported twice. Returns the collection directory.
    pub fn clean_collection_dir(&self, name: &str, entry: &CollectionEntry) -> Result<PathBuf> {
        let dir = self.collection_dir(name)?;
        let known: std::collections::HashSet<String> = entry
            .chunks
            .iter()
            .map(|c| c.file.clone())
            .chain(
                entry
                    .ranges
                    .iter()
                    .flat_map(|r| r.set_aside.iter().map(|f| f.file.clone())),
            )
            .collect();
        // Sync state is not listed by the manifest and stays (`export --restart` removes it).
        self.remove_own_files(&dir, |rel| {
            !known.contains(rel) && !rel.rsplit('/').next().is_some_and(layout::is_sync_file)
        })?;
        Ok(dir)
    }

    /// Removes the q2z files (by name) of a collection directory for which `pick(rel)` holds.
    fn remove_own_files(&self, dir: &Path, pick: impl Fn(&str) -> bool) -> Result<()> {
        let coll = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && is_own_file(&name) && pick(&format!("{coll}/{name}")) {
                tracing::info!(file = %e.path().display(), "removing a file left by an earlier run");
                std::fs::remove_file(e.path()).map_err(|x| Error::io(e.path(), x))?;
            }
        }
        Ok(())
    }

    /// Refuses any staged file of `entry` whose size or sha256 differs from the manifest (on
    /// object storage: as the bucket reports them, nothing downloaded).
    pub fn check_files(&self, entry: &CollectionEntry) -> Result<()> {
        if let Some(r) = &self.remote {
            for c in &entry.chunks {
                if !r.holds(&self.dir, &c.file, c.bytes, &c.sha256)? {
                    return Err(stage_err(
                        Path::new(r.url()),
                        format!(
                            "staged file {} is missing there or differs from the manifest (size or sha256); export it again into a new prefix",
                            c.file
                        ),
                    ));
                }
            }
            return Ok(());
        }
        for c in &entry.chunks {
            let (sha, bytes) = writer::sha256_file(&self.file(&c.file)).map_err(|_| {
                stage_err(
                    &self.dir,
                    format!(
                        "staged file {} is missing; copy the whole staging directory again",
                        c.file
                    ),
                )
            })?;
            if sha != c.sha256 || bytes != c.bytes {
                return Err(stage_err(
                    &self.dir,
                    format!(
                        "staged file {} is damaged (sha256 or size differs from the manifest); it will not be imported. Copy it again from the export machine",
                        c.file
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Every file a collection entry lists, with its sha256: chunks and set-aside files.
fn entry_files(e: &CollectionEntry) -> impl Iterator<Item = (&str, &str)> {
    e.chunks
        .iter()
        .map(|c| (c.file.as_str(), c.sha256.as_str()))
        .chain(
            e.ranges
                .iter()
                .flat_map(|r| &r.set_aside)
                .map(|f| (f.file.as_str(), f.sha256.as_str())),
        )
}

/// A staged Parquet file being written (see [`Stage::chunk_writer`]).
pub struct StagedWriter<'a> {
    stage: &'a Stage,
    rel: String,
    inner: writer::ChunkWriter,
}

impl StagedWriter<'_> {
    /// Appends a batch.
    pub fn write(&mut self, batch: &arrow::record_batch::RecordBatch) -> Result<()> {
        self.inner.write(batch)
    }

    /// Bytes written so far plus what is buffered.
    pub fn approx_bytes(&self) -> u64 {
        self.inner.approx_bytes()
    }

    /// Drops the file being written.
    pub fn abort(self) {
        self.inner.abort()
    }

    /// Puts the file in place (fsynced) and, on object storage, uploads it.
    pub fn finish(self) -> Result<writer::WrittenFile> {
        let w = self.inner.finish()?;
        self.stage.publish(&self.rel, &w.sha256)?;
        Ok(w)
    }
}

/// One staged collection: its manifest entry and where its files are.
#[derive(Debug, Clone, Copy)]
pub struct StagedCollection<'a> {
    stage: &'a Stage,
    /// Qdrant collection name (the manifest key).
    pub name: &'a str,
    /// Its manifest entry.
    pub entry: &'a CollectionEntry,
}

impl<'a> StagedCollection<'a> {
    /// The stage it belongs to.
    pub fn stage(&self) -> &'a Stage {
        self.stage
    }

    /// Its chunks, in range and sequence order.
    pub fn chunks(&self) -> &'a [Chunk] {
        &self.entry.chunks
    }

    /// Where a chunk is (or would be) in the working copy, not fetched.
    pub fn local_path(&self, c: &Chunk) -> PathBuf {
        self.stage.local_path(&c.file)
    }

    /// The chunk recorded under a file name.
    pub fn chunk(&self, file: &str) -> Option<&'a Chunk> {
        self.entry.chunks.iter().find(|c| c.file == file)
    }

    /// The local path of a chunk file (on object storage: downloaded into the working copy
    /// first, unless it is there).
    pub fn chunk_path(&self, c: &Chunk) -> Result<PathBuf> {
        match &self.stage.remote {
            Some(r) => r.fetch(&self.stage.dir, &c.file, c.bytes),
            None => Ok(self.stage.file(&c.file)),
        }
    }

    /// Rows staged.
    pub fn rows(&self) -> u64 {
        self.entry.staged_rows()
    }

    /// Reads a chunk back as Milvus rows, `batch` rows at a time.
    pub fn for_each_batch(
        &self,
        c: &Chunk,
        batch: usize,
        f: impl FnMut(Vec<reader::Row>) -> Result<()>,
    ) -> Result<()> {
        reader::for_each_batch(&self.chunk_path(c)?, &self.entry.mapping, batch, f)
    }

    /// The staged ids of a chunk, as JSON values of the primary key.
    pub fn chunk_ids(&self, c: &Chunk) -> Result<Vec<serde_json::Value>> {
        reader::read_ids(&self.chunk_path(c)?, &self.entry.mapping.id_field)
    }

    /// Rows of a chunk staged with an empty sparse vector (the point had none).
    pub fn chunk_empty_sparse(&self, c: &Chunk) -> Result<u64> {
        reader::count_empty_sparse(&self.chunk_path(c)?, &self.entry.mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_removes_only_what_q2z_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let stage = Stage::open(dir.path(), "test").unwrap();
        let c = stage.collection_dir("docs").unwrap();
        std::fs::write(c.join("part-0000-000000.parquet"), b"x").unwrap();
        std::fs::write(c.join("notes.txt"), b"user's").unwrap();
        std::fs::write(dir.path().join(MANIFEST), br#"{"format_version":1,"tool_version":"0","source":{"kind":"rest","url":"u"},"collections":{}}"#).unwrap();
        stage.reset().unwrap();
        assert!(
            c.join("notes.txt").exists(),
            "a file q2z did not write stays"
        );
        assert!(!dir.path().join(MANIFEST).exists());
        assert!(stage.collection_dir("../evil").is_err());
        assert!(stage.collection_dir(".scratch").is_err());
    }
}
