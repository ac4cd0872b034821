//! The one way hartlm writes a file (engine outputs, the launcher's calibration cache, release
//! artifacts): never half-written, never through a link someone planted at a temporary name.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `path` through `fill`: into a temporary file created exclusively, with a random name,
/// in the same directory (created if missing); flushed to disk, given mode 0644, renamed over
/// `path`, then the directory synced. On any error the temporary file is removed and `path` is
/// left as it was.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    let mut w = BufWriter::new(tmp.reopen()?);
    fill(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the directory entry is; not every filesystem allows syncing one.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_atomic_with`] for bytes already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed when the test ends.
    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("hartlm-atomic-").tempdir().unwrap()
    }

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let scratch = scratch();
        let dir = scratch.path();
        let p = dir.join("out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1, "only the output remains");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_removes_the_temporary() {
        let scratch = scratch();
        let dir = scratch.path();
        let p = dir.join("out.txt");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
    }

    #[test]
    fn a_file_in_the_way_of_the_directory_fails_cleanly() {
        let scratch = scratch();
        let dir = scratch.path();
        std::fs::write(dir.join("file"), b"x").unwrap();
        assert!(write_atomic(&dir.join("file").join("sub.txt"), b"y").is_err());
    }
}
