//! Generated fixtures for what ../shared has no llama.cpp recording of: a micro qwen2 model
//! (QKV bias, NEOX RoPE, tied output) in F32 and F16, written by the fixtures' own generator
//! and checked against its float64 numpy reference (ref_forward.py).

use anyhow::Result;
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

/// (file stem, dtype) of each generated model.
pub const GENERATED: &[(&str, &str)] = &[("qwen2-micro-f32", "f32"), ("qwen2-micro-f16", "f16")];

pub fn dir(target_dir: &Path) -> PathBuf {
    target_dir.join("fixtures-gen")
}

/// Installs the generator's Python packages (and jinja2, for the chat template tests) if they
/// are missing.
pub fn ensure_python(sh: &Shell) -> Result<()> {
    if crate::prereq::python_has(sh, "numpy, gguf, sentencepiece, jinja2") {
        return Ok(());
    }
    crate::prereq::pip_install(sh, &["numpy", "gguf", "sentencepiece", "jinja2"])
}

/// Writes `<stem>.gguf` and `<stem>.ref_logits.npy` (logits of the standard 25-token prompt).
pub fn ensure(sh: &Shell, target_dir: &Path, fixtures: &Path) -> Result<PathBuf> {
    let out = dir(target_dir);
    // The template tests render with jinja2 even when the fixtures exist already.
    ensure_python(sh)?;
    if GENERATED.iter().all(|(stem, _)| out.join(format!("{stem}.ref_logits.npy")).is_file()) {
        return Ok(out);
    }
    std::fs::create_dir_all(&out)?;
    let script = r#"
import sys, json, os
fixtures, out, stem, dtype = sys.argv[1:5]
sys.path.insert(0, fixtures)
import gen_synthetic_gguf as gen
import ref_forward as ref
import numpy as np
gen.PRESETS["qwen2-micro"] = dict(arch="qwen2", n_embd=64, n_layer=2, n_head=4, n_kv=2, n_ff=192, ctx=128,
                                  rope_base=1000000.0, eps=1e-6, tied=True, qkv_bias=True)
model = os.path.join(out, stem + ".gguf")
gen.cmd_model(model + ".tmp", "qwen2-micro", os.path.join(fixtures, "vocab/tok512.model"), None, dtype, 1234)
os.replace(model + ".tmp", model)
ids = json.load(open(os.path.join(fixtures, "oracle/micro-f32.prompt_ids.json")))
kv, T = ref.load(model)
np.save(os.path.join(out, stem + ".ref_logits.tmp.npy"), ref.forward(kv, T, ids))
os.replace(os.path.join(out, stem + ".ref_logits.tmp.npy"), os.path.join(out, stem + ".ref_logits.npy"))
"#;
    for (stem, dtype) in GENERATED {
        eprintln!("xtask: generating {stem} and its numpy reference logits");
        cmd!(sh, "python3 -c {script} {fixtures} {out} {stem} {dtype}").quiet().run()?;
    }
    Ok(out)
}
