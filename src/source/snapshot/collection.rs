//! Reading a loaded snapshot collection: counts, pages of points in id order, searches.

use super::*;

/// How often a snapshot scroll gives its mapped file pages back (see `mapped_pages`).
pub(super) const RELEASE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Ids per page of [`count_shard`].
pub(super) const COUNT_PAGE: usize = 10_000;

/// Exact point count of one shard, read as pages of ids in id order.
///
/// qdrant-edge's exact count gathers every id of the shard into one set (so that a point found
/// in two segments counts once): ~47 bytes per point at once, 470 MB for a 10M-point shard,
/// which was the peak of a whole snapshot export. Pages count the same points in flat memory.
pub(super) fn count_shard(shard: &EdgeShard) -> qdrant_edge::OperationResult<u64> {
    count_shard_in_pages(shard, COUNT_PAGE)
}

/// [`count_shard`] with pages of `page` ids.
pub(super) fn count_shard_in_pages(
    shard: &EdgeShard,
    page: usize,
) -> qdrant_edge::OperationResult<u64> {
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
            crate::model::QueryVector::Multi(m) => {
                let Some(params) = self
                    .config
                    .dense
                    .get(using)
                    .filter(|p| p.multivector.is_some())
                else {
                    return Err(snap_err(
                        &self.file,
                        format!("collection {} has no multivector '{using}'", self.name),
                    ));
                };
                let m = qdrant_edge::TypedMultiDenseVector::try_from_matrix(m)
                    .map_err(|e| snap_err(&self.file, format!("bad multivector query: {e}")))?;
                (
                    VectorInternal::MultiDense(m),
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

    /// Up to `share` points of shard `i` from `offset`, its shard key set on each.
    fn scroll_shard(
        &self,
        i: usize,
        s: &EdgeShard,
        offset: Option<&PointId>,
        share: usize,
        with_data: bool,
        filter: Option<&qdrant_edge::Filter>,
    ) -> Result<Vec<Point>> {
        let mut req = ScrollRequestBuilder::new()
            .limit(share)
            .with_payload(WithPayloadInterface::Bool(with_data))
            .with_vector(WithVector::Bool(with_data));
        if let Some(o) = offset {
            req = req.offset(to_edge_id(o)?);
        }
        if let Some(f) = filter {
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
        let per_shard = |(i, s): (usize, &EdgeShard)| {
            self.scroll_shard(i, s, offset, share, with_data, filter.as_ref())
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
