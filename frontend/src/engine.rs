//! Safe handles over a tier library's function table (`hartlm_abi::engine`): an engine, the
//! models it opened and their contexts, freed in order by their lifetimes.
//!
//! Every call's errors come back as one line with the exit status it deserves.

use std::ffi::c_void;
use std::path::Path;

use hartlm_abi::engine::{
    Bytes, ContextHandle, ContextParams, EngineApi, ErrorKind, KernelBenchRequest, ModelHandle,
    QuantizeRequest, Sink, TOKEN_CONTROL, TOKEN_EOG,
};
use serde::Deserialize;

/// A failed engine call: its message and whether it was refused (exit 2) or failed (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub refused: bool,
    pub message: String,
}

type Result<T> = std::result::Result<T, EngineError>;

/// Collects what the engine writes to a [`Sink`].
#[derive(Default)]
struct Collected {
    kind: u32,
    bytes: Vec<u8>,
}

unsafe extern "C" fn collect(user: *mut c_void, kind: u32, ptr: *const u8, len: usize) {
    // SAFETY: user is the &mut Collected the sink was made from, alive for the call that owns
    // the sink; ptr holds len bytes for this call (ABI contract).
    let (c, bytes) = unsafe { (&mut *user.cast::<Collected>(), Bytes { ptr, len }.as_slice()) };
    c.kind = kind;
    c.bytes.extend_from_slice(bytes);
}

/// Calls `f` with a sink that collects into a buffer; returns `f`'s result and what was sent.
fn with_sink<T>(f: impl FnOnce(*const Sink) -> T) -> (T, Collected) {
    let mut c = Collected::default();
    let sink = Sink { user: (&raw mut c).cast(), write: collect };
    let v = f(&sink);
    (v, c)
}

fn error_from(c: Collected, fallback: &str) -> EngineError {
    let message = if c.bytes.is_empty() {
        fallback.to_string()
    } else {
        String::from_utf8_lossy(&c.bytes).into_owned()
    };
    EngineError { refused: c.kind == ErrorKind::Refused as u32, message }
}

/// A loaded tier library's table.
#[derive(Clone, Copy)]
pub struct Engine {
    api: &'static EngineApi,
}

impl Engine {
    /// Fails unless the table speaks this launcher's ABI version.
    pub fn new(api: &'static EngineApi) -> std::result::Result<Engine, String> {
        if api.abi_version != hartlm_abi::ABI_VERSION {
            return Err(format!(
                "the engine library speaks ABI {}, this launcher {}",
                api.abi_version,
                hartlm_abi::ABI_VERSION
            ));
        }
        Ok(Engine { api })
    }

    pub fn tier_id(&self) -> String {
        // SAFETY: the table's tier id points at the library's static bytes.
        String::from_utf8_lossy(unsafe { self.api.tier_id.as_slice() }).into_owned()
    }

    /// Opens a model: all of it, or its vocabulary only.
    pub fn open(&self, path: &Path, vocab_only: bool) -> Result<Model> {
        use std::os::unix::ffi::OsStrExt;
        let path = path.as_os_str().as_bytes();
        // SAFETY: path is valid for the call; the sink outlives it.
        let (handle, err) =
            with_sink(|err| unsafe { (self.api.model_open)(Bytes::of(path), u32::from(vocab_only), err) });
        if handle.is_null() {
            return Err(error_from(err, "the engine could not open the model"));
        }
        // SAFETY: handle is a live model of this table.
        let (_, described) = with_sink(|out| unsafe { (self.api.model_describe)(handle, out) });
        let info: ModelInfo = serde_json::from_slice(&described.bytes).map_err(|e| {
            // SAFETY: handle is live and freed once here.
            unsafe { (self.api.model_free)(handle) };
            EngineError { refused: false, message: format!("the engine described the model badly: {e}") }
        })?;
        Ok(Model { api: self.api, handle, info })
    }

    /// Runs the tier's kernel self-test, which prints its own report; its exit status.
    pub fn selftest(&self, seed: u64) -> i32 {
        // SAFETY: a plain call of the table.
        unsafe { (self.api.selftest)(seed) }
    }

    /// Times one kernel; its report line.
    pub fn bench_kernel(&self, req: &KernelBenchRequest) -> Result<String> {
        let mut out = Collected::default();
        let out_sink = Sink { user: (&raw mut out).cast(), write: collect };
        // SAFETY: req and both sinks are valid for the call.
        let (status, err) = with_sink(|err| unsafe { (self.api.bench_kernel)(req, &out_sink, err) });
        if status != 0 {
            return Err(error_from(err, "the kernel benchmark failed"));
        }
        Ok(String::from_utf8_lossy(&out.bytes).into_owned())
    }

    /// Writes a quantized copy of `input` to `output`, calling `progress(done, total, tensor)`.
    pub fn quantize(
        &self,
        input: &Path,
        output: &Path,
        ggml_type: u32,
        pure: bool,
        allow_requantize: bool,
        mut progress: impl FnMut(usize, usize, &str),
    ) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        unsafe extern "C" fn call(user: *mut c_void, done: usize, total: usize, name: Bytes) {
            // SAFETY: user is the &mut &mut dyn FnMut passed below, alive for the quantize call;
            // name's bytes are valid for this call.
            let (f, name) =
                unsafe { (&mut *user.cast::<&mut dyn FnMut(usize, usize, &str)>(), name.as_slice()) };
            f(done, total, &String::from_utf8_lossy(name));
        }
        let mut f: &mut dyn FnMut(usize, usize, &str) = &mut progress;
        let req = QuantizeRequest {
            input: Bytes::of(input.as_os_str().as_bytes()),
            output: Bytes::of(output.as_os_str().as_bytes()),
            ggml_type,
            pure: u32::from(pure),
            allow_requantize: u32::from(allow_requantize),
        };
        // SAFETY: req's byte strings, the progress closure and the sink outlive the call.
        let (status, err) =
            with_sink(|err| unsafe { (self.api.quantize)(&req, call, (&raw mut f).cast(), err) });
        if status != 0 {
            return Err(error_from(err, "quantizing failed"));
        }
        Ok(())
    }
}

/// What the engine says about a model (`model_describe`).
#[derive(Clone, Debug, Deserialize)]
pub struct ModelInfo {
    pub file_bytes: u64,
    pub gguf_version: u32,
    pub n_params: u64,
    pub size_bytes: u64,
    pub tensor_types: std::collections::BTreeMap<String, TypeShare>,
    pub name: Option<String>,
    pub architecture: Option<String>,
    pub vocab_model: Option<String>,
    pub chat_template: Option<String>,
    pub tokenizer: Option<TokenizerInfo>,
    pub tokenizer_error: Option<String>,
    /// Absent when the model was opened for its vocabulary only.
    pub config: Option<Config>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TypeShare {
    pub count: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenizerInfo {
    pub n_tokens: usize,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub bos_text: Option<String>,
    pub eos_text: Option<String>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub eog: Vec<u32>,
    /// The longest vocabulary entry, in bytes: no token covers more of a text.
    pub max_token_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub arch: String,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub layer_kinds: String,
    pub conv_taps: usize,
    pub rope_neox: bool,
    pub rope_base: f32,
    pub rope_dims: usize,
    pub rope_freq_scale: f32,
}

/// An open model. Tokenizing and describing are read-only and safe from any thread.
pub struct Model {
    api: &'static EngineApi,
    handle: *mut ModelHandle,
    pub info: ModelInfo,
}

// SAFETY: the engine's model is immutable after loading; its tokenizer and weights are read
// concurrently by design (contexts are separate objects).
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle is live and freed once; contexts borrow the model, so none is left.
        unsafe { (self.api.model_free)(self.handle) }
    }
}

impl Model {
    /// The model's configuration; an error for a vocabulary-only model.
    pub fn config(&self) -> Result<&Config> {
        self.info.config.as_ref().ok_or_else(|| EngineError {
            refused: false,
            message: "the model was opened for its vocabulary only".into(),
        })
    }

    /// The tokenizer, or why the file has none usable.
    pub fn tokenizer(&self) -> std::result::Result<&TokenizerInfo, String> {
        self.info.tokenizer.as_ref().ok_or_else(|| {
            self.info.tokenizer_error.clone().unwrap_or_else(|| "the model has no tokenizer".into())
        })
    }

    /// Tokenizes like `llama_tokenize(text, add_special, parse_special)`.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = vec![0u32; text.len() + 4];
        loop {
            // SAFETY: text and out are valid for the call; out holds out.len() u32s.
            let n = unsafe {
                (self.api.tokenize)(
                    self.handle,
                    Bytes::of(text.as_bytes()),
                    u32::from(add_special),
                    u32::from(parse_special),
                    out.as_mut_ptr(),
                    out.len(),
                )
            };
            if n <= out.len() {
                out.truncate(n);
                return out;
            }
            out.resize(n, 0);
        }
    }

    /// The bytes token `id` stands for.
    pub fn piece(&self, id: u32) -> Vec<u8> {
        // SAFETY: the handle is live; the sink outlives the call.
        with_sink(|out| unsafe { (self.api.token_piece)(self.handle, id, out) }).1.bytes
    }

    pub fn is_eog(&self, id: u32) -> bool {
        // SAFETY: the handle is live.
        unsafe { (self.api.token_attrs)(self.handle, id) & TOKEN_EOG != 0 }
    }

    pub fn is_control(&self, id: u32) -> bool {
        // SAFETY: the handle is live.
        unsafe { (self.api.token_attrs)(self.handle, id) & TOKEN_CONTROL != 0 }
    }

    /// A context of `params.n_seq` sequences of up to `params.n_ctx` tokens.
    pub fn context(&self, params: ContextParams) -> Result<Context<'_>> {
        let n_vocab = self.config()?.n_vocab;
        // SAFETY: the handle is live; params and the sink outlive the call.
        let (handle, err) = with_sink(|err| unsafe { (self.api.context_new)(self.handle, &params, err) });
        if handle.is_null() {
            return Err(error_from(err, "the engine could not create a context"));
        }
        Ok(Context { model: self, handle, n_vocab, params, restored: None })
    }
}

/// Sequences being evaluated: their caches, and the last decode's logits.
pub struct Context<'m> {
    model: &'m Model,
    handle: *mut ContextHandle,
    n_vocab: usize,
    pub params: ContextParams,
    /// Logits put back by [`Context::restore_logits`], answered as row 0 until the next decode.
    restored: Option<Vec<f32>>,
}

// SAFETY: a context is used by one thread at a time (it is not Sync); the engine keeps no
// thread-affine state in it.
unsafe impl Send for Context<'_> {}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle is live and freed once.
        unsafe { (self.model.api.context_free)(self.handle) }
    }
}

impl Context<'_> {
    /// Appends `tokens[i]` to sequence `seqs[i]` in one batched evaluation, keeping the logits of
    /// the rows `want`s.
    pub fn decode(&mut self, tokens: &[u32], seqs: &[u32], want: &[bool]) -> Result<()> {
        assert!(tokens.len() == seqs.len() && tokens.len() == want.len(), "one seq and want per token");
        self.restored = None;
        let want: Vec<u8> = want.iter().map(|&w| u8::from(w)).collect();
        // SAFETY: the arrays hold tokens.len() elements each; the sink outlives the call.
        let (status, err) = with_sink(|err| unsafe {
            (self.model.api.decode)(
                self.handle,
                tokens.as_ptr(),
                seqs.as_ptr(),
                want.as_ptr(),
                tokens.len(),
                err,
            )
        });
        if status != 0 {
            return Err(error_from(err, "evaluation failed"));
        }
        Ok(())
    }

    /// Appends `tokens` to sequence `seq`, keeping the last row's logits.
    pub fn feed(&mut self, seq: u32, tokens: &[u32]) -> Result<()> {
        let want: Vec<bool> = (0..tokens.len()).map(|i| i + 1 == tokens.len()).collect();
        self.decode(tokens, &vec![seq; tokens.len()], &want)
    }

    /// The logits of the `row`-th wanted row of the last decode.
    pub fn logits(&self, row: usize) -> &[f32] {
        if let (0, Some(l)) = (row, &self.restored) {
            return l;
        }
        // SAFETY: the handle is live; a non-null row holds n_vocab floats until the next
        // decode, which needs &mut self.
        unsafe {
            let p = (self.model.api.logits)(self.handle, row);
            if p.is_null() { &[] } else { std::slice::from_raw_parts(p, self.n_vocab) }
        }
    }

    pub fn seq_len(&self, seq: u32) -> usize {
        // SAFETY: the handle is live.
        unsafe { (self.model.api.seq_len)(self.handle, seq) }
    }

    /// Keeps the first `len` tokens of `seq`; false when the model cannot cut there (then only
    /// 0 works).
    pub fn truncate(&mut self, seq: u32, len: usize) -> bool {
        // SAFETY: the handle is live.
        unsafe { (self.model.api.seq_truncate)(self.handle, seq, len) == 0 }
    }

    /// Sequence `seq`'s state as one blob (the engine's format, tied to this model's shape and
    /// this context's cache type).
    pub fn save(&self, seq: u32) -> Result<Vec<u8>> {
        let mut out = Collected::default();
        let out_sink = Sink { user: (&raw mut out).cast(), write: collect };
        // SAFETY: the handle is live; both sinks outlive the call.
        let (status, err) =
            with_sink(|err| unsafe { (self.model.api.seq_save)(self.handle, seq, &out_sink, err) });
        if status != 0 {
            return Err(error_from(err, "saving the sequence state failed"));
        }
        Ok(out.bytes)
    }

    /// Makes `logits` (saved with a sequence's state) the last decode's first row, as if the
    /// sequence's last token had just been evaluated.
    pub fn restore_logits(&mut self, logits: Vec<f32>) {
        assert_eq!(logits.len(), self.n_vocab, "one row of logits");
        self.restored = Some(logits);
    }

    /// Replaces sequence `seq`'s state with a blob from [`Context::save`]; on error the
    /// sequence is empty.
    pub fn load(&mut self, seq: u32, blob: &[u8]) -> Result<()> {
        // SAFETY: the handle is live; blob and the sink outlive the call.
        let (status, err) =
            with_sink(|err| unsafe { (self.model.api.seq_load)(self.handle, seq, Bytes::of(blob), err) });
        if status != 0 {
            return Err(error_from(err, "loading the sequence state failed"));
        }
        Ok(())
    }

    pub fn model(&self) -> &Model {
        self.model
    }
}
