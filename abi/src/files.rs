//! Reading files hartlm did not write (models, prompts, caches, manifests) without being
//! stalled or flooded: only regular files, opened without blocking, read up to a cap.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What a non-regular file is, for error messages ("is a FIFO").
pub fn kind_name(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// Opens `path` for reading with `O_NONBLOCK` (a FIFO then opens without waiting for a writer)
/// and refuses anything that is not a regular file, naming what it is.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, not a regular file", kind_name(ft)),
        ));
    }
    Ok(file)
}

/// The bytes of the regular file `path`, refusing files larger than `max` bytes.
pub fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("is larger than {max} bytes")));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_oversized_files_are_refused() {
        let e = read_capped(Path::new("/dev/zero"), 16).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_capped(Path::new("/"), 16).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_capped(&p, 10).unwrap(), b"0123456789");
        assert_eq!(read_capped(&p, 9).unwrap_err().to_string(), "is larger than 9 bytes");
        std::fs::write(&p, b"\xff").unwrap();
        assert_eq!(read_text_capped(&p, 9).unwrap_err().to_string(), "is not UTF-8 text");
    }
}
