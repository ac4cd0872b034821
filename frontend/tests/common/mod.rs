// What the frontend's integration tests share: the command line run in-process against this
// build's engine (its function table, without dlopen), and fixture paths.

use std::path::PathBuf;

use hartlm_frontend::cli::{self, Defaults};
use hartlm_frontend::engine::Engine;

/// The engine of this build (the `host` tier), through its function table.
pub fn engine() -> Engine {
    Engine::new(hartlm_engine::api::table(hartlm_engine::tier::Launch::local())).expect("ABI matches")
}

/// `hartlm <args>` in this process; its exit status.
// Not every test file that includes this module runs commands.
#[allow(dead_code)]
pub fn hartlm(args: &[&str]) -> i32 {
    let argv = std::iter::once("hartlm").chain(args.iter().copied()).map(Into::into).collect();
    match cli::parse(argv) {
        Ok(parsed) => {
            let e = engine();
            cli::run(parsed, &e, &Defaults { tier_id: e.tier_id(), ..Defaults::default() })
        }
        Err(status) => status,
    }
}

/// The shared fixture models directory (`../shared/fixtures/models`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/models")
}
