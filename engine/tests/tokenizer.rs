// Tokenization against llama.cpp: the fixtures' tok512 vectors (with BOS) and llama.cpp's own
// test-tokenizer-0 vectors for the real 32000-token LLaMA SentencePiece vocabulary.

use std::path::{Path, PathBuf};

use hartlm_engine::gguf::GgufFile;
use hartlm_engine::tokenizer::Tokenizer;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    assert!(dir.join("README.md").is_file(), "fixtures not found at {}", dir.display());
    dir
}

fn tokenizer(path: &Path) -> Tokenizer {
    Tokenizer::from_gguf(&GgufFile::open(path).unwrap()).unwrap()
}

/// Decodes ids back to text (invalid UTF-8 as replacement characters).
fn decode(t: &Tokenizer, ids: &[u32]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|&i| t.piece_bytes(i)).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn tok512_matches_llama_cpp_with_bos() {
    let dir = fixtures();
    let t = tokenizer(&dir.join("models/micro-f32.gguf"));
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("oracle/tokenizer_tok512.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 15);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["llamacpp_ids_with_bos"].clone()).unwrap();
        let got = t.encode(text, true, false);
        assert_eq!(got, want, "text {text:?}");
        // SentencePiece adds a dummy-prefix space; decoding restores it.
        assert_eq!(decode(&t, &got[1..]), format!(" {text}"), "round trip of {text:?}");
    }
}

/// Runs llama.cpp's test-tokenizer-0 vectors (`<vocab>.inp` strings, `<vocab>.out` ids) for a
/// vocabulary-only GGUF; `lossless` also checks that decoding gives the text back.
fn check_vectors(vocab: &str, n_tokens: usize, lossless: bool) {
    let dir = fixtures().join("third_party_vocab");
    let t = tokenizer(&dir.join(vocab));
    assert_eq!(t.n_tokens(), n_tokens);
    let inp = std::fs::read_to_string(dir.join(format!("{vocab}.inp"))).unwrap();
    let out = std::fs::read_to_string(dir.join(format!("{vocab}.out"))).unwrap();
    let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let expected: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(texts.len() - 1, expected.len(), "one trailing separator");
    let mut failures = Vec::new();
    for (text, want) in texts.iter().zip(&expected) {
        let got = t.encode(text, false, true);
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
        if lossless {
            assert_eq!(decode(&t, &got), *text);
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), expected.len(), failures.join("\n"));
}

#[test]
fn llama_spm_vocab_matches_llama_cpp_test_vectors() {
    check_vectors("ggml-vocab-llama-spm.gguf", 32000, false);
}

/// Byte-level BPE is also lossless.
#[test]
fn qwen2_bpe_vocab_matches_llama_cpp_test_vectors() {
    check_vectors("ggml-vocab-qwen2.gguf", 151936, true);
}
