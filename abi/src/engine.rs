//! The engine's function table: what a tier library does for the launcher's frontend (load a
//! model, tokenize, evaluate batches of sequences, and the ISA-bound tools), as C types.
//!
//! Only what depends on the instruction set lives behind this table; command lines, chat
//! templates, sampling, the REPL, the server and output formats are compiled once, in the
//! launcher. Variable-length answers (errors, descriptions, token text) come back through a
//! [`Sink`] the caller provides, so neither side frees the other's memory.
use core::ffi::{c_int, c_void};

/// Borrowed UTF-8 (or raw) bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    pub fn of(s: &[u8]) -> Bytes {
        Bytes { ptr: s.as_ptr(), len: s.len() }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive the returned slice (or `len` be 0).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Receives bytes from the engine: `write(user, kind, ptr, len)`, possibly several times.
/// For errors `kind` is an [`ErrorKind`]; for data it is 0.
#[repr(C)]
pub struct Sink {
    pub user: *mut c_void,
    pub write: unsafe extern "C" fn(user: *mut c_void, kind: u32, ptr: *const u8, len: usize),
}

/// How an engine call failed: the exit status the command should end with.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was refused before any work (a value out of range): exit 2.
    Refused = 2,
    /// The work failed (a damaged file, an allocation, a full context): exit 1.
    Failed = 1,
}

/// Opaque engine objects.
#[repr(C)]
pub struct ModelHandle {
    _private: [u8; 0],
}
#[repr(C)]
pub struct ContextHandle {
    _private: [u8; 0],
}

/// Token attributes ([`EngineApi::token_attrs`]).
pub const TOKEN_EOG: u32 = 1;
pub const TOKEN_CONTROL: u32 = 2;

/// KV cache element types.
pub const CACHE_F32: u32 = 0;
pub const CACHE_F16: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ContextParams {
    /// Tokens each sequence can hold.
    pub n_ctx: u32,
    /// Sequences evaluated side by side (server slots).
    pub n_seq: u32,
    /// Threads for batches of more than a few tokens (prompts).
    pub threads_batch: u32,
    /// Threads for single tokens (generation).
    pub threads_gen: u32,
    /// [`CACHE_F32`] or [`CACHE_F16`].
    pub cache_type: u32,
}

/// `hartlm bench-kernel`'s kernels.
pub const KERNEL_SSM_CONV: u32 = 1;
pub const KERNEL_MATVEC: u32 = 2;
pub const KERNEL_READ: u32 = 3;

/// One kernel timing; fields a kernel does not use are ignored. The engine answers one line.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelBenchRequest {
    pub kernel: u32,
    pub reps: u32,
    pub threads: u32,
    /// ssm_conv: channels, taps, tokens; `reference` 1 times ggml's scalar loop instead.
    pub channels: u32,
    pub taps: u32,
    pub tokens: u32,
    pub reference: u32,
    /// matvec: the GGML type id of the weights, MiB of them, vectors per product.
    /// read: MiB of buffer.
    pub ggml_type: u32,
    pub size_mib: u32,
    pub batch: u32,
}

#[repr(C)]
pub struct QuantizeRequest {
    pub input: Bytes,
    pub output: Bytes,
    /// GGML type id (Q4_0 = 2, Q8_0 = 8).
    pub ggml_type: u32,
    pub pure: u32,
    pub allow_requantize: u32,
}

/// Called once per tensor while quantizing: `(user, done, total, name)`.
pub type ProgressFn = unsafe extern "C" fn(user: *mut c_void, done: usize, total: usize, name: Bytes);

/// The table `hartlm_engine_api` returns. Every pointer argument must be valid for the call;
/// handles come from this table and are freed by it, once.
#[repr(C)]
pub struct EngineApi {
    /// [`crate::ABI_VERSION`] of the library (checked before the table is used).
    pub abi_version: u32,
    /// The tier this library was compiled as.
    pub tier_id: Bytes,
    /// Opens a GGUF file; `vocab_only` skips the weights (tokenizing needs only the vocabulary).
    /// Null on failure, with the reason in `err`.
    pub model_open: unsafe extern "C" fn(path: Bytes, vocab_only: u32, err: *const Sink) -> *mut ModelHandle,
    pub model_free: unsafe extern "C" fn(model: *mut ModelHandle),
    /// A JSON object describing the model (architecture, shape, tensor types, vocabulary,
    /// chat template, special tokens), written to `out`.
    pub model_describe: unsafe extern "C" fn(model: *const ModelHandle, out: *const Sink),
    /// Tokenizes `text` into `out[..cap]`; returns how many tokens it makes (call again with a
    /// larger buffer when that exceeds `cap`).
    pub tokenize: unsafe extern "C" fn(
        model: *const ModelHandle,
        text: Bytes,
        add_special: u32,
        parse_special: u32,
        out: *mut u32,
        cap: usize,
    ) -> usize,
    /// The bytes of token `id` as it appears in text (empty for ids past the vocabulary).
    pub token_piece: unsafe extern "C" fn(model: *const ModelHandle, id: u32, out: *const Sink),
    /// [`TOKEN_EOG`] | [`TOKEN_CONTROL`] bits of token `id`.
    pub token_attrs: unsafe extern "C" fn(model: *const ModelHandle, id: u32) -> u32,
    /// Null on failure (no weights, a cache that cannot be allocated), with the reason in `err`.
    pub context_new: unsafe extern "C" fn(
        model: *const ModelHandle,
        params: *const ContextParams,
        err: *const Sink,
    ) -> *mut ContextHandle,
    pub context_free: unsafe extern "C" fn(ctx: *mut ContextHandle),
    /// Appends `tokens[i]` to sequence `seqs[i]` for `i < n` in one batched evaluation and
    /// keeps the logits of the rows whose `want[i]` is 1. Returns 0, or nonzero with `err`.
    pub decode: unsafe extern "C" fn(
        ctx: *mut ContextHandle,
        tokens: *const u32,
        seqs: *const u32,
        want: *const u8,
        n: usize,
        err: *const Sink,
    ) -> c_int,
    /// The logits (`n_vocab` floats) of the `row`-th wanted row of the last decode; null if
    /// there is no such row. Valid until the next decode or free.
    pub logits: unsafe extern "C" fn(ctx: *const ContextHandle, row: usize) -> *const f32,
    /// Tokens sequence `seq` holds.
    pub seq_len: unsafe extern "C" fn(ctx: *const ContextHandle, seq: u32) -> usize,
    /// Keeps the first `len` tokens of sequence `seq`; 0 on success, 1 when the model cannot
    /// cut there (short-conv state keeps all or nothing; truncate to 0 instead).
    pub seq_truncate: unsafe extern "C" fn(ctx: *mut ContextHandle, seq: u32, len: usize) -> c_int,
    /// Writes sequence `seq`'s state (its KV rows and conv state, with the cache shape they fit)
    /// to `out` as one blob, possibly in several writes. Returns 0, or nonzero with `err`.
    pub seq_save: unsafe extern "C" fn(
        ctx: *const ContextHandle,
        seq: u32,
        out: *const Sink,
        err: *const Sink,
    ) -> c_int,
    /// Replaces sequence `seq`'s state with a blob from `seq_save`. Returns 0; or 2 with `err`
    /// for a blob of another shape or cache type, longer than the context, or damaged, leaving
    /// the sequence empty.
    pub seq_load:
        unsafe extern "C" fn(ctx: *mut ContextHandle, seq: u32, blob: Bytes, err: *const Sink) -> c_int,
    /// Checks every kernel of the tier against its scalar reference, printing a report; returns
    /// the exit status.
    pub selftest: unsafe extern "C" fn(seed: u64) -> c_int,
    /// Times one kernel; writes one line to `out`. Returns 0, or nonzero with `err`.
    pub bench_kernel:
        unsafe extern "C" fn(req: *const KernelBenchRequest, out: *const Sink, err: *const Sink) -> c_int,
    /// Writes a quantized copy of a model. Returns 0, or nonzero with `err`.
    pub quantize: unsafe extern "C" fn(
        req: *const QuantizeRequest,
        progress: ProgressFn,
        user: *mut c_void,
        err: *const Sink,
    ) -> c_int,
}

// SAFETY: the table is immutable once built; its byte string points at the library's static
// data and its functions may be called from any thread (each handle is used by one at a time).
unsafe impl Send for EngineApi {}
// SAFETY: as above: nothing in the table changes after it is built.
unsafe impl Sync for EngineApi {}

/// `unsafe extern "C" fn(info) -> *const EngineApi`: records the launcher's choice (threads,
/// cores) and returns the library's table, valid for the life of the process.
pub type EngineApiFn = unsafe extern "C" fn(info: *const crate::LaunchInfo) -> *const EngineApi;
