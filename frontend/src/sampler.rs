//! Choosing the next token from logits: repetition penalty, then (in llama.cpp's order) top-k,
//! top-p and min-p on the untempered distribution, temperature, and a seeded draw. temp <= 0 is
//! greedy: the highest logit, the lowest id on ties.

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub temp: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0.0 disables.
    pub min_p: f32,
    /// 1.0 disables.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults.
    fn default() -> Self {
        SamplerConfig {
            temp: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0xdead_beef,
        }
    }
}

/// Refuses sampling values that would make every probability NaN, or mean nothing.
pub fn check(s: &SamplerConfig) -> Result<(), String> {
    let bad = |flag: &str, v: f32, want: &str| Err(format!("{flag} {v}: must be {want}"));
    if !(s.temp.is_finite() && s.temp >= 0.0) {
        return bad("--temp", s.temp, "a finite number >= 0 (0 is greedy)");
    }
    if !(0.0..=1.0).contains(&s.top_p) {
        return bad("--top-p", s.top_p, "between 0 and 1");
    }
    if !(0.0..=1.0).contains(&s.min_p) {
        return bad("--min-p", s.min_p, "between 0 and 1");
    }
    if !(s.repeat_penalty.is_finite() && s.repeat_penalty > 0.0) {
        return bad("--repeat-penalty", s.repeat_penalty, "a finite number > 0 (1 disables it)");
    }
    Ok(())
}

pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed;
        Sampler { cfg, state }
    }

    /// splitmix64, mapped to [0, 1).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks the next token. `history` is every token so far (for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        let mut logits = logits.to_vec();
        if c.repeat_penalty != 1.0 && c.repeat_last_n > 0 {
            let recent = &history[history.len().saturating_sub(c.repeat_last_n)..];
            let mut seen = std::collections::HashSet::new();
            for &t in recent {
                if let Some(l) = logits.get_mut(t as usize)
                    && seen.insert(t)
                {
                    *l = if *l > 0.0 { *l / c.repeat_penalty } else { *l * c.repeat_penalty };
                }
            }
        }
        if c.temp <= 0.0 {
            return argmax(&logits);
        }
        let mut cand: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if c.top_k > 0 {
            cand.truncate(c.top_k.max(1));
        }
        let probs = softmax(&cand);
        if c.top_p < 1.0 {
            let mut cum = 0.0;
            let keep = probs.iter().position(|&p| {
                cum += p;
                cum >= c.top_p as f64
            });
            cand.truncate(keep.map_or(cand.len(), |k| k + 1));
        }
        if c.min_p > 0.0 {
            let floor = probs[0] * c.min_p as f64;
            let keep = probs.iter().take(cand.len()).take_while(|&&p| p >= floor).count().max(1);
            cand.truncate(keep);
        }
        for (_, l) in cand.iter_mut() {
            *l /= c.temp;
        }
        let probs = softmax(&cand);
        let r = self.uniform();
        let mut cum = 0.0;
        for (i, p) in probs.iter().enumerate() {
            cum += p;
            if r < cum {
                return cand[i].0;
            }
        }
        cand.last().map_or(0, |c| c.0)
    }
}

fn softmax(cand: &[(u32, f32)]) -> Vec<f64> {
    let max = cand.first().map_or(0.0, |c| c.1) as f64;
    let e: Vec<f64> = cand.iter().map(|c| (c.1 as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greedy() -> SamplerConfig {
        SamplerConfig { temp: 0.0, ..SamplerConfig::default() }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(greedy());
        assert_eq!(s.sample(&[0.1, 0.9, 0.9, -1.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let cfg = SamplerConfig { repeat_penalty: 2.0, ..greedy() };
        let mut s = Sampler::new(cfg);
        // Token 0 (1.0 -> 0.5) loses to token 1 (0.8); negative logits get multiplied.
        assert_eq!(s.sample(&[1.0, 0.8, -0.1], &[0]), 1);
        assert_eq!(s.sample(&[-0.1, -0.15, -2.0], &[0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_seed_makes_draws_repeatable() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut s = Sampler::new(SamplerConfig { top_k: 1, temp: 1.5, ..SamplerConfig::default() });
        assert_eq!(s.sample(&logits, &[]), argmax(&logits));
        let draw = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                seed,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                temp: 1.0,
                ..SamplerConfig::default()
            });
            (0..20).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn min_p_and_top_p_restrict_to_likely_tokens() {
        // Token 0 has nearly all the mass: min-p 0.5 and top-p 0.5 leave only it.
        let logits = [10.0, 0.0, 0.0, 0.0];
        for cfg in [
            SamplerConfig { min_p: 0.5, top_p: 1.0, top_k: 0, temp: 5.0, ..SamplerConfig::default() },
            SamplerConfig { min_p: 0.0, top_p: 0.5, top_k: 0, temp: 5.0, ..SamplerConfig::default() },
        ] {
            let mut s = Sampler::new(cfg);
            assert!((0..200).all(|_| s.sample(&logits, &[]) == 0));
        }
        // Without them a high temperature spreads the draws.
        let mut s = Sampler::new(SamplerConfig {
            min_p: 0.0,
            top_p: 1.0,
            top_k: 0,
            temp: 50.0,
            ..SamplerConfig::default()
        });
        assert!((0..200).any(|_| s.sample(&logits, &[]) != 0));
    }
}
