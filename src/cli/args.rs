//! Flags of every command.

use crate::stage::manifest::Part;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Move vector collections from Qdrant into Zilliz Cloud or Milvus ≥ 2.4 through a portable,
/// checksummed Parquet staging directory. Every command can be run again to continue.
///
/// Exit codes: 0 ok, 1 failure, 2 usage, 3 verification mismatch, 130 interrupted.
#[derive(Debug, Parser)]
#[command(
    name = "q2z",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("Q2Z_COMMIT"), ", built ", env!("Q2Z_BUILD_DATE"), ")"),
    about,
    long_about = None
)]
pub struct Cli {
    /// More log detail (-v debug, -vv trace). Q2Z_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preview the Qdrant → Milvus schema mapping and write an editable mapping file.
    ///
    /// Example: q2z plan --qdrant-url http://localhost:6333 --mapping-out mapping.toml
    Plan(Box<PlanArgs>),
    /// Export Qdrant collections into a staging directory (resumable).
    ///
    /// Examples:
    ///   q2z export --qdrant-url http://localhost:6333 --stage ./stage
    ///   q2z export --snapshot products.snapshot --stage ./stage
    Export(Box<ExportArgs>),
    /// Import a staging directory into Milvus / Zilliz Cloud, then verify (resumable).
    ///
    /// Example: q2z import --stage ./stage --milvus-url http://localhost:19530 --mode upsert
    Import(Box<ImportArgs>),
    /// Export then import in one run.
    Migrate(Box<MigrateArgs>),
    /// Compare staging and target: counts per chunk and sampled points field by field.
    Verify(Box<VerifyArgs>),
    /// Show what is staged, uploaded, imported and verified.
    Status(StatusArgs),
    /// Bring the target up to date with what changed in the live source since the export:
    /// inserted and changed points are upserted, vanished ones deleted (resumable).
    ///
    /// Example: q2z sync --stage ./stage --qdrant-url http://qdrant:6333
    ///          --milvus-url http://milvus:19530 --dry-run
    Sync(Box<SyncArgs>),
    /// Check a target before anything is written: which server it is (Milvus release or
    /// Zilliz Cloud), what its REST layer supports, and that the token and database work.
    ///
    /// Example: q2z doctor --milvus-url http://milvus:19530 --milvus-version 2.4.9
    Doctor(DoctorArgs),
    /// Work on staging directories: join the parts of `export --part I/N`.
    #[command(subcommand)]
    Stage(StageCommand),
    /// Print a shell completion script.
    ///
    /// Example: q2z completions bash > /etc/bash_completion.d/q2z
    Completions(CompletionsArgs),
    /// Write the migration report of a stage: one self-contained HTML file (and JSON) with
    /// each collection's verdict, counts, mapping, verification, search parity and sync passes.
    ///
    /// Example: q2z report --stage ./stage --out migration-report.html
    Report(ReportArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    ///
    /// Example: q2z manpage --dir /usr/local/share/man/man1   (q2z.1, q2z-export.1, …)
    Manpage(ManpageArgs),
}

/// `q2z report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub stage: StageArg,
    /// The HTML file to write; the same content as JSON goes beside it (`.json`).
    #[arg(long, default_value = "migration-report.html")]
    pub out: PathBuf,
    /// Print the report as JSON instead of the summary lines.
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// The stage of a command whose runs the migration report lists (export, import,
    /// migrate, verify, sync), with the command's name.
    pub fn recorded_stage(&self) -> Option<(&'static str, &StageArg)> {
        match self {
            Command::Export(a) => Some(("export", &a.stage)),
            Command::Import(a) => Some(("import", &a.stage)),
            Command::Migrate(a) => Some(("migrate", &a.stage)),
            Command::Verify(a) => Some(("verify", &a.stage)),
            Command::Sync(a) => Some(("sync", &a.stage)),
            _ => None,
        }
    }
}

/// `q2z doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `q2z manpage`.
#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write q2z.1 and a page per subcommand (q2z-export.1, q2z-stage-merge.1, …) here instead
    /// of printing q2z.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// `q2z sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub stage: StageArg,
    /// Qdrant REST URL of the live server the stage was exported from.
    #[arg(long, env = "QDRANT_URL")]
    pub qdrant_url: String,
    /// Qdrant API key (never logged).
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// A range of the export's plan with at least this many inserted or changed rows sends
    /// them as one Parquet file through a bulk import job instead of upserts (needs the
    /// bucket: --s3-bucket …). Its ids are deleted first: they are missing from the target
    /// until the job ends.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub bulk_over: u64,
    /// Count the points to insert, update and delete; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Points per scroll page (1..=10000).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub page_size: u16,
    /// Rows per upsert request, ids per delete request (1..=10000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub batch: u16,
    /// Ranges of the export's plan read at once, each with its own scroll cursor (1..=256).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Points of one range compared at a time, on each side (source and target record): a
    /// range is read in windows of this size, so memory stays flat at any collection size
    /// (about 200 bytes per point per worker).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub diff_window: u64,
    /// Collections to sync (default: every staged one).
    #[arg(long = "collection", short = 'c')]
    pub collections: Vec<String>,
    /// Read in full only the points whose payload field FIELD (a datetime, or an integer such
    /// as a version counter, that the application sets on every write; index it in Qdrant) is
    /// at or after the pass's bound — a time: the start of the last sync pass (or of the
    /// export); a counter: the largest value the last pass read (the first pass needs --since)
    /// — or that lack the field; an id-only scan finds inserted and deleted points. Default:
    /// compare every point's digest.
    #[arg(long, value_name = "FIELD")]
    pub changed_since_field: Option<String>,
    /// With --changed-since-field: the bound, as the field holds it (an RFC 3339 time such as
    /// 2026-11-30T08:00:00Z, or a number: a version counter, milliseconds); needed after an
    /// export from snapshot files, whose time q2z cannot know.
    #[arg(long, requires = "changed_since_field", value_parser = crate::sync::changed::parse_since)]
    pub since: Option<serde_json::Value>,
    /// With --changed-since-field: taken off a bound q2z derives — seconds off a time bound
    /// (writers' clocks that run behind this machine's), units off a counter's (the largest
    /// value the last pass read; writes still in flight then).
    #[arg(long, default_value_t = 300, requires = "changed_since_field")]
    pub since_margin: u64,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `q2z stage …`.
#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// Join the part stages of one `export --part I/N` plan into one stage to import: checks
    /// that they come from one plan, are all there and disjoint, then links (or copies) their
    /// files under new names. Run it again after an interruption.
    ///
    /// Example: q2z stage merge part-0 part-1 part-2 --into ./stage
    Merge(MergeArgs),
}

/// `q2z stage merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The part stages (every part of the plan, in any order).
    #[arg(required = true, num_args = 1..)]
    pub parts: Vec<PathBuf>,
    /// The stage to write (new, or one an earlier merge of the same parts wrote).
    #[arg(long)]
    pub into: PathBuf,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// `q2z completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where to read Qdrant data from.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Qdrant REST URL of a live server (e.g. http://localhost:6333).
    #[arg(long, env = "QDRANT_URL", conflicts_with = "snapshot")]
    pub qdrant_url: Option<String>,
    /// Qdrant API key (sent as the `api-key` header; never logged).
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Qdrant snapshot file(s) (collection or shard snapshots; offline, no server needed).
    #[arg(long, num_args = 1..)]
    pub snapshot: Vec<PathBuf>,
    /// With --qdrant-url: ask the server for a snapshot of each collection, download it and
    /// convert it offline (a point-in-time copy of a collection that is still written to).
    #[arg(long, requires = "qdrant_url")]
    pub via_snapshot: bool,
    /// With --via-snapshot: keep the server-side snapshot.
    #[arg(long)]
    pub keep_snapshot: bool,
    /// Collection name of the --snapshot files, which are then all one collection (default:
    /// the name in Qdrant's file names, `<collection>-<peer id>-<date>.snapshot` or
    /// `<collection>-shard-<id>-<date>.snapshot`; files of one collection are merged shard by
    /// shard, each shard read once).
    #[arg(long = "as", value_name = "NAME")]
    pub snapshot_name: Option<String>,
    /// With --snapshot: export the shards that are there when some are in none of the files
    /// (the manifest and the export say which are missing).
    #[arg(long)]
    pub allow_missing_shards: bool,
    /// With --snapshot files of several nodes: which replica of a shard is read. `compare`
    /// loads every replica, names those whose point counts differ and reads the one with the
    /// most points; `first` reads the first file given that holds the shard (faster).
    #[arg(long, value_enum, default_value = "compare")]
    pub replicas: ReplicaArg,
    /// Collections to take (default: all).
    #[arg(long = "collection", short = 'c')]
    pub collections: Vec<String>,
    /// Directory for unpacking snapshots (default: inside the stage directory).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// How a live server's pages are read.
#[derive(Debug, Args, Clone)]
pub struct TransportArgs {
    /// How pages of a live server are read: grpc (Qdrant's gRPC API: vectors as packed
    /// floats), rest, or auto (where gRPC answers, the faster of the two for each collection,
    /// timed on its first pages; else REST). Pages holding payload integers above 2^63-1 are
    /// read over REST in any case (gRPC carries them as doubles).
    #[arg(long, value_enum, default_value = "auto")]
    pub transport: TransportArg,
    /// Qdrant's gRPC URL (default: the --qdrant-url host on port 6334 when it uses 6333).
    #[arg(long, env = "QDRANT_GRPC_URL")]
    pub grpc_url: Option<String>,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TransportArg {
    Auto,
    Grpc,
    Rest,
}

/// Flags that shape the default mapping.
#[derive(Debug, Args, Clone)]
pub struct MappingArgs {
    /// Mapping file (TOML, written by `q2z plan`); its entries replace the defaults.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Leave a Qdrant vector out (`vector` names the unnamed one). Repeatable.
    #[arg(long)]
    pub exclude_vector: Vec<String>,
    /// Metric for Manhattan vectors, which Milvus lacks: L2, IP or COSINE.
    #[arg(long)]
    pub manhattan_as: Option<String>,
    /// How to stage multivectors.
    #[arg(long, value_enum)]
    pub multivector: Option<MultivectorArg>,
    /// Vector fields the target allows (4: Milvus ≤ 2.6.17, Zilliz Serverless; 10: Dedicated).
    #[arg(long)]
    pub max_vector_fields: Option<usize>,
    /// Use AUTOINDEX for dense vectors (Zilliz Cloud) instead of HNSW with Qdrant's params.
    #[arg(long)]
    pub autoindex: bool,
    /// Prefix for every target collection name (e.g. `staging_`).
    #[arg(long, default_value = "")]
    pub target_prefix: String,
    /// Stage a payload key as its own typed, nullable field instead of inside `$meta`:
    /// `KEY[:TYPE]`, TYPE one of Int64, Double, Bool, VarChar, JSON, Array<Int64|Double|Bool|VarChar>
    /// (default: from Qdrant's payload index on the key). Needs Milvus ≥ 2.5. Repeatable.
    #[arg(long, value_name = "KEY[:TYPE]")]
    pub promote: Vec<String>,
    /// Make this payload key (promoted, Int64 or VarChar, present on every point) the partition key.
    #[arg(long, value_name = "KEY")]
    pub partition_key: Option<String>,
    /// `null` payload values: keep them as JSON null in `$meta` (lossless) or drop them.
    #[arg(long, value_enum, default_value = "keep")]
    pub null_values: NullValuesArg,
    /// Points whose payload JSON exceeds Milvus's 64 KiB: stop with their ids, or set them aside
    /// whole (Qdrant JSON in the stage's `set-aside-*.jsonl`, reported by export and verify).
    #[arg(long, value_enum, default_value = "error")]
    pub oversize_payload: AsideArg,
    /// Points holding values Milvus refuses (NaN or infinite vector values, negative sparse
    /// values, sparse index 2^32-1 or repeated, an id over the key length): stop with their ids,
    /// or set them aside whole with the reason (like oversized payloads).
    #[arg(long, value_enum, default_value = "error")]
    pub invalid_values: AsideArg,
}

/// `--replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplicaArg {
    /// Count every replica; read the one with the most points.
    Compare,
    /// Read the first file's replica.
    First,
}

/// `--null-values`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NullValuesArg {
    /// Keep nulls as JSON null.
    Keep,
    /// Leave null-valued keys out.
    Drop,
}

/// `--oversize-payload` and `--invalid-values`: stop, or set the points aside.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AsideArg {
    /// Stop and name the points.
    Error,
    /// Keep them apart in the stage.
    SetAside,
}

/// Multivector policy.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MultivectorArg {
    /// Keep each point's first vector.
    First,
    /// Leave the multivector out.
    Skip,
    /// Keep every vector, as an Array of Structs with a MAX_SIM index (Milvus 3.0+).
    Struct,
}

/// The staging directory.
#[derive(Debug, Args, Clone)]
pub struct StageArg {
    /// Staging directory, or `s3://BUCKET/PREFIX` for a stage on object storage (endpoint and
    /// keys from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    #[arg(long, default_value = "stage")]
    pub stage: PathBuf,
    /// With an s3:// stage: the local working copy (default: a directory of q2z's own in the
    /// system temp directory).
    #[arg(long)]
    pub stage_cache: Option<PathBuf>,
}

/// `q2z plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// With --milvus-url: what each collection's mapping needs that the target lacks (its
    /// release, an existing collection of the same name), said before anything is written.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write the mapping file here.
    #[arg(long)]
    pub mapping_out: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// The export the estimate is for (the same knobs as `q2z export`).
    #[command(flatten)]
    pub tuning: ExportTuning,
    /// With a bucket (or --zilliz-volume): the upload rate is measured by sending the
    /// calibration files there (and deleting them).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Skip the estimate (the calibration read: one row group per worker of each collection,
    /// converted and written to a scratch directory, timed).
    #[arg(long)]
    pub no_estimate: bool,
    /// Say how many machines (`export --part I/N`) finish the export within this time
    /// (e.g. `90m`, `2h`, `1d`; s, m, h, d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
}

/// A duration as `90m`, `2h`, `1.5h`, `1d`, `300s` (a bare number: seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let scale = match unit {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("'{s}': the unit must be s, m, h or d (e.g. 2h)")),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(std::time::Duration::from_secs_f64(v * scale)),
        _ => Err(format!("'{s}' is not a duration such as 90m or 2h")),
    }
}

/// `q2z export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub tuning: ExportTuning,
    #[command(flatten)]
    pub stage: StageArg,
    /// Throw the stage's state away and start over.
    #[arg(long)]
    pub restart: bool,
    /// Take part I of N (I from 0, e.g. `--part $JOB_COMPLETION_INDEX/8`): whole shards of
    /// snapshot files when a collection has at least N, else every N-th id range of one plan.
    /// Each part writes its own --stage; `q2z stage merge` joins them for the import.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    pub part: Option<Part>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_part(s: &str) -> Result<Part, String> {
    Part::parse(s)
}

/// Export performance knobs.
#[derive(Debug, Args, Clone)]
pub struct ExportTuning {
    /// Parallel scroll cursors (1..=256).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Id ranges to plan (default: from the point count).
    #[arg(long, default_value_t = 0)]
    pub ranges: usize,
    /// Points per scroll page (1..=10000).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub page_size: u16,
    /// Close a Parquet file once it reaches this many bytes (at least 1).
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_file_bytes: u64,
    /// zstd compression level (1..=22).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Compression of the vector columns. Dense float vectors shrink only ~8% under zstd while
    /// compressing them takes a quarter of an offline export's time, so they are stored as they
    /// are unless `zstd` is asked for (smaller files for a slow link or a carried disk).
    #[arg(long, value_enum, default_value_t = VectorCompression::None)]
    pub vector_compression: VectorCompression,
}

/// How the vector columns of the Parquet files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VectorCompression {
    /// zstd at `--zstd-level`, like the other columns.
    Zstd,
    /// Stored as they are.
    None,
}

/// Where to import into.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Milvus REST URL (self-hosted: http://host:19530) or Zilliz cluster endpoint.
    #[arg(long, env = "MILVUS_URL")]
    pub milvus_url: Option<String>,
    /// Token: `user:password` for Milvus, or an API key for Zilliz (never logged; ZILLIZ_TOKEN
    /// is read when MILVUS_TOKEN is unset).
    #[arg(long, env = "MILVUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Milvus database.
    #[arg(long)]
    pub db: Option<String>,
    /// The target's release (`2.4.9`, `2.6`, `3.0.2`) or `zilliz`: its REST rules apply (flush,
    /// nullable fields, stale reads, import idempotency). Default: Zilliz Cloud by its host;
    /// a self-hosted Milvus probed, taken at the oldest release of the line it answers as
    /// (REST reports no version). `q2z doctor` shows what applies.
    #[arg(long, env = "MILVUS_VERSION", value_parser = parse_milvus_version)]
    pub milvus_version: Option<crate::sink::milvus::version::ServerKind>,
    /// Zilliz Cloud cluster id (`in01-…`): run bulk imports through the Zilliz Cloud control
    /// plane, reading the files from your bucket (`--s3-bucket`, keys from AWS_*).
    #[arg(long, env = "ZILLIZ_CLUSTER_ID")]
    pub zilliz_cluster_id: Option<String>,
    /// Zilliz Cloud control-plane URL (`https://api.cloud.zilliz.com.cn` in China).
    #[arg(
        long,
        env = "ZILLIZ_CLOUD_URL",
        default_value = "https://api.cloud.zilliz.com"
    )]
    pub zilliz_cloud_url: String,
    /// Zilliz Cloud API key for the control plane (default: the --token value; never logged).
    #[arg(long, env = "ZILLIZ_API_KEY", hide_env_values = true)]
    pub zilliz_api_key: Option<String>,
    /// Zilliz volume to stage the files in (with --zilliz-cluster-id): upload credentials come
    /// from the control plane (`/v2/volumes/apply`), so the API key is all that is needed.
    #[arg(long, requires = "zilliz_cluster_id")]
    pub zilliz_volume: Option<String>,
    /// How Zilliz reaches an uploaded object: this prefix + the object key
    /// (default `s3://<bucket>/`; e.g. `gs://bucket/` or an https bucket URL).
    #[arg(long)]
    pub object_url_base: Option<String>,
}

fn parse_milvus_version(s: &str) -> Result<crate::sink::milvus::version::ServerKind, String> {
    crate::sink::milvus::version::ServerKind::parse(s).ok_or_else(|| {
        format!("'{s}' is not a Milvus release from 2.4 on (e.g. 2.4.9, 2.6, 3.0.2) nor 'zilliz'")
    })
}

/// How rows reach the target.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// Upload the Parquet files and run bulk-import jobs.
    Bulk,
    /// Send batched upserts over REST (idempotent).
    Upsert,
}

/// Object storage that the target's import jobs read from.
#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// S3 endpoint of the target's bucket (Milvus's MinIO/S3), e.g. http://localhost:9000.
    #[arg(long, env = "Q2Z_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Bucket Milvus reads import files from (`minio.bucketName`).
    #[arg(long, env = "Q2Z_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// Key prefix for uploaded files.
    #[arg(long, default_value = "q2z")]
    pub s3_prefix: String,
    /// S3 region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// S3 access key (AWS_ACCESS_KEY_ID).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key: Option<String>,
    /// S3 secret key (AWS_SECRET_ACCESS_KEY; never logged).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
}

/// `q2z import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub stage: StageArg,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// bulk (Parquet import jobs) or upsert (REST batches).
    #[arg(long, value_enum, default_value = "bulk")]
    pub mode: ModeArg,
    /// Append into an existing collection with the same schema.
    #[arg(long, conflicts_with = "drop_existing")]
    pub into_existing: bool,
    /// Drop an existing collection of the same name first.
    #[arg(long)]
    pub drop_existing: bool,
    /// Bytes per upsert request (at least 1).
    #[arg(long, default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_bytes: u64,
    /// Points compared field by field after the import.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
    /// The cut-over: once verification passes, point this Milvus alias at the imported
    /// collection (created, or switched from the collection it named, in one step for the
    /// readers). One collection per import (-c NAME when the stage holds several).
    #[arg(long, value_name = "NAME")]
    pub alias: Option<String>,
    /// Collections to import (default: all staged).
    #[arg(long = "collection", short = 'c')]
    pub collections: Vec<String>,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `q2z migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub tuning: ExportTuning,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub stage: StageArg,
    /// bulk or upsert.
    #[arg(long, value_enum, default_value = "bulk")]
    pub mode: ModeArg,
    /// Drop an existing collection of the same name first.
    #[arg(long)]
    pub drop_existing: bool,
    /// Points compared field by field.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `q2z verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub stage: StageArg,
    /// Check only the staging directory (files present, sizes and sha256 as in the manifest);
    /// also what verify does when no --milvus-url is given.
    #[arg(long = "stage-only")]
    pub stage_only: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The bucket used by a bulk import, for --repair to re-send chunks the same way.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Points compared field by field.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
    /// Compare every staged row with the target, not only a sample.
    #[arg(long)]
    pub full: bool,
    /// Delete exactly the staged ids of the chunks found bad (wrong counts, or rows whose
    /// values differ) and send them again the way they were imported.
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub search: SearchArgs,
    /// With --search: the source to search (--qdrant-url, or --snapshot files offline).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// Search parity (`verify --search N`).
#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// Compare searches: N staged points per dense float vector field become queries, and the
    /// same top-k search runs in the source (--qdrant-url, or --snapshot offline) and in the
    /// target; prints overlap, rank correlation and score differences. verify: off unless
    /// given; migrate: 100 (0 turns it off).
    ///
    /// Example: q2z verify --stage ./stage --milvus-url http://milvus:19530 --search 100
    ///          --qdrant-url http://qdrant:6333 --min-overlap 0.9
    #[arg(long, value_name = "N")]
    pub search: Option<usize>,
    /// Results per search query (1..=1000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top_k: u16,
    /// Seed of the query choice (the same seed picks the same points).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A mean overlap below this (0..=1) fails the check: exit code 3.
    #[arg(long, value_parser = parse_share)]
    pub min_overlap: Option<f64>,
    /// Search the source through its index (ANN) instead of exactly (brute force), to compare
    /// index against index.
    #[arg(long)]
    pub source_ann: bool,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a share between 0 and 1 (e.g. 0.9)")),
    }
}

/// `q2z status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub stage: StageArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
