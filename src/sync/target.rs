//! Before a sync touches the target: the stage's import into this very target (URL, database,
//! collection, and the collection's id) must be finished, or sync's upserts and deletes would
//! be overtaken by import jobs still running, or land in another collection of that name.

use crate::error::{Error, Result};
use crate::sink::milvus::Milvus;
use crate::stage::sync_state::PassState;
use crate::stage::{Stage, StagedCollection};

/// Checks that every chunk of the collection was imported into `milvus` from this stage and
/// that the target collection is the one the import filled; returns its id (if the server
/// reports one).
pub fn check_imported(
    stage: &Stage,
    milvus: &Milvus,
    sc: StagedCollection,
) -> Result<Option<String>> {
    let target = &sc.entry.mapping.target;
    let where_ = format!(
        "{} (database {})",
        crate::http::strip_credentials(milvus.url()),
        milvus.db()
    );
    let ledger = stage.ledger()?;
    let Some(l) = ledger.get(milvus.url(), milvus.db(), sc.name) else {
        return Err(Error::Other(format!(
            "collection {} was never imported from this stage into {where_}: sync brings an imported target up to date. Run q2z import with this --milvus-url and --db first, or give the target the stage was imported into",
            sc.name
        )));
    };
    let pending: Vec<&str> = sc
        .chunks()
        .iter()
        .filter(|c| !l.chunks.get(&c.file).is_some_and(|x| x.imported()))
        .map(|c| c.file.as_str())
        .collect();
    if let Some(first) = pending.first() {
        return Err(Error::Other(format!(
            "the import of collection {} into {where_} is unfinished ({} of {} chunks not imported, e.g. {first}): its jobs would land after sync's changes. Run the same q2z import again until it ends, then sync",
            sc.name,
            pending.len(),
            sc.chunks().len()
        )));
    }
    if !milvus.has_collection(target)? {
        return Err(Error::Other(format!(
            "the target collection {target} is not in {where_} although this stage imported collection {} there: it was dropped or renamed. Import the stage again (q2z import --drop-existing), then sync",
            sc.name
        )));
    }
    let id = milvus.describe(target)?.id();
    if let (Some(want), Some(got)) = (&l.target_id, &id)
        && want != got
    {
        return Err(Error::Other(format!(
            "the target collection {target} in {where_} is not the one this stage imported (collection id {got}, the import recorded {want}): it was dropped and created again. Import the stage again into it (q2z import --drop-existing), then sync"
        )));
    }
    Ok(id)
}

/// Checks that earlier sync passes were applied to this same target collection.
pub fn check_same_target(sc: StagedCollection, pass: &PassState, id: Option<&str>) -> Result<()> {
    if let (Some(want), Some(got)) = (&pass.target_id, id)
        && want != got
    {
        return Err(Error::Other(format!(
            "the stage's sync passes of collection {} were applied to target collection id {want}, but {} is now id {got}: the target was created again since. Import the stage again (q2z import --drop-existing), which starts the sync record over, then sync",
            sc.name, sc.entry.mapping.target
        )));
    }
    Ok(())
}
