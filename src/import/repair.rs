//! Repair: the chunks that verification found bad (wrong counts, or rows whose values differ)
//! get exactly their staged ids deleted from the target and are sent again the way they were
//! imported (after a sync: the bad ranges as the last pass left them, `repair_synced`).
//! Everything is checked before the first delete; nothing runs while a job does.

use super::ledger_book::LedgerBook;
use super::{ImportMode, ImportOptions, delete_chunk_rows, import};
use crate::error::{Error, Result};
use crate::sink::milvus::Milvus;
use crate::stage::Stage;
use crate::stage::ledger::CollectionLedger;
use crate::verify::{VerifyOptions, VerifyReport, verify_imported};

/// What repair did, per collection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repaired {
    pub collection: String,
    pub chunks: Vec<String>,
}

/// Verifies every collection this stage imported into `milvus`; for those found bad, deletes
/// the bad chunks' ids, marks them to be sent again in the ledger, and re-imports them with
/// `import_opts` (the mode each collection was imported with). Returns the final reports and
/// what was repaired.
pub fn verify_and_repair(
    stage: &Stage,
    milvus: &Milvus,
    verify: &VerifyOptions,
    import_opts: &ImportOptions,
) -> Result<(Vec<VerifyReport>, Vec<Repaired>)> {
    let manifest = stage.require_manifest()?;
    let ledger = stage.ledger()?;
    let mut reports = Vec::new();
    let mut repaired = Vec::new();
    for name in manifest.collections.keys() {
        let sc = stage.collection(&manifest, name).expect("listed");
        let Some(l) = ledger.get(milvus.url(), milvus.db(), name) else {
            tracing::info!(collection = %name, "not imported into this target; skipped");
            continue;
        };
        check_no_jobs(name, l)?;
        let mode = l.mode.unwrap_or_default();
        let r = verify_imported(milvus, sc, Some(l), verify)?;
        let files = r.chunks_to_repair();
        if files.is_empty() {
            reports.push(r);
            continue;
        }
        if mode == ImportMode::Bulk && import_opts.storage.is_none() {
            return Err(Error::Other(format!(
                "collection {name} was bulk-imported: pass the same --s3-endpoint / --s3-bucket (and keys) to --repair so the bad chunks are sent again as files"
            )));
        }
        // Every check before the first delete: the files that will be sent again are whole.
        stage.check_files(sc.entry)?;
        if let Some(pass) = crate::stage::sync_state::pass_state(sc)? {
            // Synced since the import: the chunks' export-time rows are not the target's
            // any more; the bad ranges are sent again as the last pass left them.
            if pass.unfinished(sc.entry.ranges.len()) {
                return Err(Error::Other(format!(
                    "collection {name}: a q2z sync pass was stopped part-way; run the same sync again first, then repair"
                )));
            }
            let ranges = super::repair_synced::bad_ranges(sc, &pass, &files);
            super::repair_synced::repair_ranges(milvus, sc, &pass, &ranges, mode, import_opts)?;
            milvus.flush(&sc.entry.mapping.target)?;
            repaired.push(Repaired {
                collection: name.clone(),
                chunks: ranges
                    .iter()
                    .map(|r| crate::stage::sync_state::range_label(name, &pass, *r))
                    .collect(),
            });
            reports.push(verify_imported(milvus, sc, Some(l), verify)?);
            continue;
        }
        resend_chunks(stage, milvus, sc, &files)?;
        repaired.push(Repaired {
            collection: name.clone(),
            chunks: files,
        });
        let mut o = import_opts.clone();
        o.mode = mode;
        o.collections = vec![name.clone()];
        o.verify = verify.clone();
        reports.extend(import(stage, milvus, &o)?);
    }
    Ok((reports, repaired))
}

/// Nothing is repaired while an import job still holds a chunk of the collection.
fn check_no_jobs(name: &str, l: &CollectionLedger) -> Result<()> {
    let busy: Vec<&String> = l
        .chunks
        .iter()
        .filter(|(_, c)| c.in_flight())
        .map(|(f, _)| f)
        .collect();
    match busy.first() {
        None => Ok(()),
        Some(first) => Err(Error::Other(format!(
            "collection {name}: {} chunks are still held by import jobs ({first}, …); finish them first by running the same q2z import again, then repair",
            busy.len()
        ))),
    }
}

/// Deletes each bad chunk's staged ids from the target and marks it to be sent again in the
/// ledger (the import that follows sends it).
fn resend_chunks(
    stage: &Stage,
    milvus: &Milvus,
    sc: crate::stage::StagedCollection,
    files: &[String],
) -> Result<()> {
    let mut book = LedgerBook::open(stage, milvus.url(), milvus.db(), sc.name)?;
    for f in files {
        let Some(c) = sc.chunk(f) else { continue };
        delete_chunk_rows(milvus, sc, c)?;
        book.get().chunk(f).resend();
        book.save()?;
        tracing::info!(chunk = %f, "repair: deleted the chunk's staged ids; sending it again");
    }
    Ok(())
}
