// SmolLM2-135M-Instruct Q4_1, a real model (byte-level BPE, 30 layers, tied output), against
// llama.cpp's recorded outputs in ../shared/fixtures/real_smollm2. `cargo xtask fetch-models`
// downloads it to target/models/ (CI does this before the tests).

use std::path::{Path, PathBuf};

use hartlm_engine::eval::{Session, all_logits, argmax, greedy as generate_greedy};
use hartlm_engine::model::Model;
use hartlm_engine::tokenizer::Tokenizer;
use hartlm_test_support::npy;

const PROMPT: &str = "Once upon a time, there was a little cat named Tom.";

fn model_path() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.is_file(), "{} is missing: run `cargo xtask fetch-models`", p.display());
    p
}

fn recorded(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/real_smollm2").join(name)
}

fn ids(name: &str) -> Vec<u32> {
    serde_json::from_str(&std::fs::read_to_string(recorded(name)).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn margin(row: &[f32]) -> f32 {
    let mut s = row.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s[0] - s[1]
}

#[test]
fn smollm2_matches_llama_cpp() {
    let model = Model::open(&model_path()).unwrap();
    let tok = Tokenizer::from_gguf(&model.file).unwrap();
    let prompt = tok.encode(PROMPT, true, false);
    assert_eq!(prompt, ids("smollm2_q4_1.story.prompt_ids.json"), "tokenization");
    let greedy = ids("smollm2_q4_1.story.greedy_ids.json");

    // Teacher-forced: cosine >= 0.99 everywhere, same argmax wherever llama.cpp's margin > 0.5.
    let tokens: Vec<u32> = prompt.iter().chain(&greedy).copied().collect();
    let ours = all_logits(&model, &tokens, 0, Session::new(64, 2)).unwrap();
    let nv = model.config.n_vocab;
    let (p, _) = npy::read_f32(&recorded("smollm2_q4_1.story.prompt_logits.npy")).unwrap();
    let (g, _) = npy::read_f32(&recorded("smollm2_q4_1.story.greedy_logits.npy")).unwrap();
    let mut rows: Vec<(usize, &[f32])> = p.chunks(nv).enumerate().collect();
    rows.extend(g.chunks(nv).enumerate().map(|(i, r)| (prompt.len() - 1 + i, r)));
    let mut worst = 1.0f64;
    for (pos, want) in rows {
        let got = &ours[pos * nv..(pos + 1) * nv];
        let c = cosine(got, want);
        worst = worst.min(c);
        assert!(c >= 0.99, "position {pos}: cosine {c}");
        if margin(want) > 0.5 {
            assert_eq!(argmax(got), argmax(want), "argmax at position {pos} (margin {})", margin(want));
        }
    }
    eprintln!("smollm2: worst cosine {worst:.6}");

    // Free-running greedy text up to llama.cpp's first low-margin step (" Tom was a friendly").
    let generated = generate_greedy(&model, &tok, &prompt, 4, Session::new(64, 2)).unwrap();
    assert_eq!(generated, greedy[..4]);
    let bytes: Vec<u8> = generated.iter().flat_map(|&t| tok.piece_bytes(t)).collect();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text, " Tom was a friendly");
}
