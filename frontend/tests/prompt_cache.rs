// `run --prompt-cache`: a prompt started from a saved state generates exactly what a fresh
// evaluation generates (the same prompt from the saved logits, a longer one from the saved
// tokens, a shorter one cut back where the model can cut), and files that are not this model's
// cache are refused without being touched.

use std::sync::atomic::AtomicBool;

use hartlm_abi::engine::ContextParams;
use hartlm_frontend::engine::Model;
use hartlm_frontend::generate::{feed_prompt, generate};
use hartlm_frontend::prompt_cache::PromptCache;
use hartlm_frontend::sampler::{Sampler, SamplerConfig};

mod common;
use common::{engine, fixtures, hartlm};

fn params() -> ContextParams {
    ContextParams { n_ctx: 128, n_seq: 1, threads_batch: 2, threads_gen: 1, cache_type: 0 }
}

/// Greedy tokens after `prompt`, with the cache at `file` (written after the prompt unless
/// `read_only`), and how many prompt tokens the cache supplied.
fn run(
    m: &Model,
    model: &std::path::Path,
    file: &std::path::Path,
    prompt: &[u32],
    read_only: bool,
) -> (Vec<u32>, usize) {
    let mut ctx = m.context(params()).unwrap();
    let cache = PromptCache::open(file, model, &mut ctx, prompt).unwrap();
    feed_prompt(&mut ctx, 0, &prompt[cache.reused..]).unwrap();
    if !read_only && cache.reused < prompt.len() {
        cache.save(&ctx, prompt).unwrap();
    }
    let mut sampler = Sampler::new(SamplerConfig { temp: 0.0, ..SamplerConfig::default() });
    let mut history = prompt.to_vec();
    let g =
        generate(&mut ctx, 0, &mut sampler, &mut history, 6, &AtomicBool::new(false), |_| Ok(())).unwrap();
    (g.tokens, cache.reused)
}

#[test]
fn cached_prompts_generate_what_fresh_ones_do() {
    let e = engine();
    let dir = tempfile::tempdir().unwrap();
    for name in ["s288-q4_0", "qwen3-micro-f32", "lfm2-micro-q4_0"] {
        let path = fixtures().join(format!("{name}.gguf"));
        let m = e.open(&path, false).unwrap();
        let prompt = m.tokenize("Once upon a time, there was a little cat named Tom.", true, false);
        let file = dir.path().join(format!("{name}.cache"));
        let fresh = |p: &[u32]| run(&m, &path, &dir.path().join("none"), p, true).0;

        assert_eq!(run(&m, &path, &file, &prompt, false), (fresh(&prompt), 0), "{name}: first run");
        assert!(file.is_file(), "{name}: the cache is written");
        assert_eq!(
            run(&m, &path, &file, &prompt, true),
            (fresh(&prompt), prompt.len()),
            "{name}: same prompt"
        );

        let longer =
            m.tokenize("Once upon a time, there was a little cat named Tom. He liked milk.", true, false);
        assert!(longer.starts_with(&prompt), "{name}: the longer prompt extends the first");
        assert_eq!(run(&m, &path, &file, &longer, true), (fresh(&longer), prompt.len()), "{name}: longer");

        // Shorter and diverging prompts cut the saved state back; a conv model starts over.
        let conv = name.starts_with("lfm2");
        let shorter = &prompt[..prompt.len() - 3];
        let want = if conv { 0 } else { shorter.len() - 1 };
        assert_eq!(run(&m, &path, &file, shorter, true), (fresh(shorter), want), "{name}: shorter");
        let other = m.tokenize("Once upon a time, a dog", true, false);
        let common = other.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
        let want = if conv { 0 } else { common };
        assert_eq!(run(&m, &path, &file, &other, false), (fresh(&other), want), "{name}: diverging");
        // That run saved its own prompt: the cache follows the last prompt.
        assert_eq!(run(&m, &path, &file, &other, true).1, other.len(), "{name}: rewritten");
    }

    // Another model's cache, and a file that is no cache at all, are refused and left alone.
    let micro = fixtures().join("micro-q8_0.gguf");
    let m = e.open(&micro, false).unwrap();
    let mut ctx = m.context(params()).unwrap();
    let p = m.tokenize("Once upon a time", true, false);
    let err = PromptCache::open(&dir.path().join("s288-q4_0.cache"), &micro, &mut ctx, &p).err().unwrap();
    assert!(err.to_string().contains("was saved for another model file"), "{err}");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes").unwrap();
    let err = PromptCache::open(&notes, &micro, &mut ctx, &p).err().unwrap();
    assert!(err.to_string().contains("is not a hartlm prompt cache"), "{err}");
    let notes_arg = notes.to_str().unwrap();
    let micro_arg = micro.to_str().unwrap();
    let status = hartlm(&["run", "-m", micro_arg, "-p", "Once", "-n", "2", "--prompt-cache", notes_arg]);
    assert_eq!(status, 2);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");

    // The command: a first run writes the cache, a second reuses it, -ro leaves it as it is.
    let cache = dir.path().join("run.cache");
    let cache_arg = cache.to_str().unwrap();
    let args = [
        "run",
        "-m",
        micro_arg,
        "-p",
        "Once upon a time",
        "-n",
        "2",
        "--temp",
        "0",
        "--prompt-cache",
        cache_arg,
    ];
    assert_eq!(hartlm(&args), 0);
    let first = std::fs::read(&cache).unwrap();
    assert_eq!(hartlm(&[&args[..], &["--prompt-cache-all"]].concat()), 0);
    let all = std::fs::read(&cache).unwrap();
    assert!(all.len() > first.len(), "--prompt-cache-all saves the generated tokens too");
    let longer =
        ["run", "-m", micro_arg, "-p", "Once upon a time there", "-n", "2", "--prompt-cache", cache_arg];
    assert_eq!(hartlm(&[&longer[..], &["--prompt-cache-ro"]].concat()), 0);
    assert_eq!(std::fs::read(&cache).unwrap(), all, "-ro never writes");
    assert_eq!(
        hartlm(&["run", "-m", micro_arg, "-cnv", "--prompt-cache", cache_arg]),
        2,
        "-cnv has no prompt cache"
    );
}
