//! The staged-row layout, owned in one place: which columns a collection's Parquet files hold,
//! in which order, with which Arrow type, and which Milvus field each becomes. The writer
//! (`transform::batch`), the reader (`stage::reader`) and the collection schema
//! (`sink::milvus::schema`) all take it from here.

use crate::transform::mapping::{CollectionMapping, IdKind, META, VectorField, VectorKind};
use crate::transform::scalars::ScalarField;
use arrow::datatypes::{DataType, Field};
use serde_json::{Value, json};

/// What a staged column holds.
#[derive(Debug, Clone, Copy)]
pub enum ColumnKind<'a> {
    /// The primary key.
    Id(IdKind),
    /// A vector field.
    Vector(&'a VectorField),
    /// A payload key promoted to a typed field.
    Scalar(&'a ScalarField),
    /// The dynamic field: the rest of the payload as a JSON object.
    Meta,
}

/// One column of the staged rows (its name is the Milvus field name).
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'a str,
    pub kind: ColumnKind<'a>,
}

/// The columns of a collection's staged rows, in file order: id, vectors, promoted scalars,
/// `$meta`.
pub fn columns(m: &CollectionMapping) -> Vec<Column<'_>> {
    let mut out = vec![Column {
        name: &m.id_field,
        kind: ColumnKind::Id(m.id_kind),
    }];
    out.extend(m.vectors.iter().map(|v| Column {
        name: &v.field,
        kind: ColumnKind::Vector(v),
    }));
    out.extend(m.scalars.iter().map(|s| Column {
        name: &s.field,
        kind: ColumnKind::Scalar(s),
    }));
    out.push(Column {
        name: META,
        kind: ColumnKind::Meta,
    });
    out
}

/// `list<item>` with the item field as Milvus import reads it (named `item`, nullable: Arrow's
/// own `DataType::new_list`, which `embedding_list` builds its nested lists with too).
pub(crate) fn list_of(item: DataType) -> DataType {
    DataType::new_list(item, true)
}

impl Column<'_> {
    /// The Arrow field Milvus import reads for it: `list<float32>` dense vectors, float16 as
    /// `list<uint8>` little-endian bytes, JSON text for sparse vectors and `$meta`, `Utf8`
    /// (never `LargeUtf8`).
    pub fn arrow_field(&self) -> Field {
        match self.kind {
            ColumnKind::Id(IdKind::Int64) => Field::new(self.name, DataType::Int64, false),
            ColumnKind::Id(IdKind::VarChar) => Field::new(self.name, DataType::Utf8, false),
            ColumnKind::Vector(v) => {
                let dt = match v.kind {
                    VectorKind::FloatVector => list_of(DataType::Float32),
                    VectorKind::Float16Vector => list_of(DataType::UInt8),
                    VectorKind::SparseFloatVector => DataType::Utf8,
                    VectorKind::EmbeddingList => super::embedding_list::arrow_type(),
                };
                Field::new(self.name, dt, false)
            }
            ColumnKind::Scalar(s) => Field::new(self.name, s.arrow_type(), s.nullable),
            ColumnKind::Meta => Field::new(self.name, DataType::Utf8, false),
        }
    }

    /// The field of the `collections/create` schema (`None` for `$meta`, which is the dynamic
    /// field Milvus makes itself).
    pub fn milvus_field(&self, m: &CollectionMapping) -> Option<Value> {
        Some(match self.kind {
            ColumnKind::Id(IdKind::Int64) => {
                json!({"fieldName": self.name, "dataType": "Int64", "isPrimary": true})
            }
            ColumnKind::Id(IdKind::VarChar) => json!({
                "fieldName": self.name, "dataType": "VarChar", "isPrimary": true,
                "elementTypeParams": {"max_length": m.id_max_length}
            }),
            // An Array of Structs goes to the schema's `structFields` (see schema.rs).
            ColumnKind::Vector(v) if v.kind == VectorKind::EmbeddingList => return None,
            ColumnKind::Vector(v) => {
                let mut f = json!({"fieldName": self.name, "dataType": v.kind.milvus_name()});
                if v.kind != VectorKind::SparseFloatVector {
                    f["elementTypeParams"] = json!({"dim": v.dim.unwrap_or(0)});
                }
                f
            }
            ColumnKind::Scalar(s) => s.milvus_field(),
            ColumnKind::Meta => return None,
        })
    }
}
