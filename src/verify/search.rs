//! Search parity (`verify --search N`, docs/design.md §11): N staged points per vector field
//! (dense float32/uint8, float16 and sparse; seeded, reproducible) are used as queries; the same top-k search runs in the source
//! (the live Qdrant, or the snapshot files offline through qdrant-edge) and in the target
//! (Milvus REST `entities/search`), and the answers are compared: overlap of ids, rank
//! agreement, and scores after mapping the metrics (Qdrant Euclid is a distance, Milvus L2 its
//! square).

use crate::error::Result;
use crate::model::QueryVector;
use crate::sink::milvus::Milvus;
use crate::source::CollectionSource;
use crate::stage::StagedCollection;
use crate::stage::evidence::QueryRecord;
use crate::stage::reader::Row;
use crate::transform::mapping::{VectorField, VectorKind};
use crate::verify::filters::{FilterKey, QueryFilter, choose_key, for_row};
use rand::SeedableRng;
use rand::seq::index::sample as sample_indices;
use serde::Serialize;
use serde_json::{Value, json};

/// What to search and when it passes.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Queries per vector field.
    pub queries: usize,
    /// Results per query.
    pub top_k: usize,
    /// Seed of the query choice.
    pub seed: u64,
    /// Exact (brute-force) search in the source.
    pub exact: bool,
    /// Mean overlap below this fails the check (exit code 3).
    pub min_overlap: Option<f64>,
}

/// One query that agreed least.
#[derive(Debug, Clone, Serialize)]
pub struct WeakQuery {
    /// Id of the point whose vector was the query.
    pub point: String,
    pub overlap: f64,
}

/// Parity of one vector field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldParity {
    pub collection: String,
    /// Milvus field (Qdrant vector name in `source`).
    pub field: String,
    pub source: String,
    pub metric: String,
    /// For a filtered pass: the payload key each query was filtered on (`key == the query
    /// point's own value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered_on: Option<String>,
    pub queries: usize,
    pub top_k: usize,
    /// Mean and lowest share of the source's top-k ids that the target also returned.
    pub mean_overlap: f64,
    pub min_overlap: f64,
    /// Mean Spearman correlation of the ranks of the ids both returned (1: same order).
    pub mean_rank_correlation: f64,
    /// Largest difference of the score of one id on both sides, in Qdrant's units.
    pub max_score_difference: f64,
    /// The queries with the lowest overlap (at most 5).
    pub weakest: Vec<WeakQuery>,
    pub seconds: f64,
    pub ok: bool,
    /// Why the field's figures are not held against `--min-overlap` (or were not measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every query's figures (for the report's distributions; not printed).
    #[serde(skip)]
    pub per_query: Vec<QueryRecord>,
}

/// Search queries sent at once (each to the source, then the target).
const QUERIES_IN_FLIGHT: usize = 8;

/// Ids as text: numbers in decimal, strings as they are.
pub fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A Milvus score in Qdrant's units: L2 is the squared Euclidean distance.
pub fn to_qdrant_score(metric: &str, milvus: f64) -> f64 {
    if metric == "L2" {
        milvus.max(0.0).sqrt()
    } else {
        milvus
    }
}

/// A multivector kept whole and searched by MaxSim over L2: its scores are in other units on
/// each side (only ids and ranks are compared).
fn maxsim_l2(f: &VectorField) -> bool {
    f.kind == VectorKind::EmbeddingList && f.metric == "L2"
}

/// Why a field's answers cannot agree by design, if so: multivectors (Qdrant scores by
/// MaxSim over all sub-vectors, Milvus holds one vector per row) are not compared; a sparse
/// vector Qdrant weights by IDF is compared but not held against `--min-overlap`.
fn by_design(f: &VectorField, src: &dyn CollectionSource) -> Option<(bool, String)> {
    if f.kind == VectorKind::EmbeddingList {
        // Qdrant and Milvus agree on MaxSim over IP and COSINE (the sum, over the query's
        // vectors, of the best similarity among the point's); over L2 their score units differ.
        return maxsim_l2(f).then(|| (false, format!(
            "multivector '{}' searched by MaxSim on both sides; over L2 the two scores are in different units, so only ids and ranks are compared",
            f.source
        )));
    }
    if f.is_multivector {
        return Some((
            false,
            format!(
                "multivector '{}' not compared: Qdrant scores it by MaxSim over every sub-vector, the Milvus field holds one vector per row ({:?})",
                f.source, f.multivector
            ),
        ));
    }
    let idf = f.kind == VectorKind::SparseFloatVector
        && src
            .config()
            .sparse
            .get(&f.source)
            .and_then(|p| p.modifier.as_deref())
            == Some("idf");
    idf.then(|| (true, format!(
        "sparse '{}' has Qdrant's idf modifier, which weights each dimension by its rarity; Milvus's IP on the same vectors does not, so rankings differ by design (not held against --min-overlap)",
        f.source
    )))
}

/// Checks every vector field of a staged collection (dense, float16, sparse).
pub fn search_parity(
    milvus: &Milvus,
    sc: StagedCollection,
    src: &dyn CollectionSource,
    opts: &SearchOptions,
) -> Result<Vec<FieldParity>> {
    let m = &sc.entry.mapping;
    let mut out = Vec::new();
    let whole = |v: &&VectorField| !v.is_multivector || v.kind == VectorKind::EmbeddingList;
    for f in m.vectors.iter().filter(|v| !whole(v)) {
        out.push(FieldParity {
            collection: m.source.clone(),
            field: f.field.clone(),
            source: f.source.clone(),
            metric: f.metric.clone(),
            filtered_on: None,
            queries: 0,
            top_k: opts.top_k,
            mean_overlap: 0.0,
            min_overlap: 0.0,
            mean_rank_correlation: 0.0,
            max_score_difference: 0.0,
            weakest: Vec::new(),
            seconds: 0.0,
            ok: true,
            note: by_design(f, src).map(|x| x.1),
            per_query: Vec::new(),
        });
    }
    let fields: Vec<&VectorField> = m.vectors.iter().filter(whole).collect();
    let (queries, key) = pick_queries(sc, &fields, opts)?;
    // Both sides answer over the network or from their own threads: several queries in flight.
    // qdrant-edge's search wants more stack than a pool thread's default 2 MiB.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(QUERIES_IN_FLIGHT)
        .stack_size(16 << 20)
        .build()
        .map_err(|e| crate::error::Error::Other(format!("no thread pool for the searches: {e}")))?;
    let pass = Pass {
        milvus,
        sc,
        src,
        opts,
        pool: &pool,
    };
    for (f, qs) in fields.iter().zip(&queries) {
        out.push(pass.run(f, qs, None)?);
        if let Some(k) = &key {
            let filtered: Vec<&Query> = qs.iter().filter(|q| q.filter.is_some()).collect();
            if !filtered.is_empty() {
                out.push(pass.run(f, &filtered, Some(&k.qdrant_key))?);
            }
        }
    }
    Ok(out)
}

/// What every pass of one collection shares.
struct Pass<'a> {
    milvus: &'a Milvus,
    sc: StagedCollection<'a>,
    src: &'a dyn CollectionSource,
    opts: &'a SearchOptions,
    pool: &'a rayon::ThreadPool,
}

impl Pass<'_> {
    /// The queries of one field on both sides (filtered with each query's own filter when
    /// `filtered_on` names the key), compared.
    fn run<Q: std::borrow::Borrow<Query> + Sync>(
        &self,
        f: &VectorField,
        qs: &[Q],
        filtered_on: Option<&str>,
    ) -> Result<FieldParity> {
        let (m, opts) = (&self.sc.entry.mapping, self.opts);
        let t = std::time::Instant::now();
        let answers: Vec<(String, f64, f64, f64)> = self.pool.install(|| {
            use rayon::prelude::*;
            qs.par_iter()
                .map(|q| {
                    let q: &Query = q.borrow();
                    crate::interrupt::check()?;
                    let filter = filtered_on.and(q.filter.as_ref());
                    let a: Vec<(String, f32)> = self
                        .src
                        .nearest(
                            &f.source,
                            &q.vector,
                            opts.top_k,
                            opts.exact,
                            filter.map(|x| &x.qdrant),
                        )?
                        .into_iter()
                        .map(|(id, s)| (id_text(&id.to_json()), s))
                        .collect();
                    let target = Target {
                        collection: &m.target,
                        field: f,
                        id_field: &m.id_field,
                        filter: filter.map(|x| x.milvus.as_str()).unwrap_or(""),
                    };
                    let b = target.nearest(self.milvus, &q.vector, opts.top_k)?;
                    let (o, c, d) = compare(&a, &b, opts.top_k);
                    Ok((q.point.clone(), o, c, d))
                })
                .collect::<Result<_>>()
        })?;
        let mut overlaps: Vec<(String, f64)> = answers.iter().map(|a| (a.0.clone(), a.1)).collect();
        let n = overlaps.len().max(1) as f64;
        let mean = overlaps.iter().map(|x| x.1).sum::<f64>() / n;
        let min = overlaps.iter().map(|x| x.1).fold(1.0, f64::min);
        overlaps.sort_by(|a, b| a.1.total_cmp(&b.1));
        let note = by_design(f, self.src);
        let held = note.as_ref().is_none_or(|n| !n.0);
        Ok(FieldParity {
            collection: m.source.clone(),
            field: f.field.clone(),
            source: f.source.clone(),
            metric: f.metric.clone(),
            filtered_on: filtered_on.map(str::to_string),
            queries: qs.len(),
            top_k: opts.top_k,
            mean_overlap: mean,
            min_overlap: min,
            mean_rank_correlation: answers.iter().map(|a| a.2).sum::<f64>() / n,
            // MaxSim over L2: scores in different units (see `by_design`), not compared.
            max_score_difference: if maxsim_l2(f) {
                0.0
            } else {
                answers.iter().map(|a| a.3).fold(0f64, f64::max)
            },
            weakest: overlaps
                .iter()
                .take(5)
                .filter(|x| x.1 < 1.0)
                .map(|(p, o)| WeakQuery {
                    point: p.clone(),
                    overlap: *o,
                })
                .collect(),
            seconds: (t.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            ok: !held || opts.min_overlap.is_none_or(|x| mean >= x),
            note: note.map(|n| n.1),
            per_query: answers
                .iter()
                .map(|(point, overlap, rank, diff)| QueryRecord {
                    point: point.clone(),
                    overlap: *overlap,
                    rank_correlation: *rank,
                    score_difference: *diff,
                })
                .collect(),
        })
    }
}

/// (overlap, rank correlation, largest score difference) of two answers, best first.
pub fn compare(source: &[(String, f32)], target: &[(String, f64)], k: usize) -> (f64, f64, f64) {
    let want = source.len().min(k);
    if want == 0 {
        return (if target.is_empty() { 1.0 } else { 0.0 }, 1.0, 0.0);
    }
    let mut shared = Vec::new();
    let mut diff = 0f64;
    for (i, (id, s)) in source.iter().take(k).enumerate() {
        if let Some(j) = target.iter().take(k).position(|(t, _)| t == id) {
            shared.push((i as f64, j as f64));
            diff = diff.max((f64::from(*s) - target[j].1).abs());
        }
    }
    let overlap = shared.len() as f64 / want as f64;
    (overlap, spearman(&shared), diff)
}

/// Spearman's correlation of paired ranks (1 for fewer than two pairs).
fn spearman(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len();
    if n < 2 {
        return 1.0;
    }
    let rank = |xs: Vec<f64>| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        idx.sort_by(|a, b| xs[*a].total_cmp(&xs[*b]));
        let mut r = vec![0.0; xs.len()];
        for (pos, i) in idx.into_iter().enumerate() {
            r[i] = pos as f64;
        }
        r
    };
    let a = rank(pairs.iter().map(|p| p.0).collect());
    let b = rank(pairs.iter().map(|p| p.1).collect());
    let d2: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
    let n = n as f64;
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

/// A target vector field to search, with an optional boolean filter.
struct Target<'a> {
    collection: &'a str,
    field: &'a VectorField,
    id_field: &'a str,
    /// Milvus boolean expression (`""`: none).
    filter: &'a str,
}

impl Target<'_> {
    /// The `k` nearest: (id as text, Milvus score converted to Qdrant's units). Milvus REST
    /// takes float16 queries as float arrays and sparse ones as `{"indices", "values"}`.
    fn nearest(
        &self,
        milvus: &Milvus,
        vector: &QueryVector,
        k: usize,
    ) -> Result<Vec<(String, f64)>> {
        let f = self.field;
        let params = match vector {
            QueryVector::Dense(_) | QueryVector::Multi(_) => json!({"ef": (k * 4).max(64)}),
            // Keep every query dimension: nothing approximated away.
            QueryVector::Sparse { .. } => json!({"drop_ratio_search": 0.0}),
        };
        // An Array of Structs is searched on its sub-vector `F[v]` by MaxSim, the query one
        // embedding list (handler_v2.go search; httpserver struct_array_v2.go).
        let (anns, metric) = if f.kind == VectorKind::EmbeddingList {
            crate::transform::embedding_list::search_target(&f.field, &f.metric)
        } else {
            (f.field.clone(), f.metric.clone())
        };
        let body = json!({
            "collectionName": self.collection,
            "data": [vector.to_qdrant_json()],
            "annsField": anns,
            "limit": k,
            "filter": self.filter,
            "outputFields": [self.id_field],
            "searchParams": {"metricType": metric, "params": params},
            "consistencyLevel": "Strong",
        });
        let data = milvus.call("entities/search", body)?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| {
                let id = h.get(self.id_field).or_else(|| h.get("id"))?;
                let d = h.get("distance")?.as_f64()?;
                let score = if maxsim_l2(f) {
                    d
                } else {
                    to_qdrant_score(&f.metric, d)
                };
                Some((id_text(id), score))
            })
            .collect())
    }
}

/// A query: a staged point's id (as text), its vector, and its filter for a filtered pass.
#[derive(Debug, Clone)]
struct Query {
    point: String,
    vector: QueryVector,
    filter: Option<QueryFilter>,
}

/// `opts.queries` staged points per field (the same points for every field), chosen with
/// the seed: (id as text, the field's vector).
fn pick_queries(
    sc: StagedCollection,
    fields: &[&VectorField],
    opts: &SearchOptions,
) -> Result<(Vec<Vec<Query>>, Option<FilterKey>)> {
    let total = sc.rows() as usize;
    if total == 0 || fields.is_empty() {
        return Ok((vec![Vec::new(); fields.len()], None));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let mut wanted = sample_indices(&mut rng, total, opts.queries.min(total)).into_vec();
    wanted.sort_unstable();
    let mut rows: Vec<Row> = Vec::with_capacity(wanted.len());
    let mut base = 0usize;
    let mut next = wanted.iter().peekable();
    for c in sc.chunks() {
        let end = base + c.rows as usize;
        if next.peek().is_none_or(|w| **w >= end) {
            base = end;
            continue;
        }
        let mut pos = base;
        sc.for_each_batch(c, 1024, |batch| {
            for r in batch {
                if next.peek() == Some(&&pos) {
                    next.next();
                    rows.push(r);
                }
                pos += 1;
            }
            Ok(())
        })?;
        base = end;
    }
    let m = &sc.entry.mapping;
    let key = choose_key(m, &rows);
    let out = fields
        .iter()
        .map(|f| {
            rows.iter()
                .filter_map(|r| {
                    // A point without this vector (null) asks nothing of it.
                    let staged = r.get(&f.field)?;
                    let vector = if f.kind == VectorKind::EmbeddingList {
                        QueryVector::Multi(crate::transform::embedding_list::from_json(staged)?)
                    } else {
                        QueryVector::from_qdrant_json(staged)?
                    };
                    // Nor does a point that lacked it (staged as zeros, or an empty sparse
                    // vector): a zero query ranks every point alike.
                    let zero = match &vector {
                        QueryVector::Dense(v) => v.iter().all(|x| *x == 0.0),
                        QueryVector::Sparse { values, .. } => values.iter().all(|x| *x == 0.0),
                        QueryVector::Multi(m) => m.iter().flatten().all(|x| *x == 0.0),
                    };
                    if zero {
                        return None;
                    }
                    Some(Query {
                        point: id_text(r.get(&m.id_field)?),
                        vector,
                        filter: key.as_ref().and_then(|k| for_row(k, r)),
                    })
                })
                .collect()
        })
        .collect();
    Ok((out, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rank_and_scores_are_compared_in_qdrant_units() {
        let src = vec![
            ("1".to_string(), 1.0f32),
            ("2".into(), 2.0),
            ("3".into(), 3.0),
        ];
        let same: Vec<(String, f64)> =
            vec![("1".into(), 1.0), ("2".into(), 4.0), ("3".into(), 9.0)]
                .into_iter()
                .map(|(i, d)| (i, to_qdrant_score("L2", d)))
                .collect();
        assert_eq!(
            compare(&src, &same, 3),
            (1.0, 1.0, 0.0),
            "L2 squared → Euclid"
        );
        let swapped: Vec<(String, f64)> =
            vec![("2".into(), 2.0), ("1".into(), 1.0), ("9".into(), 3.0)];
        let (o, c, d) = compare(&src, &swapped, 3);
        assert!(
            (o - 2.0 / 3.0).abs() < 1e-9 && c < 0.0 && d == 0.0,
            "{o} {c} {d}"
        );
        assert_eq!(compare(&[], &[], 3).0, 1.0, "nothing on either side agrees");
        assert_eq!(to_qdrant_score("COSINE", 0.5), 0.5);
    }
}
