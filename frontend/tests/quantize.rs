// Our quantizer against llama-quantize: quantizing the F32 fixtures must reproduce the tensor
// bytes llama.cpp wrote for their Q8_0 and --pure Q4_0 versions.

use hartlm_engine::gguf::GgufFile;
use hartlm_engine::quantize::quantize;
use hartlm_engine::types::GgmlType;

mod common;
use common::{fixtures, hartlm};

fn check(src: &str, reference: &str, ty: GgmlType, pure: bool) {
    let dir = fixtures();
    let input = GgufFile::open(&dir.join(src)).unwrap();
    let out = std::env::temp_dir().join(format!("hartlm-quantize-{}-{reference}", std::process::id()));
    quantize(&input, &out, ty, pure, |_, _, _| {}).unwrap();
    let ours = GgufFile::open(&out).unwrap();
    let theirs = GgufFile::open(&dir.join(reference)).unwrap();
    assert_eq!(ours.index.tensors.len(), theirs.index.tensors.len());
    for t in &theirs.index.tensors {
        let o = ours.tensor(&t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((o.ty, &o.dims), (t.ty, &t.dims), "{}", t.name);
        assert!(ours.tensor_bytes(o) == theirs.tensor_bytes(t), "{reference}: {} bytes differ", t.name);
    }
    assert_eq!(
        ours.get("general.file_type").and_then(|v| v.as_u64()),
        Some(if ty == GgmlType::Q4_0 { 2 } else { 7 })
    );
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn q8_0_matches_llama_quantize() {
    check("micro-f32.gguf", "micro-q8_0.gguf", GgmlType::Q8_0, false);
    check("s288-f32.gguf", "s288-q8_0.gguf", GgmlType::Q8_0, false);
}

#[test]
fn pure_q4_0_matches_llama_quantize() {
    check("micro-f32.gguf", "micro-q4_0-pure.gguf", GgmlType::Q4_0, true);
    check("s288-f32.gguf", "s288-q4_0-pure.gguf", GgmlType::Q4_0, true);
}

/// llama.cpp's default Q4_0 mix: output.weight falls back to Q8_0 when rows are not a multiple
/// of 256 (as in these fixtures), which is also what hartlm writes.
#[test]
fn default_q4_0_mix_matches_llama_quantize() {
    check("micro-f32.gguf", "micro-q4_0.gguf", GgmlType::Q4_0, false);
    check("s288-f32.gguf", "s288-q4_0.gguf", GgmlType::Q4_0, false);
}

/// Runs `hartlm ARGS` in-process, as the launcher would; returns the exit status.
/// An output that is the input (by any name: the same path or a link to it) is refused with
/// exit 2 before anything is written, for `quantize` and for `logits`.
#[test]
fn outputs_never_overwrite_the_input_model() {
    let dir = std::env::temp_dir().join(format!("hartlm-same-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.gguf");
    std::fs::copy(fixtures().join("micro-q4_0.gguf"), &model).unwrap();
    let link = dir.join("link.gguf");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let before = std::fs::read(&model).unwrap();
    let m = model.to_str().unwrap();
    for out in [m, link.to_str().unwrap()] {
        assert_eq!(hartlm(&["quantize", "-m", m, "-o", out, "--type", "q8_0"]), 2, "quantize -o {out}");
        assert_eq!(hartlm(&["logits", "-m", m, "--tokens", "1,2", "-o", out]), 2, "logits -o {out}");
    }
    assert_eq!(std::fs::read(&model).unwrap(), before, "the input model is untouched");
    // Another output path works, once requantizing the Q4_0 model is asked for by name.
    let other = dir.join("q8.gguf");
    let o = other.to_str().unwrap();
    assert_eq!(hartlm(&["quantize", "-m", m, "-o", o, "--type", "q8_0"]), 2, "already quantized");
    assert!(!other.exists(), "nothing written when refused");
    assert_eq!(hartlm(&["quantize", "-m", m, "-o", o, "--type", "q8_0", "--allow-requantize"]), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
