//! Offline source: Qdrant collection or shard snapshot files, read with `qdrant-edge`.
//!
//! A snapshot is unpacked into a scratch directory (never in place: `EdgeShard::load` rewrites
//! what it opens). Tar entries are checked before anything is written: no absolute paths, no
//! `..`, no links. Collection snapshots keep each shard's segments as inner tars; each shard is
//! repacked into a shard-snapshot tar and handed to `EdgeShard::unpack_snapshot`.

use crate::error::{Error, Result};
use crate::model::CollectionConfig;
use crate::model::{Distance, Point, PointId, UNNAMED_VECTOR, VectorValue};
use crate::source::cluster::{Inspected, Layout, ShardDir, ShardOptions, plan_shards};
use crate::source::config::parse_collection_config;
use crate::source::mapped_pages::{make_segments_cold, release_under};
use qdrant_edge::{
    EdgeConfig, EdgeShard, PointId as EdgeId, Record, ScrollRequestBuilder, VectorInternal,
    VectorStructInternal, WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// A collection loaded from one snapshot file: its config and its shards.
pub struct SnapshotCollection {
    /// Collection name (from the file name, or given by the user).
    pub name: String,
    /// The collection `config` object in the shape of `GET /collections/{name}`.
    pub config_json: Value,
    /// Parsed config.
    pub config: CollectionConfig,
    /// Loaded shards, in shard-id order.
    pub shards: Vec<EdgeShard>,
    /// Which file each loaded shard was read from (`shard N ← file`), for `plan`.
    pub shard_origins: Vec<String>,
    /// With `--part`: (this part's shard ids, every shard id), when split by shard.
    pub shard_split: Option<(Vec<u32>, Vec<u32>)>,
    /// Each loaded shard's key (custom sharding), in the order of `shards`.
    pub shard_keys: Vec<Option<Value>>,
    /// What the merge of several files decided (replicas not read, shards allowed missing).
    pub notes: Vec<String>,
    /// Unix seconds just before the server made the snapshot (`--via-snapshot`); `None` for
    /// files the user gives, whose time q2z cannot know.
    pub taken_at: Option<u64>,
    /// The (first) snapshot file.
    pub file: PathBuf,
    /// Scratch directory the snapshot is unpacked in (removed on drop).
    work: tempfile::TempDir,
}

/// Derives a collection name from a snapshot file name, as Qdrant names them:
/// `<name>-<peer id>-<yyyy>-<mm>-<dd>-<hh>-<mm>-<ss>.snapshot` (collection snapshot of one
/// node), `<name>-shard-<id>-<date>.snapshot` (shard snapshot), or else `<name>.<anything>`.
pub fn name_from_file(path: &Path) -> String {
    parse_file_name(path).0
}

/// The collection name and, for a shard snapshot, the shard id a file name carries.
pub fn parse_file_name(path: &Path) -> (String, Option<u32>) {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("collection");
    let stem = file.strip_suffix(".snapshot").unwrap_or(file);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = stem.rsplitn(8, '-').collect();
    if parts.len() == 8 && parts[..7].iter().all(|p| digits(p)) {
        let rest = parts[7];
        if let Some(name) = rest.strip_suffix("-shard")
            && !name.is_empty()
        {
            return (name.to_string(), parts[6].parse().ok());
        }
        return (rest.to_string(), None);
    }
    (stem.split('.').next().unwrap_or(stem).to_string(), None)
}

fn snap_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Snapshot {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Checks one tar entry path: relative, no `..`, no root.
fn safe_entry_path(file: &Path, p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => {
                return Err(snap_err(
                    file,
                    format!(
                        "refusing unsafe tar entry '{}' (absolute path or '..'); the file is not a snapshot Qdrant wrote",
                        p.display()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The checked path of a tar entry: relative, no `..`, and not a link.
fn checked_entry<R: Read>(file: &Path, entry: &tar::Entry<R>) -> Result<PathBuf> {
    let raw = entry
        .path()
        .map_err(|e| snap_err(file, format!("bad entry name: {e}")))?
        .into_owned();
    let p = safe_entry_path(file, &raw)?;
    let kind = entry.header().entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(snap_err(
            file,
            format!(
                "refusing link entry '{}'; Qdrant snapshots hold no links",
                p.display()
            ),
        ));
    }
    Ok(p)
}

/// The entries of a snapshot tar, as far as telling its layout goes.
#[derive(Default)]
struct Listing {
    config: Option<Value>,
    /// `shard_key_mapping.json` (custom sharding).
    key_mapping: Option<Value>,
    has_segments: bool,
    shards: BTreeMap<u32, ShardDir>,
    rocksdb: bool,
    entries: usize,
}

impl Listing {
    /// Takes note of one entry (reads `config.json` and `replica_state.json`, both small).
    fn note(&mut self, file: &Path, p: &Path, entry: &mut dyn Read) -> Result<()> {
        self.entries += 1;
        let s = p.to_string_lossy();
        if s.contains("db_backup") || s.ends_with(".sst") || s.contains("/rocksdb") {
            self.rocksdb = true;
        }
        let parts: Vec<String> = p
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["config.json"] => self.config = Some(read_small_json(file, entry, "config.json")?),
            ["shard_key_mapping.json"] => {
                self.key_mapping = Some(read_small_json(file, entry, "shard_key_mapping.json")?)
            }
            ["segments", ..] => self.has_segments = true,
            [d, rest @ ..] if !rest.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                let id = d
                    .parse::<u32>()
                    .map_err(|_| snap_err(file, format!("bad shard directory '{d}'")))?;
                let dir = self.shards.entry(id).or_default();
                match rest {
                    ["segments", ..] => dir.has_data = true,
                    ["replica_state.json"] => {
                        let v = read_small_json(file, entry, "replica_state.json")?;
                        dir.is_local = v.get("is_local").and_then(Value::as_bool);
                        dir.peers = v
                            .get("peers")
                            .and_then(Value::as_object)
                            .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
                            .unwrap_or_default();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The layout the entries show.
    fn layout(self, file: &Path) -> Result<Layout> {
        if self.entries == 0 {
            return Err(snap_err(
                file,
                "empty or not a tar archive; pass a file written by Qdrant's snapshot API",
            ));
        }
        if self.rocksdb {
            return Err(snap_err(file, ROCKSDB));
        }
        let mut shards = self.shards;
        for (id, key) in shard_keys_of(self.key_mapping.as_ref()) {
            shards.entry(id).or_default().shard_key = Some(key);
        }
        match (self.config, shards.is_empty(), self.has_segments) {
            (Some(config), false, _) => Ok(Layout::Collection { config, shards }),
            (_, _, true) => Ok(Layout::Shard),
            _ => Err(snap_err(
                file,
                "not a Qdrant snapshot: no config.json with shard directories and no segments/ directory",
            )),
        }
    }
}

/// Shard id → shard key from `shard_key_mapping.json`: `[{"key": K, "shard_ids": [..]}, ..]`
/// (Qdrant ≥ 1.13), or the older `{"K": [..]}`.
fn shard_keys_of(mapping: Option<&Value>) -> Vec<(u32, Value)> {
    let ids = |v: Option<&Value>| -> Vec<u32> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64())
                    .map(|x| x as u32)
                    .collect()
            })
            .unwrap_or_default()
    };
    match mapping {
        Some(Value::Array(pairs)) => pairs
            .iter()
            .flat_map(|p| {
                let key = p.get("key").cloned().unwrap_or(Value::Null);
                ids(p.get("shard_ids"))
                    .into_iter()
                    .map(move |id| (id, key.clone()))
            })
            .filter(|(_, k)| !k.is_null())
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .flat_map(|(k, v)| {
                ids(Some(v))
                    .into_iter()
                    .map(move |id| (id, Value::from(k.as_str())))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The refusal of pre-1.18 snapshots.
const ROCKSDB: &str = "this snapshot holds RocksDB storage (Qdrant before 1.18), which cannot be read offline. Export it live with --qdrant-url, or upgrade Qdrant to 1.18 or newer and take a new snapshot";

fn corrupt_tar(file: &Path, e: impl std::fmt::Display) -> Error {
    snap_err(
        file,
        format!("truncated or corrupt tar ({e}); copy the snapshot again and check its sha256"),
    )
}

/// Lists a snapshot tar by seeking past each entry's data, checks every entry path, and tells
/// its layout (a collection snapshot with its shard directories, or a shard snapshot).
pub(crate) fn inspect(file: &Path) -> Result<Layout> {
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let len = f.metadata().map_err(|e| Error::io(file, e))?.len();
    // A cut-off file shows as an entry whose data ends past the end of the file.
    let mut data_end = 0u64;
    let mut ar = tar::Archive::new(f);
    let entries = ar.entries_with_seek().map_err(|e| {
        snap_err(
            file,
            format!("not a tar archive ({e}); pass a file written by Qdrant's snapshot API"),
        )
    })?;
    let mut listing = Listing::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt_tar(file, e))?;
        data_end = data_end
            .max(entry.raw_file_position() + entry.header().entry_size().unwrap_or(u64::MAX));
        let p = checked_entry(file, &entry)?;
        listing.note(file, &p, &mut entry)?;
    }
    if data_end > len {
        return Err(corrupt_tar(
            file,
            format!("an entry runs to byte {data_end}, the file has {len}"),
        ));
    }
    listing.layout(file)
}

/// Reads a small JSON file of a snapshot (config, replica state), at most 1 MiB.
fn read_small_json(file: &Path, entry: &mut dyn Read, what: &str) -> Result<Value> {
    let mut text = Vec::new();
    entry
        .take(1 << 20)
        .read_to_end(&mut text)
        .map_err(|e| snap_err(file, format!("reading {what} failed: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| snap_err(file, format!("{what} is not JSON: {e}")))
}

/// Unpacks a tar into `dest`, refusing links and entries that would escape it.
/// Sparse entries (Qdrant's preallocated mmap files) stay sparse on disk.
fn unpack_safe(file: &Path, reader: &mut dyn Read, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let mut ar = tar::Archive::new(reader);
    for entry in ar
        .entries()
        .map_err(|e| snap_err(file, format!("not a tar archive ({e})")))?
    {
        let mut entry = entry.map_err(|e| corrupt_tar(file, e))?;
        let p = checked_entry(file, &entry)?;
        // A collection snapshot packs each segment as `<shard>/segments/<id>.tar`: unpack it
        // straight from the outer stream instead of writing the inner tar and reading it back.
        if let Some(seg_dir) = nested_segment_dir(&p)
            && entry.header().entry_type().is_file()
        {
            unpack_safe(file, &mut entry, &dest.join(seg_dir))?;
            continue;
        }
        let ok = entry
            .unpack_in(dest)
            .map_err(|e| snap_err(file, format!("unpacking '{}' failed: {e}", p.display())))?;
        if !ok {
            return Err(snap_err(
                file,
                format!(
                    "refusing tar entry '{}' outside the work directory",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// `<shard>/segments/<id>` for an entry `<shard>/segments/<id>.tar` of a collection snapshot.
fn nested_segment_dir(p: &Path) -> Option<PathBuf> {
    let mut c = p.components();
    let (
        Some(Component::Normal(shard)),
        Some(Component::Normal(segs)),
        Some(Component::Normal(tar)),
        None,
    ) = (c.next(), c.next(), c.next(), c.next())
    else {
        return None;
    };
    let id = tar.to_str()?.strip_suffix(".tar")?;
    (segs == "segments" && shard.to_str()?.parse::<u32>().is_ok() && !id.is_empty())
        .then(|| Path::new(shard).join("segments").join(id))
}

/// Turns a shard directory of a collection snapshot (segments unpacked from `segments/<id>.tar`,
/// holding `snapshot/files/...`) into the directory layout `EdgeShard::load` reads.
fn unpack_segments(file: &Path, shard_dir: &Path) -> Result<()> {
    let segs = shard_dir.join("segments");
    let Ok(rd) = std::fs::read_dir(&segs) else {
        return Ok(());
    };
    for e in rd {
        let p = e.map_err(|e| Error::io(&segs, e))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = if let Some(id) = name.strip_suffix(".tar") {
            // Not unpacked on the way in (e.g. an entry type other than a plain file).
            let dir = segs.join(id);
            let f = File::open(&p).map_err(|e| Error::io(&p, e))?;
            unpack_safe(file, &mut BufReader::new(f), &dir)?;
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            dir
        } else if p.is_dir() {
            p
        } else {
            continue;
        };
        let inner = dir.join("snapshot");
        if inner.is_dir() {
            for sub in ["db_backup", "payload_index_db_backup"] {
                if inner.join(sub).exists() {
                    return Err(snap_err(file, ROCKSDB));
                }
            }
            let files = inner.join("files");
            let from = if files.is_dir() { files } else { inner.clone() };
            for x in std::fs::read_dir(&from).map_err(|e| Error::io(&from, e))? {
                let x = x.map_err(|e| Error::io(&from, e))?;
                let to = dir.join(x.file_name());
                std::fs::rename(x.path(), &to).map_err(|e| Error::io(&to, e))?;
            }
            std::fs::remove_dir_all(&inner).map_err(|e| Error::io(&inner, e))?;
        }
    }
    Ok(())
}

/// Prefix of the unpack directories, followed by the owning process id.
const WORK_PREFIX: &str = "q2z-snap-";
/// How often a snapshot scroll gives its mapped file pages back (see `mapped_pages`).
const RELEASE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Removes unpack directories left in `scratch` by runs that were killed (their process is
/// gone); directories of live processes are left alone.
fn remove_stale_work_dirs(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(WORK_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            tracing::info!(dir = %e.path().display(), "removing snapshot data left by an interrupted run");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether a process with this id exists (Linux: `/proc/<pid>`; elsewhere assume it does).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// One snapshot file to read, with the shard id a shard snapshot's name carries.
#[derive(Debug, Clone)]
pub struct SnapshotInput {
    pub path: PathBuf,
    pub shard: Option<u32>,
}

impl SnapshotInput {
    /// A file, with the shard id its name says (`<collection>-shard-<id>-<date>.snapshot`).
    pub fn new(path: &Path) -> SnapshotInput {
        SnapshotInput {
            path: path.to_path_buf(),
            shard: parse_file_name(path).1,
        }
    }
}

/// Opens one snapshot file: validates it, unpacks it under `scratch` and loads every shard.
pub fn open_snapshot(
    file: &Path,
    name: Option<&str>,
    scratch: &Path,
) -> Result<SnapshotCollection> {
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| name_from_file(file));
    open_snapshots(
        &[SnapshotInput::new(file)],
        &name,
        scratch,
        ShardOptions::default(),
    )
}

/// Opens the snapshot files of one collection (one file, or the node and shard snapshots of a
/// cluster): plans which file each shard is read from (see [`crate::source::cluster`]),
/// unpacks only the files that hold a chosen shard, and loads the shards on all cores.
pub fn open_snapshots(
    inputs: &[SnapshotInput],
    name: &str,
    scratch: &Path,
    opts: ShardOptions,
) -> Result<SnapshotCollection> {
    let t0 = std::time::Instant::now();
    let layouts = inputs
        .iter()
        .map(|i| inspect(&i.path))
        .collect::<Result<Vec<_>>>()?;
    let inspected: Vec<Inspected> = inputs
        .iter()
        .zip(&layouts)
        .map(|(i, layout)| Inspected {
            path: &i.path,
            shard: i.shard,
            layout,
        })
        .collect();
    let mut plan = plan_shards(name, &inspected, opts)?;
    let shard_split = opts.part.and_then(|p| plan.keep_part(p));
    tracing::debug!(
        collection = name,
        secs = %format!("{:.2}", t0.elapsed().as_secs_f32()),
        "snapshots inspected"
    );
    // Every replica is loaded to compare point counts, unless the first file's is asked for.
    let to_load: BTreeMap<u32, Vec<usize>> = if opts.first_replica {
        plan.chosen.iter().map(|(id, f)| (*id, vec![*f])).collect()
    } else {
        plan.replicas.clone()
    };
    let used: BTreeSet<usize> = to_load.values().flatten().copied().collect();
    check_space(inputs, &used, scratch)?;
    remove_stale_work_dirs(scratch);
    let work = tempfile::Builder::new()
        .prefix(&format!("{WORK_PREFIX}{}-", std::process::id()))
        .tempdir_in(scratch)
        .map_err(|e| Error::io(scratch, e))?;
    let dirs = unpack_chosen(inputs, &layouts, &to_load, work.path())?;
    tracing::info!(
        collection = name,
        secs = %format!("{:.2}", t0.elapsed().as_secs_f32()),
        "snapshots unpacked"
    );
    let loaded = load_shards(inputs, &dirs)?;
    let mut notes = plan.notes;
    let (dirs, shards) = pick_replicas(inputs, dirs, loaded, &mut notes)?;
    tracing::info!(
        collection = name,
        shards = shards.len(),
        secs = %format!("{:.2}", t0.elapsed().as_secs_f32()),
        "snapshots loaded"
    );
    let config_json = layouts
        .iter()
        .find_map(|l| match l {
            Layout::Collection { config, .. } => Some(config.clone()),
            Layout::Shard => None,
        })
        .unwrap_or_else(|| edge_config_to_qdrant(&shards[0].config()));
    let mut config = parse_collection_config(name, &config_json)?;
    // The payload indexes, as a live server's `payload_schema` shows them.
    for s in &shards {
        let info = s
            .info()
            .map_err(|e| snap_err(&inputs[0].path, format!("shard info: {e}")))?;
        for (k, v) in info.payload_schema {
            let v = serde_json::to_value(v).unwrap_or(Value::Null);
            crate::source::config::add_payload_index(&mut config, &k.to_string(), &v);
        }
    }
    let keys: BTreeMap<u32, Value> = layouts
        .iter()
        .filter_map(|l| match l {
            Layout::Collection { shards, .. } => Some(shards),
            Layout::Shard => None,
        })
        .flatten()
        .filter_map(|(id, d)| d.shard_key.clone().map(|k| (*id, k)))
        .collect();
    let shard_keys = dirs.iter().map(|u| keys.get(&u.shard).cloned()).collect();
    let shard_origins = dirs
        .iter()
        .map(|u| format!("shard {} ← {}", u.shard, inputs[u.file].path.display()))
        .collect();
    Ok(SnapshotCollection {
        name: name.to_string(),
        config_json,
        config,
        shards,
        shard_origins,
        shard_split,
        shard_keys,
        notes,
        taken_at: None,
        file: inputs[0].path.clone(),
        work,
    })
}

/// A chosen shard's unpacked directory.
struct Unpacked {
    shard: u32,
    /// Index of the file it came from.
    file: usize,
    dir: PathBuf,
    /// From a collection snapshot (segments still to be laid out for `EdgeShard::load`).
    nested: bool,
}

/// Unpacks the files that hold a chosen shard, each once, into `work/f<i>`; shard directories
/// of replicas read from another file are removed at once.
fn unpack_chosen(
    inputs: &[SnapshotInput],
    layouts: &[Layout],
    chosen: &BTreeMap<u32, Vec<usize>>,
    work: &Path,
) -> Result<Vec<Unpacked>> {
    let used: BTreeSet<usize> = chosen.values().flatten().copied().collect();
    let mut dirs = Vec::new();
    for &i in &used {
        let file = &inputs[i].path;
        let ids: Vec<u32> = chosen
            .iter()
            .filter(|(_, f)| f.contains(&i))
            .map(|(id, _)| *id)
            .collect();
        let base = work.join(format!("f{i}"));
        match &layouts[i] {
            Layout::Collection { shards, .. } => {
                let f = File::open(file).map_err(|e| Error::io(file, e))?;
                unpack_safe(file, &mut BufReader::new(f), &base)?;
                for id in shards.keys().filter(|id| !ids.contains(id)) {
                    let _ = std::fs::remove_dir_all(base.join(id.to_string()));
                }
                dirs.extend(ids.iter().map(|id| Unpacked {
                    shard: *id,
                    file: i,
                    dir: base.join(id.to_string()),
                    nested: true,
                }));
            }
            Layout::Shard => {
                let dir = base.join("shard");
                EdgeShard::unpack_snapshot(file, &dir)
                    .map_err(|e| snap_err(file, format!("qdrant-edge could not unpack it: {e}")))?;
                dirs.extend(ids.first().map(|id| Unpacked {
                    shard: *id,
                    file: i,
                    dir,
                    nested: false,
                }));
            }
        }
    }
    Ok(dirs)
}

/// Keeps one loaded replica per shard: the one with the most points (ties: the first file
/// given), naming replicas whose counts differ. Returns the kept shards in shard order.
fn pick_replicas(
    inputs: &[SnapshotInput],
    dirs: Vec<Unpacked>,
    loaded: Vec<EdgeShard>,
    notes: &mut Vec<String>,
) -> Result<(Vec<Unpacked>, Vec<EdgeShard>)> {
    let mut replicas: BTreeMap<u32, usize> = BTreeMap::new();
    for u in &dirs {
        *replicas.entry(u.shard).or_default() += 1;
    }
    let mut by_shard: BTreeMap<u32, Vec<(Unpacked, EdgeShard, u64)>> = BTreeMap::new();
    for (u, s) in dirs.into_iter().zip(loaded) {
        let file = &inputs[u.file].path;
        // Only replicas are compared by their counts (a count reads every id once).
        let n = if replicas[&u.shard] > 1 {
            count_shard(&s).map_err(|e| snap_err(file, format!("count failed: {e}")))?
        } else {
            0
        };
        by_shard.entry(u.shard).or_default().push((u, s, n));
    }
    let (mut kept_dirs, mut kept) = (Vec::new(), Vec::new());
    for (id, mut reps) in by_shard {
        // Files were given in order; a stable sort keeps the first among equals.
        reps.sort_by_key(|r| (std::cmp::Reverse(r.2), r.0.file));
        if reps.len() > 1 {
            let counts: Vec<String> = reps
                .iter()
                .map(|(u, _, n)| format!("{n} points in {}", inputs[u.file].path.display()))
                .collect();
            if reps.iter().all(|r| r.2 == reps[0].2) {
                notes.push(format!(
                    "shard {id}: its replicas agree ({}); read from {}",
                    counts.join(", "),
                    inputs[reps[0].0.file].path.display()
                ));
            } else {
                notes.push(format!(
                    "shard {id}: its replicas differ ({}); read the one with the most points, from {} (--replicas first reads the first file given instead)",
                    counts.join(", "),
                    inputs[reps[0].0.file].path.display()
                ));
            }
        }
        let (u, s, _) = reps.swap_remove(0);
        kept_dirs.push(u);
        kept.push(s);
    }
    Ok((kept_dirs, kept))
}

/// Loads the unpacked shards on all cores (shards are independent).
fn load_shards(inputs: &[SnapshotInput], dirs: &[Unpacked]) -> Result<Vec<EdgeShard>> {
    use rayon::prelude::*;
    dirs.par_iter()
        .map(|u| {
            let file = &inputs[u.file].path;
            if u.nested {
                unpack_segments(file, &u.dir)?;
            }
            make_segments_cold(&u.dir)?;
            EdgeShard::load(&u.dir, None)
                .map_err(|e| snap_err(file, format!("qdrant-edge could not load it: {e}")))
        })
        .collect()
}

/// Ids per page of [`count_shard`].
const COUNT_PAGE: usize = 10_000;

/// Exact point count of one shard, read as pages of ids in id order.
///
/// qdrant-edge's exact count gathers every id of the shard into one set (so that a point found
/// in two segments counts once): ~47 bytes per point at once, 470 MB for a 10M-point shard,
/// which was the peak of a whole snapshot export. Pages count the same points in flat memory.
fn count_shard(shard: &EdgeShard) -> qdrant_edge::OperationResult<u64> {
    count_shard_in_pages(shard, COUNT_PAGE)
}

/// [`count_shard`] with pages of `page` ids.
fn count_shard_in_pages(shard: &EdgeShard, page: usize) -> qdrant_edge::OperationResult<u64> {
    let mut n = 0u64;
    let mut offset: Option<EdgeId> = None;
    loop {
        let mut req = ScrollRequestBuilder::new()
            .limit(page + 1)
            .with_payload(WithPayloadInterface::Bool(false))
            .with_vector(WithVector::Bool(false));
        if let Some(o) = offset.take() {
            req = req.offset(o);
        }
        let (records, _) = shard.scroll(req.build())?;
        match records.get(page) {
            Some(next) => {
                n += page as u64;
                offset = Some(next.id);
            }
            None => return Ok(n + records.len() as u64),
        }
    }
}

/// Unpacked data takes about the snapshots' size (sparse files stay sparse); keep a margin.
fn check_space(inputs: &[SnapshotInput], used: &BTreeSet<usize>, scratch: &Path) -> Result<()> {
    std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let mut size = 0u64;
    for &i in used {
        let f = &inputs[i].path;
        size += std::fs::metadata(f).map_err(|e| Error::io(f, e))?.len();
    }
    let needed = size + size / 5 + (64 << 20);
    if let Ok(free) = fs4::available_space(scratch)
        && free < needed
    {
        return Err(snap_err(
            &inputs[0].path,
            format!(
                "unpacking needs about {} MB free in {}, which has {} MB; free some space or point --scratch at a larger disk",
                needed >> 20,
                scratch.display(),
                free >> 20
            ),
        ));
    }
    Ok(())
}

/// Renders a qdrant-edge shard config in the shape of Qdrant's collection `config` object.
pub fn edge_config_to_qdrant(cfg: &EdgeConfig) -> Value {
    let mut vectors = Map::new();
    for (name, p) in &cfg.vectors {
        let mut v = Map::new();
        v.insert("size".into(), json!(p.size));
        v.insert(
            "distance".into(),
            serde_json::to_value(p.distance).unwrap_or(Value::Null),
        );
        if let Some(dt) = p.datatype {
            v.insert(
                "datatype".into(),
                serde_json::to_value(dt).unwrap_or(Value::Null),
            );
        }
        if let Some(mv) = &p.multivector_config {
            v.insert(
                "multivector_config".into(),
                serde_json::to_value(mv).unwrap_or(Value::Null),
            );
        }
        if let Some(h) = &p.hnsw_config {
            v.insert(
                "hnsw_config".into(),
                serde_json::to_value(h).unwrap_or(Value::Null),
            );
        }
        vectors.insert(name.to_string(), Value::Object(v));
    }
    let vectors = if vectors.len() == 1 && vectors.contains_key(UNNAMED_VECTOR) {
        vectors.remove(UNNAMED_VECTOR).unwrap_or(Value::Null)
    } else {
        Value::Object(vectors)
    };
    let mut sparse = Map::new();
    for (name, p) in &cfg.sparse_vectors {
        let mut v = Map::new();
        if let Some(m) = p.modifier {
            v.insert(
                "modifier".into(),
                serde_json::to_value(m).unwrap_or(Value::Null),
            );
        }
        sparse.insert(name.to_string(), Value::Object(v));
    }
    let mut params = Map::new();
    params.insert("vectors".into(), vectors);
    params.insert("shard_number".into(), json!(1));
    params.insert("replication_factor".into(), json!(1));
    params.insert("write_consistency_factor".into(), json!(1));
    params.insert("on_disk_payload".into(), json!(cfg.on_disk_payload()));
    if !sparse.is_empty() {
        params.insert("sparse_vectors".into(), Value::Object(sparse));
    }
    let hnsw = serde_json::to_value(cfg.hnsw_config()).unwrap_or(Value::Null);
    json!({ "params": Value::Object(params), "hnsw_config": hnsw })
}

/// Converts a qdrant-edge id.
pub fn from_edge_id(id: &EdgeId) -> PointId {
    match id {
        EdgeId::NumId(n) => PointId::Num(*n),
        EdgeId::Uuid(u) => PointId::Uuid(u.hyphenated().to_string()),
    }
}

/// Converts an id to qdrant-edge's type.
pub fn to_edge_id(id: &PointId) -> Result<EdgeId> {
    match id {
        PointId::Num(n) => Ok(EdgeId::NumId(*n)),
        PointId::Uuid(s) => uuid::Uuid::parse_str(s).map(EdgeId::Uuid).map_err(|_| {
            Error::Other(format!(
                "'{s}' is not a UUID, so it cannot be a scroll position; the stage's manifest is damaged: export again with --restart"
            ))
        }),
    }
}

fn convert_vector(v: VectorInternal) -> VectorValue {
    match v {
        VectorInternal::Dense(d) => VectorValue::Dense(d),
        VectorInternal::Sparse(s) => VectorValue::Sparse {
            indices: s.indices,
            values: s.values,
        },
        VectorInternal::MultiDense(m) => VectorValue::Multi(m.into_multi_vectors()),
    }
}

/// Converts a qdrant-edge record into a [`Point`].
pub fn record_to_point(r: Record) -> Point {
    let mut vectors = BTreeMap::new();
    match r.vector {
        None => {}
        Some(VectorStructInternal::Single(d)) => {
            vectors.insert(UNNAMED_VECTOR.to_string(), VectorValue::Dense(d));
        }
        Some(VectorStructInternal::MultiDense(m)) => {
            vectors.insert(
                UNNAMED_VECTOR.to_string(),
                VectorValue::Multi(m.into_multi_vectors()),
            );
        }
        Some(VectorStructInternal::Named(map)) => {
            for (k, v) in map {
                vectors.insert(k.to_string(), convert_vector(v));
            }
        }
    }
    Point {
        id: from_edge_id(&r.id),
        vectors,
        payload: r.payload.map(|p| p.0).unwrap_or_default(),
        shard_key: None,
    }
}

impl SnapshotCollection {
    /// Wraps shards that are already loaded (e.g. built by a test-fixture generator).
    pub fn from_shards(
        name: &str,
        config_json: Value,
        shards: Vec<EdgeShard>,
        work: tempfile::TempDir,
    ) -> Result<SnapshotCollection> {
        let config = parse_collection_config(name, &config_json)?;
        Ok(SnapshotCollection {
            name: name.to_string(),
            config_json,
            config,
            shards,
            shard_origins: Vec::new(),
            shard_split: None,
            shard_keys: Vec::new(),
            notes: Vec::new(),
            taken_at: None,
            file: work.path().to_path_buf(),
            work,
        })
    }

    /// The `k` nearest points to a dense `vector` of field `using` (`""`: the unnamed one),
    /// best first, with Qdrant's scores (Cosine/Dot: similarity, larger is nearer;
    /// Euclid/Manhattan: distance, smaller is nearer). `exact`: brute force, no index;
    /// `filter`: a Qdrant filter (REST JSON).
    pub fn search(
        &self,
        using: &str,
        vector: crate::model::QueryVector,
        k: usize,
        exact: bool,
        filter: Option<&Value>,
    ) -> Result<Vec<(PointId, f32)>> {
        use qdrant_edge::{
            Filter, NamedQuery, QueryEnum, QueryRequestBuilder, ScoringQuery, SearchParams,
        };
        let filter: Option<Filter> = filter
            .map(|f| serde_json::from_value(f.clone()))
            .transpose()
            .map_err(|e| snap_err(&self.file, format!("bad search filter: {e}")))?;
        let (query, smaller_is_nearer) = match vector {
            crate::model::QueryVector::Dense(v) => {
                let Some(params) = self.config.dense.get(using) else {
                    return Err(snap_err(
                        &self.file,
                        format!("collection {} has no dense vector '{using}'", self.name),
                    ));
                };
                (
                    VectorInternal::Dense(v),
                    matches!(params.distance, Distance::Euclid | Distance::Manhattan),
                )
            }
            crate::model::QueryVector::Sparse { indices, values } => {
                if !self.config.sparse.contains_key(using) {
                    return Err(snap_err(
                        &self.file,
                        format!("collection {} has no sparse vector '{using}'", self.name),
                    ));
                }
                let s = qdrant_edge::SparseVector::new(indices, values)
                    .map_err(|e| snap_err(&self.file, format!("bad sparse query: {e}")))?;
                (VectorInternal::Sparse(s), false)
            }
        };
        let query = ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query,
            using: (!using.is_empty()).then(|| using.to_string()),
        }));
        let mut all: Vec<(PointId, f32)> = Vec::new();
        for s in &self.shards {
            let mut req = QueryRequestBuilder::new(k).query(query.clone());
            if let Some(f) = &filter {
                req = req.filter(f.clone());
            }
            let req = req
                .params(SearchParams {
                    exact,
                    ..Default::default()
                })
                .with_payload(WithPayloadInterface::Bool(false))
                .with_vector(WithVector::Bool(false))
                .build();
            let found = s
                .query(req)
                .map_err(|e| snap_err(&self.file, format!("search failed: {e}")))?;
            all.extend(found.into_iter().map(|p| (from_edge_id(&p.id), p.score)));
        }
        all.sort_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if smaller_is_nearer { o } else { o.reverse() }.then_with(|| a.0.cmp(&b.0))
        });
        all.truncate(k);
        Ok(all)
    }

    /// About how many points there are: qdrant-edge's estimate (no id set; a point found in two
    /// segments may count twice).
    pub fn count_estimate(&self) -> Result<u64> {
        let mut total = 0u64;
        for s in &self.shards {
            total += s
                .count(qdrant_edge::CountRequestBuilder::new().exact(false).build())
                .map_err(|e| snap_err(&self.file, format!("count failed: {e}")))?
                as u64;
        }
        Ok(total)
    }

    /// Exact number of points over all shards (see [`count_shard`]).
    pub fn count(&self) -> Result<u64> {
        use rayon::prelude::*;
        let counts = self
            .shards
            .par_iter()
            .map(|s| count_shard(s).map_err(|e| snap_err(&self.file, format!("count failed: {e}"))))
            .collect::<Result<Vec<u64>>>()?;
        Ok(counts.into_iter().sum())
    }

    /// One page in Qdrant's id order from `offset` (inclusive), merged over shards.
    pub fn scroll(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        self.scroll_where(offset, limit, with_data, None)
    }

    /// [`Self::scroll`] of the points that match `filter` (a Qdrant filter, REST JSON).
    pub fn scroll_where(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
        filter: Option<&Value>,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        let filter: Option<qdrant_edge::Filter> = filter
            .map(|f| serde_json::from_value(f.clone()))
            .transpose()
            .map_err(|e| snap_err(&self.file, format!("bad scroll filter: {e}")))?;
        // Shards are read in parallel, then merged in Qdrant's id order. Each shard gives only
        // its share of the page (limit / shards, plus one): the page then ends before the
        // smallest last id of the shards that filled their share, below which every shard's
        // points are all known. Reading `limit` from every shard would read each point
        // `shards` times.
        let n = self.shards.len().max(1);
        let share = if n > 1 {
            limit.div_ceil(n) + 1
        } else {
            limit + 1
        };
        let per_shard = |(i, s): (usize, &EdgeShard)| -> Result<Vec<Point>> {
            let mut req = ScrollRequestBuilder::new()
                .limit(share)
                .with_payload(WithPayloadInterface::Bool(with_data))
                .with_vector(WithVector::Bool(with_data));
            if let Some(o) = offset {
                req = req.offset(to_edge_id(o)?);
            }
            if let Some(f) = &filter {
                req = req.filter(f.clone());
            }
            let (records, _) = s
                .scroll(req.build())
                .map_err(|e| snap_err(&self.file, format!("scroll failed: {e}")))?;
            let key = self.shard_keys.get(i).cloned().flatten();
            let points = records
                .into_iter()
                .map(|r| Point {
                    shard_key: key.clone(),
                    ..record_to_point(r)
                })
                .collect();
            // Id-only pages too: disk-resident id mappings are read through the same maps.
            release_under(self.work.path(), RELEASE_EVERY);
            Ok(points)
        };
        let mut all: Vec<Point> = if n > 1 {
            use rayon::prelude::*;
            let parts = self
                .shards
                .par_iter()
                .enumerate()
                .map(per_shard)
                .collect::<Result<Vec<_>>>()?;
            let cutoff = parts
                .iter()
                .filter(|p| p.len() == share)
                .filter_map(|p| p.last().map(|x| x.id.clone()))
                .min();
            let mut all: Vec<Point> = parts.into_iter().flatten().collect();
            if let Some(c) = cutoff {
                all.retain(|p| p.id < c);
                all.sort_by(|a, b| a.id.cmp(&b.id));
                if all.len() <= limit {
                    return Ok((all, Some(c)));
                }
            }
            all
        } else {
            self.shards
                .iter()
                .enumerate()
                .map(per_shard)
                .next()
                .transpose()?
                .unwrap_or_default()
        };
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let next = if all.len() > limit {
            Some(all[limit].id.clone())
        } else {
            None
        };
        all.truncate(limit);
        Ok((all, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_edge::{
        CountRequestBuilder, EdgeConfigBuilder, EdgeVectorParams, PointInsertOperations,
        PointOperations, PointStructPersisted, UpdateOperation,
    };

    #[test]
    fn paged_count_equals_the_exact_count_at_every_page_size() {
        let dir = tempfile::tempdir().unwrap();
        let params: EdgeVectorParams =
            serde_json::from_value(json!({"size": 2, "distance": "Dot"})).unwrap();
        let shard = EdgeShard::new(
            dir.path(),
            EdgeConfigBuilder::new().vector("", params).build(),
        )
        .unwrap();
        let points: Vec<PointStructPersisted> = (1..=25u64)
            .map(|i| serde_json::from_value(json!({"id": i, "vector": [1.0, 0.5]})).unwrap())
            .collect();
        let upsert = PointOperations::UpsertPoints(PointInsertOperations::PointsList(points));
        shard
            .update(UpdateOperation::PointOperation(upsert))
            .unwrap();
        let ids = [3u64, 10, 25]
            .iter()
            .map(|i| serde_json::from_value(json!(i)).unwrap())
            .collect();
        shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints { ids },
            ))
            .unwrap();
        let exact = shard
            .count(CountRequestBuilder::new().exact(true).build())
            .unwrap() as u64;
        assert_eq!(exact, 22);
        for page in [1, 5, 11, 21, 22, 23, 10_000] {
            assert_eq!(
                count_shard_in_pages(&shard, page).unwrap(),
                exact,
                "pages of {page}"
            );
        }
    }
}
