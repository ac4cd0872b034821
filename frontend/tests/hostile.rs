// Hostile command lines and inputs (issue 22): each gets a one-line error and exit 1 or 2,
// never a panic, an abort, a hang or a wrapped size.

use std::path::PathBuf;

mod common;
use common::{fixtures, hartlm};

/// A FIFO given as the model opens without waiting for a writer and is refused by name, as are
/// directories and devices; the GGUF reader says what the path is.
#[test]
fn models_that_are_not_regular_files_are_refused_without_blocking() {
    let dir = std::env::temp_dir().join(format!("hartlm-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("model.gguf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let t0 = std::time::Instant::now();
    for path in [&fifo, &dir, &PathBuf::from("/dev/zero")] {
        let err = hartlm_engine::gguf::GgufFile::open(path).err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("not a model file"), "{text}");
        assert_ne!(hartlm(&["info", "-m", path.to_str().unwrap()]), 0);
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "nothing blocked");
    let err = hartlm_engine::gguf::GgufFile::open(&fifo).err().expect("refused").to_string();
    assert!(err.contains("is a FIFO"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sizes that used to wrap or exhaust memory: `run -n u64::MAX` (past the context check),
/// `bench -p 2^40` (4 TiB of buffers on a model without attention), `bench-kernel ssm-conv
/// -T 2^63` (an overflowing buffer size).
#[test]
fn huge_counts_are_refused_not_wrapped() {
    let m = fixtures().join("micro-q4_0.gguf");
    let m = m.to_str().unwrap();
    assert_eq!(hartlm(&["run", "-m", m, "-p", "hello", "-n", "18446744073709551615"]), 1);
    assert_ne!(hartlm(&["bench", "-m", m, "-p", "1099511627776", "-n", "0", "-r", "1"]), 0);
    assert_ne!(hartlm(&["bench-kernel", "ssm-conv", "-T", "9223372036854775808", "-r", "1"]), 0);
    assert_ne!(hartlm(&["bench-kernel", "ssm-conv", "-c", "18446744073709551615", "-T", "2", "-r", "1"]), 0);
}
