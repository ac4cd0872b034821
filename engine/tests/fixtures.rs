// Teacher-forced logits against llama.cpp's recorded outputs for the shared fixture models
// (../shared/fixtures, see its README for provenance and the tolerances used here).

use std::path::{Path, PathBuf};

use hartlm_engine::eval::all_logits;
use hartlm_engine::model::Model;
use hartlm_engine::npy;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    assert!(
        dir.join("README.md").is_file(),
        "fixtures not found at {}: CI provides ../shared",
        dir.display()
    );
    dir
}

fn ids(path: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

struct Compared {
    max_abs: f32,
    /// Positions where llama.cpp's top-1 beat its top-2 by more than the margin but our argmax differs.
    argmax_flips: Vec<usize>,
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
}

fn margin(row: &[f32]) -> f32 {
    let mut s = row.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s[0] - s[1]
}

/// Runs prompt + greedy ids and compares every position with the oracle logits.
fn compare(name: &str, margin_floor: f32) -> Compared {
    let dir = fixtures();
    let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
    let oracle = dir.join("oracle");
    let prompt = ids(&oracle.join(format!("{name}.prompt_ids.json")));
    let greedy = ids(&oracle.join(format!("{name}.greedy_ids.json")));
    let (p_logits, p_shape) = npy::read_f32(&oracle.join(format!("{name}.prompt_logits.npy"))).unwrap();
    let (g_logits, g_shape) = npy::read_f32(&oracle.join(format!("{name}.greedy_logits.npy"))).unwrap();
    let nv = model.config.n_vocab;
    assert_eq!((p_shape[1], g_shape[1]), (nv, nv));
    let tokens: Vec<u32> = prompt.iter().chain(&greedy).copied().collect();
    let ours = all_logits(&model, &tokens, 0, model.config.n_ctx_train).unwrap();
    // Oracle row r of the prompt is position r; greedy row i came from position len(prompt)-1+i.
    let mut pairs: Vec<(usize, &[f32])> = p_logits.chunks(nv).enumerate().collect();
    pairs.extend(g_logits.chunks(nv).enumerate().map(|(i, r)| (prompt.len() - 1 + i, r)));
    let mut out = Compared { max_abs: 0.0, argmax_flips: vec![] };
    for (pos, want) in pairs {
        let got = &ours[pos * nv..(pos + 1) * nv];
        for (a, b) in got.iter().zip(want) {
            out.max_abs = out.max_abs.max((a - b).abs());
        }
        if margin(want) > margin_floor && argmax(got) != argmax(want) {
            out.argmax_flips.push(pos);
        }
    }
    eprintln!("{name}: max |dlogit| = {:.2e}", out.max_abs);
    out
}

fn check(name: &str, tol: f32, margin_floor: f32) {
    let c = compare(name, margin_floor);
    assert!(c.max_abs <= tol, "{name}: max |dlogit| {} > {tol}", c.max_abs);
    assert!(c.argmax_flips.is_empty(), "{name}: argmax differs at positions {:?}", c.argmax_flips);
}

#[test]
fn llama_micro_f32() {
    check("micro-f32", 1e-3, 0.0);
}

#[test]
fn llama_micro_quantized() {
    for name in ["micro-q8_0", "micro-q4_0", "micro-q4_0-pure"] {
        check(name, 0.06, 0.0);
    }
}

#[test]
fn llama_s288_f32() {
    check("s288-f32", 1e-3, 0.0);
}

#[test]
fn llama_s288_quantized() {
    for name in ["s288-q8_0", "s288-q4_0", "s288-q4_0-pure"] {
        check(name, 0.2, 0.3);
    }
}

#[test]
fn qwen3_micro() {
    check("qwen3-micro-f32", 1e-3, 0.0);
    check("qwen3-micro-q8_0", 0.06, 0.0);
}

/// Free-running greedy generation reproduces llama.cpp's ids (f32 files, where no step's
/// top-1/top-2 margin is small enough for float noise to flip it).
#[test]
fn greedy_generation_matches_llama_cpp() {
    use hartlm_engine::gguf::GgufFile;
    use hartlm_engine::sampler::{Sampler, SamplerConfig};
    use hartlm_engine::tokenizer::Tokenizer;
    let dir = fixtures();
    for name in ["micro-f32", "s288-f32", "qwen3-micro-f32"] {
        let path = dir.join(format!("models/{name}.gguf"));
        let model = Model::open(&path).unwrap();
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        let prompt = tok.encode("Once upon a time, there was a little cat named Tom.", true, false);
        assert_eq!(prompt, ids(&dir.join(format!("oracle/{name}.prompt_ids.json"))), "{name} prompt");
        let want = ids(&dir.join(format!("oracle/{name}.greedy_ids.json")));
        let mut sampler = Sampler::new(SamplerConfig { temp: 0.0, ..SamplerConfig::default() });
        let (got, _, _) =
            hartlm_engine::eval::generate(&model, &tok, &prompt, want.len(), 128, &mut sampler, |_| Ok(()))
                .unwrap();
        assert_eq!(got, want, "{name}");
    }
}
