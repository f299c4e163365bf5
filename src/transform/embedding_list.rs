//! A Qdrant multivector kept whole (`--multivector struct`): an Array of Structs whose one
//! `FloatVector` sub-field holds each of a point's vectors. Staged as
//! `list<struct<v: list<float32>>>` (the column Milvus importutilv2 `struct_field_reader.go`
//! reads), sent over REST as `[{"v": [..]}, ..]` (httpserver `struct_array_v2.go`
//! `parseStructArrayRow`), and read back in the same shape (`extractStructArrayRow`).

use crate::model::f32_json;
use crate::transform::mapping::EMBEDDING;
use arrow::array::{Array, ArrayRef, AsArray, Float32Array, ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Float32Type};
use serde_json::{Value, json};
use std::sync::Arc;

/// The name Milvus gives the vectors of struct field `field`, for its index and searches:
/// `field[v]` (typeutil.ConcatStructFieldName), and the MaxSim metric over `metric`.
pub fn search_target(field: &str, metric: &str) -> (String, String) {
    (format!("{field}[{EMBEDDING}]"), format!("MAX_SIM_{metric}"))
}

/// The Arrow type: `list<struct<v: list<float32>>>`, the member named by its short name.
pub fn arrow_type() -> DataType {
    DataType::new_list(DataType::Struct(vec![member()].into()), true)
}

/// The struct's one member, `v: list<float32>` (lists as Milvus import reads them: Arrow's
/// `new_list`, an `item` field, nullable).
fn member() -> Field {
    Field::new(
        EMBEDDING,
        DataType::new_list(DataType::Float32, true),
        false,
    )
}

/// Builds the column from each point's vectors (every one of `dim` values; the caller checks).
pub fn column<'a>(rows: impl Iterator<Item = Vec<&'a [f32]>>, dim: usize) -> ArrayRef {
    let mut values: Vec<f32> = Vec::new();
    let mut per_point: Vec<usize> = Vec::new();
    for vectors in rows {
        per_point.push(vectors.len());
        for v in vectors {
            values.extend_from_slice(v);
        }
    }
    let total: usize = per_point.iter().sum();
    let vectors = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        OffsetBuffer::from_lengths(std::iter::repeat_n(dim, total)),
        Arc::new(Float32Array::from(values)),
        None,
    );
    let structs = StructArray::new(
        vec![member()].into(),
        vec![Arc::new(vectors) as ArrayRef],
        None,
    );
    let DataType::List(item) = arrow_type() else {
        unreachable!("arrow_type is a list")
    };
    Arc::new(ListArray::new(
        item,
        OffsetBuffer::from_lengths(per_point),
        Arc::new(structs),
        None,
    ))
}

/// Row `i` of such a column as REST JSON: `[{"v": [floats]}, ..]`; `Err` names what the column
/// is not.
pub fn row_json(col: &dyn Array, i: usize) -> Result<Value, String> {
    let vectors = vectors_of(col, i)?;
    Ok(Value::Array(
        vectors
            .into_iter()
            .map(|v| json!({ EMBEDDING: v.into_iter().map(f32_json).collect::<Vec<_>>() }))
            .collect(),
    ))
}

/// Row `i` of such a column as its vectors.
pub fn vectors_of(col: &dyn Array, i: usize) -> Result<Vec<Vec<f32>>, String> {
    let not = "not a list<struct<v: list<float32>>>";
    let list = col.as_list_opt::<i32>().ok_or(not)?;
    let elems = list.value(i);
    let structs = elems.as_struct_opt().ok_or(not)?;
    let inner = structs
        .column_by_name(EMBEDDING)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or(not)?;
    (0..inner.len())
        .map(|j| {
            let v = inner.value(j);
            let f = v.as_primitive_opt::<Float32Type>().ok_or(not)?;
            Ok(f.values().to_vec())
        })
        .collect()
}

/// The vectors of a REST / staged JSON value `[{"v": [..]}, ..]` (`None`: not that shape).
pub fn from_json(v: &Value) -> Option<Vec<Vec<f32>>> {
    v.as_array()?
        .iter()
        .map(|e| {
            e.get(EMBEDDING)?
                .as_array()?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_reads_back_as_the_vectors_it_was_built_from() {
        let a = [1.0f32, 2.5];
        let b = [-0.125f32, 3.0];
        let c = [7.0f32, 8.0];
        let col = column(vec![vec![&a[..], &b[..]], vec![&c[..]]].into_iter(), 2);
        assert_eq!(col.data_type(), &arrow_type());
        assert_eq!(vectors_of(&col, 0).unwrap(), vec![a.to_vec(), b.to_vec()]);
        let j = row_json(&col, 1).unwrap();
        assert_eq!(j, json!([{"v": [7.0, 8.0]}]));
        assert_eq!(from_json(&j).unwrap(), vec![c.to_vec()]);
        assert!(from_json(&json!([{"w": [1.0]}])).is_none());
    }
}
