//! Values that Qdrant accepts but Milvus import or search refuses or mishandles, found while
//! staging so that no job fails on the server hours later. The rules are Milvus's own
//! (`ValidateSparseFloatRows`, `VerifyFloats32`, VarChar `max_length` in bytes):
//! - dense vector values must be finite (no NaN, no ±inf);
//! - sparse values must be finite and ≥ 0, indices unique and below 2^32-1;
//! - a VarChar key fits `id_max_length` bytes; an Int64 key is at most 2^63-1.
//!
//! A point breaking one is refused (the export stops and names it) or, with
//! `invalid_values = "set-aside"`, kept whole in the set-aside files. An all-zero dense vector
//! in a COSINE field (the default for a missing named vector) is legal but cannot be ranked by
//! COSINE: it is counted and reported as a warning.

use crate::model::{Point, PointId, VectorValue};
use crate::transform::mapping::{CollectionMapping, IdKind, MAX_EMBEDDINGS, VectorKind};

/// Why Milvus would refuse this point, if it would.
pub fn refusal(p: &Point, m: &CollectionMapping) -> Option<String> {
    match (&m.id_kind, &p.id) {
        (IdKind::Int64, PointId::Num(n)) if *n > i64::MAX as u64 => {
            return Some(format!("id {n} is over 2^63-1, the Int64 key's limit"));
        }
        (IdKind::Int64, PointId::Uuid(_)) => return Some("a UUID id in an Int64 key".into()),
        (IdKind::VarChar, id) if id.to_key_string().len() > m.id_max_length as usize => {
            return Some(format!(
                "id is {} bytes, over id_max_length {}",
                id.to_key_string().len(),
                m.id_max_length
            ));
        }
        _ => {}
    }
    for v in &m.vectors {
        let name = if v.source.is_empty() {
            "vector"
        } else {
            v.source.as_str()
        };
        match (v.kind, p.vectors.get(&v.source)) {
            (VectorKind::SparseFloatVector, Some(VectorValue::Sparse { indices, values })) => {
                if let Some(x) = values.iter().find(|x| !x.is_finite() || **x < 0.0) {
                    return Some(format!(
                        "sparse vector '{name}' holds {x} (Milvus takes finite values ≥ 0)"
                    ));
                }
                if indices.contains(&u32::MAX) {
                    return Some(format!(
                        "sparse vector '{name}' uses index 4294967295 (Milvus takes indices below 2^32-1)"
                    ));
                }
                let mut sorted = indices.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Some(format!("sparse vector '{name}' repeats an index"));
                }
            }
            (_, Some(VectorValue::Dense(d))) => {
                if let Some(x) = first_non_finite(d) {
                    return Some(format!(
                        "vector '{name}' holds {x} (Milvus takes finite values)"
                    ));
                }
            }
            (VectorKind::EmbeddingList, Some(VectorValue::Multi(vs)))
                if vs.is_empty() || vs.len() > MAX_EMBEDDINGS =>
            {
                return Some(format!(
                    "multivector '{name}' holds {} vectors (an Array of Structs field takes 1..={MAX_EMBEDDINGS} per point)",
                    vs.len()
                ));
            }
            (_, Some(VectorValue::Multi(vs))) => {
                if let Some(x) = vs.iter().find_map(|v| first_non_finite(v)) {
                    return Some(format!(
                        "multivector '{name}' holds {x} (Milvus takes finite values)"
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// The first value of `d` that is not finite (NaN, ±inf). Each run of 64 floats is checked
/// without a branch per float, which the compiler vectorizes (a float-by-float `find` was 1.3 %
/// of a 768-d snapshot export's CPU); only a run holding one is searched for it.
fn first_non_finite(d: &[f32]) -> Option<f32> {
    const EXPONENT: u32 = 0x7f80_0000;
    d.chunks(64)
        .find(|run| {
            run.iter()
                .fold(false, |bad, x| bad | (x.to_bits() & EXPONENT == EXPONENT))
        })
        .and_then(|run| run.iter().copied().find(|x| !x.is_finite()))
}

/// Whether the point stages an empty sparse row (`{}`: the vector missing, or without indices),
/// which Milvus takes over REST from 2.4.12 and in a Parquet import from 2.5.7 only.
pub fn empty_sparse(p: &Point, m: &CollectionMapping) -> bool {
    m.vectors
        .iter()
        .filter(|v| v.kind == VectorKind::SparseFloatVector)
        .any(|v| match p.vectors.get(&v.source) {
            Some(VectorValue::Sparse { indices, .. }) => indices.is_empty(),
            _ => true,
        })
}

/// Whether the point stages an all-zero vector in a COSINE field (present or zero-filled).
pub fn zero_cosine(p: &Point, m: &CollectionMapping) -> bool {
    m.vectors.iter().any(|v| {
        v.kind != VectorKind::SparseFloatVector
            && v.metric.eq_ignore_ascii_case("COSINE")
            && match p.vectors.get(&v.source) {
                Some(VectorValue::Dense(d)) => d.iter().all(|x| *x == 0.0),
                Some(VectorValue::Multi(vs)) => {
                    vs.first().is_none_or(|d| d.iter().all(|x| *x == 0.0))
                }
                Some(VectorValue::Sparse { .. }) => false,
                None => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mapping(id_kind: IdKind) -> CollectionMapping {
        crate::transform::mapping::test_mapping(crate::model::Distance::Cosine, id_kind)
    }

    fn point(id: PointId, d: Option<Vec<f32>>, s: Option<(Vec<u32>, Vec<f32>)>) -> Point {
        let mut vectors = BTreeMap::new();
        if let Some(d) = d {
            vectors.insert("d".to_string(), VectorValue::Dense(d));
        }
        if let Some((indices, values)) = s {
            vectors.insert("s".to_string(), VectorValue::Sparse { indices, values });
        }
        Point {
            id,
            vectors,
            payload: Default::default(),
            shard_key: None,
        }
    }

    #[test]
    fn the_first_non_finite_float_is_found_wherever_it_sits() {
        let fine: Vec<f32> = (0..200).map(|i| i as f32 * 0.5 - 40.0).collect();
        assert_eq!(first_non_finite(&fine), None);
        assert_eq!(first_non_finite(&[]), None);
        assert_eq!(
            first_non_finite(&[f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45]),
            None
        );
        for at in [0, 1, 63, 64, 65, 127, 128, 199] {
            for bad in [f32::INFINITY, f32::NEG_INFINITY] {
                let mut d = fine.clone();
                d[at] = bad;
                assert_eq!(first_non_finite(&d), Some(bad), "at {at}");
            }
            let mut d = fine.clone();
            d[at] = f32::NAN;
            assert!(first_non_finite(&d).is_some_and(f32::is_nan), "NaN at {at}");
        }
        let mut two = fine.clone();
        two[70] = f32::NEG_INFINITY;
        two[130] = f32::INFINITY;
        assert_eq!(first_non_finite(&two), Some(f32::NEG_INFINITY));
    }

    #[test]
    fn values_milvus_refuses_are_named() {
        let m = mapping(IdKind::Int64);
        let ok = point(
            PointId::Num(1),
            Some(vec![0.5, 1.0]),
            Some((vec![1, 7], vec![0.0, 2.0])),
        );
        assert_eq!(refusal(&ok, &m), None);
        let cases = [
            (
                point(PointId::Num(1), Some(vec![f32::INFINITY, 1.0]), None),
                "inf",
            ),
            (
                point(PointId::Num(1), Some(vec![f32::NAN, 1.0]), None),
                "NaN",
            ),
            (
                point(PointId::Num(1), None, Some((vec![1], vec![-0.5]))),
                "-0.5",
            ),
            (
                point(PointId::Num(1), None, Some((vec![u32::MAX], vec![0.5]))),
                "4294967295",
            ),
            (
                point(PointId::Num(1), None, Some((vec![3, 3], vec![0.5, 0.5]))),
                "repeats",
            ),
            (point(PointId::Num(u64::MAX), None, None), "2^63-1"),
        ];
        for (p, says) in cases {
            let r = refusal(&p, &m).unwrap_or_default();
            assert!(r.contains(says), "{says}: {r}");
        }
        let mut short = mapping(IdKind::VarChar);
        short.id_max_length = 8;
        let uuid = PointId::Uuid("5f3c1a2e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into());
        assert!(
            refusal(&point(uuid, None, None), &short)
                .unwrap()
                .contains("over id_max_length 8")
        );
    }

    #[test]
    fn zero_vectors_in_cosine_fields_are_noticed() {
        let m = mapping(IdKind::Int64);
        assert!(
            zero_cosine(&point(PointId::Num(1), None, None), &m),
            "a missing vector is zero-filled"
        );
        assert!(zero_cosine(
            &point(PointId::Num(1), Some(vec![0.0, 0.0]), None),
            &m
        ));
        assert!(!zero_cosine(
            &point(PointId::Num(1), Some(vec![0.0, 0.1]), None),
            &m
        ));
    }
}
