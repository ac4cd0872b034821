// Fuzzes the tokenizers on arbitrary text: SentencePiece (llama.cpp's llama-spm vocabulary) and
// byte-level BPE (its qwen2 vocabulary). Encoding must never panic, every id must be in the
// vocabulary, and byte-level BPE must give back exactly the text it was given.
#![no_main]

use std::sync::OnceLock;

use hartlm_engine::gguf::GgufFile;
use hartlm_engine::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fn load(bytes: &[u8]) -> Tokenizer {
    let file = GgufFile::from_bytes(bytes.to_vec()).expect("the vocabulary fixture parses");
    Tokenizer::from_gguf(&file).expect("the vocabulary fixture has a tokenizer")
}

fn tokenizers() -> &'static [(Tokenizer, bool); 2] {
    static T: OnceLock<[(Tokenizer, bool); 2]> = OnceLock::new();
    T.get_or_init(|| {
        [
            (load(include_bytes!("../../../../shared/fixtures/third_party_vocab/ggml-vocab-llama-spm.gguf")), false),
            (load(include_bytes!("../../../../shared/fixtures/third_party_vocab/ggml-vocab-qwen2.gguf")), true),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(text);
    let (tok, byte_level) = &tokenizers()[usize::from(flags & 1)];
    let (add_special, parse_special) = (flags & 2 != 0, flags & 4 != 0);
    let ids = tok.encode(&text, add_special, parse_special);
    let mut bytes = Vec::new();
    for &id in &ids {
        assert!((id as usize) < tok.n_tokens(), "id {id} outside the vocabulary");
        bytes.extend(tok.piece_bytes(id));
    }
    if *byte_level && !add_special && !parse_special {
        assert_eq!(String::from_utf8_lossy(&bytes), text, "byte-level BPE must round-trip");
    }
});
