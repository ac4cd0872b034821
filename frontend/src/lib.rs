//! hartlm's user-facing side, compiled once per architecture into the launcher: the command
//! line, chat templates, the REPL and the OpenAI-compatible server, sampling, benchmarks and
//! output formats.
//!
//! Everything that depends on the instruction set stays in the tier libraries, reached through
//! the function table `engine` wraps.

pub mod bench;
pub mod chat;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod generate;
pub mod npy;
pub mod progress;
pub mod prompt_cache;
pub mod sampler;
pub mod server;
pub mod stream;
pub mod template;
pub mod tools;

/// The git commit this launcher was built from (`unknown` outside a git checkout).
pub const BUILD_COMMIT: &str = env!("HARTLM_BUILD_COMMIT");

/// The version line `hartlm --version` prints, given the tier that would run.
pub fn version_line(tier: &str) -> String {
    format!("hartlm {} (commit {BUILD_COMMIT}); tier {tier}", env!("CARGO_PKG_VERSION"))
}
