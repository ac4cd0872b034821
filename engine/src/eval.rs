//! Evaluating token sequences: the logits of every position, fed in chunks like a batched
//! prompt. Used by `hartlm logits` and the tests that compare against llama.cpp.

use crate::model::{Model, ModelError, State};

/// Runs `tokens` from position 0 in chunks of `batch` (0 = all at once) and returns the logits
/// of every position, row-major `[tokens.len(), n_vocab]`.
pub fn all_logits(model: &Model, tokens: &[u32], batch: usize, n_ctx: usize) -> Result<Vec<f32>, ModelError> {
    let n_vocab = model.config.n_vocab;
    let mut state = State::new(&model.config, n_ctx);
    let mut out = vec![0.0; tokens.len() * n_vocab];
    let chunk = if batch == 0 { tokens.len().max(1) } else { batch };
    for (ci, toks) in tokens.chunks(chunk).enumerate() {
        for (i, &t) in toks.iter().enumerate() {
            let row = ci * chunk + i;
            model.forward(&mut state, t, &mut out[row * n_vocab..(row + 1) * n_vocab])?;
        }
    }
    Ok(out)
}
