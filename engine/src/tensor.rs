//! Weight matrices as the model holds them (ggml's rows, plus the panel copy where this tier
//! packs one) and their batched products with activations, split across the thread pool.
//!
//! The element types and their references are `crate::types`; the per-tier kernels `kernels`.

use crate::kernels;
use crate::kernels::ime;
use crate::kernels::pack::{ActivationAux, Layout, Packed};
use crate::kernels::tile::{self, Tokens};
use crate::pool::{Pool, split};
use crate::types::{Activation, GgmlType};

/// The fewest tokens worth a prompt tile of `tile::TOKENS` lanes. Measured on x86-64-v3 word
/// panels (AMD EPYC, one thread, 16 MiB of Q4_0, Q4_1 and Q8_0, `bench-kernel matvec --batch`,
/// two alternating rounds): 8 tokens ran faster by panel products in five of six cases, 10
/// were level, from 12 the tile was ahead in most.
const MIN_TILE_TOKENS: usize = 10;

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
        let row_bytes = self.row_bytes();
        let out = SyncPtr(out.as_mut_ptr());
        let work = |range: std::ops::Range<usize>| {
            for r in range {
                let row = &self.data[r * row_bytes..(r + 1) * row_bytes];
                for (b, act) in acts.iter().enumerate() {
                    // SAFETY: each (b, r) is written by exactly one worker (rows are split into
                    // disjoint ranges) and lies below batch * rows <= out.len(); `run` joins
                    // before returning.
                    unsafe { *out.get().add(b * rows + r) = kernels::dot(self.ty, row, act) };
                }
            }
        };
        // Below this much work a dispatch costs more than it saves.
        if pool.threads() == 1 || batch * rows * self.cols < 32 * 1024 {
            work(0..rows);
        } else {
            pool.run(&|i| work(split(rows, i, pool.threads())));
        }
    }
}

/// [`Weight::matmul`] on panels: each worker takes whole panels and runs every token of the
/// batch through a panel while it is in cache: by IME tiles (RVV byte panels on a matrix
/// unit), by prompt tiles (x86 word panels, sets of at least MIN_TILE_TOKENS tokens), and one
/// panel product per token for the rest.
fn matmul_packed(p: &Packed, acts: &[Activation], out: &mut [f32], pool: &Pool) {
    let (rows, r) = (p.rows, p.r);
    // A matrix unit takes whole tiles of tokens: from one tile's worth of tokens on.
    let tiles = (acts.len() >= ime::M && kernels::panel_batch_supported(p.ty))
        .then(|| ime::ImeTokens::new(p.ty, acts))
        .flatten();
    // Every word-panel type has prompt tiles. A tile costs the same however few of its lanes
    // are tokens, so a short set (a decode step of a few sequences) goes by panel products.
    let token_sets: Vec<Tokens> = if p.layout == Layout::Words && acts.len() >= MIN_TILE_TOKENS {
        acts.chunks(tile::TOKENS)
            .take_while(|set| set.len() >= MIN_TILE_TOKENS)
            .map_while(Tokens::new)
            .collect()
    } else {
        Vec::new()
    };
    let tiled = if tiles.is_some() { acts.len() } else { (token_sets.len() * tile::TOKENS).min(acts.len()) };
    let aux: Vec<ActivationAux> = acts[tiled..].iter().map(|a| ActivationAux::new(p.ty, a)).collect();
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
            for (k, y) in token_sets.iter().enumerate() {
                for half in 0..n.div_ceil(4) {
                    let v = kernels::prompt_tile(p, panel, half, y);
                    for (i, row) in v.iter().enumerate().take(n - 4 * half) {
                        // Lanes past the batch are padding.
                        for (t, &v) in row.iter().enumerate().take(acts.len() - k * tile::TOKENS) {
                            // SAFETY: row panel*r + 4 half + i < panel*r + n of token
                            // k*TOKENS + t < acts.len() belongs to this worker's disjoint panel
                            // range; `run` joins before returning.
                            unsafe {
                                *out.get().add((k * tile::TOKENS + t) * rows + panel * r + 4 * half + i) = v
                            };
                        }
                    }
                }
            }
            for (b, (act, aux)) in (tiled..).zip(acts[tiled..].iter().zip(&aux)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{Rng, random_quant_row};

    /// Products on word panels equal the row dots bit for bit for every token, however the
    /// batch splits into prompt-tile sets and panel products, with a partial last panel, on
    /// one and two threads. (Here the kernels are the scalar references; selftest checks this
    /// tier's own against them.)
    #[test]
    fn word_panel_products_equal_row_dots() {
        let mut rng = Rng::new(21);
        let (rows, cols) = (21, 128);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let data = random_quant_row(ty, rows * cols / ty.block_len(), &mut rng);
            let packed = Packed::words(ty, rows, cols, &data).unwrap();
            let w = Weight { ty, rows, cols, data: &data, packed: Some(&packed) };
            for batch in [1, MIN_TILE_TOKENS - 1, MIN_TILE_TOKENS, tile::TOKENS, 26, 2 * tile::TOKENS + 1] {
                let x = rng.vec(batch * cols);
                let acts: Vec<Activation> =
                    x.chunks_exact(cols).map(|v| kernels::activation(ty, v)).collect();
                for threads in [1, 2] {
                    let mut out = vec![f32::NAN; batch * rows];
                    w.matmul(&x, &mut out, &Pool::new(threads));
                    for (b, act) in acts.iter().enumerate() {
                        for r in 0..rows {
                            let want = kernels::dot(ty, w.row(r), act);
                            let got = out[b * rows + r];
                            assert_eq!(got.to_bits(), want.to_bits(), "{ty} batch {batch} token {b} row {r}");
                        }
                    }
                }
            }
        }
    }
}
