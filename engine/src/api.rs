//! The engine's side of the launcher–engine ABI: the function table of `hartlm_abi::engine`,
//! each entry a thin conversion between C types and the engine's Rust API.
//!
//! No entry unwinds into the caller: panics are caught and reported as failures, and every
//! error is one line through the caller's sink.

use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hartlm_abi::engine::{
    Bytes, CACHE_F16, ContextHandle, ContextParams, EngineApi, ErrorKind, KernelBenchRequest, ModelHandle,
    ProgressFn, QuantizeRequest, Sink, TOKEN_CONTROL, TOKEN_EOG,
};
use hartlm_abi::{ABI_VERSION, LaunchInfo};
use serde_json::json;

use crate::gguf::{GgufFile, Value};
use crate::model::{CacheType, LayerKind, Model, State};
use crate::pool::Threads;
use crate::tier::Launch;
use crate::tokenizer::{TokenType, Tokenizer};
use crate::types::GgmlType;

/// What the launcher chose, recorded by [`table`].
static LAUNCH: OnceLock<Launch> = OnceLock::new();

/// The launcher's choice, or this library's defaults when nothing recorded one (tests).
pub fn launch() -> &'static Launch {
    LAUNCH.get_or_init(Launch::local)
}

/// Records `launch` (the first call wins) and returns the table.
pub fn table(launch: Launch) -> &'static EngineApi {
    crate::pool::set_worker_cores(launch.cores.clone());
    crate::pool::set_ai_cores(launch.ai_cores.clone());
    let _ = LAUNCH.set(launch);
    static TABLE: OnceLock<EngineApi> = OnceLock::new();
    TABLE.get_or_init(|| EngineApi {
        abi_version: ABI_VERSION,
        tier_id: Bytes::of(crate::tier::TIER_ID.as_bytes()),
        model_open,
        model_free,
        model_describe,
        tokenize,
        token_piece,
        token_attrs,
        context_new,
        context_free,
        decode,
        logits,
        seq_len,
        seq_truncate,
        seq_save,
        seq_load,
        selftest,
        bench_kernel,
        quantize,
    })
}

/// The exported symbol the launcher looks up (`hartlm_abi::API_SYMBOL`).
///
/// # Safety
/// `info` must be null or point to a valid [`LaunchInfo`] whose arrays and strings are valid
/// for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hartlm_engine_api(info: *const LaunchInfo) -> *const EngineApi {
    // SAFETY: the caller guarantees info is null or valid for the call.
    let launch = unsafe { Launch::from_raw(info) };
    table(launch)
}

/// A model as the frontend holds it: the weights (absent when only the vocabulary was asked
/// for) and the tokenizer (or why the file has none usable).
pub struct Loaded {
    weights: Option<Model>,
    vocab_file: Option<GgufFile>,
    tokenizer: Result<Tokenizer, String>,
}

impl Loaded {
    fn file(&self) -> &GgufFile {
        match (&self.weights, &self.vocab_file) {
            (Some(m), _) => &m.file,
            (None, Some(f)) => f,
            (None, None) => unreachable!("a Loaded holds a file"),
        }
    }
}

/// A context: the model it evaluates, its sequences' state and the last decode's logits.
struct Context {
    model: *const Loaded,
    state: State,
    /// `[rows wanted by the last decode, n_vocab]`.
    logits: Vec<f32>,
}

/// Sends `text` to `sink` (when there is one).
fn send(sink: *const Sink, kind: u32, text: &[u8]) {
    // SAFETY: the ABI requires sink to be null or valid for the call.
    if let Some(s) = unsafe { sink.as_ref() } {
        // SAFETY: the sink's write accepts `len` bytes at `ptr` for the call.
        unsafe { (s.write)(s.user, kind, text.as_ptr(), text.len()) }
    }
}

fn fail(err: *const Sink, kind: ErrorKind, message: impl std::fmt::Display) {
    send(err, kind as u32, message.to_string().as_bytes());
}

/// Runs `f`, turning a panic into a failure on `err` (a bug, reported as one).
fn guarded<T>(err: *const Sink, on_panic: T, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            fail(
                err,
                ErrorKind::Failed,
                "internal error in the engine (a bug: please report it with the command line)",
            );
            on_panic
        }
    }
}

fn path_of(b: Bytes) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: the ABI requires b to be valid for the call.
    Path::new(std::ffi::OsStr::from_bytes(unsafe { b.as_slice() })).to_path_buf()
}

unsafe extern "C" fn model_open(path: Bytes, vocab_only: u32, err: *const Sink) -> *mut ModelHandle {
    let path = path_of(path);
    guarded(err, std::ptr::null_mut(), || {
        let file = match GgufFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                fail(err, ErrorKind::Failed, format!("{}: {e}", path.display()));
                return std::ptr::null_mut();
            }
        };
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|e| e.to_string());
        let loaded = if vocab_only != 0 {
            Loaded { weights: None, vocab_file: Some(file), tokenizer }
        } else {
            let model = match Model::from_file(file) {
                Ok(m) => m,
                Err(e) => {
                    fail(err, ErrorKind::Failed, format!("{}: {e}", path.display()));
                    return std::ptr::null_mut();
                }
            };
            if let Ok(t) = &tokenizer
                && t.n_tokens() > model.config.n_vocab
            {
                fail(
                    err,
                    ErrorKind::Failed,
                    format!(
                        "{}: the tokenizer has {} tokens but token_embd.weight only {} rows; the model is damaged",
                        path.display(),
                        t.n_tokens(),
                        model.config.n_vocab
                    ),
                );
                return std::ptr::null_mut();
            }
            Loaded { weights: Some(model), vocab_file: None, tokenizer }
        };
        Box::into_raw(Box::new(loaded)).cast()
    })
}

unsafe extern "C" fn model_free(model: *mut ModelHandle) {
    if !model.is_null() {
        // SAFETY: model came from model_open's Box::into_raw and is freed once (ABI contract).
        drop(unsafe { Box::from_raw(model.cast::<Loaded>()) });
    }
}

/// # Safety
/// `model` must come from [`model_open`] and not be freed.
unsafe fn loaded<'a>(model: *const ModelHandle) -> &'a Loaded {
    // SAFETY: guaranteed by the caller.
    unsafe { &*model.cast::<Loaded>() }
}

unsafe extern "C" fn model_describe(model: *const ModelHandle, out: *const Sink) {
    // SAFETY: the ABI requires a live model.
    let m = unsafe { loaded(model) };
    let text = guarded(out, String::new(), || describe(m).to_string());
    send(out, 0, text.as_bytes());
}

/// The model as JSON: what `hartlm info`, `bench`, chat templates and the server need.
pub fn describe(m: &Loaded) -> serde_json::Value {
    let file = m.file();
    let text = |key: &str| match file.get(key) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    let mut types = std::collections::BTreeMap::<&str, (usize, u64)>::new();
    for t in &file.index.tensors {
        let e = types.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.data.len() as u64;
    }
    let tensor_types: serde_json::Map<String, serde_json::Value> = types
        .iter()
        .map(|(name, (count, bytes))| (name.to_string(), json!({"count": count, "bytes": bytes})))
        .collect();
    let mut d = json!({
        "file_bytes": file.len(),
        "gguf_version": file.index.version,
        "n_params": file.index.tensors.iter().map(|t| t.n_elements()).sum::<u64>(),
        "size_bytes": file.index.tensors.iter().map(|t| t.data.len() as u64).sum::<u64>(),
        "tensor_types": tensor_types,
        "name": text("general.name"),
        "architecture": text("general.architecture"),
        "vocab_model": text("tokenizer.ggml.model"),
        "chat_template": text("tokenizer.chat_template"),
    });
    match &m.tokenizer {
        Ok(t) => {
            d["tokenizer"] = json!({
                "n_tokens": t.n_tokens(),
                "bos": t.bos, "eos": t.eos,
                "bos_text": t.bos.map(|i| t.token_text(i).to_string()),
                "eos_text": t.eos.map(|i| t.token_text(i).to_string()),
                "add_bos": t.add_bos, "add_eos": t.add_eos,
                "eog": t.eog_ids(),
                "max_token_bytes": t.max_token_bytes(),
            });
        }
        Err(e) => d["tokenizer_error"] = json!(e),
    }
    if let Some(model) = &m.weights {
        let c = &model.config;
        let kinds: String =
            c.layer_kinds.iter().map(|&k| if k == LayerKind::ShortConv { 'C' } else { 'A' }).collect();
        d["config"] = json!({
            "arch": c.arch.name(),
            "n_vocab": c.n_vocab,
            "n_ctx_train": c.n_ctx_train,
            "n_embd": c.n_embd,
            "n_layer": c.n_layer,
            "n_head": c.n_head,
            "n_head_kv": c.n_head_kv,
            "head_dim": c.head_dim,
            "n_ff": c.n_ff,
            "layer_kinds": kinds,
            "conv_taps": c.conv_taps,
            "rope_neox": c.rope_neox,
            "rope_base": c.rope_base,
            "rope_dims": c.rope_dims,
            "rope_freq_scale": c.rope_freq_scale,
        });
    }
    d
}

unsafe extern "C" fn tokenize(
    model: *const ModelHandle,
    text: Bytes,
    add_special: u32,
    parse_special: u32,
    out: *mut u32,
    cap: usize,
) -> usize {
    // SAFETY: the ABI requires a live model and text valid for the call.
    let (m, text) = unsafe { (loaded(model), text.as_slice()) };
    let Ok(t) = &m.tokenizer else { return 0 };
    let text = String::from_utf8_lossy(text);
    let ids = guarded(std::ptr::null(), Vec::new(), || t.encode(&text, add_special != 0, parse_special != 0));
    if ids.len() <= cap && !out.is_null() {
        // SAFETY: out holds cap >= ids.len() writable u32s (ABI contract).
        unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), out, ids.len()) };
    }
    ids.len()
}

unsafe extern "C" fn token_piece(model: *const ModelHandle, id: u32, out: *const Sink) {
    // SAFETY: the ABI requires a live model.
    let m = unsafe { loaded(model) };
    if let Ok(t) = &m.tokenizer
        && (id as usize) < t.n_tokens()
    {
        send(out, 0, &t.piece_bytes(id));
    }
}

unsafe extern "C" fn token_attrs(model: *const ModelHandle, id: u32) -> u32 {
    // SAFETY: the ABI requires a live model.
    let m = unsafe { loaded(model) };
    let Ok(t) = &m.tokenizer else { return 0 };
    if id as usize >= t.n_tokens() {
        return 0;
    }
    let mut attrs = 0;
    if t.is_eog(id) {
        attrs |= TOKEN_EOG;
    }
    if t.token_type(id) == TokenType::Control {
        attrs |= TOKEN_CONTROL;
    }
    attrs
}

unsafe extern "C" fn context_new(
    model: *const ModelHandle,
    params: *const ContextParams,
    err: *const Sink,
) -> *mut ContextHandle {
    // SAFETY: the ABI requires a live model and valid params.
    let (m, p) = unsafe { (loaded(model), *params) };
    guarded(err, std::ptr::null_mut(), || {
        let Some(weights) = &m.weights else {
            fail(err, ErrorKind::Failed, "the model was opened for its vocabulary only");
            return std::ptr::null_mut();
        };
        if p.n_ctx == 0 || p.n_seq == 0 || p.threads_batch == 0 || p.threads_gen == 0 {
            fail(err, ErrorKind::Refused, "the context size, sequences and threads must be at least 1");
            return std::ptr::null_mut();
        }
        let threads = Threads { batch: p.threads_batch as usize, generate: p.threads_gen as usize };
        let cache = if p.cache_type == CACHE_F16 { CacheType::F16 } else { CacheType::F32 };
        match State::with_seqs(&weights.config, p.n_ctx as usize, p.n_seq as usize, threads, cache) {
            Ok(state) => {
                let ctx = Context { model: m, state, logits: Vec::new() };
                Box::into_raw(Box::new(ctx)).cast()
            }
            Err(e) => {
                fail(err, ErrorKind::Failed, e);
                std::ptr::null_mut()
            }
        }
    })
}

unsafe extern "C" fn context_free(ctx: *mut ContextHandle) {
    if !ctx.is_null() {
        // SAFETY: ctx came from context_new's Box::into_raw and is freed once (ABI contract).
        drop(unsafe { Box::from_raw(ctx.cast::<Context>()) });
    }
}

unsafe extern "C" fn decode(
    ctx: *mut ContextHandle,
    tokens: *const u32,
    seqs: *const u32,
    want: *const u8,
    n: usize,
    err: *const Sink,
) -> c_int {
    // SAFETY: the ABI requires a live context and n readable elements in each array.
    let (ctx, tokens, seqs, want) = unsafe {
        (
            &mut *ctx.cast::<Context>(),
            if n == 0 { &[][..] } else { std::slice::from_raw_parts(tokens, n) },
            if n == 0 { &[][..] } else { std::slice::from_raw_parts(seqs, n) },
            if n == 0 { &[][..] } else { std::slice::from_raw_parts(want, n) },
        )
    };
    // SAFETY: a context never outlives its model (ABI contract).
    let m = unsafe { &*ctx.model };
    let weights = m.weights.as_ref().expect("contexts exist only for models with weights");
    guarded(err, 1, || {
        let seqs: Vec<usize> = seqs.iter().map(|&q| q as usize).collect();
        let want: Vec<bool> = want.iter().map(|&w| w != 0).collect();
        let rows = want.iter().filter(|&&w| w).count();
        ctx.logits.resize(rows * weights.config.n_vocab, 0.0);
        match weights.decode(&mut ctx.state, tokens, &seqs, &want, &mut ctx.logits) {
            Ok(()) => 0,
            Err(e) => {
                ctx.logits.clear();
                fail(err, ErrorKind::Failed, e);
                1
            }
        }
    })
}

unsafe extern "C" fn logits(ctx: *const ContextHandle, row: usize) -> *const f32 {
    // SAFETY: the ABI requires a live context.
    let ctx = unsafe { &*ctx.cast::<Context>() };
    // SAFETY: a context never outlives its model (ABI contract).
    let m = unsafe { &*ctx.model };
    let nv = m.weights.as_ref().map_or(0, |w| w.config.n_vocab);
    match ctx.logits.get(row * nv..(row + 1) * nv) {
        Some(r) if nv > 0 => r.as_ptr(),
        _ => std::ptr::null(),
    }
}

unsafe extern "C" fn seq_len(ctx: *const ContextHandle, seq: u32) -> usize {
    // SAFETY: the ABI requires a live context.
    let ctx = unsafe { &*ctx.cast::<Context>() };
    if (seq as usize) < ctx.state.n_seq() { ctx.state.seq_len(seq as usize) } else { 0 }
}

unsafe extern "C" fn seq_truncate(ctx: *mut ContextHandle, seq: u32, len: usize) -> c_int {
    // SAFETY: the ABI requires a live context.
    let ctx = unsafe { &mut *ctx.cast::<Context>() };
    if (seq as usize) >= ctx.state.n_seq() {
        return 1;
    }
    if ctx.state.truncate(seq as usize, len) { 0 } else { 1 }
}

unsafe extern "C" fn seq_save(
    ctx: *const ContextHandle,
    seq: u32,
    out: *const Sink,
    err: *const Sink,
) -> c_int {
    // SAFETY: the ABI requires a live context.
    let ctx = unsafe { &*ctx.cast::<Context>() };
    if (seq as usize) >= ctx.state.n_seq() {
        fail(err, ErrorKind::Refused, format!("there is no sequence {seq}"));
        return 2;
    }
    // SAFETY: a context never outlives its model (ABI contract).
    let m = unsafe { &*ctx.model };
    let weights = m.weights.as_ref().expect("contexts exist only for models with weights");
    guarded(err, 1, || {
        ctx.state.save_seq(&weights.config, seq as usize, |bytes| send(out, 0, bytes));
        0
    })
}

unsafe extern "C" fn seq_load(ctx: *mut ContextHandle, seq: u32, blob: Bytes, err: *const Sink) -> c_int {
    // SAFETY: the ABI requires a live context and a blob valid for the call.
    let (ctx, blob) = unsafe { (&mut *ctx.cast::<Context>(), blob.as_slice()) };
    if (seq as usize) >= ctx.state.n_seq() {
        fail(err, ErrorKind::Refused, format!("there is no sequence {seq}"));
        return 2;
    }
    // SAFETY: a context never outlives its model (ABI contract).
    let m = unsafe { &*ctx.model };
    let weights = m.weights.as_ref().expect("contexts exist only for models with weights");
    guarded(err, 1, || match ctx.state.load_seq(&weights.config, seq as usize, blob) {
        Ok(()) => 0,
        Err(e) => {
            fail(err, ErrorKind::Refused, e);
            2
        }
    })
}

unsafe extern "C" fn selftest(seed: u64) -> c_int {
    guarded(std::ptr::null(), 101, || crate::selftest::command(seed, launch()))
}

unsafe extern "C" fn bench_kernel(
    req: *const KernelBenchRequest,
    out: *const Sink,
    err: *const Sink,
) -> c_int {
    // SAFETY: the ABI requires a valid request.
    let r = unsafe { *req };
    guarded(err, 1, || match crate::bench::kernel_line(&r, launch()) {
        Ok(line) => {
            send(out, 0, line.as_bytes());
            0
        }
        Err(why) => {
            fail(err, ErrorKind::Refused, why);
            2
        }
    })
}

unsafe extern "C" fn quantize(
    req: *const QuantizeRequest,
    progress: ProgressFn,
    user: *mut c_void,
    err: *const Sink,
) -> c_int {
    // SAFETY: the ABI requires a valid request whose byte strings are valid for the call.
    let r = unsafe { &*req };
    let (input, output) = (path_of(r.input), path_of(r.output));
    guarded(err, 1, || {
        let Some(ty) =
            GgmlType::from_id(r.ggml_type).filter(|t| matches!(t, GgmlType::Q4_0 | GgmlType::Q8_0))
        else {
            fail(
                err,
                ErrorKind::Refused,
                format!("GGML type {} is not a quantization target (q4_0, q8_0 are)", r.ggml_type),
            );
            return 2;
        };
        let file = match GgufFile::open(&input) {
            Ok(f) => f,
            Err(e) => {
                fail(err, ErrorKind::Failed, format!("{}: {e}", input.display()));
                return 1;
            }
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
        if !quantized.is_empty() && r.allow_requantize == 0 {
            fail(
                err,
                ErrorKind::Refused,
                format!(
                    "{} already holds {} matrices; requantizing compounds their rounding error: quantize the \
                     F16/F32 model, or pass --allow-requantize",
                    input.display(),
                    quantized.join("/")
                ),
            );
            return 2;
        }
        let report = |i: usize, n: usize, name: &str| {
            // SAFETY: the caller's progress function accepts these for the call.
            unsafe { progress(user, i, n, Bytes::of(name.as_bytes())) }
        };
        match crate::quantize::quantize(&file, &output, ty, r.pure != 0, report) {
            Ok(()) => 0,
            Err(e) => {
                fail(err, ErrorKind::Failed, format!("writing {}: {e}", output.display()));
                1
            }
        }
    })
}
