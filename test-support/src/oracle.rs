//! Comparing hartlm's logits with llama.cpp's recorded ones (../shared/fixtures): the fixture
//! list with its tolerances, and a teacher-forced comparison used by tests and `test-qemu`.

use std::path::Path;

/// The index of the largest value, the lowest on ties (as hartlm's greedy sampler).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// One fixture model and how closely it must match llama.cpp (from the fixtures' README).
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    /// Maximum |Δlogit| over all compared positions.
    pub tol: f32,
    /// Argmax must agree wherever llama.cpp's top-1 minus top-2 exceeds this.
    pub margin: f32,
}

pub const CASES: &[Case] = &[
    Case { name: "micro-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "micro-q8_0", tol: 0.06, margin: 0.0 },
    Case { name: "micro-q4_0", tol: 0.06, margin: 0.0 },
    Case { name: "micro-q4_0-pure", tol: 0.06, margin: 0.0 },
    Case { name: "s288-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "s288-q8_0", tol: 0.2, margin: 0.3 },
    Case { name: "s288-q4_0", tol: 0.2, margin: 0.3 },
    Case { name: "s288-q4_0-pure", tol: 0.2, margin: 0.3 },
    Case { name: "qwen3-micro-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "qwen3-micro-q8_0", tol: 0.06, margin: 0.0 },
    Case { name: "lfm2-micro-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "lfm2-micro-l3-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "lfm2-micro-q8_0", tol: 0.06, margin: 0.0 },
    Case { name: "lfm2-micro-q4_0", tol: 0.06, margin: 0.0 },
    Case { name: "lfm2-micro-q4_0-pure", tol: 0.06, margin: 0.0 },
];

/// Models `cargo xtask fetch-models` generates into target/fixtures-gen/ with the fixtures'
/// generator, compared against its float64 numpy reference (no llama.cpp recording exists).
/// F16 weights multiply F16-rounded activations, as in llama.cpp, which the reference does not.
pub const GENERATED_CASES: &[Case] = &[
    Case { name: "qwen2-micro-f32", tol: 1e-3, margin: 0.0 },
    Case { name: "qwen2-micro-f16", tol: 0.02, margin: 0.0 },
];

/// llama.cpp's recorded run of one fixture.
pub struct Oracle {
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    pub prompt_logits: Vec<f32>,
    pub greedy_logits: Vec<f32>,
    pub n_vocab: usize,
}

fn read_ids(path: &Path) -> Result<Vec<u32>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|v| v.trim().parse().map_err(|_| format!("{}: bad id {v:?}", path.display())))
        .collect()
}

/// How llama.cpp fed the prompt in the fixtures' chunked recordings (`oracle/chunked/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// 10 tokens, then the other 15.
    Split10,
    /// One token per call.
    Tok1,
    /// One call, processed in micro-batches of 4.
    Ubatch4,
}

impl Chunking {
    pub const ALL: [Chunking; 3] = [Chunking::Split10, Chunking::Tok1, Chunking::Ubatch4];

    pub fn name(self) -> &'static str {
        match self {
            Chunking::Split10 => "split10",
            Chunking::Tok1 => "tok1",
            Chunking::Ubatch4 => "ubatch4",
        }
    }

    /// Sizes of the successive calls that feed `n` prompt tokens.
    pub fn calls(self, n: usize) -> Vec<usize> {
        match self {
            Chunking::Split10 if n > 10 => vec![10, n - 10],
            Chunking::Split10 => vec![n],
            Chunking::Tok1 => vec![1; n],
            Chunking::Ubatch4 => (0..n).step_by(4).map(|at| (n - at).min(4)).collect(),
        }
    }
}

impl Oracle {
    pub fn load(fixtures: &Path, name: &str) -> Result<Oracle, String> {
        Oracle::load_recording(fixtures, name, None)
    }

    /// The recording of `name` with the prompt fed as `chunking` says (the same prompt ids).
    pub fn load_chunked(fixtures: &Path, name: &str, chunking: Chunking) -> Result<Oracle, String> {
        Oracle::load_recording(fixtures, name, Some(chunking))
    }

    fn load_recording(fixtures: &Path, name: &str, chunking: Option<Chunking>) -> Result<Oracle, String> {
        let o = fixtures.join("oracle");
        let rec = match chunking {
            None => o.join(name),
            Some(c) => o.join(format!("chunked/{name}.{}", c.name())),
        };
        let file = |suffix: &str| {
            let mut p = rec.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        let (prompt_logits, ps) = crate::npy::read_f32(&file(".prompt_logits.npy"))?;
        let (greedy_logits, gs) = crate::npy::read_f32(&file(".greedy_logits.npy"))?;
        if ps.len() != 2 || gs.len() != 2 || ps[1] != gs[1] {
            return Err(format!("{name}: oracle shapes {ps:?} and {gs:?} disagree"));
        }
        Ok(Oracle {
            prompt_ids: read_ids(&o.join(format!("{name}.prompt_ids.json")))?,
            greedy_ids: read_ids(&file(".greedy_ids.json"))?,
            prompt_logits,
            greedy_logits,
            n_vocab: ps[1],
        })
    }

    /// A generated fixture: reference logits for `<dir>/<name>.ref_logits.npy`, prompt ids from the
    /// standard prompt of the shared fixtures.
    pub fn load_generated(generated: &Path, fixtures: &Path, name: &str) -> Result<Oracle, String> {
        let (prompt_logits, shape) = crate::npy::read_f32(&generated.join(format!("{name}.ref_logits.npy")))?;
        Ok(Oracle {
            prompt_ids: read_ids(&fixtures.join("oracle/micro-f32.prompt_ids.json"))?,
            greedy_ids: vec![],
            prompt_logits,
            greedy_logits: vec![],
            n_vocab: shape[1],
        })
    }

    /// Prompt then greedy ids: what to feed for a teacher-forced comparison.
    pub fn tokens(&self) -> Vec<u32> {
        self.prompt_ids.iter().chain(&self.greedy_ids).copied().collect()
    }

    /// Compares logits for `tokens()` (row-major, one row per token) with the recording.
    /// Prompt row r is position r; greedy row i came from position len(prompt) - 1 + i.
    pub fn compare(&self, ours: &[f32], margin_floor: f32) -> Comparison {
        let nv = self.n_vocab;
        let mut rows: Vec<(usize, &[f32])> = self.prompt_logits.chunks(nv).enumerate().collect();
        rows.extend(
            self.greedy_logits.chunks(nv).enumerate().map(|(i, r)| (self.prompt_ids.len() - 1 + i, r)),
        );
        let mut c = Comparison { max_abs: 0.0, argmax_flips: vec![] };
        for (pos, want) in rows {
            let Some(got) = ours.get(pos * nv..(pos + 1) * nv) else {
                c.max_abs = f32::INFINITY;
                continue;
            };
            for (a, b) in got.iter().zip(want) {
                let d = (a - b).abs();
                c.max_abs = if d.is_nan() { f32::INFINITY } else { c.max_abs.max(d) };
            }
            if margin(want) > margin_floor && argmax(got) != argmax(want) {
                c.argmax_flips.push(pos);
            }
        }
        c
    }
}

#[derive(Debug)]
pub struct Comparison {
    pub max_abs: f32,
    pub argmax_flips: Vec<usize>,
}

impl Comparison {
    pub fn passes(&self, case: &Case) -> bool {
        self.max_abs <= case.tol && self.argmax_flips.is_empty()
    }
}

fn margin(row: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in row {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    a - b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle() -> Oracle {
        Oracle {
            prompt_ids: vec![1, 2],
            greedy_ids: vec![3],
            prompt_logits: vec![0.0, 1.0, 2.0, 0.0],
            greedy_logits: vec![2.0, 0.0],
            n_vocab: 2,
        }
    }

    #[test]
    fn greedy_rows_line_up_with_the_last_prompt_position() {
        let o = oracle();
        let ours = [0.0, 1.0, 2.0, 0.0, 9.0, 9.0];
        let c = o.compare(&ours, 0.0);
        assert_eq!(c.max_abs, 0.0);
        let shifted = [0.0, 1.0, 2.5, 0.0, 9.0, 9.0];
        assert_eq!(o.compare(&shifted, 0.0).max_abs, 0.5);
    }

    #[test]
    fn chunkings_cover_the_prompt() {
        assert_eq!(Chunking::Split10.calls(25), vec![10, 15]);
        assert_eq!(Chunking::Split10.calls(7), vec![7]);
        assert_eq!(Chunking::Tok1.calls(3), vec![1, 1, 1]);
        assert_eq!(Chunking::Ubatch4.calls(10), vec![4, 4, 2]);
        for c in Chunking::ALL {
            assert_eq!(c.calls(25).iter().sum::<usize>(), 25, "{c:?}");
        }
    }

    #[test]
    fn argmax_flip_and_short_output_fail() {
        let o = oracle();
        let flipped = [1.0, 0.0, 2.0, 0.0];
        assert_eq!(o.compare(&flipped, 0.5).argmax_flips, vec![0]);
        assert!(o.compare(&[0.0; 2], 0.0).max_abs.is_infinite());
    }
}
