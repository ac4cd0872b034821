// Chat templates against Python's jinja2 set up as Hugging Face's apply_chat_template sets it
// up: the real templates carried by model files (SmolLM2-135M-Instruct, fetched by
// `cargo xtask fetch-models`; Qwen2 from llama.cpp's ggml-vocab-qwen2.gguf in the fixtures),
// the ones llama.cpp publishes, and TinyLlama's and Llama-2's (tests/data/chat-templates/),
// each rendered for several conversations must give the same bytes, and the same tokens.

use std::path::PathBuf;
use std::process::Command;

use hartlm_frontend::commands::chat_tokens;
use hartlm_frontend::template::{ChatTemplate, Message};

mod common;
use common::{engine, fixtures};

/// Renders with jinja2 the way transformers does (ImmutableSandboxedEnvironment, trim_blocks,
/// lstrip_blocks, loop controls, raise_exception, a tojson that does not escape).
const RENDER_PY: &str = r#"
import datetime, json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
req = json.load(sys.stdin)
def raise_exception(message):
    raise Exception(message)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
# hartlm dates templates in UTC, so the reference does too.
env.globals["strftime_now"] = lambda f: datetime.datetime.now(datetime.timezone.utc).strftime(f)
out = []
for case in req["cases"]:
    out.append(env.from_string(req["template"]).render(messages=case["messages"],
        add_generation_prompt=case["add_generation_prompt"], bos_token=req["bos"], eos_token=req["eos"],
        **req["variables"]))
json.dump(out, sys.stdout)
"#;

/// The project venv's Python (`cargo xtask setup` makes it; fetch-models installs jinja2 there),
/// else whichever python3 is on PATH.
fn python() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python/bin/python3");
    if venv.is_file() { venv } else { "python3".into() }
}

fn jinja2(
    template: &str,
    bos: &str,
    eos: &str,
    variables: &serde_json::Value,
    cases: &[(Vec<Message>, bool)],
) -> Vec<String> {
    let req = serde_json::json!({
        "template": template, "bos": bos, "eos": eos, "variables": variables,
        "cases": cases.iter().map(|(m, g)| serde_json::json!({"messages": m, "add_generation_prompt": g})).collect::<Vec<_>>(),
    });
    let mut child = Command::new(python())
        .args(["-c", RENDER_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (cargo xtask fetch-models installs jinja2)");
    serde_json::to_writer(child.stdin.take().unwrap(), &req).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "jinja2 failed: is it installed? `cargo xtask fetch-models` installs it");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn conversations() -> Vec<(Vec<Message>, bool)> {
    let m = Message::new;
    vec![
        (vec![m("user", "What is the capital of France?")], true),
        (vec![m("system", "Answer in one word."), m("user", "Capital of France?")], true),
        (
            vec![
                m("user", "Hi there"),
                m("assistant", "Hello! How can I help?"),
                m("user", "Tell me a joke about \"quotes\" and\nnewlines. 🦙"),
            ],
            true,
        ),
        (vec![m("user", "no generation prompt")], false),
        (
            vec![
                m("system", "Think first."),
                m("user", "2+2?"),
                m("assistant", "<think>\nadd them\n</think>\n\n4"),
                m("user", "and 3+3?"),
            ],
            true,
        ),
    ]
}

/// The templates llama.cpp publishes for the families hartlm runs (Llama-3.1/3.2, Qwen2.5,
/// Qwen3 with and without thinking, LFM2, LFM2.5, SmolLM3), extracted by `cargo xtask
/// fetch-models` from the pinned sdist with their provenance: every conversation renders to
/// jinja2's bytes, and Qwen's to the same tokens as jinja2's text with the Qwen2 vocabulary.
#[test]
fn published_templates_render_like_jinja2() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/chat-templates");
    let provenance = std::fs::read_to_string(dir.join("PROVENANCE.json"))
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask fetch-models`", dir.display()));
    let entries: Vec<serde_json::Value> = serde_json::from_str(&provenance).unwrap();
    assert!(entries.len() >= 8, "{} templates", entries.len());
    let qwen = engine().open(&fixtures().join("../third_party_vocab/ggml-vocab-qwen2.gguf"), true).unwrap();
    for e in entries {
        let family = e["family"].as_str().unwrap();
        let source = std::fs::read_to_string(dir.join(e["file"].as_str().unwrap())).unwrap();
        let variables = e["variables"].as_object().unwrap().clone();
        let (bos, eos) = ("<s>", "</s>");
        let ours = ChatTemplate::new(Some(&source), bos, eos).unwrap_or_else(|err| panic!("{family}: {err}"));
        let cases = conversations();
        let theirs = jinja2(&source, bos, eos, &serde_json::Value::Object(variables.clone()), &cases);
        for ((messages, generation_prompt), want) in cases.iter().zip(&theirs) {
            let got = ours
                .render(messages, *generation_prompt, &variables)
                .unwrap_or_else(|err| panic!("{family}: {err}"));
            assert_eq!(&got, want, "{family}: {messages:?}");
            if family.starts_with("Qwen") {
                assert_eq!(qwen.tokenize(&got, false, true), qwen.tokenize(want, false, true), "{family}");
            }
        }
    }
}

/// TinyLlama-1.1B-Chat's (Zephyr's) and Llama-2-chat's templates, kept in
/// tests/data/chat-templates/ with their provenance: the same bytes as jinja2 for every
/// conversation, and the same tokens with the Llama SentencePiece vocabulary they share, so a
/// rendered `<s>` is the one BOS token. Llama-2's `raise_exception` reaches the caller.
#[test]
fn tinyllama_and_llama2_templates_render_like_jinja2() {
    use sha2::Digest;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat-templates");
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("PROVENANCE.json")).unwrap()).unwrap();
    assert_eq!(entries.len(), 2);
    let m = engine().open(&fixtures().join("../third_party_vocab/ggml-vocab-llama-spm.gguf"), true).unwrap();
    let tok = m.tokenizer().unwrap();
    let (bos, eos) = (tok.bos_text.clone().unwrap(), tok.eos_text.clone().unwrap());
    assert_eq!((bos.as_str(), eos.as_str()), ("<s>", "</s>"));
    for e in entries {
        let family = e["family"].as_str().unwrap();
        let source = std::fs::read_to_string(dir.join(e["file"].as_str().unwrap())).unwrap();
        let digest = format!("{:x}", sha2::Sha256::digest(source.as_bytes()));
        assert_eq!(digest, e["sha256"].as_str().unwrap(), "{family}: the file differs from its source");
        let ours =
            ChatTemplate::new(Some(&source), &bos, &eos).unwrap_or_else(|err| panic!("{family}: {err}"));
        let cases = conversations();
        let theirs = jinja2(&source, &bos, &eos, &serde_json::json!({}), &cases);
        for ((messages, generation_prompt), want) in cases.iter().zip(&theirs) {
            let got = ours.render(messages, *generation_prompt, &Default::default()).unwrap();
            assert_eq!(&got, want, "{family}: {messages:?}");
            let ids = chat_tokens(&m, &got);
            assert_eq!(ids, m.tokenize(want, !want.starts_with(&bos), true), "{family}");
            let bos_id = tok.bos.unwrap();
            let bos_count = want.matches(bos.as_str()).count() + usize::from(!want.starts_with(&bos));
            assert_eq!(ids.iter().filter(|&&t| t == bos_id).count(), bos_count, "{family}: {got:?}");
        }
        if family == "Llama-2" {
            let two_users = [Message::new("user", "a"), Message::new("user", "b")];
            let err = ours.render(&two_users, true, &Default::default()).unwrap_err();
            assert!(err.contains("Conversation roles must alternate"), "{err}");
        }
    }
}

#[test]
fn model_templates_render_like_jinja2_and_tokenize_the_same() {
    let models: [(&str, PathBuf); 2] = [
        (
            "SmolLM2-135M-Instruct",
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        ("Qwen2 (llama.cpp ggml-vocab-qwen2)", fixtures().join("../third_party_vocab/ggml-vocab-qwen2.gguf")),
    ];
    let e = engine();
    for (name, path) in models {
        assert!(path.is_file(), "{}: run `cargo xtask fetch-models`", path.display());
        let m = e.open(&path, true).unwrap();
        let source = m.info.chat_template.clone().unwrap_or_else(|| panic!("{name} carries a template"));
        let tok = m.tokenizer().unwrap();
        let (bos, eos) = (tok.bos_text.clone().unwrap_or_default(), tok.eos_text.clone().unwrap_or_default());
        let ours = ChatTemplate::new(Some(&source), &bos, &eos).unwrap();
        let cases = conversations();
        let theirs = jinja2(&source, &bos, &eos, &serde_json::json!({}), &cases);
        for ((messages, generation_prompt), want) in cases.iter().zip(&theirs) {
            let got = ours.render(messages, *generation_prompt, &Default::default()).unwrap();
            assert_eq!(&got, want, "{name}: {messages:?}");
            // The rendered text's tokens: special tokens parsed, no doubled BOS.
            let ids = chat_tokens(&m, &got);
            assert_eq!(ids, m.tokenize(want, !want.starts_with(&bos) || bos.is_empty(), true), "{name}");
            let im_start = m.tokenize("<|im_start|>", false, true);
            assert_eq!(im_start.len(), 1, "{name}: <|im_start|> is one control token");
            assert_eq!(
                ids.iter().filter(|&&t| t == im_start[0]).count(),
                want.matches("<|im_start|>").count()
            );
        }
    }
}
