//! The import ledger of one collection in one target, saved after every change.

use crate::error::Result;
use crate::stage::Stage;
use crate::stage::ledger::{CollectionLedger, ImportLedger};

/// The ledger of the collection being imported, with the stage it is saved to.
pub struct LedgerBook<'a> {
    stage: &'a Stage,
    state: ImportLedger,
    url: String,
    db: String,
    name: String,
}

impl<'a> LedgerBook<'a> {
    /// Opens the ledger of `name` in the target `url` + `db`.
    pub fn open(stage: &'a Stage, url: &str, db: &str, name: &str) -> Result<LedgerBook<'a>> {
        Ok(LedgerBook {
            stage,
            state: stage.ledger()?,
            url: url.to_string(),
            db: db.to_string(),
            name: name.to_string(),
        })
    }

    /// The collection's ledger.
    pub fn get(&mut self) -> &mut CollectionLedger {
        self.state
            .target_mut(&self.url, &self.db)
            .entry(self.name.clone())
            .or_default()
    }

    /// Writes the whole ledger atomically.
    pub fn save(&self) -> Result<()> {
        self.stage.save_ledger(&self.state)
    }
}
