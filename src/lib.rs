//! q2z: move Qdrant collections into Milvus / Zilliz Cloud through a Parquet staging directory.
//!
//! The data flow has one module per stage: [`source`] → [`transform`] → [`stage`] → [`sink`]
//! → [`verify`]; [`export`] and [`import`] drive the two halves, [`migrate`] both at once;
//! [`report`] draws what a stage records into the migration report.

pub mod cli;
pub mod error;
pub mod export;
pub mod http;
pub mod import;
pub mod interrupt;
pub mod migrate;
pub mod model;
pub mod pool;
pub mod progress;
pub mod report;
pub mod scratch;
pub mod sink;
pub mod source;
pub mod stage;
pub mod sync;
pub mod transform;
pub mod verify;
pub mod wait;

#[cfg(test)]
mod fuzz;
