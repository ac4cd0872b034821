//! Real chat templates for the template tests, as published: llama.cpp keeps the templates of
//! many models in `models/templates/`, and the pinned llama-cpp-python sdist (the one the
//! llama.cpp comparison builds, sha256-checked) carries them. `fetch-models` extracts the
//! families hartlm runs into target/chat-templates/ with a PROVENANCE.json.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

/// (family, file in llama.cpp's models/templates/, variables to render with)
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    ("Llama-3.1", "meta-llama-Llama-3.1-8B-Instruct.jinja", "{}"),
    ("Llama-3.2", "meta-llama-Llama-3.2-3B-Instruct.jinja", "{}"),
    ("Qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", "{}"),
    ("Qwen3, thinking", "Qwen-Qwen3-0.6B.jinja", "{\"enable_thinking\": true}"),
    ("Qwen3, not thinking", "Qwen-Qwen3-0.6B.jinja", "{\"enable_thinking\": false}"),
    ("LFM2", "LFM2-8B-A1B.jinja", "{}"),
    ("LFM2.5", "LFM2.5-Instruct.jinja", "{}"),
    ("SmolLM3", "HuggingFaceTB-SmolLM3-3B.jinja", "{}"),
];

/// target/chat-templates/, filled from the sdist the first time.
pub fn ensure(sh: &Shell, target_dir: &Path) -> Result<PathBuf> {
    let dir = target_dir.join("chat-templates");
    let provenance = dir.join("PROVENANCE.json");
    if provenance.is_file() {
        return Ok(dir);
    }
    let tarball = crate::llamacpp::sdist(sh, &target_dir.join("llama.cpp"))?;
    let (url, sha256, top) = crate::llamacpp::SDIST_SOURCE;
    let tmp = target_dir.join("chat-templates.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let mut inner: Vec<String> =
        TEMPLATES.iter().map(|(_, f, _)| format!("{top}/vendor/llama.cpp/models/templates/{f}")).collect();
    inner.dedup();
    cmd!(sh, "tar -C {tmp} -xzf {tarball} {inner...}").run().context("extracting the chat templates")?;
    let mut entries = Vec::new();
    for (family, file, vars) in TEMPLATES {
        let from = format!("{top}/vendor/llama.cpp/models/templates/{file}");
        if !tmp.join(file).exists() {
            std::fs::rename(tmp.join(&from), tmp.join(file))?;
        }
        entries.push(serde_json::json!({
            "family": family,
            "file": file,
            "variables": serde_json::from_str::<serde_json::Value>(vars)?,
            "source": format!("{url} (sha256 {sha256}), {from}"),
        }));
    }
    std::fs::remove_dir_all(tmp.join(top))?;
    std::fs::write(tmp.join("PROVENANCE.json"), serde_json::to_string_pretty(&entries)?)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)?;
    Ok(dir)
}
