//! The hostile-input cases, as plain data: what each runs, in which environment, on which files,
//! and the exit code and the one stderr line it must give. Families: GGUF structure, metadata
//! values, tokenizer inputs, CLI values, environment variables, file kinds, broken installs.

use super::gguf_edit::{self as g, Gguf, Raw};

/// How a case's files are made in its scratch directory.
pub enum Make {
    Bytes(Vec<u8>),
    /// `head`, a hole of zeros up to `tail_at`, then `tail`: written sparse, so a GGUF whose
    /// alignment pads 2 GiB costs no disk and no memory.
    Sparse {
        head: Vec<u8>,
        tail_at: u64,
        tail: Vec<u8>,
    },
    Fifo,
    Dir,
    Symlink(String),
}

/// A damage done to the installation (bin/, lib/, manifest.json) for one case, then undone.
#[derive(Clone, Debug)]
pub enum Damage {
    /// Cut the best tier's library to this many bytes (`usize::MAX`: to half its size).
    Truncate(usize),
    /// Copy the best tier's library over the next tier's.
    Swap,
    /// Replace the best tier's library with the other architecture's library of lowest rank.
    ForeignArch,
    /// Replace the best tier's library with these bytes.
    Replace(Vec<u8>),
    /// Make the best tier's library a directory, or a FIFO.
    LibDir,
    LibFifo,
    /// Replace manifest.json with these bytes.
    Manifest(Vec<u8>),
    /// Remove lib/ altogether.
    NoLib,
}

pub struct Case {
    pub family: &'static str,
    pub name: String,
    /// Arguments after `hartlm`; `{dir}` stands for the scratch directory.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub code: i32,
    /// The single stderr line: `*` matches any text, `{dir}` the scratch directory, `{install}`
    /// the installation's root, `{best}`
    /// and `{next}` the installation's best tier and its fallback. None: stderr stays empty.
    pub line: Option<String>,
    /// The single stdout line, as a pattern, when the case checks it.
    pub stdout: Option<String>,
    pub damage: Option<Damage>,
}

/// Files every case may name, by path relative to the scratch directory.
pub struct Files(pub Vec<(String, Make)>);

/// The valid models the cases start from.
pub struct Models<'a> {
    /// micro llama, SentencePiece, Q4_0.
    pub micro: &'a [u8],
    /// micro LFM2 (short convolutions, per-layer KV heads).
    pub lfm2: &'a [u8],
    /// Path of a real byte-level BPE model (SmolLM2-135M, `smollm` pre-tokenizer), used in place.
    pub bpe_path: &'a str,
    /// llama.cpp's Qwen2 vocabulary (byte-level BPE, `qwen2` pre-tokenizer), tokenizer only.
    pub qwen2_vocab: &'a str,
}

fn case(family: &'static str, name: impl Into<String>, args: &[&str], code: i32, line: Option<&str>) -> Case {
    Case {
        family,
        name: name.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        code,
        line: line.map(str::to_string),
        stdout: None,
        damage: None,
    }
}

fn with_env(mut c: Case, env: &[(&str, &str)]) -> Case {
    c.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    c
}

fn with_stdout(mut c: Case, pattern: &str) -> Case {
    c.stdout = Some(pattern.into());
    c
}

/// A change to a parsed model.
type Edit = Box<dyn Fn(&mut Gguf)>;
/// (what the case is, the change, the line it must give).
type Mutation = (&'static str, Edit, &'static str);

const TRUNCATED: &str =
    "hartlm: {dir}/*: truncated GGUF: * at byte offset * needs * bytes but the file has *";

/// Every case, and the files they need.
pub fn all(m: &Models) -> (Vec<Case>, Files) {
    let mut cases = Vec::new();
    let mut files: Vec<(String, Make)> = Vec::new();
    structure(m, &mut cases, &mut files);
    metadata(m, &mut cases, &mut files);
    tokenizer(m, &mut cases, &mut files);
    cli(&mut cases);
    environment(&mut cases, &mut files);
    file_kinds(&mut cases, &mut files);
    installs(&mut cases);
    (cases, Files(files))
}

/// Writes `bytes` as `name` and returns the path argument for it.
fn file(files: &mut Vec<(String, Make)>, name: &str, bytes: Vec<u8>) -> String {
    files.push((name.to_string(), Make::Bytes(bytes)));
    format!("{{dir}}/{name}")
}

fn structure(m: &Models, cases: &mut Vec<Case>, files: &mut Vec<(String, Make)>) {
    let micro = m.micro;
    let parsed = Gguf::parse(micro).expect("the micro fixture parses");
    let mut info = |cases: &mut Vec<Case>, name: String, bytes: Vec<u8>, line: &str| {
        let path = file(files, &format!("structure-{}.gguf", cases.len()), bytes);
        cases.push(case("gguf structure", name, &["info", "-m", &path], 1, Some(line)));
    };
    // Truncations: inside the header, inside every metadata entry and tensor info, at the data.
    let mut cuts: Vec<(String, usize)> =
        [0, 3, 4, 7, 8, 15, 16, 23].iter().map(|&n| (format!("header cut at {n} bytes"), n)).collect();
    for (i, &at) in parsed.kv_at.iter().enumerate() {
        cuts.push((format!("cut inside metadata entry {i} ({})", parsed.kvs[i].0), at + 5));
        cuts.push((format!("cut after the key of metadata entry {i}"), at + 8 + parsed.kvs[i].0.len() + 2));
    }
    for (i, &at) in parsed.tensor_at.iter().enumerate().take(12) {
        cuts.push((format!("cut inside tensor info {i} ({})", parsed.tensors[i].name), at + 3));
    }
    for (name, n) in cuts {
        info(cases, name, micro[..n.min(micro.len())].to_vec(), TRUNCATED);
    }
    for (name, keep) in
        [("cut inside the tensor data", micro.len() - 10), ("cut at the data section", parsed.data_at)]
    {
        info(
            cases,
            name.into(),
            micro[..keep].to_vec(),
            "hartlm: {dir}/*: truncated GGUF: data of tensor `*` at byte offset * needs * bytes but the file has *",
        );
    }
    let patch = |at: usize, bytes: &[u8]| {
        let mut b = micro.to_vec();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    info(
        cases,
        "magic GGUX".into(),
        patch(0, b"GGUX"),
        "hartlm: {dir}/*: not a GGUF file: magic [47, 47, 55, 58] at byte offset 0 (expected \"GGUF\")",
    );
    for v in [0u32, 1, 4, u32::MAX] {
        info(
            cases,
            format!("version {v}"),
            patch(4, &v.to_le_bytes()),
            &format!(
                "hartlm: {{dir}}/*: GGUF version {v} is not supported (2 and 3 are); re-convert the model with a recent llama.cpp"
            ),
        );
    }
    let n_t = parsed.tensors.len() as u64;
    let n_kv = parsed.kvs.len() as u64;
    for (what, at, v) in [
        ("tensor count 2^64-1", 8, u64::MAX),
        ("tensor count + 1", 8, n_t + 1),
        ("tensor count 2^40", 8, 1 << 40),
        ("metadata count 2^64-1", 16, u64::MAX),
        ("metadata count + 1", 16, n_kv + 1),
        ("metadata count 2^40", 16, 1 << 40),
    ] {
        info(cases, what.into(), patch(at, &v.to_le_bytes()), "hartlm: {dir}/*: *GGUF*");
    }
    let kv0 = parsed.kv_at[0];
    for (what, len) in [("key length 2^64-1", u64::MAX), ("key length 2^40", 1 << 40), ("key length 0", 0)] {
        info(cases, what.into(), patch(kv0, &len.to_le_bytes()), "hartlm: {dir}/*: *GGUF*");
    }
    info(
        cases,
        "key not UTF-8".into(),
        patch(kv0 + 8, &[0xff]),
        "hartlm: {dir}/*: malformed GGUF: key of metadata entry 0 at byte offset *: *UTF-8*",
    );
    let ty_at = kv0 + 8 + parsed.kvs[0].0.len();
    for t in [13u32, 255, u32::MAX] {
        info(
            cases,
            format!("value type {t}"),
            patch(ty_at, &t.to_le_bytes()),
            &format!(
                "hartlm: {{dir}}/*: malformed GGUF: metadata `general.architecture` at byte offset *: unknown value type {t}"
            ),
        );
    }
    // The token list: an array whose element type or length lies.
    let tokens_i = parsed.kvs.iter().position(|(k, _)| k == "tokenizer.ggml.tokens").expect("tokens");
    let arr_at = parsed.kv_at[tokens_i] + 8 + "tokenizer.ggml.tokens".len() + 4;
    for (what, bytes) in [
        ("token array element type 13", 13u32.to_le_bytes().to_vec()),
        ("token array of arrays", g::ARRAY.to_le_bytes().to_vec()),
    ] {
        info(
            cases,
            what.into(),
            patch(arr_at, &bytes),
            "hartlm: {dir}/*: *GGUF*metadata `tokenizer.ggml.tokens`*",
        );
    }
    for (what, n) in [("token array length 2^64-1", u64::MAX), ("token array length 2^40", 1 << 40)] {
        info(
            cases,
            what.into(),
            patch(arr_at + 4, &n.to_le_bytes()),
            "hartlm: {dir}/*: *GGUF*metadata `tokenizer.ggml.tokens`*",
        );
    }
    // Tensor infos, through the editor.
    let edit = |f: &dyn Fn(&mut Gguf)| {
        let mut e = parsed.clone();
        f(&mut e);
        e.write()
    };
    let t0 = parsed.tensors[0].name.clone();
    let tensor_edits: Vec<(&str, Edit, &str)> = vec![
        ("0 dimensions", Box::new(|e: &mut Gguf| e.tensors[0].dims.clear()), "0 dimensions (1 to 4 allowed)"),
        (
            "5 dimensions",
            Box::new(|e: &mut Gguf| e.tensors[0].dims = vec![1; 5]),
            "5 dimensions (1 to 4 allowed)",
        ),
        ("a dimension of 0", Box::new(|e: &mut Gguf| e.tensors[0].dims[1] = 0), "dimension 0 out of range"),
        (
            "a dimension of 2^64-1",
            Box::new(|e: &mut Gguf| e.tensors[0].dims[1] = u64::MAX),
            "dimension 18446744073709551615 out of range",
        ),
        (
            "dimensions whose product wraps",
            Box::new(|e: &mut Gguf| e.tensors[0].dims = vec![1 << 32, 1 << 32, 1 << 32]),
            "element count overflows",
        ),
        (
            "a huge row count",
            Box::new(|e: &mut Gguf| e.tensors[0].dims[1] = 1 << 40),
            "data * past the end of the file *",
        ),
        (
            "type 99",
            Box::new(|e: &mut Gguf| e.tensors[0].ty = 99),
            "tensor type 99 is not supported by hartlm",
        ),
        (
            "the removed type Q4_2",
            Box::new(|e: &mut Gguf| e.tensors[0].ty = 4),
            "tensor type 4 is not supported by hartlm",
        ),
        (
            "type 2^32-1",
            Box::new(|e: &mut Gguf| e.tensors[0].ty = u32::MAX),
            "tensor type 4294967295 is not supported by hartlm",
        ),
        (
            "an unaligned offset",
            Box::new(|e: &mut Gguf| e.tensors[0].offset += 1),
            "data offset * is not a multiple of the alignment 32",
        ),
        (
            "offset 2^64-32",
            Box::new(|e: &mut Gguf| e.tensors[0].offset = u64::MAX - 31),
            "data offset overflows",
        ),
        (
            "an offset past the end",
            Box::new(|e: &mut Gguf| e.tensors[0].offset = 1 << 30),
            "data * past the end of the file *",
        ),
        (
            "a row length off the block",
            Box::new(|e: &mut Gguf| e.tensors[0].dims[0] = 65),
            "row length 65 is not a multiple of the * block (32)",
        ),
    ];
    for (what, f, detail) in tensor_edits {
        let line = if detail.starts_with("data *") {
            format!(
                "hartlm: {{dir}}/*: truncated GGUF: data of tensor `{t0}` at byte offset * needs * bytes but the file has *"
            )
        } else {
            format!("hartlm: {{dir}}/*: malformed GGUF: tensor `{t0}` at byte offset *: {detail}")
        };
        info(cases, format!("tensor info: {what}"), edit(&*f), &line);
    }
    info(
        cases,
        "a duplicate tensor name".into(),
        edit(&|e| {
            let n = e.tensors[0].name.clone();
            e.tensors[1].name = n;
        }),
        &format!("hartlm: {{dir}}/*: malformed GGUF: tensor `{t0}` at byte offset *: *twice*"),
    );
    info(
        cases,
        "a duplicate metadata key".into(),
        edit(&|e| {
            let kv = e.kvs[0].clone();
            e.kvs.push(kv);
        }),
        "hartlm: {dir}/*: malformed GGUF: metadata `general.architecture` at byte offset *: key appears twice",
    );
    for (what, v) in
        [("0", g::u32v(0)), ("3", g::u32v(3)), ("2^31", g::u32v(1 << 31)), ("a string", g::strv("32"))]
    {
        let line = "hartlm: {dir}/*: malformed GGUF: metadata `general.alignment` at byte offset 0: must be a power-of-two u32, got *";
        let line = if what == "2^31" { "hartlm: {dir}/*: *GGUF*" } else { line };
        let mut e = parsed.clone();
        e.set("general.alignment", v);
        let (head, data_at) = e.write_head();
        let name = format!("structure-{}.gguf", cases.len());
        files.push((name.clone(), Make::Sparse { head, tail_at: data_at as u64, tail: e.data }));
        let path = format!("{{dir}}/{name}");
        cases.push(case(
            "gguf structure",
            format!("alignment {what}"),
            &["info", "-m", &path],
            1,
            Some(line),
        ));
    }
}

fn metadata(m: &Models, cases: &mut Vec<Case>, files: &mut Vec<(String, Make)>) {
    let micro = Gguf::parse(m.micro).expect("micro parses");
    let lfm2 = Gguf::parse(m.lfm2).expect("lfm2 parses");
    let mut add = |cases: &mut Vec<Case>,
                   base: &Gguf,
                   what: String,
                   f: &dyn Fn(&mut Gguf),
                   command: &str,
                   code: i32,
                   line: &str| {
        let mut e = base.clone();
        f(&mut e);
        let path = file(files, &format!("metadata-{}.gguf", cases.len()), e.write());
        let args: Vec<&str> = match command {
            "info" => vec!["info", "-m", &path],
            "tokenize" => vec!["tokenize", "-m", &path, "-p", "hello world", "--show-count"],
            _ => vec!["run", "-m", &path, "-p", "hello", "-n", "2", "-c", "64", "--temp", "0"],
        };
        cases.push(case("metadata values", what, &args, code, Some(line)));
    };
    let hp = |what: &str| format!("hartlm: {{dir}}/*: {what}");
    // Every numeric hyperparameter: zero, huge, wrapping, and the wrong type.
    let keys = [
        "block_count",
        "embedding_length",
        "attention.head_count",
        "attention.head_count_kv",
        "feed_forward_length",
        "context_length",
        "rope.dimension_count",
    ];
    for key in keys {
        let full = format!("llama.{key}");
        for (what, v, shown) in [
            ("2^64-1", g::u64v(u64::MAX), ""),
            ("2^62+16", g::u64v((1 << 62) + 16), ""),
            ("a string", g::strv("64"), "the string \"64\""),
            ("a float", g::f32v(64.0), "f32 64"),
            ("-1 (i32)", g::i32v(-1), "i32"),
            ("a bool", g::boolv(true), "the bool true"),
        ] {
            // The wrong type is named, with the key; a huge value is refused by what it breaks.
            let line = match (key, shown) {
                ("attention.head_count_kv", s) if !s.is_empty() => {
                    format!(
                        "metadata `{full}` is missing or has the wrong type; the file is not a complete model"
                    )
                }
                (_, "") => "invalid hyperparameter: *".to_string(),
                (_, s) => format!("invalid hyperparameter: {full} is {s}, not an unsigned integer"),
            };
            add(
                cases,
                &micro,
                format!("{full} = {what}"),
                &|e| {
                    e.set(&full, v.clone());
                },
                "info",
                1,
                &hp(&line),
            );
        }
    }
    let set = |k: &'static str, v: Raw| {
        move |e: &mut Gguf| {
            e.set(k, v.clone());
        }
    };
    let specific: Vec<Mutation> = vec![
        (
            "block_count 0",
            Box::new(set("llama.block_count", g::u32v(0))),
            "invalid hyperparameter: llama.block_count is 0: a model has at least one layer",
        ),
        ("block_count 3 (two layers of tensors)", Box::new(set("llama.block_count", g::u32v(3))), "*blk.2.*"),
        (
            "block_count 5000",
            Box::new(set("llama.block_count", g::u32v(5000))),
            "*5000 layers (block_count) is not a real model*",
        ),
        (
            "embedding_length 0",
            Box::new(set("llama.embedding_length", g::u32v(0))),
            "invalid hyperparameter: head dimension 0 must be even and equal for K and V",
        ),
        (
            "embedding_length 65 (tensors hold 64)",
            Box::new(set("llama.embedding_length", g::u32v(65))),
            "*has shape * expected *",
        ),
        (
            "embedding_length 2^40",
            Box::new(set("llama.embedding_length", g::u64v(1 << 40))),
            "*is not a real model*",
        ),
        (
            "head_count 0",
            Box::new(set("llama.attention.head_count", g::u32v(0))),
            "invalid hyperparameter: 0 heads cannot share 2 KV heads",
        ),
        (
            "head_count 3 (64 / 3 heads)",
            Box::new(set("llama.attention.head_count", g::u32v(3))),
            "invalid hyperparameter: 3 heads cannot share 2 KV heads",
        ),
        (
            "head_count 2^60+4",
            Box::new(set("llama.attention.head_count", g::u64v((1 << 60) + 4))),
            "invalid hyperparameter: *",
        ),
        (
            "head_count_kv 0",
            Box::new(set("llama.attention.head_count_kv", g::u32v(0))),
            "invalid hyperparameter: 4 heads cannot share 0 KV heads",
        ),
        (
            "head_count_kv 3 (not a divisor)",
            Box::new(set("llama.attention.head_count_kv", g::u32v(3))),
            "invalid hyperparameter: 4 heads cannot share 3 KV heads",
        ),
        (
            "head_count_kv above head_count",
            Box::new(set("llama.attention.head_count_kv", g::u32v(64))),
            "invalid hyperparameter: 4 heads cannot share 64 KV heads",
        ),
        (
            "key_length 2^62+16",
            Box::new(set("llama.attention.key_length", g::u64v((1 << 62) + 16))),
            "invalid hyperparameter: attention.key_length of 4611686018427387920 is not a real model (at most 16777216)",
        ),
        (
            "key_length 7 (odd)",
            Box::new(set("llama.attention.key_length", g::u32v(7))),
            "*head dimension 7 must be even*",
        ),
        (
            "key_length 8 (tensors hold 16)",
            Box::new(set("llama.attention.key_length", g::u32v(8))),
            "*rope dimension 16 for head dimension 8*",
        ),
        (
            "key_length 0",
            Box::new(set("llama.attention.key_length", g::u32v(0))),
            "invalid hyperparameter: head dimension 0 must be even and equal for K and V",
        ),
        (
            "value_length unlike key_length",
            Box::new(set("llama.attention.value_length", g::u32v(32))),
            "*equal for K and V*",
        ),
        (
            "feed_forward_length 1",
            Box::new(set("llama.feed_forward_length", g::u32v(1))),
            "*has shape * expected *",
        ),
        (
            "rope.dimension_count 3",
            Box::new(set("llama.rope.dimension_count", g::u32v(3))),
            "*rope dimension 3*",
        ),
        (
            "rope.dimension_count 1000",
            Box::new(set("llama.rope.dimension_count", g::u32v(1000))),
            "*rope dimension 1000*",
        ),
        ("rope.freq_base NaN", Box::new(set("llama.rope.freq_base", g::f32v(f32::NAN))), "*rope.freq_base*"),
        ("rope.freq_base -1", Box::new(set("llama.rope.freq_base", g::f32v(-1.0))), "*rope.freq_base*"),
        (
            "rope.freq_base infinite",
            Box::new(set("llama.rope.freq_base", g::f32v(f32::INFINITY))),
            "*rope.freq_base*",
        ),
        (
            "rms epsilon NaN",
            Box::new(set("llama.attention.layer_norm_rms_epsilon", g::f32v(f32::NAN))),
            "*layer_norm_rms_epsilon*",
        ),
        (
            "rms epsilon -1",
            Box::new(set("llama.attention.layer_norm_rms_epsilon", g::f32v(-1.0))),
            "*layer_norm_rms_epsilon*",
        ),
        ("rope.scaling.type yarn", Box::new(set("llama.rope.scaling.type", g::strv("yarn"))), "*yarn*"),
        (
            "rope.scaling.type a number",
            Box::new(set("llama.rope.scaling.type", g::u32v(1))),
            "rope scaling `u32` is not supported (none and linear are)",
        ),
        (
            "rope.scaling.factor 0",
            Box::new(|e: &mut Gguf| {
                e.set("llama.rope.scaling.type", g::strv("linear"))
                    .set("llama.rope.scaling.factor", g::f32v(0.0));
            }),
            "*rope.scaling.factor*",
        ),
        ("architecture gpt-j", Box::new(set("general.architecture", g::strv("gptj"))), "*gptj*"),
        (
            "architecture empty",
            Box::new(set("general.architecture", g::strv(""))),
            "unsupported architecture ``: hartlm runs llama, qwen2, qwen3 and lfm2 models",
        ),
        (
            "architecture with escapes and a newline",
            Box::new(set("general.architecture", g::strv("\u{1b}[2Jevil\nsecond line"))),
            "*\\e[2Jevil\\nsecond line*",
        ),
        (
            "architecture a number",
            Box::new(set("general.architecture", g::u32v(7))),
            "*general.architecture*",
        ),
        (
            "architecture missing",
            Box::new(|e: &mut Gguf| {
                e.remove("general.architecture");
            }),
            "*general.architecture*",
        ),
        (
            "embedding tensor missing",
            Box::new(|e: &mut Gguf| e.tensors.retain(|t| t.name != "token_embd.weight")),
            "*token_embd.weight*",
        ),
        (
            "a layer's tensor renamed",
            Box::new(|e: &mut Gguf| {
                if let Some(t) = e.tensor_mut("blk.1.ffn_up.weight") {
                    t.name = "blk.1.ffn_up.weight\u{1b}[31m".into();
                }
            }),
            "*blk.1.ffn_up.weight*",
        ),
    ];
    for (what, f, detail) in specific {
        add(cases, &micro, what.into(), &*f, "info", 1, &hp(detail));
    }
    // The tokenizer's metadata, through `tokenize`.
    let tok: Vec<Mutation> = vec![
        (
            "tokenizer model bert",
            Box::new(set("tokenizer.ggml.model", g::strv("bert"))),
            "*tokenizer model `bert` is not supported*",
        ),
        (
            "tokenizer model empty",
            Box::new(set("tokenizer.ggml.model", g::strv(""))),
            "*tokenizer model `` is not supported*",
        ),
        (
            "tokenizer model with escapes",
            Box::new(set("tokenizer.ggml.model", g::strv("x\u{1b}]0;pwned\u{7}"))),
            "*x\\e]0;pwned\\u{7}*",
        ),
        (
            "tokenizer model missing",
            Box::new(|e: &mut Gguf| {
                e.remove("tokenizer.ggml.model");
            }),
            "*has no tokenizer*",
        ),
        ("tokens a number", Box::new(set("tokenizer.ggml.tokens", g::u32v(5))), "*has no tokenizer*"),
        (
            "tokens an integer array",
            Box::new(set("tokenizer.ggml.tokens", g::arrayv(g::U32, 2, &[0; 8]))),
            "*tokenizer.ggml.tokens*not a string array*",
        ),
        (
            "tokens empty",
            Box::new(set("tokenizer.ggml.tokens", g::arrayv(g::STRING, 0, &[]))),
            "tokenizer metadata `tokenizer.ggml.scores/token_type` is malformed: 512 scores and 512 types for 0 tokens",
        ),
        (
            "scores one short",
            Box::new(|e: &mut Gguf| {
                let r = e.get("tokenizer.ggml.scores").cloned().expect("scores");
                let n = u64::from_le_bytes(r.bytes[4..12].try_into().unwrap_or_default());
                e.set("tokenizer.ggml.scores", g::arrayv(g::F32, n - 1, &r.bytes[12..r.bytes.len() - 4]));
            }),
            "*scores and * types for * tokens*",
        ),
        (
            "scores strings",
            Box::new(set("tokenizer.ggml.scores", g::arrayv(g::STRING, 1, &[1, 0, 0, 0, 0, 0, 0, 0, b'x']))),
            "*tokenizer.ggml.scores*not an f32 array*",
        ),
        (
            "token types floats",
            Box::new(set("tokenizer.ggml.token_type", g::arrayv(g::F32, 1, &[0; 4]))),
            "*tokenizer.ggml.token_type*not an integer array*",
        ),
        (
            "bos id past the vocabulary",
            Box::new(set("tokenizer.ggml.bos_token_id", g::u32v(999_999))),
            "*tokenizer.ggml.bos_token_id*id 999999 >= 512 tokens*",
        ),
        (
            "eos id 2^64-1",
            Box::new(set("tokenizer.ggml.eos_token_id", g::u64v(u64::MAX))),
            "tokenizer metadata `tokenizer.ggml.eos_token_id` is malformed: 18446744073709551615 is not a token id",
        ),
    ];
    for (what, f, detail) in tok {
        add(cases, &micro, what.into(), &*f, "tokenize", 1, &hp(detail));
    }
    // A model whose vocabulary holds more tokens than its embedding has rows: ids past the
    // matrix must never be looked up.
    add(
        cases,
        &micro,
        "more tokens than embedding rows".into(),
        &|e| {
            if let Some(t) = e.tensor_mut("token_embd.weight") {
                t.dims[1] = 256;
            }
            if let Some(t) = e.tensor_mut("output.weight") {
                t.dims[1] = 256;
            }
        },
        "run",
        1,
        &hp("*512 tokens*256*"),
    );
    // LFM2: the per-layer KV head list and the convolution.
    let lf: Vec<Mutation> = vec![
        (
            "per-layer KV heads one short",
            Box::new(|e: &mut Gguf| {
                let r = e.get("lfm2.attention.head_count_kv").cloned().expect("kv heads");
                let n = u64::from_le_bytes(r.bytes[4..12].try_into().unwrap_or_default());
                e.set(
                    "lfm2.attention.head_count_kv",
                    g::arrayv(g::I32, n - 1, &r.bytes[12..r.bytes.len() - 4]),
                );
            }),
            "*head_count_kv*",
        ),
        (
            "per-layer KV heads negative",
            Box::new(|e: &mut Gguf| {
                let r = e.get("lfm2.attention.head_count_kv").cloned().expect("kv heads");
                let n = u64::from_le_bytes(r.bytes[4..12].try_into().unwrap_or_default());
                let body: Vec<u8> = (0..n).flat_map(|_| (-4i32).to_le_bytes()).collect();
                e.set("lfm2.attention.head_count_kv", g::arrayv(g::I32, n, &body));
            }),
            "*head_count_kv*",
        ),
        (
            "per-layer KV heads strings",
            Box::new(set(
                "lfm2.attention.head_count_kv",
                g::arrayv(g::STRING, 1, &[1, 0, 0, 0, 0, 0, 0, 0, b'4']),
            )),
            "*head_count_kv*",
        ),
        (
            "convolution of 0 taps",
            Box::new(set("lfm2.shortconv.l_cache", g::u32v(0))),
            "*short convolution of 0 taps*",
        ),
        (
            "convolution of 2^32-1 taps",
            Box::new(set("lfm2.shortconv.l_cache", g::u32v(u32::MAX))),
            "*short convolution of 4294967295 taps*",
        ),
        (
            "convolution taps missing",
            Box::new(|e: &mut Gguf| {
                e.remove("lfm2.shortconv.l_cache");
            }),
            "*lfm2.shortconv.l_cache*",
        ),
        (
            "convolution of 3 taps (tensors hold 3)",
            Box::new(set("lfm2.shortconv.l_cache", g::u32v(5))),
            "*has shape * expected *",
        ),
    ];
    for (what, f, detail) in lf {
        add(cases, &lfm2, format!("lfm2: {what}"), &*f, "info", 1, &hp(detail));
    }
}

fn tokenizer(m: &Models, cases: &mut Vec<Case>, files: &mut Vec<(String, Make)>) {
    let micro = file(files, "tokenizer-micro.gguf", m.micro.to_vec());
    let inputs: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("one space", " ".into()),
        ("64 KiB of spaces", " ".repeat(65536)),
        ("64 KiB of newlines", "\n".repeat(65536)),
        ("CRLF lines", "a\r\nb\r\n".repeat(1000)),
        ("a 256 KiB word", "a".repeat(256 << 10)),
        ("a 1 MiB word", "ab".repeat(512 << 10)),
        ("1 MiB of short words", "lorem ipsum dolor sit amet ".repeat(40_000)),
        ("a 64 KiB digit run", "1234567890".repeat(6554)),
        ("64 KiB of punctuation", "!?.,;:'\"()[]{}".repeat(4700)),
        ("control characters", (0u8..32).map(char::from).collect::<String>().repeat(100)),
        ("escape sequences", "\u{1b}[2J\u{1b}]0;x\u{7}".repeat(500)),
        ("bidi overrides", "\u{202e}abc\u{202d}def\u{2066}".repeat(500)),
        ("combining marks", "e\u{301}\u{302}\u{303}\u{304}".repeat(5000)),
        ("emoji and ZWJ sequences", "👩‍👩‍👧‍👦🏳️‍🌈".repeat(2000)),
        ("astral characters", "𝕳𝖆𝖗𝖙".repeat(5000)),
        ("CJK", "日本語の文章".repeat(5000)),
        ("mixed scripts", "abcЖжאבגمرحبا١٢٣".repeat(2000)),
        ("byte-fallback characters", "\u{fffd}\u{e000}\u{10fffd}".repeat(3000)),
        ("apostrophes for contractions", "'s't're've'm'll'd".repeat(3000)),
        ("spaces before a word, repeated", "     x".repeat(20_000)),
        ("special-token text", "<s></s><unk><|im_start|><|endoftext|>".repeat(2000)),
        ("a lone surrogate-like sequence", "\u{d7ff}\u{e000}".repeat(5000)),
        ("tabs and vertical tabs", "\t\u{b}\u{c}".repeat(10_000)),
    ];
    for (name, text) in inputs {
        let prompt = file(files, &format!("prompt-{}.txt", cases.len()), text.into_bytes());
        for (model, label) in [
            (&micro, "SentencePiece"),
            (&m.qwen2_vocab.to_string(), "Qwen2 byte-level BPE"),
            (&m.bpe_path.to_string(), "SmolLM2 byte-level BPE"),
        ] {
            for special in [false, true] {
                if special && label != "SmolLM2 byte-level BPE" {
                    continue;
                }
                let mut args = vec!["tokenize", "-m", model, "-f", &prompt, "--show-count"];
                if special {
                    args.push("--parse-special");
                }
                let what = format!("{name} ({label}{})", if special { ", specials parsed" } else { "" });
                cases.push(with_stdout(case("tokenizer inputs", what, &args, 0, None), "*"));
            }
        }
    }
    let bad = file(files, "prompt-not-utf8.txt", vec![b'a', 0xff, 0xfe, b'b']);
    cases.push(case(
        "tokenizer inputs",
        "a prompt file that is not UTF-8",
        &["tokenize", "-m", &micro, "-f", &bad],
        1,
        Some("hartlm: prompt file {dir}/prompt-not-utf8.txt: is not UTF-8 text"),
    ));
    let big = file(files, "prompt-64k.txt", "hello ".repeat(11_000).into_bytes());
    cases.push(case("tokenizer inputs", "a 64 KiB prompt past the context, refused before tokenizing", &["run", "-m", &micro, "-f", &big, "-c", "128"], 1, Some("hartlm: the prompt of 66000 bytes is at least * tokens, more than the context of 128; raise -c or shorten it")));
    cases.push(case(
        "tokenizer inputs",
        "a prompt past the context after tokenizing",
        &["run", "-m", &micro, "-p", &"hello ".repeat(100), "-c", "64", "-n", "1"],
        1,
        Some("hartlm: * prompt tokens + 1 to generate exceed the context of 64; raise -c or lower -n"),
    ));
    cases.push(case(
        "tokenizer inputs",
        "a prompt of only a control token, unparsed",
        &["run", "-m", &micro, "-p", "", "-n", "1", "--temp", "0"],
        0,
        Some("prompt: 1 tokens in * s (* t/s); generated: 1 tokens in * s (* t/s)"),
    ));
}

fn cli(cases: &mut Vec<Case>) {
    let m = "{dir}/tokenizer-micro.gguf";
    let usage = |msg: &str| format!("hartlm: {msg}; see `hartlm --help`");
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "-m", m, "-p", "hi", "-n", "1"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // Numbers clap rejects, for every numeric flag of `run`.
    for flag in ["-n", "-c", "-t", "--threads-batch", "--top-k", "--repeat-last-n", "--seed"] {
        for (what, v) in [
            ("negative", "-1"),
            ("2^64", "18446744073709551616"),
            ("not a number", "x1"),
            ("empty", ""),
            ("with a NUL-like escape", "1\u{1b}"),
        ] {
            // The base command line already holds `-n 1`; clap refuses a flag given twice.
            let mut a: Vec<String> =
                run(&[]).into_iter().filter(|x| flag != "-n" || (x != "-n" && x != "1")).collect();
            a.extend([flag.to_string(), v.to_string()]);
            let args: Vec<&str> = a.iter().map(String::as_str).collect();
            // clap reads `-1` after an integer flag as an unknown flag; after any other, a bad value.
            let line = if v == "-1" {
                usage("unexpected argument '-1' found")
            } else {
                usage("invalid value '*' for '--*")
            };
            cases.push(case("cli values", format!("run {flag} {what}"), &args, 2, Some(&line)));
        }
    }
    for (flag, v) in [
        ("--temp", "nan"),
        ("--temp", "-1"),
        ("--temp", "inf"),
        ("--top-p", "2"),
        ("--top-p", "nan"),
        ("--min-p", "-0.5"),
        ("--repeat-penalty", "0"),
        ("--repeat-penalty", "nan"),
    ] {
        let a = run(&[flag, v]);
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        cases.push(case(
            "cli values",
            format!("run {flag} {v}"),
            &args,
            2,
            Some(&format!("hartlm: {flag} *: must be *")),
        ));
    }
    for (flag, v, msg) in [
        ("-t", "0", "-t must be at least 1"),
        ("-t", "5000", "-t 5000 is more threads than hartlm supports (1024)"),
        ("--threads-batch", "0", "--threads-batch must be at least 1"),
        (
            "-n",
            "18446744073709551615",
            "* prompt tokens + 18446744073709551615 to generate exceed the context of *; raise -c or lower -n",
        ),
        ("-c", "0", "-c must be at least 1"),
    ] {
        let mut a: Vec<String> =
            run(&[]).into_iter().filter(|x| flag != "-n" || (x != "-n" && x != "1")).collect();
        a.extend([flag.to_string(), v.to_string()]);
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        let code = if msg.starts_with('*') || msg.starts_with("the prompt") { 1 } else { 2 };
        cases.push(case(
            "cli values",
            format!("run {flag} {v}"),
            &args,
            code,
            Some(&format!("hartlm: {msg}")),
        ));
    }
    let lines: Vec<(&str, Vec<&str>, i32, String)> = vec![
        ("no command", vec![], 2, "hartlm: no command given; see `hartlm --help` (`hartlm cpu` describes this machine)".into()),
        ("unknown command", vec!["frobnicate"], 2, usage("unrecognized subcommand 'frobnicate'")),
        ("unknown flag", vec!["run", "--bogus"], 2, usage("unexpected argument '--bogus' found*")),
        ("run without a prompt", vec!["run", "-m", m], 2, "hartlm: give a prompt with -p TEXT or -f FILE (or chat with -cnv)".into()),
        ("run with -p and -f", vec!["run", "-m", m, "-p", "x", "-f", "y"], 2, usage("the argument '--prompt <PROMPT>' cannot be used with '--file <FILE>'*")),
        ("run without a model", vec!["run", "-p", "x"], 2, usage("the following required arguments were not provided: --model <MODEL>")),
        ("-m without a value", vec!["run", "-m"], 2, usage("a value is required for '--model <MODEL>' but none was supplied")),
        ("cache type bogus", vec!["run", "-m", m, "-p", "x", "--cache-type", "q9"], 2, usage("invalid value 'q9' for '--cache-type <CACHE_TYPE>'*")),
        ("bench -r 0", vec!["bench", "-m", m, "-r", "0"], 2, "hartlm: -r must be at least 1".into()),
        ("bench -t 0", vec!["bench", "-m", m, "-t", "0"], 2, "hartlm: -t must be at least 1".into()),
        ("bench -t 1,,2", vec!["bench", "-m", m, "-t", "1,,2"], 2, "hartlm: -t: `` is not a number, a range like 1-4, 1-16+4 or 1-16*2".into()),
        ("bench -t 4-1", vec!["bench", "-m", m, "-t", "4-1"], 2, "hartlm: -t: `4-1`: the range is empty or never ends".into()),
        ("bench -pg 512", vec!["bench", "-m", m, "-pg", "512"], 2, "hartlm: -pg `512`: give two numbers, prompt,gen".into()),
        ("bench -p 2^40", vec!["bench", "-m", m, "-p", "1099511627776", "-n", "0", "-r", "1"], 2, "hartlm: 1099511627776 tokens: at most 1048576 per -p, -n, -pg or -d value".into()),
        ("bench -n 2^40", vec!["bench", "-m", m, "-p", "0", "-n", "1099511627776", "-r", "1"], 2, "hartlm: 1099511627776 tokens: at most 1048576 per -p, -n, -pg or -d value".into()),
        ("bench -d 2^40", vec!["bench", "-m", m, "-d", "1099511627776", "-r", "1"], 2, "hartlm: 1099511627776 tokens: at most 1048576 per -p, -n, -pg or -d value".into()),
        ("bench with no test", vec!["bench", "-m", m, "-p", "0", "-n", "0"], 2, "hartlm: -p, -n and -pg leave no test to run".into()),
        ("bench -o xml", vec!["bench", "-m", m, "-o", "xml"], 2, usage("invalid value 'xml' for '--output <OUTPUT>'*")),
        ("bench-kernel ssm-conv -T 2^63", vec!["bench-kernel", "ssm-conv", "-T", "9223372036854775808", "-r", "1"], 2, usage("invalid value '9223372036854775808' for '--tokens <TOKENS>': number too large to fit in target type")),
        ("bench-kernel ssm-conv -c 2^31 -T 2^31", vec!["bench-kernel", "ssm-conv", "-c", "2147483648", "-T", "2147483648", "-r", "1"], 2, "hartlm: 2147483648 channels x (4 taps + 2147483648 tokens) needs more than 4 GiB of buffers; use smaller sizes".into()),
        ("bench-kernel ssm-conv -c 0", vec!["bench-kernel", "ssm-conv", "-c", "0"], 2, "hartlm: --channels, --taps, --tokens and --reps must be at least 1".into()),
        ("bench-kernel matvec --size-mib 0", vec!["bench-kernel", "matvec", "--size-mib", "0"], 2, "hartlm: --size-mib must be 1..=4096, --batch 1..=512 and --reps at least 1".into()),
        ("bench-kernel matvec --batch 513", vec!["bench-kernel", "matvec", "--batch", "513"], 2, "hartlm: --size-mib must be 1..=4096, --batch 1..=512 and --reps at least 1".into()),
        ("bench-kernel matvec -t 0", vec!["bench-kernel", "matvec", "-t", "0"], 2, "hartlm: -t 0: use 1 to 1024 threads".into()),
        ("logits without tokens", vec!["logits", "-m", m, "-o", "{dir}/x.npy"], 2, usage("the following required arguments were not provided: --tokens <TOKENS>")),
        ("logits token past the vocabulary", vec!["logits", "-m", m, "--tokens", "1,99999", "-o", "{dir}/x.npy"], 2, "hartlm: token id 99999 is past the vocabulary of 512 tokens".into()),
        ("logits token not a number", vec!["logits", "-m", m, "--tokens", "1,x", "-o", "{dir}/x.npy"], 2, usage("invalid value 'x' for '--tokens <TOKENS>'*")),
        ("logits token -1", vec!["logits", "-m", m, "--tokens=-1", "-o", "{dir}/x.npy"], 2, usage("invalid value '-1' for '--tokens <TOKENS>'*")),
        ("logits into a missing directory", vec!["logits", "-m", m, "--tokens", "1", "-o", "{dir}/no/such/dir/x.npy"], 0, "wrote {dir}/no/such/dir/x.npy [1, 512] and {dir}/no/such/dir/x.ids.json".into()),
        ("quantize --type q5_9", vec!["quantize", "-m", m, "-o", "{dir}/q.gguf", "--type", "q5_9"], 2, usage("invalid value 'q5_9' for '--type <TY>'*")),
        ("calibrate --reps 0", vec!["calibrate", "--reps", "0"], 2, usage("invalid value '0' for '--reps <REPS>': 0 is not in 1..=1000")),
        ("calibrate --size-mib x", vec!["calibrate", "--size-mib", "x"], 2, usage("invalid value 'x' for '--size-mib <SIZE_MIB>': invalid digit found in string")),
        ("cpu --bogus", vec!["cpu", "--bogus"], 2, usage("unexpected argument '--bogus' found")),
        ("serve -np 0", vec!["serve", "-m", m, "-np", "0"], 2, "hartlm: -np 0: use 1 to 256 slots".into()),
        ("serve with a cache that cannot be allocated", vec!["serve", "-m", m, "-c", "4000000000", "--port", "0"], 1, "hartlm: cannot allocate a * GiB KV cache for 1 x 4000000000 tokens; lower -c".into()),
        ("serve --host nonsense", vec!["serve", "-m", m, "--host", "no host"], 2, "hartlm: --host no host --port 8080: not an address to listen on".into()),
        ("chat with -ctk f16 -ctv f32", vec!["chat", "-m", m, "-ctk", "f16", "-ctv", "f32"], 2, "hartlm: hartlm keeps keys and values in one type: give -ctk and -ctv the same type".into()),
        ("run -cnv -n bogus", vec!["run", "-m", m, "-cnv", "-n", "x"], 2, usage("invalid value 'x' for '--n-predict <N_PREDICT>': invalid digit found in string")),
        ("an argument with an escape sequence", vec!["run", "--\u{1b}[2J"], 2, usage("unexpected argument '--*' found")),
        ("tokenize with --ids and --show-count", vec!["tokenize", "-m", m, "-p", "x", "--ids", "--show-count"], 2, usage("the argument '--ids' cannot be used with '--show-count'*")),
    ];
    for (what, args, code, line) in lines {
        cases.push(case("cli values", what, &args, code, Some(&line)));
    }
    cases.push(with_stdout(case("cli values", "--version", &["--version"], 0, None), "hartlm *"));
    cases.push(with_stdout(
        case("cli values", "tokenize --ids", &["tokenize", "-m", m, "-p", "hello world", "--ids"], 0, None),
        "[1, *]",
    ));
}

fn environment(cases: &mut Vec<Case>, files: &mut Vec<(String, Make)>) {
    let m = "{dir}/tokenizer-micro.gguf";
    let tok = ["tokenize", "-m", m, "-p", "hello", "--show-count"];
    let env_case = |what: &str, env: &[(&str, &str)], code: i32, line: Option<&str>| {
        let c = with_env(case("environment", what, &tok, code, line), env);
        if code == 0 { with_stdout(c, "*") } else { c }
    };
    let tiers = "valid tiers: *";
    for (what, env, code, line) in [
        ("HARTLM_TIER unknown", vec![("HARTLM_TIER", "x86-64-v9")], 2, Some(format!("hartlm: HARTLM_TIER=x86-64-v9 is not a tier of this architecture; {tiers}"))),
        ("HARTLM_TIER with an escape", vec![("HARTLM_TIER", "a\u{1b}[2Jb")], 2, Some(format!("hartlm: HARTLM_TIER=a\\e[2Jb is not a tier of this architecture; {tiers}"))),
        ("HARTLM_TIER empty (unset)", vec![("HARTLM_TIER", "")], 0, None),
        ("HARTLM_CORES empty (unset)", vec![("HARTLM_CORES", "")], 0, None),
        ("HARTLM_CORES x", vec![("HARTLM_CORES", "x")], 2, Some("hartlm: HARTLM_CORES*x*".into())),
        ("HARTLM_CORES 0-", vec![("HARTLM_CORES", "0-")], 2, Some("hartlm: HARTLM_CORES*0-*".into())),
        ("HARTLM_CORES 3-1", vec![("HARTLM_CORES", "3-1")], 2, Some("hartlm: HARTLM_CORES*3-1*".into())),
        ("HARTLM_CORES 99999", vec![("HARTLM_CORES", "99999")], 2, Some("hartlm: HARTLM_CORES*99999*".into())),
        ("HARTLM_CORES 0-4294967295", vec![("HARTLM_CORES", "0-4294967295")], 2, Some("hartlm: HARTLM_CORES*".into())),
        ("HARTLM_CORES 18446744073709551616", vec![("HARTLM_CORES", "18446744073709551616")], 2, Some("hartlm: HARTLM_CORES*".into())),
        ("HARTLM_CORES ,,,", vec![("HARTLM_CORES", ",,,")], 2, Some("hartlm: HARTLM_CORES*".into())),
        ("HARTLM_CLUSTER unknown", vec![("HARTLM_CLUSTER", "Z999")], 2, Some("hartlm: HARTLM_CLUSTER=Z999*".into())),
        ("HARTLM_PIN bogus", vec![("HARTLM_PIN", "all")], 2, Some("hartlm: HARTLM_PIN=all: use `cores` or `cluster`".into())),
        ("HARTLM_PIN cores", vec![("HARTLM_PIN", "cores")], 0, None),
        ("HARTLM_CALIBRATION bogus", vec![("HARTLM_CALIBRATION", "maybe")], 2, Some("hartlm: HARTLM_CALIBRATION=maybe: use `off` or leave it unset".into())),
        ("HARTLM_CALIBRATION off", vec![("HARTLM_CALIBRATION", "off")], 0, None),
        ("HARTLM_LIB_DIR missing", vec![("HARTLM_LIB_DIR", "{dir}/no-such-lib")], 1, Some("hartlm: no engine library found for any eligible tier (*); reinstall the hartlm tarball so that lib/ sits next to bin/".into())),
        ("HARTLM_LIB_DIR a file", vec![("HARTLM_LIB_DIR", "{dir}/tokenizer-micro.gguf")], 1, Some("hartlm: no engine library found for any eligible tier (*); reinstall the hartlm tarball so that lib/ sits next to bin/".into())),
        ("HARTLM_SYSROOT missing", vec![("HARTLM_SYSROOT", "{dir}/no-such-root")], 2, Some("hartlm: HARTLM_SYSROOT: proc/cpuinfo *".into())),
        ("HARTLM_SYSROOT with a FIFO cpuinfo", vec![("HARTLM_SYSROOT", "{dir}/fifo-root")], 2, Some("hartlm: HARTLM_SYSROOT: proc/cpuinfo is a FIFO, not a regular file".into())),
        ("HARTLM_SYSROOT with /dev/zero as cpuinfo", vec![("HARTLM_SYSROOT", "{dir}/zero-root")], 2, Some("hartlm: HARTLM_SYSROOT: proc/cpuinfo is a character device, not a regular file".into())),
        ("HARTLM_SYSROOT with an empty cpuinfo", vec![("HARTLM_SYSROOT", "{dir}/empty-root")], 2, Some("hartlm: *".into())),
        ("XDG_CACHE_HOME a FIFO cache", vec![("XDG_CACHE_HOME", "{dir}/xdg-fifo")], 0, None),
        ("XDG_CACHE_HOME a /dev/zero cache", vec![("XDG_CACHE_HOME", "{dir}/xdg-zero")], 0, None),
        ("XDG_CACHE_HOME a garbage cache", vec![("XDG_CACHE_HOME", "{dir}/xdg-garbage")], 0, None),
        ("HOME and XDG_CACHE_HOME unset-like", vec![("XDG_CACHE_HOME", ""), ("HOME", "")], 0, None),
        ("HARTLM_VERBOSE 1", vec![("HARTLM_VERBOSE", "1")], 0, Some("hartlm: tier * on * cores * (*): * loaded at 0x*".into())),
    ] {
        cases.push(env_case(what, &env, code, line.as_deref()));
    }
    files.push(("fifo-root/proc".into(), Make::Dir));
    files.push(("fifo-root/proc/cpuinfo".into(), Make::Fifo));
    files.push(("zero-root/proc".into(), Make::Dir));
    files.push(("zero-root/proc/cpuinfo".into(), Make::Symlink("/dev/zero".into())));
    files.push(("empty-root/proc/cpuinfo".into(), Make::Bytes(vec![])));
    let cache = hartlm_variants::calibration::FILE_NAME;
    files.push(("xdg-fifo/hartlm".into(), Make::Dir));
    files.push((format!("xdg-fifo/hartlm/{cache}"), Make::Fifo));
    files.push(("xdg-zero/hartlm".into(), Make::Dir));
    files.push((format!("xdg-zero/hartlm/{cache}"), Make::Symlink("/dev/zero".into())));
    files
        .push((format!("xdg-garbage/hartlm/{cache}"), Make::Bytes(b"\x00\xff{{{ not json \x1b[2J".to_vec())));
}

fn file_kinds(cases: &mut Vec<Case>, files: &mut Vec<(String, Make)>) {
    files.push(("kinds/fifo.gguf".into(), Make::Fifo));
    files.push(("kinds/dir.gguf".into(), Make::Dir));
    files.push(("kinds/zero.gguf".into(), Make::Symlink("/dev/zero".into())));
    files.push(("kinds/null.gguf".into(), Make::Symlink("/dev/null".into())));
    files.push(("kinds/link-to-fifo.gguf".into(), Make::Symlink("fifo.gguf".into())));
    files.push(("kinds/dangling.gguf".into(), Make::Symlink("no-such-target.gguf".into())));
    files.push(("kinds/empty.gguf".into(), Make::Bytes(vec![])));
    files.push(("kinds/model.gguf".into(), Make::Symlink("../tokenizer-micro.gguf".into())));
    files.push(("kinds/fifo.txt".into(), Make::Fifo));
    let model_kind = |name: &str, kind: &str| {
        format!(
            "hartlm: {{dir}}/kinds/{name}: {{dir}}/kinds/{name} is {kind}, not a model file; give the path of a .gguf file"
        )
    };
    for (what, path, line) in [
        ("a FIFO", "fifo.gguf", model_kind("fifo.gguf", "a FIFO")),
        ("a directory", "dir.gguf", model_kind("dir.gguf", "a directory")),
        ("a link to /dev/zero", "zero.gguf", model_kind("zero.gguf", "a character device")),
        ("a link to /dev/null", "null.gguf", model_kind("null.gguf", "a character device")),
        ("a link to a FIFO", "link-to-fifo.gguf", model_kind("link-to-fifo.gguf", "a FIFO")),
        ("a dangling link", "dangling.gguf", "hartlm: {dir}/kinds/dangling.gguf: cannot read {dir}/kinds/dangling.gguf: No such file or directory (os error 2)".into()),
        ("a missing file", "missing.gguf", "hartlm: {dir}/kinds/missing.gguf: cannot read {dir}/kinds/missing.gguf: No such file or directory (os error 2)".into()),
        ("an empty file", "empty.gguf", "hartlm: {dir}/kinds/empty.gguf: truncated GGUF: magic at byte offset 0 needs 4 bytes but the file has 0".into()),
    ] {
        let p = format!("{{dir}}/kinds/{path}");
        for command in ["info", "run", "tokenize"] {
            let args: Vec<&str> = match command {
                "info" => vec!["info", "-m", &p],
                "run" => vec!["run", "-m", &p, "-p", "x"],
                _ => vec!["tokenize", "-m", &p, "-p", "x"],
            };
            cases.push(case("file kinds", format!("{command} -m {what}"), &args, 1, Some(&line)));
        }
    }
    let m = "{dir}/tokenizer-micro.gguf";
    for (what, path, kind) in [
        ("a FIFO", "fifo.txt", "is a FIFO, not a regular file"),
        ("a directory", "dir.gguf", "is a directory, not a regular file"),
        ("/dev/zero", "zero.gguf", "is a character device, not a regular file"),
    ] {
        let p = format!("{{dir}}/kinds/{path}");
        cases.push(case(
            "file kinds",
            format!("run -f {what}"),
            &["run", "-m", m, "-f", &p],
            1,
            Some(&format!("hartlm: prompt file {p}: {kind}")),
        ));
    }
    let same = "hartlm: {dir}/kinds/model.gguf is the input model {dir}/tokenizer-micro.gguf; choose another output path";
    cases.push(case(
        "file kinds",
        "quantize onto its input through a link",
        &["quantize", "-m", m, "-o", "{dir}/kinds/model.gguf", "--type", "q8_0"],
        2,
        Some(same),
    ));
    cases.push(case("file kinds", "quantize onto its input", &["quantize", "-m", m, "-o", m, "--type", "q8_0"], 2, Some("hartlm: {dir}/tokenizer-micro.gguf is the input model {dir}/tokenizer-micro.gguf; choose another output path")));
    cases.push(case("file kinds", "logits onto the model", &["logits", "-m", m, "--tokens", "1", "-o", m], 2, Some("hartlm: {dir}/tokenizer-micro.gguf is the input model {dir}/tokenizer-micro.gguf; choose another output path")));
    cases.push(case(
        "file kinds",
        "logits onto the model through a link",
        &["logits", "-m", m, "--tokens", "1", "-o", "{dir}/kinds/model.gguf"],
        2,
        Some(same),
    ));
    cases.push(case(
        "file kinds",
        "quantize into a directory path",
        &["quantize", "-m", m, "-o", "{dir}/kinds/dir.gguf", "--type", "q8_0", "--allow-requantize"],
        1,
        Some("*writing {dir}/kinds/dir.gguf*"),
    ));
    cases.push(case(
        "file kinds",
        "quantize an already quantized model is refused",
        &["quantize", "-m", m, "-o", "{dir}/requantized.gguf", "--type", "q8_0"],
        2,
        Some("hartlm: {dir}/tokenizer-micro.gguf already holds Q4_0/Q8_0 matrices; requantizing compounds their rounding error: quantize the F16/F32 model, or pass --allow-requantize"),
    ));
    cases.push(case(
        "file kinds",
        "quantize an already quantized model when asked to",
        &["quantize", "-m", m, "-o", "{dir}/requantized.gguf", "--type", "q8_0", "--allow-requantize"],
        0,
        Some("*quantize: wrote {dir}/requantized.gguf (* MiB)"),
    ));
}

fn installs(cases: &mut Vec<Case>) {
    let m = "{dir}/tokenizer-micro.gguf";
    let tok = ["tokenize", "-m", m, "-p", "hello", "--show-count"];
    let fallback = "hartlm: warning: tier {best} failed to load: *: {why}; falling back to {next}";
    let damaged = |what: &str, damage: Damage, why: &str| {
        let mut c =
            with_stdout(case("broken installs", what, &tok, 0, Some(&fallback.replace("{why}", why))), "*");
        c.damage = Some(damage);
        c
    };
    for (n, what) in [
        (0, "emptied"),
        (1024, "cut to 1 KiB"),
        (10 << 10, "cut to 10 KiB"),
        (100 << 10, "cut to 100 KiB"),
        (usize::MAX, "cut in half"),
    ] {
        cases.push(damaged(
            &format!("best library {what}"),
            Damage::Truncate(n),
            "* bytes where manifest.json says * (damaged or replaced)",
        ));
    }
    cases.push(damaged(
        "best library replaced by garbage",
        Damage::Replace(b"\x7fELF this is not a shared object".to_vec()),
        "* bytes where manifest.json says * (damaged or replaced)",
    ));
    cases.push(damaged("best library a directory", Damage::LibDir, "is a directory, not a regular file"));
    cases.push(damaged("best library a FIFO", Damage::LibFifo, "is a FIFO, not a regular file"));
    cases.push(damaged(
        "best library from the other architecture",
        Damage::ForeignArch,
        "* bytes where manifest.json says * (damaged or replaced)",
    ));
    let mut swap = case(
        "broken installs",
        "the best library copied over the next tier's, forced",
        &tok,
        1,
        Some("hartlm: tier {next} failed to load: *: * (damaged or replaced); reinstall the hartlm tarball"),
    );
    swap.env = vec![("HARTLM_TIER".into(), "{next}".into())];
    swap.damage = Some(Damage::Swap);
    cases.push(swap);
    let mut forced = case(
        "broken installs",
        "the best library cut in half, forced",
        &tok,
        1,
        Some("hartlm: tier {best} failed to load: *: * (damaged or replaced); reinstall the hartlm tarball"),
    );
    forced.env = vec![("HARTLM_TIER".into(), "{best}".into())];
    forced.damage = Some(Damage::Truncate(usize::MAX));
    cases.push(forced);
    for (what, bytes, why) in [
        (
            "manifest.json not JSON",
            b"{ not json".to_vec(),
            "hartlm: {install}/manifest.json: manifest.json is not a hartlm manifest (*); reinstall the hartlm tarball",
        ),
        (
            "manifest.json of schema 9",
            br#"{"schema_version": 9, "tiers": []}"#.to_vec(),
            "hartlm: {install}/manifest.json: manifest.json has schema version 9, this launcher reads 1; reinstall the hartlm tarball",
        ),
        (
            "manifest.json listing no tier",
            br#"{"schema_version": 1, "tiers": []}"#.to_vec(),
            "hartlm: tier * failed to load: manifest.json does not list libhartlm-*.so*; reinstall the hartlm tarball",
        ),
    ] {
        let mut c = case("broken installs", what, &tok, 1, Some(why));
        c.damage = Some(Damage::Manifest(bytes));
        cases.push(c);
    }
    let mut c = case(
        "broken installs",
        "no lib/ directory",
        &tok,
        1,
        Some(
            "hartlm: no engine library found for any eligible tier (*); reinstall the hartlm tarball so that lib/ sits next to bin/",
        ),
    );
    c.damage = Some(Damage::NoLib);
    cases.push(c);
    let mut c = with_stdout(
        case("broken installs", "no lib/, and `cpu` still explains", &["cpu"], 0, None),
        "hartlm * launcher (*)",
    );
    c.damage = Some(Damage::NoLib);
    cases.push(c);
}
