//! Stage: the portable staging directory — Parquet chunks, `manifest.json`, the import ledger,
//! set-aside files — owned by one [`Stage`] value that holds the directory's lock for the run.
//! Export, import, verify, repair and status reach the directory only through it.

pub mod fsutil;
pub mod layout;
pub mod ledger;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod reader;
pub mod writer;

use crate::error::{Error, Result};
use layout::{IMPORT_STATE, MANIFEST, SCRATCH, is_own_file, is_safe_dir_name};
use ledger::ImportState;
use lock::StageLock;
use manifest::{Chunk, CollectionEntry, Manifest, stage_err};
use std::path::{Path, PathBuf};

/// A staging directory opened for one run.
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
    _lock: Option<StageLock>,
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
        })
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

    /// Saves the manifest atomically.
    pub fn save_manifest(&self, m: &Manifest) -> Result<()> {
        m.save(&self.dir)
    }

    /// The import ledger (empty if no import ran).
    pub fn ledger(&self) -> Result<ImportState> {
        ImportState::load(&self.dir)
    }

    /// Saves the import ledger atomically.
    pub fn save_ledger(&self, s: &ImportState) -> Result<()> {
        s.save(&self.dir)
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

    /// Removes what q2z wrote here (`export --restart`): the manifest, the ledger and the
    /// q2z files in each collection directory the manifest names; nothing else. A manifest
    /// that does not pass its checks names no directory to clean.
    pub fn reset(&self) -> Result<()> {
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
        for f in [MANIFEST, IMPORT_STATE] {
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
        self.remove_own_files(&dir, |rel| !known.contains(rel))?;
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

    /// Refuses any staged file of `entry` whose size or sha256 differs from the manifest.
    pub fn check_files(&self, entry: &CollectionEntry) -> Result<()> {
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

    /// The chunk recorded under a file name.
    pub fn chunk(&self, file: &str) -> Option<&'a Chunk> {
        self.entry.chunks.iter().find(|c| c.file == file)
    }

    /// The path of a chunk file.
    pub fn chunk_path(&self, c: &Chunk) -> PathBuf {
        self.stage.file(&c.file)
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
        reader::for_each_batch(&self.chunk_path(c), &self.entry.mapping, batch, f)
    }

    /// The staged ids of a chunk, as JSON values of the primary key.
    pub fn chunk_ids(&self, c: &Chunk) -> Result<Vec<serde_json::Value>> {
        reader::read_ids(&self.chunk_path(c), &self.entry.mapping.id_field)
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
