// What the engine's integration tests share: the command line run in-process, and fixture paths.

use std::path::PathBuf;

/// `hartlm <args>` through the engine's CLI in this process; its exit status.
pub fn hartlm(args: &[&str]) -> i32 {
    let argv = std::iter::once("hartlm").chain(args.iter().copied()).map(Into::into).collect();
    hartlm_engine::cli::main(argv, &hartlm_engine::tier::Launch::local())
}

/// The shared fixture models directory (`../shared/fixtures/models`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/models")
}
