//! The export half: source → transform → stage, resumable at chunk granularity
//! (docs/design.md §3). [`plan`] decides the ranges and the manifest entry, [`run`] stages them,
//! [`calibrate`] times a short read of them to predict the run (`q2z plan`).

mod calibrate;
mod plan;
mod run;

pub use calibrate::{
    Calibration, CalibrationRun, Estimate, Forecast, calibrate, part_seconds, parts_for_deadline,
};
use plan::*;
pub use plan::{IdScan, plan_ranges, scan_ids};
use run::*;

use crate::error::{Error, Result};
use crate::model::{Point, PointId};
use crate::progress::Progress;
use crate::sink::milvus::schema::milvus_create_body;
use crate::source::{ScrollOpts, SharedSource, pages};
use crate::stage::Stage;
use crate::stage::layout;
use crate::stage::manifest::{
    Chunk, CollectionEntry, ExportState, Manifest, Part, PartShare, Range, SetAsideFile,
    SourceInfo, SplitBy, stage_err,
};
use crate::stage::writer::ChunkOptions;
use crate::transform::batch::{Converted, arrow_schema, to_batch};
use crate::transform::mapping::{CollectionMapping, IdKind, MappingOptions, default_mapping};
use rayon::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Knobs of an export run.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Parallel scroll cursors (at least 1).
    pub workers: usize,
    /// Id ranges to plan (0: decided from the count and workers).
    pub ranges: usize,
    /// Points per scroll page.
    pub page_size: usize,
    /// A chunk file is closed once it reaches this size.
    pub max_file_bytes: u64,
    /// zstd level of the Parquet files.
    pub zstd_level: i32,
    /// Compress the vector columns too (smaller files, more CPU).
    pub compress_vectors: bool,
    /// Throw away the stage's state and start over.
    pub restart: bool,
    /// Options for the default mapping.
    pub mapping: MappingOptions,
    /// Mappings read from the user's mapping file, by Qdrant collection name.
    pub mapping_overrides: BTreeMap<String, CollectionMapping>,
    /// No progress bars.
    pub quiet: bool,
    /// Take only this share of the work (`--part I/N`; docs/design.md §9).
    pub part: Option<Part>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            workers: 4,
            ranges: 0,
            page_size: 256,
            max_file_bytes: 1 << 30,
            zstd_level: crate::stage::writer::ZSTD_LEVEL,
            compress_vectors: false,
            restart: false,
            mapping: MappingOptions::default(),
            mapping_overrides: BTreeMap::new(),
            quiet: false,
            part: None,
        }
    }
}

/// What an export did, per collection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionReport {
    pub collection: String,
    pub target: String,
    pub source_count_at_start: u64,
    pub staged_rows: u64,
    /// Points kept apart in `set-aside-*.jsonl` (payload over 64 KiB, `--oversize-payload set-aside`).
    pub set_aside: u64,
    pub chunks: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

/// Runs (or resumes) an export of `sources` into the stage directory.
pub fn export(
    stage: &Stage,
    sources: &[SharedSource],
    source_info: SourceInfo,
    opts: &ExportOptions,
) -> Result<Vec<CollectionReport>> {
    if opts.restart {
        stage.reset()?;
    }
    let mut manifest = match stage.manifest()? {
        Some(m) => {
            if m.source != source_info {
                return Err(stage_err(
                    stage.dir(),
                    format!(
                        "it holds an export from another source ({}); use another --stage, or --restart to throw it away",
                        serde_json::to_string(&m.source).unwrap_or_default()
                    ),
                ));
            }
            if m.part != opts.part {
                let held = m
                    .part
                    .map_or("a whole export".to_string(), |p| format!("part {p}"));
                let asked = opts
                    .part
                    .map_or("a whole export".to_string(), |p| format!("part {p}"));
                return Err(stage_err(
                    stage.dir(),
                    format!(
                        "it holds {held}, and this run asks for {asked}; give each part its own --stage and the same --part on every rerun"
                    ),
                ));
            }
            m
        }
        None => Manifest {
            part: opts.part,
            ..Manifest::new(source_info)
        },
    };
    check_distinct(sources, &manifest, opts)?;
    let mut reports = Vec::new();
    for src in sources {
        reports.push(export_collection(stage, src, &mut manifest, opts)?);
    }
    Ok(reports)
}

/// Refuses, before anything is written, sources that would stage into one place: the same
/// collection twice (e.g. the snapshots of two cluster nodes), or two collections whose target
/// names are the same once sanitised (`Docs-2024.v1` and `Docs_2024_v1`).
fn check_distinct(
    sources: &[SharedSource],
    manifest: &Manifest,
    opts: &ExportOptions,
) -> Result<()> {
    let mut targets: BTreeMap<String, String> = manifest
        .collections
        .iter()
        .map(|(n, e)| (e.mapping.target.clone(), n.clone()))
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for src in sources {
        let name = &src.config().name;
        if !names.insert(name.clone()) {
            return Err(Error::Mapping {
                collection: name.clone(),
                message: "given twice: two sources hold this collection. Give each collection once"
                    .into(),
            });
        }
        let target = match opts.mapping_overrides.get(name) {
            Some(m) => m.target.clone(),
            None => match manifest.collections.get(name) {
                Some(e) => e.mapping.target.clone(),
                None => crate::transform::mapping::default_target(name, &opts.mapping),
            },
        };
        match targets.get(&target) {
            Some(other) if other != name => {
                return Err(Error::Mapping {
                    collection: name.clone(),
                    message: format!(
                        "its target collection '{target}' is also the target of '{other}'; give one of them another `target` in the mapping file (q2z plan --mapping-out), or export them into separate stages"
                    ),
                });
            }
            _ => {
                targets.insert(target, name.clone());
            }
        }
    }
    Ok(())
}

fn export_collection(
    stage: &Stage,
    src: &SharedSource,
    manifest: &mut Manifest,
    opts: &ExportOptions,
) -> Result<CollectionReport> {
    let name = src.config().name.clone();
    let started = std::time::Instant::now();
    if !manifest.collections.contains_key(&name) {
        stage.collection_dir(&name)?;
        let entry = plan_collection(src, opts)?;
        manifest.collections.insert(name.clone(), entry);
        stage.save_manifest(manifest)?;
    }
    let entry = manifest.collections[&name].clone();
    stage.clean_collection_dir(&name, &entry)?;
    if entry.state != ExportState::Exported {
        run_ranges(stage, src, manifest, &entry, opts)?;
        check_complete(stage, src, manifest)?;
    }
    let e = &manifest.collections[&name];
    Ok(CollectionReport {
        collection: name.clone(),
        target: e.mapping.target.clone(),
        source_count_at_start: e.source_count_at_start,
        staged_rows: e.staged_rows(),
        set_aside: e.set_aside_points(),
        chunks: e.chunks.len(),
        bytes: e.chunks.iter().map(|c| c.bytes).sum(),
        seconds: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        warnings: e.warnings.clone(),
    })
}

/// Staged + set aside must equal the source's count at the start (or now, with a warning);
/// then the collection is marked exported.
fn check_complete(stage: &Stage, src: &SharedSource, manifest: &mut Manifest) -> Result<()> {
    let name = &src.config().name;
    let Some(e) = manifest.collections.get_mut(name) else {
        return Ok(());
    };
    let zero: u64 = e.ranges.iter().map(|r| r.zero_cosine).sum();
    if zero > 0 {
        e.warnings.push(format!("{zero} points have an all-zero vector in a COSINE field (a missing named vector is staged as zeros): Milvus cannot rank them by COSINE. Set missing_vector = \"error\" in the mapping to refuse points without the vector, or exclude the vector"));
    }
    let staged = e.staged_rows() + e.set_aside_points();
    if staged != e.source_count_at_start {
        let now = match &e.share {
            Some(s) if s.by == SplitBy::Ranges => count_in_ranges(src, &e.ranges)?,
            _ => src.count()?,
        };
        let msg = format!(
            "staged {staged} points, the source had {} when the export began and has {now} now: it changed during the export. Use --via-snapshot (or --snapshot) for a point-in-time copy",
            e.source_count_at_start
        );
        if staged != now {
            stage.save_manifest(manifest)?;
            return Err(Error::Mismatch(format!("collection {name}: {msg}")));
        }
        e.warnings.push(msg);
    }
    e.state = ExportState::Exported;
    stage.save_manifest(manifest)
}
