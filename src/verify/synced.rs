//! After `q2z sync`: the rows sync passes sent that the target must still hold, sampled and
//! compared field by field (the staged rows no pass replaced are checked as after an import).

use super::compare::{Comparison, compare_fetched};
use crate::error::Result;
use crate::sink::milvus::Milvus;
use crate::stage::StagedCollection;
use crate::stage::reader::Row;
use crate::stage::sync_state::{RowOrigin, SyncedView, current_rows, range_label};
use rand::Rng;

/// Compares about `limit` of the current rows that came from sync passes (all with
/// `usize::MAX`); a range holding a difference is named by its digests file.
pub fn compare_pass_rows(
    milvus: &Milvus,
    sc: StagedCollection,
    view: &SyncedView,
    limit: usize,
) -> Result<Comparison> {
    let mut rng = rand::rng();
    let mut seen = 0usize;
    let mut picked: Vec<(usize, Row)> = Vec::new();
    // One range's digests in memory at a time.
    for r in &sc.entry.ranges {
        let wanted = view.range(sc, r)?;
        current_rows(
            sc,
            &view.pass,
            r,
            &wanted,
            false,
            |_, rows, keep, origin| {
                debug_assert!(matches!(origin, RowOrigin::Pass { .. }));
                for (row, k) in rows.into_iter().zip(keep) {
                    if !k {
                        continue;
                    }
                    seen += 1;
                    if picked.len() < limit {
                        picked.push((r.index, row));
                    } else {
                        let j = rng.random_range(0..seen);
                        if j < limit {
                            picked[j] = (r.index, row);
                        }
                    }
                }
                Ok(())
            },
        )?;
    }
    picked.sort_by_key(|p| p.0);
    let mut out = Comparison::default();
    let mut dropped = 0usize;
    for range in sc.entry.ranges.iter().map(|r| r.index) {
        let rows: Vec<Row> = picked
            .iter()
            .filter(|p| p.0 == range)
            .map(|p| p.1.clone())
            .collect();
        if rows.is_empty() {
            continue;
        }
        let before = out.mismatches.len();
        // Sync upserts drop null-valued keys, its bulk deltas keep them: neither is a difference.
        compare_fetched(
            milvus,
            &sc.entry.mapping,
            &rows,
            true,
            &mut dropped,
            &mut out,
        )?;
        if out.mismatches.len() > before {
            out.chunks.push(range_label(sc.name, &view.pass, range));
        }
    }
    out.note_rounded();
    if seen > 0 {
        out.notes.push(format!(
            "{} of the {seen} rows that sync passes sent and the target must hold were compared field by field",
            out.checked
        ));
    }
    Ok(out)
}
