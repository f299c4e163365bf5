//! Reads staged Parquet chunks back as Milvus rows (for upserts, verification and tests).

use crate::error::{Error, Result};
use crate::model::f32_json;
use crate::transform::mapping::{CollectionMapping, META, VectorKind};
use crate::transform::scalars::ScalarKind;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Float64Type, Int64Type, UInt8Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};
use std::path::Path;

/// One staged row as a Milvus REST row: `id`, vector fields (dense as float arrays — float16
/// decoded from its bytes —, sparse as `{"indices","values"}`), and `$meta` as an object.
pub type Row = Map<String, Value>;

/// Reads every row of a chunk file, in order, calling `f` with batches of rows.
pub fn for_each_batch(
    path: &Path,
    m: &CollectionMapping,
    batch_rows: usize,
    mut f: impl FnMut(Vec<Row>) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let ctx = || path.display().to_string();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::format(ctx(), e))?
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| Error::format(ctx(), e))?;
    for batch in reader {
        let batch = batch.map_err(|e| Error::format(ctx(), e))?;
        let n = batch.num_rows();
        let mut rows: Vec<Row> = (0..n).map(|_| Map::new()).collect();
        let id = batch
            .column_by_name(&m.id_field)
            .ok_or_else(|| Error::format(ctx(), format!("no column '{}'", m.id_field)))?;
        if let Some(a) = id.as_primitive_opt::<Int64Type>() {
            for (i, r) in rows.iter_mut().enumerate() {
                r.insert(m.id_field.clone(), Value::from(a.value(i)));
            }
        } else if let Some(a) = id.as_string_opt::<i32>() {
            for (i, r) in rows.iter_mut().enumerate() {
                r.insert(m.id_field.clone(), Value::from(a.value(i)));
            }
        } else {
            return Err(Error::format(ctx(), "id column is neither Int64 nor Utf8"));
        }
        for v in &m.vectors {
            let col = batch
                .column_by_name(&v.field)
                .ok_or_else(|| Error::format(ctx(), format!("no column '{}'", v.field)))?;
            match v.kind {
                VectorKind::FloatVector => {
                    let list = col.as_list_opt::<i32>().ok_or_else(|| {
                        Error::format(ctx(), format!("'{}' is not list<float32>", v.field))
                    })?;
                    for (i, r) in rows.iter_mut().enumerate() {
                        let vals = list.value(i);
                        let vals = vals.as_primitive_opt::<Float32Type>().ok_or_else(|| {
                            Error::format(ctx(), format!("'{}' is not list<float32>", v.field))
                        })?;
                        r.insert(
                            v.field.clone(),
                            Value::Array(vals.values().iter().map(|x| f32_json(*x)).collect()),
                        );
                    }
                }
                VectorKind::Float16Vector => {
                    let list = col.as_list_opt::<i32>().ok_or_else(|| {
                        Error::format(ctx(), format!("'{}' is not list<uint8>", v.field))
                    })?;
                    for (i, r) in rows.iter_mut().enumerate() {
                        let vals = list.value(i);
                        let bytes = vals
                            .as_primitive_opt::<UInt8Type>()
                            .ok_or_else(|| {
                                Error::format(ctx(), format!("'{}' is not list<uint8>", v.field))
                            })?
                            .values();
                        let floats = bytes
                            .chunks_exact(2)
                            .map(|b| f32_json(half::f16::from_le_bytes([b[0], b[1]]).to_f32()))
                            .collect();
                        r.insert(v.field.clone(), Value::Array(floats));
                    }
                }
                VectorKind::SparseFloatVector => {
                    let s = col.as_string_opt::<i32>().ok_or_else(|| {
                        Error::format(ctx(), format!("'{}' is not utf8", v.field))
                    })?;
                    for (i, r) in rows.iter_mut().enumerate() {
                        let parsed: Value = serde_json::from_str(s.value(i))
                            .map_err(|e| Error::format(ctx(), e))?;
                        r.insert(v.field.clone(), parsed);
                    }
                }
            }
        }
        for f in &m.scalars {
            let col = batch
                .column_by_name(&f.field)
                .ok_or_else(|| Error::format(ctx(), format!("no column '{}'", f.field)))?;
            let json = f.kind == ScalarKind::Json;
            for (i, r) in rows.iter_mut().enumerate() {
                let v = cell_json(col.as_ref(), i, json).map_err(|e| Error::format(ctx(), e))?;
                r.insert(f.field.clone(), v);
            }
        }
        if let Some(meta) = batch.column_by_name(META) {
            let s = meta
                .as_string_opt::<i32>()
                .ok_or_else(|| Error::format(ctx(), "$meta is not utf8"))?;
            for (i, r) in rows.iter_mut().enumerate() {
                if s.is_null(i) {
                    return Err(Error::format(ctx(), format!("row {i}: null $meta")));
                }
                let parsed: Value =
                    serde_json::from_str(s.value(i)).map_err(|e| Error::format(ctx(), e))?;
                r.insert(META.to_string(), parsed);
            }
        }
        f(rows)?;
    }
    Ok(())
}

/// One cell of a promoted scalar column as JSON (`null` for a null cell; `json`: the text is
/// JSON to parse).
fn cell_json(col: &dyn Array, i: usize, json: bool) -> std::result::Result<Value, String> {
    if col.is_null(i) {
        return Ok(Value::Null);
    }
    if let Some(a) = col.as_primitive_opt::<Int64Type>() {
        return Ok(a.value(i).into());
    }
    if let Some(a) = col.as_primitive_opt::<Float64Type>() {
        return Ok(serde_json::Number::from_f64(a.value(i)).map_or(Value::Null, Value::Number));
    }
    if let Some(a) = col.as_boolean_opt() {
        return Ok(a.value(i).into());
    }
    if let Some(a) = col.as_string_opt::<i32>() {
        return if json {
            serde_json::from_str(a.value(i)).map_err(|e| e.to_string())
        } else {
            Ok(a.value(i).into())
        };
    }
    if let Some(l) = col.as_list_opt::<i32>() {
        let items = l.value(i);
        return (0..items.len())
            .map(|j| cell_json(items.as_ref(), j, false))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    Err(format!("unexpected column type {}", col.data_type()))
}
