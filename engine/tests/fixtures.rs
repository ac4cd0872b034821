// Teacher-forced logits against llama.cpp's recorded outputs for the shared fixture models
// (../shared/fixtures, see its README for provenance and the tolerances used here).

use std::path::{Path, PathBuf};

use hartlm_engine::eval::{Session, all_logits, logits_in_calls};
use hartlm_engine::model::Model;
use hartlm_engine::pool::Threads;
use hartlm_test_support::oracle::{CASES, GENERATED_CASES, Oracle};

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    assert!(
        dir.join("README.md").is_file(),
        "fixtures not found at {}: CI provides ../shared",
        dir.display()
    );
    dir
}

fn ids(path: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Teacher-forced logits of every fixture in `oracle::CASES` whose name starts with `prefix`.
fn check(prefix: &str) {
    let dir = fixtures();
    let cases: Vec<_> = CASES.iter().filter(|c| c.name.starts_with(prefix)).collect();
    assert!(!cases.is_empty(), "no fixtures named {prefix}*");
    for case in cases {
        let model = Model::open(&dir.join(format!("models/{}.gguf", case.name))).unwrap();
        let oracle = Oracle::load(&dir, case.name).unwrap();
        assert_eq!(oracle.n_vocab, model.config.n_vocab);
        let ours =
            all_logits(&model, &oracle.tokens(), 0, Session::new(model.config.n_ctx_train, 2)).unwrap();
        let c = oracle.compare(&ours, case.margin);
        eprintln!("{}: max |dlogit| = {:.2e}", case.name, c.max_abs);
        assert!(
            c.passes(case),
            "{}: {c:?} exceeds tolerance {} / margin {}",
            case.name,
            case.tol,
            case.margin
        );
    }
}

#[test]
fn llama_micro() {
    check("micro-");
}

#[test]
fn llama_s288() {
    check("s288-");
}

#[test]
fn qwen3_micro() {
    check("qwen3-micro-");
}

#[test]
fn lfm2_micro() {
    check("lfm2-micro-");
}

/// LFM2's conv state is carried across calls: llama.cpp's recordings with the prompt fed as
/// 10 + 15 tokens, token by token and in micro-batches of 4 (then the greedy tokens one per
/// call) are matched at the same tolerances. Dropping the state moves later logits by 8-12.
#[test]
fn lfm2_chunked_prompts_match_llama_cpp() {
    use hartlm_test_support::oracle::Chunking;
    let dir = fixtures();
    for case in CASES.iter().filter(|c| c.name.starts_with("lfm2-")) {
        let model = Model::open(&dir.join(format!("models/{}.gguf", case.name))).unwrap();
        for chunking in Chunking::ALL {
            let oracle = Oracle::load_chunked(&dir, case.name, chunking).unwrap();
            let mut calls = chunking.calls(oracle.prompt_ids.len());
            calls.extend(std::iter::repeat_n(1, oracle.greedy_ids.len()));
            let ours = logits_in_calls(&model, &oracle.tokens(), &calls, Session::new(128, 2)).unwrap();
            let c = oracle.compare(&ours, case.margin);
            eprintln!("{} {}: max |dlogit| = {:.2e}", case.name, chunking.name(), c.max_abs);
            assert!(
                c.passes(case),
                "{} {}: {c:?} exceeds tolerance {}",
                case.name,
                chunking.name(),
                case.tol
            );
        }
    }
}

/// A reset state forgets the conv state too: the same prompt gives the same logits again.
#[test]
fn reset_clears_the_conv_state() {
    use hartlm_engine::model::{CacheType, Logits, State};
    let dir = fixtures();
    let model = Model::open(&dir.join("models/lfm2-micro-f32.gguf")).unwrap();
    let tokens = Oracle::load(&dir, "lfm2-micro-f32").unwrap().prompt_ids;
    let mut state = State::new(&model.config, 64, 1, CacheType::F32).unwrap();
    let nv = model.config.n_vocab;
    let (mut first, mut second) = (vec![0.0; nv], vec![0.0; nv]);
    model.forward_batch(&mut state, &tokens, Logits::Last(&mut first)).unwrap();
    state.reset();
    model.forward_batch(&mut state, &tokens, Logits::Last(&mut second)).unwrap();
    assert!(first == second, "logits after reset differ");
}

/// Free-running greedy generation reproduces llama.cpp's ids (f32 files, where no step's
/// top-1/top-2 margin is small enough for float noise to flip it).
#[test]
fn greedy_generation_matches_llama_cpp() {
    use hartlm_engine::gguf::GgufFile;
    use hartlm_engine::tokenizer::Tokenizer;
    let dir = fixtures();
    for name in ["micro-f32", "s288-f32", "qwen3-micro-f32", "lfm2-micro-f32", "lfm2-micro-l3-f32"] {
        let path = dir.join(format!("models/{name}.gguf"));
        let model = Model::open(&path).unwrap();
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        let prompt = tok.encode("Once upon a time, there was a little cat named Tom.", true, false);
        assert_eq!(prompt, ids(&dir.join(format!("oracle/{name}.prompt_ids.json"))), "{name} prompt");
        let want = ids(&dir.join(format!("oracle/{name}.greedy_ids.json")));
        let got =
            hartlm_engine::eval::greedy(&model, &tok, &prompt, want.len(), Session::new(128, 1)).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

/// qwen2 (QKV bias, NEOX RoPE, tied output) in F32 and F16, generated by `cargo xtask
/// fetch-models` with the fixtures' generator, against its numpy reference.
#[test]
fn qwen2_micro_generated() {
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures-gen");
    assert!(generated.is_dir(), "{} is missing: run `cargo xtask fetch-models`", generated.display());
    for case in GENERATED_CASES {
        let model = Model::open(&generated.join(format!("{}.gguf", case.name))).unwrap();
        let oracle = Oracle::load_generated(&generated, &fixtures(), case.name).unwrap();
        let ours = all_logits(&model, &oracle.tokens(), 0, Session::new(128, 1)).unwrap();
        let c = oracle.compare(&ours, case.margin);
        eprintln!("{}: max |dlogit| = {:.2e}", case.name, c.max_abs);
        assert!(c.passes(case), "{}: {c:?} exceeds tolerance {}", case.name, case.tol);
    }
}

/// Rows are split across threads but each is computed the same way: any -t gives identical bits.
#[test]
fn logits_do_not_depend_on_the_thread_count() {
    let dir = fixtures();
    for name in ["s288-q4_0", "s288-f32"] {
        let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
        let tokens = Oracle::load(&dir, name).unwrap().tokens();
        let one = all_logits(&model, &tokens, 0, Session::new(64, 1)).unwrap();
        for t in [2, 3] {
            assert!(
                one == all_logits(&model, &tokens, 0, Session::new(64, t)).unwrap(),
                "{name}: -t {t} differs from -t 1"
            );
        }
        // Prompt batches and single-token steps on different worker counts (the pool wakes
        // only the generation workers for the steps): a 4-token batch, then one at a time.
        let calls: Vec<usize> = std::iter::once(4).chain(std::iter::repeat_n(1, tokens.len() - 4)).collect();
        let serial = logits_in_calls(&model, &tokens, &calls, Session::new(64, 1)).unwrap();
        for (batch, generate) in [(3, 1), (1, 3), (2, 3)] {
            let session = Session { threads: Threads { batch, generate }, ..Session::new(64, 1) };
            assert!(
                serial == logits_in_calls(&model, &tokens, &calls, session).unwrap(),
                "{name}: --threads-batch {batch} -t {generate} differs from -t 1"
            );
        }
    }
}

/// The F16 KV cache is really used (results change) and stays close to llama.cpp's F32-cache
/// logits: it only rounds K, V, Q and the attention weights to F16.
#[test]
fn f16_kv_cache_stays_close() {
    use hartlm_engine::model::CacheType;
    let dir = fixtures();
    for name in ["micro-f32", "s288-f32", "qwen3-micro-f32"] {
        let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
        let oracle = Oracle::load(&dir, name).unwrap();
        let f32_cache = all_logits(&model, &oracle.tokens(), 0, Session::new(64, 1)).unwrap();
        let session = Session { cache: CacheType::F16, ..Session::new(64, 1) };
        let f16_cache = all_logits(&model, &oracle.tokens(), 0, session).unwrap();
        assert!(f32_cache != f16_cache, "{name}: --cache-type f16 changed nothing");
        let c = oracle.compare(&f16_cache, 0.0);
        eprintln!("{name} with an F16 cache: max |dlogit| = {:.2e}", c.max_abs);
        assert!(c.max_abs < 0.05, "{name}: {c:?}");
    }
}

/// A prompt processed in micro-batches gives exactly the logits of feeding it token by token
/// (and of any other chunking): batching only changes the order in which dots are computed.
#[test]
fn batching_does_not_change_logits() {
    let dir = fixtures();
    for name in ["s288-q4_0", "qwen3-micro-f32", "lfm2-micro-q4_0", "lfm2-micro-l3-f32"] {
        let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
        let tokens = Oracle::load(&dir, name).unwrap().tokens();
        let one_by_one = all_logits(&model, &tokens, 1, Session::new(64, 2)).unwrap();
        for batch in [0, 7, 10] {
            let got = all_logits(&model, &tokens, batch, Session::new(64, 2)).unwrap();
            assert!(got == one_by_one, "{name}: --batch {batch} differs from token by token");
        }
    }
}

/// An impossible context size is a clear error, not an allocation abort.
#[test]
fn huge_context_is_refused_cleanly() {
    use hartlm_engine::model::{CacheType, State};
    let model = Model::open(&fixtures().join("models/micro-f32.gguf")).unwrap();
    for n_ctx in [usize::MAX / 4, 1 << 40] {
        let err = State::new(&model.config, n_ctx, 1, CacheType::F32).err().expect("must fail");
        assert!(err.to_string().contains("lower -c"), "{err}");
    }
}

/// Sequences decoded together (rows of two prompts interleaved in one batch, then one token of
/// each per step, as the server's slots run) give exactly the logits each gives alone; cutting
/// a sequence back and re-feeding it does too, where the model can cut.
#[test]
fn sequences_in_one_batch_match_sequences_alone() {
    use hartlm_engine::model::{CacheType, State};
    let dir = fixtures();
    for name in ["s288-q4_0", "qwen3-micro-f32", "lfm2-micro-q4_0"] {
        let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
        let tokens = Oracle::load(&dir, name).unwrap().tokens();
        let nv = model.config.n_vocab;
        let (a, b) = (&tokens[..9], &tokens[3..14]);
        let alone = |t: &[u32]| all_logits(&model, t, 0, Session::new(64, 1)).unwrap();
        let (want_a, want_b) = (alone(a), alone(b));
        // Prompts: a[..5] and b[..7] interleaved in one call; then a[5..] and b[7..] one token
        // per sequence per call, b running on after a ends.
        let mut s = State::with_seqs(&model.config, 64, 2, Threads::uniform(2), CacheType::F32).unwrap();
        let (mut got_a, mut got_b) = (vec![0.0; a.len() * nv], vec![0.0; b.len() * nv]);
        let mut rows: Vec<(u32, usize, usize)> = Vec::new(); // (token, seq, position)
        for i in 0..7 {
            if i < 5 {
                rows.push((a[i], 0, i));
            }
            rows.push((b[i], 1, i));
        }
        let mut steps = vec![rows];
        for i in 0.. {
            let step: Vec<(u32, usize, usize)> = [(a, 0, 5 + i), (b, 1, 7 + i)]
                .iter()
                .filter(|(t, _, p)| *p < t.len())
                .map(|&(t, q, p)| (t[p], q, p))
                .collect();
            if step.is_empty() {
                break;
            }
            steps.push(step);
        }
        for step in steps {
            let (toks, seqs): (Vec<u32>, Vec<usize>) = step.iter().map(|&(t, q, _)| (t, q)).unzip();
            let mut out = vec![0.0; step.len() * nv];
            model.decode(&mut s, &toks, &seqs, &vec![true; step.len()], &mut out).unwrap();
            for (k, &(_, q, p)) in step.iter().enumerate() {
                let dst = if q == 0 { &mut got_a } else { &mut got_b };
                dst[p * nv..(p + 1) * nv].copy_from_slice(&out[k * nv..(k + 1) * nv]);
            }
        }
        assert!(got_a == want_a, "{name}: sequence 0 differs from alone");
        assert!(got_b == want_b, "{name}: sequence 1 differs from alone");
        // Cut sequence 1 back to 4 tokens and feed the rest again (attention models only).
        let conv = name.starts_with("lfm2");
        assert_eq!(s.truncate(1, 4), !conv, "{name}: only attention-only models cut mid-sequence");
        if !conv {
            let mut out = vec![0.0; (b.len() - 4) * nv];
            model.decode(&mut s, &b[4..], &vec![1; b.len() - 4], &vec![true; b.len() - 4], &mut out).unwrap();
            assert!(out[..] == want_b[4 * nv..], "{name}: re-fed tokens after a cut differ");
        }
    }
}

/// A sequence's saved state, loaded into another sequence of a fresh context, continues exactly
/// as the original does (f32 and f16 caches, attention and conv models); a state for another
/// shape, cache type or a longer context, and a cut-short one, are refused and leave the
/// sequence empty.
#[test]
fn saved_sequence_state_continues_exactly() {
    use hartlm_engine::model::{CacheType, State};
    let dir = fixtures();
    for (name, cache) in [
        ("s288-q4_0", CacheType::F32),
        ("qwen3-micro-f32", CacheType::F16),
        ("lfm2-micro-q4_0", CacheType::F32),
    ] {
        let model = Model::open(&dir.join(format!("models/{name}.gguf"))).unwrap();
        let tokens = Oracle::load(&dir, name).unwrap().tokens();
        let nv = model.config.n_vocab;
        let (prompt, rest) = tokens[..12].split_at(7);
        let mut out = vec![0.0; nv];
        let mut a = State::with_seqs(&model.config, 32, 2, Threads::uniform(1), cache).unwrap();
        model.decode(&mut a, &tokens[..3], &[0usize; 3], &[false, false, true], &mut out).unwrap();
        model
            .decode(&mut a, prompt, &[1; 7], &[false, false, false, false, false, false, true], &mut out)
            .unwrap();
        let mut blob = Vec::new();
        a.save_seq(&model.config, 1, |b| blob.extend_from_slice(b));
        let mut b = State::with_seqs(&model.config, 32, 3, Threads::uniform(1), cache).unwrap();
        b.load_seq(&model.config, 2, &blob).unwrap();
        assert_eq!(b.seq_len(2), 7, "{name}");
        let (mut want, mut got) = (vec![0.0; nv], vec![0.0; nv]);
        for &t in rest {
            model.decode(&mut a, &[t], &[1], &[true], &mut want).unwrap();
            model.decode(&mut b, &[t], &[2], &[true], &mut got).unwrap();
            assert!(got == want, "{name}: the loaded state continues differently");
        }

        let other = if cache == CacheType::F32 { CacheType::F16 } else { CacheType::F32 };
        let mut c = State::with_seqs(&model.config, 32, 1, Threads::uniform(1), other).unwrap();
        let e = c.load_seq(&model.config, 0, &blob).unwrap_err();
        assert!(e.contains("another model or cache type"), "{name}: {e}");
        let mut short = State::with_seqs(&model.config, 6, 1, Threads::uniform(1), cache).unwrap();
        let e = short.load_seq(&model.config, 0, &blob).unwrap_err();
        assert!(e.contains("more than the context of 6"), "{name}: {e}");
        b.load_seq(&model.config, 0, &blob[..blob.len() - 1]).unwrap_err();
        assert_eq!(b.seq_len(0), 0, "{name}: a refused load leaves the sequence empty");
        let e = b.load_seq(&model.config, 2, b"not a state").unwrap_err();
        assert!(e.contains("not a hartlm sequence state"), "{name}: {e}");
        assert_eq!(b.seq_len(2), 0, "{name}");
    }
    let s288 = Model::open(&dir.join("models/s288-q4_0.gguf")).unwrap();
    let lfm2 = Model::open(&dir.join("models/lfm2-micro-q4_0.gguf")).unwrap();
    let s = State::with_seqs(&s288.config, 8, 1, Threads::uniform(1), CacheType::F32).unwrap();
    let mut blob = Vec::new();
    s.save_seq(&s288.config, 0, |b| blob.extend_from_slice(b));
    let mut l = State::with_seqs(&lfm2.config, 8, 1, Threads::uniform(1), CacheType::F32).unwrap();
    let e = l.load_seq(&lfm2.config, 0, &blob).unwrap_err();
    assert!(e.contains("another model"), "{e}");
}
