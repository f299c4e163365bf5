//! Opening the snapshot files of one collection: which file each shard is read from (and, with
//! several replicas, which replica is kept), unpacked only where needed, loaded on all cores.

use super::*;

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
    // Killed runs' leftovers go before the space is counted.
    crate::scratch::remove_stale(scratch);
    check_space(inputs, &used, scratch)?;
    let work = crate::scratch::work_dir(scratch, crate::scratch::SNAPSHOT_UNPACK)?;
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
    let (config_json, config) = collection_config(name, inputs, &layouts, &shards)?;
    let shard_keys = shard_keys(&layouts, &dirs);
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

/// The collection's config (the snapshot's own, or rebuilt from a shard's) with the payload
/// indexes of every shard, as a live server's `payload_schema` shows them.
fn collection_config(
    name: &str,
    inputs: &[SnapshotInput],
    layouts: &[Layout],
    shards: &[EdgeShard],
) -> Result<(Value, CollectionConfig)> {
    let config_json = layouts
        .iter()
        .find_map(|l| match l {
            Layout::Collection { config, .. } => Some(config.clone()),
            Layout::Shard => None,
        })
        .unwrap_or_else(|| edge_config_to_qdrant(&shards[0].config()));
    let mut config = parse_collection_config(name, &config_json)?;
    for s in shards {
        let info = s
            .info()
            .map_err(|e| snap_err(&inputs[0].path, format!("shard info: {e}")))?;
        for (k, v) in info.payload_schema {
            let v = serde_json::to_value(v).unwrap_or(Value::Null);
            crate::source::config::add_payload_index(&mut config, &k.to_string(), &v);
        }
    }
    Ok((config_json, config))
}

/// The shard key of each unpacked shard (custom sharding), from the collection snapshots'
/// shard directories.
fn shard_keys(layouts: &[Layout], dirs: &[Unpacked]) -> Vec<Option<Value>> {
    let keys: BTreeMap<u32, Value> = layouts
        .iter()
        .filter_map(|l| match l {
            Layout::Collection { shards, .. } => Some(shards),
            Layout::Shard => None,
        })
        .flatten()
        .filter_map(|(id, d)| d.shard_key.clone().map(|k| (*id, k)))
        .collect();
    dirs.iter().map(|u| keys.get(&u.shard).cloned()).collect()
}

/// A chosen shard's unpacked directory.
pub(super) struct Unpacked {
    shard: u32,
    /// Index of the file it came from.
    file: usize,
    dir: PathBuf,
    /// From a collection snapshot (segments still to be laid out for `EdgeShard::load`).
    nested: bool,
}

/// Unpacks the files that hold a chosen shard, each once, into `work/f<i>`; shard directories
/// of replicas read from another file are removed at once.
pub(super) fn unpack_chosen(
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
                unpack_safe(file, &mut open_tar(file)?, &base)?;
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
pub(super) fn pick_replicas(
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
pub(super) fn load_shards(inputs: &[SnapshotInput], dirs: &[Unpacked]) -> Result<Vec<EdgeShard>> {
    use rayon::prelude::*;
    dirs.par_iter()
        .map(|u| {
            let file = &inputs[u.file].path;
            if u.nested {
                unpack_segments(file, &u.dir)?;
            }
            make_segments_cold(&u.dir)?;
            // The switch keeps the mappings in RAM, for benchmarks comparing the two.
            if std::env::var_os("Q2Z_ID_MAPPINGS_IN_RAM").is_none() {
                id_mappings::move_shard_to_disk(&u.dir)?;
            }
            EdgeShard::load(&u.dir, None)
                .map_err(|e| snap_err(file, format!("qdrant-edge could not load it: {e}")))
        })
        .collect()
}

/// Unpacked data takes about the snapshots' size (sparse files stay sparse); keep a margin.
pub(super) fn check_space(
    inputs: &[SnapshotInput],
    used: &BTreeSet<usize>,
    scratch: &Path,
) -> Result<()> {
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
