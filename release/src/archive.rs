//! Byte-reproducible `.tar.gz`: sorted entries, fixed mtime, uid/gid 0, fixed modes, and a gzip
//! header with mtime 0 and no file name, so the same inputs always give the same bytes.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};

use crate::{Error, Result};

/// One regular file of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path inside the archive, `/`-separated.
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl Entry {
    pub fn file(path: impl Into<String>, contents: Vec<u8>) -> Self {
        Entry { path: path.into(), mode: 0o644, contents }
    }
    pub fn executable(path: impl Into<String>, contents: Vec<u8>) -> Self {
        Entry { path: path.into(), mode: 0o755, contents }
    }
}

/// A GNU header with fixed ownership; the name is set by `append_data` (long paths get GNU
/// extension records).
fn header(size: u64, mode: u32, mtime: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Builds a gzip-compressed tar of `entries` under the top directory `root`, with every
/// directory listed explicitly and everything sorted by path.
pub fn tar_gz(root: &str, entries: &[Entry], mtime: u64) -> Result<Vec<u8>> {
    let mut files: BTreeMap<String, &Entry> = BTreeMap::new();
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    dirs.insert(format!("{root}/"), ());
    for e in entries {
        let bad = e.path.is_empty()
            || e.path.starts_with('/')
            || e.path.split('/').any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            return Err(Error::BadEntryPath(e.path.clone()));
        }
        let full = format!("{root}/{}", e.path);
        let mut parent = full.as_str();
        while let Some(i) = parent.rfind('/') {
            parent = &parent[..i];
            dirs.insert(format!("{parent}/"), ());
        }
        if files.insert(full, e).is_some() {
            return Err(Error::DuplicateEntry(e.path.clone()));
        }
    }
    let mut all: BTreeMap<&str, Option<&Entry>> = BTreeMap::new();
    for d in dirs.keys() {
        all.insert(d, None);
    }
    for (p, e) in &files {
        all.insert(p, Some(e));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in all {
        let io = |e| Error::Io { path: path.into(), source: e };
        match entry {
            None => {
                let mut h = header(0, 0o755, mtime, tar::EntryType::Directory);
                builder.append_data(&mut h, path, std::io::empty()).map_err(io)?;
            }
            Some(e) => {
                let mut h = header(e.contents.len() as u64, e.mode, mtime, tar::EntryType::Regular);
                builder.append_data(&mut h, path, e.contents.as_slice()).map_err(io)?;
            }
        }
    }
    let tar_bytes = builder.into_inner().map_err(|e| Error::Io { path: root.into(), source: e })?;
    let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::best());
    gz.write_all(&tar_bytes).map_err(|e| Error::Io { path: root.into(), source: e })?;
    gz.finish().map_err(|e| Error::Io { path: root.into(), source: e })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn list(bytes: &[u8]) -> Vec<(String, u32, u64, Vec<u8>)> {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn same_entries_in_any_order_give_identical_bytes() {
        let a = vec![
            Entry::executable("bin/hartlm", b"launcher".to_vec()),
            Entry::file("lib/libhartlm-a.so", vec![1; 1000]),
            Entry::file("README.md", b"hi".to_vec()),
        ];
        let mut b = a.clone();
        b.reverse();
        let x = tar_gz("hartlm-1", &a, 1_700_000_000).unwrap();
        let y = tar_gz("hartlm-1", &b, 1_700_000_000).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, tar_gz("hartlm-1", &a, 1_700_000_001).unwrap(), "mtime must matter");
        // gzip header: magic, method, flags (no name), mtime 0.
        assert_eq!(&x[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn entries_are_sorted_with_directories_and_fixed_metadata() {
        let bytes = tar_gz(
            "r",
            &[Entry::file("lib/z.so", b"z".to_vec()), Entry::executable("bin/hartlm", b"x".to_vec())],
            42,
        )
        .unwrap();
        let l = list(&bytes);
        let names: Vec<_> = l.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["r/", "r/bin/", "r/bin/hartlm", "r/lib/", "r/lib/z.so"]);
        assert_eq!(l[2].1, 0o755);
        assert_eq!(l[4].1, 0o644);
        assert!(l.iter().all(|e| e.2 == 42));
        assert_eq!(l[4].3, b"z");
    }

    #[test]
    fn rejects_escaping_and_duplicate_paths() {
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(matches!(tar_gz("r", &[Entry::file(bad, vec![])], 0), Err(Error::BadEntryPath(_))));
        }
        let dup = [Entry::file("a", vec![]), Entry::file("a", vec![1])];
        assert!(matches!(tar_gz("r", &dup, 0), Err(Error::DuplicateEntry(_))));
    }
}
