//! Tokenizers from `tokenizer.ggml.*` metadata, reproducing llama.cpp's ids: SentencePiece-style
//! BPE (`llama` model: merge by score, byte fallback, dummy prefix), byte-level BPE (`gpt2`
//! model: pre-tokenizer split, merge by rank) and special-token splitting.

use std::collections::{BinaryHeap, HashMap};

use crate::gguf::{GgufFile, Value};
use crate::pretokenize::{PreTokenizer, byte_to_char, char_to_byte};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("the model has no tokenizer (tokenizer.ggml.tokens is missing)")]
    Missing,
    #[error("tokenizer model `{0}` is not supported (llama/SentencePiece and gpt2/byte-level BPE are)")]
    Unsupported(String),
    #[error("pre-tokenizer `{0}` is not supported (default, gpt2, llama-bpe, qwen2 and smollm are)")]
    UnsupportedPre(String),
    #[error("tokenizer metadata `{0}` is malformed: {1}")]
    Malformed(&'static str, String),
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_id(v: i64) -> TokenType {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

pub struct Tokenizer {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    ids: HashMap<String, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    /// Tokens that end generation, sorted.
    eog: Vec<u32>,
    add_space_prefix: bool,
    /// Control and user-defined tokens, longest first: split out of text before merging.
    specials: Vec<u32>,
    /// Byte-level BPE merges and pre-tokenizer; None for SentencePiece.
    bpe: Option<Bpe>,
    /// The most text bytes one token stands for (at least 1).
    max_token_bytes: usize,
}

struct Bpe {
    /// Merge ranks keyed by the merge line itself, `"left right"`: `left` never holds a space
    /// (the line is split at its first one), so the key names the pair exactly.
    ranks: HashMap<String, u32>,
    pre: PreTokenizer,
}

/// A token id key: absent is None; present, it must be an unsigned integer that fits an id.
fn id_key(file: &GgufFile, key: &'static str) -> Result<Option<u32>, TokenizerError> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().and_then(|v| u32::try_from(v).ok()).map(Some).ok_or_else(|| {
            let shown = v.as_u64().map_or_else(|| v.type_name().to_string(), |n| n.to_string());
            TokenizerError::Malformed(key, format!("{shown} is not a token id"))
        }),
    }
}

fn bool_key(file: &GgufFile, key: &str) -> Option<bool> {
    match file.get(key) {
        Some(Value::Bool(b)) => Some(b),
        _ => None,
    }
}

impl Tokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model = match file.get("tokenizer.ggml.model") {
            Some(Value::Str(s)) => s.to_string(),
            _ => return Err(TokenizerError::Missing),
        };
        let bpe = match model.as_str() {
            "llama" => None,
            "gpt2" => Some(load_bpe(file)?),
            _ => return Err(TokenizerError::Unsupported(model)),
        };
        let Some(Value::Array(tokens)) = file.get("tokenizer.ggml.tokens") else {
            return Err(TokenizerError::Missing);
        };
        let tokens: Vec<String> = tokens
            .strings()
            .ok_or(TokenizerError::Malformed("tokenizer.ggml.tokens", "not a string array".into()))?
            .map(str::to_string)
            .collect();
        let n = tokens.len();
        let scores: Vec<f32> = match file.get("tokenizer.ggml.scores") {
            Some(Value::Array(a)) => a
                .f32s()
                .ok_or(TokenizerError::Malformed("tokenizer.ggml.scores", "not an f32 array".into()))?
                .collect(),
            _ => vec![0.0; n],
        };
        let types: Vec<TokenType> = match file.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .ints()
                .ok_or(TokenizerError::Malformed("tokenizer.ggml.token_type", "not an integer array".into()))?
                .into_iter()
                .map(TokenType::from_id)
                .collect(),
            _ => vec![TokenType::Normal; n],
        };
        if scores.len() != n || types.len() != n {
            return Err(TokenizerError::Malformed(
                "tokenizer.ggml.scores/token_type",
                format!("{} scores and {} types for {n} tokens", scores.len(), types.len()),
            ));
        }
        let check = |id: Option<u32>, key: &'static str| match id {
            Some(i) if i as usize >= n => {
                Err(TokenizerError::Malformed(key, format!("id {i} >= {n} tokens")))
            }
            other => Ok(other),
        };
        let bos = check(id_key(file, "tokenizer.ggml.bos_token_id")?, "tokenizer.ggml.bos_token_id")?;
        let eos = check(id_key(file, "tokenizer.ggml.eos_token_id")?, "tokenizer.ggml.eos_token_id")?;
        // End of generation, as llama.cpp's vocabulary loader decides it: EOS, the EOT/EOM ids
        // when given, and control tokens that end a turn in the common chat formats (instruct
        // models often name the base model's EOS but stop with their turn end).
        let mut eog: Vec<u32> = eos.into_iter().collect();
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            eog.extend(check(id_key(file, key)?, "tokenizer.ggml.eot_token_id")?);
        }
        const TURN_ENDS: [&str; 8] = [
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|eom_id|>",
            "<EOT>",
            "<|end_of_text|>",
        ];
        for (i, t) in tokens.iter().enumerate() {
            if types[i] == TokenType::Control && TURN_ENDS.contains(&t.as_str()) {
                eog.push(i as u32);
            }
        }
        eog.sort_unstable();
        eog.dedup();
        // Later ids win, as in llama.cpp's token_to_id map.
        let ids: HashMap<String, u32> =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| matches!(types[i as usize], TokenType::Control | TokenType::UserDefined))
            .filter(|&i| !tokens[i as usize].is_empty())
            .collect();
        specials.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].len()));
        let spm = bpe.is_none();
        // A byte-level BPE entry stands for one byte per char, whatever its UTF-8 length; a
        // SentencePiece `▁` (3 bytes) stands for a space (1): bytes bound both from above.
        let max_token_bytes = tokens.iter().map(String::len).max().unwrap_or(1).max(1);
        let llama3 = bpe.as_ref().is_some_and(|b| b.pre == PreTokenizer::Llama3);
        Ok(Tokenizer {
            add_bos: bool_key(file, "tokenizer.ggml.add_bos_token").unwrap_or(spm || llama3),
            add_eos: bool_key(file, "tokenizer.ggml.add_eos_token").unwrap_or(false),
            add_space_prefix: bool_key(file, "tokenizer.ggml.add_space_prefix").unwrap_or(spm),
            tokens,
            scores,
            types,
            ids,
            bos,
            eos,
            eog,
            specials,
            bpe,
            max_token_bytes,
        })
    }

    /// The longest vocabulary entry, in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_text(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map_or("", String::as_str)
    }

    pub fn token_type(&self, id: u32) -> TokenType {
        self.types.get(id as usize).copied().unwrap_or(TokenType::Normal)
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Every token that ends generation.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Tokenizes like `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let mut prev_special = true;
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) if self.bpe.is_some() => {
                    self.bpe(t, &mut out);
                    prev_special = false;
                }
                Fragment::Text(t) => {
                    let mut s = String::with_capacity(t.len() + 3);
                    if self.add_space_prefix && prev_special {
                        s.push(' ');
                    }
                    s.push_str(t);
                    self.spm(&s.replace(' ', "\u{2581}"), &mut out);
                    prev_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Splits out special tokens (control ones only with `parse_special`), longest first.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        // Empty text is no fragment at all (llama.cpp: BOS alone, no dummy-prefix `▁`).
        if text.is_empty() {
            return vec![];
        }
        let mut frags = vec![Fragment::Text(text)];
        for &id in &self.specials {
            if !parse_special && self.types[id as usize] == TokenType::Control {
                continue;
            }
            let pat = self.tokens[id as usize].as_str();
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                let Fragment::Text(mut t) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = t.find(pat) {
                    if at > 0 {
                        next.push(Fragment::Text(&t[..at]));
                    }
                    next.push(Fragment::Token(id));
                    t = &t[at + pat.len()..];
                }
                if !t.is_empty() {
                    next.push(Fragment::Text(t));
                }
            }
            frags = next;
        }
        frags
    }

    /// SentencePiece BPE over one escaped fragment: merge the best-scoring adjacent pair (the
    /// leftmost on ties) until none forms a token; unknown characters fall back to byte tokens.
    fn spm(&self, text: &str, out: &mut Vec<u32>) {
        struct Sym {
            start: usize,
            len: usize,
            prev: Option<usize>,
            next: Option<usize>,
        }
        let mut syms: Vec<Sym> = Vec::new();
        for (start, ch) in text.char_indices() {
            let i = syms.len();
            syms.push(Sym { start, len: ch.len_utf8(), prev: i.checked_sub(1), next: None });
            if i > 0 {
                syms[i - 1].next = Some(i);
            }
        }
        #[derive(PartialEq)]
        struct Bigram {
            score: f32,
            left: usize,
            right: usize,
            size: usize,
        }
        impl Eq for Bigram {}
        impl Ord for Bigram {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
            }
        }
        impl PartialOrd for Bigram {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut queue = BinaryHeap::new();
        let try_add = |queue: &mut BinaryHeap<Bigram>,
                       syms: &[Sym],
                       left: Option<usize>,
                       right: Option<usize>| {
            let (Some(l), Some(r)) = (left, right) else { return };
            let piece = &text[syms[l].start..syms[r].start + syms[r].len];
            if let Some(&id) = self.ids.get(piece) {
                queue.push(Bigram { score: self.scores[id as usize], left: l, right: r, size: piece.len() });
            }
        };
        for i in 1..syms.len() {
            try_add(&mut queue, &syms, Some(i - 1), Some(i));
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (b.left, b.right);
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != b.size {
                continue;
            }
            syms[l].len += syms[r].len;
            syms[r].len = 0;
            syms[l].next = syms[r].next;
            if let Some(n) = syms[r].next {
                syms[n].prev = Some(l);
            }
            try_add(&mut queue, &syms, syms[l].prev, Some(l));
            try_add(&mut queue, &syms, Some(l), syms[l].next);
        }
        let mut i = if syms.is_empty() { None } else { Some(0) };
        while let Some(s) = i {
            let piece = &text[syms[s].start..syms[s].start + syms[s].len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for byte in piece.bytes() {
                        out.extend(self.byte_token(byte));
                    }
                }
            }
            i = syms[s].next;
        }
    }

    /// Byte-level BPE of one fragment: pre-tokenizer split, bytes to printable chars, then
    /// merge the lowest-ranked adjacent pair (the leftmost on ties) until none is listed.
    fn bpe(&self, text: &str, out: &mut Vec<u32>) {
        let Some(bpe) = &self.bpe else { return };
        for word in bpe.pre.split(text) {
            let encoded: String = word.bytes().map(byte_to_char).collect();
            if bpe.pre.ignore_merges()
                && let Some(&id) = self.ids.get(&encoded)
            {
                out.push(id);
                continue;
            }
            for piece in merge_by_rank(&encoded, &bpe.ranks) {
                match self.ids.get(piece) {
                    Some(&id) => out.push(id),
                    None => out.extend(
                        piece
                            .chars()
                            .filter_map(|c| self.ids.get(c.encode_utf8(&mut [0; 4]) as &str).copied()),
                    ),
                }
            }
        }
    }

    fn byte_token(&self, b: u8) -> Option<u32> {
        self.ids.get(&format!("<0x{b:02X}>")).copied().or_else(|| {
            let s = (b as char).to_string();
            self.ids.get(&s).copied()
        })
    }

    /// The bytes a token contributes to text: `▁` becomes a space, byte tokens their byte,
    /// control tokens nothing.
    pub fn piece_bytes(&self, id: u32) -> Vec<u8> {
        let text = self.token_text(id);
        match self.token_type(id) {
            TokenType::Control | TokenType::Unused => vec![],
            TokenType::Byte => text
                .strip_prefix("<0x")
                .and_then(|h| h.strip_suffix('>'))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map_or_else(|| text.as_bytes().to_vec(), |b| vec![b]),
            TokenType::Normal if self.bpe.is_some() => {
                let mut bytes = Vec::with_capacity(text.len());
                for c in text.chars() {
                    match char_to_byte(c) {
                        Some(b) => bytes.push(b),
                        None => bytes.extend(c.to_string().as_bytes()),
                    }
                }
                bytes
            }
            _ if self.bpe.is_some() => text.as_bytes().to_vec(),
            _ => text.replace('\u{2581}', " ").into_bytes(),
        }
    }
}

fn load_bpe(file: &GgufFile) -> Result<Bpe, TokenizerError> {
    let pre_name = match file.get("tokenizer.ggml.pre") {
        Some(Value::Str(s)) => s.to_string(),
        _ => "default".to_string(),
    };
    let pre = PreTokenizer::from_name(&pre_name).ok_or(TokenizerError::UnsupportedPre(pre_name))?;
    let Some(Value::Array(merges)) = file.get("tokenizer.ggml.merges") else {
        return Err(TokenizerError::Malformed(
            "tokenizer.ggml.merges",
            "missing for a gpt2 tokenizer".into(),
        ));
    };
    let merges = merges
        .strings()
        .ok_or(TokenizerError::Malformed("tokenizer.ggml.merges", "not a string array".into()))?;
    let mut ranks = HashMap::new();
    for (rank, m) in merges.enumerate() {
        if !m.contains(' ') {
            return Err(TokenizerError::Malformed("tokenizer.ggml.merges", format!("entry {rank} is {m:?}")));
        }
        ranks.entry(m.to_string()).or_insert(rank as u32);
    }
    Ok(Bpe { ranks, pre })
}

/// Byte-level BPE merging of one pre-tokenized word: repeatedly join the adjacent pair with the
/// lowest rank, the leftmost on ties, until no pair is listed. Symbols form a linked list and
/// candidate pairs wait in a min-heap ordered by (rank, position); a popped pair whose symbols
/// have since changed is stale and skipped, so the whole word costs O(n log n), as in llama.cpp.
fn merge_by_rank<'w>(word: &'w str, ranks: &HashMap<String, u32>) -> Vec<&'w str> {
    struct Sym {
        start: usize,
        len: usize,
        prev: Option<usize>,
        next: Option<usize>,
    }
    let mut syms: Vec<Sym> = Vec::new();
    for (start, ch) in word.char_indices() {
        let i = syms.len();
        syms.push(Sym { start, len: ch.len_utf8(), prev: i.checked_sub(1), next: None });
        if i > 0 {
            syms[i - 1].next = Some(i);
        }
    }
    // (rank, left symbol, byte length of the pair when it was queued), smallest first.
    let mut queue: BinaryHeap<std::cmp::Reverse<(u32, usize, usize)>> = BinaryHeap::new();
    let mut key = String::new();
    let mut try_add = |queue: &mut BinaryHeap<_>, syms: &[Sym], l: usize| {
        let Some(r) = syms[l].next else { return };
        let (left, right) = (&syms[l], &syms[r]);
        key.clear();
        key.push_str(&word[left.start..left.start + left.len]);
        key.push(' ');
        key.push_str(&word[right.start..right.start + right.len]);
        if let Some(&rank) = ranks.get(&key) {
            queue.push(std::cmp::Reverse((rank, l, left.len + right.len)));
        }
    };
    for l in 0..syms.len() {
        try_add(&mut queue, &syms, l);
    }
    while let Some(std::cmp::Reverse((_, l, size))) = queue.pop() {
        let Some(r) = syms[l].next else { continue };
        if syms[l].len == 0 || syms[l].len + syms[r].len != size {
            continue;
        }
        syms[l].len = size;
        syms[r].len = 0;
        syms[l].next = syms[r].next;
        if let Some(n) = syms[r].next {
            syms[n].prev = Some(l);
        }
        if let Some(p) = syms[l].prev {
            try_add(&mut queue, &syms, p);
        }
        try_add(&mut queue, &syms, l);
    }
    let mut pieces = Vec::new();
    let mut i = if syms.is_empty() { None } else { Some(0) };
    while let Some(s) = i {
        pieces.push(&word[syms[s].start..syms[s].start + syms[s].len]);
        i = syms[s].next;
    }
    pieces
}

enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rank-merge loop as the definition says it (the lowest-ranked adjacent pair, leftmost
    /// on ties, until none is listed), quadratic, to check the heap version against.
    fn merge_by_rank_naive(word: &str, ranks: &HashMap<String, u32>) -> Vec<String> {
        let mut parts: Vec<String> = word.chars().map(String::from).collect();
        loop {
            let best = (0..parts.len().saturating_sub(1))
                .filter_map(|i| ranks.get(&format!("{} {}", parts[i], parts[i + 1])).map(|&r| (r, i)))
                .min();
            let Some((_, i)) = best else { return parts };
            let right = parts.remove(i + 1);
            parts[i].push_str(&right);
        }
    }

    #[test]
    fn heap_merging_equals_the_definition() {
        // Merges over a small alphabet, including ones that chain and ones that compete.
        let merges = ["a b", "b a", "ab a", "a a", "c c", "aa b", "ba ba", "cc c", "b b", "ab ab", "c a"];
        let ranks: HashMap<String, u32> =
            merges.iter().enumerate().map(|(r, m)| (m.to_string(), r as u32)).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let word: String =
                (0..len).map(|i| ['a', 'b', 'c', 'é'][((seed >> (2 * i)) & 3) as usize]).collect();
            let fast: Vec<String> = merge_by_rank(&word, &ranks).into_iter().map(String::from).collect();
            assert_eq!(fast, merge_by_rank_naive(&word, &ranks), "{word}");
        }
    }
}
