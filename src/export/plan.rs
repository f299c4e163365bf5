//! Planning an export: the id scan, the id ranges the workers share, the collection's entry
//! in the manifest (mapping, schema, ranges), and a part's share of the work.

use super::*;

/// An id scan keeps every id of a small collection, and at most every 1000th of a large one
/// (about 10,000 boundary candidates, at most 1 in 1000 ids in memory).
pub(super) fn scan_stride(count_hint: u64) -> u64 {
    (count_hint / 10_000).clamp(1, 1000)
}

/// Result of an id scan: exact count, key type and range boundaries.
#[derive(Debug, Clone)]
pub struct IdScan {
    pub count: u64,
    pub id_kind: IdKind,
    /// Every `stride`-th id in Qdrant order (boundary candidates).
    pub samples: Vec<PointId>,
    /// Ids between two samples.
    pub stride: u64,
    /// The shard keys the points carry (custom sharding), each once.
    pub shard_keys: Vec<serde_json::Value>,
}

impl IdScan {
    /// The collection's config with the shard keys the scan saw, for the default mapping.
    pub fn with_keys(
        &self,
        cfg: &crate::model::CollectionConfig,
    ) -> crate::model::CollectionConfig {
        crate::model::CollectionConfig {
            shard_keys: self.shard_keys.clone(),
            ..cfg.clone()
        }
    }
}

/// Reads every id once (no payload, no vectors) to decide the key type exactly; `count_hint`
/// (the collection's point count) sets how many ids are kept as range boundaries.
pub fn scan_ids(src: &SharedSource, count_hint: u64) -> Result<IdScan> {
    let stride = scan_stride(count_hint);
    let mut count = 0u64;
    let mut varchar = false;
    let mut samples = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for page in pages(src.as_ref(), None, None, ScrollOpts::ids(10_000)) {
        for p in &page? {
            if count.is_multiple_of(stride) {
                samples.push(p.id.clone());
            }
            count += 1;
            if let Some(k) = &p.shard_key
                && keys.len() < 100_000
            {
                keys.insert(k.to_string());
            }
            match &p.id {
                PointId::Num(n) if *n > i64::MAX as u64 => varchar = true,
                PointId::Uuid(_) => varchar = true,
                _ => {}
            }
        }
    }
    Ok(IdScan {
        count,
        id_kind: if varchar {
            IdKind::VarChar
        } else {
            IdKind::Int64
        },
        samples,
        stride,
        shard_keys: keys
            .iter()
            .filter_map(|k| serde_json::from_str(k).ok())
            .collect(),
    })
}

/// Splits the sampled ids into `n` ranges covering everything; each range knows how many
/// points the scan counted in it.
pub fn plan_ranges(scan: &IdScan, n: usize) -> Vec<Range> {
    let samples = &scan.samples;
    let n = n.max(1).min(samples.len().max(1));
    // Sample k is the id at scan position k * stride, so a range from sample a to sample b
    // holds exactly (b - a) * stride points of the scan.
    let mut starts: Vec<usize> = (0..n).map(|i| i * samples.len() / n).collect();
    starts.dedup();
    let pos = |k: usize| (k as u64 * scan.stride).min(scan.count);
    starts
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let next = starts.get(i + 1).copied();
            Range {
                set_aside: Vec::new(),
                zero_cosine: 0,
                empty_sparse: 0,
                index: i,
                start: (i > 0).then(|| samples[k].clone()),
                end: next.map(|k| samples[k].clone()),
                cursor: None,
                done: false,
                planned_points: Some(next.map_or(scan.count, pos) - pos(k)),
            }
        })
        .collect()
}

/// The plan of a collection not staged yet: exact count, id scan, mapping, id ranges.
pub(super) fn plan_collection(src: &SharedSource, opts: &ExportOptions) -> Result<CollectionEntry> {
    let cfg = src.config();
    // A source that cannot change is counted by its id scan alone (a second full read of the
    // ids would find the same number).
    let (count, scan) = if src.unchanging() {
        let scan = scan_ids(src, src.count_hint()?)?;
        (scan.count, scan)
    } else {
        let count = src.count()?;
        (count, scan_ids(src, count)?)
    };
    let (mapping, mut warnings) = match opts.mapping_overrides.get(&cfg.name) {
        Some(m) => {
            m.validate(cfg)?;
            if m.id_kind == IdKind::Int64 && scan.id_kind == IdKind::VarChar {
                return Err(Error::Mapping { collection: cfg.name.clone(), message: "the mapping file says id_kind = Int64 but the collection has UUIDs or ids above 2^63-1; set id_kind = \"VarChar\"".into() });
            }
            (m.clone(), Vec::new())
        }
        None => default_mapping(&scan.with_keys(cfg), scan.id_kind, &opts.mapping)?,
    };
    warnings.extend(src.notes());
    if scan.count != count {
        warnings.push(format!("the id scan saw {} points, the exact count said {count}: the collection is being written to; use --via-snapshot for a point-in-time export", scan.count));
    }
    let n = if opts.ranges > 0 {
        opts.ranges
    } else if let Some(p) = opts.part.filter(|_| src.shard_split().is_none()) {
        // The same on every machine, whatever its flags: the parts must share one plan. Eight
        // ranges per part (each at least ~1024 points), and at least one per part.
        (p.of * 8).min((count / 1024).max(p.of as u64) as usize)
    } else {
        // Every worker has a range from the first page on (once each range holds a few pages);
        // more ranges for large collections.
        let few_pages = (count / (4 * opts.page_size.max(1) as u64)).max(1);
        (count / 50_000)
            .clamp(opts.workers as u64, (opts.workers * 4) as u64)
            .min(few_pages) as usize
    };
    let mut ranges = plan_ranges(&scan, n);
    let share = opts
        .part
        .map(|p| take_share(&cfg.name, p, src, &mut ranges));
    let source_count_at_start = match &share {
        Some(s) if s.by == SplitBy::Ranges => ranges.iter().filter_map(|r| r.planned_points).sum(),
        _ => count,
    };
    Ok(CollectionEntry {
        qdrant_config: src.raw_config(),
        milvus_schema: milvus_create_body(&mapping),
        mapping,
        warnings,
        source_count_at_start,
        ranges,
        chunks: Vec::new(),
        state: ExportState::Planned,
        shards: src.shard_origins(),
        source_taken_at: src.taken_at(),
        share,
    })
}

/// A part's share of a collection: its shards when the source was opened with only this
/// part's shards, else every N-th range of the whole plan (`ranges` keeps only those,
/// renumbered). The fingerprint covers the whole plan, so parts of different plans are told
/// apart when merged.
pub(super) fn take_share(
    name: &str,
    part: Part,
    src: &SharedSource,
    ranges: &mut Vec<Range>,
) -> PartShare {
    use sha2::Digest;
    let (by, units, all, bounds) = match src.shard_split() {
        Some((mine, all)) => (
            SplitBy::Shards,
            mine.into_iter().map(u64::from).collect(),
            all.into_iter().map(u64::from).collect(),
            Vec::new(),
        ),
        None => {
            let all: Vec<u64> = (0..ranges.len() as u64).collect();
            let bounds: Vec<Option<PointId>> = ranges.iter().map(|r| r.end.clone()).collect();
            ranges.retain(|r| part.owns(r.index));
            let units = ranges.iter().map(|r| r.index as u64).collect();
            for (i, r) in ranges.iter_mut().enumerate() {
                r.index = i;
            }
            (SplitBy::Ranges, units, all, bounds)
        }
    };
    let plan = serde_json::json!({"collection": name, "by": by, "all": all, "bounds": bounds});
    PartShare {
        by,
        units,
        all,
        fingerprint: hex::encode(sha2::Sha256::digest(plan.to_string().as_bytes())),
    }
}

/// Points in the given id ranges now (ids only), for a part whose staged rows differ from its
/// plan's count.
pub(super) fn count_in_ranges(src: &SharedSource, ranges: &[Range]) -> Result<u64> {
    let mut n = 0;
    for r in ranges {
        for page in pages(
            src.as_ref(),
            r.start.clone(),
            r.end.clone(),
            ScrollOpts::ids(10_000),
        ) {
            n += page?.len() as u64;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::{IdScan, plan_ranges};
    use crate::model::PointId;

    fn scan(n: u64) -> IdScan {
        IdScan {
            count: n,
            id_kind: crate::transform::mapping::IdKind::Int64,
            samples: (0..n).step_by(1000).map(PointId::Num).collect(),
            stride: 1000,
            shard_keys: Vec::new(),
        }
    }

    #[test]
    fn ranges_cover_everything_once_in_order() {
        let s = scan(10_000);
        let r = plan_ranges(&s, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].start, None, "the first range starts at the beginning");
        assert_eq!(r[3].end, None, "the last range runs to the end");
        for w in r.windows(2) {
            assert_eq!(w[0].end, w[1].start, "no gap, no overlap");
            assert!(w[0].start < w[1].start);
        }
        assert!(
            r.iter()
                .enumerate()
                .all(|(i, x)| x.index == i && !x.done && x.cursor.is_none())
        );
        assert_eq!(
            r.iter()
                .map(|x| x.planned_points.unwrap())
                .collect::<Vec<_>>(),
            [2000, 3000, 2000, 3000],
            "each range knows its points exactly"
        );
        // More ranges than samples, or none asked: never an empty or repeated range.
        let few = plan_ranges(&scan(1500), 8);
        assert_eq!(few.len(), 2);
        assert_eq!(few[1].planned_points, Some(500));
        assert_eq!(plan_ranges(&scan(0), 4).len(), 1);
        assert_eq!(plan_ranges(&scan(0), 4)[0].planned_points, Some(0));
        assert_eq!(plan_ranges(&s, 0).len(), 1);
    }
}
