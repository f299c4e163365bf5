//! The import half: staging directory → target, resumable through the import ledger
//! (docs/design.md §3: a file is never imported twice; job ids are recorded before
//! polling). [`bulk`] uploads files and runs import jobs, [`upsert`] sends REST batches.

pub mod bulk;
pub mod ledger_book;
pub mod repair;
pub mod repair_synced;
pub mod upsert;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::sink::milvus::Milvus;
use crate::sink::milvus::fit::EmptySparse;
use crate::sink::milvus::version::Known;
use crate::sink::object_store::StorageConfig;
use crate::stage::ledger::{ChunkState, CollectionLedger};
use crate::stage::manifest::{ExportState, stage_err};
use crate::stage::{Stage, StagedCollection};
use crate::verify::{VerifyOptions, VerifyReport, verify_imported};
use ledger_book::LedgerBook;
use std::time::Duration;

pub use crate::stage::ledger::ImportMode;

/// Knobs of an import run.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub mode: ImportMode,
    pub into_existing: bool,
    pub drop_existing: bool,
    pub batch_bytes: usize,
    /// How the import is verified at its end.
    pub verify: VerifyOptions,
    pub collections: Vec<String>,
    pub storage: Option<StorageConfig>,
    pub quiet: bool,
    pub poll_interval: Duration,
    /// Jobs created for a chunk in one run before a failing job stops the run.
    pub max_attempts: u32,
    /// A job whose imported rows do not move for this long is reported as stuck.
    pub stall_timeout: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::Bulk,
            into_existing: false,
            drop_existing: false,
            batch_bytes: 8 << 20,
            verify: VerifyOptions::default(),
            collections: Vec::new(),
            storage: None,
            quiet: false,
            poll_interval: Duration::from_millis(500),
            max_attempts: 3,
            stall_timeout: Duration::from_secs(1800),
        }
    }
}

/// Imports every staged collection (or the chosen ones) and verifies each.
pub fn import(stage: &Stage, milvus: &Milvus, opts: &ImportOptions) -> Result<Vec<VerifyReport>> {
    let manifest = stage.require_manifest()?;
    for c in &opts.collections {
        if !manifest.collections.contains_key(c) {
            return Err(stage_err(
                stage.dir(),
                format!(
                    "holds no collection '{c}'; staged: {}",
                    manifest
                        .collections
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut reports = Vec::new();
    for name in manifest.collections.keys() {
        if !opts.collections.is_empty() && !opts.collections.contains(name) {
            continue;
        }
        let sc = stage.collection(&manifest, name).expect("listed");
        if sc.entry.state != ExportState::Exported {
            return Err(stage_err(
                stage.dir(),
                format!(
                    "collection '{name}' is not fully exported yet; run the same export command again to finish it"
                ),
            ));
        }
        stage.check_files(sc.entry)?;
        let mut book = LedgerBook::open(stage, milvus.url(), milvus.db(), name)?;
        book.get().forget_unknown(sc.entry);
        reports.push(import_collection(milvus, sc, &mut book, opts)?);
    }
    Ok(reports)
}

/// Creates the target collection, or adopts it (`--into-existing`) or replaces it
/// (`--drop-existing`); a collection this import created earlier is reused.
fn ensure_collection(
    milvus: &Milvus,
    sc: StagedCollection,
    ledger: &mut CollectionLedger,
    opts: &ImportOptions,
) -> Result<()> {
    let entry = sc.entry;
    let target = &entry.mapping.target;
    let exists = milvus.has_collection(target)?;
    if exists && !ledger.created {
        if opts.drop_existing {
            milvus.drop_collection(target)?;
        } else if opts.into_existing {
            let d = milvus.describe(target)?;
            if let Some((name, ty)) = d.missing_field(&entry.milvus_schema) {
                return Err(Error::Mapping {
                    collection: entry.mapping.source.clone(),
                    message: format!(
                        "--into-existing: the existing collection '{target}' has no field '{name}' of type {ty}; use --drop-existing or another target name"
                    ),
                });
            }
            ledger.created = true;
            ledger.shared = true;
            ledger.target_id = d.id();
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
        json_indexes(milvus, &entry.mapping);
        // A new collection holds none of what earlier sync passes sent.
        crate::stage::sync_state::forget(sc.stage(), sc)?;
    }
    ledger.created = true;
    if ledger.target_id.is_none() {
        ledger.target_id = milvus.describe(target)?.id();
    }
    Ok(())
}

/// Points staged with an empty sparse row (a missing sparse vector) on a release that takes
/// them in neither mode (before 2.4.12): refused before anything is created, with the fix,
/// instead of the server's error part-way. On 2.4.12–2.5.6 (REST only) a bulk import upserts
/// the chunks that hold one (`bulk::upsert_rest_only_chunks`). A release only probed is a lower
/// bound: it gets a warning where this mode may fail on them, nothing else.
fn check_empty_sparse(milvus: &Milvus, sc: StagedCollection, mode: ImportMode) -> Result<()> {
    let n: u64 = sc.entry.ranges.iter().map(|r| r.empty_sparse).sum();
    if n == 0 {
        return Ok(());
    }
    let server = milvus.server()?;
    let k = server.kind;
    if server.known == Known::Probed {
        let (takes, since) = match mode {
            ImportMode::Bulk => (
                k.imports_empty_sparse(),
                "a Parquet import takes them from 2.5.7",
            ),
            ImportMode::Upsert => (k.takes_empty_sparse(), "REST takes them from 2.4.12"),
        };
        if !takes {
            tracing::warn!(
                collection = sc.name,
                "{n} points are staged with an empty sparse row ({since}); the target's release is not known ({server}): if the import fails on them, give --milvus-version"
            );
        }
        return Ok(());
    }
    if EmptySparse::of(server, &sc.entry.mapping) != EmptySparse::Nowhere {
        return Ok(());
    }
    Err(Error::Mapping {
        collection: sc.entry.mapping.source.clone(),
        message: format!(
            "{n} points are staged with an empty sparse row (a sparse vector missing or empty), which the target refuses (REST takes them from 2.4.12, a Parquet import from 2.5.7; it is {server}). Nothing was created; import into a newer Milvus, or export again with missing_vector = \"error\" in the mapping file to name the points"
        ),
    })
}

/// Creates the JSON-path indexes of keys left in `$meta`; a target that refuses them (Milvus
/// before 2.5.11) is named in a warning, and the import goes on without them.
fn json_indexes(milvus: &Milvus, m: &crate::transform::mapping::CollectionMapping) {
    for ix in &m.json_indexes {
        if let Err(e) = milvus.post("/v2/vectordb/indexes/create", ix.request(&m.target)) {
            tracing::warn!(
                "collection {}: no JSON-path index on $meta key '{}' ({e}); it needs {}: filters on the key scan $meta. The import goes on",
                m.target,
                ix.key,
                crate::transform::json_index::NEEDS
            );
        }
    }
}

fn import_collection(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
    opts: &ImportOptions,
) -> Result<VerifyReport> {
    let entry = sc.entry;
    check_empty_sparse(milvus, sc, opts.mode)?;
    ensure_collection(milvus, sc, book.get(), opts)?;
    {
        let l = book.get();
        // Once a collection got upserts, its null-valued keys are gone (a Milvus rule): keep
        // saying so whatever mode later reruns use.
        if l.mode != Some(ImportMode::Upsert) {
            l.mode = Some(opts.mode);
        }
    }
    book.save()?;
    let progress = Progress::new(
        &format!("import {}", sc.name),
        sc.rows(),
        "rows",
        opts.quiet,
    );
    match opts.mode {
        ImportMode::Upsert => upsert::import_all(milvus, sc, book, opts, &progress)?,
        ImportMode::Bulk => bulk::import_all(milvus, sc, book, opts, &progress)?,
    }
    progress.finish();
    milvus.flush(&entry.mapping.target)?;
    milvus.load(&entry.mapping.target)?;
    let report = wait_and_verify(milvus, sc, book.get(), &opts.verify)?;
    book.get().verified = report.ok;
    book.save()?;
    Ok(report)
}

/// Imported rows may take a moment to become visible to a Strong count; poll briefly.
fn wait_and_verify(
    milvus: &Milvus,
    sc: StagedCollection,
    ledger: &CollectionLedger,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    crate::wait::until(Duration::from_millis(500), Duration::from_secs(30), || {
        let n = milvus.count(&sc.entry.mapping.target, "")?;
        Ok((n >= sc.rows()).then_some(()))
    })?;
    verify_imported(milvus, sc, Some(ledger), opts)
}

/// Settles a chunk whose job is unknown (forgotten after retention, or lost) by counting its
/// staged ids in the target: all there → imported; none → send again; some → delete exactly
/// those ids, send again.
pub fn settle_by_count(milvus: &Milvus, sc: StagedCollection, file: &str) -> Result<ChunkState> {
    let Some(c) = sc.chunk(file) else {
        return Ok(ChunkState::Pending);
    };
    milvus.flush(&sc.entry.mapping.target)?;
    let n = crate::verify::chunk_count_by_ids(milvus, sc, c)?;
    if n == c.rows {
        return Ok(ChunkState::Imported);
    }
    if n > 0 {
        tracing::warn!(file = %c.file, found = n, rows = c.rows, "partial or doubled chunk in the target; deleting its rows before sending it again");
        delete_chunk_rows(milvus, sc, c)?;
    }
    Ok(ChunkState::Uploaded)
}

/// Deletes exactly a chunk's staged ids from the target (rows of the same collection that did
/// not come from this chunk are left alone).
pub fn delete_chunk_rows(
    milvus: &Milvus,
    sc: StagedCollection,
    c: &crate::stage::manifest::Chunk,
) -> Result<()> {
    let m = &sc.entry.mapping;
    let ids = sc.chunk_ids(c)?;
    for f in crate::verify::id_filters(&m.id_field, &ids) {
        milvus.delete(&m.target, &f)?;
    }
    Ok(())
}
