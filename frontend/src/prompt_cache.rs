//! `--prompt-cache FILE` (llama.cpp's session file): an evaluated prompt's state kept on disk,
//! so a run whose prompt starts with the same tokens does not evaluate them again.
//!
//! The file format, the model fingerprint's sampling and the reuse plan are pure; reading and
//! writing the file (exclusive temporary file, then rename) and loading a context are apart.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use crate::engine::Context;

/// What a prompt cache holds: which model it belongs to, the tokens its sequence holds, the
/// logits after the last of them, and the engine's state blob for that sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    pub fingerprint: [u8; 32],
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
    pub state: Vec<u8>,
}

const MAGIC: &[u8; 8] = b"HLMPRCCH";
const FORMAT: u32 = 1;

/// Why bytes are not a usable prompt cache.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CacheError {
    #[error("is not a hartlm prompt cache")]
    NotACache,
    #[error("is a prompt cache of format {0}, not {FORMAT}; delete it and run again")]
    Format(u32),
    #[error("is a damaged prompt cache ({0}); delete it and run again")]
    Damaged(&'static str),
}

/// The file's bytes: magic, format (u32), fingerprint, token count (u64) and tokens (u32),
/// logit count (u64) and logits (f32), then the state blob to the end. Little-endian.
pub fn encode(s: &Saved) -> Vec<u8> {
    let mut out = Vec::with_capacity(60 + 4 * (s.tokens.len() + s.logits.len()) + s.state.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&s.fingerprint);
    out.extend_from_slice(&(s.tokens.len() as u64).to_le_bytes());
    s.tokens.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
    out.extend_from_slice(&(s.logits.len() as u64).to_le_bytes());
    s.logits.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    out.extend_from_slice(&s.state);
    out
}

pub fn decode(bytes: &[u8]) -> Result<Saved, CacheError> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(CacheError::NotACache);
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(CacheError::Format(format));
    }
    let mut rest = &bytes[12..];
    let mut take = |n: usize, what: &'static str| -> Result<&[u8], CacheError> {
        if rest.len() < n {
            return Err(CacheError::Damaged(what));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let fingerprint: [u8; 32] = take(32, "cut short in its header")?.try_into().expect("32 bytes");
    // A count (u64), then that many 4-byte little-endian values.
    let mut array = |what: &'static str, cut: &'static str, inside: &'static str| {
        let n = usize::try_from(u64::from_le_bytes(take(8, cut)?.try_into().expect("8 bytes")))
            .ok()
            .and_then(|n| n.checked_mul(4))
            .ok_or(CacheError::Damaged(what))?;
        take(n, inside)
            .map(|b| b.chunks_exact(4).map(|c| <[u8; 4]>::try_from(c).expect("4 bytes")).collect::<Vec<_>>())
    };
    let tokens = array("token count", "cut short in its header", "cut short in its tokens")?
        .into_iter()
        .map(u32::from_le_bytes)
        .collect();
    let logits = array("logit count", "cut short after its tokens", "cut short in its logits")?
        .into_iter()
        .map(f32::from_le_bytes)
        .collect();
    Ok(Saved { fingerprint, tokens, logits, state: rest.to_vec() })
}

/// How many of a cache's tokens a prompt keeps: their common prefix, less one when the prompt
/// ends inside the saved tokens (its last token is evaluated again for its logits). All of
/// them only when the prompt is exactly the saved tokens: the saved logits serve then.
pub fn tokens_to_keep(saved: &[u32], prompt: &[u32]) -> usize {
    let common = saved.iter().zip(prompt).take_while(|(a, b)| a == b).count();
    if common == prompt.len() && common < saved.len() { common.saturating_sub(1) } else { common }
}

/// Bytes of the model file hashed for its fingerprint: `(offset, length)` of 16 samples of
/// 64 KiB spread from the start (header and metadata) to the end (the last tensors), so two
/// fine-tunes of one shape differ without reading gigabytes.
pub fn fingerprint_samples(file_len: u64) -> Vec<(u64, usize)> {
    const SAMPLES: u64 = 16;
    const CHUNK: u64 = 64 << 10;
    let chunk = CHUNK.min(file_len);
    let last = file_len - chunk;
    let mut out: Vec<(u64, usize)> =
        (0..SAMPLES).map(|i| (last * i / (SAMPLES - 1), chunk as usize)).collect();
    out.dedup();
    out
}

/// The model file's fingerprint: its length and [`fingerprint_samples`], hashed.
pub fn fingerprint(model: &Path) -> std::io::Result<[u8; 32]> {
    let file = hartlm_abi::files::open_regular(model)?;
    let len = file.metadata()?.len();
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = Vec::new();
    for (offset, n) in fingerprint_samples(len) {
        buf.resize(n, 0);
        file.read_exact_at(&mut buf, offset)?;
        h.update(&buf);
    }
    Ok(h.finalize().into())
}

/// The cache at `path`: None when there is no file yet. A file that is not a prompt cache is
/// an error (so a mistyped path to something else is never overwritten), as is one larger
/// than `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Option<Saved>> {
    let file = match hartlm_abi::files::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("--prompt-cache {}: {e}", path.display()),
    };
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("--prompt-cache {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return crate::cli::refuse(format!(
            "--prompt-cache {}: is larger than any state this model and context can hold ({max} bytes); it is not this model's cache",
            path.display()
        ));
    }
    match decode(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e @ CacheError::NotACache) => crate::cli::refuse(format!(
            "--prompt-cache {}: {e}; name a new file or one hartlm wrote",
            path.display()
        )),
        Err(e) => crate::cli::refuse(format!("--prompt-cache {}: {e}", path.display())),
    }
}

/// Writes the cache through an exclusive temporary file renamed over `path`.
pub fn write(path: &Path, s: &Saved) -> Result<()> {
    hartlm_abi::atomic::write_atomic(path, &encode(s))
        .map_err(|e| anyhow::anyhow!("writing --prompt-cache {}: {e}", path.display()))
}

/// `run --prompt-cache`: the file, the model's fingerprint, and how many prompt tokens the
/// loaded state already holds.
pub struct PromptCache {
    pub path: std::path::PathBuf,
    fingerprint: [u8; 32],
    /// Prompt tokens sequence 0 already holds: evaluate only the rest.
    pub reused: usize,
}

impl PromptCache {
    /// Reads the cache (if there is one) and puts the part the prompt shares into sequence 0.
    pub fn open(path: &Path, model: &Path, ctx: &mut Context, prompt: &[u32]) -> Result<PromptCache> {
        let fingerprint = fingerprint(model).with_context(|| format!("reading {}", model.display()))?;
        let mut cache = PromptCache { path: path.to_path_buf(), fingerprint, reused: 0 };
        let c = ctx.model().config()?;
        // The most a cache for this model and context can hold: f32 keys and values of every
        // layer and position, conv states, the tokens and one row of logits.
        let kv = 2 * c.n_layer * ctx.params.n_ctx as usize * c.n_head_kv * c.head_dim;
        let conv = c.n_layer * c.conv_taps * c.n_embd;
        let max = 4 * (kv + conv + ctx.params.n_ctx as usize + c.n_vocab) + (1 << 16);
        let n_vocab = c.n_vocab;
        let Some(saved) = read(path, max as u64)? else {
            return Ok(cache);
        };
        let named = |why: String| {
            crate::cli::refuse::<PromptCache>(format!("--prompt-cache {}: {why}", path.display()))
        };
        if saved.fingerprint != fingerprint {
            return named(format!(
                "was saved for another model file than {}; delete it or name another file",
                model.display()
            ));
        }
        let keep = tokens_to_keep(&saved.tokens, prompt);
        if keep == 0 {
            return Ok(cache);
        }
        if let Err(e) = ctx.load(0, &saved.state) {
            return named(format!("{e}; delete it or name another file"));
        }
        if ctx.seq_len(0) != saved.tokens.len() || saved.logits.len() != n_vocab {
            ctx.truncate(0, 0);
            return named(
                "is a damaged prompt cache (its tokens do not match its state); delete it and run again"
                    .into(),
            );
        }
        // A short-conv model keeps its whole state or nothing: then the prompt starts over.
        if keep < saved.tokens.len() && !ctx.truncate(0, keep) {
            ctx.truncate(0, 0);
            return Ok(cache);
        }
        if keep == prompt.len() {
            ctx.restore_logits(saved.logits);
        }
        cache.reused = keep;
        Ok(cache)
    }

    /// Saves sequence 0, which holds `tokens`, with the logits after the last of them.
    pub fn save(&self, ctx: &Context, tokens: &[u32]) -> Result<()> {
        let saved = Saved {
            fingerprint: self.fingerprint,
            tokens: tokens.to_vec(),
            logits: ctx.logits(0).to_vec(),
            state: ctx.save(0)?,
        };
        write(&self.path, &saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        Saved {
            fingerprint: [7; 32],
            tokens: vec![1, 15043, 3186],
            logits: vec![0.5, -1.25, f32::MIN_POSITIVE],
            state: b"HLMSEQST and the rest".to_vec(),
        }
    }

    #[test]
    fn a_cache_round_trips_and_damage_is_named() {
        let bytes = encode(&saved());
        assert_eq!(decode(&bytes), Ok(saved()));
        assert_eq!(decode(b"<|im_start|>user\nHello"), Err(CacheError::NotACache));
        assert_eq!(decode(&[]), Err(CacheError::NotACache));
        let mut old = bytes.clone();
        old[8] = 9;
        assert_eq!(decode(&old), Err(CacheError::Format(9)));
        assert_eq!(decode(&bytes[..50]), Err(CacheError::Damaged("cut short in its header")));
        assert_eq!(decode(&bytes[..60]), Err(CacheError::Damaged("cut short in its tokens")));
        assert_eq!(decode(&bytes[..66]), Err(CacheError::Damaged("cut short after its tokens")));
        assert_eq!(decode(&bytes[..80]), Err(CacheError::Damaged("cut short in its logits")));
        let mut huge = bytes.clone();
        huge[44..52].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(CacheError::Damaged(_))));
        // An empty state is still a cache (the engine refuses it when loading).
        let s = Saved { state: Vec::new(), ..saved() };
        assert_eq!(decode(&encode(&s)), Ok(s));
    }

    #[test]
    fn the_prompt_keeps_the_common_prefix_and_re_evaluates_for_logits() {
        let saved = [1, 2, 3, 4];
        assert_eq!(tokens_to_keep(&saved, &[1, 2, 3, 4]), 4, "the same prompt: saved logits");
        assert_eq!(tokens_to_keep(&saved, &[1, 2, 3, 4, 5, 6]), 4, "a longer prompt");
        assert_eq!(tokens_to_keep(&saved, &[1, 2, 9, 9]), 2, "diverging");
        assert_eq!(tokens_to_keep(&saved, &[1, 2]), 1, "a prefix: its last token again");
        assert_eq!(tokens_to_keep(&saved, &[9]), 0);
        assert_eq!(tokens_to_keep(&[], &[1, 2]), 0);
        assert_eq!(tokens_to_keep(&saved, &[1]), 0);
    }

    #[test]
    fn fingerprint_samples_cover_small_and_large_files() {
        assert_eq!(fingerprint_samples(0), vec![(0, 0)]);
        assert_eq!(fingerprint_samples(1000), vec![(0, 1000)]);
        let big = fingerprint_samples(1 << 30);
        assert_eq!(big.len(), 16);
        assert_eq!(big[0], (0, 65536));
        assert_eq!(big[15], ((1 << 30) - 65536, 65536));
        assert!(big.windows(2).all(|w| w[0].0 + 65536 <= w[1].0));
    }
}
