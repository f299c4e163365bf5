//! Keeps the memory of an offline snapshot export flat whatever the collection's size.
//!
//! qdrant-edge reads segment files through memory maps. Every page a scroll touches stays mapped
//! into the process (and counts in its RSS) until the kernel needs it back, so a full read of a
//! 10 GB segment would show a 10 GB RSS. Two things keep it bounded:
//! - [`make_segments_cold`] rewrites each unpacked segment's `segment.json` (our scratch copy,
//!   never the user's file) to the on-disk variants of the same file formats, so loading does not
//!   pre-read whole files into RAM;
//! - [`release_under`] drops the page-table entries of shared file mappings under the scratch
//!   directory (`madvise(MADV_DONTNEED)`). The data stays in the page cache and in the files; a
//!   later read faults it back in. Private mappings are never touched.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rewrites the `segment.json` of every segment under `shard_dir` so that vectors, payloads and
/// HNSW graphs are opened from their files instead of being read into RAM at load time.
/// Returns how many segment configs were changed.
pub fn make_segments_cold(shard_dir: &Path) -> Result<usize> {
    let segs = shard_dir.join("segments");
    let Ok(entries) = std::fs::read_dir(&segs) else {
        return Ok(0);
    };
    let mut changed = 0;
    for e in entries.flatten() {
        let path = e.path().join("segment.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut v: Value = serde_json::from_str(&text)
            .map_err(|err| Error::Other(format!("{}: not JSON: {err}", path.display())))?;
        if make_config_cold(&mut v) {
            let out = serde_json::to_vec(&v).map_err(|err| Error::Other(err.to_string()))?;
            std::fs::write(&path, out).map_err(|err| Error::io(&path, err))?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// The in-RAM storage types and their on-disk twins (same files, no pre-read).
const COLD: [(&str, &str); 2] = [("InRamChunkedMmap", "ChunkedMmap"), ("InRamMmap", "Mmap")];

/// Switches one segment config (`{"config": {...}}`) to on-disk storage; true if anything changed.
fn make_config_cold(v: &mut Value) -> bool {
    let mut changed = false;
    let Some(cfg) = v.get_mut("config") else {
        return false;
    };
    if let Some(vd) = cfg.get_mut("vector_data").and_then(Value::as_object_mut) {
        for data in vd.values_mut() {
            if let Some(st) = data.get_mut("storage_type")
                && let Some((_, cold)) = COLD.iter().find(|(hot, _)| st == hot)
            {
                *st = Value::from(*cold);
                changed = true;
            }
            if let Some(opts) = data
                .get_mut("index")
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("hnsw"))
                .and_then(|i| i.get_mut("options"))
                .and_then(Value::as_object_mut)
            {
                if opts.get("on_disk") != Some(&Value::Bool(true)) {
                    opts.insert("on_disk".into(), Value::Bool(true));
                    changed = true;
                }
                if opts.contains_key("memory") && opts["memory"] != "cold" {
                    opts.insert("memory".into(), Value::from("cold"));
                    changed = true;
                }
            }
        }
    }
    if let Some(t) = cfg
        .get_mut("payload_storage_type")
        .and_then(|p| p.get_mut("type"))
        .filter(|t| *t == "in_ram_mmap")
    {
        *t = Value::from("mmap");
        changed = true;
    }
    // Disk-resident id mappings (see snapshot/id_mappings.rs) read lazily, not pre-read: the
    // segment config's `id_tracker_memory` (qdrant-edge 0.9's SegmentConfig; other id tracker
    // formats hold their mappings in RAM whatever it says).
    if let Some(o) = cfg.as_object_mut()
        && o.get("id_tracker_memory").and_then(Value::as_str) != Some("cold")
    {
        o.insert("id_tracker_memory".into(), Value::from("cold"));
        changed = true;
    }
    changed
}

/// Drops the resident pages of every shared file mapping whose file lies under `dir`, at most
/// once per `every` (concurrent callers skip). Best effort: any failure leaves memory as it was.
pub fn release_under(dir: &Path, every: Duration) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let Ok(mut last) = LAST.try_lock() else {
        return;
    };
    if last.is_some_and(|t| t.elapsed() < every) {
        return;
    }
    *last = Some(Instant::now());
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(prefix) = dir.to_str() else {
        return;
    };
    for (start, end) in shared_mappings_under(&maps, prefix) {
        // SAFETY: the range is a whole shared file mapping of this process (from
        // /proc/self/maps). MADV_DONTNEED on a shared file mapping only unmaps its pages: the
        // contents live on in the page cache and the file (dirty pages are written back as
        // usual), and the next access maps them again. Nothing that holds a pointer into the
        // mapping can observe a difference.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// `(start, end)` of the shared (`s` in the permissions) mappings of files under `prefix`.
fn shared_mappings_under(maps: &str, prefix: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let path = f.nth(3)?;
            if !perms.ends_with('s') || !path.starts_with(prefix) {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_ram_storage_becomes_on_disk() {
        let mut v: Value = serde_json::json!({"version": 1, "config": {
            "vector_data": {
                "": {"size": 8, "storage_type": "InRamChunkedMmap", "index": {"type": "plain", "options": {}}},
                "b": {"size": 8, "storage_type": "InRamMmap",
                      "index": {"type": "hnsw", "options": {"m": 16, "on_disk": false, "memory": "cached"}}},
                "c": {"size": 8, "storage_type": "Mmap", "index": {"type": "plain", "options": {}}}
            },
            "sparse_vector_data": {"s": {"storage_type": "mmap"}},
            "payload_storage_type": {"type": "in_ram_mmap"}
        }});
        assert!(make_config_cold(&mut v));
        let c = &v["config"];
        assert_eq!(c["vector_data"][""]["storage_type"], "ChunkedMmap");
        assert_eq!(c["vector_data"]["b"]["storage_type"], "Mmap");
        assert_eq!(c["vector_data"]["b"]["index"]["options"]["on_disk"], true);
        assert_eq!(c["vector_data"]["b"]["index"]["options"]["memory"], "cold");
        assert_eq!(c["vector_data"]["b"]["index"]["options"]["m"], 16);
        assert_eq!(c["vector_data"]["c"]["storage_type"], "Mmap");
        assert_eq!(c["payload_storage_type"]["type"], "mmap");
        assert_eq!(c["sparse_vector_data"]["s"]["storage_type"], "mmap");
        assert_eq!(c["id_tracker_memory"], "cold");
        // Already cold: nothing to rewrite.
        assert!(!make_config_cold(&mut v));
    }

    #[test]
    fn only_shared_mappings_under_the_directory() {
        let maps = "\
7f0000000000-7f0000001000 r--s 00000000 fd:01 12 /scratch/q2z-snap-1-x/raw/0/segments/a/vector_storage/vectors/chunk_0.mmap
7f0000002000-7f0000004000 rw-s 00000000 fd:01 13 /scratch/q2z-snap-1-x/raw/0/segments/a/payload_storage/page_0.dat
7f0000005000-7f0000006000 r--p 00000000 fd:01 14 /scratch/q2z-snap-1-x/raw/0/segments/a/private.dat
7f0000007000-7f0000008000 r--s 00000000 fd:01 15 /elsewhere/file.dat
7f0000009000-7f000000a000 rw-p 00000000 00:00 0
";
        assert_eq!(
            shared_mappings_under(maps, "/scratch/q2z-snap-1-x"),
            vec![
                (0x7f0000000000, 0x7f0000001000),
                (0x7f0000002000, 0x7f0000004000)
            ]
        );
    }

    #[test]
    fn released_pages_read_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is private to this test and not modified while mapped.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                data.len(),
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        // SAFETY: the mapping is data.len() bytes long and stays mapped until munmap below.
        let view = unsafe { std::slice::from_raw_parts(map as *const u8, data.len()) };
        assert_eq!(view, &data[..]);
        assert_eq!(resident_kb(map as usize), Some(1024), "all pages read in");
        release_under(dir.path(), Duration::ZERO);
        assert_eq!(resident_kb(map as usize), Some(0), "pages released");
        assert_eq!(view, &data[..]);
        // SAFETY: unmapping the mapping made above; `view` is not used afterwards.
        unsafe { libc::munmap(map, data.len()) };
    }

    /// The `Rss:` of the mapping starting at `start`, from /proc/self/smaps.
    fn resident_kb(start: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let head = format!("{start:x}-");
        let block = smaps.split_once(&head)?.1;
        let line = block.lines().find(|l| l.starts_with("Rss:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}
