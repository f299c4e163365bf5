//! Points → Arrow record batches laid out exactly as Milvus import reads Parquet
//! (`list<float32>` dense vectors, `list<uint8>` float16 bytes, JSON text for sparse and `$meta`).

use crate::error::{Error, Result};
use crate::model::{Point, PointId, VectorValue};
use crate::transform::checks;
use crate::transform::columns::{ColumnKind, columns};
use crate::transform::mapping::{
    CollectionMapping, IdKind, InvalidPolicy, META, MissingVector, MultivectorPolicy, NullPolicy,
    OversizePolicy, VectorField, VectorKind,
};
use crate::transform::scalars::scalar_column;
use arrow::array::{ArrayRef, Float32Array, Int64Array, ListArray, StringBuilder, UInt8Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Largest `$meta` JSON Milvus accepts on insert (`common.JSONMaxLength`).
pub const MAX_META_BYTES: usize = 65_536;

/// Arrow schema of the staged files of a collection (see [`crate::transform::columns`]).
pub fn arrow_schema(m: &CollectionMapping) -> SchemaRef {
    let fields: Vec<Field> = columns(m).iter().map(|c| c.arrow_field()).collect();
    Arc::new(Schema::new(fields))
}

/// Escapes a payload key that would clash with a static field or `$meta`: a key made of such a
/// name followed by zero or more `_` gets one more `_` (`id` → `id_`, `id_` → `id__`).
/// The rule is a bijection, so [`unescape_key`] restores the original.
pub fn escape_key<'a>(key: &'a str, statics: &[&str]) -> std::borrow::Cow<'a, str> {
    let base = key.trim_end_matches('_');
    if statics.contains(&base) || base == META {
        std::borrow::Cow::Owned(format!("{key}_"))
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

/// Reverses [`escape_key`].
pub fn unescape_key<'a>(key: &'a str, statics: &[&str]) -> &'a str {
    let base = key.trim_end_matches('_');
    if key.len() > base.len() && (statics.contains(&base) || base == META) {
        &key[..key.len() - 1]
    } else {
        key
    }
}

/// The `$meta` JSON text of a point, written straight from its payload (no copy of it into a
/// new map first: the export's hot path): promoted keys left out, clashing keys escaped, nulls
/// kept or dropped per the mapping, keys in payload order (serde_json's `preserve_order`).
pub fn meta_text(
    payload: &Map<String, Value>,
    m: &CollectionMapping,
    statics: &[&str],
) -> serde_json::Result<String> {
    let mut out: Vec<u8> = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    for (k, v) in payload {
        if (m.null_values == NullPolicy::Drop && v.is_null())
            || m.scalars.iter().any(|s| s.takes_payload_key(k))
        {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut out, escape_key(k, statics).as_ref())?;
        out.push(b':');
        serde_json::to_writer(&mut out, v)?;
    }
    out.push(b'}');
    // serde_json writes valid UTF-8 only.
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// A converted slice of points: the batch, and the points set aside (as Qdrant JSON lines)
/// because their payload is too large for `$meta`.
#[derive(Debug)]
pub struct Converted {
    /// Rows for the Parquet chunk.
    pub batch: RecordBatch,
    /// One Qdrant-JSON line per point set aside.
    pub set_aside: Vec<String>,
    /// Points staged with an all-zero vector in a COSINE field.
    pub zero_cosine: u64,
    /// Points staged with an empty sparse row.
    pub empty_sparse: u64,
}

/// Sparse vector as the JSON text Milvus import reads.
pub fn sparse_json(indices: &[u32], values: &[f32]) -> String {
    let mut s = String::with_capacity(16 + indices.len() * 16);
    s.push_str("{\"indices\":[");
    for (i, x) in indices.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push_str("],\"values\":[");
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(x).unwrap_or_else(|_| "0".into()));
    }
    s.push_str("]}");
    s
}

/// The dense values a point contributes to field `v`, after the multivector / missing policies.
fn dense_of<'a>(
    p: &'a Point,
    v: &VectorField,
    mapping: &CollectionMapping,
) -> Result<Option<&'a [f32]>> {
    match p.vectors.get(&v.source) {
        Some(VectorValue::Dense(d)) => Ok(Some(d.as_slice())),
        Some(VectorValue::Multi(m)) if v.multivector == MultivectorPolicy::First => {
            Ok(m.first().map(|x| x.as_slice()))
        }
        Some(_) => Err(Error::Mapping {
            collection: mapping.source.clone(),
            message: format!(
                "point {}: vector '{}' is not the dense kind the mapping expects",
                p.id, v.source
            ),
        }),
        None => match mapping.missing_vector {
            MissingVector::Zeros => Ok(None),
            MissingVector::Error => Err(Error::Mapping {
                collection: mapping.source.clone(),
                message: format!(
                    "point {} has no vector '{}'; set missing_vector = \"zeros\" in the mapping to stage zeros",
                    p.id, v.source
                ),
            }),
        },
    }
}

/// Points of a slice sorted out: the ones staged (with their `$meta` text), the ones set
/// aside, and the count of all-zero COSINE vectors; points that must stop the export are errors.
struct Sorted<'a> {
    kept: Vec<&'a Point>,
    metas: Vec<String>,
    set_aside: Vec<String>,
    zero_cosine: u64,
    empty_sparse: u64,
}

fn sort_points<'a>(points: &'a [Point], m: &CollectionMapping) -> Result<Sorted<'a>> {
    let statics = m.static_fields();
    let mut out = Sorted {
        kept: Vec::with_capacity(points.len()),
        metas: Vec::with_capacity(points.len()),
        set_aside: Vec::new(),
        zero_cosine: 0,
        empty_sparse: 0,
    };
    let mut oversize = Vec::new();
    let mut refused = Vec::new();
    let unnamed = m.vectors.iter().any(|v| v.source.is_empty());
    let aside = |p: &Point, why: String| {
        let mut line = p.to_qdrant_json(unnamed);
        line["q2z_reason"] = why.into();
        line.to_string()
    };
    for p in points {
        if let Some(why) = checks::refusal(p, m) {
            if m.invalid_values == InvalidPolicy::SetAside {
                out.set_aside.push(aside(p, why));
            } else {
                refused.push(format!("{}: {why}", p.id));
            }
            continue;
        }
        out.zero_cosine += u64::from(checks::zero_cosine(p, m));
        out.empty_sparse += u64::from(checks::empty_sparse(p, m));
        let text = meta_text(&p.payload, m, &statics).map_err(|e| Error::format("$meta", e))?;
        if text.len() <= MAX_META_BYTES {
            out.metas.push(text);
            out.kept.push(p);
        } else if m.oversize_payload == OversizePolicy::SetAside {
            out.set_aside.push(aside(
                p,
                format!("$meta is {} bytes, over 65,536", text.len()),
            ));
        } else {
            oversize.push(format!("{} ({} bytes)", p.id, text.len()));
        }
    }
    let named = |list: &mut Vec<String>, sep: &str| {
        let n = list.len();
        list.truncate(10);
        (n, list.join(sep))
    };
    if !refused.is_empty() {
        let (n, which) = named(&mut refused, "; ");
        return Err(Error::Mapping {
            collection: m.source.clone(),
            message: format!(
                "{n} point(s) hold values Milvus refuses: {which}. Fix them in Qdrant, or rerun with --invalid-values set-aside to stage them apart (kept whole as Qdrant JSON in the stage, with the reason, and reported by verify)"
            ),
        });
    }
    if !oversize.is_empty() {
        let (n, which) = named(&mut oversize, ", ");
        return Err(Error::Mapping {
            collection: m.source.clone(),
            message: format!(
                "{n} point(s) have a payload over Milvus's 65,536-byte limit for the dynamic field as JSON: {which}. Rerun with --oversize-payload set-aside to stage them apart (kept whole as Qdrant JSON in the stage, reported by verify), or promote the large keys to typed fields (--promote KEY:VarChar, up to 65,535 bytes each)"
            ),
        });
    }
    Ok(out)
}

/// The primary-key column.
fn id_column(points: &[&Point], m: &CollectionMapping) -> Result<ArrayRef> {
    Ok(match m.id_kind {
        IdKind::Int64 => {
            let mut ids = Vec::with_capacity(points.len());
            for p in points {
                match &p.id {
                    PointId::Num(n) if *n <= i64::MAX as u64 => ids.push(*n as i64),
                    other => {
                        return Err(Error::Mapping {
                            collection: m.source.clone(),
                            message: format!(
                                "point id {other} does not fit the Int64 primary key; plan again so that the key becomes VarChar (q2z export --restart)"
                            ),
                        });
                    }
                }
            }
            Arc::new(Int64Array::from(ids))
        }
        IdKind::VarChar => {
            let mut b = StringBuilder::with_capacity(points.len(), points.len() * 36);
            for p in points {
                b.append_value(p.id.to_key_string());
            }
            Arc::new(b.finish())
        }
    })
}

fn list_err(m: &CollectionMapping, v: &VectorField) -> Error {
    Error::format(
        format!("collection {}", m.source),
        format!("the staged schema has no list type for '{}'", v.field),
    )
}

/// A vector column (`item`: the list item field of its Arrow type).
fn vector_column(
    points: &[&Point],
    v: &VectorField,
    m: &CollectionMapping,
    item: Option<Arc<Field>>,
) -> Result<ArrayRef> {
    Ok(match v.kind {
        VectorKind::FloatVector => {
            let dim = v.dim.unwrap_or(0);
            let mut vals: Vec<f32> = Vec::with_capacity(points.len() * dim);
            for p in points {
                match dense_of(p, v, m)? {
                    Some(d) if d.len() == dim => vals.extend_from_slice(d),
                    Some(d) => return Err(dim_err(m, p, v, d.len())),
                    None => vals.extend(std::iter::repeat_n(0.0f32, dim)),
                }
            }
            let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(dim, points.len()));
            Arc::new(ListArray::new(
                item.clone().ok_or_else(|| list_err(m, v))?,
                offsets,
                Arc::new(Float32Array::from(vals)),
                None,
            ))
        }
        VectorKind::Float16Vector => {
            let dim = v.dim.unwrap_or(0);
            let mut bytes: Vec<u8> = Vec::with_capacity(points.len() * dim * 2);
            for p in points {
                match dense_of(p, v, m)? {
                    Some(d) if d.len() == dim => {
                        for x in d {
                            bytes.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes());
                        }
                    }
                    Some(d) => return Err(dim_err(m, p, v, d.len())),
                    None => bytes.extend(std::iter::repeat_n(0u8, dim * 2)),
                }
            }
            let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(dim * 2, points.len()));
            Arc::new(ListArray::new(
                item.clone().ok_or_else(|| list_err(m, v))?,
                offsets,
                Arc::new(UInt8Array::from(bytes)),
                None,
            ))
        }
        VectorKind::EmbeddingList => {
            let dim = v.dim.unwrap_or(0);
            let zeros = vec![0.0f32; dim];
            let mut rows = Vec::with_capacity(points.len());
            for p in points {
                rows.push(match p.vectors.get(&v.source) {
                    Some(VectorValue::Multi(list)) => {
                        if let Some(bad) = list.iter().find(|x| x.len() != dim) {
                            return Err(dim_err(m, p, v, bad.len()));
                        }
                        list.iter().map(Vec::as_slice).collect()
                    }
                    Some(VectorValue::Dense(d)) if d.len() == dim => vec![d.as_slice()],
                    Some(_) => {
                        return Err(Error::Mapping {
                            collection: m.source.clone(),
                            message: format!(
                                "point {}: vector '{}' is not the multivector the mapping expects",
                                p.id, v.source
                            ),
                        });
                    }
                    None if m.missing_vector == MissingVector::Zeros => vec![zeros.as_slice()],
                    None => {
                        return Err(Error::Mapping {
                            collection: m.source.clone(),
                            message: format!(
                                "point {} has no multivector '{}' (missing_vector = error)",
                                p.id, v.source
                            ),
                        });
                    }
                });
            }
            super::embedding_list::column(rows.into_iter(), dim)
        }
        VectorKind::SparseFloatVector => {
            let mut b = StringBuilder::with_capacity(points.len(), points.len() * 64);
            for p in points {
                match p.vectors.get(&v.source) {
                    Some(VectorValue::Sparse { indices, values }) => {
                        b.append_value(sparse_json(indices, values))
                    }
                    None if m.missing_vector == MissingVector::Zeros => b.append_value("{}"),
                    _ => {
                        return Err(Error::Mapping {
                            collection: m.source.clone(),
                            message: format!(
                                "point {} has no sparse vector '{}' (missing_vector = error)",
                                p.id, v.source
                            ),
                        });
                    }
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// Converts points to one record batch, column by column as [`columns`] lays them out.
/// Points must already be in the staged order.
pub fn to_batch(points: &[Point], m: &CollectionMapping, schema: &SchemaRef) -> Result<Converted> {
    let sorted = sort_points(points, m)?;
    let points = sorted.kept.as_slice();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, c) in columns(m).iter().enumerate() {
        cols.push(match c.kind {
            ColumnKind::Id(_) => id_column(points, m)?,
            ColumnKind::Vector(v) => {
                let item = match schema.field(i).data_type() {
                    DataType::List(f) => Some(f.clone()),
                    _ => None,
                };
                vector_column(points, v, m, item)?
            }
            ColumnKind::Scalar(f) => scalar_column(&m.source, f, points)?,
            ColumnKind::Meta => {
                let bytes = sorted.metas.iter().map(String::len).sum();
                let mut b = StringBuilder::with_capacity(points.len(), bytes);
                for text in &sorted.metas {
                    b.append_value(text);
                }
                Arc::new(b.finish())
            }
        });
    }
    let batch = RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| Error::format(format!("collection {}", m.source), e))?;
    Ok(Converted {
        batch,
        set_aside: sorted.set_aside,
        zero_cosine: sorted.zero_cosine,
        empty_sparse: sorted.empty_sparse,
    })
}

fn dim_err(m: &CollectionMapping, p: &Point, v: &VectorField, got: usize) -> Error {
    Error::Mapping {
        collection: m.source.clone(),
        message: format!(
            "point {}: vector '{}' has {got} values, the collection says {}",
            p.id,
            v.source,
            v.dim.unwrap_or(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_escaping_is_reversible() {
        let statics = ["id", "vector", "text"];
        for k in [
            "id", "id_", "id__", "vector", "$meta", "$meta_", "title", "x_", "text", "ids",
        ] {
            let e = escape_key(k, &statics);
            assert_eq!(unescape_key(&e, &statics), k, "key {k}");
            assert!(
                !statics.contains(&e.as_ref()) && e != "$meta",
                "escaped {k} still clashes"
            );
        }
        assert_eq!(escape_key("id", &statics), "id_");
        assert_eq!(escape_key("title", &statics), "title");
    }

    /// The `$meta` object the text must serialise: the payload copied, filtered and escaped.
    fn meta_object(
        payload: &Map<String, Value>,
        m: &CollectionMapping,
        statics: &[&str],
    ) -> Map<String, Value> {
        payload
            .iter()
            .filter(|(k, v)| {
                let dropped_null = m.null_values == NullPolicy::Drop && v.is_null();
                !dropped_null && !m.scalars.iter().any(|s| s.takes_payload_key(k))
            })
            .map(|(k, v)| (escape_key(k, statics).into_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn meta_text_is_the_text_of_the_meta_object() {
        let payload = serde_json::json!({"z": 1, "id": "x", "n": null, "é\"\n": [1.5, {"b": null}],
            "$meta": {"k": 18446744073709551615u64}, "id_": true});
        let payload = payload.as_object().unwrap();
        let statics = ["id", "vector"];
        for nulls in [NullPolicy::Keep, NullPolicy::Drop] {
            let mut m = crate::transform::mapping::test_mapping(
                crate::model::Distance::Cosine,
                IdKind::Int64,
            );
            m.null_values = nulls;
            let want =
                serde_json::to_string(&Value::Object(meta_object(payload, &m, &statics))).unwrap();
            assert_eq!(meta_text(payload, &m, &statics).unwrap(), want);
        }
    }

    #[test]
    fn sparse_json_is_milvus_shape() {
        assert_eq!(
            sparse_json(&[1, 5], &[0.5, 2.25]),
            r#"{"indices":[1,5],"values":[0.5,2.25]}"#
        );
        assert_eq!(sparse_json(&[], &[]), r#"{"indices":[],"values":[]}"#);
    }
}
