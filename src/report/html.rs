//! The report as one self-contained HTML page: inline CSS and SVG, no script, no font, no
//! image and no link to fetch, so it opens on an air-gapped laptop and can be attached to a
//! ticket. Endpoints are shown as `host:port` (the JSON keeps the URLs): the page holds no
//! URL at all.

use super::svg::{esc, fmt_num, histogram, lines};
use super::*;
use crate::stage::evidence::FieldSearchRecord;
use std::fmt::Write;

/// Chunks not in the target listed per collection; the JSON lists every chunk.
const CHUNK_ROWS: usize = 40;
/// Runs listed (the newest); the JSON lists every recorded one.
const RUN_ROWS: usize = 60;

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #d6dde4;padding-bottom:.2em}
h3{margin:1.2em 0 .4em;font-size:1.05em}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #d6dde4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-weight:700;padding:2px 8px;border-radius:4px;color:#fff;white-space:nowrap}
.PASSED{background:#1f7a3a}.FAILED{background:#b3261e}.NOT_VERIFIED{background:#8a6d00}
.meta{color:#56606b}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #d6dde4;background:#fff;font-size:10px;width:360px;height:150px}svg .bar{fill:#3b6ea5}
svg .axis{stroke:#56606b;fill:none}svg .e{text-anchor:end}svg .m{text-anchor:middle}
svg path.export,svg path.import{stroke-width:2;fill:none}svg path.export{stroke:#3b6ea5}svg path.import{stroke:#1f7a3a}svg .legend.export{fill:#3b6ea5}svg .legend.import{fill:#1f7a3a}
code,.mono{font-family:ui-monospace,monospace;font-size:.92em}ul{margin:.2em 0}
details summary{cursor:pointer;color:#3b6ea5}table.s td:nth-child(n+4):not(:last-child){text-align:right}";

/// Text shown in the page: escaped, with `http://` / `https://` endpoints as `host:port`.
fn text(s: &str) -> String {
    esc(&s.replace("https://", "").replace("http://", ""))
}

/// Unix milliseconds as `2026-12-05 01:02:03 UTC`.
fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

fn when_opt(ms: Option<u64>) -> String {
    ms.map(when).unwrap_or_else(|| "—".into())
}

fn badge(v: &Verdict) -> String {
    format!(
        r#"<span class="verdict {}">{}</span>"#,
        v.status.label().replace(' ', "_"),
        v.status.label()
    )
}

fn row(s: &mut String, cells: &[String]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "{c}");
    }
    s.push_str("</tr>\n");
}

fn td(x: impl std::fmt::Display) -> String {
    format!("<td>{}</td>", text(&x.to_string()))
}

fn tdn(x: impl std::fmt::Display) -> String {
    format!(r#"<td class="n">{}</td>"#, text(&x.to_string()))
}

fn head(s: &mut String, cols: &[&str]) {
    s.push_str("<table><tr>");
    for c in cols {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(64 << 10);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>q2z migration report — {}</title><style>{CSS}</style></head><body>\n",
        text(&r.stage)
    );
    let _ = write!(
        s,
        r#"<h1>Migration report</h1><p class="meta">Stage <code>{}</code> · source: {} · staged by q2z {} · report written {} by q2z {} (commit {})</p>"#,
        text(&r.stage),
        text(&r.source),
        text(&r.exported_by),
        when(r.generated_ms),
        text(&r.q2z_version),
        text(&r.commit),
    );
    s.push_str("<h2>Verdict</h2>\n");
    head(&mut s, &["Collection", "Target", "Verdict", "Why"]);
    for c in &r.collections {
        row(
            &mut s,
            &[
                format!(
                    r##"<td><a href="#c-{}">{}</a></td>"##,
                    anchor(&c.name),
                    text(&c.name)
                ),
                td(&c.target),
                format!("<td>{}</td>", badge(&c.verdict)),
                td(&c.verdict.reason),
            ],
        );
    }
    s.push_str("</table>\n");
    for c in &r.collections {
        collection(&mut s, c);
    }
    runs(&mut s, &r.runs);
    s.push_str("</body></html>\n");
    s
}

/// An id for a collection's section (names may hold any character).
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn collection(s: &mut String, c: &CollectionReport) {
    let _ = write!(
        s,
        r#"<section id="c-{}"><h2>{} → {} {}</h2><p class="verdict-line">{}: {}</p>"#,
        anchor(&c.name),
        text(&c.name),
        text(&c.target),
        badge(&c.verdict),
        c.verdict.status.label(),
        text(&c.verdict.reason),
    );
    counts(s, c);
    mapping(s, c);
    chunks(s, c);
    verification(s, c);
    search(s, c);
    sync(s, c);
    if !c.warnings.is_empty() {
        s.push_str("<h3>Export warnings</h3><ul>");
        for w in &c.warnings {
            let _ = write!(s, "<li>{}</li>", text(w));
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>\n");
}

fn counts(s: &mut String, c: &CollectionReport) {
    let k = &c.counts;
    s.push_str("<h3>Counts</h3>");
    head(s, &["", "Points / rows", "Counted"]);
    row(
        s,
        &[
            td("Source (at export)"),
            tdn(k.source),
            td(when_opt(k.source_at_ms)),
        ],
    );
    row(
        s,
        &[
            td("Staged rows"),
            tdn(k.staged),
            td(when_opt(k.staged_at_ms)),
        ],
    );
    row(
        s,
        &[
            td("Set aside in the stage"),
            tdn(c.set_aside.points),
            td("—"),
        ],
    );
    row(
        s,
        &[
            td("Target rows"),
            k.target.map(tdn).unwrap_or_else(|| td("not counted yet")),
            td(when_opt(k.target_at_ms)),
        ],
    );
    s.push_str("</table>");
    if k.history.len() > 1 {
        s.push_str("<details><summary>Every count recorded</summary>");
        head(s, &["When", "By", "Target", "Expected", "Counted"]);
        for h in &k.history {
            row(
                s,
                &[
                    td(when(h.at_ms)),
                    td(&h.by),
                    td(&h.target),
                    tdn(h.expected),
                    tdn(h.target_rows),
                ],
            );
        }
        s.push_str("</table></details>");
    }
    if c.set_aside.points > 0 {
        s.push_str("<h3>Set aside (kept whole in the stage, not in the target)</h3>");
        head(s, &["Reason", "Points"]);
        for (why, n) in &c.set_aside.reasons {
            row(s, &[td(why), tdn(n)]);
        }
        s.push_str("</table>");
        let _ = write!(
            s,
            "<p class=\"meta\">Files: {}</p>",
            c.set_aside
                .files
                .iter()
                .map(|f| format!("<code>{}</code>", text(f)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn mapping(s: &mut String, c: &CollectionReport) {
    s.push_str("<h3>Mapping</h3>");
    head(s, &["Milvus field", "Type", "From Qdrant", "Index"]);
    for f in &c.mapping.fields {
        row(
            s,
            &[
                format!("<td><code>{}</code></td>", text(&f.name)),
                td(&f.data_type),
                td(&f.from),
                td(f.index.as_deref().unwrap_or("—")),
            ],
        );
    }
    s.push_str("</table>");
    if !c.mapping.meta_keys.is_empty() {
        let _ = write!(
            s,
            "<p>Indexed inside <code>$meta</code>: {}</p>",
            text(&c.mapping.meta_keys.join(", "))
        );
    }
    if !c.mapping.excluded_vectors.is_empty() {
        let _ = write!(
            s,
            "<p>Vectors left out: {}</p>",
            text(&c.mapping.excluded_vectors.join(", "))
        );
    }
}

fn chunks(s: &mut String, c: &CollectionReport) {
    let mut states: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for ch in &c.chunks {
        let e = states.entry(ch.state.as_str()).or_default();
        e.0 += 1;
        e.1 += ch.rows;
    }
    let _ = write!(
        s,
        "<h3>Chunks</h3><p>{} files, {} bytes; export {}{}: {}</p>",
        c.chunks.len(),
        c.chunks.iter().map(|x| x.bytes).sum::<u64>(),
        text(&c.export_state),
        c.import_mode
            .as_ref()
            .map(|m| format!(", import by {}", text(m)))
            .unwrap_or_default(),
        states
            .iter()
            .map(|(st, (n, rows))| format!("{n} {} ({rows} rows)", text(st)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    chunk_charts(s, c);
    chunks_not_imported(s, c);
    chunk_target(s, c);
}

/// Chunks not (yet) in the target, one by one (imported ones are only counted).
fn chunks_not_imported(s: &mut String, c: &CollectionReport) {
    let listed: Vec<&ChunkView> = c.chunks.iter().filter(|x| x.state != "imported").collect();
    if listed.is_empty() {
        return;
    }
    let more = listed.len().saturating_sub(CHUNK_ROWS);
    s.push_str("<details open><summary>Chunks not in the target</summary>");
    head(
        s,
        &[
            "File",
            "Range",
            "Rows",
            "Bytes",
            "State",
            "Job",
            "Last error",
        ],
    );
    for ch in listed.into_iter().take(CHUNK_ROWS) {
        row(
            s,
            &[
                format!("<td><code>{}</code></td>", text(&ch.file)),
                tdn(ch.range),
                tdn(ch.rows),
                tdn(ch.bytes),
                td(&ch.state),
                td(ch.job.as_deref().unwrap_or("")),
                td(ch.last_error.as_deref().unwrap_or("")),
            ],
        );
    }
    s.push_str("</table>");
    if more > 0 {
        let _ = write!(s, "<p class=\"meta\">and {more} more (all in the JSON)</p>");
    }
    s.push_str("</details>");
}

/// Chunk sizes, rows staged and imported over time, and the rates between first and last.
fn chunk_charts(s: &mut String, c: &CollectionReport) {
    s.push_str(r#"<div class="charts">"#);
    if c.chunks.len() > 1 {
        let rows: Vec<f64> = c.chunks.iter().map(|x| x.rows as f64).collect();
        let hi = rows.iter().copied().fold(1.0, f64::max);
        s.push_str(&histogram(
            "Chunk sizes",
            "rows per chunk",
            &rows,
            12,
            0.0,
            hi,
        ));
    }
    if !c.export_progress.is_empty() || !c.import_progress.is_empty() {
        s.push_str(&lines(
            "Rows staged and imported over time",
            "time since the first chunk",
            &[
                ("export", "export", &c.export_progress),
                ("import", "import", &c.import_progress),
            ],
        ));
    }
    s.push_str("</div>");
    for (what, p) in [
        ("export", &c.export_progress),
        ("import", &c.import_progress),
    ] {
        if let (Some(a), Some(b)) = (p.first(), p.last())
            && b.0 > a.0
        {
            let _ = write!(
                s,
                "<p class=\"meta\">{what}: {} rows/s between the first and the last chunk</p>",
                fmt_num((b.1 - a.1) as f64 * 1000.0 / (b.0 - a.0) as f64)
            );
        }
    }
}

fn chunk_target(s: &mut String, c: &CollectionReport) {
    if let Some(t) = &c.import_target {
        let _ = write!(
            s,
            "<p class=\"meta\">Chunk states in target <code>{}</code></p>",
            text(t)
        );
    }
}

fn verification(s: &mut String, c: &CollectionReport) {
    s.push_str("<h3>Last verification</h3>");
    let Some(v) = &c.verification else {
        s.push_str("<p>None recorded.</p>");
        return;
    };
    let _ = write!(
        s,
        "<p>{} by <code>q2z {}</code> against <code>{}</code>{}: {} — {} rows compared field by field ({}), {} fields each: {} values; target {} rows for {} staged.</p>",
        when(v.at_ms),
        text(&v.by),
        text(&v.target),
        v.target_release
            .as_ref()
            .map(|t| format!(" on {}", text(t)))
            .unwrap_or_default(),
        if v.ok {
            "passed"
        } else {
            "<strong>failed</strong>"
        },
        v.rows_compared,
        text(&v.mode),
        v.fields_per_row,
        v.rows_compared * v.fields_per_row,
        v.target_rows,
        v.staged,
    );
    let lists = [
        ("Chunks whose count differs", &v.bad_chunks),
        (
            "Chunks holding rows that differ",
            &v.chunks_with_differences,
        ),
        ("Differences (the first ones)", &v.mismatches),
        ("Notes", &v.notes),
    ];
    for (title, items) in lists {
        if items.is_empty() {
            continue;
        }
        let _ = write!(s, "<p>{title}:</p><ul>");
        for i in items.iter() {
            let _ = write!(s, "<li class=\"mono\">{}</li>", text(i));
        }
        s.push_str("</ul>");
    }
    if v.mismatch_count > v.mismatches.len() as u64 {
        let _ = write!(
            s,
            "<p class=\"meta\">{} differences in all.</p>",
            v.mismatch_count
        );
    }
    if !c.repairs.is_empty() {
        s.push_str("<h3>Repairs</h3>");
        head(s, &["When", "Chunks sent again"]);
        for rp in &c.repairs {
            row(s, &[td(when(rp.at_ms)), td(rp.chunks.join(", "))]);
        }
        s.push_str("</table>");
    }
}

fn search(s: &mut String, c: &CollectionReport) {
    let Some(sr) = &c.search else {
        s.push_str("<h3>Search parity</h3><p>Not checked (run <code>q2z verify --search N</code> with the source).</p>");
        return;
    };
    let _ = write!(
        s,
        "<h3>Search parity ({})</h3><table class=\"s\"><tr>",
        when(sr.at_ms)
    );
    // Numbers are right-aligned by the table's CSS (a class on each cell would cost ~15 bytes
    // a figure in every collection).
    let cols = [
        "Field",
        "Metric",
        "Filtered on",
        "Queries",
        "k",
        "Mean overlap@k",
        "Lowest",
        "Mean rank correlation",
        "Largest score difference",
        "Held",
    ];
    for c in cols {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
    let mut last_note = None;
    for f in &sr.fields {
        let held = match (&f.note, f.ok) {
            (Some(n), _) if last_note == Some(n) => "as above".to_string(),
            (Some(n), _) => n.clone(),
            (None, true) => "yes".into(),
            (None, false) => "NO".into(),
        };
        last_note = f.note.as_ref();
        row(
            s,
            &[
                format!("<td><code>{}</code></td>", text(&f.field)),
                td(&f.metric),
                td(f.filtered_on.as_deref().unwrap_or("—")),
                td(f.queries.len()),
                td(f.top_k),
                td(fmt_num(f.mean_overlap)),
                td(fmt_num(f.min_overlap)),
                td(fmt_num(f.mean_rank_correlation)),
                td(fmt_num(f.max_score_difference)),
                td(held),
            ],
        );
    }
    s.push_str("</table>");
    for f in sr.fields.iter().filter(|f| !f.queries.is_empty()) {
        let name = match &f.filtered_on {
            Some(k) => format!("{} (filtered on {k})", f.field),
            None => f.field.clone(),
        };
        // The distributions of the plain passes; a filtered pass has its table row and its
        // weakest queries (drawing both would double the page for every collection).
        let weak = f.queries.iter().any(|q| q.overlap < 1.0);
        if f.filtered_on.is_some() && !weak {
            continue;
        }
        let _ = write!(s, "<p><strong>{}</strong></p>", text(&name));
        if f.filtered_on.is_none() {
            distributions(s, f, &name);
        }
        let mut weakest: Vec<_> = f.queries.iter().filter(|q| q.overlap < 1.0).collect();
        weakest.sort_by(|a, b| a.overlap.total_cmp(&b.overlap));
        if !weakest.is_empty() {
            s.push_str("<p>Weakest queries (the point whose vector was the query):</p><ul>");
            for q in weakest.iter().take(5) {
                let _ = write!(
                    s,
                    "<li>point <code>{}</code>: overlap {}, rank correlation {}</li>",
                    text(&q.point),
                    fmt_num(q.overlap),
                    fmt_num(q.rank_correlation)
                );
            }
            s.push_str("</ul>");
        }
    }
}

/// The three histograms of one pass: overlap@k, rank correlation, score difference.
fn distributions(s: &mut String, f: &FieldSearchRecord, name: &str) {
    let over: Vec<f64> = f.queries.iter().map(|q| q.overlap).collect();
    let rank: Vec<f64> = f.queries.iter().map(|q| q.rank_correlation).collect();
    let diff: Vec<f64> = f.queries.iter().map(|q| q.score_difference).collect();
    let hi = diff.iter().copied().fold(0.0, f64::max);
    let charts = [
        (
            format!("overlap@{} of {name}", f.top_k),
            "overlap@k per query",
            over,
            0.0,
            1.0,
        ),
        (
            format!("rank correlation of {name}"),
            "Spearman rank correlation per query",
            rank,
            -1.0,
            1.0,
        ),
        (
            format!("score difference of {name}"),
            "largest score difference per query",
            diff,
            0.0,
            if hi > 0.0 { hi } else { 1e-6 },
        ),
    ];
    // A distribution of one value is said in words: a chart of one bar tells no more.
    let (same, spread): (Vec<_>, Vec<_>) = charts.into_iter().partition(|c| {
        let mut finite = c.2.iter().filter(|v| v.is_finite());
        let first = finite.next();
        finite.all(|v| Some(v) == first)
    });
    if !same.is_empty() {
        let said: Vec<String> = same
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.1,
                    c.2.first().map_or("—".into(), |v| fmt_num(*v))
                )
            })
            .collect();
        let _ = write!(
            s,
            "<p class=\"meta\">The same for all {} queries — {}</p>",
            f.queries.len(),
            text(&said.join("; "))
        );
    }
    if !spread.is_empty() {
        s.push_str("<div class=\"charts\">");
        for (title, label, values, lo, hi) in spread {
            s.push_str(&histogram(&title, label, &values, 10, lo, hi));
        }
        s.push_str("</div>");
    }
}

fn sync(s: &mut String, c: &CollectionReport) {
    if c.sync_passes.is_empty() && !c.sync_unfinished && c.alias.is_none() {
        return;
    }
    if !c.sync_passes.is_empty() || c.sync_unfinished {
        s.push_str("<h3>Sync passes</h3>");
        if c.sync_unfinished {
            s.push_str("<p><strong>A pass stopped part-way</strong>: run the same <code>q2z sync</code> again.</p>");
        }
        head(
            s,
            &[
                "Pass",
                "Began",
                "Ended",
                "Inserted",
                "Updated",
                "Deleted",
                "By bulk import",
                "Set aside",
                "Target rows",
                "Lag (s)",
            ],
        );
        for p in &c.sync_passes {
            row(
                s,
                &[
                    tdn(p.pass),
                    td(when(p.started_ms)),
                    td(when(p.ended_ms)),
                    tdn(p.inserted),
                    tdn(p.updated),
                    tdn(p.deleted),
                    tdn(p.bulk_rows),
                    tdn(p.set_aside),
                    tdn(p.target_rows),
                    tdn(fmt_num(
                        p.ended_ms.saturating_sub(p.started_ms) as f64 / 1000.0,
                    )),
                ],
            );
        }
        s.push_str("</table><p class=\"meta\">Lag: a pass holds every change made in the source before it began; changes during it wait for the next pass.</p>");
    }
    if let Some(a) = &c.alias {
        let _ = write!(
            s,
            "<h3>Cut-over</h3><p>{}: alias <code>{}</code> → <code>{}</code>{}.</p>",
            when(a.at_ms),
            text(&a.alias),
            text(&a.target),
            a.before
                .as_ref()
                .map(|b| format!(" (switched from <code>{}</code>)", text(b)))
                .unwrap_or_else(|| " (created)".into())
        );
    }
}

fn runs(s: &mut String, runs: &[RunRecord]) {
    s.push_str("<h2>Runs</h2>");
    if runs.is_empty() {
        s.push_str("<p>None recorded.</p>");
        return;
    }
    s.push_str("<p class=\"meta\">Each command run on this stage, as it was typed (secrets replaced by ***), to reproduce the migration.</p>");
    head(s, &["Began", "Command", "Seconds", "Exit", "q2z", "Error"]);
    let skip = runs.len().saturating_sub(RUN_ROWS);
    for r in &runs[skip..] {
        row(
            s,
            &[
                td(when(r.started_ms)),
                format!("<td class=\"mono\">q2z {}</td>", text(&r.args.join(" "))),
                tdn(fmt_num(r.seconds)),
                tdn(r.exit_code),
                td(format!("{} ({})", r.q2z_version, r.commit)),
                td(r.error.as_deref().unwrap_or("")),
            ],
        );
    }
    s.push_str("</table>");
    if skip > 0 {
        let _ = write!(
            s,
            "<p class=\"meta\">and {skip} earlier runs (all in the JSON)</p>"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_endpoints_lose_their_scheme() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            text("at https://h:1/x and http://q:6333"),
            "at h:1/x and q:6333"
        );
    }
}
