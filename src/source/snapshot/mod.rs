//! Offline source: Qdrant collection or shard snapshot files, read with `qdrant-edge`.
//!
//! A snapshot is unpacked into a scratch directory (never in place: `EdgeShard::load` rewrites
//! what it opens). Tar entries are checked before anything is written: no absolute paths, no
//! `..`, no links. Collection snapshots keep each shard's segments as inner tars; each shard is
//! repacked into a shard-snapshot tar and handed to `EdgeShard::unpack_snapshot`.
//!
//! [`unpack`]: the tar checks and unpacking; [`replicas`]: which file each shard is read from,
//! and opening them; [`convert`]: qdrant-edge values to q2z's model; [`collection`]: reads of a
//! loaded collection.

mod collection;
mod convert;
mod id_mappings;
mod replicas;
mod unpack;

use collection::*;
pub use convert::{edge_config_to_qdrant, from_edge_id, record_to_point, to_edge_id};
pub use replicas::{SnapshotInput, open_snapshot, open_snapshots};
pub(crate) use unpack::inspect;
use unpack::*;

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
