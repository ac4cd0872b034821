//! Prompt-processing tiles: four weight rows times sixteen tokens per kernel call, with the
//! tokens' activations interleaved four bytes at a time ([`Tokens`]), and the scalar reference.
//!
//! Each output is the same sequence of f32 operations as the single-row dot of its type
//! (`(sumi * dx) * dy` for Q4_0, `sumi * (dx * dy)` for Q8_0, `(dx * dy) * sumi + mx * sy` for
//! Q4_1, added in block order), so a tile is bit-identical to the row dots it replaces.

use crate::testdata::{Rng, random_quant_row};
use crate::types::{Activation, GgmlType, QK, f16_to_f32};

/// Tokens per tile: one 32-bit lane per token of a 512-bit vector (two 256-bit halves on AVX2,
/// where sharing each weight unpack between 16 tokens rather than 8 also paid).
pub const TOKENS: usize = 16;

/// One block column of the tokens. `qs[g][t]` holds quants `4g..4g + 4` of token t, so one
/// 64-byte load gives the same four quants of every token: a vector lane per token. Every
/// field starts on a 64-byte boundary, as aligned loads need.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct TokensBlock {
    pub qs: [[[i8; 4]; TOKENS]; QK / 4],
    /// Each token's block scale as f32.
    pub d: [f32; TOKENS],
    /// Q8_1 tokens: each block's `s` as f32 (Q8_0: zero).
    pub s: [f32; TOKENS],
    /// `8 * sum(qs)`, the term Q4_0's `q - 8` offset subtracts.
    pub sum8: [i32; TOKENS],
}

/// A Q8_0 or Q8_1 block's f16 scale, f16 sum (Q8_1 only) and quants.
type BlockView<'a> = (u16, Option<u16>, &'a [i8; QK]);

/// Up to [`TOKENS`] tokens' Q8_0 or Q8_1 activations of one matrix, block-interleaved; missing
/// tokens are zero.
pub struct Tokens(pub Vec<TokensBlock>);

impl Tokens {
    /// The interleave of `acts` (1 to TOKENS of them), or None unless all are Q8_0 or all Q8_1.
    pub fn new(acts: &[Activation]) -> Option<Tokens> {
        if acts.len() > TOKENS {
            return None;
        }
        // Each token's blocks as (d, s, qs) triples; every token of the kind of the first.
        let with_s = matches!(acts.first()?.plain(), Activation::Q8_1(_));
        let blocks: Vec<Vec<BlockView>> = acts
            .iter()
            .map(|a| match a.plain() {
                Activation::Q8_0(y) if !with_s => Some(y.iter().map(|b| (b.d, None, &b.qs)).collect()),
                Activation::Q8_1(y) if with_s => Some(y.iter().map(|b| (b.d, Some(b.s), &b.qs)).collect()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let n = blocks.iter().map(Vec::len).min()?;
        let zero = TokensBlock {
            qs: [[[0; 4]; TOKENS]; QK / 4],
            d: [0.0; TOKENS],
            s: [0.0; TOKENS],
            sum8: [0; TOKENS],
        };
        let mut out = vec![zero; n];
        for (t, token) in blocks.iter().enumerate() {
            for (o, &(d, s, qs)) in out.iter_mut().zip(token) {
                for (g, q) in qs.chunks_exact(4).enumerate() {
                    o.qs[g][t].copy_from_slice(q);
                }
                o.d[t] = f16_to_f32(d);
                o.s[t] = s.map_or(0.0, f16_to_f32);
                o.sum8[t] = 8 * qs.iter().map(|&v| v as i32).sum::<i32>();
            }
        }
        Some(Tokens(out))
    }

    /// Quant `e` of token `t` in block `j`.
    fn q(&self, j: usize, t: usize, e: usize) -> i8 {
        self.0[j].qs[e / 4][t][e % 4]
    }
}

/// The scalar reference of [`super::prompt_tile`].
pub fn tile_reference(ty: GgmlType, rows: [&[u8]; 4], tokens: &Tokens) -> [[f32; TOKENS]; 4] {
    let bb = ty.block_bytes();
    let mut out = [[0.0f32; TOKENS]; 4];
    for (i, row) in rows.iter().enumerate() {
        for (j, yb) in tokens.0.iter().enumerate() {
            let b = &row[j * bb..(j + 1) * bb];
            let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]));
            let dx = f16(0);
            for (t, o) in out[i].iter_mut().enumerate() {
                let y: [i8; QK] = std::array::from_fn(|e| tokens.q(j, t, e));
                *o += match ty {
                    GgmlType::Q8_0 => {
                        let sumi: i32 =
                            b[2..34].iter().zip(&y).map(|(&x, &y)| x as i8 as i32 * y as i32).sum();
                        sumi as f32 * (dx * yb.d[t])
                    }
                    _ => {
                        let qs = &b[bb - 16..];
                        let raw: i32 = (0..QK / 2)
                            .map(|l| {
                                (qs[l] & 15) as i32 * y[l] as i32 + (qs[l] >> 4) as i32 * y[l + 16] as i32
                            })
                            .sum();
                        if ty == GgmlType::Q4_0 {
                            (raw - yb.sum8[t]) as f32 * dx * yb.d[t]
                        } else {
                            (dx * yb.d[t]) * raw as f32 + f16(2) * yb.s[t]
                        }
                    }
                };
            }
        }
    }
    out
}

/// Four random weight rows of `ty` with `nb` blocks and `tokens` activations of the kind ggml
/// pairs with it: a prompt tile's inputs. Token 3 has a large outlier (a coarse scale), token 2
/// is all zero (scale 0).
pub fn tile_case(ty: GgmlType, nb: usize, tokens: usize, rng: &mut Rng) -> (Vec<Vec<u8>>, Vec<Activation>) {
    let rows = (0..4).map(|_| random_quant_row(ty, nb, rng)).collect();
    let acts = (0..tokens)
        .map(|t| {
            let mut x = rng.vec(nb * QK);
            x[0] = if t == 3 { 1e4 } else { x[0] };
            if t == 2 {
                x.fill(0.0);
            }
            super::activation(ty, &x)
        })
        .collect();
    (rows, acts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pack::Packed;
    use crate::testdata::Rng;

    /// The rows · tokens products as the engine's own row dots compute them.
    fn row_dots(ty: GgmlType, rows: &[Vec<u8>], acts: &[Activation]) -> Vec<Vec<f32>> {
        rows.iter().map(|r| acts.iter().map(|a| crate::kernels::dot(ty, r, a)).collect()).collect()
    }

    /// The first `n` tokens of each row.
    fn first<R: AsRef<[f32]>>(out: &[R], n: usize) -> Vec<Vec<f32>> {
        out.iter().map(|o| o.as_ref()[..n].to_vec()).collect()
    }

    /// Tiles equal the engine's own row dots bit for bit, for every type, awkward lengths and
    /// partial token sets, with both the reference and this build's kernel.
    #[test]
    fn tiles_equal_row_dots_exactly() {
        let mut rng = Rng::new(11);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for (nb, tokens) in [(1, 16), (2, 5), (3, 8), (5, 1), (8, 13), (17, 7), (64, 16)] {
                let (rows, acts) = tile_case(ty, nb, tokens, &mut rng);
                let want = row_dots(ty, &rows, &acts);
                let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
                let y = Tokens::new(&acts).expect("Q8_0 or Q8_1 activations");
                let w = Packed::words(ty, 4, nb * QK, &rows.concat()).expect("a word-panel type");
                for (name, got) in [
                    ("reference", tile_reference(ty, r, &y)),
                    ("kernel", crate::kernels::prompt_tile(&w, 0, 0, &y)),
                ] {
                    assert_eq!(first(&got, tokens), want, "{ty} {name}, {nb} blocks, {tokens} tokens");
                }
            }
        }
    }

    #[test]
    fn token_sets_hold_one_to_sixteen_activations_of_one_q8_kind() {
        let x = vec![0.5f32; 64];
        let q8_0 = || crate::kernels::activation(GgmlType::Q4_0, &x);
        assert!(Tokens::new(&[q8_0(), q8_0(), q8_0()]).is_some());
        assert!(Tokens::new(&[]).is_none());
        assert!(Tokens::new(&(0..16).map(|_| q8_0()).collect::<Vec<_>>()).is_some());
        assert!(Tokens::new(&(0..17).map(|_| q8_0()).collect::<Vec<_>>()).is_none());
        let q8_1 = crate::kernels::activation(GgmlType::Q4_1, &x);
        assert!(Tokens::new(&[q8_0(), q8_1]).is_none());
        assert!(Tokens::new(&[crate::kernels::activation(GgmlType::F32, &x)]).is_none());
    }
}
