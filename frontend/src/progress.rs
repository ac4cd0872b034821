//! Progress on stderr for slow steps (loading a model, a long prompt), only when stderr is a
//! terminal: pipes and logs get no carriage-return lines.

use std::io::{IsTerminal, Write};

pub struct Progress {
    on: bool,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { on: std::io::stderr().is_terminal(), shown: std::cell::Cell::new(false) }
    }

    /// Replaces the progress line with `text`.
    pub fn show(&self, text: &str) {
        if self.on {
            self.shown.set(true);
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K{}", hartlm_abi::text::escape_controls(text));
            let _ = e.flush();
        }
    }

    /// Removes the progress line, if one was shown.
    pub fn clear(&self) {
        if self.shown.replace(false) {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}
