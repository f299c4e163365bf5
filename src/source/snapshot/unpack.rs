//! Reading a snapshot tar safely: every entry path checked before anything is written (no
//! absolute paths, no `..`, no links), the layout told apart (collection or shard snapshot,
//! pre-1.18 RocksDB storage refused), and the entries unpacked into the scratch directory.

use super::*;

/// Checks one tar entry path: relative, no `..`, no root.
pub(super) fn safe_entry_path(file: &Path, p: &Path) -> Result<PathBuf> {
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
pub(super) fn checked_entry<R: Read>(file: &Path, entry: &tar::Entry<R>) -> Result<PathBuf> {
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
pub(super) struct Listing {
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
pub(super) fn shard_keys_of(mapping: Option<&Value>) -> Vec<(u32, Value)> {
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
pub(super) const ROCKSDB: &str = "this snapshot holds RocksDB storage (Qdrant before 1.18), which cannot be read offline. Export it live with --qdrant-url, or upgrade Qdrant to 1.18 or newer and take a new snapshot";

pub(super) fn corrupt_tar(file: &Path, e: impl std::fmt::Display) -> Error {
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
pub(super) fn read_small_json(file: &Path, entry: &mut dyn Read, what: &str) -> Result<Value> {
    let mut text = Vec::new();
    entry
        .take(1 << 20)
        .read_to_end(&mut text)
        .map_err(|e| snap_err(file, format!("reading {what} failed: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| snap_err(file, format!("{what} is not JSON: {e}")))
}

/// How much of a snapshot is read, and written out, at a time: 1 MiB (a snapshot is mostly a
/// few large files; tar's own unpacking copies 8 KiB at a time, a read and a write call each,
/// which made unpacking bound by system calls).
pub(super) const COPY_BYTES: usize = 1 << 20;

/// A snapshot file opened for unpacking (read through a [`COPY_BYTES`] buffer).
pub(super) fn open_tar(file: &Path) -> Result<BufReader<File>> {
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    Ok(BufReader::with_capacity(COPY_BYTES, f))
}

/// Writes a regular tar entry's bytes to `to` (its directories created), [`COPY_BYTES`] at a
/// time (`io::copy` reads straight into the `BufWriter`'s buffer).
fn copy_out(entry: &mut dyn Read, to: &Path) -> std::io::Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut out = std::io::BufWriter::with_capacity(COPY_BYTES, File::create(to)?);
    std::io::copy(entry, &mut out)?;
    std::io::Write::flush(&mut out)
}

/// Unpacks a tar into `dest`, refusing links and entries that would escape it.
/// Sparse entries (Qdrant's preallocated mmap files) stay sparse on disk.
pub(super) fn unpack_safe(file: &Path, reader: &mut dyn Read, dest: &Path) -> Result<()> {
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
        if entry.header().entry_type() == tar::EntryType::Regular {
            let to = dest.join(&p);
            copy_out(&mut entry, &to)
                .map_err(|e| snap_err(file, format!("unpacking '{}' failed: {e}", p.display())))?;
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
pub(super) fn nested_segment_dir(p: &Path) -> Option<PathBuf> {
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
pub(super) fn unpack_segments(file: &Path, shard_dir: &Path) -> Result<()> {
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
            unpack_safe(file, &mut open_tar(&p)?, &dir)?;
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
