//! Decoder-only models from GGUF (llama, qwen2, qwen3, and LFM2's hybrid of attention and short
//! convolutions): hyperparameters from metadata, shape-checked weights borrowed from the mapping
//! (plus panel copies where this tier's kernels want them), and the forward pass with its caches.
//!
//! The forward pass follows llama.cpp's graph operation by operation (RMSNorm summed in f64,
//! RoPE angles advanced by repeated f32 multiplication, softmax with max subtraction) so that
//! logits match it to within the fixtures' tolerances.

use std::path::Path;

use crate::gguf::{GgufError, GgufFile, TensorInfo, Value};
use crate::kernels::{self, pack::Packed};
use crate::pool::{Pool, Threads};
use crate::tensor::{self, Weight};
use crate::types::{self, GgmlType, f16_to_f32, f32_to_f16};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("unsupported architecture `{0}`: hartlm runs llama, qwen2, qwen3 and lfm2 models")]
    UnknownArch(String),
    #[error("metadata `{0}` is missing or has the wrong type; the file is not a complete model")]
    MissingKey(String),
    #[error("tensor `{0}` is missing; the file is incomplete or not a {1} model")]
    MissingTensor(String, &'static str),
    #[error("tensor `{name}` has shape {got:?}, expected {want:?}")]
    Shape { name: String, got: Vec<u64>, want: Vec<u64> },
    #[error("tensor `{name}` is {ty}, but norms, biases and conv taps must be F32, F16 or BF16")]
    NotFloat { name: String, ty: GgmlType },
    #[error("invalid hyperparameter: {0}")]
    Hparam(String),
    #[error("{0}")]
    Limit(String),
    #[error("rope scaling `{0}` is not supported (none and linear are)")]
    RopeScaling(String),
}

type Result<T> = std::result::Result<T, ModelError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    /// Liquid AI's LFM2: short-convolution and attention layers, each followed by SwiGLU.
    Lfm2,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Lfm2 => "lfm2",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub rope_base: f32,
    pub rope_freq_scale: f32,
    pub rope_dims: usize,
    /// NEOX RoPE rotates (i, i + dims/2) pairs; normal RoPE rotates (2i, 2i+1).
    pub rope_neox: bool,
    pub eps: f32,
    /// What mixes tokens in each layer (attention everywhere except in LFM2).
    pub layer_kinds: Vec<LayerKind>,
    /// Taps of LFM2's short convolution (`shortconv.l_cache`); 0 without conv layers.
    pub conv_taps: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Attention,
    /// LFM2's gated depthwise causal convolution over the last `conv_taps` tokens.
    ShortConv,
}

impl Config {
    /// Layers of this kind.
    pub fn count(&self, kind: LayerKind) -> usize {
        self.layer_kinds.iter().filter(|&&k| k == kind).count()
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    mixer: Mixer,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

enum Mixer {
    Attention(Box<Attention>),
    ShortConv(Box<ShortConv>),
}

struct Attention {
    /// This layer's index among the attention layers: its place in the KV cache.
    slot: usize,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    wo: Matrix,
}

/// `y = c ⊙ conv(b ⊙ x)` with `b, c, x = in_proj h`, then `out_proj y`.
struct ShortConv {
    /// This layer's index among the conv layers: its place in the conv state.
    slot: usize,
    in_proj: Matrix,
    /// The taps, tap-major (`[tap][channel]`, GGUF stores `[channel][tap]`) so that the kernel
    /// reads them with unit stride, as it reads the time-major activations.
    taps: Vec<f32>,
    out_proj: Matrix,
}

pub struct Model {
    pub file: GgufFile,
    pub config: Config,
    token_embd: TensorInfo,
    output_norm: Vec<f32>,
    output: Matrix,
    layers: Vec<Layer>,
}

/// A weight matrix, with its panel-packed copy when this build's kernels use one.
struct Matrix {
    t: TensorInfo,
    packed: Option<Packed>,
}

struct Loader<'a> {
    file: &'a GgufFile,
    arch: Arch,
}

impl Loader<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch.name())
    }
    fn usize(&self, suffix: &str) -> Result<usize> {
        self.opt_usize(suffix)?.ok_or_else(|| ModelError::MissingKey(self.key(suffix)))
    }
    /// An unsigned integer key: absent is None, any other type or a negative value an error.
    fn opt_usize(&self, suffix: &str) -> Result<Option<usize>> {
        let key = self.key(suffix);
        match self.file.get(&key) {
            None => Ok(None),
            Some(v) => v.as_u64().and_then(|v| usize::try_from(v).ok()).map(Some).ok_or_else(|| {
                ModelError::Hparam(format!("{key} is {}, not an unsigned integer", describe(&v)))
            }),
        }
    }
    /// A number key: absent is None, any other type an error.
    fn f32(&self, suffix: &str) -> Result<Option<f32>> {
        let key = self.key(suffix);
        match self.file.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|v| Some(v as f32))
                .ok_or_else(|| ModelError::Hparam(format!("{key} is {}, not a number", describe(&v)))),
        }
    }
    fn tensor(&self, name: &str, want: &[usize]) -> Result<TensorInfo> {
        let t =
            self.file.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.into(), self.arch.name()))?;
        let want: Vec<u64> = want.iter().map(|&d| d as u64).collect();
        if t.dims != want {
            return Err(ModelError::Shape { name: name.into(), got: t.dims.clone(), want });
        }
        Ok(t.clone())
    }
    fn matrix(&self, name: &str, want: &[usize]) -> Result<Matrix> {
        let t = self.tensor(name, want)?;
        let w = weight(self.file, &t, None);
        let packed = kernels::pack_weight(w.ty, w.rows, w.cols, w.data);
        if packed.is_some() {
            // The packed copy serves every product; the mapped bytes are read again only for
            // embedding rows (a tied output matrix).
            self.file.release(&t);
        }
        Ok(Matrix { t, packed })
    }
    /// A small float tensor of shape `dims`, as f32.
    fn floats(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let t = self.tensor(name, dims)?;
        if !matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            return Err(ModelError::NotFloat { name: name.into(), ty: t.ty });
        }
        let mut v = vec![0.0; dims.iter().product()];
        types::dequantize(t.ty, self.file.tensor_bytes(&t), &mut v);
        Ok(v)
    }
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        self.floats(name, &[len])
    }
    /// A depthwise conv weight `{taps, channels}`, transposed to tap-major.
    fn conv_taps(&self, name: &str, taps: usize, channels: usize) -> Result<Vec<f32>> {
        let by_channel = self.floats(name, &[taps, channels])?;
        let mut tap_major = vec![0.0; taps * channels];
        for (c, row) in by_channel.chunks_exact(taps).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                tap_major[j * channels + c] = w;
            }
        }
        Ok(tap_major)
    }
    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        if self.file.tensor(name).is_some() { self.vector(name, len).map(Some) } else { Ok(None) }
    }
}

/// A metadata value as an error message shows it: its type, and a short value.
fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) if s.len() <= 40 => format!("the string {s:?}"),
        Value::Str(_) => "a string".into(),
        Value::Bool(b) => format!("the bool {b}"),
        other => match (other.as_u64(), other.as_f64()) {
            (_, Some(f)) if other.as_u64().is_none() => format!("{} {f}", other.type_name()),
            _ => other.type_name().to_string(),
        },
    }
}

fn config(file: &GgufFile) -> Result<Config> {
    let arch_name = match file.get("general.architecture") {
        Some(Value::Str(s)) => s.to_string(),
        _ => return Err(ModelError::MissingKey("general.architecture".into())),
    };
    let arch = match arch_name.as_str() {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "qwen3" => Arch::Qwen3,
        "lfm2" => Arch::Lfm2,
        other => return Err(ModelError::UnknownArch(other.into())),
    };
    let l = Loader { file, arch };
    // Metadata floats feed every position's arithmetic: NaN, infinities and non-positive values
    // would turn every logit into NaN, so they are refused with the key that holds them.
    let positive = |suffix: &str, default: f32| match l.f32(suffix)? {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        Some(v) => {
            Err(ModelError::Hparam(format!("{} of {v} must be a positive finite number", l.key(suffix))))
        }
    };
    let n_embd = l.usize("embedding_length")?;
    let n_head = l.usize("attention.head_count")?;
    let n_layer = l.usize("block_count")?;
    if n_layer == 0 {
        return Err(ModelError::Hparam(format!(
            "{} is 0: a model has at least one layer",
            l.key("block_count")
        )));
    }
    if n_layer > 4096 {
        return Err(ModelError::Hparam(format!("{n_layer} layers (block_count) is not a real model")));
    }
    let (n_head_kv, layer_kinds) = kv_heads(&l, n_layer, n_head)?;
    let conv_taps = if layer_kinds.contains(&LayerKind::ShortConv) {
        match l.opt_usize("shortconv.l_cache")? {
            Some(k @ 1..=64) => k,
            Some(k) => return Err(ModelError::Hparam(format!("short convolution of {k} taps"))),
            None => return Err(ModelError::MissingKey(l.key("shortconv.l_cache"))),
        }
    } else {
        0
    };
    let head_dim = l.opt_usize("attention.key_length")?.unwrap_or(n_embd / n_head);
    if head_dim == 0
        || !head_dim.is_multiple_of(2)
        || l.opt_usize("attention.value_length")?.is_some_and(|v| v != head_dim)
    {
        return Err(ModelError::Hparam(format!(
            "head dimension {head_dim} must be even and equal for K and V"
        )));
    }
    // Every dimension sizes buffers and indexes them through products (heads × head dimension):
    // values that wrap, or exceed any real model by far, are refused before anything is sized.
    let n_ff = l.usize("feed_forward_length")?;
    let dims = [
        ("embedding_length", Some(n_embd)),
        ("attention.head_count", Some(n_head)),
        ("attention.key_length", Some(head_dim)),
        ("feed_forward_length", Some(n_ff)),
        ("heads x head dimension", n_head.checked_mul(head_dim)),
        ("KV heads x head dimension", n_head_kv.checked_mul(head_dim)),
    ];
    if let Some((what, v)) = dims.iter().find(|(_, v)| v.is_none_or(|v| v > MAX_DIM)) {
        let v = v.map_or("beyond 64 bits".to_string(), |v| v.to_string());
        return Err(ModelError::Hparam(format!("{what} of {v} is not a real model (at most {MAX_DIM})")));
    }
    // The trained context sizes nothing by itself, but defaults derive from it.
    let n_ctx_train = l.usize("context_length")?;
    if !(1..=1 << 30).contains(&n_ctx_train) {
        return Err(ModelError::Hparam(format!(
            "context_length {n_ctx_train} is not a real model's (1 to 2^30)"
        )));
    }
    let rope_dims = l.opt_usize("rope.dimension_count")?.unwrap_or(head_dim);
    if rope_dims > head_dim || !rope_dims.is_multiple_of(2) {
        return Err(ModelError::Hparam(format!("rope dimension {rope_dims} for head dimension {head_dim}")));
    }
    let rope_freq_scale = match file.get(&l.key("rope.scaling.type")) {
        None | Some(Value::Str("none")) => 1.0,
        Some(Value::Str("linear")) => 1.0 / positive("rope.scaling.factor", 1.0)?,
        Some(Value::Str(other)) => return Err(ModelError::RopeScaling(other.into())),
        Some(other) => return Err(ModelError::RopeScaling(other.type_name().into())),
    };
    let rope_base = positive("rope.freq_base", 10_000.0)?;
    let eps = positive("attention.layer_norm_rms_epsilon", 1e-5)?;
    let n_vocab = file.tensor("token_embd.weight").and_then(|t| t.dims.get(1)).copied().unwrap_or(0) as usize;
    Ok(Config {
        arch,
        n_embd,
        n_layer,
        n_head,
        n_head_kv,
        head_dim,
        n_ff,
        n_vocab,
        n_ctx_train,
        rope_base,
        rope_freq_scale,
        rope_dims,
        rope_neox: arch != Arch::Llama,
        eps,
        layer_kinds,
        conv_taps,
    })
}

/// The largest model dimension accepted (16 Mi; real models stay below 1 Mi).
const MAX_DIM: usize = 1 << 24;

/// KV heads and the kind of every layer. `head_count_kv` is a number, or (LFM2) one per layer
/// where 0 marks a short-convolution layer; attention layers must then agree on the number.
fn kv_heads(l: &Loader, n_layer: usize, n_head: usize) -> Result<(usize, Vec<LayerKind>)> {
    let key = l.key("attention.head_count_kv");
    let per_layer: Vec<u64> = match l.file.get(&key) {
        None => vec![n_head as u64; n_layer],
        Some(Value::Array(a)) => {
            let v = a.ints().filter(|v| v.len() == n_layer && v.iter().all(|&n| n >= 0));
            let v = v.ok_or_else(|| {
                ModelError::Hparam(format!("`{key}` must hold {n_layer} non-negative integers"))
            })?;
            v.into_iter().map(|n| n as u64).collect()
        }
        Some(v) => vec![v.as_u64().ok_or(ModelError::MissingKey(key.clone()))?; n_layer],
    };
    let conv_allowed = l.arch == Arch::Lfm2;
    let kinds: Vec<LayerKind> = per_layer
        .iter()
        .map(|&n| if n == 0 && conv_allowed { LayerKind::ShortConv } else { LayerKind::Attention })
        .collect();
    let mut attn = per_layer.iter().zip(&kinds).filter(|(_, k)| **k == LayerKind::Attention);
    let n_head_kv = attn.next().map_or(n_head as u64, |(&n, _)| n);
    if attn.any(|(&n, _)| n != n_head_kv) {
        return Err(ModelError::Hparam(format!(
            "attention layers with different KV head counts ({per_layer:?}) are not supported"
        )));
    }
    let n_head_kv = usize::try_from(n_head_kv).unwrap_or(0);
    if n_head == 0 || n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
        return Err(ModelError::Hparam(format!("{n_head} heads cannot share {n_head_kv} KV heads")));
    }
    Ok((n_head_kv, kinds))
}

impl Model {
    pub fn open(path: &Path) -> Result<Model> {
        Model::from_file(GgufFile::open(path)?)
    }

    pub fn from_file(file: GgufFile) -> Result<Model> {
        let config = config(&file)?;
        let c = &config;
        let l = Loader { file: &file, arch: c.arch };
        let (e, q_dim, kv_dim) = (c.n_embd, c.n_head * c.head_dim, c.n_head_kv * c.head_dim);
        let token_embd = l.tensor("token_embd.weight", &[e, c.n_vocab])?;
        let output = match file.tensor("output.weight") {
            Some(_) => l.matrix("output.weight", &[e, c.n_vocab])?,
            None => l.matrix("token_embd.weight", &[e, c.n_vocab])?,
        };
        let mut layers = Vec::with_capacity(c.n_layer);
        let (mut attn_slots, mut conv_slots) = (0, 0);
        for (i, kind) in c.layer_kinds.iter().enumerate() {
            let n = |s: &str| format!("blk.{i}.{s}");
            let qk_norm = matches!(c.arch, Arch::Qwen3 | Arch::Lfm2);
            let mixer = match kind {
                LayerKind::ShortConv => {
                    conv_slots += 1;
                    Mixer::ShortConv(Box::new(ShortConv {
                        slot: conv_slots - 1,
                        in_proj: l.matrix(&n("shortconv.in_proj.weight"), &[e, 3 * e])?,
                        taps: l.conv_taps(&n("shortconv.conv.weight"), c.conv_taps, e)?,
                        out_proj: l.matrix(&n("shortconv.out_proj.weight"), &[e, e])?,
                    }))
                }
                LayerKind::Attention => {
                    attn_slots += 1;
                    Mixer::Attention(Box::new(Attention {
                        slot: attn_slots - 1,
                        wq: l.matrix(&n("attn_q.weight"), &[e, q_dim])?,
                        wk: l.matrix(&n("attn_k.weight"), &[e, kv_dim])?,
                        wv: l.matrix(&n("attn_v.weight"), &[e, kv_dim])?,
                        bq: l.opt_vector(&n("attn_q.bias"), q_dim)?,
                        bk: l.opt_vector(&n("attn_k.bias"), kv_dim)?,
                        bv: l.opt_vector(&n("attn_v.bias"), kv_dim)?,
                        q_norm: if qk_norm {
                            Some(l.vector(&n("attn_q_norm.weight"), c.head_dim)?)
                        } else {
                            None
                        },
                        k_norm: if qk_norm {
                            Some(l.vector(&n("attn_k_norm.weight"), c.head_dim)?)
                        } else {
                            None
                        },
                        wo: l.matrix(&n("attn_output.weight"), &[q_dim, e])?,
                    }))
                }
            };
            layers.push(Layer {
                attn_norm: l.vector(&n("attn_norm.weight"), e)?,
                mixer,
                ffn_norm: l.vector(&n("ffn_norm.weight"), e)?,
                gate: l.matrix(&n("ffn_gate.weight"), &[e, c.n_ff])?,
                up: l.matrix(&n("ffn_up.weight"), &[e, c.n_ff])?,
                down: l.matrix(&n("ffn_down.weight"), &[c.n_ff, e])?,
            });
        }
        // Layers past block_count would be silently ignored: the metadata and the tensors disagree.
        let stray = file.index.tensors.iter().find(|t| {
            t.name
                .strip_prefix("blk.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i >= c.n_layer)
        });
        if let Some(t) = stray {
            return Err(ModelError::Hparam(format!(
                "tensor {} lies past the {} layers block_count gives",
                t.name, c.n_layer
            )));
        }
        let final_norm = if c.arch == Arch::Lfm2 { "token_embd_norm.weight" } else { "output_norm.weight" };
        let output_norm = l.vector(final_norm, e)?;
        Ok(Model { file, config, token_embd, output_norm, output, layers })
    }

    fn weight<'a>(&'a self, m: &'a Matrix) -> Weight<'a> {
        weight(&self.file, &m.t, m.packed.as_ref())
    }

    /// Total number of weight elements.
    pub fn n_params(&self) -> u64 {
        self.file.index.tensors.iter().map(|t| t.n_elements()).sum()
    }

    /// Runs one token of sequence 0 and writes the next-token logits, if wanted (inside a
    /// prompt only the last position's logits are needed).
    pub fn forward(&self, s: &mut State, token: u32, logits: Option<&mut [f32]>) -> Result<()> {
        match logits {
            Some(l) => self.forward_batch(s, &[token], Logits::Last(l)),
            None => self.forward_batch(s, &[token], Logits::None),
        }
    }

    /// Appends `tokens` to sequence 0: [`Model::decode`] for one sequence.
    pub fn forward_batch(&self, s: &mut State, tokens: &[u32], logits: Logits) -> Result<()> {
        let n = tokens.len();
        let seqs = vec![0; n];
        match logits {
            Logits::None => self.decode(s, tokens, &seqs, &vec![false; n], &mut []),
            Logits::Last(out) => {
                let want: Vec<bool> = (0..n).map(|i| i + 1 == n).collect();
                self.decode(s, tokens, &seqs, &want, out)
            }
            Logits::All(out) => self.decode(s, tokens, &seqs, &vec![true; n], out),
        }
    }

    /// Appends `tokens[i]` to sequence `seqs[i]` (rows of one sequence in order, sequences in
    /// any mix), in micro-batches of at most [`MAX_BATCH`]: each layer processes the whole
    /// micro-batch, so every weight row is read once per batch whichever sequences share it.
    /// Writes the logits of the rows `want`s, in row order, to `out` `[wanted, n_vocab]`.
    pub fn decode(
        &self,
        s: &mut State,
        tokens: &[u32],
        seqs: &[usize],
        want: &[bool],
        out: &mut [f32],
    ) -> Result<()> {
        let c = &self.config;
        assert!(seqs.len() == tokens.len() && want.len() == tokens.len(), "one seq and want per token");
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::Limit(format!("token id {t} is outside the vocabulary ({})", c.n_vocab)));
        }
        if let Some(&q) = seqs.iter().find(|&&q| q >= s.seq_len.len()) {
            return Err(ModelError::Limit(format!(
                "sequence {q} does not exist ({} sequences)",
                s.seq_len.len()
            )));
        }
        let nv = c.n_vocab;
        let wanted = want.iter().filter(|&&w| w).count();
        if out.len() < wanted * nv {
            return Err(ModelError::Limit(format!("{wanted} logit rows do not fit {} floats", out.len())));
        }
        let mut after = s.seq_len.clone();
        seqs.iter().for_each(|&q| after[q] += 1);
        if after.iter().any(|&len| len > s.n_ctx) {
            return Err(ModelError::Limit(format!("context is full ({} tokens); raise -c", s.n_ctx)));
        }
        let mut written = 0;
        for ((chunk, seq_chunk), want_chunk) in
            tokens.chunks(MAX_BATCH).zip(seqs.chunks(MAX_BATCH)).zip(want.chunks(MAX_BATCH))
        {
            self.micro_batch(s, chunk, seq_chunk);
            let rows: Vec<usize> = (0..chunk.len()).filter(|&i| want_chunk[i]).collect();
            if !rows.is_empty() {
                self.output(s, &rows, &mut out[written * nv..(written + rows.len()) * nv]);
                written += rows.len();
            }
        }
        Ok(())
    }

    /// One micro-batch through every layer; leaves the final hidden states in `s.x`.
    fn micro_batch(&self, s: &mut State, tokens: &[u32], seqs: &[usize]) {
        let c = &self.config;
        let e = c.n_embd;
        let n = tokens.len();
        let embd = weight(&self.file, &self.token_embd, None);
        for (i, &t) in tokens.iter().enumerate() {
            embd.dequantize_row(t as usize, &mut s.x[i * e..(i + 1) * e]);
        }
        for (i, &q) in seqs.iter().enumerate() {
            (s.row_seq[i], s.row_pos[i]) = (q, s.seq_len[q]);
            s.seq_len[q] += 1;
        }
        let ne = n * e;
        s.pool.set_threads(s.threads.for_tokens(n));
        let half = c.rope_dims / 2;
        for i in 0..n {
            rope_angles(
                c,
                s.row_pos[i],
                &mut s.rope_cos[i * half..][..half],
                &mut s.rope_sin[i * half..][..half],
            );
        }
        for layer in &self.layers {
            rms_norm_rows(&s.x[..ne], &layer.attn_norm, c.eps, &mut s.xb[..ne]);
            match &layer.mixer {
                Mixer::Attention(a) => self.attention_block(s, a, n),
                Mixer::ShortConv(sc) => self.shortconv_block(s, sc, n),
            }
            add_rows(&mut s.x[..ne], &s.xb[..ne]);
            // Feed-forward (SwiGLU).
            rms_norm_rows(&s.x[..ne], &layer.ffn_norm, c.eps, &mut s.xb[..ne]);
            self.weight(&layer.gate).matmul(&s.xb[..ne], &mut s.hb, &s.pool);
            self.weight(&layer.up).matmul(&s.xb[..ne], &mut s.hb2, &s.pool);
            kernels::silu_mul(&mut s.hb[..n * c.n_ff], &s.hb2[..n * c.n_ff]);
            self.weight(&layer.down).matmul(&s.hb[..n * c.n_ff], &mut s.xb[..ne], &s.pool);
            add_rows(&mut s.x[..ne], &s.xb[..ne]);
        }
    }

    /// Attention of the `n` normed rows in `s.xb`, replaced by the block's output.
    fn attention_block(&self, s: &mut State, a: &Attention, n: usize) {
        let c = &self.config;
        let (e, hd, kv_dim, q_dim) = (c.n_embd, c.head_dim, c.n_head_kv * c.head_dim, c.n_head * c.head_dim);
        let ne = n * e;
        self.weight(&a.wq).matmul(&s.xb[..ne], &mut s.q, &s.pool);
        self.weight(&a.wk).matmul(&s.xb[..ne], &mut s.k, &s.pool);
        self.weight(&a.wv).matmul(&s.xb[..ne], &mut s.v, &s.pool);
        let (n_seq, n_ctx) = (s.seq_len.len(), s.n_ctx);
        for i in 0..n {
            // The row's place in the cache (q, k and v borrow `s` below, so not `s.cache_row`).
            let cache_row = first_cache_row(a.slot, s.row_seq[i], n_seq, n_ctx) + s.row_pos[i];
            let (q, k, v) = (
                &mut s.q[i * q_dim..][..q_dim],
                &mut s.k[i * kv_dim..][..kv_dim],
                &mut s.v[i * kv_dim..][..kv_dim],
            );
            add_bias(q, a.bq.as_deref());
            add_bias(k, a.bk.as_deref());
            add_bias(v, a.bv.as_deref());
            if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
                q.chunks_exact_mut(hd).for_each(|h| kernels::rms_norm_in_place(h, qn, c.eps));
                k.chunks_exact_mut(hd).for_each(|h| kernels::rms_norm_in_place(h, kn, c.eps));
            }
            let half = c.rope_dims / 2;
            let (cos, sin) = (&s.rope_cos[i * half..][..half], &s.rope_sin[i * half..][..half]);
            kernels::rope(q, hd, c.rope_neox, cos, sin);
            kernels::rope(k, hd, c.rope_neox, cos, sin);
            s.cache.store(cache_row * kv_dim, k, v);
        }
        self.attention(s, a.slot, n);
        self.weight(&a.wo).matmul(&s.att_out[..n * q_dim], &mut s.xb[..ne], &s.pool);
    }

    /// LFM2's short convolution of the `n` normed rows in `s.xb`, replaced by the block's output.
    /// Each run of consecutive rows of one sequence is convolved in time order: the conv input
    /// is time-major with that sequence's carried state as its first `taps - 1` rows, and its
    /// last `taps - 1` rows become the state for the sequence's next tokens.
    fn shortconv_block(&self, s: &mut State, sc: &ShortConv, n: usize) {
        let e = self.config.n_embd;
        let (ne, past) = (n * e, (self.config.conv_taps - 1) * e);
        let convs = self.config.count(LayerKind::ShortConv);
        self.weight(&sc.in_proj).matmul(&s.xb[..ne], &mut s.bcx[..3 * ne], &s.pool);
        let mut start = 0;
        while start < n {
            let seq = s.row_seq[start];
            let end = (start..n).find(|&i| s.row_seq[i] != seq).unwrap_or(n);
            let (run, bcx) = (end - start, &s.bcx[3 * start * e..3 * end * e]);
            let state = &mut s.conv_state[(seq * convs + sc.slot) * past..][..past];
            let input = &mut s.conv_in[..past + run * e];
            input[..past].copy_from_slice(state);
            for (bx, bcx) in input[past..].chunks_exact_mut(e).zip(bcx.chunks_exact(3 * e)) {
                let (b, x) = (&bcx[..e], &bcx[2 * e..]);
                bx.iter_mut().zip(b.iter().zip(x)).for_each(|(o, (b, x))| *o = b * x);
            }
            let y = &mut s.conv_out[start * e..end * e];
            kernels::ssm_conv(input, &sc.taps, e, y);
            state.copy_from_slice(&input[run * e..]);
            for (y, bcx) in y.chunks_exact_mut(e).zip(bcx.chunks_exact(3 * e)) {
                y.iter_mut().zip(&bcx[e..2 * e]).for_each(|(y, c)| *y *= c);
            }
            start = end;
        }
        self.weight(&sc.out_proj).matmul(&s.conv_out[..ne], &mut s.xb[..ne], &s.pool);
    }

    /// Logits of micro-batch rows `rows` (their final hidden states are in `s.x`), `[rows, n_vocab]`.
    fn output(&self, s: &mut State, rows: &[usize], out: &mut [f32]) {
        let e = self.config.n_embd;
        for (k, &r) in rows.iter().enumerate() {
            kernels::rms_norm(
                &s.x[r * e..][..e],
                &self.output_norm,
                self.config.eps,
                &mut s.xb[k * e..][..e],
            );
        }
        self.weight(&self.output).matmul(&s.xb[..rows.len() * e], out, &s.pool);
    }

    /// Grouped-query attention of the `n` micro-batch rows, each over its own sequence's cache
    /// up to its position, into `s.att_out`. Workers take (row, head) pairs round-robin, so later
    /// rows' longer histories are shared out evenly; each pair is computed the same way whoever
    /// runs it.
    fn attention(&self, s: &mut State, slot: usize, n: usize) {
        let c = &self.config;
        let (hd, q_dim) = (c.head_dim, c.n_head * c.head_dim);
        let pairs = n * c.n_head;
        let out = tensor::SyncPtr::new(s.att_out.as_mut_ptr());
        let longest = s.row_pos[..n].iter().max().map_or(0, |p| p + 1);
        let first_row: Vec<usize> = s.row_seq[..n].iter().map(|&q| s.cache_row(slot, q)).collect();
        let (cache, q, row_pos) = (&s.cache, &s.q, &s.row_pos);
        let work = |first: usize, step: usize| {
            let mut scratch = (vec![0.0f32; longest], vec![0.0f32; hd]);
            for k in (first..pairs).step_by(step) {
                let (i, h) = (k / c.n_head, k % c.n_head);
                // SAFETY: pair (i, h) owns att_out[i * q_dim + h * hd..][..hd], inside the
                // buffer (i < n <= MAX_BATCH); pairs are disjoint and `run` joins first.
                let out = unsafe { std::slice::from_raw_parts_mut(out.get().add(i * q_dim + h * hd), hd) };
                attend_head(
                    c,
                    cache,
                    first_row[i],
                    &q[i * q_dim + h * hd..][..hd],
                    h,
                    row_pos[i] + 1,
                    &mut scratch,
                    out,
                );
            }
        };
        let threads = s.pool.threads();
        if threads == 1 || longest + n < 64 {
            work(0, 1);
        } else {
            s.pool.run(&|w| work(w, threads));
        }
    }
}

/// One query head `h` attending over the first `n` cache positions of a layer (whose first row
/// is `row0`). With an F16 cache, Q and the probabilities are rounded to F16 too, as ggml's F16
/// matmuls round their second operand. `scratch` holds at least `n` scores and one head row.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    c: &Config,
    cache: &KvCache,
    row0: usize,
    q: &[f32],
    h: usize,
    n: usize,
    scratch: &mut (Vec<f32>, Vec<f32>),
    out: &mut [f32],
) {
    let (hd, kv_dim) = (c.head_dim, c.n_head_kv * c.head_dim);
    let scale = 1.0 / (hd as f32).sqrt();
    let at = |t: usize| (row0 + t) * kv_dim + (h / (c.n_head / c.n_head_kv)) * hd;
    let (scores, row) = (&mut scratch.0[..n], &mut scratch.1[..hd]);
    match cache {
        KvCache::F32 { k, .. } => {
            kernels::dot_rows(q, &k[at(0)..], kv_dim, scores);
            scores.iter_mut().for_each(|s| *s *= scale);
        }
        KvCache::F16 { k, .. } => {
            let q16: Vec<f32> = q.iter().map(|&v| round_f16(v)).collect();
            for (t, sc) in scores.iter_mut().enumerate() {
                kernels::f16_to_f32_row(&k[at(t)..][..hd], row);
                *sc = kernels::dot_f32(row, &q16) * scale;
            }
        }
    }
    kernels::softmax(scores);
    out.fill(0.0);
    match cache {
        KvCache::F32 { v, .. } => kernels::axpy_rows(out, scores, &v[at(0)..], kv_dim),
        KvCache::F16 { v, .. } => {
            for (t, &p) in scores.iter().enumerate() {
                kernels::f16_to_f32_row(&v[at(t)..at(t) + hd], row);
                kernels::axpy(out, round_f16(p), row);
            }
        }
    }
}

fn weight<'a>(file: &'a GgufFile, t: &TensorInfo, packed: Option<&'a Packed>) -> Weight<'a> {
    Weight {
        ty: t.ty,
        cols: t.dims[0] as usize,
        rows: t.dims[1] as usize,
        data: file.tensor_bytes(t),
        packed,
    }
}

/// Which logits a forward pass writes.
pub enum Logits<'a> {
    None,
    /// Those of the last token.
    Last(&'a mut [f32]),
    /// Those of every token, row-major `[tokens, n_vocab]`.
    All(&'a mut [f32]),
}

/// Tokens per micro-batch: enough to reuse each weight row from cache, small enough that the
/// batch's activations stay in cache too.
pub const MAX_BATCH: usize = 32;

fn round_f16(v: f32) -> f32 {
    f16_to_f32(f32_to_f16(v))
}

/// Element type of the KV cache (`--cache-type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheType {
    #[default]
    F32,
    F16,
}

/// Keys and values of every layer, sequence and position, `[layer][seq][pos][kv_head * head_dim]`.
enum KvCache {
    F32 { k: Vec<f32>, v: Vec<f32> },
    F16 { k: Vec<u16>, v: Vec<u16> },
}

/// A zeroed vector, or None if the allocation fails (huge `-c`). Like `vec![0; len]` it asks
/// the allocator for zeroed memory, so untouched cache pages are never made resident.
fn try_zeroed<T: bytemuck::Zeroable>(len: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout has non-zero size; on success the block holds `len` zeroed `T`s, a
    // valid value for any Zeroable type, allocated with exactly the layout Vec will free.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        (!ptr.is_null()).then(|| Vec::from_raw_parts(ptr, len, len))
    }
}

impl KvCache {
    fn new(ty: CacheType, len: usize) -> Option<KvCache> {
        Some(match ty {
            CacheType::F32 => KvCache::F32 { k: try_zeroed(len)?, v: try_zeroed(len)? },
            CacheType::F16 => KvCache::F16 { k: try_zeroed(len)?, v: try_zeroed(len)? },
        })
    }

    /// The keys and the values as bytes, and the bytes of one element.
    fn bytes(&self) -> (&[u8], &[u8], usize) {
        match self {
            KvCache::F32 { k, v } => (bytemuck::cast_slice(k), bytemuck::cast_slice(v), 4),
            KvCache::F16 { k, v } => (bytemuck::cast_slice(k), bytemuck::cast_slice(v), 2),
        }
    }

    fn bytes_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        match self {
            KvCache::F32 { k, v } => (bytemuck::cast_slice_mut(k), bytemuck::cast_slice_mut(v)),
            KvCache::F16 { k, v } => (bytemuck::cast_slice_mut(k), bytemuck::cast_slice_mut(v)),
        }
    }

    fn store(&mut self, at: usize, k: &[f32], v: &[f32]) {
        match self {
            KvCache::F32 { k: kc, v: vc } => {
                kc[at..at + k.len()].copy_from_slice(k);
                vc[at..at + v.len()].copy_from_slice(v);
            }
            KvCache::F16 { k: kc, v: vc } => {
                for (d, &x) in kc[at..at + k.len()].iter_mut().zip(k) {
                    *d = f32_to_f16(x);
                }
                for (d, &x) in vc[at..at + v.len()].iter_mut().zip(v) {
                    *d = f32_to_f16(x);
                }
            }
        }
    }
}

/// Evaluation state of `n_seq` sequences of up to `n_ctx` tokens each: their KV caches and conv
/// states, the micro-batch's scratch buffers and the worker pool.
pub struct State {
    /// Tokens held per sequence.
    seq_len: Vec<usize>,
    pub n_ctx: usize,
    /// Each micro-batch row's sequence and position.
    row_seq: Vec<usize>,
    row_pos: Vec<usize>,
    pool: Pool,
    threads: Threads,
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att_out: Vec<f32>,
    /// RoPE cosines and sines of each micro-batch position (`rope_dims / 2` per row), computed
    /// once per micro-batch for every layer's Q and K.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    cache: KvCache,
    /// Short-conv layers: in_proj output (b, c, x per row), the conv input (carried state then
    /// b ⊙ x), its output, and each layer's last `taps - 1` conv inputs.
    bcx: Vec<f32>,
    conv_in: Vec<f32>,
    conv_out: Vec<f32>,
    /// `[seq][conv layer][taps - 1][n_embd]`.
    conv_state: Vec<f32>,
}

impl State {
    /// One sequence: fails with a clear error when the KV cache for `n_ctx` cannot be allocated.
    pub fn new(c: &Config, n_ctx: usize, threads: impl Into<Threads>, cache: CacheType) -> Result<State> {
        State::with_seqs(c, n_ctx, 1, threads, cache)
    }

    /// `n_seq` sequences of up to `n_ctx` tokens each.
    pub fn with_seqs(
        c: &Config,
        n_ctx: usize,
        n_seq: usize,
        threads: impl Into<Threads>,
        cache: CacheType,
    ) -> Result<State> {
        let threads = threads.into();
        if n_seq == 0 {
            return Err(ModelError::Limit("at least one sequence is needed".into()));
        }
        let kv = c
            .count(LayerKind::Attention)
            .checked_mul(n_ctx)
            .and_then(|v| v.checked_mul(n_seq))
            .and_then(|v| v.checked_mul(c.n_head_kv * c.head_dim));
        let bytes =
            kv.map_or(f64::INFINITY, |k| 2.0 * k as f64 * if cache == CacheType::F16 { 2.0 } else { 4.0 });
        let cache = kv.and_then(|k| KvCache::new(cache, k)).ok_or_else(|| {
            ModelError::Limit(format!(
                "cannot allocate a {:.1} GiB KV cache for {n_seq} x {n_ctx} tokens; lower -c",
                bytes / (1u64 << 30) as f64
            ))
        })?;
        let (convs, past) = (c.count(LayerKind::ShortConv), c.conv_taps.saturating_sub(1));
        Ok(State {
            seq_len: vec![0; n_seq],
            n_ctx,
            row_seq: vec![0; MAX_BATCH],
            row_pos: vec![0; MAX_BATCH],
            pool: Pool::new(threads.most()),
            threads,
            x: vec![0.0; MAX_BATCH * c.n_embd],
            xb: vec![0.0; MAX_BATCH * c.n_embd],
            q: vec![0.0; MAX_BATCH * c.n_head * c.head_dim],
            k: vec![0.0; MAX_BATCH * c.n_head_kv * c.head_dim],
            v: vec![0.0; MAX_BATCH * c.n_head_kv * c.head_dim],
            att_out: vec![0.0; MAX_BATCH * c.n_head * c.head_dim],
            rope_cos: vec![0.0; MAX_BATCH * c.rope_dims / 2],
            rope_sin: vec![0.0; MAX_BATCH * c.rope_dims / 2],
            hb: vec![0.0; MAX_BATCH * c.n_ff],
            hb2: vec![0.0; MAX_BATCH * c.n_ff],
            cache,
            bcx: vec![0.0; if convs > 0 { MAX_BATCH * 3 * c.n_embd } else { 0 }],
            conv_in: vec![0.0; if convs > 0 { (past + MAX_BATCH) * c.n_embd } else { 0 }],
            conv_out: vec![0.0; if convs > 0 { MAX_BATCH * c.n_embd } else { 0 }],
            conv_state: vec![0.0; n_seq * convs * past * c.n_embd],
        })
    }

    /// Tokens sequence `seq` holds.
    pub fn seq_len(&self, seq: usize) -> usize {
        self.seq_len[seq]
    }

    pub fn n_seq(&self) -> usize {
        self.seq_len.len()
    }

    /// Keeps the first `len` tokens of sequence `seq` (its later KV rows are overwritten as
    /// positions are reused). A conv state has no positions, so a model with short-conv layers
    /// can only keep all or nothing: false when asked for anything else.
    pub fn truncate(&mut self, seq: usize, len: usize) -> bool {
        let have = self.seq_len[seq];
        if len >= have {
            return true;
        }
        let per_seq = self.conv_state.len() / self.seq_len.len();
        if len > 0 && per_seq > 0 {
            return false;
        }
        self.seq_len[seq] = len;
        self.conv_state[seq * per_seq..][..per_seq].fill(0.0);
        true
    }

    /// Forgets every sequence.
    pub fn reset(&mut self) {
        self.seq_len.fill(0);
        self.conv_state.fill(0.0);
    }

    /// Writes sequence `seq`'s state as one blob to `write` (in pieces): a [`SeqStateHeader`],
    /// every attention layer's key rows then value rows for its positions (in the cache's
    /// element type), then its conv state (f32).
    pub fn save_seq(&self, c: &Config, seq: usize, mut write: impl FnMut(&[u8])) {
        let header = SeqStateHeader::of(c, self.cache_type(), self.seq_len[seq]);
        write(&header.to_bytes());
        let (slots, kv_dim, len) =
            (c.count(LayerKind::Attention), c.n_head_kv * c.head_dim, self.seq_len[seq]);
        let (keys, values, elem) = self.cache.bytes();
        for half in [keys, values] {
            for slot in 0..slots {
                let at = self.cache_row(slot, seq) * kv_dim * elem;
                write(&half[at..at + len * kv_dim * elem]);
            }
        }
        write(bytemuck::cast_slice(self.conv_state_of(seq)));
    }

    /// Replaces sequence `seq`'s state with a blob [`State::save_seq`] wrote. A blob for
    /// another shape or cache type, longer than the context, or cut short is refused, and the
    /// sequence is left empty.
    pub fn load_seq(&mut self, c: &Config, seq: usize, data: &[u8]) -> std::result::Result<(), String> {
        self.truncate(seq, 0);
        let want = SeqStateHeader::of(c, self.cache_type(), 0);
        let got = SeqStateHeader::from_bytes(data)?;
        if (SeqStateHeader { len: 0, ..got }) != want {
            return Err(format!(
                "it was saved for another model or cache type ({}; this context is {})",
                got.shape(),
                want.shape()
            ));
        }
        let len = usize::try_from(got.len).unwrap_or(usize::MAX);
        if len > self.n_ctx {
            return Err(format!("it holds {len} tokens, more than the context of {}; raise -c", self.n_ctx));
        }
        let (slots, kv_dim) = (c.count(LayerKind::Attention), c.n_head_kv * c.head_dim);
        let elem = self.cache.bytes().2;
        let kv_bytes = len * kv_dim * elem;
        let conv_floats = self.conv_state_of(seq).len();
        let body = &data[SeqStateHeader::BYTES..];
        if body.len() != 2 * slots * kv_bytes + conv_floats * 4 {
            return Err(format!(
                "it is {} bytes, not the {} its header describes; the file is damaged",
                data.len(),
                SeqStateHeader::BYTES + 2 * slots * kv_bytes + conv_floats * 4
            ));
        }
        let (keys, rest) = body.split_at(slots * kv_bytes);
        let (values, conv) = rest.split_at(slots * kv_bytes);
        // Byte-wise copies: the blob has no alignment guarantee.
        let starts: Vec<usize> = (0..slots).map(|slot| self.cache_row(slot, seq) * kv_dim * elem).collect();
        let (k, v) = self.cache.bytes_mut();
        for (slot, at) in starts.into_iter().enumerate() {
            k[at..at + kv_bytes].copy_from_slice(&keys[slot * kv_bytes..][..kv_bytes]);
            v[at..at + kv_bytes].copy_from_slice(&values[slot * kv_bytes..][..kv_bytes]);
        }
        let per_seq = conv_floats;
        bytemuck::cast_slice_mut(&mut self.conv_state[seq * per_seq..][..per_seq]).copy_from_slice(conv);
        self.seq_len[seq] = len;
        Ok(())
    }

    fn cache_type(&self) -> CacheType {
        match self.cache {
            KvCache::F32 { .. } => CacheType::F32,
            KvCache::F16 { .. } => CacheType::F16,
        }
    }

    /// `[conv layer][taps - 1][n_embd]` of sequence `seq`.
    fn conv_state_of(&self, seq: usize) -> &[f32] {
        let per_seq = self.conv_state.len() / self.seq_len.len();
        &self.conv_state[seq * per_seq..][..per_seq]
    }

    /// The first KV cache row of attention layer `slot`'s copy of sequence `seq`.
    fn cache_row(&self, slot: usize, seq: usize) -> usize {
        first_cache_row(slot, seq, self.seq_len.len(), self.n_ctx)
    }
}

/// What a saved sequence state was made for: the shape of the cache it fills and its length.
/// Little-endian u64s after an 8-byte magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeqStateHeader {
    format: u64,
    cache_f16: u64,
    attention_layers: u64,
    kv_dim: u64,
    conv_layers: u64,
    conv_past: u64,
    n_embd: u64,
    len: u64,
}

impl SeqStateHeader {
    const MAGIC: &[u8; 8] = b"HLMSEQST";
    const FORMAT: u64 = 1;
    const BYTES: usize = 8 + 8 * 8;

    fn of(c: &Config, cache: CacheType, len: usize) -> SeqStateHeader {
        let convs = c.count(LayerKind::ShortConv);
        SeqStateHeader {
            format: Self::FORMAT,
            cache_f16: u64::from(cache == CacheType::F16),
            attention_layers: c.count(LayerKind::Attention) as u64,
            kv_dim: (c.n_head_kv * c.head_dim) as u64,
            conv_layers: convs as u64,
            // State::with_seqs keeps taps - 1 rows per conv layer, none without conv layers.
            conv_past: if convs > 0 { c.conv_taps.saturating_sub(1) as u64 } else { 0 },
            n_embd: c.n_embd as u64,
            len: len as u64,
        }
    }

    fn fields(&self) -> [u64; 8] {
        [
            self.format,
            self.cache_f16,
            self.attention_layers,
            self.kv_dim,
            self.conv_layers,
            self.conv_past,
            self.n_embd,
            self.len,
        ]
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut out = Self::MAGIC.to_vec();
        self.fields().iter().for_each(|f| out.extend_from_slice(&f.to_le_bytes()));
        out
    }

    fn from_bytes(data: &[u8]) -> std::result::Result<SeqStateHeader, String> {
        if data.len() < Self::BYTES || &data[..8] != Self::MAGIC {
            return Err("it is not a hartlm sequence state".into());
        }
        let f = |i: usize| u64::from_le_bytes(data[8 + 8 * i..][..8].try_into().expect("8 bytes"));
        let h = SeqStateHeader {
            format: f(0),
            cache_f16: f(1),
            attention_layers: f(2),
            kv_dim: f(3),
            conv_layers: f(4),
            conv_past: f(5),
            n_embd: f(6),
            len: f(7),
        };
        if h.format != Self::FORMAT {
            return Err(format!(
                "its format {} is not {}; save it again with this hartlm",
                h.format,
                Self::FORMAT
            ));
        }
        Ok(h)
    }

    fn shape(&self) -> String {
        format!(
            "{} attention layers of {} key/value dims, {} conv layers, {} cache",
            self.attention_layers,
            self.kv_dim,
            self.conv_layers,
            if self.cache_f16 == 1 { "f16" } else { "f32" }
        )
    }
}

/// The first KV cache row of attention layer `slot`'s copy of sequence `seq`, in a cache of
/// `n_seq` sequences of `n_ctx` rows (`[layer][seq][pos]`).
fn first_cache_row(slot: usize, seq: usize, n_seq: usize, n_ctx: usize) -> usize {
    (slot * n_seq + seq) * n_ctx
}

/// [`kernels::rms_norm`] of every `w.len()`-wide row of `x`.
fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    for (xr, or) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
        kernels::rms_norm(xr, w, eps, or);
    }
}

/// `x += d`, element-wise over the rows `x` holds.
fn add_rows(x: &mut [f32], d: &[f32]) {
    for (a, b) in x.iter_mut().zip(d) {
        *a += b;
    }
}

fn add_bias(x: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for (v, bb) in x.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// RoPE's cosines and sines for position `pos`. Angles advance by repeated multiplication in
/// f32, as ggml computes them, so positions far into the context match llama.cpp.
fn rope_angles(c: &Config, pos: usize, cos: &mut [f32], sin: &mut [f32]) {
    let theta_scale = c.rope_base.powf(-2.0 / c.rope_dims as f32);
    let mut theta = pos as f32;
    for (co, si) in cos.iter_mut().zip(sin) {
        let t = theta * c.rope_freq_scale;
        (*co, *si) = (t.cos(), t.sin());
        theta *= theta_scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::tests::Writer;

    /// Metadata of a 4-layer model of `arch` with `head_count_kv` as an INT32 array.
    fn config_of(arch: &str, kv: &[i32], l_cache: Option<u32>) -> Result<Config> {
        let mut array = 5u32.to_le_bytes().to_vec();
        array.extend((kv.len() as u64).to_le_bytes());
        kv.iter().for_each(|v| array.extend(v.to_le_bytes()));
        let k = |s: &str| format!("{arch}.{s}");
        let mut w = Writer::default()
            .kv_str("general.architecture", arch)
            .kv_u32(&k("embedding_length"), 64)
            .kv_u32(&k("block_count"), 4)
            .kv_u32(&k("attention.head_count"), 4)
            .kv_u32(&k("feed_forward_length"), 192)
            .kv_u32(&k("context_length"), 128)
            .kv_raw(&k("attention.head_count_kv"), 9, &array);
        if let Some(l) = l_cache {
            w = w.kv_u32(&k("shortconv.l_cache"), l);
        }
        config(&GgufFile::from_bytes(w.build()).unwrap())
    }

    #[test]
    fn lfm2_layer_kinds_come_from_zero_kv_heads() {
        let c = config_of("lfm2", &[0, 2, 0, 2], Some(3)).unwrap();
        use LayerKind::{Attention as A, ShortConv as C};
        assert_eq!(c.layer_kinds, [C, A, C, A]);
        assert_eq!((c.n_head_kv, c.conv_taps, c.count(A)), (2, 3, 2));
        let all_conv = config_of("lfm2", &[0; 4], Some(4)).unwrap();
        assert_eq!((all_conv.count(A), all_conv.count(C)), (0, 4));
    }

    /// Hyperparameters whose products wrap (key_length 2^62 + 16, head_count 2^60 + 4) used to
    /// panic in `run` and print as real in `info`: they are refused when the config is read.
    #[test]
    fn wrapping_dimensions_are_refused() {
        let with = |set: &[(&str, u64)]| {
            let base = [("embedding_length", 64), ("block_count", 1), ("attention.head_count", 4)];
            let rest = [("feed_forward_length", 192), ("context_length", 128)];
            let mut w = Writer::default().kv_str("general.architecture", "llama");
            for (k, n) in base.iter().chain(&rest).filter(|(k, _)| set.iter().all(|s| s.0 != *k)) {
                w = w.kv_u32(&format!("llama.{k}"), *n);
            }
            for (k, v) in set {
                w = w.kv_raw(&format!("llama.{k}"), 10, &v.to_le_bytes());
            }
            config(&GgufFile::from_bytes(w.build()).unwrap()).map(|_| ()).unwrap_err().to_string()
        };
        let e = with(&[("attention.key_length", (1 << 62) + 16)]);
        assert!(e.contains("attention.key_length") && e.contains("not a real model"), "{e}");
        // 16 heads' worth of (2^60 + 4) wraps to 64: the product is checked, not the factors only.
        let e = with(&[("attention.head_count", (1 << 60) + 4), ("attention.key_length", 16)]);
        assert!(e.contains("not a real model"), "{e}");
        let e = with(&[("feed_forward_length", 1 << 40)]);
        assert!(e.contains("feed_forward_length"), "{e}");
    }

    #[test]
    fn bad_lfm2_metadata_is_a_clear_error() {
        let err = |r: Result<Config>| r.expect_err("must fail").to_string();
        assert!(err(config_of("lfm2", &[0, 2, 0, 4], Some(3))).contains("different KV head counts"));
        assert!(err(config_of("lfm2", &[0, 2, 0, 2], None)).contains("lfm2.shortconv.l_cache"));
        assert!(err(config_of("lfm2", &[0, 2, 0, 2], Some(0))).contains("0 taps"));
        assert!(err(config_of("lfm2", &[0, 2, 2], Some(3))).contains("must hold 4"));
        // Only LFM2 has conv layers: elsewhere a 0 is a broken attention layer.
        assert!(err(config_of("llama", &[0, 2, 0, 2], None)).contains("different KV head counts"));
    }
}
