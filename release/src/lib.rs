//! Packaging for hartlm releases: byte-reproducible tarballs, the versioned manifest and
//! SHA256SUMS, and publishing them (`publish` plans, `github` executes).

pub mod archive;
pub mod github;
pub mod manifest;
pub mod publish;
pub mod sums;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("archive entry {0:?} is not a relative path without `..`")]
    BadEntryPath(String),
    #[error("archive entry {0:?} appears twice")]
    DuplicateEntry(String),
    #[error("cannot encode manifest: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
