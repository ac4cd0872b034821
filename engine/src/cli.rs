//! The command line behind the launcher (`hartlm <command>`), parsed with clap.
//! `hartlm cpu` is answered by the launcher itself and never reaches this library.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::chat::ChatFormat;
use crate::eval::Session;
use crate::gguf::Value;
use crate::model::{CacheType, LayerKind, Model};
use crate::pool::Threads;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tier::Launch;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::types::GgmlType;

#[derive(Parser)]
#[command(
    name = "hartlm",
    version,
    about = "LLM inference for RISC-V and x86-64, built per ISA tier",
    after_help = "Also: `hartlm cpu [--json]` shows the detected CPU and which tier runs.\n\
                  Environment: HARTLM_TIER=<id> forces a tier; HARTLM_LIB_DIR overrides lib/."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every kernel of the loaded tier against its scalar reference.
    Selftest {
        /// Seed for the random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate text from a prompt, streaming tokens as they are produced.
    Run {
        #[arg(short, long)]
        model: PathBuf,
        #[command(flatten)]
        prompt: PromptArgs,
        /// Tokens to generate.
        #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
        n_predict: usize,
        #[command(flatten)]
        eval: EvalArgs,
        /// Temperature; 0 is greedy.
        #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
        temp: f32,
        #[arg(long, default_value_t = 40)]
        top_k: usize,
        #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
        top_p: f32,
        #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
        min_p: f32,
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        repeat_penalty: f32,
        #[arg(long, default_value_t = 64)]
        repeat_last_n: usize,
        #[arg(long, default_value_t = 0xdead_beef)]
        seed: u64,
        /// Wrap the prompt in the model's chat template (ChatML, Llama-2 or Zephyr).
        #[arg(long)]
        chat: bool,
    },
    /// Measure prompt processing and generation speed, as llama-bench does.
    Bench {
        #[arg(short, long)]
        model: PathBuf,
        /// Prompt tokens for the ppN test (0 skips it).
        #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
        n_prompt: usize,
        /// Generated tokens for the tgN test (0 skips it).
        #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
        n_gen: usize,
        /// Thread counts, comma-separated, each used for both tests (default: all the placement's
        /// cores for ppN, at most the memory-bandwidth knee for tgN).
        #[arg(short = 't', long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// Repetitions per test.
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: usize,
        /// Skip the untimed warm-up run before each test.
        #[arg(long)]
        no_warmup: bool,
        /// KV cache element type.
        #[arg(long, value_enum, default_value = "f32")]
        cache_type: CacheType,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "md")]
        output: BenchFormat,
    },
    /// Time one kernel on random data (`cargo xtask bench-insn --kernel` counts its instructions).
    BenchKernel {
        #[command(subcommand)]
        kernel: KernelBench,
    },
    /// Write a copy of a model with its weight matrices quantized (ggml's reference quantizers).
    Quantize {
        #[arg(short, long)]
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Target type for weight matrices.
        #[arg(long = "type", value_enum)]
        ty: QuantType,
        /// Quantize every matrix, output.weight included (llama-quantize --pure).
        #[arg(long)]
        pure: bool,
        /// Requantize matrices that are already quantized (llama-quantize --allow-requantize);
        /// their rounding errors compound, so this is refused without it.
        #[arg(long)]
        allow_requantize: bool,
    },
    /// Print the tokens a prompt becomes, as llama-tokenize does.
    Tokenize {
        #[arg(short, long)]
        model: PathBuf,
        #[command(flatten)]
        prompt: PromptArgs,
        /// Print only the ids, as `[1, 2, 3]`.
        #[arg(long)]
        ids: bool,
        /// Print only the number of tokens.
        #[arg(long, conflicts_with = "ids")]
        show_count: bool,
        /// Do not add the model's BOS/EOS tokens.
        #[arg(long)]
        no_bos: bool,
        /// Turn control-token text (`<|im_start|>`) into those tokens.
        #[arg(long)]
        parse_special: bool,
    },
    /// Show a model's architecture, size, tensor types and vocabulary.
    Info {
        #[arg(short, long)]
        model: PathBuf,
    },
    /// Evaluate tokens and write the logits of every position as float32 .npy [n_tokens, n_vocab].
    Logits {
        #[arg(short, long)]
        model: PathBuf,
        /// Comma-separated token ids.
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<u32>,
        /// Output .npy; the ids are written beside it as <name>.ids.json.
        #[arg(short, long)]
        output: PathBuf,
        /// Feed the tokens in chunks of this many (0 = one batch).
        #[arg(long, default_value_t = 0)]
        batch: usize,
        #[command(flatten)]
        eval: EvalArgs,
    },
}

#[derive(Subcommand)]
enum KernelBench {
    /// LFM2's short convolution: `tokens` rows of `channels` channels, `taps` taps.
    SsmConv {
        #[arg(short, long, default_value_t = 1536)]
        channels: usize,
        #[arg(short = 'k', long, default_value_t = 4)]
        taps: usize,
        #[arg(short = 'T', long, default_value_t = 64)]
        tokens: usize,
        /// Calls to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: usize,
        #[arg(long = "impl", value_enum, default_value = "tier")]
        which: crate::bench::ConvImpl,
    },
    /// A matrix-vector product over MiB of weights (Q4_0: what `hartlm calibrate` times), the
    /// memory-bound work of token generation. Prints one JSON line.
    Matvec {
        /// Weight type.
        #[arg(long = "type", value_enum, default_value = "q4_0")]
        ty: MatvecType,
        /// Weight bytes, in MiB (larger than the caches, so memory bandwidth shows).
        #[arg(long, default_value_t = 32)]
        size_mib: usize,
        /// Vectors per product (1: token generation's matrix-vector product; more: a prompt's
        /// matrix-matrix product, through the prompt tiles where the tier has them).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(short = 't', long, default_value_t = 1)]
        threads: usize,
        /// Products to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: usize,
    },
    /// Memory read bandwidth: every thread sums its share of a buffer (the roofline token
    /// generation is measured against). Prints one JSON line.
    Read {
        /// Buffer size, in MiB (larger than the caches).
        #[arg(long, default_value_t = 256)]
        size_mib: usize,
        #[arg(short = 't', long, default_value_t = 1)]
        threads: usize,
        /// Passes to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: usize,
    },
}

/// Where the prompt comes from (shared by `run` and `tokenize`).
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PromptArgs {
    /// The prompt text.
    #[arg(short, long)]
    prompt: Option<String>,
    /// Read the prompt from this file (UTF-8, at most 64 MiB).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
}

impl PromptArgs {
    fn text(&self) -> Result<String> {
        const MAX_PROMPT_BYTES: u64 = 64 << 20;
        match (&self.prompt, &self.file) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(f)) => hartlm_abi::files::read_text_capped(f, MAX_PROMPT_BYTES)
                .with_context(|| format!("prompt file {}", f.display())),
            (None, None) => refuse("give a prompt with -p TEXT or -f FILE".into()),
        }
    }
}

/// How a sequence is evaluated (shared by `run` and `logits`).
#[derive(clap::Args)]
struct EvalArgs {
    /// Context size (default: the model's, at most 4096).
    #[arg(short = 'c', long)]
    ctx: Option<usize>,
    /// Threads (default: the cores the launcher placed hartlm on; for generation, at most the
    /// memory-bandwidth knee when known).
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Threads for prompt batches (default: -t if given, else all the placement's cores).
    #[arg(long)]
    threads_batch: Option<usize>,
    /// KV cache element type.
    #[arg(long, value_enum, default_value = "f32")]
    cache_type: CacheType,
}

impl EvalArgs {
    /// The session for a model whose trained context is `n_ctx_train`, holding at least `min_ctx`.
    fn session(&self, n_ctx_train: usize, min_ctx: usize) -> Result<Session> {
        Ok(Session {
            n_ctx: self.ctx.unwrap_or(n_ctx_train.min(4096)).max(min_ctx),
            threads: threads(self.threads, self.threads_batch)?,
            cache: self.cache_type,
        })
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum QuantType {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q8_0")]
    Q8_0,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MatvecType {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_1")]
    Q4_1,
    #[value(name = "q5_0")]
    Q5_0,
    #[value(name = "q5_1")]
    Q5_1,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_k")]
    Q4K,
    #[value(name = "q5_k")]
    Q5K,
    #[value(name = "q6_k")]
    Q6K,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchFormat {
    Md,
    Json,
    Jsonl,
}

/// Runs one command line; returns the exit status (2 for usage errors, as clap does).
pub fn main(args: Vec<OsString>, launch: &Launch) -> i32 {
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    LAUNCH_THREADS.store(launch.threads as usize, relaxed);
    LAUNCH_GEN_THREADS.store(launch.gen_threads as usize, relaxed);
    crate::pool::set_worker_cores(launch.cores.clone());
    crate::pool::set_ai_cores(launch.ai_cores.clone());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("hartlm: no command given; see `hartlm --help` (`hartlm cpu` describes this machine)");
            return 2;
        }
        Err(e) if !e.use_stderr() => {
            // --help and --version: their text goes to stdout, whole.
            hartlm_abi::say!("{}", e.render());
            return 0;
        }
        Err(e) => {
            eprintln!("hartlm: {}", one_line_usage_error(&e));
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Selftest { seed } => return crate::selftest::command(seed, launch),
        Command::Info { model } => info(&model),
        Command::BenchKernel { kernel } => bench_kernel(kernel, launch),
        Command::Quantize { model, output, ty, pure, allow_requantize } => {
            quantize(&model, &output, ty, pure, allow_requantize)
        }
        Command::Bench { model, n_prompt, n_gen, threads, reps, no_warmup, cache_type, output } => {
            let threads = threads.into_iter().map(Threads::uniform).collect();
            let spec =
                crate::bench::Spec { n_prompt, n_gen, threads, reps, warmup: !no_warmup, cache: cache_type };
            bench(&model, spec, output, launch)
        }
        Command::Run {
            model,
            prompt,
            n_predict,
            eval,
            temp,
            top_k,
            top_p,
            min_p,
            repeat_penalty,
            repeat_last_n,
            seed,
            chat,
        } => {
            let sampling = SamplerConfig { temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed };
            if let Err(e) = check_sampling(&sampling) {
                eprintln!("hartlm: {e}");
                return 2;
            }
            prompt.text().and_then(|p| run(&model, &p, n_predict, &eval, sampling, chat))
        }
        Command::Tokenize { model, prompt, ids, show_count, no_bos, parse_special } => {
            let show = match (ids, show_count) {
                (true, _) => TokenListing::Ids,
                (_, true) => TokenListing::Count,
                _ => TokenListing::Pieces,
            };
            prompt.text().and_then(|p| tokenize(&model, &p, show, !no_bos, parse_special))
        }
        Command::Logits { model, tokens, output, batch, eval } => {
            logits(&model, &tokens, &output, batch, &eval)
        }
    };
    match result {
        Ok(()) => 0,
        // The reader of our output went away (`| head`): nothing is wrong, and nobody listens.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            0
        }
        Err(e) => {
            // Errors quote file names, model strings and flag values: one line, no escapes.
            eprintln!("hartlm: {}", hartlm_abi::text::escape_controls(&format!("{e:#}")));
            if e.downcast_ref::<Refused>().is_some() { 2 } else { 1 }
        }
    }
}

/// clap's error as one line: its message without the `error: ` prefix, the values it quotes
/// escaped, and where to look next (clap's own rendering adds a usage block and a blank line).
fn one_line_usage_error(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    // The message runs until the blank line before clap's usage block; a list of missing
    // arguments continues it on indented lines.
    let message: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{}; see `hartlm --help`", hartlm_abi::text::escape_controls(message))
}

/// A request refused before any work is done: exit 2, as for bad flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Refuses an output path that is the input file itself (the same device and inode, whatever
/// the path says), so an output never destroys its input.
fn refuse_overwriting_input(input: &Path, output: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(i), Ok(o)) = (std::fs::metadata(input), std::fs::metadata(output))
        && (i.dev(), i.ino()) == (o.dev(), o.ino())
    {
        return Err(Refused(format!(
            "{} is the input model {}; choose another output path",
            output.display(),
            input.display()
        ))
        .into());
    }
    Ok(())
}

fn bench_kernel(kernel: KernelBench, launch: &Launch) -> Result<()> {
    match kernel {
        KernelBench::SsmConv { channels, taps, tokens, reps, which } => {
            if channels == 0 || taps == 0 || tokens == 0 || reps == 0 {
                return refuse("--channels, --taps, --tokens and --reps must be at least 1".into());
            }
            // Input, taps and output buffers, in floats; sizes that overflow are as refused.
            let floats = (tokens as u64)
                .checked_mul(2)
                .and_then(|t| t.checked_add(taps as u64))
                .and_then(|n| n.checked_mul(channels as u64))
                .filter(|&f| f <= 1 << 30);
            if floats.is_none() {
                return refuse(format!(
                    "{channels} channels x ({taps} taps + {tokens} tokens) needs more than 4 GiB of buffers; use smaller sizes"
                ));
            }
            let ns = crate::bench::time_ssm_conv(which, channels, taps, tokens, reps);
            let med = crate::bench::median(&ns);
            hartlm_abi::sayln!(
                "ssm_conv {} channels={channels} taps={taps} tokens={tokens}: median {:.1} us over {reps} \
                 calls, {:.2} Goutputs/s ({}{})",
                which.name(),
                med as f64 / 1e3,
                (channels * tokens) as f64 / med.max(1) as f64,
                launch.tier_id,
                if launch.vlen_bits > 0 { format!(", VLEN {}", launch.vlen_bits) } else { String::new() }
            );
            Ok(())
        }
        KernelBench::Matvec { ty, size_mib, batch, threads, reps } => {
            check_threads("-t", threads)?;
            if size_mib == 0 || size_mib > 4096 || reps == 0 || !(1..=512).contains(&batch) {
                return refuse("--size-mib must be 1..=4096, --batch 1..=512 and --reps at least 1".into());
            }
            let pool = crate::pool::Pool::new(threads);
            let ty = match ty {
                MatvecType::Q4_0 => GgmlType::Q4_0,
                MatvecType::Q4_1 => GgmlType::Q4_1,
                MatvecType::Q5_0 => GgmlType::Q5_0,
                MatvecType::Q5_1 => GgmlType::Q5_1,
                MatvecType::Q8_0 => GgmlType::Q8_0,
                MatvecType::Q4K => GgmlType::Q4K,
                MatvecType::Q5K => GgmlType::Q5K,
                MatvecType::Q6K => GgmlType::Q6K,
            };
            let (ns, bytes, macs) = crate::bench::time_matvec(ty, size_mib << 20, batch, &pool, reps);
            let med = crate::bench::median(&ns).max(1);
            let line = serde_json::json!({
                "kernel": format!("matvec_{}", ty.name().to_ascii_lowercase()),
                "tier": launch.tier_id,
                "vlen": launch.vlen_bits,
                "threads": threads,
                "batch": batch,
                "bytes": bytes,
                "median_ns": med,
                "gbps": bytes as f64 / med as f64,
                "gmacs": macs as f64 / med as f64,
            });
            hartlm_abi::sayln!("{line}");
            Ok(())
        }
        KernelBench::Read { size_mib, threads, reps } => {
            check_threads("-t", threads)?;
            if size_mib == 0 || size_mib > 4096 || reps == 0 {
                return refuse("--size-mib must be 1..=4096 and --reps at least 1".into());
            }
            let pool = crate::pool::Pool::new(threads);
            let (ns, bytes) = crate::bench::time_read(size_mib << 20, &pool, reps);
            let med = crate::bench::median(&ns).max(1);
            let line = serde_json::json!({
                "kernel": "read",
                "tier": launch.tier_id,
                "threads": threads,
                "bytes": bytes,
                "median_ns": med,
                "gbps": bytes as f64 / med as f64,
            });
            hartlm_abi::sayln!("{line}");
            Ok(())
        }
    }
}

fn open(path: &Path) -> Result<Model> {
    Model::open(path).with_context(|| format!("{}", path.display()))
}

/// The launcher's default thread counts (the cores of the cluster it pinned us to, and the
/// generation knee); 0 = none.
static LAUNCH_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LAUNCH_GEN_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check_threads(flag: &str, n: usize) -> Result<usize> {
    match n {
        0 => refuse(format!("{flag} must be at least 1")),
        n if n > 1024 => refuse(format!("{flag} {n} is more threads than hartlm supports (1024)")),
        n => Ok(n),
    }
}

/// Ends a command with a [`Refused`] error (exit 2): a flag value out of range.
fn refuse<T>(why: String) -> Result<T> {
    Err(Refused(why).into())
}

/// Thread counts from `-t` and `--threads-batch`, defaulting to the launcher's placement.
fn threads(t: Option<usize>, batch: Option<usize>) -> Result<Threads> {
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let all = match LAUNCH_THREADS.load(relaxed) {
        0 => crate::pool::physical_cores(),
        n => n,
    };
    let generate = match (t, LAUNCH_GEN_THREADS.load(relaxed)) {
        (Some(n), _) => check_threads("-t", n)?,
        (None, 0) => all,
        (None, knee) => knee.min(all),
    };
    let batch = match (batch, t) {
        (Some(b), _) => check_threads("--threads-batch", b)?,
        (None, Some(n)) => n,
        (None, None) => all,
    };
    Ok(Threads { batch, generate })
}

fn run(
    path: &Path,
    prompt: &str,
    n_predict: usize,
    eval: &EvalArgs,
    sampling: SamplerConfig,
    chat: bool,
) -> Result<()> {
    let m = open(path)?;
    let tok = Tokenizer::from_gguf(&m.file).with_context(|| format!("{}", path.display()))?;
    if tok.n_tokens() > m.config.n_vocab {
        bail!(
            "{}: the tokenizer has {} tokens but token_embd.weight only {} rows; the model is damaged",
            path.display(),
            tok.n_tokens(),
            m.config.n_vocab
        );
    }
    let text = if chat {
        let template = match m.file.get("tokenizer.chat_template") {
            Some(Value::Str(t)) => Some(t),
            _ => None,
        };
        ChatFormat::recognize(template).map_err(anyhow::Error::msg)?.format(prompt)
    } else {
        prompt.to_string()
    };
    let session = eval.session(m.config.n_ctx_train, 0)?;
    // Known before tokenizing: every token covers at most the longest vocabulary entry's bytes.
    let at_least = tok.fewest_tokens(text.len());
    if at_least > session.n_ctx {
        bail!(
            "the prompt of {} bytes is at least {at_least} tokens, more than the context of {}; raise -c or shorten it",
            text.len(),
            session.n_ctx
        );
    }
    let tokens = tok.encode(&text, true, chat);
    if tokens.is_empty() {
        bail!("the prompt produced no tokens");
    }
    if tokens.len().checked_add(n_predict).is_none_or(|n| n > session.n_ctx) {
        bail!(
            "{} prompt tokens + {n_predict} to generate exceed the context of {}; raise -c or lower -n",
            tokens.len(),
            session.n_ctx
        );
    }
    // The prompt is echoed with the first generated token, so an error comes out alone.
    let mut out = std::io::stdout().lock();
    let echo = format!("{prompt}{}", if chat { "\n" } else { "" });
    let mut echoed = false;
    let mut sampler = Sampler::new(sampling);
    let mut decoder = StreamDecoder::default();
    let (generated, prompt_secs, gen_secs) =
        crate::eval::generate(&m, &tok, &tokens, n_predict, session, &mut sampler, |id| {
            if !std::mem::replace(&mut echoed, true) {
                write!(out, "{echo}")?;
            }
            write!(out, "{}", decoder.push(&tok.piece_bytes(id)))?;
            out.flush()
        })?;
    if !echoed {
        write!(out, "{echo}")?;
    }
    let generated = generated.len();
    writeln!(out, "{}", decoder.finish())?;
    eprintln!(
        "prompt: {} tokens in {prompt_secs:.2} s ({:.1} t/s); generated: {generated} tokens in {gen_secs:.2} s ({:.1} t/s)",
        tokens.len(),
        tokens.len() as f64 / prompt_secs.max(1e-9),
        generated as f64 / gen_secs.max(1e-9)
    );
    Ok(())
}

fn bench(path: &Path, mut spec: crate::bench::Spec, format: BenchFormat, launch: &Launch) -> Result<()> {
    let m = open(path)?;
    for t in &spec.threads {
        check_threads("-t", t.generate)?;
    }
    if spec.threads.is_empty() {
        spec.threads = vec![threads(None, None)?];
    }
    if spec.reps == 0 {
        return refuse("-r must be at least 1".into());
    }
    // Token counts size the benchmark's buffers (a model without attention has no context to
    // bound them): past this they would exhaust memory, not measure anything.
    const MAX_BENCH_TOKENS: usize = 1 << 20;
    if spec.n_prompt > MAX_BENCH_TOKENS || spec.n_gen > MAX_BENCH_TOKENS {
        return refuse(format!(
            "-p {} / -n {}: at most {MAX_BENCH_TOKENS} tokens each",
            spec.n_prompt, spec.n_gen
        ));
    }
    let rows = crate::bench::run(&m, &spec)?;
    // Name the model like llama-bench: architecture, size and the type holding most weight bytes.
    let mut bytes_by_type = std::collections::BTreeMap::new();
    for t in &m.file.index.tensors {
        *bytes_by_type.entry(t.ty.name()).or_insert(0usize) += t.data.len();
    }
    let main_type = bytes_by_type.iter().max_by_key(|(_, b)| **b).map_or("?", |(t, _)| t);
    let n_params = m.n_params();
    let size = if n_params >= 1_000_000_000 {
        format!("{:.1}B", n_params as f64 / 1e9)
    } else {
        format!("{}M", n_params / 1_000_000)
    };
    let info = crate::bench::ModelInfo {
        filename: path.display().to_string(),
        label: format!("{} {size} {main_type}", m.config.arch.name()),
        size_bytes: m.file.index.tensors.iter().map(|t| t.data.len() as u64).sum(),
        n_params,
        tier: launch.tier_id.clone(),
        vlen: launch.vlen_bits,
    };
    let mut out = std::io::stdout().lock();
    match format {
        BenchFormat::Md => write!(out, "{}", crate::bench::markdown(&info, &rows))?,
        BenchFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&crate::bench::json_rows(&info, &rows))?)?
        }
        BenchFormat::Jsonl => {
            for r in crate::bench::json_rows(&info, &rows) {
                writeln!(out, "{r}")?;
            }
        }
    }
    Ok(())
}

fn quantize(path: &Path, output: &Path, ty: QuantType, pure: bool, allow_requantize: bool) -> Result<()> {
    refuse_overwriting_input(path, output)?;
    let file = crate::gguf::GgufFile::open(path).with_context(|| format!("{}", path.display()))?;
    let ty = match ty {
        QuantType::Q4_0 => crate::types::GgmlType::Q4_0,
        QuantType::Q8_0 => crate::types::GgmlType::Q8_0,
    };
    let mut quantized: Vec<&str> = file
        .index
        .tensors
        .iter()
        .filter(|t| t.dims.len() >= 2 && t.ty.block_len() > 1)
        .map(|t| t.ty.name())
        .collect();
    quantized.sort_unstable();
    quantized.dedup();
    if !quantized.is_empty() && !allow_requantize {
        return refuse(format!(
            "{} already holds {} matrices; requantizing compounds their rounding error: quantize the \
             F16/F32 model, or pass --allow-requantize",
            path.display(),
            quantized.join("/")
        ));
    }
    crate::quantize::quantize(&file, output, ty, pure, |i, n, name| {
        eprint!("\rquantize: [{i}/{n}] {name:<40}");
    })
    .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "\rquantize: wrote {} ({:.1} MiB)",
        output.display(),
        std::fs::metadata(output)?.len() as f64 / 1048576.0
    );
    Ok(())
}

/// Sampling values that would make every probability NaN, or mean nothing.
fn check_sampling(s: &SamplerConfig) -> Result<(), String> {
    let bad = |flag: &str, v: f32, want: &str| Err(format!("{flag} {v}: must be {want}"));
    if !(s.temp.is_finite() && s.temp >= 0.0) {
        return bad("--temp", s.temp, "a finite number >= 0 (0 is greedy)");
    }
    if !(0.0..=1.0).contains(&s.top_p) {
        return bad("--top-p", s.top_p, "between 0 and 1");
    }
    if !(0.0..=1.0).contains(&s.min_p) {
        return bad("--min-p", s.min_p, "between 0 and 1");
    }
    if !(s.repeat_penalty.is_finite() && s.repeat_penalty > 0.0) {
        return bad("--repeat-penalty", s.repeat_penalty, "a finite number > 0 (1 disables it)");
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum TokenListing {
    /// `id -> 'piece'`, a line per token (the piece's control characters escaped).
    Pieces,
    Ids,
    Count,
}

fn tokenize(
    path: &Path,
    text: &str,
    show: TokenListing,
    add_special: bool,
    parse_special: bool,
) -> Result<()> {
    let m = crate::gguf::GgufFile::open(path).with_context(|| format!("{}", path.display()))?;
    let tok = Tokenizer::from_gguf(&m).with_context(|| format!("{}", path.display()))?;
    let tokens = tok.encode(text, add_special, parse_special);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match show {
        TokenListing::Count => writeln!(out, "{}", tokens.len())?,
        TokenListing::Ids => {
            let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
            writeln!(out, "[{}]", list.join(", "))?;
        }
        TokenListing::Pieces => {
            for id in tokens {
                let piece = String::from_utf8_lossy(&tok.piece_bytes(id)).into_owned();
                writeln!(out, "{id:>6} -> '{}'", hartlm_abi::text::escape_controls(&piece))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn info(path: &Path) -> Result<()> {
    let m = open(path)?;
    let c = &m.config;
    let mut types = std::collections::BTreeMap::new();
    for t in &m.file.index.tensors {
        *types.entry(t.ty.name()).or_insert(0usize) += 1;
    }
    let types: Vec<String> = types.iter().map(|(t, n)| format!("{t} x{n}")).collect();
    let vocab_model = match m.file.get("tokenizer.ggml.model") {
        Some(Value::Str("llama")) => "llama (SentencePiece)".to_string(),
        Some(Value::Str("gpt2")) => "gpt2 (byte-level BPE)".to_string(),
        Some(Value::Str(other)) => hartlm_abi::text::escape_controls(other).into_owned(),
        _ => "none".to_string(),
    };
    let template = if m.file.get("tokenizer.chat_template").is_some() { "present" } else { "none" };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "file:          {} ({:.1} MiB, GGUF v{})",
        hartlm_abi::text::escape_controls(&path.display().to_string()),
        m.file.len() as f64 / 1048576.0,
        m.file.index.version
    )?;
    writeln!(out, "architecture:  {}", c.arch.name())?;
    writeln!(out, "parameters:    {} ({:.1} M)", m.n_params(), m.n_params() as f64 / 1e6)?;
    writeln!(
        out,
        "shape:         {} layers, n_embd {}, {} heads / {} KV heads of {}, n_ff {}",
        c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff
    )?;
    let convs = c.count(LayerKind::ShortConv);
    if convs > 0 {
        let kinds: String =
            c.layer_kinds.iter().map(|&k| if k == LayerKind::ShortConv { 'C' } else { 'A' }).collect();
        writeln!(
            out,
            "layers:        {kinds} ({convs} short-conv of {} taps, C; attention, A)",
            c.conv_taps
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
    writeln!(out, "chat template: {template}")?;
    Ok(())
}

fn logits(path: &Path, tokens: &[u32], output: &Path, batch: usize, eval: &EvalArgs) -> Result<()> {
    refuse_overwriting_input(path, output)?;
    refuse_overwriting_input(path, &output.with_extension("ids.json"))?;
    let m = open(path)?;
    if tokens.is_empty() {
        bail!("no tokens given");
    }
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= m.config.n_vocab) {
        return refuse(format!("token id {t} is past the vocabulary of {} tokens", m.config.n_vocab));
    }
    let logits =
        crate::eval::all_logits(&m, tokens, batch, eval.session(m.config.n_ctx_train, tokens.len())?)?;
    let npy = crate::npy::encode_f32(&logits, tokens.len(), m.config.n_vocab);
    write_atomic(output, &npy)?;
    let ids = output.with_extension("ids.json");
    let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
    write_atomic(&ids, format!("[{}]\n", list.join(", ")).as_bytes())?;
    eprintln!("wrote {} [{}, {}] and {}", output.display(), tokens.len(), m.config.n_vocab, ids.display());
    Ok(())
}

/// [`hartlm_abi::atomic::write_atomic`] with the path in the error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    hartlm_abi::atomic::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}
