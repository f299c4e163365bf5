//! q2z: move Qdrant collections into Milvus / Zilliz Cloud through a Parquet staging directory.
//!
//! The data flow has one module per stage: [`source`] → [`transform`] → [`stage`] → [`target`]
//! → [`verify`]; [`export`] and [`import`] drive the two halves.

pub mod cli;
pub mod error;
pub mod export;
pub mod http;
pub mod import;
pub mod interrupt;
pub mod model;
pub mod overlap;
pub mod progress;
pub mod source;
pub mod stage;
pub mod target;
pub mod transform;
pub mod verify;
