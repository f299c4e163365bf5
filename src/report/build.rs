//! Gathers a [`Report`] from what a stage records.

use super::*;
use crate::error::Result;
use crate::stage::Stage;
use crate::stage::evidence::{CollectionEvidence, Evidence, now_ms};
use crate::stage::ledger::{CollectionLedger, ImportLedger};
use crate::stage::manifest::{CollectionEntry, ExportState, SourceInfo};
use crate::stage::sync_state::SyncState;
use crate::transform::mapping::META;
use crate::transform::scalars::ScalarFrom;
use serde_json::Value;
use std::io::BufRead;

/// Lines of each set-aside file read for the reasons (the count comes from the manifest).
const REASON_LINES: usize = 50;

/// The report of the stage `stage`, shown as `label` (its directory or `s3://` URL).
pub fn build(stage: &Stage, label: &str) -> Result<Report> {
    let manifest = stage.require_manifest()?;
    let ledger = stage.ledger()?;
    let sync = stage.sync_state()?;
    let evidence = stage.evidence()?;
    let collections = manifest
        .collections
        .iter()
        .map(|(name, e)| collection(stage, name, e, &ledger, &sync, &evidence))
        .collect();
    Ok(Report {
        format_version: 1,
        generated_ms: now_ms(),
        q2z_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("Q2Z_COMMIT").to_string(),
        stage: crate::http::strip_credentials(label),
        source: match &manifest.source {
            SourceInfo::Rest { url } => {
                format!("Qdrant at {}", crate::http::strip_credentials(url))
            }
            SourceInfo::Snapshot { files } => format!(
                "snapshot files: {}",
                files
                    .iter()
                    .map(|f| format!(
                        "{} ({} bytes, sha256 {})",
                        f.file,
                        f.bytes,
                        short(&f.sha256)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        exported_by: manifest.tool_version.clone(),
        runs: evidence.runs.clone(),
        collections,
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The ledger of the target a collection was imported into last (by its chunk times), with
/// the target's key.
fn last_target<'a>(
    ledger: &'a ImportLedger,
    name: &str,
) -> Option<(&'a str, &'a CollectionLedger)> {
    ledger
        .targets
        .iter()
        .filter_map(|(k, t)| t.get(name).map(|l| (k.as_str(), l)))
        .max_by_key(|(_, l)| {
            l.chunks
                .values()
                .filter_map(|c| c.imported_at_ms)
                .max()
                .unwrap_or(0)
        })
}

fn collection(
    stage: &Stage,
    name: &str,
    e: &CollectionEntry,
    ledger: &ImportLedger,
    sync: &SyncState,
    evidence: &Evidence,
) -> CollectionReport {
    let ev = evidence.collections.get(name).cloned().unwrap_or_default();
    let target = last_target(ledger, name);
    let chunks: Vec<ChunkView> = e
        .chunks
        .iter()
        .map(|c| {
            let l = target.and_then(|(_, t)| t.chunks.get(&c.file));
            ChunkView {
                file: c.file.clone(),
                range: c.range,
                rows: c.rows,
                bytes: c.bytes,
                state: l
                    .map(|l| format!("{:?}", l.state).to_lowercase())
                    .unwrap_or_else(|| "pending".into()),
                job: l.and_then(|l| l.job.clone()),
                last_error: l.and_then(|l| l.last_error.clone()),
            }
        })
        .collect();
    let export_progress = progress(e.chunks.iter().map(|c| (c.written_at_ms, c.rows)));
    let import_progress = progress(e.chunks.iter().map(|c| {
        let at = target
            .and_then(|(_, t)| t.chunks.get(&c.file))
            .and_then(|l| l.imported_at_ms);
        (at, c.rows)
    }));
    let last_count = ev.counts.last();
    let counts = CountsView {
        source: e.source_count_at_start,
        source_at_ms: e.source_taken_at.map(|s| s * 1000),
        staged: e.staged_rows(),
        staged_at_ms: e.chunks.iter().filter_map(|c| c.written_at_ms).max(),
        target: last_count.map(|c| c.target_rows),
        target_at_ms: last_count.map(|c| c.at_ms),
        history: ev.counts.clone(),
    };
    let pass = sync.collections.get(name);
    let sync_unfinished = pass.is_some_and(|p| p.unfinished(e.ranges.len()));
    let mut r = CollectionReport {
        name: name.to_string(),
        target: e.mapping.target.clone(),
        verdict: Verdict {
            status: Status::NotVerified,
            reason: String::new(),
        },
        export_state: format!("{:?}", e.state).to_lowercase(),
        mapping: mapping(e),
        set_aside: set_aside(stage, e),
        counts,
        chunks,
        import_target: target.map(|(k, _)| k.to_string()),
        import_mode: target
            .and_then(|(_, t)| t.mode)
            .map(|m| format!("{m:?}").to_lowercase()),
        verification: ev.verification.clone(),
        repairs: ev.repairs.clone(),
        search: ev.search.clone(),
        sync_passes: ev.sync_passes.clone(),
        sync_unfinished,
        alias: ev.alias.clone(),
        export_progress,
        import_progress,
        warnings: e.warnings.clone(),
    };
    r.verdict = verdict(e, &ev, &r);
    r
}

/// Cumulative rows at each time a chunk reached a step (chunks without a time left out).
fn progress(chunks: impl Iterator<Item = (Option<u64>, u64)>) -> Vec<(u64, u64)> {
    let mut at: Vec<(u64, u64)> = chunks.filter_map(|(t, n)| t.map(|t| (t, n))).collect();
    at.sort_unstable();
    let mut total = 0;
    at.into_iter()
        .map(|(t, n)| {
            total += n;
            (t, total)
        })
        .collect()
}

/// PASSED only when the last verification passed, no sync changed the target after it, and
/// every search-parity field held; otherwise why not, and what to run.
pub fn verdict(e: &CollectionEntry, ev: &CollectionEvidence, r: &CollectionReport) -> Verdict {
    let not = |reason: String| Verdict {
        status: Status::NotVerified,
        reason,
    };
    let failed = |reason: String| Verdict {
        status: Status::Failed,
        reason,
    };
    if e.state != ExportState::Exported {
        return not(format!(
            "the export is not finished ({}); run the same q2z export again",
            r.export_state
        ));
    }
    if r.sync_unfinished {
        return not(
            "a sync pass stopped part-way (the target is between two states); run the same q2z sync again".into(),
        );
    }
    let Some(v) = &ev.verification else {
        return not(
            "no verification recorded; run q2z verify (or q2z import, which verifies)".into(),
        );
    };
    if !v.ok {
        let mut why = Vec::new();
        if v.target_rows != v.staged {
            why.push(format!(
                "the target held {} rows for {} staged",
                v.target_rows, v.staged
            ));
        }
        if !v.bad_chunks.is_empty() {
            why.push(format!("{} chunks with other counts", v.bad_chunks.len()));
        }
        if v.mismatch_count > 0 {
            why.push(format!("{} compared rows differ", v.mismatch_count));
        }
        if why.is_empty() {
            why.push("the verification did not pass".into());
        }
        return failed(format!("{}; run q2z verify --repair", why.join(", ")));
    }
    if let Some(p) = ev.sync_passes.iter().rev().find(|p| p.ended_ms > v.at_ms) {
        return not(format!(
            "sync pass {} changed the target after the last verification; run q2z verify",
            p.pass
        ));
    }
    if let Some(f) = ev
        .search
        .as_ref()
        .and_then(|s| s.fields.iter().find(|f| !f.ok))
    {
        return failed(format!(
            "search parity of '{}'{}: mean overlap@{} {:.3} is under the minimum asked for",
            f.field,
            f.filtered_on
                .as_ref()
                .map(|k| format!(" (filtered on {k})"))
                .unwrap_or_default(),
            f.top_k,
            f.mean_overlap
        ));
    }
    let search = ev
        .search
        .as_ref()
        .and_then(|s| {
            s.fields
                .iter()
                .filter(|f| f.note.is_none() && !f.queries.is_empty())
                .map(|f| f.mean_overlap)
                .reduce(f64::min)
        })
        .map(|o| format!("; search overlap at least {o:.3} (mean per field)"))
        .unwrap_or_default();
    Verdict {
        status: Status::Passed,
        reason: format!(
            "the target holds the {} staged rows; {} rows compared field by field ({}){search}",
            v.staged, v.rows_compared, v.mode
        ),
    }
}

fn mapping(e: &CollectionEntry) -> MappingView {
    let m = &e.mapping;
    let schema = &e.milvus_schema;
    let index_of = |field: &str| -> Option<String> {
        schema["indexParams"]
            .as_array()?
            .iter()
            .find(|i| i["fieldName"] == field)
            .map(|i| {
                [i["indexType"].as_str(), i["metricType"].as_str()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
    };
    let from = |field: &str| -> String {
        if field == m.id_field {
            return format!("point id ({:?})", m.id_kind).to_lowercase();
        }
        if let Some(v) = m.vectors.iter().find(|v| v.field == field) {
            let name = if v.source.is_empty() {
                "(unnamed)"
            } else {
                &v.source
            };
            return format!("vector {name}");
        }
        if let Some(s) = m.scalars.iter().find(|s| s.field == field) {
            return match s.from {
                ScalarFrom::ShardKey => "shard key".into(),
                ScalarFrom::Payload => format!("payload key {}", s.key),
            };
        }
        String::new()
    };
    let mut fields: Vec<FieldView> = schema["schema"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let name = f["fieldName"].as_str().unwrap_or_default().to_string();
            FieldView {
                data_type: type_text(f),
                from: from(&name),
                index: index_of(&name),
                name,
            }
        })
        .collect();
    // Array of Structs fields (a multivector kept whole): the struct, typed by its sub-field,
    // and the index on `F[v]`.
    for st in schema["schema"]["structFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = st["fieldName"].as_str().unwrap_or_default().to_string();
        let sub = &st["fields"][0];
        fields.push(FieldView {
            data_type: format!(
                "ArrayOfStruct{{{}: {}}}",
                sub["fieldName"].as_str().unwrap_or("?"),
                type_text(sub)
            ),
            from: from(&name),
            index: index_of(&format!(
                "{name}[{}]",
                sub["fieldName"].as_str().unwrap_or("?")
            )),
            name,
        });
    }
    fields.push(FieldView {
        name: META.into(),
        data_type: "JSON (dynamic field)".into(),
        from: "every other payload key".into(),
        index: None,
    });
    MappingView {
        fields,
        meta_keys: m
            .json_indexes
            .iter()
            .map(|i| format!("{} (JSON path index, {})", i.key, i.cast_type))
            .collect(),
        excluded_vectors: m.excluded_vectors.clone(),
    }
}

/// `FloatVector(768)`, `VarChar(512)`, `Array<Int64>(100)`, `Int64`.
fn type_text(f: &Value) -> String {
    let ty = f["dataType"].as_str().unwrap_or("?");
    let p = &f["elementTypeParams"];
    let ty = match f["elementDataType"].as_str() {
        Some(el) => format!("{ty}<{el}>"),
        None => ty.to_string(),
    };
    let size = ["dim", "max_length", "max_capacity"]
        .iter()
        .filter_map(|k| match &p[k] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>();
    let nullable = if f["nullable"] == true {
        ", nullable"
    } else {
        ""
    };
    if size.is_empty() {
        format!("{ty}{nullable}")
    } else {
        format!("{ty}({}){nullable}", size.join(", "))
    }
}

fn set_aside(stage: &Stage, e: &CollectionEntry) -> SetAsideView {
    let files: Vec<_> = e.ranges.iter().flat_map(|r| &r.set_aside).collect();
    let mut reasons = BTreeMap::new();
    for f in &files {
        let Ok(file) = std::fs::File::open(stage.local_path(&f.file)) else {
            *reasons
                .entry("(file not in this copy of the stage)".into())
                .or_default() += f.points;
            continue;
        };
        let mut seen = 0;
        for line in std::io::BufReader::new(file)
            .lines()
            .map_while(std::result::Result::ok)
            .take(REASON_LINES)
        {
            let why = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["q2z_reason"].as_str().map(reason_kind))
                .unwrap_or_else(|| "no reason recorded".into());
            *reasons.entry(why).or_default() += 1;
            seen += 1;
        }
        if f.points > seen {
            *reasons
                .entry("(not read: past the first lines of a file)".into())
                .or_default() += f.points - seen;
        }
    }
    SetAsideView {
        points: e.set_aside_points(),
        files: files.iter().map(|f| f.file.clone()).collect(),
        reasons,
    }
}

/// A set-aside reason without the figures of one point, so points set aside for the same
/// reason count together (`$meta is 70123 bytes, over 65,536` → `$meta over 64 KiB`).
fn reason_kind(why: &str) -> String {
    if why.starts_with("$meta is ") {
        return "payload ($meta) over 64 KiB".into();
    }
    let mut out = String::with_capacity(why.len());
    let mut in_number = false;
    for c in why.chars() {
        let digit = c.is_ascii_digit();
        if digit && !in_number {
            out.push('N');
        } else if !digit {
            out.push(c);
        }
        in_number = digit;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_count_together_without_their_figures() {
        assert_eq!(
            reason_kind("$meta is 70123 bytes, over 65,536"),
            "payload ($meta) over 64 KiB"
        );
        assert_eq!(
            reason_kind("vector 'v' holds NaN at 12"),
            reason_kind("vector 'v' holds NaN at 7")
        );
    }

    #[test]
    fn progress_is_cumulative_in_time_order_and_skips_untimed_chunks() {
        let got = progress([(Some(30), 5), (None, 7), (Some(10), 2)].into_iter());
        assert_eq!(got, vec![(10, 2), (30, 7)]);
    }
}
