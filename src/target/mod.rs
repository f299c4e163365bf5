//! Target: Milvus / Zilliz Cloud over REST v2 — schema, upload, bulk import, upserts.

pub mod milvus;
pub mod schema;
pub mod upload;
