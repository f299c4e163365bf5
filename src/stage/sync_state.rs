//! What `q2z sync` leaves in a stage: `sync-state.json` (the passes and the ranges done, tied
//! to the export they start from) and, per range, the digests of the rows the target holds
//! (`<collection>/sync-RRRR.digests`); read by `sync` and by `verify` after a sync.

use crate::error::{Error, Result};
use crate::stage::fsutil::write_atomic;
use crate::stage::layout::{SYNC_STATE, sync_digests_file};
use crate::stage::manifest::{Range, stage_err};
use crate::stage::reader::Row;
use crate::stage::{Stage, StagedCollection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// `sync-state.json`: the ranges the current sync pass has finished, per collection, tied to
/// the export they start from.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// sha256 of the export's chunk checksums: state of another export is not used.
    pub export: String,
    pub collections: BTreeMap<String, PassState>,
}

/// One collection's sync passes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PassState {
    /// Passes finished so far.
    pub passes: u64,
    /// Ranges of the running pass that are done.
    pub done: Vec<usize>,
    /// Unix seconds when the running pass began.
    #[serde(default)]
    pub started_at: Option<u64>,
    /// Unix seconds when the last finished pass began: the target held every change made
    /// before it once that pass ended.
    #[serde(default)]
    pub last_started_at: Option<u64>,
    /// The change-field bound of the running pass (kept, so a resumed pass reads the same).
    #[serde(default)]
    pub since: Option<Value>,
}

impl SyncState {
    /// Writes it atomically.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(path, &text)
    }
}

/// A value with every object's keys in sorted order (gRPC's payload maps have none).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&o[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        v => v.clone(),
    }
}

/// A row's digest: the first 8 bytes of the SHA-256 of its JSON with keys sorted (so a row
/// read over REST and over gRPC, whose payload key orders differ, digest alike).
pub fn digest(row: &Row) -> u64 {
    use sha2::Digest;
    let sorted: BTreeMap<&String, Value> = row.iter().map(|(k, v)| (k, canonical(v))).collect();
    let text = serde_json::to_vec(&sorted).unwrap_or_default();
    let h = sha2::Sha256::digest(&text);
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// An id as the digests files key it.
pub fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// sha256 of the staged chunks' checksums: which export a sync state belongs to.
pub fn export_fingerprint(sc: &[StagedCollection]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for c in sc {
        h.update(c.name.as_bytes());
        for ch in c.chunks() {
            h.update(ch.sha256.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// What the target must hold after the syncs of a collection: per range of the export's
/// plan, id → digest of the row the target holds.
pub struct SyncedView {
    pub ranges: Vec<HashMap<String, u64>>,
    /// Passes finished.
    pub passes: u64,
    /// A pass was stopped part-way (the target is between two states).
    pub unfinished: bool,
}

impl SyncedView {
    /// Rows the target must hold.
    pub fn rows(&self) -> u64 {
        self.ranges.iter().map(|r| r.len() as u64).sum()
    }
    /// The digest of the row the target holds for an id (`None`: deleted, or never there).
    pub fn digest_of(&self, id: &str) -> Option<u64> {
        self.ranges.iter().find_map(|r| r.get(id).copied())
    }
}

/// The target's state after the syncs of this export, if any pass of `sync` ran on it.
pub fn synced_view(sc: StagedCollection) -> Result<Option<SyncedView>> {
    let stage = sc.stage();
    let Ok(bytes) = std::fs::read(stage.file(SYNC_STATE)) else {
        return Ok(None);
    };
    let state: SyncState = serde_json::from_slice(&bytes)
        .map_err(|e| stage_err(stage.dir(), format!("{SYNC_STATE} is damaged ({e})")))?;
    let manifest = stage.require_manifest()?;
    if state.export != export_fingerprint(&stage.collections(&manifest)) {
        return Ok(None);
    }
    let Some(pass) = state.collections.get(sc.name) else {
        return Ok(None);
    };
    let mut ranges = Vec::new();
    for r in &sc.entry.ranges {
        ranges.push(base_digests(stage, sc, r)?);
    }
    let unfinished = !pass.done.is_empty() && pass.done.len() < sc.entry.ranges.len();
    Ok(Some(SyncedView {
        ranges,
        passes: pass.passes,
        unfinished,
    }))
}

/// What the target holds for a range: id → digest, from the last sync of the range, else
/// from the staged rows.
pub fn base_digests(
    stage: &Stage,
    sc: StagedCollection,
    r: &Range,
) -> Result<HashMap<String, u64>> {
    let path = stage.file(&sync_digests_file(sc.name, r.index));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut out = HashMap::new();
        for line in text.lines() {
            let (id, d) = line
                .rsplit_once('\t')
                .ok_or_else(|| stage_err(stage.dir(), format!("{} is damaged", path.display())))?;
            let d = u64::from_str_radix(d, 16)
                .map_err(|_| stage_err(stage.dir(), format!("{} is damaged", path.display())))?;
            out.insert(id.to_string(), d);
        }
        return Ok(out);
    }
    let id_field = &sc.entry.mapping.id_field;
    let mut out = HashMap::new();
    for c in sc.chunks().iter().filter(|c| c.range == r.index) {
        sc.for_each_batch(c, 4096, |rows| {
            for row in rows {
                out.insert(id_key(&row[id_field]), digest(&row));
            }
            Ok(())
        })?;
    }
    Ok(out)
}
