//! Runs each command: opens sources and targets from the flags, calls the library, prints.

use super::args::*;
use crate::export::{ExportOptions, export, scan_ids};
use crate::source::rest::QdrantRest;
use crate::source::snapshot::open_snapshot;
use crate::source::{RestCollection, SharedSource};
use crate::stage::manifest::{Manifest, SnapshotFile, SourceInfo};
use crate::stage::writer::sha256_file;
use crate::transform::mapping::{
    CollectionMapping, MappingOptions, MultivectorPolicy, NullPolicy, OversizePolicy,
    default_mapping,
};
use crate::transform::scalars::{ScalarKind, ScalarType};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(a) => plan(*a),
        Command::Export(a) => export_cmd(*a),
        Command::Status(a) => status(a),
        Command::Import(a) => import_cmd(*a),
        Command::Migrate(a) => migrate(*a),
        Command::Verify(a) => verify_cmd(*a),
    }
}

fn milvus(t: &TargetArgs) -> crate::target::milvus::Milvus {
    let token = t
        .token
        .clone()
        .or_else(|| std::env::var("ZILLIZ_TOKEN").ok().filter(|s| !s.is_empty()));
    crate::target::milvus::Milvus::new(&t.milvus_url, token, t.db.clone())
}

/// A target client for imports (routed through Zilliz Cloud's control plane when a cluster id
/// is given) and, for a Zilliz volume, the storage the files go to.
type ImportTarget = (
    crate::target::milvus::Milvus,
    Option<crate::target::upload::StorageConfig>,
);

fn milvus_for_import(t: &TargetArgs, s: &StorageArgs, mode: ModeArg) -> Result<ImportTarget> {
    use crate::target::milvus::{CloudImport, Milvus};
    let m = milvus(t);
    let Some(cluster) = &t.zilliz_cluster_id else {
        return Ok((m, None));
    };
    if mode != ModeArg::Bulk {
        return Ok((m, None));
    }
    let key = t
        .zilliz_api_key
        .clone()
        .or_else(|| t.token.clone())
        .or_else(|| std::env::var("ZILLIZ_TOKEN").ok());
    if key.is_none() {
        bail!("the Zilliz Cloud control plane needs an API key: set ZILLIZ_API_KEY (or --token)");
    }
    let api = Milvus::new(&t.zilliz_cloud_url, key, None);
    if let Some(volume) = &t.zilliz_volume {
        let (storage, prefix) = volume_storage(&api, volume)?;
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
        bail!(
            "--zilliz-cluster-id imports read the files from your bucket: give --s3-bucket (and --s3-endpoint for a non-AWS store), with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY that Zilliz may use to read it; or stage them in a Zilliz volume with --zilliz-volume NAME"
        );
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
    Ok((m, None))
}

/// Temporary upload credentials for a Zilliz volume (`POST /v2/volumes/apply`): where the files
/// go, and the key prefix that `dataPaths` are relative to.
fn volume_storage(
    api: &crate::target::milvus::Milvus,
    volume: &str,
) -> Result<(crate::target::upload::StorageConfig, String)> {
    use serde_json::Value;
    let d = api
        .post(
            "/v2/volumes/apply",
            serde_json::json!({"volumeName": volume, "path": "q2z/"}),
        )
        .with_context(|| format!("asking Zilliz Cloud for upload credentials of volume '{volume}' (does it exist in this project? create it in the console or with POST /v2/volumes/create)"))?;
    let text = |k: &str| d.pointer(k).and_then(Value::as_str).map(str::to_string);
    let (Some(bucket), Some(prefix)) = (text("/bucketName"), text("/volumePrefix")) else {
        bail!("Zilliz Cloud's answer for volume '{volume}' has no bucketName/volumePrefix");
    };
    let endpoint = text("/endpoint").map(|e| {
        if e.contains("://") {
            e
        } else {
            format!("https://{e}")
        }
    });
    let storage = crate::target::upload::StorageConfig {
        endpoint,
        bucket,
        prefix: format!("{prefix}q2z"),
        region: text("/region").unwrap_or_else(|| "us-east-1".into()),
        access_key: text("/credentials/tmpAK"),
        secret_key: text("/credentials/tmpSK"),
        session_token: text("/credentials/sessionToken"),
    };
    Ok((storage, prefix))
}

fn storage(s: &StorageArgs) -> Option<crate::target::upload::StorageConfig> {
    let bucket = s.s3_bucket.clone()?;
    Some(crate::target::upload::StorageConfig {
        endpoint: s.s3_endpoint.clone(),
        bucket,
        prefix: s.s3_prefix.clone(),
        region: s.s3_region.clone(),
        access_key: s.s3_access_key.clone(),
        secret_key: s.s3_secret_key.clone(),
        session_token: None,
    })
}

fn print_reports(reports: &[crate::verify::VerifyReport], json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
    } else {
        for r in reports {
            println!(
                "{} → {}: source {} / staged {} / target {} rows; {} sampled points compared field by field: {}",
                r.collection,
                r.target,
                r.source_count_at_start,
                r.staged_rows,
                r.target_count,
                r.sample_checked,
                if r.ok {
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
                } else {
                    "FAILED (run q2z verify --repair to re-send the bad chunks)"
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

fn import_options(
    stage: &Path,
    mode: ModeArg,
    storage_args: &StorageArgs,
    sample: usize,
    quiet: bool,
) -> crate::import::ImportOptions {
    crate::import::ImportOptions {
        stage: stage.to_path_buf(),
        mode: match mode {
            ModeArg::Bulk => crate::import::ImportMode::Bulk,
            ModeArg::Upsert => crate::import::ImportMode::Upsert,
        },
        storage: storage(storage_args),
        sample,
        quiet,
        ..Default::default()
    }
}

fn import_cmd(a: ImportArgs) -> Result<u8> {
    let (m, volume) = milvus_for_import(&a.target, &a.storage, a.mode)?;
    let mut opts = import_options(&a.stage, a.mode, &a.storage, a.sample, a.json);
    if volume.is_some() {
        opts.storage = volume;
    }
    opts.into_existing = a.into_existing;
    opts.drop_existing = a.drop_existing;
    opts.batch_bytes = a.batch_bytes;
    opts.collections = a.collections.clone();
    let reports = crate::import::import(&m, &opts)?;
    print_reports(&reports, a.json)
}

fn migrate(a: MigrateArgs) -> Result<u8> {
    let scratch = scratch_dir(&a.source, Some(&a.stage));
    let (sources, info) = open_sources(&a.source, &scratch)?;
    let (mapping, overrides) = mapping_options(&a.mapping)?;
    let eopts = export_options(&a.stage, &a.tuning, false, mapping, overrides, a.json);
    let (m, volume) = milvus_for_import(&a.target, &a.storage, a.mode)?;
    let upload_to = match a.mode {
        ModeArg::Bulk => volume.clone().or_else(|| storage(&a.storage)),
        ModeArg::Upsert => None,
    };
    // Chunks go up while the export is still writing; the import then finds them in the bucket.
    let done = std::sync::atomic::AtomicBool::new(false);
    let exported = std::thread::scope(|s| {
        let uploader = upload_to.map(|cfg| {
            let (stage, done) = (&a.stage, &done);
            s.spawn(move || crate::overlap::upload_while_exporting(stage, cfg, done))
        });
        let r = export(&sources, info, &eopts);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = uploader {
            match h.join() {
                Ok(Ok(n)) => tracing::info!(
                    during = n.during_export,
                    after = n.after_export,
                    "files uploaded while exporting"
                ),
                Ok(Err(e)) => {
                    tracing::warn!("early upload stopped ({e}); the import uploads the rest")
                }
                Err(_) => tracing::warn!("early upload stopped; the import uploads the rest"),
            }
        }
        r
    })?;
    drop(sources);
    let _ = std::fs::remove_dir_all(&scratch);
    for r in &exported {
        eprintln!(
            "{}: staged {} of {} points in {:.1}s{}",
            r.collection,
            r.staged_rows,
            r.source_count_at_start,
            r.seconds,
            if r.set_aside > 0 {
                format!(" ({} set aside: payload over 64 KiB)", r.set_aside)
            } else {
                String::new()
            }
        );
    }
    let mut opts = import_options(&a.stage, a.mode, &a.storage, a.sample, a.json);
    if volume.is_some() {
        opts.storage = volume;
    }
    opts.drop_existing = a.drop_existing;
    opts.collections = exported.iter().map(|r| r.collection.clone()).collect();
    let reports = crate::import::import(&m, &opts)?;
    print_reports(&reports, a.json)
}

fn verify_cmd(a: VerifyArgs) -> Result<u8> {
    let Some(manifest) = Manifest::load(&a.stage)? else {
        bail!(
            "{} holds no staged export (no manifest.json)",
            a.stage.display()
        )
    };
    if a.stage_only || a.target.is_none() {
        for (name, e) in &manifest.collections {
            crate::import::check_files(&a.stage, e)?;
            println!(
                "{name}: {} files, {} rows: all present with the sha256 the manifest records",
                e.chunks.len(),
                e.staged_rows()
            );
        }
        return Ok(0);
    }
    let t = a.target.as_ref().expect("checked");
    let m = milvus(t);
    let mut state = crate::stage::import_state::ImportState::load(&a.stage)?;
    let mode_of = |state: &crate::stage::import_state::ImportState, name: &str| {
        state
            .targets
            .get(m.url())
            .and_then(|c| c.get(name))
            .and_then(|l| l.mode.clone())
            .unwrap_or_else(|| "bulk".into())
    };
    let mut reports = Vec::new();
    let mut repaired = Vec::new();
    for (name, e) in &manifest.collections {
        let upsert = mode_of(&state, name) == "upsert";
        let r = crate::verify::verify_collection(&m, &a.stage, e, a.sample, upsert)?;
        if a.repair && !r.bad_chunks.is_empty() {
            let ledger = state
                .targets
                .entry(m.url().to_string())
                .or_default()
                .entry(name.clone())
                .or_default();
            for bad in &r.bad_chunks {
                let c = e
                    .chunks
                    .iter()
                    .find(|c| c.file == bad.file)
                    .expect("chunk of the manifest");
                crate::import::delete_chunk(&m, &a.stage, e, c)?;
                let l = ledger.chunks.entry(c.file.clone()).or_default();
                l.state = if l.key.is_some() {
                    crate::stage::import_state::ChunkState::Uploaded
                } else {
                    crate::stage::import_state::ChunkState::Pending
                };
                l.job = None;
                l.attempts = 0;
                eprintln!(
                    "repair: deleted the key range of {} ({} rows staged, {} found); sending it again",
                    c.file, bad.staged, bad.target
                );
            }
            ledger.created = true;
            state.save(&a.stage)?;
            repaired.push(name.clone());
        } else {
            reports.push(r);
        }
    }
    drop(state);
    if !repaired.is_empty() {
        let state = crate::stage::import_state::ImportState::load(&a.stage)?;
        for name in repaired {
            let mode = if mode_of(&state, &name) == "upsert" {
                ModeArg::Upsert
            } else {
                ModeArg::Bulk
            };
            if mode == ModeArg::Bulk && a.storage.s3_bucket.is_none() {
                bail!(
                    "collection {name} was bulk-imported: pass the same --s3-endpoint / --s3-bucket (and keys) to --repair so the bad chunks are re-sent as files"
                );
            }
            let mut opts = import_options(&a.stage, mode, &a.storage, a.sample, a.json);
            opts.collections = vec![name.clone()];
            reports.extend(crate::import::import(&m, &opts)?);
        }
    }
    print_reports(&reports, a.json)
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
        bail!("--manhattan-as takes L2, IP or COSINE, not '{m}'");
    }
    let opts = MappingOptions {
        exclude_vectors: a.exclude_vector.clone(),
        manhattan_as: a.manhattan_as.clone(),
        multivector: match a.multivector {
            None => MultivectorPolicy::Ask,
            Some(MultivectorArg::First) => MultivectorPolicy::First,
            Some(MultivectorArg::Skip) => MultivectorPolicy::Skip,
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
            OversizeArg::Error => OversizePolicy::Error,
            OversizeArg::SetAside => OversizePolicy::SetAside,
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
            None => bail!(
                "--promote {s}: unknown type '{ty}'; use Int64, Double, Bool, VarChar, JSON or Array<Int64|Double|Bool|VarChar>"
            ),
        },
        _ => Ok((s.to_string(), None)),
    }
}

/// Opens the collections the flags name; returns them with the source description.
fn open_sources(a: &SourceArgs, scratch: &Path) -> Result<(Vec<SharedSource>, SourceInfo)> {
    if !a.snapshot.is_empty() {
        if a.snapshot_name.is_some() && a.snapshot.len() > 1 {
            bail!("--as names one collection; give one --snapshot with it");
        }
        let mut sources: Vec<SharedSource> = Vec::new();
        let mut files = Vec::new();
        for f in &a.snapshot {
            // The checksum (recorded in the manifest) is read on a second core while the
            // snapshot unpacks on the first.
            let (hashed, opened) = std::thread::scope(|s| {
                let h = s.spawn(|| sha256_file(f));
                let c = open_snapshot(f, a.snapshot_name.as_deref(), scratch);
                (h.join(), c)
            });
            let c = opened?;
            let (sha256, bytes) = hashed
                .map_err(|_| anyhow::anyhow!("hashing snapshot {} panicked", f.display()))?
                .with_context(|| format!("reading snapshot {}", f.display()))?;
            if !a.collections.is_empty() && !a.collections.contains(&c.name) {
                continue;
            }
            files.push(SnapshotFile {
                file: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256,
                bytes,
            });
            sources.push(Arc::new(c));
        }
        return Ok((sources, SourceInfo::Snapshot { files }));
    }
    let Some(url) = &a.qdrant_url else {
        bail!("say where to read from: --qdrant-url URL (live server) or --snapshot FILE (offline)")
    };
    let client = QdrantRest::new(url, a.api_key.clone(), Default::default());
    let names = if a.collections.is_empty() {
        client.list_collections()?
    } else {
        a.collections.clone()
    };
    if a.via_snapshot {
        return via_snapshot(&client, &names, a.keep_snapshot, scratch);
    }
    let mut sources: Vec<SharedSource> = Vec::new();
    for n in names {
        let config = client.collection_config(&n)?;
        sources.push(Arc::new(RestCollection {
            client: client.clone(),
            config,
        }));
    }
    Ok((
        sources,
        SourceInfo::Rest {
            url: strip_credentials(url),
        },
    ))
}

/// Point-in-time export: snapshot each collection on the server, download, open offline.
fn via_snapshot(
    client: &QdrantRest,
    names: &[String],
    keep: bool,
    scratch: &Path,
) -> Result<(Vec<SharedSource>, SourceInfo)> {
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut sources: Vec<SharedSource> = Vec::new();
    let mut files = Vec::new();
    for n in names {
        client.collection_config(n)?;
        let (snap, size, checksum) = client.create_snapshot(n)?;
        eprintln!("{n}: server snapshot {snap} ({size} bytes) created; downloading");
        let dest = scratch.join(&snap);
        let r = client.download_snapshot(n, &snap, &dest, checksum.as_deref());
        if !keep && let Err(e) = client.delete_snapshot(n, &snap) {
            eprintln!("warning: could not delete the server snapshot {snap} of {n}: {e}");
        }
        r?;
        let (sha256, bytes) = sha256_file(&dest)?;
        let c = open_snapshot(&dest, Some(n), scratch)?;
        std::fs::remove_file(&dest).ok();
        files.push(SnapshotFile {
            file: format!("{}#{snap}", strip_credentials(client.url())),
            sha256,
            bytes,
        });
        sources.push(Arc::new(c));
    }
    Ok((sources, SourceInfo::Snapshot { files }))
}

/// Removes `user:pass@` from a URL before it is logged or stored.
pub fn strip_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn scratch_dir(a: &SourceArgs, stage: Option<&Path>) -> PathBuf {
    a.scratch.clone().unwrap_or_else(|| match stage {
        Some(s) => s.join(".scratch"),
        None => std::env::temp_dir(),
    })
}

fn plan(a: PlanArgs) -> Result<u8> {
    let scratch = scratch_dir(&a.source, None);
    let (sources, _) = open_sources(&a.source, &scratch)?;
    let (opts, overrides) = mapping_options(&a.mapping)?;
    let mut out = Vec::new();
    let mut file = MappingFile::default();
    for s in &sources {
        let scan = scan_ids(s)?;
        let cfg = s.config();
        let (mapping, warnings) = match overrides.get(&cfg.name) {
            Some(m) => (m.clone(), vec![]),
            None => default_mapping(cfg, scan.id_kind, &opts)?,
        };
        let row = 64
            + mapping
                .vectors
                .iter()
                .map(|v| v.dim.map(|d| d * 4).unwrap_or(64))
                .sum::<usize>() as u64;
        out.push(serde_json::json!({
            "collection": cfg.name,
            "points": scan.count,
            "mapping": mapping,
            "milvus_create": crate::target::schema::milvus_create_body(&mapping),
            "warnings": warnings,
            "estimated_vector_bytes": row * scan.count,
        }));
        file.collection.push(mapping);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for p in &out {
            print_plan(p);
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

fn print_plan(p: &serde_json::Value) {
    let m: CollectionMapping = serde_json::from_value(p["mapping"].clone()).expect("own mapping");
    println!(
        "Qdrant collection '{}' ({} points) → Milvus collection '{}'",
        m.source, p["points"], m.target
    );
    println!("  {:<24} {:<22} from / index", "field", "Milvus type");
    println!(
        "  {:<24} {:<22} point id",
        m.id_field,
        format!("{:?} (primary)", m.id_kind)
    );
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
    for f in &m.scalars {
        let ty = match (f.element_type, f.max_length) {
            (Some(e), _) => format!("Array<{}>", e.milvus_name()),
            (None, Some(l)) => format!("{}({l})", f.kind.milvus_name()),
            (None, None) => f.kind.milvus_name().to_string(),
        };
        println!(
            "  {:<24} {:<22} payload key '{}'{}{}",
            f.field,
            ty,
            f.key,
            if f.nullable { ", nullable" } else { "" },
            if f.partition_key {
                ", partition key"
            } else {
                ""
            }
        );
    }
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
    println!("  estimated vector bytes: {}", p["estimated_vector_bytes"]);
    for w in p["warnings"].as_array().into_iter().flatten() {
        println!("  warning: {}", w.as_str().unwrap_or_default());
    }
}

fn export_options(
    stage: &Path,
    t: &ExportTuning,
    restart: bool,
    mapping: MappingOptions,
    overrides: BTreeMap<String, CollectionMapping>,
    quiet: bool,
) -> ExportOptions {
    ExportOptions {
        stage: stage.to_path_buf(),
        workers: t.workers,
        ranges: t.ranges,
        page_size: t.page_size,
        max_file_bytes: t.max_file_bytes,
        zstd_level: t.zstd_level,
        compress_vectors: t.vector_compression == VectorCompression::Zstd,
        restart,
        mapping,
        mapping_overrides: overrides,
        quiet,
    }
}

fn export_cmd(a: ExportArgs) -> Result<u8> {
    let scratch = scratch_dir(&a.source, Some(&a.stage));
    let (sources, info) = open_sources(&a.source, &scratch)?;
    let (mapping, overrides) = mapping_options(&a.mapping)?;
    let opts = export_options(&a.stage, &a.tuning, a.restart, mapping, overrides, a.json);
    let reports = export(&sources, info, &opts)?;
    drop(sources);
    let _ = std::fs::remove_dir_all(scratch);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
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
                    a.stage.display(),
                    r.collection
                );
            }
            for w in &r.warnings {
                println!("  warning: {w}");
            }
        }
    }
    Ok(0)
}

fn status(a: StatusArgs) -> Result<u8> {
    let Some(m) = Manifest::load(&a.stage)? else {
        bail!(
            "{} holds no staged export (no manifest.json); run q2z export first",
            a.stage.display()
        )
    };
    let state = crate::stage::import_state::ImportState::load(&a.stage)?;
    if a.json {
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
        for (target, colls) in &state.targets {
            let Some(l) = colls.get(name) else { continue };
            let mut by: BTreeMap<String, (usize, u64)> = BTreeMap::new();
            for c in &e.chunks {
                let st = l
                    .chunks
                    .get(&c.file)
                    .map(|x| format!("{:?}", x.state))
                    .unwrap_or_else(|| "Pending".into());
                let v = by.entry(st).or_default();
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
                "  → {target} '{}' ({}): {}; jobs {:?}; verified: {}",
                e.mapping.target,
                l.mode.as_deref().unwrap_or("-"),
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
