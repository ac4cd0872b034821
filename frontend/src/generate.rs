//! Feeding a prompt and generating a reply on one sequence of a context: the loop `run`, `chat`
//! and the server share, with progress for long prompts and a flag that stops a reply early.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::engine::{Context, EngineError};
use crate::sampler::Sampler;

/// Prompt tokens per decode call: progress shows between calls (the engine splits each call
/// into its own micro-batches, so the results do not depend on this).
const PROMPT_CHUNK: usize = 256;

/// Appends `tokens` to sequence `seq`, keeping the last row's logits; returns the seconds it
/// took. Shows progress on a terminal when the prompt takes more than one call.
pub fn feed_prompt(ctx: &mut Context, seq: u32, tokens: &[u32]) -> Result<f64, EngineError> {
    let t0 = Instant::now();
    let progress = crate::progress::Progress::new();
    let chunks = tokens.len().div_ceil(PROMPT_CHUNK);
    for (i, chunk) in tokens.chunks(PROMPT_CHUNK).enumerate() {
        if chunks > 1 {
            progress.show(&format!("prompt: {}/{} tokens", i * PROMPT_CHUNK, tokens.len()));
        }
        ctx.feed(seq, chunk)?;
    }
    progress.clear();
    Ok(t0.elapsed().as_secs_f64())
}

/// A finished generation.
pub struct Generation {
    pub tokens: Vec<u32>,
    pub secs: f64,
    /// Whether it ended at an end-of-generation token (not the limit, nor `stop`).
    pub ended: bool,
}

/// Samples from the current logits of `seq` up to `n` tokens, stopping at end-of-generation
/// or when `stop` is set, and feeds each one back (an end-of-generation token is not fed: the
/// chat template writes the turn's end itself). `history` gains every token; `on_piece`
/// receives each token's bytes.
pub fn generate(
    ctx: &mut Context,
    seq: u32,
    sampler: &mut Sampler,
    history: &mut Vec<u32>,
    n: usize,
    stop: &AtomicBool,
    mut on_piece: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> anyhow::Result<Generation> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut ended = false;
    while out.len() < n && !stop.load(Ordering::Relaxed) {
        let next = sampler.sample(ctx.logits(0), history);
        if ctx.model().is_eog(next) {
            ended = true;
            break;
        }
        on_piece(&ctx.model().piece(next))?;
        history.push(next);
        out.push(next);
        ctx.feed(seq, &[next])?;
    }
    Ok(Generation { tokens: out, secs: t0.elapsed().as_secs_f64(), ended })
}
