//! Bulk-import jobs (`jobs/import/*`), on a Milvus endpoint or through the Zilliz Cloud
//! control plane, with typed answers.

use super::{Milvus, as_u64};
use crate::error::{Error, Result};
use crate::sink::zilliz::ControlPlane;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// Pages of Zilliz Cloud's job list read at most (100 jobs each).
const MAX_LIST_PAGES: usize = 50;
/// After this long from its sending, a job-creation request that left no job never will: a
/// server creates the job while it answers the request.
pub const CREATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a job creation refused by the server's job limit (`maxImportJobNum`, 1,024
/// executing or pending jobs by default) is sent again before the run stops.
const JOB_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1800);

/// Bulk imports through the Zilliz Cloud control plane (`api.cloud.zilliz.com`) from the
/// user's own bucket (`objectUrls` + keys) or a Zilliz volume (`volumeName` + `dataPaths`).
#[derive(Clone)]
pub struct CloudImport {
    /// Control-plane client (its token is the Zilliz API key).
    pub api: ControlPlane,
    /// Cluster id (`in01-…`).
    pub cluster_id: String,
    /// Prefix that turns an object key into the URL Zilliz reads (`s3://bucket/`); with a
    /// volume, the volume's key prefix that is cut off to get the `dataPaths`.
    pub url_base: String,
    /// Import from this Zilliz volume instead of `objectUrls`.
    pub volume: Option<String>,
    /// Bucket credentials handed to the import job (never printed).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

/// The state of an import job as Milvus and Zilliz report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Importing,
    Completed,
    Failed,
    /// A two-phase job (3.0, `auto_commit` "false") that has read its files and waits,
    /// invisible, for `jobs/import/commit` or `/abort`.
    Uncommitted,
    /// Anything else (`None`, or a state a later version adds): still running for q2z.
    Other(String),
}

impl JobState {
    /// Whether the job has ended (completed or failed).
    pub fn is_final(&self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "Pending" => JobState::Pending,
            "Importing" | "PreImporting" | "Sorting" | "IndexBuilding" | "Committing" => {
                JobState::Importing
            }
            "Uncommitted" => JobState::Uncommitted,
            "Completed" => JobState::Completed,
            "Failed" => JobState::Failed,
            _ => JobState::Other(s),
        })
    }
}

/// A job id: Milvus sends a numeric string (or a number), Zilliz `job-…`.
fn job_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        v => Err(serde::de::Error::custom(format!(
            "job id {v} is neither text nor a number"
        ))),
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(as_u64(Some(&Value::deserialize(d)?)).unwrap_or(0))
}

/// One file of a job (`details[]`).
#[derive(Debug, Clone, Deserialize)]
pub struct JobFile {
    /// As Milvus prints it: Go's `%v` of the file group, e.g. `[q2z/c/part-0000-000000.parquet]`.
    #[serde(default, rename = "fileName")]
    pub file_name: String,
}

impl JobFile {
    /// The object keys of the file group (`[a b]` → `a`, `b`; a bare name stays as it is).
    pub fn paths(&self) -> Vec<&str> {
        let s = self.file_name.trim();
        let s = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(s);
        s.split_whitespace().collect()
    }
}

/// `jobs/import/describe` (or `get_progress`).
#[derive(Debug, Clone, Deserialize)]
pub struct ImportJob {
    #[serde(default, rename = "jobId", deserialize_with = "job_id")]
    pub job_id: String,
    pub state: JobState,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub progress: u64,
    #[serde(default, rename = "importedRows", deserialize_with = "lenient_u64")]
    pub imported_rows: u64,
    /// Rows the job read from its files (datacoord `GetJobProgress`; while Uncommitted, also
    /// what `importedRows` says).
    #[serde(default, rename = "totalRows", deserialize_with = "lenient_u64")]
    pub total_rows: u64,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub details: Vec<JobFile>,
}

impl ImportJob {
    /// Whether the job reads any of these paths, each matched whole (`part-0000-000000.parquet`
    /// recurs in every collection's directory: a suffix would match another collection's job).
    pub fn reads_any(&self, paths: &[String]) -> bool {
        self.details
            .iter()
            .flat_map(JobFile::paths)
            .any(|p| paths.iter().any(|k| p == k))
    }
}

/// One record of `jobs/import/list`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSummary {
    #[serde(rename = "jobId", deserialize_with = "job_id")]
    pub job_id: String,
    #[serde(default)]
    pub state: Option<JobState>,
}

impl Milvus {
    /// Starts an import job over object keys; returns the job id. Never repeated after an
    /// attempt that may have reached the server: the caller reconciles with
    /// [`Milvus::find_job_reading`] instead (a second job would import the rows twice).
    /// `attempt` tells this creation from earlier ones of the same files (a job that failed):
    /// on a server that honours `Idempotency-Key` (2.6.24, 3.0.2) the key — of the collection's
    /// id, the files and the attempt — makes a creation that is sent again, or that raced a
    /// lost answer, answer the same job instead of importing twice.
    pub fn import_create(&self, name: &str, files: &[String], attempt: u32) -> Result<String> {
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "jobId", deserialize_with = "job_id")]
            job_id: String,
        }
        let mut waited = std::time::Duration::ZERO;
        let d = loop {
            match self.send_import_create(name, files, attempt) {
                Err(Error::Milvus {
                    code: 2100 | 2101,
                    message,
                    ..
                }) if message.contains("number of jobs has reached the limit") => {
                    // datacoord import_util.go ValidateMaxImportJobExceed: the server refused
                    // before making a job (no Idempotency-Key is recorded either): sent again
                    // as it was, with the same key, once the server has room.
                    if waited >= JOB_LIMIT_WAIT {
                        return Err(Error::Other(format!(
                            "{name}: the target refuses new import jobs for {} s (\"{message}\"): too many import jobs are running or pending on it. Let them finish (or raise dataCoord.import.maxImportJobNum) and run the same command again",
                            waited.as_secs()
                        )));
                    }
                    let pause = (waited / 2).clamp(
                        std::time::Duration::from_secs(2),
                        std::time::Duration::from_secs(60),
                    );
                    tracing::warn!(
                        collection = name,
                        "the target's import job limit is reached; sending the creation again in {} s",
                        pause.as_secs()
                    );
                    std::thread::sleep(pause);
                    waited += pause;
                }
                r => break r?,
            }
        };
        Ok(Self::typed::<Created>("jobs/import/create", d)?.job_id)
    }

    /// One `jobs/import/create` request (see [`Milvus::import_create`]).
    fn send_import_create(&self, name: &str, files: &[String], attempt: u32) -> Result<Value> {
        Ok(match &self.cloud {
            None => {
                let groups: Vec<Vec<&String>> = files.iter().map(|f| vec![f]).collect();
                let key = self.idempotency_key(name, files, attempt)?;
                let mut body = json!({"collectionName": name, "files": groups});
                if self.server()?.kind.two_phase_import() {
                    // Nothing visible until q2z has checked the rows the job read (commit).
                    body["options"] = json!({"auto_commit": "false"});
                }
                self.post_create("/v2/vectordb/jobs/import/create", body, key.as_deref())?
            }
            Some(c) => {
                let mut body = json!({
                    "clusterId": c.cluster_id, "collectionName": name,
                    "dbName": self.ep.db().unwrap_or_default(), "partitionName": "",
                    "options": {},
                });
                if let Some(v) = &c.volume {
                    let paths: Vec<Vec<&str>> = files
                        .iter()
                        .map(|f| vec![f.strip_prefix(c.url_base.as_str()).unwrap_or(f)])
                        .collect();
                    body["volumeName"] = json!(v);
                    body["dataPaths"] = json!(paths);
                } else {
                    let urls: Vec<Vec<String>> = files
                        .iter()
                        .map(|f| vec![format!("{}{f}", c.url_base)])
                        .collect();
                    body["objectUrls"] = json!(urls);
                }
                if let (None, Some(a), Some(s)) = (&c.volume, &c.access_key, &c.secret_key) {
                    body["accessKey"] = json!(a);
                    body["secretKey"] = json!(s);
                }
                c.api.create_import(body)?
            }
        })
    }

    /// The `Idempotency-Key` of a job creation, where the server honours one: hex SHA-256 of
    /// the collection's id (a collection dropped and created again gets another, so its
    /// imports are never taken for the old one's), the object keys and the attempt.
    fn idempotency_key(
        &self,
        name: &str,
        files: &[String],
        attempt: u32,
    ) -> Result<Option<String>> {
        if !self.server()?.kind.import_idempotency() {
            return Ok(None);
        }
        use sha2::Digest;
        let id = self.describe(name)?.id().unwrap_or_default();
        let mut h = sha2::Sha256::new();
        h.update(format!("q2z-import\n{name}\n{id}\n{attempt}\n"));
        for f in files {
            h.update(f.as_bytes());
            h.update(b"\n");
        }
        Ok(Some(format!("q2z-{}", &hex::encode(h.finalize())[..40])))
    }

    /// Describes an import job (`describe`, falling back to `get_progress` on Milvus 2.4).
    pub fn import_describe(&self, job: &str) -> Result<ImportJob> {
        let d = if let Some(c) = &self.cloud {
            c.api.call(
                "jobs/import/describe",
                json!({"jobId": job, "clusterId": c.cluster_id}),
            )?
        } else {
            match self.call("jobs/import/describe", json!({"jobId": job})) {
                Err(Error::Http { status: 404, .. }) => {
                    self.call("jobs/import/get_progress", json!({"jobId": job}))?
                }
                r => r?,
            }
        };
        let mut j: ImportJob = Self::typed("jobs/import/describe", d)?;
        if j.job_id.is_empty() {
            j.job_id = job.to_string();
        }
        Ok(j)
    }

    /// Settles a two-phase job (3.0) that waits in state Uncommitted: commits it when it read
    /// exactly `rows` rows (the stage's count for its files; its rows become visible), aborts
    /// it otherwise (nothing of it ever lands). `rows` `None` (the caller no longer knows what
    /// the job was for) aborts. Returns why it was aborted, `None` once committed.
    pub fn settle_uncommitted(&self, d: &ImportJob, rows: Option<u64>) -> Result<Option<String>> {
        // datacoord import_util.go GetJobProgress: while Uncommitted, importedRows and
        // totalRows are both the rows the job read.
        let read = d.total_rows.max(d.imported_rows);
        let why = match rows {
            Some(want) if want == read => {
                self.call("jobs/import/commit", json!({"jobId": d.job_id}))?;
                tracing::info!(job = %d.job_id, rows = read, "import job read the stage's rows: committed");
                return Ok(None);
            }
            Some(want) => format!(
                "the job read {read} rows where the stage holds {want}: aborted before any row became visible"
            ),
            None => "an earlier run's job, replaced by this run's: aborted before any row became visible".to_string(),
        };
        self.call("jobs/import/abort", json!({"jobId": d.job_id}))?;
        tracing::warn!(job = %d.job_id, "{why}");
        Ok(Some(why))
    }

    /// Import jobs of a collection.
    pub fn import_list(&self, name: &str) -> Result<Vec<JobSummary>> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            records: Vec<JobSummary>,
        }
        let Some(c) = &self.cloud else {
            let d = self.call("jobs/import/list", json!({"collectionName": name}))?;
            if d.is_null() {
                return Ok(Vec::new());
            }
            return Ok(Self::typed::<List>("jobs/import/list", d)?.records);
        };
        // Zilliz Cloud pages the cluster's jobs (`pageSize`, `currentPage`; a page shorter than
        // its size is the last): read to the end, keep this collection's.
        #[derive(Deserialize)]
        struct Record {
            #[serde(flatten)]
            job: JobSummary,
            #[serde(default, rename = "collectionName")]
            collection: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            records: Vec<Record>,
        }
        const PAGE: usize = 100;
        let mut out = Vec::new();
        for page in 1..=MAX_LIST_PAGES {
            let d = c.api.call(
                "jobs/import/list",
                json!({"clusterId": c.cluster_id, "collectionName": name, "pageSize": PAGE, "currentPage": page}),
            )?;
            let records = if d.is_null() {
                Vec::new()
            } else {
                Self::typed::<Page>("jobs/import/list", d)?.records
            };
            let last = records.len() < PAGE;
            out.extend(
                records
                    .into_iter()
                    .filter(|r| r.collection.as_deref().is_none_or(|c| c == name))
                    .map(|r| r.job),
            );
            if last {
                return Ok(out);
            }
        }
        Err(Error::Other(format!(
            "Zilliz Cloud lists more than {} import jobs for cluster {}; reconciling a lost job creation needs them all: run the same command again once old jobs have expired",
            MAX_LIST_PAGES * PAGE,
            c.cluster_id
        )))
    }

    /// The forms in which a job may print the object `key` it reads: the key itself, the URL
    /// Zilliz was given (`url_base` + key), the path in a volume (key without its prefix).
    fn printed_forms(&self, keys: &[String]) -> Vec<String> {
        let mut out = keys.to_vec();
        if let Some(c) = &self.cloud {
            for k in keys {
                out.push(format!("{}{k}", c.url_base));
                if let Some(rel) = k.strip_prefix(c.url_base.as_str()) {
                    out.push(rel.to_string());
                }
            }
        }
        out
    }

    /// After a job creation whose answer was lost: the job of `name` that reads any of `keys`,
    /// among those not in `known`. A job that lists no files yet (Milvus fills `details` only
    /// after its pre-import) is waited for, up to `wait`; if it is still silent then, the
    /// outcome stays unknown and an error says so (sending again could import twice).
    pub fn find_job_reading(
        &self,
        name: &str,
        keys: &[String],
        known: &std::collections::BTreeSet<String>,
        wait: std::time::Duration,
    ) -> Result<Option<String>> {
        let keys = &self.printed_forms(keys);
        let mut silent = Vec::new();
        let found = crate::wait::until(std::time::Duration::from_secs(2), wait, || {
            silent.clear();
            let mut failed = None;
            for j in self.import_list(name)? {
                if known.contains(&j.job_id) {
                    continue;
                }
                let d = match self.import_describe(&j.job_id) {
                    Ok(d) => d,
                    Err(Error::Milvus { code: 2100, .. }) => continue,
                    Err(e) => return Err(e),
                };
                if d.reads_any(keys) {
                    // A failed job of the same files (an earlier attempt) is taken only if no
                    // other job holds them: adopting it would send rows that are already in.
                    if d.state == JobState::Failed {
                        failed.get_or_insert(d.job_id);
                        continue;
                    }
                    return Ok(Some(Some(d.job_id)));
                }
                if d.details.is_empty() && !d.state.is_final() {
                    silent.push(d.job_id);
                }
            }
            // Settled once no job is silent about its files.
            Ok(silent.is_empty().then_some(failed))
        })?;
        found.ok_or_else(|| Error::Other(format!(
            "an import job into {name} may have been created for these files, but Milvus does not yet say which files jobs {} read; run the same command again in a few minutes (sending the files now could import them twice)",
            silent.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_answers_parse_as_milvus_prints_them() {
        let j: ImportJob = serde_json::from_value(json!({
            "jobId": "4512", "collectionName": "c", "state": "Importing", "progress": 40,
            "importedRows": "1200", "totalRows": 3000,
            "details": [{"fileName": "[q2z/c/part-0000-000000.parquet]", "fileSize": 10}]
        }))
        .unwrap();
        assert_eq!(j.state, JobState::Importing);
        assert_eq!(j.imported_rows, 1200);
        assert_eq!(j.details[0].paths(), ["q2z/c/part-0000-000000.parquet"]);
        assert!(j.reads_any(&["q2z/c/part-0000-000000.parquet".into()]));
        assert!(!j.reads_any(&["q2z/c/part-0000-000001.parquet".into()]));
        let n: JobSummary =
            serde_json::from_value(json!({"jobId": 77, "state": "Failed"})).unwrap();
        assert_eq!(n.job_id, "77");
        assert_eq!(n.state, Some(JobState::Failed));
        let odd: ImportJob = serde_json::from_value(json!({"state": "None"})).unwrap();
        assert_eq!(odd.state, JobState::Other("None".into()));
        assert!(!odd.state.is_final());
        let volume = JobFile {
            file_name: "[c/part-0000-000000.parquet]".into(),
        };
        let j = ImportJob {
            job_id: "1".into(),
            state: JobState::Pending,
            progress: 0,
            imported_rows: 0,
            total_rows: 0,
            reason: None,
            details: vec![volume],
        };
        assert!(j.reads_any(&["c/part-0000-000000.parquet".into()]));
        // Another collection's file of the same name is not this job's.
        assert!(!j.reads_any(&["vol-prefix/q2z/d/c/part-0000-000000.parquet".into()]));
        assert!(!j.reads_any(&["part-0000-000000.parquet".into()]));
    }

    #[test]
    fn a_job_stalls_only_when_nothing_moves_for_the_limit() {
        let job = |state: &str, progress: u64, rows: u64| -> ImportJob {
            serde_json::from_value(
                json!({"jobId": "9", "state": state, "progress": progress, "importedRows": rows}),
            )
            .unwrap()
        };
        let limit = std::time::Duration::from_millis(1000);
        let mut w = StallWatch::default();
        w.check(&job("Importing", 10, 0), "c", limit).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(600));
        // Rows moved, progress did not: not stalled, and the clock starts again.
        w.check(&job("Importing", 10, 5), "c", limit).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(600));
        w.check(&job("Importing", 10, 5), "c", limit).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let e = w.check(&job("Importing", 10, 5), "c", limit).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("import job 9 into c has made no progress"),
            "{text}"
        );
        assert!(text.contains("run the same command later"), "{text}");
        // A job that ended is never a stall, however long it stayed the same.
        let mut w = StallWatch::default();
        w.check(&job("Completed", 100, 5), "c", limit).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        w.check(&job("Completed", 100, 5), "c", limit).unwrap();
    }
}

/// Notices a job whose state, progress and imported rows stay the same for too long.
#[derive(Default)]
pub struct StallWatch {
    last: std::collections::BTreeMap<String, (String, std::time::Instant)>,
}

impl StallWatch {
    pub fn check(&mut self, d: &ImportJob, target: &str, limit: std::time::Duration) -> Result<()> {
        let mark = format!("{:?}/{}/{}", d.state, d.progress, d.imported_rows);
        let since = self
            .last
            .entry(d.job_id.clone())
            .or_insert_with(|| (mark.clone(), std::time::Instant::now()));
        if since.0 != mark {
            *since = (mark, std::time::Instant::now());
        } else if since.1.elapsed() > limit && !d.state.is_final() {
            return Err(Error::Other(format!(
                "import job {} into {target} has made no progress for {} s (state {:?}). It is recorded in the stage's import ledger: run the same command later to keep waiting, or cancel it on the server and rerun",
                d.job_id,
                limit.as_secs(),
                d.state
            )));
        }
        Ok(())
    }
}

impl Milvus {
    /// Waits for an import job to end (completed or failed: the answer says which), looking
    /// every `poll`; a job whose state and progress stay the same for `stall` is an error (it
    /// stays recorded: a rerun waits again). A two-phase job is committed when it read `rows`
    /// rows and aborted otherwise ([`Milvus::settle_uncommitted`]).
    pub fn wait_job(
        &self,
        job: &str,
        target: &str,
        poll: std::time::Duration,
        stall: std::time::Duration,
        rows: Option<u64>,
    ) -> Result<ImportJob> {
        let mut watch = StallWatch::default();
        let ended = crate::wait::until(poll, std::time::Duration::MAX, || {
            let mut j = self.import_describe(job)?;
            if j.state == JobState::Uncommitted
                && let Some(why) = self.settle_uncommitted(&j, rows)?
            {
                j.state = JobState::Failed;
                j.reason = Some(why);
            }
            if j.state.is_final() {
                return Ok(Some(j));
            }
            watch.check(&j, target, stall)?;
            Ok(None)
        })?;
        Ok(ended.expect("an unbounded wait ends with an answer or an error"))
    }
}
