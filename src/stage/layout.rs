//! The names inside a stage directory: every path q2z reads or deletes there is one of these,
//! checked, so a tampered manifest or a hostile collection name cannot reach outside.

use std::path::{Component, Path};

/// File name of the manifest.
pub const MANIFEST: &str = "manifest.json";
/// File name of the import ledger.
pub const IMPORT_STATE: &str = "import-state.json";
/// Default scratch directory for unpacking snapshots, inside the stage.
pub const SCRATCH: &str = ".scratch";

/// Whether `name` can be a directory name inside the stage: one plain path component, not
/// hidden, no separators or control characters, at most 255 bytes.
pub fn is_safe_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control() || c == ':')
        && matches!(
            Path::new(name).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(_)]
        )
}

/// Relative path of a chunk file.
pub fn chunk_file(collection: &str, range: usize, seq: u32) -> String {
    format!("{collection}/part-{range:04}-{seq:06}.parquet")
}

/// Relative path of a set-aside file.
pub fn set_aside_file(collection: &str, range: usize, n: usize) -> String {
    format!("{collection}/set-aside-{range:04}-{n:06}.jsonl")
}

/// Relative path of the digests (id → row digest) of one range as sync pass `pass` left the
/// target; `sync-state.json` names the current one of each range.
pub fn sync_digests_file(collection: &str, pass: u64, range: usize) -> String {
    format!("{collection}/sync-{pass:04}-{range:04}.digests")
}

/// Relative path of the rows sync pass `pass` sent for one range (upserted or bulk-imported):
/// kept, so the stage records every row q2z put into the target.
pub fn sync_delta_file(collection: &str, pass: u64, range: usize) -> String {
    format!("{collection}/sync-{pass:04}-{range:04}.parquet")
}

/// Relative path of the ids sync pass `pass` deleted from one range (one id key a line).
pub fn sync_tombstones_file(collection: &str, pass: u64, range: usize) -> String {
    format!("{collection}/sync-{pass:04}-{range:04}.tombstones")
}

/// Relative path of the points sync pass `pass` set aside in one range (Qdrant JSON lines,
/// as the export's set-aside files).
pub fn sync_set_aside_file(collection: &str, pass: u64, range: usize) -> String {
    format!("{collection}/sync-{pass:04}-{range:04}.set-aside.jsonl")
}

/// Relative path of the file `verify --repair` re-sends a range of a synced collection with.
pub fn sync_repair_file(collection: &str, repair: u64, range: usize) -> String {
    format!("{collection}/sync-repair-{repair:04}-{range:04}.parquet")
}

/// File name of the sync ledger.
pub const SYNC_STATE: &str = "sync-state.json";

/// Whether a file of a collection directory is sync state (kept when an export resumes).
pub fn is_sync_file(name: &str) -> bool {
    name.starts_with("sync-")
        && (name.ends_with(".digests")
            || name.ends_with(".parquet")
            || name.ends_with(".job")
            || name.ends_with(".tombstones")
            || name.ends_with(".jsonl"))
}

/// Whether a file name inside a collection directory is one q2z writes.
pub fn is_own_file(name: &str) -> bool {
    (name.starts_with('.') && name.ends_with(".tmp"))
        || is_sync_file(name)
        || (name.starts_with("part-") && name.ends_with(".parquet"))
        || (name.starts_with("set-aside-") && name.ends_with(".jsonl"))
}

/// Whether a manifest entry `rel` is `<collection>/<a file q2z writes>`.
pub fn is_staged_file_of(collection: &str, rel: &str) -> bool {
    rel.split_once('/')
        .is_some_and(|(dir, file)| dir == collection && is_safe_dir_name(file) && is_own_file(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_safe() {
        for ok in ["docs", "Docs-2024.v1", "a b", "ünï"] {
            assert!(is_safe_dir_name(ok), "{ok}");
        }
        for bad in [
            "", ".", "..", "../x", "/tmp/x", "a/b", "a\\b", ".hidden", "x\n", "c:",
        ] {
            assert!(!is_safe_dir_name(bad), "{bad:?}");
        }
        assert!(is_staged_file_of("docs", "docs/part-0000-000000.parquet"));
        assert!(is_staged_file_of(
            "docs",
            "docs/set-aside-0000-000000.jsonl"
        ));
        for bad in [
            "docs/../x/part-0.parquet",
            "other/part-0000-000000.parquet",
            "docs/manifest.json",
            "/etc/part-0.parquet",
            "docs/sub/part-0.parquet",
            "docs",
        ] {
            assert!(!is_staged_file_of("docs", bad), "{bad}");
        }
    }
}
