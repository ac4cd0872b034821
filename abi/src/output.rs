//! Standard output for the launcher and the engines: a reader that closes the pipe early
//! (`hartlm selftest | head -1`) ends the program quietly with status 0, as it would for `cat`.

use std::io::Write;

/// Writes formatted text to stdout. When the reader has gone (EPIPE) the process exits 0 at once,
/// since nobody is left to read the rest; any other write error exits 1 with one line.
pub fn print(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("hartlm: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`print`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::print(format_args!($($arg)*)) };
}

/// `println!` through [`print`].
#[macro_export]
macro_rules! sayln {
    () => { $crate::output::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::print(format_args!("{}\n", format_args!($($arg)*))) };
}
