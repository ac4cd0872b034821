//! What a release tarball carries for its users besides the binaries: the user README
//! (release/README.md), shell completions and a man page generated from the launcher's CLI.

use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

use hartlm_abi::atomic::write_atomic;

/// The user-facing documents: (path inside the archive, contents), generated from
/// `hartlm_frontend::cli::Cli` (the definition the launcher parses with) and release/README.md.
pub fn render(ws_root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let readme = std::fs::read(ws_root.join("release/README.md")).context("reading release/README.md")?;
    let mut out = vec![("README.md".to_string(), readme)];
    let shells = [
        (clap_complete::Shell::Bash, "share/bash-completion/completions/hartlm"),
        (clap_complete::Shell::Zsh, "share/zsh/site-functions/_hartlm"),
        (clap_complete::Shell::Fish, "share/fish/vendor_completions.d/hartlm.fish"),
    ];
    for (shell, inside) in shells {
        let mut cmd = hartlm_frontend::cli::Cli::command();
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd, "hartlm", &mut bytes);
        out.push((inside.to_string(), bytes));
    }
    // hartlm(1), and hartlm-<command>(1) for each command it lists under SUBCOMMANDS.
    // Building names the commands `hartlm-<command>`, as clap_mangen::generate_to does.
    let mut top = hartlm_frontend::cli::Cli::command().disable_help_subcommand(true);
    top.build();
    let subs = top.get_subcommands().filter(|s| !s.is_hide_set()).cloned();
    for cmd in std::iter::once(top.clone()).chain(subs) {
        let man = clap_mangen::Man::new(cmd);
        let name = man.get_filename();
        let mut page = Vec::new();
        man.render(&mut page).with_context(|| format!("rendering {name}"))?;
        out.push((format!("share/man/man1/{name}"), page));
    }
    Ok(out)
}

/// Writes [`render`]'s files under `dir` (the archive plan reads files), returning
/// (path inside the archive, file written).
pub fn write(ws_root: &Path, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut written = Vec::new();
    for (inside, bytes) in render(ws_root)? {
        let path = dir.join(&inside);
        std::fs::create_dir_all(path.parent().context("document path has a parent")?)?;
        write_atomic(&path, &bytes)?;
        written.push((inside, path));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        render(&root).unwrap().into_iter().map(|(p, b)| (p, String::from_utf8(b).unwrap())).collect()
    }

    fn doc(name: &str) -> String {
        docs().into_iter().find(|(p, _)| p.ends_with(name)).unwrap().1
    }

    /// Completions know every command and the flags users type most.
    #[test]
    fn completions_cover_every_command() {
        for file in ["completions/hartlm", "_hartlm", "hartlm.fish"] {
            let text = doc(file);
            for word in ["cpu", "run", "chat", "serve", "bench", "tokenize", "ctx-size", "api-key"] {
                assert!(text.contains(word), "{file} lacks {word}");
            }
        }
    }

    /// Every SUBCOMMANDS reference of hartlm(1) is a page of its own.
    #[test]
    fn every_command_has_its_page() {
        let docs = docs();
        for sub in ["cpu", "run", "chat", "serve", "bench", "tokenize", "quantize"] {
            let page = docs.iter().find(|(p, _)| *p == format!("share/man/man1/hartlm-{sub}.1"));
            let (_, text) = page.unwrap_or_else(|| panic!("no hartlm-{sub}.1"));
            assert!(text.contains(&format!(".TH hartlm-{sub} 1")), "{text:.300}");
        }
    }

    #[test]
    fn man_page_names_the_program_and_its_commands() {
        let man = doc("man1/hartlm.1");
        assert!(man.starts_with(".ie") || man.contains(".TH hartlm 1"), "{}", &man[..200.min(man.len())]);
        for word in ["serve", "chat", "HARTLM_TIER", "Exit status"] {
            assert!(man.contains(word), "man page lacks {word}");
        }
    }

    /// The user README is short and says what the reader needs; the developer
    /// README stays in the repository.
    #[test]
    fn user_readme_covers_install_to_serve() {
        let readme = doc("README.md");
        assert!(readme.len() < 12_000, "{} bytes", readme.len());
        for word in [
            "install.sh",
            "hartlm cpu",
            "hartlm run",
            "hartlm chat",
            "hartlm serve",
            "HARTLM_TIER",
            "glibc 2.34",
            "Exit status",
            ".gguf",
        ] {
            assert!(readme.contains(word), "user README lacks {word}");
        }
    }
}
