//! What the commands print: reports as text or JSON, the plan preview, the stage's status.

use crate::export::CollectionReport;
use crate::sink::milvus::schema::milvus_create_body;
use crate::stage::ledger::ImportLedger;
use crate::stage::manifest::Manifest;
use crate::transform::mapping::{CollectionMapping, NullPolicy, OversizePolicy};
use crate::verify::VerifyReport;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Prints verification reports; the exit code is 3 if any failed.
pub fn reports(reports: &[VerifyReport], json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
    } else {
        for r in reports {
            println!(
                "{} → {}: source {} / staged {} / target {} rows; {} points compared field by field: {}",
                r.collection,
                r.target,
                r.source_count_at_start,
                r.staged_rows,
                r.target_count,
                r.sample_checked,
                if r.sample_mismatches.is_empty() {
                    "all equal".to_string()
                } else {
                    format!("{} differences", r.sample_mismatches.len())
                }
            );
            for c in &r.bad_chunks {
                println!(
                    "  chunk {}: staged {} rows, target has {}",
                    c.file, c.staged, c.target
                );
            }
            for m in r.sample_mismatches.iter().take(20) {
                println!("  {m}");
            }
            for n in &r.notes {
                println!("  note: {n}");
            }
            println!(
                "  verification: {}",
                if r.ok {
                    "PASSED"
                } else if r.chunks_to_repair().is_empty() {
                    "FAILED"
                } else {
                    "FAILED (run q2z verify --repair, with the import's bucket flags, to send the bad chunks again)"
                }
            );
        }
    }
    Ok(if reports.iter().all(|r| r.ok) {
        0
    } else {
        super::EXIT_MISMATCH
    })
}

/// One line about an exported collection.
pub fn export_line(r: &CollectionReport) -> String {
    format!(
        "{}: staged {} of {} points in {:.1}s{}",
        r.collection,
        r.staged_rows,
        r.source_count_at_start,
        r.seconds,
        if r.set_aside > 0 {
            format!(
                " ({} set aside: payload over 64 KiB or a value Milvus refuses; see the stage's set-aside files)",
                r.set_aside
            )
        } else {
            String::new()
        }
    )
}

/// Prints what an export did.
pub fn export_reports(reports: &[CollectionReport], stage: &Path, json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(0);
    }
    for r in reports {
        println!(
            "{}: staged {} of {} points in {} files ({} bytes) in {:.1}s → Milvus '{}'",
            r.collection,
            r.staged_rows,
            r.source_count_at_start,
            r.chunks,
            r.bytes,
            r.seconds,
            r.target
        );
        if r.set_aside > 0 {
            println!(
                "  {} points with payloads over 64 KiB set aside whole in {}/{}/set-aside-*.jsonl (not imported; verify reports them)",
                r.set_aside,
                stage.display(),
                r.collection
            );
        }
        for w in &r.warnings {
            println!("  warning: {w}");
        }
    }
    Ok(0)
}

/// Prints the verification reports and the search parity; exit code 3 if either fails.
pub fn reports_with_search(
    reports: &[VerifyReport],
    parity: &[crate::verify::search::FieldParity],
    json: bool,
) -> Result<u8> {
    let failed = parity.iter().any(|p| !p.ok);
    if json {
        let v = serde_json::json!({"verify": reports, "search": parity});
        println!("{}", serde_json::to_string_pretty(&v)?);
        let bad = reports.iter().any(|r| !r.ok) || failed;
        return Ok(if bad { super::EXIT_MISMATCH } else { 0 });
    }
    let code = self::reports(reports, false)?;
    for p in parity {
        if p.queries == 0
            && let Some(n) = &p.note
        {
            println!("{} search parity, field {}: {n}", p.collection, p.field);
            continue;
        }
        println!(
            "{} search parity, field {} ({}){}: {} queries, top {}: overlap mean {:.3}, min {:.3}; rank correlation {:.3}; largest score difference {:.2e}; {:.2} s{}",
            p.collection,
            p.field,
            p.metric,
            p.filtered_on
                .as_ref()
                .map(|k| format!(" filtered on {k} == the query point's value"))
                .unwrap_or_default(),
            p.queries,
            p.top_k,
            p.mean_overlap,
            p.min_overlap,
            p.mean_rank_correlation,
            p.max_score_difference,
            p.seconds,
            if p.ok { "" } else { " — BELOW --min-overlap" }
        );
        if let Some(n) = &p.note {
            println!("  note: {n}");
        }
        for w in &p.weakest {
            println!("  query from point {}: overlap {:.3}", w.point, w.overlap);
        }
    }
    Ok(if failed { super::EXIT_MISMATCH } else { code })
}

/// Prints what `sync` did (or would do); exit code 3 if a target's count differs.
pub fn sync_reports(reports: &[crate::sync::SyncReport], json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in reports {
            println!(
                "{} → {}: {} points read; {}{} inserted, {} updated, {} deleted; target {} rows for {} source points: {} ({:.2} s)",
                r.collection,
                r.target,
                r.scanned,
                if r.dry_run { "would be " } else { "" },
                r.inserted,
                r.updated,
                r.deleted,
                r.target_rows,
                r.source_points,
                if r.ok { "in step" } else { "MISMATCH" },
                r.seconds
            );
            if r.bulk_rows > 0 {
                println!(
                    "  {} of the inserted and updated rows went through bulk import (ranges over --bulk-over)",
                    r.bulk_rows
                );
            }
            if r.set_aside > 0 {
                println!(
                    "  {} points cannot be rows (payload over 64 KiB) and are not in the target, as after the export",
                    r.set_aside
                );
            }
        }
    }
    Ok(if reports.iter().all(|r| r.ok) {
        0
    } else {
        super::EXIT_MISMATCH
    })
}

/// Prints what `stage merge` did.
pub fn merge_reports(
    reports: &[crate::stage::merge::MergeReport],
    into: &Path,
    json: bool,
) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(0);
    }
    for r in reports {
        println!(
            "{}: {} rows in {} files merged by {} into {} ({} linked, {} copied, {} already there) → Milvus '{}'",
            r.collection,
            r.rows,
            r.chunks,
            r.split_by,
            into.display(),
            r.linked,
            r.copied,
            r.kept,
            r.target
        );
    }
    println!(
        "import it with: q2z import --stage {} --milvus-url …",
        into.display()
    );
    Ok(0)
}

/// The plan of one collection, as printed and as `--json`.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub collection: String,
    pub points: u64,
    pub mapping: CollectionMapping,
    pub milvus_create: serde_json::Value,
    pub warnings: Vec<String>,
    pub estimated_vector_bytes: u64,
    /// Which file each shard is read from (snapshot sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
    /// Qdrant aliases pointing at the collection (live sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub qdrant_aliases: Vec<String>,
    /// With `--milvus-url`: the target and what the mapping needs that it lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<PlanTarget>,
    /// The export's predicted time, stage size, memory and upload (unless `--no-estimate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<crate::export::Estimate>,
    /// The whole run's estimate (the same in every collection's plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<super::plan_estimate::RunEstimate>,
}

/// The target a plan was checked against.
#[derive(Debug, Serialize)]
pub struct PlanTarget {
    pub server: String,
    /// One line per need the target does not meet (empty: ready).
    pub notes: Vec<String>,
    /// What the collection gets of the newer releases' capabilities there.
    pub gets: Vec<String>,
}

impl PlanView {
    /// The plan of a mapping for a collection of `points` points.
    pub fn new(
        mapping: &CollectionMapping,
        points: u64,
        warnings: Vec<String>,
        shards: Vec<String>,
    ) -> PlanView {
        // Bytes a point's vectors take staged: float32 4 a value, float16 2, a sparse one ~64;
        // a multivector kept whole counts one of its vectors (how many a point holds is not
        // known before the export).
        let row = 64
            + mapping
                .vectors
                .iter()
                .map(|v| match (v.kind, v.dim) {
                    (crate::transform::mapping::VectorKind::Float16Vector, Some(d)) => d * 2,
                    (_, Some(d)) => d * 4,
                    (_, None) => 64,
                })
                .sum::<usize>() as u64;
        PlanView {
            collection: mapping.source.clone(),
            points,
            milvus_create: milvus_create_body(mapping),
            mapping: mapping.clone(),
            warnings,
            estimated_vector_bytes: row.saturating_mul(points),
            shards,
            qdrant_aliases: Vec::new(),
            target: None,
            estimate: None,
            run: None,
        }
    }
}

/// Prints the schema preview of one collection.
pub fn print_plan(p: &PlanView) {
    let m = &p.mapping;
    println!(
        "Qdrant collection '{}' ({} points) → Milvus collection '{}'",
        m.source, p.points, m.target
    );
    println!("  {:<24} {:<22} from / index", "field", "Milvus type");
    println!(
        "  {:<24} {:<22} point id",
        m.id_field,
        format!("{:?} (primary)", m.id_kind)
    );
    print_vector_fields(m);
    print_scalar_fields(m);
    print_meta_field(m);
    println!("  estimated vector bytes: {}", p.estimated_vector_bytes);
    if let Some(e) = &p.estimate {
        super::plan_estimate::print_estimate(e);
    }
    for h in &m.hints {
        println!("  suggestion: {h}");
    }
    for a in &p.qdrant_aliases {
        println!(
            "  Qdrant alias '{a}' → this collection: after the import, `q2z import --alias {a}` points a Milvus alias of that name at '{}'",
            m.target
        );
    }
    for s in &p.shards {
        println!("  {s}");
    }
    for w in &p.warnings {
        println!("  warning: {w}");
    }
    if let Some(t) = &p.target {
        if t.notes.is_empty() {
            println!("  target {}: meets every need of this mapping", t.server);
        } else {
            println!("  target {}:", t.server);
            for n in &t.notes {
                println!("    ! {n}");
            }
        }
        for g in &t.gets {
            println!("    + {g}");
        }
    }
}

/// The plan's vector fields: type with dim, the Qdrant vector, metric and index.
fn print_vector_fields(m: &CollectionMapping) {
    for v in &m.vectors {
        let src = if v.source.is_empty() {
            "(unnamed vector)".to_string()
        } else {
            format!("vector '{}'", v.source)
        };
        let dim = v.dim.map(|d| format!("({d})")).unwrap_or_default();
        println!(
            "  {:<24} {:<22} {src}, {} {} {:?}",
            v.field,
            format!("{}{dim}", v.kind.milvus_name()),
            v.metric,
            v.index_type,
            v.index_params
        );
    }
}

/// The plan's typed scalar fields (promoted payload keys, the shard key) and their indexes.
fn print_scalar_fields(m: &CollectionMapping) {
    for f in &m.scalars {
        let ty = match (f.element_type, f.max_length) {
            (Some(e), _) => format!("Array<{}>", e.milvus_name()),
            (None, Some(l)) => format!("{}({l})", f.kind.milvus_name()),
            (None, None) => f.kind.milvus_name().to_string(),
        };
        let from = match f.from {
            crate::transform::scalars::ScalarFrom::Payload => format!("payload key '{}'", f.key),
            crate::transform::scalars::ScalarFrom::ShardKey => "the point's shard key".into(),
        };
        let nullable = if f.nullable { ", nullable" } else { "" };
        let pk = if f.partition_key {
            ", partition key"
        } else {
            ""
        };
        println!("  {:<24} {:<22} {from}{nullable}{pk}", f.field, ty);
        if let Some(ix) = &f.index {
            println!("  {:<24} {:<22} {ix} index", "", "");
        }
    }
}

/// The dynamic field `$meta`: what it holds, its policies, its JSON-path indexes.
fn print_meta_field(m: &CollectionMapping) {
    println!(
        "  {:<24} {:<22} payload{} (nulls {}; clashing keys get a trailing '_'; over 64 KiB: {})",
        "$meta",
        "dynamic JSON",
        if m.scalars.is_empty() {
            ""
        } else {
            ", other keys"
        },
        match m.null_values {
            NullPolicy::Keep => "kept",
            NullPolicy::Drop => "dropped",
        },
        match m.oversize_payload {
            OversizePolicy::Error => "stop",
            OversizePolicy::SetAside => "set aside",
        }
    );
    for ix in &m.json_indexes {
        println!(
            "  {:<24} {:<22} INVERTED JSON-path index on $meta key '{}' ({})",
            "",
            "",
            ix.key,
            crate::transform::json_index::NEEDS
        );
    }
}

/// Prints what is staged and, per target, where each chunk is.
pub fn status(m: &Manifest, state: &ImportLedger, json: bool) -> Result<u8> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"manifest": m, "import": state}))?
        );
        return Ok(0);
    }
    for (name, e) in &m.collections {
        let done = e.ranges.iter().filter(|r| r.done).count();
        println!(
            "{name}: export {:?}, {} of {} points staged in {} files, ranges {done}/{} done",
            e.state,
            e.staged_rows(),
            e.source_count_at_start,
            e.chunks.len(),
            e.ranges.len()
        );
        for sh in &e.shards {
            println!("  {sh}");
        }
        for (target, colls) in &state.targets {
            let Some(l) = colls.get(name) else { continue };
            let mut by: BTreeMap<String, (usize, u64)> = BTreeMap::new();
            for c in &e.chunks {
                let v = by.entry(format!("{:?}", l.state(&c.file))).or_default();
                v.0 += 1;
                v.1 += c.rows;
            }
            let parts: Vec<String> = by
                .iter()
                .map(|(k, (n, r))| format!("{k}: {n} files / {r} rows"))
                .collect();
            let jobs: std::collections::BTreeSet<&str> =
                l.chunks.values().filter_map(|x| x.job.as_deref()).collect();
            println!(
                "  → {} '{}' ({}): {}; jobs {:?}; verified: {}",
                crate::http::strip_credentials(target),
                e.mapping.target,
                l.mode
                    .map_or("-".to_string(), |m| format!("{m:?}").to_lowercase()),
                parts.join(", "),
                jobs,
                l.verified
            );
            for (f, x) in &l.chunks {
                if let Some(err) = &x.last_error {
                    println!("    {f}: last error: {err}");
                }
            }
        }
    }
    Ok(0)
}
