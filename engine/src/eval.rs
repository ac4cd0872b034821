//! Evaluating token sequences in-process: the logits of every position, fed in chunks like a
//! batched prompt, and greedy generation. Used by the tests that compare against llama.cpp.

use crate::model::{CacheType, Logits, Model, ModelError, State};
use crate::pool::Threads;

/// How a sequence is evaluated: its context size, worker threads and KV cache type.
#[derive(Clone, Copy, Debug)]
pub struct Session {
    pub n_ctx: usize,
    pub threads: Threads,
    pub cache: CacheType,
}

impl Session {
    pub fn new(n_ctx: usize, threads: usize) -> Session {
        Session { n_ctx, threads: Threads::uniform(threads), cache: CacheType::F32 }
    }
}

/// Runs `tokens` from position 0 in chunks of `batch` (0 = all at once) and returns the logits
/// of every position, row-major `[tokens.len(), n_vocab]`.
pub fn all_logits(
    model: &Model,
    tokens: &[u32],
    batch: usize,
    session: Session,
) -> Result<Vec<f32>, ModelError> {
    let chunk = if batch == 0 { tokens.len().max(1) } else { batch };
    let calls: Vec<usize> = tokens.chunks(chunk).map(<[u32]>::len).collect();
    logits_in_calls(model, tokens, &calls, session)
}

/// Like [`all_logits`], feeding `calls[i]` tokens in the i-th call (the sizes must add up to
/// `tokens.len()`): how a caller that evaluates a prompt piece by piece drives the model.
pub fn logits_in_calls(
    model: &Model,
    tokens: &[u32],
    calls: &[usize],
    session: Session,
) -> Result<Vec<f32>, ModelError> {
    assert_eq!(calls.iter().sum::<usize>(), tokens.len(), "calls must cover the tokens");
    let n_vocab = model.config.n_vocab;
    let mut state = State::new(&model.config, session.n_ctx, session.threads, session.cache)?;
    let mut out = vec![0.0; tokens.len() * n_vocab];
    let mut at = 0;
    for &n in calls {
        let rows = &mut out[at * n_vocab..(at + n) * n_vocab];
        model.forward_batch(&mut state, &tokens[at..at + n], Logits::All(rows))?;
        at += n;
    }
    Ok(out)
}

/// Feeds `prompt`, then generates up to `n` tokens greedily (the highest logit, the lowest id
/// on ties), stopping at end-of-generation. Returns the generated ids.
pub fn greedy(
    model: &Model,
    tokenizer: &crate::tokenizer::Tokenizer,
    prompt: &[u32],
    n: usize,
    session: Session,
) -> Result<Vec<u32>, ModelError> {
    let mut state = State::new(&model.config, session.n_ctx, session.threads, session.cache)?;
    let mut logits = vec![0.0; model.config.n_vocab];
    model.forward_batch(&mut state, prompt, Logits::Last(&mut logits))?;
    let mut out = Vec::new();
    for _ in 0..n {
        let next = argmax(&logits);
        if tokenizer.is_eog(next) {
            break;
        }
        out.push(next);
        model.forward(&mut state, next, Some(&mut logits))?;
    }
    Ok(out)
}

/// The index of the highest logit, the lowest on ties.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
