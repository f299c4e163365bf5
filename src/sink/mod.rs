//! Sink: where staged rows go — Milvus / Zilliz Cloud over REST v2 ([`milvus`]: client, import
//! jobs, schema), object storage for the files the import jobs read ([`object_store`]), and
//! Zilliz Cloud volumes ([`zilliz`]).

pub mod bearer_store;
pub mod milvus;
pub mod object_store;
pub mod temp_credentials;
pub mod zilliz;
