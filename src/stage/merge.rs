//! `q2z stage merge`: joins the part stages of one `export --part I/N` plan into one stage
//! that imports like a whole export (docs/design.md §9). The parts are checked first — one
//! plan, every part there once, disjoint units that cover the plan, every part finished — then
//! their files are hard-linked (copied across file systems) under the merged stage's names, and
//! the manifest is written last, so an interrupted merge is finished by running it again.

use super::layout;
use super::manifest::{
    Chunk, CollectionEntry, ExportState, Manifest, Part, PartShare, SplitBy, stage_err,
};
use super::{Need, Stage};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a merge did, per collection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeReport {
    pub collection: String,
    pub target: String,
    pub split_by: SplitBy,
    pub rows: u64,
    pub chunks: usize,
    /// Files hard-linked from the parts.
    pub linked: usize,
    /// Files copied (the parts are on another file system).
    pub copied: usize,
    /// Files already in place from an earlier, interrupted merge.
    pub kept: usize,
}

/// One part stage, opened (and locked: no export may run in it meanwhile).
struct PartStage {
    stage: Stage,
    part: Part,
    manifest: Manifest,
}

/// Merges `parts` into the stage directory `into`.
pub fn merge(parts: &[PathBuf], into: &Path) -> Result<Vec<MergeReport>> {
    let opened = open_parts(parts, into)?;
    let (merged, moves) = merged_manifest(&opened)?;
    // Checked before --into is opened (an s3:// stage's bucket is its URL's first part).
    let into_bucket = super::remote::is_remote(into)
        .then(|| super::remote::parse_url(&into.to_string_lossy()).map(|(b, _)| b))
        .flatten();
    if !opened
        .iter()
        .all(|p| p.stage.remote().map(|r| r.bucket().to_string()) == into_bucket)
    {
        return Err(stage_err(
            into,
            "the parts and --into must all be directories, or all s3:// stages in one bucket (copied there server side); copy the parts where the merge runs (e.g. aws s3 sync) and merge the copies",
        ));
    }
    let target = Stage::open_at(into, None, "stage merge", Need::Create)?;
    if let Some(m) = target.manifest()?
        && m != merged
    {
        return Err(stage_err(
            into,
            "already holds another stage; give an empty or new directory to --into",
        ));
    }
    let mut reports = Vec::new();
    for (name, entry) in &merged.collections {
        target.clean_collection_dir(name, entry)?;
        let mut r = MergeReport {
            collection: name.clone(),
            target: entry.mapping.target.clone(),
            split_by: opened[0].manifest.collections[name]
                .share
                .as_ref()
                .map_or(SplitBy::Ranges, |s| s.by),
            rows: entry.staged_rows(),
            chunks: entry.chunks.len(),
            linked: 0,
            copied: 0,
            kept: 0,
        };
        for Move {
            part,
            from,
            to,
            bytes,
            sha256: sha,
        } in &moves[name]
        {
            let (part, bytes) = (&opened[*part].stage, *bytes);
            let placed = match (part.remote(), target.remote()) {
                (Some(pr), Some(tr)) => {
                    if tr.holds(target.dir(), to, bytes, sha)? {
                        tr.mark_present([to.as_str()]);
                        Placed::Kept
                    } else {
                        tr.copy_from(pr, from, to)?;
                        Placed::Copied
                    }
                }
                _ => place(&part.file(from), &target.file(to))?,
            };
            match placed {
                Placed::Linked => r.linked += 1,
                Placed::Copied => r.copied += 1,
                Placed::Kept => r.kept += 1,
            }
        }
        reports.push(r);
    }
    target.save_manifest(&merged)?;
    Ok(reports)
}

/// Opens every part and checks they are the parts of one plan: each once, none missing.
fn open_parts(dirs: &[PathBuf], into: &Path) -> Result<Vec<PartStage>> {
    let into_real = if super::remote::is_remote(into) {
        Some(into.to_path_buf())
    } else {
        std::fs::canonicalize(into).ok()
    };
    let mut parts: Vec<PartStage> = Vec::new();
    let mut given = BTreeSet::new();
    for d in dirs {
        let real = if super::remote::is_remote(d) {
            Some(d.clone())
        } else {
            std::fs::canonicalize(d).ok()
        };
        if real.is_some() && !given.insert(real.clone()) {
            return Err(stage_err(d, "is given twice; give each part once"));
        }
        if into_real.is_some() && real == into_real {
            return Err(stage_err(
                d,
                "is given both as a part and as --into; merge into a new directory",
            ));
        }
        let stage = Stage::open_at(d, None, "stage merge", Need::Existing)?;
        let manifest = stage.require_manifest()?;
        let Some(part) = manifest.part else {
            return Err(stage_err(
                d,
                "is a whole export, not a part of `export --part I/N`; import it as it is",
            ));
        };
        parts.push(PartStage {
            stage,
            part,
            manifest,
        });
    }
    check_one_plan(&parts)?;
    parts.sort_by_key(|p| p.part.index);
    Ok(parts)
}

/// The parts are of one split and one source, each given once, none missing.
fn check_one_plan(parts: &[PartStage]) -> Result<()> {
    let first = &parts[0];
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for p in parts {
        if p.part.of != first.part.of {
            return Err(stage_err(
                p.stage.dir(),
                format!(
                    "is part {} but {} is part {}: they belong to different splits; merge the parts of one `--part I/N` plan",
                    p.part,
                    first.stage.dir().display(),
                    first.part
                ),
            ));
        }
        if p.manifest.source != first.manifest.source {
            return Err(stage_err(
                p.stage.dir(),
                format!(
                    "was exported from another source than {} (its manifest's \"source\" differs); every part must read the same server or the same snapshot files",
                    first.stage.dir().display()
                ),
            ));
        }
        if let Some(other) = seen.insert(p.part.index, p.stage.dir()) {
            return Err(stage_err(
                p.stage.dir(),
                format!(
                    "is part {} again ({} is too); give each part once",
                    p.part,
                    other.display()
                ),
            ));
        }
    }
    let missing: Vec<String> = (0..first.part.of)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", first.part.of))
        .collect();
    if !missing.is_empty() {
        return Err(stage_err(
            first.stage.dir(),
            format!(
                "the parts given are not all of the plan: part {} missing. Run `q2z export … --part I/N` for each (same flags) and give all their stages",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A staged file of a part and its name in the merged stage.
struct Move {
    /// Index of the part.
    part: usize,
    from: String,
    to: String,
    /// Size (0 for set-aside files, whose size the manifest does not keep).
    bytes: u64,
    sha256: String,
}

/// The merged manifest: per collection, the parts' ranges renumbered in plan order and their
/// files renamed to match (the moves, per collection).
fn merged_manifest(parts: &[PartStage]) -> Result<(Manifest, BTreeMap<String, Vec<Move>>)> {
    let first = &parts[0];
    let names: BTreeSet<&String> = first.manifest.collections.keys().collect();
    let mut merged = Manifest::new(first.manifest.source.clone());
    for p in parts {
        let these: BTreeSet<&String> = p.manifest.collections.keys().collect();
        if these != names {
            return Err(stage_err(
                p.stage.dir(),
                format!(
                    "holds collections {these:?}, part {} holds {names:?}: export every part with the same -c flags",
                    first.part
                ),
            ));
        }
    }
    let mut moves = BTreeMap::new();
    for name in names {
        let (entry, m) = merge_collection(parts, name)?;
        merged.collections.insert(name.clone(), entry);
        moves.insert(name.clone(), m);
    }
    Ok((merged, moves))
}

fn merge_collection(parts: &[PartStage], name: &str) -> Result<(CollectionEntry, Vec<Move>)> {
    let entries: Vec<&CollectionEntry> = parts
        .iter()
        .map(|p| &p.manifest.collections[name])
        .collect();
    let share0 = check_parts_agree(parts, &entries, name)?;
    check_coverage(parts, &entries, name, share0)?;
    check_files(parts, &entries, name)?;
    Ok(renumber(&entries, name))
}

/// A merge error about collection `name` of part `p`.
fn part_err(p: &PartStage, name: &str, msg: impl std::fmt::Display) -> Error {
    stage_err(p.stage.dir(), format!("collection {name}: {msg}"))
}

/// Every part finished, planned with the same fingerprint and split, mapping the collection the
/// same way; returns the first part's share.
fn check_parts_agree<'a>(
    parts: &[PartStage],
    entries: &[&'a CollectionEntry],
    name: &str,
) -> Result<&'a PartShare> {
    let first = entries[0];
    let Some(share0) = &first.share else {
        return Err(part_err(
            &parts[0],
            name,
            "has no part share in its manifest",
        ));
    };
    for (p, e) in parts.iter().zip(entries) {
        if e.state != ExportState::Exported {
            return Err(part_err(
                p,
                name,
                format!(
                    "part {} is not finished; run its export again (the same command) and merge again",
                    p.part
                ),
            ));
        }
        let Some(s) = &e.share else {
            return Err(part_err(p, name, "has no part share in its manifest"));
        };
        if s.fingerprint != share0.fingerprint || s.by != share0.by || s.all != share0.all {
            return Err(part_err(
                p,
                name,
                format!(
                    "part {} was planned differently from part {} (its plan fingerprint differs: other flags, other files, or a live collection that changed between the parts' id scans). Export every part with the same flags; for a live collection that is written to, export from a snapshot",
                    p.part, parts[0].part
                ),
            ));
        }
        if e.mapping != first.mapping || e.milvus_schema != first.milvus_schema {
            return Err(part_err(
                p,
                name,
                format!(
                    "part {} maps the collection differently from part {} (e.g. one saw only integer ids, the other UUIDs). Write the mapping once (q2z plan --mapping-out m.toml), export every part with --mapping m.toml",
                    p.part, parts[0].part
                ),
            ));
        }
    }
    Ok(share0)
}

/// The parts' units are disjoint and together cover the plan.
fn check_coverage(
    parts: &[PartStage],
    entries: &[&CollectionEntry],
    name: &str,
    share0: &PartShare,
) -> Result<()> {
    let mut covered: BTreeMap<u64, usize> = BTreeMap::new();
    for (p, e) in parts.iter().zip(entries) {
        for u in e.share.iter().flat_map(|s| &s.units) {
            if let Some(other) = covered.insert(*u, p.part.index) {
                let word = unit_word(share0.by);
                return Err(part_err(
                    p,
                    name,
                    format!("{word} {u} is in part {} and in part {other}", p.part),
                ));
            }
        }
    }
    let missing: Vec<String> = share0
        .all
        .iter()
        .filter(|u| !covered.contains_key(u))
        .map(u64::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(part_err(
        &parts[0],
        name,
        format!(
            "no part holds {} {}",
            unit_word(share0.by),
            missing.join(", ")
        ),
    ))
}

/// Every staged file of every part is there with its manifest size.
fn check_files(parts: &[PartStage], entries: &[&CollectionEntry], name: &str) -> Result<()> {
    for (p, e) in parts.iter().zip(entries) {
        for c in &e.chunks {
            let ok = match p.stage.remote() {
                Some(r) => r.holds(p.stage.dir(), &c.file, c.bytes, &c.sha256)?,
                None => std::fs::metadata(p.stage.file(&c.file)).is_ok_and(|m| m.len() == c.bytes),
            };
            if !ok {
                return Err(part_err(
                    p,
                    name,
                    format!(
                        "staged file {} is missing or has the wrong size; copy the part's stage again, or export the part again",
                        c.file
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The merged entry: the parts' ranges renumbered in plan order, their chunks and set-aside
/// files renamed to match (the moves), counts, shards and warnings joined.
fn renumber(entries: &[&CollectionEntry], name: &str) -> (CollectionEntry, Vec<Move>) {
    let mut out = CollectionEntry {
        share: None,
        ranges: Vec::new(),
        chunks: Vec::new(),
        warnings: Vec::new(),
        shards: Vec::new(),
        source_count_at_start: 0,
        state: ExportState::Exported,
        // The earliest part: a change after it may be missing from some part.
        source_taken_at: entries
            .iter()
            .map(|e| e.source_taken_at)
            .collect::<Option<Vec<u64>>>()
            .and_then(|t| t.into_iter().min()),
        ..entries[0].clone()
    };
    let mut moves = Vec::new();
    for (pi, ri) in plan_order(entries) {
        let e = entries[pi];
        let k = out.ranges.len();
        let mut r = e.ranges[ri].clone();
        r.index = k;
        for (n, f) in r.set_aside.iter_mut().enumerate() {
            let to = layout::set_aside_file(name, k, n);
            moves.push(Move {
                part: pi,
                from: std::mem::replace(&mut f.file, to.clone()),
                to,
                bytes: 0,
                sha256: f.sha256.clone(),
            });
        }
        out.ranges.push(r);
        for c in e.chunks.iter().filter(|c| c.range == ri) {
            let to = layout::chunk_file(name, k, c.seq);
            moves.push(Move {
                part: pi,
                from: c.file.clone(),
                to: to.clone(),
                bytes: c.bytes,
                sha256: c.sha256.clone(),
            });
            out.chunks.push(Chunk {
                file: to,
                range: k,
                ..c.clone()
            });
        }
    }
    for e in entries {
        out.source_count_at_start += e.source_count_at_start;
        out.shards.extend(e.shards.iter().cloned());
        for w in &e.warnings {
            if !out.warnings.contains(w) {
                out.warnings.push(w.clone());
            }
        }
    }
    out.shards.sort_by_key(|s| shard_number(s));
    (out, moves)
}

/// N of a `shard N ← file` line.
fn shard_number(line: &str) -> u64 {
    line.strip_prefix("shard ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

fn unit_word(by: SplitBy) -> &'static str {
    match by {
        SplitBy::Shards => "shard",
        SplitBy::Ranges => "id range",
    }
}

/// (part, range) pairs in the order of the merged stage: by the units' place in the whole
/// plan (id order for ranges, shard id order for shards), then by the part's own ranges.
fn plan_order(entries: &[&CollectionEntry]) -> Vec<(usize, usize)> {
    let mut order: Vec<(u64, usize, usize)> = Vec::new();
    for (pi, e) in entries.iter().enumerate() {
        let share = e.share.as_ref().expect("checked");
        for ri in 0..e.ranges.len() {
            let key = match share.by {
                SplitBy::Ranges => share.units.get(ri).copied().unwrap_or(u64::MAX),
                SplitBy::Shards => share.units.first().copied().unwrap_or(u64::MAX),
            };
            order.push((key, pi, ri));
        }
    }
    order.sort();
    order.into_iter().map(|(_, p, r)| (p, r)).collect()
}

enum Placed {
    Linked,
    Copied,
    Kept,
}

/// Puts `from` at `to`: a hard link, or a copy across file systems; a file already there with
/// the same size is kept (the import checks every file's sha256).
fn place(from: &Path, to: &Path) -> Result<Placed> {
    if let (Ok(a), Ok(b)) = (std::fs::metadata(from), std::fs::metadata(to))
        && a.len() == b.len()
    {
        return Ok(Placed::Kept);
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.merge.tmp",
        to.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_file(&tmp);
    let how = match std::fs::hard_link(from, &tmp) {
        Ok(()) => Placed::Linked,
        Err(_) => {
            std::fs::copy(from, &tmp).map_err(|e| Error::io(from, e))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
            Placed::Copied
        }
    };
    std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))?;
    Ok(how)
}
