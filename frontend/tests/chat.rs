// Multi-turn chat on the engine's table: reusing the KV cache across turns gives exactly the
// tokens a fresh evaluation of the whole conversation gives (attention models cut the cache
// back to the shared prefix; LFM2's conv state starts over), and vocabulary-only tokenizing.

use std::sync::atomic::AtomicBool;

use hartlm_abi::engine::ContextParams;
use hartlm_frontend::chat::Conversation;
use hartlm_frontend::sampler::{Sampler, SamplerConfig};
use hartlm_frontend::template::ChatTemplate;

mod common;
use common::{engine, fixtures};

fn greedy() -> Sampler {
    Sampler::new(SamplerConfig { temp: 0.0, ..SamplerConfig::default() })
}

fn params() -> ContextParams {
    ContextParams { n_ctx: 512, n_seq: 1, threads_batch: 2, threads_gen: 1, cache_type: 0 }
}

#[test]
fn turns_on_a_reused_cache_match_fresh_evaluations() {
    let e = engine();
    let stop = AtomicBool::new(false);
    for name in ["micro-q8_0", "qwen3-micro-f32", "lfm2-micro-f32"] {
        let m = e.open(&fixtures().join(format!("{name}.gguf")), false).unwrap();
        let template = ChatTemplate::new(None, "", "").unwrap();
        let mut ctx = m.context(params()).unwrap();
        let mut chat = Conversation::new(Some("Be brief."));
        let turns = ["Once upon a time", "there was a little cat", "named Tom."];
        for (i, user) in turns.iter().enumerate() {
            let reused =
                chat.turn(&mut ctx, &template, user, &mut greedy(), Some(8), &stop, |_| Ok(())).unwrap();
            // The same conversation from scratch, in a context of its own.
            let mut fresh_chat = Conversation::new(Some("Be brief."));
            fresh_chat.messages = chat.messages[..chat.messages.len() - 2].to_vec();
            let mut fresh_ctx = m.context(params()).unwrap();
            let fresh = fresh_chat
                .turn(&mut fresh_ctx, &template, user, &mut greedy(), Some(8), &stop, |_| Ok(()))
                .unwrap();
            assert_eq!(reused.generated, fresh.generated, "{name} turn {i}");
            assert!(!reused.generated.is_empty(), "{name} turn {i} generated nothing");
            if i > 0 && !name.starts_with("lfm2") {
                assert!(
                    reused.evaluated < fresh.evaluated,
                    "{name} turn {i}: {} tokens evaluated with the cache, {} without",
                    reused.evaluated,
                    fresh.evaluated
                );
            }
        }
        chat.reset(&mut ctx);
        let again =
            chat.turn(&mut ctx, &template, turns[0], &mut greedy(), Some(8), &stop, |_| Ok(())).unwrap();
        let mut first = Conversation::new(Some("Be brief."));
        let mut fresh_ctx = m.context(params()).unwrap();
        let want = first
            .turn(&mut fresh_ctx, &template, turns[0], &mut greedy(), Some(8), &stop, |_| Ok(()))
            .unwrap();
        assert_eq!(again.generated, want.generated, "{name} after /reset");
    }
}

/// A stop flag set before the reply ends it at once; the conversation keeps the (empty) reply.
#[test]
fn a_stopped_reply_ends_the_turn() {
    let e = engine();
    let m = e.open(&fixtures().join("micro-q8_0.gguf"), false).unwrap();
    let template = ChatTemplate::new(None, "", "").unwrap();
    let mut ctx = m.context(params()).unwrap();
    let mut chat = Conversation::new(None);
    let stop = AtomicBool::new(true);
    let r = chat.turn(&mut ctx, &template, "hello", &mut greedy(), None, &stop, |_| Ok(())).unwrap();
    assert!(r.generated.is_empty());
    assert_eq!(chat.messages.len(), 2);
}

/// llama.cpp's tokenizer test vectors through a vocabulary-only open (no tensors), as
/// `llama-tokenize` runs on these files; empty and whitespace-only text too.
#[test]
fn vocabulary_only_files_tokenize_like_llama_cpp() {
    let e = engine();
    let dir = fixtures().join("../third_party_vocab");
    for vocab in ["ggml-vocab-llama-spm.gguf", "ggml-vocab-qwen2.gguf"] {
        let m = e.open(&dir.join(vocab), true).unwrap();
        assert!(m.info.config.is_none(), "{vocab}: opened for its vocabulary only");
        assert!(m.context(params()).is_err(), "{vocab}: no context without weights");
        let inp = std::fs::read_to_string(dir.join(format!("{vocab}.inp"))).unwrap();
        let out = std::fs::read_to_string(dir.join(format!("{vocab}.out"))).unwrap();
        let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
        let want: Vec<Vec<u32>> =
            out.lines().map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect()).collect();
        for (text, want) in texts.iter().zip(&want) {
            assert_eq!(&m.tokenize(text, false, true), want, "{vocab}: {text:?}");
        }
        assert_eq!(m.tokenize("", false, false), Vec::<u32>::new());
        assert!(!m.tokenize("   \n\t", false, false).is_empty(), "{vocab}: whitespace is text");
    }
}
