//! Evaluating token sequences: the logits of every position, fed in chunks like a batched
//! prompt. Used by `hartlm logits` and the tests that compare against llama.cpp.

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

/// Feeds `prompt`, then samples up to `n` tokens (stopping at end-of-generation), calling
/// `on_token` with each new id. Returns the generated ids and the prompt/generation seconds.
pub fn generate(
    model: &Model,
    tokenizer: &crate::tokenizer::Tokenizer,
    prompt: &[u32],
    n: usize,
    session: Session,
    sampler: &mut crate::sampler::Sampler,
    mut on_token: impl FnMut(u32) -> std::io::Result<()>,
) -> Result<(Vec<u32>, f64, f64), GenerateError> {
    let mut state = State::new(&model.config, session.n_ctx, session.threads, session.cache)?;
    let mut logits = vec![0.0; model.config.n_vocab];
    let t0 = std::time::Instant::now();
    model.forward_batch(&mut state, prompt, Logits::Last(&mut logits))?;
    let prompt_secs = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let mut history = prompt.to_vec();
    let mut out = Vec::new();
    for _ in 0..n {
        let next = sampler.sample(&logits, &history);
        if tokenizer.is_eog(next) {
            break;
        }
        on_token(next)?;
        history.push(next);
        out.push(next);
        model.forward(&mut state, next, Some(&mut logits))?;
    }
    Ok((out, prompt_secs, t1.elapsed().as_secs_f64()))
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}
