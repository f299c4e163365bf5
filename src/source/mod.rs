//! Sources of Qdrant points: a live server over REST, or snapshot files (offline).

pub mod cluster;
pub mod config;
pub mod grpc;
pub mod grpc_scroll;
pub mod mapped_pages;
pub mod open;
pub mod pages;
pub mod rest;
pub mod scroll_json;
pub mod snapshot;
pub mod transport_choice;

pub use pages::{Pages, ScrollOpts, pages};

use crate::error::Result;
use crate::model::{CollectionConfig, Point, PointId, QueryVector};
use std::sync::Arc;

/// One collection to read from, whatever the source.
pub trait CollectionSource: Send + Sync {
    /// The collection's config.
    fn config(&self) -> &CollectionConfig;
    /// The collection's `config` object as Qdrant shows it (kept in the manifest).
    fn raw_config(&self) -> serde_json::Value {
        self.config().raw.clone()
    }
    /// Exact point count.
    fn count(&self) -> Result<u64>;
    /// Whether the points cannot change while they are read (snapshot files): one id scan
    /// then gives the exact count, with no separate count to compare it with.
    fn unchanging(&self) -> bool {
        false
    }
    /// About how many points there are (for sizing an id scan); exact unless overridden.
    fn count_hint(&self) -> Result<u64> {
        self.count()
    }
    /// Which file each shard is read from (`shard N ← file`), for sources made of files.
    fn shard_origins(&self) -> Vec<String> {
        Vec::new()
    }
    /// For a part (`--part I/N`) opened with only its own shards: (this part's shard ids, every
    /// shard id of the collection).
    fn shard_split(&self) -> Option<(Vec<u32>, Vec<u32>)> {
        None
    }
    /// The aliases that point at the collection (a live server; snapshots carry none).
    fn aliases(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// What opening the source decided that the user should know (kept in the manifest).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Unix seconds at or before which every point read was written: a change made later may
    /// be missing from an export of this source. `None`: unknown (snapshot files).
    fn taken_at(&self) -> Option<u64> {
        None
    }
    /// The `k` nearest points to a query vector of field `using` (`""`: the unnamed one),
    /// best first, with Qdrant's scores; `exact`: brute force; `filter`: a Qdrant filter.
    fn nearest(
        &self,
        using: &str,
        vector: &QueryVector,
        k: usize,
        exact: bool,
        filter: Option<&serde_json::Value>,
    ) -> Result<Vec<(PointId, f32)>>;
    /// One page in Qdrant's id order from `offset` (inclusive); `with_data` false reads ids only.
    fn scroll(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)>;
    /// [`CollectionSource::scroll`] of the points that match a Qdrant filter (REST JSON).
    fn scroll_where(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
        filter: &serde_json::Value,
    ) -> Result<(Vec<Point>, Option<PointId>)>;
}

/// A collection on a live Qdrant server (config over REST, pages over REST or gRPC).
pub struct LiveCollection {
    pub client: rest::QdrantRest,
    pub config: CollectionConfig,
    /// Unix seconds when it was opened (before anything was read).
    pub opened_at: u64,
    /// How scroll pages are read: REST, gRPC, or the faster of the two (`--transport`).
    pub pages: transport_choice::PageTransport,
}

pub use crate::wait::unix_now;

impl CollectionSource for LiveCollection {
    fn config(&self) -> &CollectionConfig {
        &self.config
    }
    fn count(&self) -> Result<u64> {
        self.client.count(&self.config.name)
    }
    fn aliases(&self) -> Result<Vec<String>> {
        self.client.aliases(&self.config.name)
    }
    fn taken_at(&self) -> Option<u64> {
        Some(self.opened_at)
    }
    fn notes(&self) -> Vec<String> {
        self.pages
            .note(&self.client, &self.config.name)
            .into_iter()
            .collect()
    }
    fn nearest(
        &self,
        using: &str,
        vector: &QueryVector,
        k: usize,
        exact: bool,
        filter: Option<&serde_json::Value>,
    ) -> Result<Vec<(PointId, f32)>> {
        let found = self
            .client
            .nearest(&self.config.name, using, vector, k, exact, filter)?;
        Ok(found
            .into_iter()
            .filter_map(|(id, s)| Some((PointId::from_json(&id)?, s)))
            .collect())
    }
    fn scroll(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        let rest = || {
            self.client
                .scroll(&self.config.name, offset, limit, with_data, None)
        };
        let Some(g) = self.pages.grpc(&self.client, &self.config.name) else {
            return rest();
        };
        match g.scroll(&self.config.name, offset, limit, with_data) {
            // A payload nested deeper than prost's decoding limit: REST carries it.
            Err(e) if grpc::too_deep(&e) => {
                tracing::info!(collection = %self.config.name, "a page nests payloads deeper than gRPC decodes; read over REST");
                rest()
            }
            // Integers above i64::MAX reach gRPC clients as doubles (Qdrant's
            // `json_to_proto`): such a page is read again over REST, which keeps them exact.
            Ok((pts, _)) if pts.iter().any(|p| grpc::has_rounded_integer(&p.payload)) => {
                tracing::info!(collection = %self.config.name, "a page holds integers above 2^63-1, which gRPC carries as doubles; read over REST");
                rest()
            }
            r => r,
        }
    }
    fn scroll_where(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
        filter: &serde_json::Value,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        self.client
            .scroll(&self.config.name, offset, limit, with_data, Some(filter))
    }
}

impl CollectionSource for snapshot::SnapshotCollection {
    fn config(&self) -> &CollectionConfig {
        &self.config
    }
    fn raw_config(&self) -> serde_json::Value {
        self.config_json.clone()
    }
    fn shard_origins(&self) -> Vec<String> {
        self.shard_origins.clone()
    }
    fn shard_split(&self) -> Option<(Vec<u32>, Vec<u32>)> {
        self.shard_split.clone()
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
    fn taken_at(&self) -> Option<u64> {
        self.taken_at
    }
    fn count(&self) -> Result<u64> {
        snapshot::SnapshotCollection::count(self)
    }
    fn unchanging(&self) -> bool {
        true
    }
    fn count_hint(&self) -> Result<u64> {
        snapshot::SnapshotCollection::count_estimate(self)
    }
    fn nearest(
        &self,
        using: &str,
        vector: &QueryVector,
        k: usize,
        exact: bool,
        filter: Option<&serde_json::Value>,
    ) -> Result<Vec<(PointId, f32)>> {
        self.search(using, vector.clone(), k, exact, filter)
    }
    fn scroll(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        snapshot::SnapshotCollection::scroll(self, offset, limit, with_data)
    }
    fn scroll_where(
        &self,
        offset: Option<&PointId>,
        limit: usize,
        with_data: bool,
        filter: &serde_json::Value,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        snapshot::SnapshotCollection::scroll_where(self, offset, limit, with_data, Some(filter))
    }
}

/// Shared handle to a collection source.
pub type SharedSource = Arc<dyn CollectionSource>;
