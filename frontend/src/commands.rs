//! The one-shot commands: `run`, `bench`, `bench-kernel`, `quantize`, `tokenize`, `info` and
//! `logits`, each checking its flags, driving the engine table and printing its output format.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use hartlm_abi::engine::{
    CACHE_F16, ContextParams, KERNEL_MATVEC, KERNEL_READ, KERNEL_SSM_CONV, KernelBenchRequest,
};

use crate::cli::{
    BenchArgs, BenchFormat, ConvImpl, Defaults, EvalArgs, KernelBench, QuantType, RunArgs, check_threads,
    open, refuse, refuse_overwriting_input,
};
use crate::engine::{Context, Engine, Model};
use crate::generate::{Generation, feed_prompt, generate};
use crate::sampler::Sampler;
use crate::stream::StreamDecoder;
use crate::template::{ChatTemplate, Message};

/// The context parameters `eval` asks for on a model trained for `n_ctx_train`, holding at
/// least `min_ctx` tokens in each of `n_seq` sequences.
pub fn context_params(
    eval: &EvalArgs,
    defaults: &Defaults,
    n_ctx_train: usize,
    min_ctx: usize,
    n_seq: usize,
) -> Result<ContextParams> {
    let (batch, generate) = defaults.threads(eval.threads, eval.threads_batch)?;
    let n_ctx = eval.ctx.unwrap_or(n_ctx_train.min(4096)).max(min_ctx);
    let Ok(n_ctx) = u32::try_from(n_ctx) else {
        return refuse(format!("-c {n_ctx} is more context than hartlm supports"));
    };
    if n_ctx == 0 {
        return refuse("-c must be at least 1".into());
    }
    Ok(ContextParams {
        n_ctx,
        n_seq: n_seq as u32,
        threads_batch: batch as u32,
        threads_gen: generate as u32,
        cache_type: if eval.cache_f16()? { CACHE_F16 } else { 0 },
    })
}

/// The chat template of `--chat-template-file` when given, else the model's (or the named
/// fallback).
pub fn chat_template(m: &Model, file: Option<&Path>) -> Result<ChatTemplate> {
    let tok = m.tokenizer().map_err(anyhow::Error::msg)?;
    let bos = tok.bos_text.clone().unwrap_or_default();
    let eos = tok.eos_text.clone().unwrap_or_default();
    let Some(file) = file else {
        return ChatTemplate::new(m.info.chat_template.as_deref(), &bos, &eos).map_err(anyhow::Error::msg);
    };
    let text = hartlm_abi::files::read_text_capped(file, 1 << 20)
        .with_context(|| format!("--chat-template-file {}", file.display()))?;
    let mut t = ChatTemplate::new(Some(&text), &bos, &eos)
        .map_err(|e| crate::cli::Refused(format!("--chat-template-file {}: {e}", file.display())))?;
    t.source = format!("{} (--chat-template-file)", file.display());
    Ok(t)
}

/// Tokens of rendered chat text: special tokens parsed, and BOS added only where the model
/// wants one and the template did not already write it.
pub fn chat_tokens(m: &Model, text: &str) -> Vec<u32> {
    let tokens = m.tokenize(text, true, true);
    let bos = m.tokenizer().ok().and_then(|t| t.bos);
    match tokens.as_slice() {
        [a, b, ..] if Some(*a) == bos && Some(*b) == bos => tokens[1..].to_vec(),
        _ => tokens,
    }
}

pub fn run(engine: &Engine, args: RunArgs, defaults: &Defaults) -> Result<()> {
    let sampling = args.sampling.config()?;
    note_gpu_layers(args.n_gpu_layers.as_deref());
    let prompt = args.prompt.text()?;
    if args.conversation {
        if args.prompt_cache.is_some() {
            return refuse(
                "--prompt-cache keeps one prompt's state for `run`; it does not apply to -cnv".into(),
            );
        }
        let chat = crate::cli::ChatArgs {
            model: args.model,
            system: args.system,
            n_predict: args.n_predict.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            eval: args.eval,
            sampling: args.sampling,
            verbose: args.verbose,
            chat_template_file: args.chat_template_file,
            n_gpu_layers: None,
        };
        return crate::chat::run_chat(engine, chat, defaults, prompt);
    }
    let Some(prompt) = prompt else {
        return refuse("give a prompt with -p TEXT or -f FILE (or chat with -cnv)".into());
    };
    let n_predict = args.n_predict.unwrap_or(128);
    let m = open(engine, &args.model.model, false)?;
    let c = m.config()?.clone();
    m.tokenizer().map_err(|e| anyhow::anyhow!("{}: {e}", args.model.model.display()))?;
    let chat = args.chat || args.system.is_some();
    let text = if chat {
        let template = chat_template(&m, args.chat_template_file.as_deref())?;
        if args.verbose {
            eprintln!("hartlm: chat template: {}", template.source);
        }
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(Message::new("system", s));
        }
        messages.push(Message::new("user", &prompt));
        template.render(&messages, true, &Default::default()).map_err(anyhow::Error::msg)?
    } else {
        prompt.clone()
    };
    let params = context_params(&args.eval, defaults, c.n_ctx_train, 0, 1)?;
    let n_ctx = params.n_ctx as usize;
    // Known before tokenizing: a token covers at most the longest vocabulary entry's bytes,
    // so a prompt that cannot fit is refused without the work.
    let longest = m.tokenizer().map_or(1, |t| t.max_token_bytes.max(1));
    let at_least = text.len().div_ceil(longest);
    if at_least > n_ctx {
        bail!(
            "the prompt of {} bytes is at least {at_least} tokens, more than the context of {n_ctx}; raise -c or shorten it",
            text.len()
        );
    }
    let tokens = if chat { chat_tokens(&m, &text) } else { m.tokenize(&text, true, false) };
    if tokens.is_empty() {
        bail!("the prompt produced no tokens");
    }
    if tokens.len().checked_add(n_predict).is_none_or(|n| n > n_ctx) {
        bail!(
            "{} prompt tokens + {n_predict} to generate exceed the context of {n_ctx}; raise -c or lower -n",
            tokens.len()
        );
    }
    if args.verbose {
        eprintln!("hartlm: {} prompt tokens", tokens.len());
    }
    let mut ctx = m.context(params)?;
    let cache = match &args.prompt_cache {
        Some(path) => {
            Some(crate::prompt_cache::PromptCache::open(path, &args.model.model, &mut ctx, &tokens)?)
        }
        None => None,
    };
    let reused = cache.as_ref().map_or(0, |c| c.reused);
    if let Some(c) = &cache {
        eprintln!(
            "hartlm: prompt cache {}: {reused} of {} prompt tokens reused",
            c.path.display(),
            tokens.len()
        );
    }
    // The prompt is echoed with the first generated token, so an error comes out alone.
    let mut out = std::io::stdout().lock();
    let echo = format!("{prompt}{}", if chat { "\n" } else { "" });
    let prompt_secs = feed_prompt(&mut ctx, 0, &tokens[reused..])?;
    let write_cache = cache.as_ref().filter(|_| !args.prompt_cache_ro);
    if let Some(c) = write_cache.filter(|_| !args.prompt_cache_all && reused < tokens.len()) {
        c.save(&ctx, &tokens)?;
    }
    let mut sampler = Sampler::new(sampling);
    let mut decoder = StreamDecoder::default();
    let mut echoed = false;
    let mut history = tokens.clone();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let Generation { tokens: generated, secs: gen_secs, .. } =
        generate(&mut ctx, 0, &mut sampler, &mut history, n_predict, &stop, |piece| {
            if !std::mem::replace(&mut echoed, true) {
                write!(out, "{echo}")?;
            }
            write!(out, "{}", decoder.push(piece))?;
            out.flush()
        })?;
    if !echoed {
        write!(out, "{echo}")?;
    }
    writeln!(out, "{}", decoder.finish())?;
    if let Some(c) = write_cache.filter(|_| args.prompt_cache_all) {
        c.save(&ctx, &history)?;
    }
    let evaluated = tokens.len() - reused;
    eprintln!(
        "prompt: {} tokens in {prompt_secs:.2} s ({:.1} t/s); generated: {} tokens in {gen_secs:.2} s ({:.1} t/s)",
        evaluated,
        evaluated as f64 / prompt_secs.max(1e-9),
        generated.len(),
        generated.len() as f64 / gen_secs.max(1e-9)
    );
    Ok(())
}

/// llama.cpp's -ngl means nothing on a CPU engine: say so once instead of refusing the flag.
pub fn note_gpu_layers(ngl: Option<&str>) {
    if let Some(n) = ngl {
        eprintln!(
            "hartlm: note: -ngl {} ignored: hartlm runs every layer on the CPU",
            hartlm_abi::text::escape_controls(n)
        );
    }
}

pub fn bench(engine: &Engine, args: BenchArgs, defaults: &Defaults) -> Result<()> {
    let list = |flag: &str, text: &str| {
        crate::bench::parse_list(text).map_err(|e| crate::cli::Refused(format!("{flag}: {e}")))
    };
    let (n_prompt, n_gen, depth) =
        (list("-p", &args.n_prompt)?, list("-n", &args.n_gen)?, list("-d", &args.depth)?);
    let pg = match &args.pg {
        Some(p) => crate::bench::parse_pairs(p).map_err(crate::cli::Refused)?,
        None => Vec::new(),
    };
    let threads = match &args.threads {
        Some(t) => {
            let mut out = Vec::new();
            for n in list("-t", t)? {
                let n = check_threads("-t", n)?;
                out.push((n, n));
            }
            out
        }
        None => vec![defaults.threads(None, None)?],
    };
    if args.reps == 0 {
        return refuse("-r must be at least 1".into());
    }
    // Token counts size the benchmark's buffers: past this they would exhaust memory, not
    // measure anything.
    const MAX_BENCH_TOKENS: usize = 1 << 20;
    let most = n_prompt.iter().chain(&n_gen).chain(&depth).chain(pg.iter().flat_map(|(p, g)| [p, g]));
    if let Some(n) = most.copied().find(|&n| n > MAX_BENCH_TOKENS) {
        return refuse(format!("{n} tokens: at most {MAX_BENCH_TOKENS} per -p, -n, -pg or -d value"));
    }
    let tests = crate::bench::tests(&n_prompt, &n_gen, &pg, &depth);
    if tests.is_empty() {
        return refuse("-p, -n and -pg leave no test to run".into());
    }
    let m = open(engine, &args.model.model, false)?;
    let c = m.config()?;
    let f16 = args.cache_type == crate::cli::CacheType::F16;
    let spec =
        crate::bench::Spec { tests, threads, reps: args.reps, warmup: !args.no_warmup, cache_f16: f16 };
    let rows = crate::bench::run(&m, &spec)?;
    // Name the model like llama-bench: architecture, size and the type holding most weight bytes.
    let main_type = m.info.tensor_types.iter().max_by_key(|(_, s)| s.bytes).map_or("?", |(t, _)| t.as_str());
    let n_params = m.info.n_params;
    let size = if n_params >= 1_000_000_000 {
        format!("{:.1}B", n_params as f64 / 1e9)
    } else {
        format!("{}M", n_params / 1_000_000)
    };
    let columns = crate::bench::ModelColumns {
        filename: args.model.model.display().to_string(),
        label: format!("{} {size} {main_type}", c.arch),
        size_bytes: m.info.size_bytes,
        n_params,
        tier: defaults.tier_id.clone(),
        vlen: defaults.vlen_bits,
        build_commit: crate::BUILD_COMMIT.to_string(),
        cpu_info: cpu_info(),
        cache_type: if f16 { "f16" } else { "f32" },
    };
    let mut out = std::io::stdout().lock();
    match args.output {
        BenchFormat::Md => write!(out, "{}", crate::bench::markdown(&columns, &rows))?,
        BenchFormat::Csv => write!(out, "{}", crate::bench::csv(&columns, &rows))?,
        BenchFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&crate::bench::json_rows(&columns, &rows))?)?
        }
        BenchFormat::Jsonl => {
            for r in crate::bench::json_rows(&columns, &rows) {
                writeln!(out, "{r}")?;
            }
        }
    }
    Ok(())
}

/// The CPU's name as /proc/cpuinfo gives it (`model name`, or RISC-V's `uarch`/`isa`).
fn cpu_info() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "uarch", "isa"] {
        let value = text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        });
        if let Some(v) = value {
            return v;
        }
    }
    String::new()
}

pub fn bench_kernel(engine: &Engine, kernel: KernelBench) -> Result<()> {
    let req = match kernel {
        KernelBench::SsmConv { channels, taps, tokens, reps, which } => KernelBenchRequest {
            kernel: KERNEL_SSM_CONV,
            channels,
            taps,
            tokens,
            reps,
            reference: u32::from(matches!(which, ConvImpl::Ggml)),
            ..Default::default()
        },
        KernelBench::Matvec { ty, size_mib, batch, threads, reps } => KernelBenchRequest {
            kernel: KERNEL_MATVEC,
            ggml_type: ty as u32,
            size_mib,
            batch,
            threads,
            reps,
            ..Default::default()
        },
        KernelBench::Read { size_mib, threads, reps } => {
            KernelBenchRequest { kernel: KERNEL_READ, size_mib, threads, reps, ..Default::default() }
        }
    };
    let line = engine.bench_kernel(&req)?;
    hartlm_abi::sayln!("{line}");
    Ok(())
}

pub fn quantize(
    engine: &Engine,
    path: &Path,
    output: &Path,
    ty: QuantType,
    pure: bool,
    allow_requantize: bool,
) -> Result<()> {
    refuse_overwriting_input(path, output)?;
    let ggml_type = match ty {
        QuantType::Q4_0 => 2,
        QuantType::Q8_0 => 8,
    };
    // Per-tensor progress only on a terminal (a pipe or log gets the one result line), and
    // tensor names from the file with their control characters escaped.
    let progress = crate::progress::Progress::new();
    let result = engine.quantize(path, output, ggml_type, pure, allow_requantize, |i, n, name| {
        progress.show(&format!("quantize: [{i}/{n}] {name}"));
    });
    progress.clear();
    result?;
    eprintln!(
        "quantize: wrote {} ({:.1} MiB)",
        hartlm_abi::text::escape_controls(&output.display().to_string()),
        std::fs::metadata(output)?.len() as f64 / 1048576.0
    );
    Ok(())
}

#[derive(Clone, Copy)]
pub enum TokenListing {
    /// `id -> 'piece'`, a line per token (the piece's control characters escaped).
    Pieces,
    Ids,
    Count,
}

pub fn tokenize(
    engine: &Engine,
    path: &Path,
    text: &str,
    show: TokenListing,
    add_special: bool,
    parse_special: bool,
) -> Result<()> {
    let m = open(engine, path, true)?;
    m.tokenizer().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let tokens = m.tokenize(text, add_special, parse_special);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match show {
        TokenListing::Count => writeln!(out, "{}", tokens.len())?,
        TokenListing::Ids => {
            let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
            writeln!(out, "[{}]", list.join(", "))?;
        }
        TokenListing::Pieces => {
            for id in tokens {
                let piece = String::from_utf8_lossy(&m.piece(id)).into_owned();
                writeln!(out, "{id:>6} -> '{}'", hartlm_abi::text::escape_controls(&piece))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn info(engine: &Engine, path: &Path) -> Result<()> {
    let m = open(engine, path, false)?;
    let c = m.config()?;
    let i = &m.info;
    let types: Vec<String> = i.tensor_types.iter().map(|(t, s)| format!("{t} x{}", s.count)).collect();
    let escape = |s: &str| hartlm_abi::text::escape_controls(s).into_owned();
    let vocab_model = match i.vocab_model.as_deref() {
        Some("llama") => "llama (SentencePiece)".to_string(),
        Some("gpt2") => "gpt2 (byte-level BPE)".to_string(),
        Some(other) => escape(other),
        None => "none".to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "file:          {} ({:.1} MiB, GGUF v{})",
        escape(&path.display().to_string()),
        i.file_bytes as f64 / 1048576.0,
        i.gguf_version
    )?;
    writeln!(out, "architecture:  {}", c.arch)?;
    writeln!(out, "parameters:    {} ({:.1} M)", i.n_params, i.n_params as f64 / 1e6)?;
    writeln!(
        out,
        "shape:         {} layers, n_embd {}, {} heads / {} KV heads of {}, n_ff {}",
        c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff
    )?;
    let convs = c.layer_kinds.chars().filter(|&k| k == 'C').count();
    if convs > 0 {
        writeln!(
            out,
            "layers:        {} ({convs} short-conv of {} taps, C; attention, A)",
            c.layer_kinds, c.conv_taps
        )?;
    }
    writeln!(out, "context:       {} (trained)", c.n_ctx_train)?;
    writeln!(
        out,
        "rope:          {}, base {}, {} dims{}",
        if c.rope_neox { "neox" } else { "normal" },
        c.rope_base,
        c.rope_dims,
        if c.rope_freq_scale != 1.0 {
            format!(", linear scale {}", 1.0 / c.rope_freq_scale)
        } else {
            String::new()
        }
    )?;
    writeln!(out, "tensor types:  {}", types.join(", "))?;
    writeln!(out, "vocabulary:    {vocab_model}, {} tokens", c.n_vocab)?;
    writeln!(out, "chat template: {}", if i.chat_template.is_some() { "present" } else { "none" })?;
    Ok(())
}

pub fn logits(
    engine: &Engine,
    path: &Path,
    tokens: &[u32],
    output: &Path,
    batch: usize,
    eval: &EvalArgs,
    defaults: &Defaults,
) -> Result<()> {
    refuse_overwriting_input(path, output)?;
    refuse_overwriting_input(path, &output.with_extension("ids.json"))?;
    let m = open(engine, path, false)?;
    let c = m.config()?;
    if tokens.is_empty() {
        bail!("no tokens given");
    }
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
        return refuse(format!("token id {t} is past the vocabulary of {} tokens", c.n_vocab));
    }
    let params = context_params(eval, defaults, c.n_ctx_train, tokens.len(), 1)?;
    let mut ctx = m.context(params)?;
    let logits = all_logits(&mut ctx, tokens, batch)?;
    let npy = crate::npy::encode_f32(&logits, tokens.len(), c.n_vocab);
    write_atomic(output, &npy)?;
    let ids = output.with_extension("ids.json");
    let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
    write_atomic(&ids, format!("[{}]\n", list.join(", ")).as_bytes())?;
    eprintln!("wrote {} [{}, {}] and {}", output.display(), tokens.len(), c.n_vocab, ids.display());
    Ok(())
}

/// The logits of every position, `[tokens, n_vocab]`, fed in chunks of `batch` (0: at once).
pub fn all_logits(ctx: &mut Context, tokens: &[u32], batch: usize) -> Result<Vec<f32>> {
    let chunk = if batch == 0 { tokens.len().max(1) } else { batch };
    let mut out = Vec::new();
    for part in tokens.chunks(chunk) {
        ctx.decode(part, &vec![0; part.len()], &vec![true; part.len()])?;
        for row in 0..part.len() {
            out.extend_from_slice(ctx.logits(row));
        }
    }
    Ok(out)
}

/// [`hartlm_abi::atomic::write_atomic`] with the path in the error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    hartlm_abi::atomic::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}
