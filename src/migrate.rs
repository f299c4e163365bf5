//! `q2z migrate`: export then import in one run on one locked stage, overlapping the halves —
//! chunk files go up to the import bucket as soon as the export records them, so the import
//! that follows finds them there and only starts the jobs.

use crate::error::Result;
use crate::export::{CollectionReport, ExportOptions, export};
use crate::import::{ImportMode, ImportOptions, import};
use crate::sink::milvus::Milvus;
use crate::sink::object_store::Uploader;
use crate::source::SharedSource;
use crate::stage::Stage;
use crate::stage::ledger::ChunkState;
use crate::stage::manifest::SourceInfo;
use crate::verify::VerifyReport;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Files sent while the export was running, and after it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct EarlyUploads {
    pub during_export: u64,
    pub after_export: u64,
}

/// Exports `sources` into `stage`, uploading chunks as they are written (bulk mode), then
/// imports the exported collections. Returns both halves' reports.
pub fn migrate(
    stage: &Stage,
    sources: &[SharedSource],
    info: SourceInfo,
    export_opts: &ExportOptions,
    milvus: &Milvus,
    import_opts: &ImportOptions,
) -> Result<(Vec<CollectionReport>, Vec<VerifyReport>)> {
    let upload_to = match import_opts.mode {
        ImportMode::Bulk => import_opts.storage.clone(),
        ImportMode::Upsert => None,
    };
    let done = AtomicBool::new(false);
    let exported = std::thread::scope(|s| {
        let uploader = upload_to.map(|cfg| {
            let done = &done;
            s.spawn(move || upload_while_exporting(stage, Uploader::s3(cfg)?, done))
        });
        let r = export(stage, sources, info, export_opts);
        done.store(true, Ordering::SeqCst);
        if let Some(h) = uploader {
            match h.join() {
                Ok(Ok(n)) => tracing::info!(
                    during = n.during_export,
                    after = n.after_export,
                    "files uploaded while exporting"
                ),
                Ok(Err(e)) => {
                    tracing::warn!("early upload stopped ({e}); the import uploads the rest")
                }
                Err(_) => tracing::warn!("early upload stopped; the import uploads the rest"),
            }
        }
        r
    })?;
    let mut opts = import_opts.clone();
    opts.collections = exported.iter().map(|r| r.collection.clone()).collect();
    let reports = import(stage, milvus, &opts)?;
    Ok((exported, reports))
}

/// Uploads every chunk the manifest records until `done` is set and all recorded chunks are up.
/// Chunks an earlier import already handled are skipped.
pub fn upload_while_exporting(
    stage: &Stage,
    up: Uploader,
    done: &AtomicBool,
) -> Result<EarlyUploads> {
    let handled: HashSet<String> = stage
        .ledger()?
        .targets
        .values()
        .flat_map(|t| t.values())
        .flat_map(|c| &c.chunks)
        .filter(|(_, l)| l.state != ChunkState::Pending)
        .map(|(f, _)| f.clone())
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut sent = EarlyUploads::default();
    let ended = crate::wait::until(Duration::from_millis(300), Duration::MAX, || {
        let finished = done.load(Ordering::SeqCst);
        if let Some(m) = stage.manifest()? {
            for c in m.collections.values().flat_map(|e| &e.chunks) {
                if handled.contains(&c.file) || !seen.insert(c.file.clone()) {
                    continue;
                }
                crate::interrupt::check()?;
                let key = crate::import::bulk::object_key(stage, &up, &c.file, &c.sha256);
                let path = stage.local_path(&c.file);
                if !up.holds(&key, c.bytes, &c.sha256, &path)? {
                    up.put_file(&path, &key, Some(&c.sha256))?;
                    if finished {
                        sent.after_export += 1;
                    } else {
                        sent.during_export += 1;
                    }
                }
            }
        }
        Ok(finished.then_some(()))
    })?;
    debug_assert!(ended.is_some());
    Ok(sent)
}
