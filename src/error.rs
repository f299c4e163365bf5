//! The library's error type: each variant says what failed, where, and what to do.

use std::path::PathBuf;
use thiserror::Error;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error q2z reports. Messages never contain secrets.
#[derive(Debug, Error)]
pub enum Error {
    #[error(
        "cannot reach {what} at {url}: {detail}. Check the URL and that the server is running and reachable from this machine"
    )]
    Unreachable {
        what: &'static str,
        url: String,
        detail: String,
    },

    #[error(
        "the TLS handshake with {what} at {url} failed: {detail}. If the server uses a private CA or a self-signed certificate, point SSL_CERT_FILE at the CA bundle (PEM); if it speaks plain HTTP, use an http:// URL"
    )]
    Tls {
        what: &'static str,
        url: String,
        detail: String,
    },

    #[error(
        "{what} at {url} rejected the credentials (HTTP {status}). Pass the right key with {flag}"
    )]
    Auth {
        what: &'static str,
        url: String,
        status: u16,
        flag: &'static str,
    },

    #[error("{what} answered {status} for {call}: {message}")]
    Http {
        what: &'static str,
        call: String,
        status: u16,
        message: String,
    },

    #[error("Milvus answered code {code} for {call}: {message}")]
    Milvus {
        call: String,
        code: i64,
        message: String,
    },

    #[error("collection '{name}' does not exist in {source_desc}. Known collections: {known}")]
    UnknownCollection {
        name: String,
        source_desc: String,
        known: String,
    },

    #[error("collection '{collection}': {message}")]
    Mapping { collection: String, message: String },

    #[error("snapshot {path}: {message}")]
    Snapshot { path: PathBuf, message: String },

    #[error("stage directory {path}: {message}")]
    Stage { path: PathBuf, message: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid response from {what} for {call}: {message}")]
    Protocol {
        what: &'static str,
        call: String,
        message: String,
    },

    #[error("parquet/arrow error in {context}: {message}")]
    Format { context: String, message: String },

    #[error("interrupted; run the same command again to continue where it stopped")]
    Interrupted,

    #[error("verification failed: {0}")]
    Mismatch(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps an arrow/parquet error with a context line.
    pub fn format(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Format {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
