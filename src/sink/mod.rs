//! Sink: where staged rows go — Milvus / Zilliz Cloud over REST v2 ([`milvus`]: client, import
//! jobs, schema; each request through one [`endpoint`]), object storage for the files the
//! import jobs read ([`object_store`]), and Zilliz Cloud's control plane and volumes
//! ([`zilliz`]).

pub mod bearer_store;
pub mod endpoint;
pub mod milvus;
pub mod object_store;
pub mod temp_credentials;
pub mod zilliz;
