//! The release manifest: what a tarball holds (launcher, one library per tier) and where it
//! came from. Versioned by `schema_version`; readers reject versions they do not know.

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub name: String,
    pub version: String,
    pub git_commit: String,
    /// Seconds since the epoch used for every archive timestamp.
    pub source_date_epoch: u64,
    pub target: String,
    pub launcher: FileRecord,
    pub tiers: Vec<TierRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRecord {
    pub id: String,
    pub rank: u32,
    pub rustc_features: Vec<String>,
    pub requires: Vec<String>,
    pub min_vlen: Option<u32>,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// The release-wide manifest beside the tarballs: one entry per archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    pub schema_version: u32,
    pub name: String,
    pub version: String,
    pub git_commit: String,
    pub source_date_epoch: u64,
    pub archives: Vec<ArchiveRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub file: String,
    pub target: String,
    pub sha256: String,
    pub size: u64,
    pub manifest: Manifest,
}

/// Pretty JSON with a trailing newline; field order is the struct order, so output is stable.
pub fn to_json<T: Serialize>(value: &T) -> crate::Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(value)?;
    v.push(b'\n');
    Ok(v)
}
