//! `cargo xtask`'s command line: every command and flag as clap types, apart from what they do
//! (`main.rs` dispatches each to its module).

use clap::{Parser, Subcommand, ValueEnum};

use hartlm_variants::Arch;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "hartlm build, test and release tasks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ArchArg {
    Riscv64,
    #[value(name = "x86_64")]
    X86_64,
    All,
}

impl ArchArg {
    pub fn arches(self) -> Vec<Arch> {
        match self {
            ArchArg::Riscv64 => vec![Arch::Riscv64],
            ArchArg::X86_64 => vec![Arch::X86_64],
            ArchArg::All => vec![Arch::Riscv64, Arch::X86_64],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Part {
    All,
    Cpus,
    Checks,
    /// Only the hostile-input suite (`hostile`), at x86-64 and under qemu at rv64gc and rv64gcv.
    Hostile,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Competitor {
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

#[derive(Subcommand)]
pub enum CiAction {
    /// Write .github/workflows/ from ci/workflows.toml, ci/qemu-matrix.toml and variants/tiers.toml.
    Generate,
    /// Fail if a workflow differs from what `generate` writes; run actionlint, zizmor, shellcheck.
    Check,
}

#[derive(Subcommand)]
pub enum Command {
    /// Install missing prerequisites (as root with apt) or print the commands that would.
    Setup {
        /// Also make everything any command puts in the tools directory: every pip package,
        /// our patched qemu and Intel SDE (CI's `tools` job caches the result).
        #[arg(long)]
        all: bool,
    },
    /// Build one engine library per tier and the launcher of each architecture.
    Build {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
        /// Build only this tier (and its architecture's launcher).
        #[arg(long)]
        tier: Option<String>,
    },
    /// Build everything and write target/dist/: one tarball per architecture, SHA256SUMS, manifest.json.
    Dist {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
    },
    /// Run the packaged launcher on every CPU of ci/qemu-matrix.toml and print CPU × tier.
    TestQemu {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
        /// Use the tarballs already in target/dist instead of running `dist` first.
        #[arg(long)]
        no_build: bool,
        /// Only these CPU rows (names from ci/qemu-matrix.toml, or `tier:<id>`); implies `--part cpus`.
        #[arg(long, value_delimiter = ',')]
        cpu: Vec<String>,
        /// `cpus`: the CPU × tier table only; `checks`: only the launcher fault, placement and
        /// fixture-model checks. CI runs each CPU and the checks as separate jobs.
        #[arg(long, value_enum, default_value = "all")]
        part: Part,
    },
    /// Download the real models tests use (SmolLM2-135M Q4_1) into target/models/, generate
    /// the qwen2 fixtures with their numpy reference logits into target/fixtures-gen/, and
    /// extract real chat templates from the pinned llama.cpp sdist into target/chat-templates/.
    FetchModels,
    /// Benchmark every x86-64 tier the host can run, side by side; with `--vs llama.cpp`, hartlm
    /// against llama.cpp in one run (wall clock here, instructions per token under qemu).
    Bench {
        /// Prompt tokens (ppN).
        #[arg(short = 'p', long, default_value_t = 512)]
        n_prompt: usize,
        /// Generated tokens (tgN).
        #[arg(short = 'n', long, default_value_t = 128)]
        n_gen: usize,
        /// Repetitions per test (default 5; 2 per round with --vs); with --serve, requests per
        /// client (default 4).
        #[arg(short = 'r', long)]
        reps: Option<usize>,
        /// Thread counts.
        #[arg(short = 't', long, default_value = "1,2", value_delimiter = ',')]
        threads: Vec<usize>,
        /// Only these tiers (comma-separated ids).
        #[arg(long, value_delimiter = ',', conflicts_with = "vs")]
        tiers: Vec<String>,
        /// Compare with llama.cpp 0c1e570 (built once from the pinned PyPI sdist into
        /// target/llama.cpp/): alternating rounds on this host, then riscv64 instruction counts.
        #[arg(long, value_enum)]
        vs: Option<Competitor>,
        /// With --vs or --serve: rounds of alternating runs (the ratio's range is over them).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// With --vs: both halves, or only the wall-clock (`native`) or instruction (`insn`) one.
        #[arg(long, value_enum, default_value = "all", requires = "vs")]
        part: crate::vs::VsPart,
        /// Instead: aggregate tokens/s of `hartlm serve` at -np 1, 2 and 4 (SmolLM2-135M, as many
        /// streaming clients as slots), alternated over --rounds.
        #[arg(long, conflicts_with_all = ["vs", "tiers"])]
        serve: bool,
    },
    /// Exact dynamic instruction counts per prompt and generated token of every riscv64 tier at
    /// VLEN 128-1024 (IME tiers at 256) under hartlm's plugin-enabled qemu (built once into
    /// target/qemu-hartlm/, or $HARTLM_TOOLS_DIR/qemu-hartlm/).
    BenchInsn {
        /// Only models whose name contains this (s288-q4_0, smollm2-q4_1, lfm2-micro-q4_0,
        /// qwen2-micro-f16).
        #[arg(long)]
        model: Option<String>,
        /// Count one kernel on its own instead of models (`ssm_conv`: d_inner 1536, 4 taps,
        /// T = 4, 16, 64, 512, upstream's loop and every tier and VLEN; `matvec`: one 1 MiB
        /// matrix-vector product of every quantized type at rv64gc and rv64gcv at every VLEN).
        #[arg(long, value_parser = ["ssm_conv", "matvec"], conflicts_with = "model")]
        kernel: Option<String>,
        /// Count the IME tiers against their vector twins at VLEN 256 instead: SmolLM2 Q4_1 and
        /// a TinyLlama-1.1B-shape Q4_0 (generated once), 32 prompt and 4 generated tokens.
        #[arg(long, conflicts_with_all = ["model", "kernel"])]
        ime: bool,
    },
    /// The full test: fmt, clippy, unit tests, two reproducible `dist` runs, `test-qemu`.
    Test,
    /// Build the release twice, recompiling in between, and require byte-identical archives.
    Reproducible,
    /// Clippy for the kernels host builds never compile: the engine and launcher as the fewest
    /// tiers that together compile every kernel family (RVV, IME, AVX2, AVX-512, SSSE3) see them.
    ClippyTiers,
    /// Follow upstream (ci/sync.toml): merge in a temporary worktree, test, then push, move the
    /// nightly tag and publish. Exit 3 on a merge conflict, 4 when a step failed.
    Sync {
        /// Print the decision and the plan only.
        #[arg(long)]
        dry_run: bool,
        /// The testing phase alone, for a job without a write token: merge and test, push
        /// nothing, and write the result to --report.
        #[arg(long, requires = "report", conflicts_with = "push_from")]
        test_only: bool,
        /// Where --test-only writes its result.
        #[arg(long, requires = "test_only")]
        report: Option<std::path::PathBuf>,
        /// The pushing phase alone: redo the merge a --test-only run tested (git only, none of its
        /// code runs), check it gives the tested tree, push, move the nightly tag and publish.
        #[arg(long, value_name = "REPORT")]
        push_from: Option<std::path::PathBuf>,
    },
    /// The GitHub workflows: generate them, or check they match their sources and lint them.
    Ci {
        #[command(subcommand)]
        action: CiAction,
    },
    /// Publish target/dist as a GitHub release: draft, upload and verify every asset, then
    /// undraft. Safe to re-run. Token from GITHUB_TOKEN.
    Publish {
        /// The release tag, `v` + the workspace version.
        #[arg(long, required_unless_present = "nightly", conflicts_with = "nightly")]
        tag: Option<String>,
        /// Move the `nightly` tag to the built commit and replace that prerelease's assets.
        #[arg(long)]
        nightly: bool,
        /// Print the plan (reads the remote release) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// `owner/name` (default: $GITHUB_REPOSITORY).
        #[arg(long)]
        repo: Option<String>,
        /// API base (default: $GITHUB_API_URL, else https://api.github.com).
        #[arg(long)]
        api_url: Option<String>,
        /// Upload base (default: derived from the API base for github.com and GitHub Enterprise).
        #[arg(long)]
        upload_url: Option<String>,
    },
    /// Append one line (date, commit, tier, board labels, pp and tg t/s) from a board's
    /// `hartlm bench -o jsonl` to the release's bench-history.jsonl. Token from GITHUB_TOKEN.
    BenchHistory {
        /// The release whose history grows (the nightly).
        #[arg(long, default_value = "nightly")]
        tag: String,
        /// The board's `hartlm bench -o jsonl` output.
        #[arg(long)]
        bench: std::path::PathBuf,
        /// The board's `hartlm cpu --runner-labels` output.
        #[arg(long)]
        labels: std::path::PathBuf,
        /// `owner/name` (default: $GITHUB_REPOSITORY).
        #[arg(long)]
        repo: Option<String>,
        /// API base (default: $GITHUB_API_URL, else https://api.github.com).
        #[arg(long)]
        api_url: Option<String>,
    },
}
