// Teacher-forced logits against llama.cpp's recorded outputs for the shared fixture models
// (../shared/fixtures, see its README for provenance and the tolerances used here).

use std::path::{Path, PathBuf};

use hartlm_engine::eval::all_logits;
use hartlm_engine::model::Model;
use hartlm_engine::oracle::{CASES, Oracle};

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

/// Teacher-forced logits of every fixture in `oracle::CASES` whose name starts with `prefix`.
fn check(prefix: &str) {
    let dir = fixtures();
    let cases: Vec<_> = CASES.iter().filter(|c| c.name.starts_with(prefix)).collect();
    assert!(!cases.is_empty(), "no fixtures named {prefix}*");
    for case in cases {
        let model = Model::open(&dir.join(format!("models/{}.gguf", case.name))).unwrap();
        let oracle = Oracle::load(&dir, case.name).unwrap();
        assert_eq!(oracle.n_vocab, model.config.n_vocab);
        let ours = all_logits(&model, &oracle.tokens(), 0, model.config.n_ctx_train).unwrap();
        let c = oracle.compare(&ours, case.margin);
        eprintln!("{}: max |dlogit| = {:.2e}", case.name, c.max_abs);
        assert!(
            c.passes(case),
            "{}: {c:?} exceeds tolerance {} / margin {}",
            case.name,
            case.tol,
            case.margin
        );
    }
}

#[test]
fn llama_micro() {
    check("micro-");
}

#[test]
fn llama_s288() {
    check("s288-");
}

#[test]
fn qwen3_micro() {
    check("qwen3-micro-");
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
