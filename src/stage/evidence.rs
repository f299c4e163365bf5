//! `evidence.json`: what the commands found, kept for the migration report (`q2z report`):
//! every run (command, flags without secrets, q2z version and commit, target release, exit
//! code), and per collection the counts with their times, the last verification, the repairs,
//! the last search-parity figures per query, the sync passes and the alias switch. Each list
//! is bounded, so the file stays small however long the migration runs.

use super::Stage;
use super::fsutil::write_atomic;
use super::manifest::stage_err;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// File name of the evidence.
pub const EVIDENCE: &str = "evidence.json";

/// Runs kept (the oldest go first).
const MAX_RUNS: usize = 200;
/// Counts, repairs and sync passes kept per collection.
const MAX_PER_COLLECTION: usize = 100;
/// Difference lines kept per verification.
const MAX_MISMATCH_LINES: usize = 20;

/// Everything recorded for the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub format_version: u32,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    #[serde(default)]
    pub collections: BTreeMap<String, CollectionEvidence>,
}

/// One q2z command run on the stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// `export`, `import`, `verify`, `sync`, `migrate`.
    pub command: String,
    /// The command line after `q2z`, secrets replaced by `***` (see [`redact_args`]).
    pub args: Vec<String>,
    pub q2z_version: String,
    pub commit: String,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub seconds: f64,
    pub exit_code: u8,
    /// The error the run stopped on (credentials stripped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What was found for one collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionEvidence {
    #[serde(default)]
    pub counts: Vec<CountRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationRecord>,
    #[serde(default)]
    pub repairs: Vec<RepairRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchRecord>,
    #[serde(default)]
    pub sync_passes: Vec<SyncPassRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasRecord>,
}

/// Counts taken by one command.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CountRecord {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The command that counted.
    pub by: String,
    /// The target collection.
    pub target: String,
    /// Rows the target must hold: the staged rows, or after a sync pass the source's points.
    pub expected: u64,
    /// Rows counted in the target.
    pub target_rows: u64,
    /// Points set aside in the stage (not rows of the target).
    pub set_aside: u64,
}

/// The last verification of a collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerificationRecord {
    pub at_ms: u64,
    pub by: String,
    pub target: String,
    /// The target server as q2z knew it (`Milvus 2.5.16 (as given by --milvus-version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_release: Option<String>,
    /// `sampled` or `full`.
    pub mode: String,
    /// Rows fetched from the target and compared field by field with the staged rows.
    pub rows_compared: u64,
    /// Fields of each row compared (id, vectors, scalar fields, `$meta`).
    pub fields_per_row: u64,
    pub staged: u64,
    pub target_rows: u64,
    /// Chunks whose count in the target differs from the stage.
    pub bad_chunks: Vec<String>,
    /// Chunks holding rows whose values differ.
    pub chunks_with_differences: Vec<String>,
    /// The first differences, one line each.
    pub mismatches: Vec<String>,
    pub mismatch_count: u64,
    pub notes: Vec<String>,
    pub ok: bool,
}

/// One repair (`verify --repair`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RepairRecord {
    pub at_ms: u64,
    /// The chunks whose staged ids were deleted in the target and sent again.
    pub chunks: Vec<String>,
}

/// The last search-parity check of a collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SearchRecord {
    pub at_ms: u64,
    pub fields: Vec<FieldSearchRecord>,
}

/// Search parity of one vector field (one pass: plain or filtered).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FieldSearchRecord {
    pub field: String,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered_on: Option<String>,
    pub top_k: usize,
    pub mean_overlap: f64,
    pub min_overlap: f64,
    pub mean_rank_correlation: f64,
    pub max_score_difference: f64,
    /// Per query: (query point, overlap@k, rank correlation, largest score difference).
    pub queries: Vec<QueryRecord>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One query of a search-parity check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryRecord {
    /// Id of the point whose vector was the query.
    pub point: String,
    pub overlap: f64,
    pub rank_correlation: f64,
    pub score_difference: f64,
}

/// One sync pass over a collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SyncPassRecord {
    pub pass: u64,
    /// Unix milliseconds when the run that finished the pass began and ended: changes made in
    /// the source before the start are in the target at the end.
    pub started_ms: u64,
    pub ended_ms: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub bulk_rows: u64,
    pub set_aside: u64,
    pub target_rows: u64,
    pub ok: bool,
}

/// The alias switched to the collection by `import --alias`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AliasRecord {
    pub at_ms: u64,
    pub alias: String,
    pub target: String,
    /// The collection the alias named before (`None`: created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl Evidence {
    /// Adds a run, keeping the last [`MAX_RUNS`].
    pub fn add_run(&mut self, r: RunRecord) {
        self.runs.push(r);
        trim_front(&mut self.runs, MAX_RUNS);
    }

    /// The evidence of one collection (created empty).
    pub fn collection(&mut self, name: &str) -> &mut CollectionEvidence {
        self.collections.entry(name.to_string()).or_default()
    }
}

impl CollectionEvidence {
    /// Adds counts, keeping the last [`MAX_PER_COLLECTION`].
    pub fn add_counts(&mut self, c: CountRecord) {
        self.counts.push(c);
        trim_front(&mut self.counts, MAX_PER_COLLECTION);
    }

    /// Adds a repair, keeping the last [`MAX_PER_COLLECTION`].
    pub fn add_repair(&mut self, r: RepairRecord) {
        self.repairs.push(r);
        trim_front(&mut self.repairs, MAX_PER_COLLECTION);
    }

    /// Adds a sync pass (replacing a record of the same pass), keeping the last
    /// [`MAX_PER_COLLECTION`].
    pub fn add_sync_pass(&mut self, p: SyncPassRecord) {
        self.sync_passes.retain(|x| x.pass != p.pass);
        self.sync_passes.push(p);
        trim_front(&mut self.sync_passes, MAX_PER_COLLECTION);
    }

    /// Records a verification (the last one replaces the one before), with its counts.
    pub fn set_verification(&mut self, mut v: VerificationRecord) {
        v.mismatch_count = v.mismatch_count.max(v.mismatches.len() as u64);
        v.mismatches.truncate(MAX_MISMATCH_LINES);
        self.add_counts(CountRecord {
            at_ms: v.at_ms,
            by: v.by.clone(),
            target: v.target.clone(),
            expected: v.staged,
            target_rows: v.target_rows,
            set_aside: 0,
        });
        self.verification = Some(v);
    }
}

fn trim_front<T>(v: &mut Vec<T>, max: usize) {
    if v.len() > max {
        v.drain(..v.len() - max);
    }
}

/// Flags whose value is a secret: replaced by `***` in a recorded command line.
const SECRET_FLAGS: [&str; 5] = [
    "--api-key",
    "--token",
    "--zilliz-api-key",
    "--s3-access-key",
    "--s3-secret-key",
];

/// A command line as it may be recorded: the values of secret flags (as `--flag VALUE` or
/// `--flag=VALUE`) become `***`, and credentials in URLs (`https://user:pass@host`) go.
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if std::mem::take(&mut hide_next) {
            out.push("***".to_string());
            continue;
        }
        if let Some((flag, _)) = a.split_once('=')
            && SECRET_FLAGS.contains(&flag)
        {
            out.push(format!("{flag}=***"));
            continue;
        }
        hide_next = SECRET_FLAGS.contains(&a.as_str());
        out.push(crate::http::strip_credentials(a));
    }
    out
}

/// Unix milliseconds, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Stage {
    /// The evidence recorded so far (empty when none was).
    pub fn evidence(&self) -> Result<Evidence> {
        match std::fs::read(self.file(EVIDENCE)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                stage_err(
                    self.dir(),
                    format!("{EVIDENCE} is damaged ({e}); move it away (the report then starts from what the next commands record)"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Evidence {
                format_version: 1,
                ..Default::default()
            }),
            Err(e) => Err(Error::io(self.file(EVIDENCE), e)),
        }
    }

    /// Adds to the evidence and writes it atomically (on object storage: a conditional put).
    /// A damaged file is set aside as `evidence.json.damaged` and started again: the report
    /// is never a reason for a migration command to fail.
    pub fn record(&self, add: impl FnOnce(&mut Evidence)) -> Result<()> {
        let mut ev = match self.evidence() {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "starting the report evidence again");
                let _ = std::fs::rename(
                    self.file(EVIDENCE),
                    self.file(&format!("{EVIDENCE}.damaged")),
                );
                Evidence {
                    format_version: 1,
                    ..Default::default()
                }
            }
        };
        add(&mut ev);
        let text = serde_json::to_vec_pretty(&ev).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&self.file(EVIDENCE), &text)?;
        if let Some(r) = self.remote() {
            r.push_state(self.dir(), EVIDENCE)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn secrets_never_reach_the_recorded_command_line() {
        let got = redact_args(&s(&[
            "import",
            "--token",
            "root:Milvus",
            "--api-key=abc",
            "--milvus-url",
            "http://root:pw@host:19530",
            "--s3-secret-key",
            "SECRET",
            "--stage",
            "st",
        ]));
        let text = got.join(" ");
        for secret in ["root:Milvus", "abc", "pw@", "SECRET"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            got,
            s(&[
                "import",
                "--token",
                "***",
                "--api-key=***",
                "--milvus-url",
                "http://host:19530",
                "--s3-secret-key",
                "***",
                "--stage",
                "st"
            ])
        );
    }

    #[test]
    fn lists_stay_bounded_and_a_pass_is_recorded_once() {
        let mut ev = Evidence::default();
        for i in 0..(MAX_RUNS + 5) {
            ev.add_run(RunRecord {
                started_ms: i as u64,
                ..Default::default()
            });
        }
        assert_eq!(ev.runs.len(), MAX_RUNS);
        assert_eq!(ev.runs[0].started_ms, 5);
        let c = ev.collection("docs");
        c.add_sync_pass(SyncPassRecord {
            pass: 1,
            inserted: 1,
            ..Default::default()
        });
        c.add_sync_pass(SyncPassRecord {
            pass: 1,
            inserted: 2,
            ..Default::default()
        });
        assert_eq!(c.sync_passes.len(), 1);
        assert_eq!(c.sync_passes[0].inserted, 2);
        c.set_verification(VerificationRecord {
            mismatches: (0..50).map(|i| i.to_string()).collect(),
            ..Default::default()
        });
        let v = c.verification.as_ref().unwrap();
        assert_eq!((v.mismatches.len(), v.mismatch_count), (20, 50));
        assert_eq!(c.counts.len(), 1);
    }
}
