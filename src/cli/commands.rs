//! Runs each command: turns flags into library options, calls the library, prints.

use super::args::*;
use super::output;
use super::plan_estimate::RunEstimate;
use super::usage;
use crate::export::{ExportOptions, export, scan_ids};
use crate::import::{ImportMode, ImportOptions, import};
use crate::sink::milvus::{CloudImport, Milvus};
use crate::sink::object_store::StorageConfig;
use crate::source::open::{OpenedSources, SourceSpec, Transport, open_sources};
use crate::stage::manifest::Part;
use crate::stage::{Need, Stage};
use crate::transform::mapping::{
    CollectionMapping, InvalidPolicy, MappingOptions, MultivectorPolicy, NullPolicy,
    OversizePolicy, default_mapping,
};
use crate::transform::scalars::{ScalarKind, ScalarType};
use crate::verify::VerifyOptions;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(a) => plan(*a),
        Command::Export(a) => export_cmd(*a),
        Command::Status(a) => status(a),
        Command::Import(a) => import_cmd(*a),
        Command::Migrate(a) => migrate(*a),
        Command::Verify(a) => verify_cmd(*a),
        Command::Sync(a) => sync_cmd(*a),
        Command::Doctor(a) => doctor(a),
        Command::Report(a) => report_cmd(a),
        Command::Stage(StageCommand::Merge(a)) => {
            let reports = crate::stage::merge::merge(&a.parts, &a.into)?;
            output::merge_reports(&reports, &a.into, a.json)
        }
        Command::Manpage(a) => {
            use clap::CommandFactory;
            if let Some(dir) = &a.dir {
                std::fs::create_dir_all(dir)
                    .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
                    .with_context(|| {
                        format!("could not write the man pages into {}", dir.display())
                    })?;
                return Ok(0);
            }
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(0),
            }
        }
        Command::Completions(a) => {
            use clap::CommandFactory;
            clap_complete::generate(a.shell, &mut Cli::command(), "q2z", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn token(t: &TargetArgs) -> Option<String> {
    t.token
        .clone()
        .or_else(|| std::env::var("ZILLIZ_TOKEN").ok().filter(|s| !s.is_empty()))
}

/// The target client; `--milvus-url` is required here.
fn milvus(t: &TargetArgs) -> Result<Milvus> {
    let Some(url) = &t.milvus_url else {
        return Err(usage(
            "--milvus-url URL (or MILVUS_URL) is required: the Milvus REST endpoint (http://host:19530) or the Zilliz cluster endpoint",
        ));
    };
    Ok(Milvus::new(url, token(t), t.db.clone())?.with_version(t.milvus_version))
}

/// The target client for imports (routed through Zilliz Cloud's control plane when a cluster
/// id is given) and, for a Zilliz volume, the storage the files go to.
fn milvus_for_import(
    t: &TargetArgs,
    s: &StorageArgs,
    mode: ModeArg,
) -> Result<(Milvus, Option<StorageConfig>)> {
    let m = milvus(t)?;
    let (Some(cluster), ModeArg::Bulk) = (&t.zilliz_cluster_id, mode) else {
        return Ok((m, storage(s)));
    };
    let key = t.zilliz_api_key.clone().or_else(|| token(t)).context(
        "the Zilliz Cloud control plane needs an API key: set ZILLIZ_API_KEY (or --token)",
    )?;
    let api = crate::sink::zilliz::ControlPlane::new(&t.zilliz_cloud_url, key)?;
    if let Some(volume) = &t.zilliz_volume {
        let (storage, prefix) = crate::sink::zilliz::volume_storage(&api, volume)?;
        let m = m.with_cloud_import(CloudImport {
            api,
            cluster_id: cluster.clone(),
            url_base: prefix,
            volume: Some(volume.clone()),
            access_key: None,
            secret_key: None,
        });
        return Ok((m, Some(storage)));
    }
    let Some(bucket) = &s.s3_bucket else {
        return Err(usage(
            "--zilliz-cluster-id imports read the files from your bucket: give --s3-bucket (and --s3-endpoint for a non-AWS store), with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY that Zilliz may use to read it; or stage them in a Zilliz volume with --zilliz-volume NAME",
        ));
    };
    let m = m.with_cloud_import(CloudImport {
        api,
        cluster_id: cluster.clone(),
        url_base: t
            .object_url_base
            .clone()
            .unwrap_or_else(|| format!("s3://{bucket}/")),
        volume: None,
        access_key: s.s3_access_key.clone(),
        secret_key: s.s3_secret_key.clone(),
    });
    Ok((m, storage(s)))
}

fn storage(s: &StorageArgs) -> Option<StorageConfig> {
    let bucket = s.s3_bucket.clone()?;
    Some(StorageConfig {
        endpoint: s.s3_endpoint.clone(),
        bucket,
        prefix: s.s3_prefix.clone(),
        region: s.s3_region.clone(),
        access_key: s.s3_access_key.clone(),
        secret_key: s.s3_secret_key.clone(),
        session_token: None,
        ..Default::default()
    })
}

fn import_options(
    mode: ModeArg,
    storage: Option<StorageConfig>,
    sample: usize,
    quiet: bool,
) -> ImportOptions {
    ImportOptions {
        mode: match mode {
            ModeArg::Bulk => ImportMode::Bulk,
            ModeArg::Upsert => ImportMode::Upsert,
        },
        storage,
        verify: VerifyOptions {
            sample,
            ..Default::default()
        },
        quiet,
        ..Default::default()
    }
}

fn import_cmd(a: ImportArgs) -> Result<u8> {
    let (m, storage) = milvus_for_import(&a.target, &a.storage, a.mode)?;
    let mut opts = import_options(a.mode, storage, a.sample, a.json);
    opts.into_existing = a.into_existing;
    opts.drop_existing = a.drop_existing;
    opts.batch_bytes = usize::try_from(a.batch_bytes).unwrap_or(usize::MAX);
    opts.collections = a.collections.clone();
    let stage = open_stage(&a.stage, "import", Need::Existing)?;
    same_bucket_no_upload(&stage, &mut opts);
    if let Some(alias) = &a.alias {
        let m = stage.require_manifest()?;
        let n = m
            .collections
            .keys()
            .filter(|c| a.collections.is_empty() || a.collections.contains(c))
            .count();
        if n != 1 {
            return Err(usage(&format!(
                "--alias {alias} names one collection, and this import has {n}; give -c NAME"
            )));
        }
    }
    let reports = import(&stage, &m, &opts)?;
    record_verifications(&stage, "import", &reports, &opts.verify, &m);
    let code = output::reports(&reports, a.json)?;
    if let (Some(alias), [r]) = (&a.alias, reports.as_slice()) {
        if !r.ok {
            eprintln!("alias {alias}: left as it was (the verification did not pass)");
            return Ok(code);
        }
        let before = m.set_alias(alias, &r.target)?;
        match &before {
            Some(b) if b != &r.target => {
                eprintln!("alias {alias} → {} (switched from {b})", r.target)
            }
            Some(_) => eprintln!("alias {alias} → {} (already)", r.target),
            None => eprintln!("alias {alias} → {} (created)", r.target),
        }
        record(&stage, |ev| {
            crate::report::record::alias(ev, &r.collection, alias, &r.target, before)
        });
    }
    Ok(code)
}

fn migrate(a: MigrateArgs) -> Result<u8> {
    let (mapping, overrides) = mapping_options(&a.mapping)?;
    let stage = open_stage(&a.stage, "migrate", Need::Create)?;
    let opened = sources(&a.source, Some(&stage), None)?;
    let eopts = export_options(&a.tuning, false, mapping, overrides, a.json);
    let (m, storage) = milvus_for_import(&a.target, &a.storage, a.mode)?;
    let mut iopts = import_options(a.mode, storage, a.sample, a.json);
    iopts.drop_existing = a.drop_existing;
    let (exported, reports) = crate::migrate::migrate(
        &stage,
        &opened.sources,
        opened.info.clone(),
        &eopts,
        &m,
        &iopts,
    )?;
    for r in &exported {
        eprintln!("{}", output::export_line(r));
    }
    record_verifications(&stage, "migrate", &reports, &iopts.verify, &m);
    let queries = a.search.search.unwrap_or(100);
    if queries == 0 || reports.iter().any(|r| !r.ok) {
        return output::reports(&reports, a.json);
    }
    let parity = search_parity(&a.search, queries, &stage, &m, &opened.sources)?;
    drop(opened);
    output::reports_with_search(&reports, &parity, a.json)
}

fn verify_cmd(a: VerifyArgs) -> Result<u8> {
    if a.stage_only || a.target.milvus_url.is_none() {
        let stage = open_stage(&a.stage, "verify", Need::Read)?;
        let manifest = stage.require_manifest()?;
        for (name, e) in &manifest.collections {
            stage.check_files(e)?;
            println!(
                "{name}: {} files, {} rows: all present with the sha256 the manifest records",
                e.chunks.len(),
                e.staged_rows()
            );
        }
        return Ok(0);
    }
    let queries = a.search.search.unwrap_or(0);
    if queries > 0 && a.source.qdrant_url.is_none() && a.source.snapshot.is_empty() {
        return Err(usage(
            "--search needs the source to search: --qdrant-url URL (the live server) or --snapshot FILE... (offline)",
        ));
    }
    let m = milvus(&a.target)?;
    let stage = open_stage(&a.stage, "verify", Need::Existing)?;
    let vopts = VerifyOptions {
        sample: a.sample,
        full: a.full,
        exact_counts: false,
    };
    let reports = if a.repair {
        let mut iopts = import_options(ModeArg::Bulk, storage(&a.storage), a.sample, a.json);
        iopts.verify = vopts.clone();
        let (reports, repaired) =
            crate::import::repair::verify_and_repair(&stage, &m, &vopts, &iopts)?;
        for r in &repaired {
            eprintln!(
                "repair: {}: deleted the staged ids of {} chunks and sent them again: {}",
                r.collection,
                r.chunks.len(),
                r.chunks.join(", ")
            );
            record(&stage, |ev| {
                crate::report::record::repair(ev, &r.collection, &r.chunks)
            });
        }
        reports
    } else {
        let manifest = stage.require_manifest()?;
        let ledger = stage.ledger()?;
        let mut reports = Vec::new();
        for name in manifest.collections.keys() {
            let sc = stage.collection(&manifest, name).expect("listed");
            let l = ledger.get(m.url(), m.db(), name);
            reports.push(crate::verify::verify_imported(&m, sc, l, &vopts)?);
        }
        reports
    };
    record_verifications(&stage, "verify", &reports, &vopts, &m);
    if queries == 0 {
        return output::reports(&reports, a.json);
    }
    let mut spec = a.source.clone();
    if spec.collections.is_empty() {
        spec.collections = stage.require_manifest()?.collections.into_keys().collect();
    }
    let opened = sources(&spec, Some(&stage), None)?;
    let parity = search_parity(&a.search, queries, &stage, &m, &opened.sources)?;
    output::reports_with_search(&reports, &parity, a.json)
}

/// The same searches in the source and the target (`--search N`).
fn search_parity(
    a: &SearchArgs,
    queries: usize,
    stage: &Stage,
    m: &Milvus,
    sources: &[crate::source::SharedSource],
) -> Result<Vec<crate::verify::search::FieldParity>> {
    let manifest = stage.require_manifest()?;
    let opts = crate::verify::search::SearchOptions {
        queries,
        top_k: usize::from(a.top_k),
        seed: a.seed,
        exact: !a.source_ann,
        min_overlap: a.min_overlap,
    };
    let mut out = Vec::new();
    for name in manifest.collections.keys() {
        let Some(src) = sources.iter().find(|s| &s.config().name == name) else {
            eprintln!(
                "search parity: {name} is not in the source given (give its snapshot or the server holding it); not checked"
            );
            continue;
        };
        let sc = stage.collection(&manifest, name).expect("listed");
        out.extend(crate::verify::search::search_parity(
            m,
            sc,
            src.as_ref(),
            &opts,
        )?);
    }
    record(stage, |ev| crate::report::record::search(ev, &out));
    Ok(out)
}

/// Records evidence for the report (a failure is logged, not the command's).
fn record(stage: &Stage, add: impl FnOnce(&mut crate::stage::evidence::Evidence)) {
    crate::report::record::record(stage, add);
}

/// Records the verifications a command made, with the target server as q2z knew it.
fn record_verifications(
    stage: &Stage,
    by: &str,
    reports: &[crate::verify::VerifyReport],
    v: &VerifyOptions,
    m: &Milvus,
) {
    let release = m.server().ok().map(|t| t.to_string());
    record(stage, |ev| {
        crate::report::record::verifications(ev, by, reports, v.full, stage, release)
    });
}

/// Records a finished run of `command` in its stage's evidence (a stage without a manifest,
/// or one that cannot be opened now, records nothing).
pub fn record_run(command: &str, a: &StageArg, started_ms: u64, code: u8, error: Option<String>) {
    let Ok(stage) = open_stage(a, "record", Need::Existing) else {
        return;
    };
    if !matches!(stage.manifest(), Ok(Some(_))) {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    record(&stage, |ev| {
        crate::report::record::run(ev, command, &args, started_ms, code, error)
    });
}

/// Writes the migration report of a stage (HTML, and JSON beside it).
fn report_cmd(a: ReportArgs) -> Result<u8> {
    let stage = open_stage(&a.stage, "report", Need::Read)?;
    let label = a.stage.stage.to_string_lossy().into_owned();
    let report = crate::report::build(&stage, &label)?;
    let json_path = a.out.with_extension("json");
    let json = serde_json::to_string_pretty(&report)?;
    let html = crate::report::html::render(&report);
    for (path, body) in [(&a.out, html.as_bytes()), (&json_path, json.as_bytes())] {
        std::fs::write(path, body).with_context(|| {
            format!(
                "could not write the report to {}; give --out a path in a writable directory",
                path.display()
            )
        })?;
    }
    if a.json {
        println!("{json}");
    } else {
        for c in &report.collections {
            println!(
                "{}: {} — {}",
                c.name,
                c.verdict.status.label(),
                c.verdict.reason
            );
        }
        eprintln!(
            "report: {} (JSON: {})",
            a.out.display(),
            json_path.display()
        );
    }
    Ok(0)
}

fn transport(t: &TransportArgs) -> Transport {
    match t.transport {
        TransportArg::Auto => Transport::Auto,
        TransportArg::Grpc => Transport::Grpc,
        TransportArg::Rest => Transport::Rest,
    }
}

/// Mapping file: `[[collection]]` tables.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct MappingFile {
    #[serde(default)]
    collection: Vec<CollectionMapping>,
}

fn mapping_options(
    a: &MappingArgs,
) -> Result<(MappingOptions, BTreeMap<String, CollectionMapping>)> {
    if let Some(m) = &a.manhattan_as
        && !["L2", "IP", "COSINE"].contains(&m.to_uppercase().as_str())
    {
        return Err(usage(&format!(
            "--manhattan-as takes L2, IP or COSINE, not '{m}'"
        )));
    }
    let opts = MappingOptions {
        exclude_vectors: a.exclude_vector.clone(),
        manhattan_as: a.manhattan_as.clone(),
        multivector: match a.multivector {
            None => MultivectorPolicy::Ask,
            Some(MultivectorArg::First) => MultivectorPolicy::First,
            Some(MultivectorArg::Skip) => MultivectorPolicy::Skip,
            Some(MultivectorArg::Struct) => MultivectorPolicy::Struct,
        },
        max_vector_fields: a.max_vector_fields,
        autoindex: a.autoindex,
        target_prefix: a.target_prefix.clone(),
        promote: a
            .promote
            .iter()
            .map(|p| parse_promote(p))
            .collect::<Result<_>>()?,
        partition_key: a.partition_key.clone(),
        null_values: match a.null_values {
            NullValuesArg::Keep => NullPolicy::Keep,
            NullValuesArg::Drop => NullPolicy::Drop,
        },
        oversize_payload: match a.oversize_payload {
            AsideArg::Error => OversizePolicy::Error,
            AsideArg::SetAside => OversizePolicy::SetAside,
        },
        invalid_values: match a.invalid_values {
            AsideArg::Error => InvalidPolicy::Error,
            AsideArg::SetAside => InvalidPolicy::SetAside,
        },
    };
    let mut overrides = BTreeMap::new();
    if let Some(path) = &a.mapping {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading mapping file {}", path.display()))?;
        let file: MappingFile = toml::from_str(&text).with_context(|| {
            format!(
                "mapping file {} is not valid (see `q2z plan --mapping-out`)",
                path.display()
            )
        })?;
        for m in file.collection {
            m.check_limits().map_err(|e| {
                anyhow::anyhow!(
                    "mapping file {}: collection '{}': {e}; fix the value (or write a new file with q2z plan --mapping-out)",
                    path.display(),
                    m.source
                )
            })?;
            overrides.insert(m.source.clone(), m);
        }
    }
    Ok((opts, overrides))
}

/// `KEY[:TYPE]` of `--promote` (the key may itself contain ':' only when a type follows).
fn parse_promote(s: &str) -> Result<(String, Option<ScalarType>)> {
    match s.rsplit_once(':') {
        Some((key, ty)) if !key.is_empty() => match ScalarKind::parse(ty) {
            Some(t) => Ok((key.to_string(), Some(t))),
            None => anyhow::bail!(
                "--promote {s}: unknown type '{ty}'; use Int64, Double, Bool, VarChar, JSON, Array<Int64|Double|Bool|VarChar> Geometry (geo points, Milvus ≥ 2.6.4) or Timestamptz (datetimes, Milvus ≥ 2.6.6)"
            ),
        },
        _ => Ok((s.to_string(), None)),
    }
}

/// Opens the `--stage` (a directory or `s3://bucket/prefix`).
fn open_stage(a: &StageArg, what: &str, need: Need) -> Result<Stage> {
    Ok(Stage::open_at(
        &a.stage,
        a.stage_cache.as_deref(),
        what,
        need,
    )?)
}

/// A stage on object storage in the bucket the import reads from is imported where it is:
/// the upload's key prefix becomes the stage's, so every file is found there and none is sent
/// again.
fn same_bucket_no_upload(stage: &Stage, opts: &mut ImportOptions) {
    if let (Some(r), Some(s)) = (stage.remote(), opts.storage.as_mut())
        && r.bucket() == s.bucket
    {
        tracing::info!(stage = %r.url(), "the stage is in the import's bucket: its files are imported where they are");
        s.prefix = r.prefix().to_string();
    }
}

/// Opens the sources the flags name; scratch space defaults to `.scratch` in the stage.
fn sources(a: &SourceArgs, stage: Option<&Stage>, part: Option<Part>) -> Result<OpenedSources> {
    let scratch: PathBuf = a.scratch.clone().unwrap_or_else(|| match stage {
        Some(s) => s.default_scratch(),
        None => std::env::temp_dir(),
    });
    Ok(open_sources(&SourceSpec {
        qdrant_url: a.qdrant_url.clone(),
        api_key: a.api_key.clone(),
        snapshots: a.snapshot.clone(),
        via_snapshot: a.via_snapshot,
        keep_snapshot: a.keep_snapshot,
        snapshot_name: a.snapshot_name.clone(),
        allow_missing_shards: a.allow_missing_shards,
        first_replica: a.replicas == ReplicaArg::First,
        collections: a.collections.clone(),
        part,
        scratch,
        transport: transport(&a.transport),
        grpc_url: a.transport.grpc_url.clone(),
    })?)
}

/// `q2z doctor`: the target server, what it supports, and a call that proves token and
/// database.
fn doctor(a: DoctorArgs) -> Result<u8> {
    let m = milvus(&a.target)?;
    let server = m.server()?;
    let collections = m.list_collections()?;
    let caps = server.capabilities();
    if a.json {
        let v = serde_json::json!({
            "url": m.url(),
            "database": m.db(),
            "server": server.to_string(),
            "collections": collections.len(),
            "supports": caps.iter().map(|(what, yes)| serde_json::json!({"what": what, "supported": yes})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("target {} (database {}): {server}", m.url(), m.db());
        println!(
            "token and database work: {} collections listed",
            collections.len()
        );
        for (what, yes) in caps {
            println!("  [{}] {what}", if yes { "x" } else { " " });
        }
    }
    Ok(0)
}

fn plan(a: PlanArgs) -> Result<u8> {
    let (opts, overrides) = mapping_options(&a.mapping)?;
    let opened_at = std::time::Instant::now();
    let opened = sources(&a.source, None, None)?;
    let open_seconds = opened_at.elapsed().as_secs_f64();
    let target = match &a.target.milvus_url {
        Some(_) => {
            let m = milvus(&a.target)?;
            let server = m.server()?;
            Some((m, server))
        }
        None => None,
    };
    let export_opts = export_options(&a.tuning, false, opts.clone(), overrides.clone(), true);
    let scratch = a.source.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let mut uploader = if a.no_estimate {
        None
    } else {
        plan_uploader(&a)?
    };
    let mut upload_rate: Option<f64> = None;
    let mut out = Vec::new();
    let mut file = MappingFile::default();
    for s in &opened.sources {
        let scan_at = std::time::Instant::now();
        let scan = scan_ids(s, s.count()?)?;
        let scan_seconds = scan_at.elapsed().as_secs_f64();
        let cfg = s.config();
        let (mapping, warnings) = match overrides.get(&cfg.name) {
            Some(m) => {
                m.validate(cfg)?;
                (m.clone(), vec![])
            }
            None => default_mapping(&scan.with_keys(cfg), scan.id_kind, &opts)?,
        };
        let mut warnings = warnings;
        warnings.extend(s.notes());
        let mut view = output::PlanView::new(&mapping, scan.count, warnings, s.shard_origins());
        view.qdrant_aliases = s.aliases().unwrap_or_else(|e| {
            tracing::warn!(collection = %cfg.name, "the collection's aliases could not be listed: {e}");
            Vec::new()
        });
        if let Some((m, server)) = &target {
            view.target = Some(output::PlanTarget {
                server: server.to_string(),
                notes: server.plan_notes(&mapping, m.has_collection(&mapping.target)?),
                gets: server.plan_gets(&mapping),
            });
        }
        // The schema preview stands without the estimate: a calibration read that fails is
        // said, not fatal (but Ctrl-C stops the plan).
        let calibrated = (!a.no_estimate && scan.count > 0)
            .then(|| crate::export::calibrate(s, &mapping, &scan, &export_opts, &scratch))
            .transpose()
            .or_else(|e| match e {
                crate::error::Error::Interrupted => Err(e),
                e => {
                    tracing::warn!(collection = %cfg.name, "no estimate: the calibration read failed: {e}");
                    Ok(None)
                }
            })?;
        if let Some(run) = calibrated {
            if let (Some(up), None) = (&uploader, upload_rate) {
                // Measured once, on the first collection's files; an estimate without it is
                // still worth printing.
                match crate::import::bulk::upload_rate(up, &run.calibration.files) {
                    Ok(r) => upload_rate = Some(r),
                    Err(e) => {
                        tracing::warn!("the upload rate was not measured: {e}");
                        uploader = None;
                    }
                }
            }
            let e = crate::export::Estimate::new(run.calibration.clone(), scan.count, scan_seconds);
            view.estimate = Some(match upload_rate {
                Some(r) => e.with_upload_rate(r),
                None => e,
            });
        }
        out.push(view);
        file.collection.push(mapping);
    }
    if !a.no_estimate {
        let plans: Vec<_> = out
            .iter()
            .map(|p| (p.points, p.shards.len(), p.estimate.as_ref()))
            .collect();
        let run = RunEstimate::new(&plans, open_seconds, a.deadline);
        for p in &mut out {
            p.run = Some(run.clone());
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for p in &out {
            output::print_plan(p);
        }
        if let Some(r) = out.first().and_then(|p| p.run.as_ref()) {
            super::plan_estimate::print_run_estimate(r);
        }
    }
    if let Some(path) = &a.mapping_out {
        std::fs::write(path, toml::to_string_pretty(&file)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "mapping written to {}; edit it and pass it to export with --mapping",
            path.display()
        );
    }
    Ok(0)
}

/// Where `q2z plan` measures the upload rate: the bucket of --s3-bucket, or the Zilliz volume.
fn plan_uploader(a: &PlanArgs) -> Result<Option<crate::sink::object_store::Uploader>> {
    let cfg = if a.target.zilliz_volume.is_some() {
        milvus_for_import(&a.target, &a.storage, ModeArg::Bulk)?.1
    } else {
        storage(&a.storage)
    };
    Ok(match cfg {
        Some(c) => Some(crate::sink::object_store::Uploader::s3(c)?),
        None => None,
    })
}

fn export_options(
    t: &ExportTuning,
    restart: bool,
    mapping: MappingOptions,
    overrides: BTreeMap<String, CollectionMapping>,
    quiet: bool,
) -> ExportOptions {
    ExportOptions {
        workers: usize::from(t.workers),
        ranges: t.ranges,
        page_size: usize::from(t.page_size),
        max_file_bytes: t.max_file_bytes,
        zstd_level: t.zstd_level,
        compress_vectors: t.vector_compression == VectorCompression::Zstd,
        restart,
        mapping,
        mapping_overrides: overrides,
        quiet,
        part: None,
    }
}

fn export_cmd(a: ExportArgs) -> Result<u8> {
    let (mapping, overrides) = mapping_options(&a.mapping)?;
    let stage = open_stage(&a.stage, "export", Need::Create)?;
    let opened = sources(&a.source, Some(&stage), a.part)?;
    let opts = ExportOptions {
        part: a.part,
        ..export_options(&a.tuning, a.restart, mapping, overrides, a.json)
    };
    let reports = export(&stage, &opened.sources, opened.info.clone(), &opts)?;
    drop(opened);
    output::export_reports(&reports, stage.dir(), a.json)
}

fn sync_cmd(a: SyncArgs) -> Result<u8> {
    let (m, storage) = milvus_for_import(&a.target, &a.storage, ModeArg::Bulk)?;
    let stage = open_stage(&a.stage, "sync", Need::Existing)?;
    let names = if a.collections.is_empty() {
        stage.require_manifest()?.collections.into_keys().collect()
    } else {
        a.collections.clone()
    };
    let opened = open_sources(&SourceSpec {
        qdrant_url: Some(a.qdrant_url.clone()),
        api_key: a.api_key.clone(),
        collections: names,
        transport: transport(&a.transport),
        grpc_url: a.transport.grpc_url.clone(),
        ..Default::default()
    })?;
    let opts = crate::sync::SyncOptions {
        dry_run: a.dry_run,
        page_size: usize::from(a.page_size),
        batch: usize::from(a.batch),
        collections: a.collections.clone(),
        workers: usize::from(a.workers),
        window: usize::try_from(a.diff_window).unwrap_or(usize::MAX),
        changed_since: a
            .changed_since_field
            .clone()
            .map(|field| crate::sync::ChangeField {
                field,
                since: a.since.clone(),
                margin_secs: a.since_margin,
            }),
        bulk: storage.map(|storage| crate::sync::bulk::BulkDelta {
            storage,
            over: usize::try_from(a.bulk_over).unwrap_or(usize::MAX),
            poll: std::time::Duration::from_millis(500),
            stall_timeout: crate::import::ImportOptions::default().stall_timeout,
        }),
    };
    let started_ms = crate::stage::evidence::now_ms();
    let reports = crate::sync::sync(&stage, &opened.sources, &m, &opts)?;
    record(&stage, |ev| {
        crate::report::record::sync_passes(ev, &reports, started_ms)
    });
    output::sync_reports(&reports, a.json)
}

fn status(a: StatusArgs) -> Result<u8> {
    let stage = open_stage(&a.stage, "status", Need::Read)?;
    let m = stage.require_manifest()?;
    let ledger = stage.ledger()?;
    output::status(&m, &ledger, a.json)
}
