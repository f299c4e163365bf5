//! Upsert import: each chunk's rows sent over REST in batches of at most `--batch-bytes`
//! (idempotent: a chunk sent twice leaves the same rows).

use super::ImportOptions;
use super::ledger_book::LedgerBook;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::sink::milvus::Milvus;
use crate::sink::milvus::rest_json::{rest_refusal, rest_row};
use crate::stage::StagedCollection;
use crate::stage::ledger::ChunkState;
use crate::stage::manifest::{Chunk, stage_err};
use serde_json::{Map, Value};

/// Upserts every chunk not imported yet.
pub fn import_all(
    milvus: &Milvus,
    sc: StagedCollection,
    book: &mut LedgerBook,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<()> {
    for c in sc.chunks() {
        match book.get().state(&c.file) {
            ChunkState::Imported => {
                progress.inc(c.rows);
                continue;
            }
            ChunkState::Pending | ChunkState::Uploaded => {}
            ChunkState::Submitting | ChunkState::Importing => {
                return Err(stage_err(
                    sc.stage().dir(),
                    format!(
                        "chunk {} was sent by a bulk import that has not finished; rerun with --mode bulk to finish it first",
                        c.file
                    ),
                ));
            }
        }
        upsert_chunk(milvus, sc, c, opts.batch_bytes, progress, BULK_FIX)?;
        book.get().chunk(&c.file).set_state(ChunkState::Imported);
        book.save()?;
    }
    Ok(())
}

/// What to do about a row REST would change, in `--mode upsert`.
const BULK_FIX: &str = "--mode upsert sends rows over REST; import this collection with --mode bulk (and the bucket) so every value arrives exact";

/// Sends one chunk as upserts in batches of at most `batch_bytes`; a row whose values REST
/// would change stops it, naming the row and `fix` (why the chunk goes over REST, what to do).
pub fn upsert_chunk(
    milvus: &Milvus,
    sc: StagedCollection,
    c: &Chunk,
    batch_bytes: usize,
    progress: &Progress,
    fix: &str,
) -> Result<()> {
    let target = &sc.entry.mapping.target;
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
    sc.for_each_batch(c, 1024, |rows| {
        crate::interrupt::check()?;
        for r in rows {
            if let Some(why) = rest_refusal(&r, &sc.entry.mapping) {
                return Err(Error::Other(format!(
                    "collection {}, chunk {}: {why}. {fix}",
                    sc.name, c.file
                )));
            }
            let row = rest_row(r, &sc.entry.mapping);
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
