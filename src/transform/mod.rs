//! Transform: Qdrant config → Milvus mapping, points → Arrow batches.

pub mod batch;
pub mod checks;
pub mod columns;
pub mod embedding_list;
pub mod hints;
pub mod instant;
pub mod json_index;
pub mod mapping;
pub mod scalars;
pub mod wkt;
