//! Stage: the portable staging directory (Parquet chunks + manifest), its lock and checks.

pub mod import_state;
pub mod lock;
pub mod manifest;
pub mod reader;
pub mod writer;
