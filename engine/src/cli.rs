//! The command line behind the launcher (`hartlm <command>`), parsed with clap.
//! `hartlm cpu` is answered by the launcher itself and never reaches this library.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::tier::Launch;

#[derive(Parser)]
#[command(
    name = "hartlm",
    version,
    about = "LLM inference for RISC-V and x86-64, built per ISA tier",
    after_help = "Also: `hartlm cpu [--json]` shows the detected CPU and which tier runs.\n\
                  Environment: HARTLM_TIER=<id> forces a tier; HARTLM_LIB_DIR overrides lib/."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every kernel of the loaded tier against its scalar reference.
    Selftest {
        /// Seed for the random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Runs one command line; returns the exit status (2 for usage errors, as clap does).
pub fn main(args: Vec<OsString>, launch: &Launch) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Selftest { seed } => crate::selftest::command(seed, launch),
    }
}
