//! `q2z migrate` overlaps the two halves: chunk files go up to the import bucket as soon as the
//! export records them, so the import that follows finds them there and only starts the jobs.

use crate::error::Result;
use crate::stage::import_state::{ChunkState, ImportState};
use crate::stage::manifest::Manifest;
use crate::target::upload::{StorageConfig, Uploader};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Files sent while the export was running, and after it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct EarlyUploads {
    pub during_export: u64,
    pub after_export: u64,
}

/// Uploads every chunk the manifest records until `done` is set and all recorded chunks are up.
/// Chunks an earlier import already handled are skipped.
pub fn upload_while_exporting(
    stage: &Path,
    cfg: StorageConfig,
    done: &AtomicBool,
) -> Result<EarlyUploads> {
    let up = Uploader::s3(cfg)?;
    let handled: HashSet<String> = ImportState::load(stage)?
        .targets
        .values()
        .flat_map(|t| t.values())
        .flat_map(|c| &c.chunks)
        .filter(|(_, l)| l.state != ChunkState::Pending)
        .map(|(f, _)| f.clone())
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut sent = EarlyUploads::default();
    loop {
        let finished = done.load(Ordering::SeqCst);
        if let Some(m) = Manifest::load(stage)? {
            for c in m.collections.values().flat_map(|e| &e.chunks) {
                if handled.contains(&c.file) || !seen.insert(c.file.clone()) {
                    continue;
                }
                crate::interrupt::check()?;
                let key = up.key_for(&c.file);
                if !up.holds(&key, c.bytes, &c.sha256, &stage.join(&c.file))? {
                    up.put_file(&stage.join(&c.file), &key, Some(&c.sha256))?;
                    if finished {
                        sent.after_export += 1;
                    } else {
                        sent.during_export += 1;
                    }
                }
            }
        }
        if finished {
            return Ok(sent);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
