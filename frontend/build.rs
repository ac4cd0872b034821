//! Records the git commit the launcher is built from, for `--version` and benchmark rows.
//! HARTLM_BUILD_COMMIT overrides it (builds from a source tarball have no .git).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HARTLM_BUILD_COMMIT");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for f in [".git/HEAD", ".git/logs/HEAD"] {
        if root.join(f).exists() {
            println!("cargo:rerun-if-changed={}", root.join(f).display());
        }
    }
    let commit = std::env::var("HARTLM_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=HARTLM_BUILD_COMMIT={commit}");
}
