//! Byte-level BPE pre-tokenization: the regex splits llama.cpp applies per `tokenizer.ggml.pre`,
//! written as matchers (the patterns need Unicode categories and a `(?!\S)` lookahead).
//!
//! Each pre-tokenizer is a list of passes; a pass splits every fragment into its matches and the
//! unmatched text between them, as llama.cpp's `unicode_regex_split` does.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `default`: punctuation runs, the GPT-2 pattern, digit runs, then digit triples.
    Default,
    /// `gpt2` / `gpt-2`: the GPT-2 pattern alone.
    Gpt2,
    /// `llama-bpe` / `llama3`, and `lfm2` (LFM2's tokenizer.json uses the Llama-3 pattern).
    Llama3,
    Qwen2,
    /// `smollm`: single digits, then the GPT-2 pattern.
    SmolLm,
}

impl PreTokenizer {
    pub fn from_name(name: &str) -> Option<PreTokenizer> {
        Some(match name {
            "default" => PreTokenizer::Default,
            "gpt2" | "gpt-2" => PreTokenizer::Gpt2,
            "llama-bpe" | "llama3" | "lfm2" => PreTokenizer::Llama3,
            "qwen2" => PreTokenizer::Qwen2,
            "smollm" => PreTokenizer::SmolLm,
            _ => return None,
        })
    }

    /// Whether a word that is itself a token skips merging (llama.cpp's `ignore_merges`).
    pub fn ignore_merges(self) -> bool {
        self == PreTokenizer::Llama3
    }

    fn passes(self) -> &'static [Matcher] {
        match self {
            PreTokenizer::Default => &[punct_run, gpt2, digit_run, digit_triple],
            PreTokenizer::Gpt2 => &[gpt2],
            PreTokenizer::Llama3 => &[llama3],
            PreTokenizer::Qwen2 => &[qwen2],
            PreTokenizer::SmolLm => &[single_digit, gpt2],
        }
    }

    pub fn split(self, text: &str) -> Vec<String> {
        let mut frags: Vec<Vec<char>> = vec![text.chars().collect()];
        for pass in self.passes() {
            let mut next = Vec::new();
            for f in frags {
                let (mut i, mut gap) = (0, 0);
                while i < f.len() {
                    let n = pass(&f, i);
                    if n == 0 {
                        i += 1;
                        continue;
                    }
                    if gap < i {
                        next.push(f[gap..i].to_vec());
                    }
                    next.push(f[i..i + n].to_vec());
                    i += n;
                    gap = i;
                }
                if gap < f.len() {
                    next.push(f[gap..].to_vec());
                }
            }
            frags = next;
        }
        frags.into_iter().map(|f| f.into_iter().collect()).collect()
    }
}

/// Length in chars of the match starting at `i`, or 0.
type Matcher = fn(&[char], usize) -> usize;

fn is_l(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Letter
}
fn is_n(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Number
}
fn is_s(c: char) -> bool {
    c.is_whitespace()
}
fn is_other(c: char) -> bool {
    !is_s(c) && !is_l(c) && !is_n(c)
}
fn is_nl(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn run(t: &[char], i: usize, class: fn(char) -> bool) -> usize {
    t[i..].iter().take_while(|&&c| class(c)).count()
}

fn contraction(t: &[char], i: usize, any_case: bool) -> usize {
    if t[i] != '\'' {
        return 0;
    }
    for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
        let n = suffix.len();
        let Some(tail) = t.get(i + 1..i + 1 + n) else { continue };
        let same = tail
            .iter()
            .zip(suffix.chars())
            .all(|(&c, s)| if any_case { c.to_ascii_lowercase() == s } else { c == s });
        if same {
            return 1 + n;
        }
    }
    0
}

/// `\s+(?!\S)|\s+`: a whitespace run, leaving its last character to the next word when a
/// non-space follows (so " word" keeps its space).
fn trailing_space(t: &[char], i: usize) -> usize {
    let r = run(t, i, is_s);
    if r == 0 {
        0
    } else if i + r == t.len() || r == 1 {
        r
    } else {
        r - 1
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
fn gpt2(t: &[char], i: usize) -> usize {
    let c = contraction(t, i, false);
    if c > 0 {
        return c;
    }
    let sp = usize::from(t[i] == ' ');
    if let Some(&next) = t.get(i + sp) {
        for class in [is_l as fn(char) -> bool, is_n, is_other] {
            if class(next) {
                return sp + run(t, i + sp, class);
            }
        }
    }
    trailing_space(t, i)
}

/// llama3 / qwen2: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn llama3_like(t: &[char], i: usize, max_digits: usize) -> usize {
    let c = contraction(t, i, true);
    if c > 0 {
        return c;
    }
    if is_l(t[i]) {
        return run(t, i, is_l);
    }
    if !is_nl(t[i]) && !is_n(t[i]) && t.get(i + 1).is_some_and(|&c| is_l(c)) {
        return 1 + run(t, i + 1, is_l);
    }
    if is_n(t[i]) {
        // Counting only up to the cap: a long digit run is split in O(length), not O(length²).
        return t[i..].iter().take(max_digits).take_while(|&&c| is_n(c)).count();
    }
    let sp = usize::from(t[i] == ' ');
    if t.get(i + sp).is_some_and(|&c| is_other(c)) {
        let k = i + sp + run(t, i + sp, is_other);
        return k + run(t, k, is_nl) - i;
    }
    let r = run(t, i, is_s);
    if let Some(last_nl) = (i..i + r).rev().find(|&k| is_nl(t[k])) {
        return last_nl + 1 - i;
    }
    trailing_space(t, i)
}

fn llama3(t: &[char], i: usize) -> usize {
    llama3_like(t, i, 3)
}

fn qwen2(t: &[char], i: usize) -> usize {
    llama3_like(t, i, 1)
}

fn single_digit(t: &[char], i: usize) -> usize {
    usize::from(is_n(t[i]))
}

fn digit_run(t: &[char], i: usize) -> usize {
    run(t, i, is_n)
}

/// `[0-9][0-9][0-9]`
fn digit_triple(t: &[char], i: usize) -> usize {
    if t.get(i..i + 3).is_some_and(|s| s.iter().all(char::is_ascii_digit)) { 3 } else { 0 }
}

/// `[\p{P}\$\+<=>\^~\|]+`
fn punct_run(t: &[char], i: usize) -> usize {
    run(t, i, |c| c.general_category_group() == GeneralCategoryGroup::Punctuation || "$+<=>^~|".contains(c))
}

/// GPT-2's reversible byte -> printable char mapping used in byte-level BPE vocabularies.
pub fn byte_to_char(b: u8) -> char {
    match b {
        b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff => b as char,
        _ => {
            let shifted =
                (0..=b).filter(|&x| !matches!(x, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff)).count() - 1;
            char::from_u32(256 + shifted as u32).unwrap()
        }
    }
}

pub fn char_to_byte(c: char) -> Option<u8> {
    (0..=255u8).find(|&b| byte_to_char(b) == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_keeps_leading_spaces_with_words() {
        assert_eq!(
            PreTokenizer::Gpt2.split("Hello  world's 42!\n"),
            ["Hello", " ", " world", "'s", " 42", "!", "\n"]
        );
    }

    #[test]
    fn smollm_splits_digits_first() {
        assert_eq!(PreTokenizer::SmolLm.split("in 2024."), ["in", " ", "2", "0", "2", "4", "."]);
    }

    #[test]
    fn llama3_groups_digits_by_three_and_joins_punctuation_to_words() {
        assert_eq!(PreTokenizer::Llama3.split("12345 .x\n\n y"), ["123", "45", " .", "x", "\n\n", " y"]);
        assert_eq!(PreTokenizer::Qwen2.split("ab12"), ["ab", "1", "2"]);
        assert_eq!(PreTokenizer::from_name("lfm2"), Some(PreTokenizer::Llama3));
    }

    #[test]
    fn byte_mapping_round_trips() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
    }
}
