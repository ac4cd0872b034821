//! Weight matrices as the model holds them (ggml's rows, plus the panel copy where this tier
//! packs one) and their batched products with activations, split across the thread pool.
//!
//! The element types and their references are `crate::types`; the per-tier kernels `kernels`.

use crate::kernels::ime;
use crate::kernels::tile::{self, Tokens};
use crate::kernels::{self, pack::ActivationAux, pack::Packed};
use crate::pool::{Pool, split};
use crate::types::{Activation, BlockQ4_0, BlockQ8_0, GgmlType, blocks};

/// Rows a matmul worker takes at a time (two prompt tiles; one `kernels::dot_rows8` call).
const GROUP_ROWS: usize = 8;

/// The fewest tokens worth a prompt tile of `tile::TOKENS` lanes. Measured on x86-64-v3 (AMD
/// EPYC, one thread, Q4_0 and Q4_1): by rows, 4 tokens ran 1.5x faster than in a tile and 5-6
/// tokens 1.1-1.3x; from 7 tokens the tile is level or ahead.
const MIN_TILE_TOKENS: usize = 7;

/// A row-major matrix stored in a GGUF tensor: `rows` rows of `cols` elements each.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
    /// The same matrix in the panel layout of this build's kernels, when it has one.
    pub packed: Option<&'a Packed>,
}

impl<'a> Weight<'a> {
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_len() * self.ty.block_bytes()
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        crate::types::dequantize(self.ty, self.row(r), &mut out[..self.cols]);
    }

    /// `out[b][r] = row(r) · x[b]` for a batch of `x.len() / cols` vectors (row-major), rows
    /// split across the pool's workers. Each `x[b]` is quantized once, as ggml does, and each
    /// weight row is used for the whole batch while it is in cache.
    pub fn matmul(&self, x: &[f32], out: &mut [f32], pool: &Pool) {
        let batch = x.len() / self.cols;
        let acts: Vec<Activation> =
            x.chunks_exact(self.cols).map(|v| kernels::activation(self.ty, v)).collect();
        let rows = self.rows;
        debug_assert!(out.len() >= batch * rows);
        if let Some(p) = self.packed {
            return matmul_packed(p, &acts, out, pool);
        }
        // Q4_0/Q8_0 rows take four tokens per kernel call: each block is unpacked once.
        let q8: Vec<&[BlockQ8_0]> = acts
            .iter()
            .filter_map(|a| if let Activation::Q8_0(q) = a { Some(&q[..]) } else { None })
            .collect();
        let by_four = matches!(self.ty, GgmlType::Q4_0 | GgmlType::Q8_0) && q8.len() == batch;
        // Where this build has tiles, four rows times `tile::TOKENS` tokens per call (`kernels::tile`),
        // for sets of at least MIN_TILE_TOKENS tokens: a tile costs the same however few of its
        // lanes are tokens, so a short set (a decode step of a few sequences) goes by rows.
        let token_sets: Vec<Tokens> = if tile::supported(self.ty) && batch >= MIN_TILE_TOKENS {
            acts.chunks(tile::TOKENS)
                .take_while(|set| set.len() >= MIN_TILE_TOKENS)
                .map_while(Tokens::new)
                .collect()
        } else {
            Vec::new()
        };
        let tiled_tokens = (token_sets.len() * tile::TOKENS).min(batch);
        let row_bytes = self.row_bytes();
        let row = |r: usize| &self.data[r * row_bytes..(r + 1) * row_bytes];
        let out = SyncPtr(out.as_mut_ptr());
        let put = |b: usize, r: usize, v: f32| {
            // SAFETY: each (b, r) is written by exactly one worker (rows are split into disjoint
            // ranges) and lies below batch * rows <= out.len(); `run` joins before returning.
            unsafe { *out.get().add(b * rows + r) = v }
        };
        // Tokens `b..end` against row r.
        let row_tail = |r: usize, mut b: usize, end: usize| {
            let row = row(r);
            if by_four {
                while b + 4 <= end {
                    let ys = [q8[b], q8[b + 1], q8[b + 2], q8[b + 3]];
                    let v = match self.ty {
                        GgmlType::Q4_0 => kernels::dot_q4_0_q8_0_x4(&blocks::<BlockQ4_0>(row), ys),
                        _ => kernels::dot_q8_0_q8_0_x4(&blocks::<BlockQ8_0>(row), ys),
                    };
                    for (i, v) in v.into_iter().enumerate() {
                        put(b + i, r, v);
                    }
                    b += 4;
                }
            }
            for (b, act) in acts.iter().enumerate().take(end).skip(b) {
                put(b, r, kernels::dot(self.ty, row, act));
            }
        };
        // Workers take groups of eight rows: two prompt tiles of four rows, then the remaining
        // tokens, by eight rows at once where the tier has such a kernel (token generation).
        let work = |groups: std::ops::Range<usize>| {
            for g in groups {
                let (r0, r1) = (GROUP_ROWS * g, (GROUP_ROWS * (g + 1)).min(rows));
                let tiled = if token_sets.is_empty() || r1 - r0 < GROUP_ROWS { 0 } else { tiled_tokens };
                if tiled > 0 {
                    for q0 in (r0..r1).step_by(4) {
                        let four = [row(q0), row(q0 + 1), row(q0 + 2), row(q0 + 3)];
                        for (k, y) in token_sets.iter().enumerate() {
                            for (i, v) in kernels::prompt_tile(self.ty, four, y).into_iter().enumerate() {
                                let b0 = k * tile::TOKENS;
                                // Lanes past the batch are padding.
                                v.iter()
                                    .take(batch - b0)
                                    .enumerate()
                                    .for_each(|(t, &v)| put(b0 + t, q0 + i, v));
                            }
                        }
                    }
                }
                // The x4 kernels take whole sets of four tokens; the rest go eight rows at a time.
                let by_one = if by_four { tiled + (batch - tiled) / 4 * 4 } else { tiled };
                let mut end = batch;
                if r1 - r0 == GROUP_ROWS {
                    let eight: [&[u8]; GROUP_ROWS] = std::array::from_fn(|i| row(r0 + i));
                    while end > by_one {
                        let Some(v) = kernels::dot_rows8(self.ty, eight, &acts[end - 1]) else { break };
                        v.iter().enumerate().for_each(|(i, &v)| put(end - 1, r0 + i, v));
                        end -= 1;
                    }
                }
                (r0..r1).for_each(|r| row_tail(r, tiled, end));
            }
        };
        let groups = rows.div_ceil(GROUP_ROWS);
        // Below this much work a dispatch costs more than it saves.
        if pool.threads() == 1 || batch * rows * self.cols < 32 * 1024 {
            work(0..groups);
        } else {
            pool.run(&|i| work(split(groups, i, pool.threads())));
        }
    }
}

/// [`Weight::matmul`] on panels: each worker takes whole panels and runs every token of the
/// batch through a panel while it is in cache.
fn matmul_packed(p: &Packed, acts: &[Activation], out: &mut [f32], pool: &Pool) {
    let (rows, r) = (p.rows, p.r);
    // A matrix unit takes whole tiles of tokens: from one tile's worth of tokens on.
    let tiles = (acts.len() >= ime::M && kernels::panel_batch_supported(p.ty))
        .then(|| ime::ImeTokens::new(p.ty, acts))
        .flatten();
    let aux: Vec<ActivationAux> = match tiles {
        Some(_) => Vec::new(),
        None => acts.iter().map(|a| ActivationAux::new(p.ty, a)).collect(),
    };
    assert!(
        acts.len() * rows <= out.len(),
        "matmul: {} floats for {} tokens of {rows} rows",
        out.len(),
        acts.len()
    );
    let out = SyncPtr(out.as_mut_ptr());
    let work = |panels: std::ops::Range<usize>| {
        // IME: a panel's row records, reused from panel to panel.
        let mut scratch = Vec::new();
        for panel in panels {
            if let Some(tokens) = &tiles {
                // SAFETY: rows [panel*r, panel*r + panel_rows) of every token belong to this
                // worker's disjoint panel range and lie below acts.len() * rows <= out.len();
                // `run` joins before returning.
                unsafe {
                    kernels::panel_batch(p, panel, tokens, &mut scratch, out.get().add(panel * r), rows)
                };
                continue;
            }
            let n = p.panel_rows(panel);
            for (b, (act, aux)) in acts.iter().zip(&aux).enumerate() {
                // SAFETY: rows [panel*r, panel*r + n) of token b belong to this worker's disjoint
                // panel range and lie below acts.len() * rows <= out.len(); `run` joins first.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(b * rows + panel * r), n) };
                kernels::panel_dot(p, panel, act, aux, dst);
            }
        }
    };
    let panels = p.panels();
    if pool.threads() == 1 || acts.len() * rows * p.cols < 32 * 1024 {
        work(0..panels);
    } else {
        pool.run(&|i| work(split(panels, i, pool.threads())));
    }
}

/// A pointer workers write disjoint elements through.
pub(crate) struct SyncPtr(*mut f32);
// SAFETY: only used for disjoint writes inside `Pool::run`, which joins before returning.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    pub(crate) fn new(p: *mut f32) -> SyncPtr {
        SyncPtr(p)
    }

    pub(crate) fn get(&self) -> *mut f32 {
        self.0
    }
}
