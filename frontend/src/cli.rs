//! hartlm's command line, parsed with clap once per architecture: every command and flag
//! (llama.cpp's spellings included), and the dispatch of those that need an engine.
//!
//! `cpu`, `calibrate` and `--version` are parsed here too but answered by the launcher, which
//! needs no engine library for them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::engine::{Engine, EngineError};
use crate::sampler::SamplerConfig;

#[derive(Parser, Debug)]
#[command(
    name = "hartlm",
    disable_version_flag = true,
    about = "LLM inference for RISC-V and x86-64, built per ISA tier",
    after_help = "llama.cpp's spellings work too: -sys, -tb, -ctk, -ctv, -cnv, -ngl, -pg, -np.\n\
                  Environment: HARTLM_TIER=<id> forces a tier, HARTLM_CLUSTER=<name> a core cluster, \
                  HARTLM_CORES=<list> narrows the cores, HARTLM_LIB_DIR overrides lib/, \
                  HARTLM_VERBOSE=1 names the library loaded.\n\
                  Exit status: 0 success, 1 failure, 2 bad usage or input refused."
)]
pub struct Cli {
    /// Print the version, git commit and the tier that would run.
    #[arg(short = 'V', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the detected CPU, its core clusters and which tier runs where.
    Cpu {
        /// Print the report as JSON.
        #[arg(long, conflicts_with = "runner_labels")]
        json: bool,
        /// Print the GitHub Actions runner labels for this machine (ci/runner/install.sh uses them).
        #[arg(long)]
        runner_labels: bool,
    },
    /// Time a Q4_0 matrix-vector product on each cluster and remember which is fastest.
    Calibrate {
        /// Weight bytes per product, in MiB.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
        size_mib: u32,
        /// Products per measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        reps: u32,
        /// Forget the stored calibration (HARTLM_CALIBRATION=off ignores it instead).
        #[arg(long)]
        clear: bool,
    },
    /// Check every kernel of the loaded tier against its scalar reference.
    Selftest {
        /// Seed for the random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate text from a prompt, streaming tokens as they are produced.
    Run(RunArgs),
    /// Chat with a model turn by turn (reads stdin; /reset clears the history, /exit ends).
    Chat(ChatArgs),
    /// Serve an OpenAI-compatible HTTP API (chat and text completions, streaming or not).
    Serve(ServeArgs),
    /// Measure prompt processing and generation speed, as llama-bench does.
    Bench(BenchArgs),
    /// Time one kernel on random data (`cargo xtask bench-insn --kernel` counts its instructions).
    BenchKernel {
        #[command(subcommand)]
        kernel: KernelBench,
    },
    /// Write a copy of a model with its weight matrices quantized (ggml's reference quantizers).
    Quantize {
        #[command(flatten)]
        model: ModelArg,
        /// Where to write the quantized model.
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
    /// Print the tokens a prompt becomes, as llama-tokenize does (a vocabulary-only GGUF works).
    Tokenize {
        #[command(flatten)]
        model: ModelArg,
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
        #[command(flatten)]
        model: ModelArg,
    },
    /// Evaluate tokens and write the logits of every position as float32 .npy [n_tokens, n_vocab].
    Logits {
        #[command(flatten)]
        model: ModelArg,
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

#[derive(Args, Debug)]
pub struct ModelArg {
    /// The GGUF model file.
    #[arg(short, long)]
    pub model: PathBuf,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub prompt: OptionalPrompt,
    /// Tokens to generate (default 128; with --conversation, per reply, until the context is full).
    #[arg(short = 'n', long = "n-predict")]
    pub n_predict: Option<usize>,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Wrap the prompt in the model's chat template as one user turn.
    #[arg(long)]
    pub chat: bool,
    /// Chat interactively instead (llama.cpp's -cnv; the prompt, if any, is the first turn).
    #[arg(long = "conversation", short = 'i', visible_alias = "interactive")]
    pub conversation: bool,
    /// System prompt for --chat and --conversation.
    #[arg(long = "system-prompt")]
    pub system: Option<String>,
    /// Keep the evaluated prompt's state in FILE, and start from it when the prompt begins with
    /// the tokens it holds (llama.cpp's session file). FILE must be new or written by hartlm for
    /// the same model file, cache type and shape.
    #[arg(long = "prompt-cache", value_name = "FILE")]
    pub prompt_cache: Option<std::path::PathBuf>,
    /// Save the generated tokens in the prompt cache too, so the next run can continue them.
    #[arg(long = "prompt-cache-all", requires = "prompt_cache")]
    pub prompt_cache_all: bool,
    /// Use the prompt cache but never write it.
    #[arg(long = "prompt-cache-ro", requires = "prompt_cache", conflicts_with = "prompt_cache_all")]
    pub prompt_cache_ro: bool,
    /// Name the chat template's source and the tokens it made on stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Use the Jinja chat template in FILE instead of the model's (llama.cpp's flag).
    #[arg(long = "chat-template-file", value_name = "FILE")]
    pub chat_template_file: Option<std::path::PathBuf>,
    /// GPU layers (llama.cpp's -ngl): accepted and ignored, hartlm runs on the CPU.
    #[arg(long = "n-gpu-layers", hide = true)]
    pub n_gpu_layers: Option<String>,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// System prompt.
    #[arg(long = "system-prompt")]
    pub system: Option<String>,
    /// Most tokens per reply (-1: until the context is full).
    #[arg(short = 'n', long = "n-predict", default_value_t = -1, allow_negative_numbers = true)]
    pub n_predict: i64,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Name the chat template's source on stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Use the Jinja chat template in FILE instead of the model's (llama.cpp's flag).
    #[arg(long = "chat-template-file", value_name = "FILE")]
    pub chat_template_file: Option<std::path::PathBuf>,
    /// GPU layers (llama.cpp's -ngl): accepted and ignored, hartlm runs on the CPU.
    #[arg(long = "n-gpu-layers", hide = true)]
    pub n_gpu_layers: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Address to listen on (only this machine by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Slots: requests generated side by side, one batched evaluation per step (llama.cpp's -np).
    #[arg(long = "parallel", default_value_t = 1)]
    pub parallel: usize,
    /// Requests that may wait for a slot; past them the server answers 503 with Retry-After.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Require `Authorization: Bearer KEY` on /v1/ (visible to other users in the process list;
    /// prefer --api-key-file).
    #[arg(long, conflicts_with = "api_key_file")]
    pub api_key: Option<String>,
    /// Read the API key from this file (its first line).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body: usize,
    /// The model name /v1/models reports (default: the file name).
    #[arg(short = 'a', long)]
    pub alias: Option<String>,
    /// Most tokens per reply when a request gives no max_tokens (-1: until the slot is full).
    #[arg(short = 'n', long = "n-predict", default_value_t = -1, allow_negative_numbers = true)]
    pub n_predict: i64,
    /// Context: the total, shared evenly by the slots (default: the model's, at most 4096, per slot).
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Name the chat template's source on stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// GPU layers (llama.cpp's -ngl): accepted and ignored, hartlm runs on the CPU.
    #[arg(long = "n-gpu-layers", hide = true)]
    pub n_gpu_layers: Option<String>,
    /// Use the Jinja chat template in FILE instead of the model's (llama.cpp's flag).
    #[arg(long = "chat-template-file", value_name = "FILE")]
    pub chat_template_file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Prompt tokens for ppN tests: a list `128,512` or range `128-512*2` (0 skips them).
    #[arg(short = 'p', long = "n-prompt", default_value = "512")]
    pub n_prompt: String,
    /// Generated tokens for tgN tests, as a list or range (0 skips them).
    #[arg(short = 'n', long = "n-gen", default_value = "128")]
    pub n_gen: String,
    /// Prompt-then-generate tests `pp,tg` (`512,128`; several separated by `;`).
    #[arg(long = "pg")]
    pub pg: Option<String>,
    /// Tokens of context filled before each test (llama-bench's -d), as a list or range.
    #[arg(short = 'd', long = "n-depth", default_value = "0")]
    pub depth: String,
    /// Thread counts, as a list or range, each used for every test (default: all the
    /// placement's cores for prompts, at most the memory-bandwidth knee for generation).
    #[arg(short = 't', long)]
    pub threads: Option<String>,
    /// Repetitions per test.
    #[arg(short = 'r', long, default_value_t = 5)]
    pub reps: usize,
    /// Skip the untimed warm-up run before each test.
    #[arg(long)]
    pub no_warmup: bool,
    /// KV cache element type.
    #[arg(long, value_enum, default_value = "f32")]
    pub cache_type: CacheType,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "md")]
    pub output: BenchFormat,
}

#[derive(Subcommand, Debug)]
pub enum KernelBench {
    /// LFM2's short convolution: `tokens` rows of `channels` channels, `taps` taps.
    SsmConv {
        /// Channels (the model's n_embd).
        #[arg(short, long, default_value_t = 1536)]
        channels: u32,
        /// Convolution taps (LFM2's shortconv.l_cache).
        #[arg(short = 'k', long, default_value_t = 4)]
        taps: u32,
        /// Tokens per call.
        #[arg(short = 'T', long, default_value_t = 64)]
        tokens: u32,
        /// Calls to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: u32,
        /// `tier`: the tier's kernel on hartlm's layout; `ggml`: upstream's scalar loop.
        #[arg(long = "impl", value_enum, default_value = "tier")]
        which: ConvImpl,
    },
    /// A matrix-vector product over MiB of weights (Q4_0: what `hartlm calibrate` times), the
    /// memory-bound work of token generation. Prints one JSON line.
    Matvec {
        /// Weight type.
        #[arg(long = "type", value_enum, default_value = "q4_0")]
        ty: MatvecType,
        /// Weight bytes, in MiB (larger than the caches, so memory bandwidth shows).
        #[arg(long, default_value_t = 32)]
        size_mib: u32,
        /// Vectors per product (1: token generation's matrix-vector product; more: a prompt's
        /// matrix-matrix product, through the prompt tiles where the tier has them).
        #[arg(long, default_value_t = 1)]
        batch: u32,
        /// Worker threads.
        #[arg(short = 't', long, default_value_t = 1)]
        threads: u32,
        /// Products to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: u32,
    },
    /// Memory read bandwidth: every thread sums its share of a buffer (the roofline token
    /// generation is measured against). Prints one JSON line.
    Read {
        /// Buffer size, in MiB (larger than the caches).
        #[arg(long, default_value_t = 256)]
        size_mib: u32,
        /// Worker threads.
        #[arg(short = 't', long, default_value_t = 1)]
        threads: u32,
        /// Passes to time (the median is printed).
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: u32,
    },
}

/// Where the prompt comes from (`run`, `tokenize`).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct PromptArgs {
    /// The prompt text.
    #[arg(short, long)]
    pub prompt: Option<String>,
    /// Read the prompt from this file (UTF-8, at most 64 MiB).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
}

/// As [`PromptArgs`], but optional (`run -cnv` may start without one).
#[derive(Args, Debug)]
#[group(required = false, multiple = false)]
pub struct OptionalPrompt {
    /// The prompt text.
    #[arg(short, long)]
    pub prompt: Option<String>,
    /// Read the prompt from this file (UTF-8, at most 64 MiB).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
}

const MAX_PROMPT_BYTES: u64 = 64 << 20;

fn prompt_text(prompt: &Option<String>, file: &Option<PathBuf>) -> Result<Option<String>> {
    match (prompt, file) {
        (Some(p), _) => Ok(Some(p.clone())),
        (None, Some(f)) => hartlm_abi::files::read_text_capped(f, MAX_PROMPT_BYTES)
            .map(Some)
            .with_context(|| format!("prompt file {}", f.display())),
        (None, None) => Ok(None),
    }
}

impl PromptArgs {
    fn text(&self) -> Result<String> {
        prompt_text(&self.prompt, &self.file)?
            .ok_or_else(|| Refused("give a prompt with -p TEXT or -f FILE".into()).into())
    }
}

impl OptionalPrompt {
    pub fn text(&self) -> Result<Option<String>> {
        prompt_text(&self.prompt, &self.file)
    }
}

/// How sequences are evaluated (`run`, `chat`, `logits`).
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Context size (default: the model's, at most 4096).
    #[arg(short = 'c', long = "ctx-size", visible_alias = "ctx")]
    pub ctx: Option<usize>,
    /// Threads (default: the cores the launcher placed hartlm on; for generation, at most the
    /// memory-bandwidth knee when known).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Threads for prompt batches (default: -t if given, else all the placement's cores).
    #[arg(long)]
    pub threads_batch: Option<usize>,
    /// KV cache element type (keys and values alike).
    #[arg(long, value_enum)]
    pub cache_type: Option<CacheType>,
    /// Key cache type (llama.cpp's -ctk): hartlm keeps keys and values in one type.
    #[arg(long = "cache-type-k")]
    pub cache_type_k: Option<CacheType>,
    /// Value cache type (llama.cpp's -ctv): must equal the key cache type.
    #[arg(long = "cache-type-v")]
    pub cache_type_v: Option<CacheType>,
}

/// Sampling flags (`run`, `chat`).
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub temp: f32,
    /// Keep the k most likely tokens (0 keeps all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this total probability (1 keeps all).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0 keeps all).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Penalty for repeating the last --repeat-last-n tokens (1 disables it).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    /// Tokens the repeat penalty looks back over.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed.
    #[arg(short = 's', long, default_value_t = 0xdead_beef)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> Result<SamplerConfig> {
        let s = SamplerConfig {
            temp: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        };
        crate::sampler::check(&s).map_err(Refused)?;
        Ok(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheType {
    F32,
    F16,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum QuantType {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q8_0")]
    Q8_0,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ConvImpl {
    Tier,
    Ggml,
}

/// The GGML type ids `bench-kernel matvec` times.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MatvecType {
    #[value(name = "q4_0")]
    Q4_0 = 2,
    #[value(name = "q4_1")]
    Q4_1 = 3,
    #[value(name = "q5_0")]
    Q5_0 = 6,
    #[value(name = "q5_1")]
    Q5_1 = 7,
    #[value(name = "q8_0")]
    Q8_0 = 8,
    #[value(name = "q4_k")]
    Q4K = 12,
    #[value(name = "q5_k")]
    Q5K = 13,
    #[value(name = "q6_k")]
    Q6K = 14,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BenchFormat {
    Md,
    Csv,
    Json,
    Jsonl,
}

/// llama.cpp's multi-letter short flags, spelled as hartlm's long ones (clap's short flags are
/// single letters).
const LLAMA_SPELLINGS: [(&str, &str); 8] = [
    ("-sys", "--system-prompt"),
    ("-tb", "--threads-batch"),
    ("-ctk", "--cache-type-k"),
    ("-ctv", "--cache-type-v"),
    ("-cnv", "--conversation"),
    ("-ngl", "--n-gpu-layers"),
    ("-pg", "--pg"),
    ("-np", "--parallel"),
];

/// `args` with llama.cpp's multi-letter short flags respelled (up to a `--`).
pub fn respell(args: Vec<OsString>) -> Vec<OsString> {
    let mut past_dashes = false;
    args.into_iter()
        .map(|a| {
            if past_dashes {
                return a;
            }
            past_dashes = a == "--";
            match LLAMA_SPELLINGS.iter().find(|(short, _)| a == *short) {
                Some((_, long)) => OsString::from(long),
                None => a,
            }
        })
        .collect()
}

/// Parses a command line; on --help or a usage error prints it and returns the exit status.
pub fn parse(args: Vec<OsString>) -> std::result::Result<Cli, i32> {
    match Cli::try_parse_from(respell(args)) {
        Ok(cli) if cli.command.is_none() && !cli.version => {
            eprintln!("hartlm: no command given; see `hartlm --help` (`hartlm cpu` describes this machine)");
            Err(2)
        }
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            // --help: its text goes to stdout, whole.
            hartlm_abi::say!("{}", e.render());
            Err(0)
        }
        Err(e) => {
            eprintln!("hartlm: {}", one_line_usage_error(&e));
            Err(e.exit_code())
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

/// What the launcher chose, as defaults for the commands.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// Cores of the placement (0: unknown, use what the system offers).
    pub threads: usize,
    /// The memory-bandwidth knee for generation (0: unknown).
    pub gen_threads: usize,
    pub vlen_bits: u32,
    pub tier_id: String,
}

impl Defaults {
    fn all_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// (prompt threads, generation threads) from `-t` and `--threads-batch`.
    pub fn threads(&self, t: Option<usize>, batch: Option<usize>) -> Result<(usize, usize)> {
        let all = self.all_threads();
        let generate = match (t, self.gen_threads) {
            (Some(n), _) => check_threads("-t", n)?,
            (None, 0) => all,
            (None, knee) => knee.min(all),
        };
        let batch = match (batch, t) {
            (Some(b), _) => check_threads("--threads-batch", b)?,
            (None, Some(n)) => n,
            (None, None) => all,
        };
        Ok((batch, generate))
    }
}

/// A request refused before any work is done: exit 2, as for bad flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Ends a command with a [`Refused`] error (exit 2): a flag value out of range.
pub fn refuse<T>(why: String) -> Result<T> {
    Err(Refused(why).into())
}

pub fn check_threads(flag: &str, n: usize) -> Result<usize> {
    match n {
        0 => refuse(format!("{flag} must be at least 1")),
        n if n > 1024 => refuse(format!("{flag} {n} is more threads than hartlm supports (1024)")),
        n => Ok(n),
    }
}

/// Runs a parsed command that needs an engine; returns the exit status.
pub fn run(cli: Cli, engine: &Engine, defaults: &Defaults) -> i32 {
    let Some(command) = cli.command else { return 2 };
    let result = match command {
        Command::Cpu { .. } | Command::Calibrate { .. } => {
            unreachable!("the launcher answers cpu and calibrate")
        }
        Command::Selftest { seed } => return engine.selftest(seed),
        Command::Run(args) => crate::commands::run(engine, args, defaults),
        Command::Chat(args) => crate::chat::command(engine, args, defaults),
        Command::Serve(args) => crate::server::command(engine, args, defaults),
        Command::Bench(args) => crate::commands::bench(engine, args, defaults),
        Command::BenchKernel { kernel } => crate::commands::bench_kernel(engine, kernel),
        Command::Quantize { model, output, ty, pure, allow_requantize } => {
            crate::commands::quantize(engine, &model.model, &output, ty, pure, allow_requantize)
        }
        Command::Tokenize { model, prompt, ids, show_count, no_bos, parse_special } => {
            let show = match (ids, show_count) {
                (true, _) => crate::commands::TokenListing::Ids,
                (_, true) => crate::commands::TokenListing::Count,
                _ => crate::commands::TokenListing::Pieces,
            };
            prompt.text().and_then(|p| {
                crate::commands::tokenize(engine, &model.model, &p, show, !no_bos, parse_special)
            })
        }
        Command::Info { model } => crate::commands::info(engine, &model.model),
        Command::Logits { model, tokens, output, batch, eval } => {
            crate::commands::logits(engine, &model.model, &tokens, &output, batch, &eval, defaults)
        }
    };
    exit_status(result)
}

/// The exit status of a command's result, printing its error as one line.
pub fn exit_status(result: Result<()>) -> i32 {
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
            let refused = e.downcast_ref::<Refused>().is_some()
                || e.downcast_ref::<EngineError>().is_some_and(|x| x.refused);
            if refused { 2 } else { 1 }
        }
    }
}

/// Opens a model with its path in the error.
pub fn open(engine: &Engine, path: &Path, vocab_only: bool) -> Result<crate::engine::Model> {
    let progress = crate::progress::Progress::new();
    progress.show(&format!("loading {}", path.display()));
    let m = engine.open(path, vocab_only);
    progress.clear();
    Ok(m?)
}

/// Refuses an output path that is the input file itself (the same device and inode, whatever
/// the path says), so an output never destroys its input.
pub fn refuse_overwriting_input(input: &Path, output: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(i), Ok(o)) = (std::fs::metadata(input), std::fs::metadata(output))
        && (i.dev(), i.ino()) == (o.dev(), o.ino())
    {
        return refuse(format!(
            "{} is the input model {}; choose another output path",
            output.display(),
            input.display()
        ));
    }
    Ok(())
}

impl EvalArgs {
    /// The one cache type -ctk/-ctv/--cache-type ask for.
    pub fn cache_f16(&self) -> Result<bool> {
        let named: Vec<CacheType> =
            [self.cache_type, self.cache_type_k, self.cache_type_v].into_iter().flatten().collect();
        if named.windows(2).any(|w| w[0] != w[1]) {
            bail!(Refused(
                "hartlm keeps keys and values in one type: give -ctk and -ctv the same type".into()
            ));
        }
        Ok(named.first() == Some(&CacheType::F16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Cli {
        let argv = std::iter::once("hartlm").chain(args.iter().copied()).map(OsString::from).collect();
        parse(argv).unwrap_or_else(|code| panic!("{args:?} refused with {code}"))
    }

    #[test]
    fn llama_cpp_spellings_are_accepted() {
        let cli = parsed(&[
            "run",
            "-m",
            "m.gguf",
            "-p",
            "hi",
            "--ctx-size",
            "256",
            "-tb",
            "3",
            "-t",
            "2",
            "-ctk",
            "f16",
            "-ctv",
            "f16",
            "-s",
            "7",
            "-sys",
            "be brief",
            "-ngl",
            "99",
        ]);
        let Some(Command::Run(r)) = cli.command else { panic!("not run") };
        assert_eq!((r.eval.ctx, r.eval.threads, r.eval.threads_batch), (Some(256), Some(2), Some(3)));
        assert!(r.eval.cache_f16().unwrap());
        assert_eq!((r.sampling.seed, r.system.as_deref()), (7, Some("be brief")));
        let Some(Command::Run(r)) = parsed(&["run", "-m", "m", "-cnv"]).command else { panic!() };
        assert!(r.conversation);
        let Some(Command::Run(r)) = parsed(&["run", "-m", "m", "-i", "-f", "p.txt"]).command else {
            panic!()
        };
        assert!(r.conversation && r.prompt.file.is_some());
        let Some(Command::Run(r)) =
            parsed(&["run", "-m", "m", "-p", "x", "-ctk", "f16", "-ctv", "f32"]).command
        else {
            panic!()
        };
        assert!(r.eval.cache_f16().is_err());
        assert!(parsed(&["--version"]).version);
    }

    #[test]
    fn respelling_stops_at_double_dash() {
        let got = respell(["hartlm", "-tb", "--", "-tb"].map(OsString::from).to_vec());
        assert_eq!(got, ["hartlm", "--threads-batch", "--", "-tb"].map(OsString::from));
    }

    #[test]
    fn help_lists_every_command_and_describes_every_flag() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let help = cmd.clone().render_long_help().to_string();
        for sub in cmd.get_subcommands() {
            assert!(help.contains(sub.get_name()), "{} missing from --help", sub.get_name());
            let mut all = vec![sub.clone()];
            all.extend(sub.get_subcommands().cloned());
            for c in all {
                for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                    let id = a.get_id().as_str();
                    if id == "help" {
                        continue;
                    }
                    assert!(a.get_help().is_some(), "`hartlm {}` flag {id} has no description", c.get_name());
                }
            }
        }
        for name in ["cpu", "calibrate", "chat", "tokenize", "bench"] {
            assert!(cmd.find_subcommand(name).is_some(), "{name}");
        }
    }
}
