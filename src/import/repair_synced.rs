//! Repair of a collection that `q2z sync` changed since its import: a bad range gets every id
//! it ever held through q2z deleted (staged rows, rows passes sent, ids passes deleted), then
//! the rows the target must hold now — each id's newest version, from the last pass that sent
//! it back to the staged chunks — sent again the way the collection was imported (one bulk
//! job of a repair file, or upserts). Nothing a pass deleted comes back, nothing a pass
//! updated is reverted.

use super::ImportOptions;
use crate::error::{Error, Result};
use crate::sink::milvus::Milvus;
use crate::sink::milvus::rest_json::{rest_refusal, rest_row};
use crate::stage::StagedCollection;
use crate::stage::layout::sync_repair_file;
use crate::stage::ledger::ImportMode;
use crate::stage::manifest::Range;
use crate::stage::reader::Row;
use crate::stage::sync_state::{PassState, base_digests, current_rows, ids_ever, range_label};
use crate::sync::bulk::{BulkDelta, DeltaFile, DeltaImport};
use serde_json::Value;
use std::collections::BTreeSet;

/// The ranges holding the bad chunks and bad sync ranges a verification named.
pub fn bad_ranges(sc: StagedCollection, pass: &PassState, files: &[String]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for f in files {
        if let Some(c) = sc.chunk(f) {
            out.insert(c.range);
        } else if let Some(r) = sc
            .entry
            .ranges
            .iter()
            .find(|r| range_label(sc.name, pass, r.index) == *f)
        {
            out.insert(r.index);
        }
    }
    out
}

/// Sends the given ranges of a synced collection again.
pub fn repair_ranges(
    milvus: &Milvus,
    sc: StagedCollection,
    pass: &PassState,
    ranges: &BTreeSet<usize>,
    mode: ImportMode,
    opts: &ImportOptions,
) -> Result<()> {
    let bulk = match (mode, &opts.storage) {
        (ImportMode::Bulk, Some(storage)) => Some(BulkDelta {
            storage: storage.clone(),
            over: 0,
            poll: opts.poll_interval,
            stall_timeout: opts.stall_timeout,
        }),
        (ImportMode::Bulk, None) => {
            return Err(Error::Other(format!(
                "collection {} was bulk-imported: pass the same --s3-endpoint / --s3-bucket (and keys) to --repair so the bad ranges are sent again as files",
                sc.name
            )));
        }
        (ImportMode::Upsert, _) => None,
    };
    for range in sc.entry.ranges.iter().filter(|r| ranges.contains(&r.index)) {
        crate::interrupt::check()?;
        match &bulk {
            Some(b) => resend_bulk(milvus, sc, pass, range, b)?,
            None => resend_upserts(milvus, sc, pass, range)?,
        }
        tracing::info!(
            collection = sc.name,
            range = range.index,
            "repair: the range's rows as the last sync left them were sent again"
        );
    }
    Ok(())
}

/// Every id the range ever held through q2z, as the target's keys.
fn ids_ever_typed(sc: StagedCollection, pass: &PassState, range: &Range) -> Result<Vec<Value>> {
    let kind = sc.entry.mapping.id_kind;
    Ok(ids_ever(sc, pass, range.index)?
        .iter()
        .map(|k| crate::verify::typed_id(kind, k))
        .collect())
}

/// A bulk-imported range: its current rows written to a repair file, every id it ever held
/// deleted, then the file imported as one job.
fn resend_bulk(
    milvus: &Milvus,
    sc: StagedCollection,
    pass: &PassState,
    range: &Range,
    bulk: &BulkDelta,
) -> Result<()> {
    let m = &sc.entry.mapping;
    let wanted = base_digests(sc, Some(pass), range)?;
    let rel = sync_repair_file(sc.name, pass.passes, range.index);
    let di = DeltaImport {
        stage: sc.stage(),
        milvus,
        bulk,
        target: &m.target,
        collection: sc.name,
        range: range.index,
        rel: rel.clone(),
    };
    di.settle_earlier()?;
    let mut file = DeltaFile::new(sc.stage(), rel, m);
    current_rows(sc, pass, range, &wanted, true, |batch, _, keep, _| {
        file.write(batch, keep)
    })?;
    let written = file.finish()?;
    delete(milvus, sc, &ids_ever_typed(sc, pass, range)?)?;
    if let Some(w) = written {
        di.run(&w, &m.id_field, 500)?;
    }
    Ok(())
}

/// An upsert-imported range: every id it ever held deleted, then its current rows upserted.
fn resend_upserts(
    milvus: &Milvus,
    sc: StagedCollection,
    pass: &PassState,
    range: &Range,
) -> Result<()> {
    let m = &sc.entry.mapping;
    let wanted = base_digests(sc, Some(pass), range)?;
    delete(milvus, sc, &ids_ever_typed(sc, pass, range)?)?;
    let mut rows: Vec<Row> = Vec::new();
    current_rows(sc, pass, range, &wanted, true, |_, batch_rows, keep, _| {
        for (row, k) in batch_rows.into_iter().zip(keep) {
            if !k {
                continue;
            }
            if let Some(why) = rest_refusal(&row, m) {
                return Err(Error::Other(format!(
                    "collection {}: {why}; repair sends an upsert-imported collection over REST. Drop the target and import the stage with --mode bulk, then sync",
                    sc.name
                )));
            }
            rows.push(rest_row(row, m));
        }
        if rows.len() >= 500 {
            milvus.upsert(&m.target, &rows)?;
            rows.clear();
        }
        Ok(())
    })?;
    if !rows.is_empty() {
        milvus.upsert(&m.target, &rows)?;
    }
    Ok(())
}

fn delete(milvus: &Milvus, sc: StagedCollection, ids: &[Value]) -> Result<()> {
    let m = &sc.entry.mapping;
    for f in crate::verify::id_filters(&m.id_field, ids) {
        milvus.delete(&m.target, &f)?;
    }
    Ok(())
}
