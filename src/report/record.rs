//! Command results written into the stage's evidence (`evidence.json`) by the commands that
//! know them: verifications and counts (import, verify), repairs, search parity, sync passes,
//! the alias switch, and every run.

use crate::stage::Stage;
use crate::stage::evidence::{
    AliasRecord, CountRecord, Evidence, FieldSearchRecord, RepairRecord, RunRecord, SearchRecord,
    SyncPassRecord, VerificationRecord, now_ms,
};
use crate::verify::VerifyReport;
use crate::verify::search::FieldParity;

/// Records evidence; a failure to write it is logged, never the command's failure (the
/// migration itself is recorded by its own ledgers).
pub fn record(stage: &Stage, add: impl FnOnce(&mut Evidence)) {
    if let Err(e) = stage.record(add) {
        tracing::warn!(error = %e, "could not record the report evidence in the stage");
    }
}

/// The verifications `by` (`import`, `verify`, `migrate`) made, each with its counts.
/// `full`: every row was compared; `release`: the target server as q2z knew it.
pub fn verifications(
    ev: &mut Evidence,
    by: &str,
    reports: &[VerifyReport],
    full: bool,
    stage: &Stage,
    release: Option<String>,
) {
    let at_ms = now_ms();
    let fields = stage
        .manifest()
        .ok()
        .flatten()
        .map(|m| {
            m.collections
                .into_iter()
                .map(|(k, e)| {
                    let m = &e.mapping;
                    (k, (2 + m.vectors.len() + m.scalars.len()) as u64)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    for r in reports {
        ev.collection(&r.collection)
            .set_verification(VerificationRecord {
                at_ms,
                by: by.to_string(),
                target: r.target.clone(),
                target_release: release.clone(),
                mode: if full { "full" } else { "sampled" }.into(),
                rows_compared: r.sample_checked as u64,
                fields_per_row: fields.get(&r.collection).copied().unwrap_or(0),
                staged: r.staged_rows,
                target_rows: r.target_count,
                bad_chunks: r.bad_chunks.iter().map(|c| c.file.clone()).collect(),
                chunks_with_differences: r.chunks_with_differences.clone(),
                mismatches: r.sample_mismatches.clone(),
                mismatch_count: r.sample_mismatches.len() as u64,
                notes: r.notes.clone(),
                ok: r.ok,
            });
        if let Some(c) = ev.collection(&r.collection).counts.last_mut() {
            c.set_aside = r.set_aside;
        }
    }
}

/// A repair of `chunks` of `collection`.
pub fn repair(ev: &mut Evidence, collection: &str, chunks: &[String]) {
    ev.collection(collection).add_repair(RepairRecord {
        at_ms: now_ms(),
        chunks: chunks.to_vec(),
    });
}

/// The search-parity figures, per collection (each replaces the collection's last check).
pub fn search(ev: &mut Evidence, parity: &[FieldParity]) {
    let at_ms = now_ms();
    let mut by: std::collections::BTreeMap<&str, Vec<FieldSearchRecord>> = Default::default();
    for f in parity {
        by.entry(&f.collection)
            .or_default()
            .push(FieldSearchRecord {
                field: f.field.clone(),
                metric: f.metric.clone(),
                filtered_on: f.filtered_on.clone(),
                top_k: f.top_k,
                mean_overlap: f.mean_overlap,
                min_overlap: f.min_overlap,
                mean_rank_correlation: f.mean_rank_correlation,
                max_score_difference: f.max_score_difference,
                queries: f.per_query.clone(),
                ok: f.ok,
                note: f.note.clone(),
            });
    }
    for (collection, fields) in by {
        ev.collection(collection).search = Some(SearchRecord { at_ms, fields });
    }
}

/// The passes a sync run made (a dry run makes none), begun at `started_ms`.
pub fn sync_passes(ev: &mut Evidence, reports: &[crate::sync::SyncReport], started_ms: u64) {
    let ended_ms = now_ms();
    for r in reports.iter().filter(|r| !r.dry_run && r.pass > 0) {
        let c = ev.collection(&r.collection);
        c.add_sync_pass(SyncPassRecord {
            pass: r.pass,
            started_ms,
            ended_ms,
            inserted: r.inserted,
            updated: r.updated,
            deleted: r.deleted,
            bulk_rows: r.bulk_rows,
            set_aside: r.set_aside,
            target_rows: r.target_rows,
            ok: r.ok,
        });
        c.add_counts(CountRecord {
            at_ms: ended_ms,
            by: "sync".into(),
            target: r.target.clone(),
            expected: r.source_points,
            target_rows: r.target_rows,
            set_aside: r.set_aside,
        });
    }
}

/// `alias` switched to `target` (collection `collection` of the stage); `before`: what it
/// named before (`None`: created).
pub fn alias(
    ev: &mut Evidence,
    collection: &str,
    alias: &str,
    target: &str,
    before: Option<String>,
) {
    ev.collection(collection).alias = Some(AliasRecord {
        at_ms: now_ms(),
        alias: alias.to_string(),
        target: target.to_string(),
        before,
    });
}

/// A finished run: `command` with its command line `args` (without the program name;
/// secrets are taken out here), begun at `started_ms`, ended with `exit_code` (and `error`).
pub fn run(
    ev: &mut Evidence,
    command: &str,
    args: &[String],
    started_ms: u64,
    exit_code: u8,
    error: Option<String>,
) {
    ev.add_run(RunRecord {
        command: command.to_string(),
        args: crate::stage::evidence::redact_args(args),
        q2z_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("Q2Z_COMMIT").to_string(),
        started_ms,
        seconds: now_ms().saturating_sub(started_ms) as f64 / 1000.0,
        exit_code,
        error: error.map(|e| crate::http::strip_credentials(&e)),
    });
}
