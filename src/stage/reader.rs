//! Reads staged Parquet chunks back as Milvus rows (for upserts, verification and tests).

use crate::error::{Error, Result};
use crate::model::f32_json;
use crate::transform::columns::{ColumnKind, columns};
use crate::transform::mapping::{CollectionMapping, META, VectorKind};
use crate::transform::scalars::ScalarKind;
use arrow::array::{Array, AsArray, RecordBatch};
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
    for_each_record_batch(path, m, batch_rows, |_, rows| f(rows))
}

/// Reads every record batch of a staged Parquet file with its rows, in order.
pub fn for_each_record_batch(
    path: &Path,
    m: &CollectionMapping,
    batch_rows: usize,
    mut f: impl FnMut(&RecordBatch, Vec<Row>) -> Result<()>,
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
        let rows = rows_of(&batch, m).map_err(|e| Error::format(ctx(), e))?;
        f(&batch, rows)?;
    }
    Ok(())
}

/// The rows of one record batch, column by column as [`columns`] lays them out (`$meta` may
/// be absent in files of other writers: rows then have none).
pub fn rows_of(
    batch: &RecordBatch,
    m: &CollectionMapping,
) -> std::result::Result<Vec<Row>, String> {
    let mut rows: Vec<Row> = (0..batch.num_rows()).map(|_| Map::new()).collect();
    for c in columns(m) {
        let Some(col) = batch.column_by_name(c.name) else {
            if matches!(c.kind, ColumnKind::Meta) {
                continue;
            }
            return Err(format!("no column '{}'", c.name));
        };
        match c.kind {
            ColumnKind::Id(_) => put_ids(&mut rows, col.as_ref(), c.name)?,
            ColumnKind::Vector(v) => put_vectors(&mut rows, col.as_ref(), c.name, v.kind)?,
            ColumnKind::Scalar(f) => {
                let json = f.kind == ScalarKind::Json;
                for (i, r) in rows.iter_mut().enumerate() {
                    r.insert(c.name.to_string(), cell_json(col.as_ref(), i, json)?);
                }
            }
            ColumnKind::Meta => {
                let s = col.as_string_opt::<i32>().ok_or("$meta is not utf8")?;
                for (i, r) in rows.iter_mut().enumerate() {
                    if s.is_null(i) {
                        return Err(format!("row {i}: null $meta"));
                    }
                    let parsed: Value =
                        serde_json::from_str(s.value(i)).map_err(|e| e.to_string())?;
                    r.insert(META.to_string(), parsed);
                }
            }
        }
    }
    Ok(rows)
}

/// The primary key: Int64 or Utf8.
fn put_ids(rows: &mut [Row], id: &dyn Array, field: &str) -> std::result::Result<(), String> {
    if let Some(a) = id.as_primitive_opt::<Int64Type>() {
        for (i, r) in rows.iter_mut().enumerate() {
            r.insert(field.to_string(), Value::from(a.value(i)));
        }
    } else if let Some(a) = id.as_string_opt::<i32>() {
        for (i, r) in rows.iter_mut().enumerate() {
            r.insert(field.to_string(), Value::from(a.value(i)));
        }
    } else {
        return Err("id column is neither Int64 nor Utf8".into());
    }
    Ok(())
}

/// A vector column: dense as float arrays (float16 decoded from its bytes), sparse as JSON.
fn put_vectors(
    rows: &mut [Row],
    col: &dyn Array,
    field: &str,
    kind: VectorKind,
) -> std::result::Result<(), String> {
    let not = |what: &str| format!("'{field}' is not {what}");
    match kind {
        VectorKind::FloatVector | VectorKind::Float16Vector => {
            let list = col.as_list_opt::<i32>().ok_or_else(|| not("a list"))?;
            for (i, r) in rows.iter_mut().enumerate() {
                let vals = list.value(i);
                let floats: Vec<Value> = if kind == VectorKind::FloatVector {
                    let v = vals
                        .as_primitive_opt::<Float32Type>()
                        .ok_or_else(|| not("list<float32>"))?;
                    v.values().iter().map(|x| f32_json(*x)).collect()
                } else {
                    let v = vals
                        .as_primitive_opt::<UInt8Type>()
                        .ok_or_else(|| not("list<uint8>"))?;
                    v.values()
                        .chunks_exact(2)
                        .map(|b| f32_json(half::f16::from_le_bytes([b[0], b[1]]).to_f32()))
                        .collect()
                };
                r.insert(field.to_string(), Value::Array(floats));
            }
        }
        VectorKind::EmbeddingList => {
            for (i, r) in rows.iter_mut().enumerate() {
                let v = crate::transform::embedding_list::row_json(col, i)
                    .map_err(|e| format!("'{field}' is {e}"))?;
                r.insert(field.to_string(), v);
            }
        }
        VectorKind::SparseFloatVector => {
            let s = col.as_string_opt::<i32>().ok_or_else(|| not("utf8"))?;
            for (i, r) in rows.iter_mut().enumerate() {
                let parsed: Value = serde_json::from_str(s.value(i)).map_err(|e| e.to_string())?;
                r.insert(field.to_string(), parsed);
            }
        }
    }
    Ok(())
}

/// The primary keys of a chunk file, read from its id column alone.
pub fn read_ids(path: &Path, id_field: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for_each_id_batch(path, id_field, 8192, |ids| {
        out.extend(ids);
        Ok(())
    })?;
    Ok(out)
}

/// The primary keys of a chunk file, `batch` at a time, read from its id column alone.
pub fn for_each_id_batch(
    path: &Path,
    id_field: &str,
    batch: usize,
    mut f: impl FnMut(Vec<Value>) -> Result<()>,
) -> Result<()> {
    let ctx = || path.display().to_string();
    for batch in read_columns(path, &[id_field], batch)? {
        let batch = batch.map_err(|e| Error::format(ctx(), e))?;
        let mut rows: Vec<Row> = (0..batch.num_rows()).map(|_| Map::new()).collect();
        put_ids(&mut rows, batch.column(0).as_ref(), id_field)
            .map_err(|e| Error::format(ctx(), e))?;
        f(rows
            .into_iter()
            .filter_map(|mut r| r.remove(id_field))
            .collect())?;
    }
    Ok(())
}

/// Rows of a chunk file whose sparse vector is empty (`{"indices":[],…}`: the point had none)
/// in any of the sparse fields of `m`, read from those columns alone.
pub fn count_empty_sparse(path: &Path, m: &CollectionMapping) -> Result<u64> {
    let fields: Vec<&str> = m
        .vectors
        .iter()
        .filter(|v| v.kind == VectorKind::SparseFloatVector)
        .map(|v| v.field.as_str())
        .collect();
    if fields.is_empty() {
        return Ok(0);
    }
    let ctx = || path.display().to_string();
    let mut n = 0;
    for batch in read_columns(path, &fields, 8192)? {
        let batch = batch.map_err(|e| Error::format(ctx(), e))?;
        let cols = batch
            .columns()
            .iter()
            .map(|c| {
                c.as_string_opt::<i32>()
                    .ok_or_else(|| Error::format(ctx(), "a sparse column that is not utf8"))
            })
            .collect::<Result<Vec<_>>>()?;
        n += (0..batch.num_rows())
            .filter(|&i| cols.iter().any(|c| is_empty_sparse(c.value(i))))
            .count() as u64;
    }
    Ok(n)
}

/// Whether a staged sparse cell holds no entry: `{}` (the point had no such vector) or
/// `transform::batch::sparse_json` of no indices.
fn is_empty_sparse(cell: &str) -> bool {
    cell == "{}" || cell.starts_with(r#"{"indices":[]"#)
}

/// The named columns of a chunk file (in the file's order), in batches of `batch` rows.
fn read_columns(
    path: &Path,
    names: &[&str],
    batch: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let ctx = || path.display().to_string();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::format(ctx(), e))?;
    let schema = builder.parquet_schema();
    let mut leaves = Vec::new();
    for name in names {
        match (0..schema.num_columns()).find(|&i| schema.column(i).name() == *name) {
            Some(i) => leaves.push(i),
            None => return Err(Error::format(ctx(), format!("no column '{name}'"))),
        }
    }
    let mask = parquet::arrow::ProjectionMask::leaves(schema, leaves);
    builder
        .with_projection(mask)
        .with_batch_size(batch)
        .build()
        .map_err(|e| Error::format(ctx(), e))
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
