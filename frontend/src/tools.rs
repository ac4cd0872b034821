//! OpenAI tool calling for chat: the call syntax a model family writes (named by its chat
//! template), parsing a reply into text and calls, and holding back a streamed reply's calls.
//!
//! Requests' `tools` and tool messages go to the template as Hugging Face passes them (see
//! [`call_for_template`]); the template tells the model how to write a call.

use serde_json::{Map, Value, json};

/// How a model writes a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, one block per call (or a list
    /// of calls in one): Hermes 2 Pro and the templates that copied it (Qwen2.5, Qwen3, SmolLM3),
    /// and SmolLM2's lists.
    Hermes,
    /// The whole reply is `{"name": …, "parameters": {…}}`, after an optional `<|python_tag|>`:
    /// Llama 3.1, 3.2 and 3.3.
    LlamaJson,
    /// `<|tool_call_start|>[name(arg=value, …), …]<|tool_call_end|>`, Python call syntax: LFM2.
    Pythonic,
}

impl Syntax {
    /// The syntax a chat template asks for; None when it describes no tool calls.
    pub fn of_template(template: &str) -> Option<Syntax> {
        if template.contains("<tool_call>") {
            Some(Syntax::Hermes)
        } else if template.contains("<|tool_call_start|>") || template.contains("<|tool_list_start|>") {
            Some(Syntax::Pythonic)
        } else if template.contains("\"parameters\": dictionary of argument name") {
            Some(Syntax::LlamaJson)
        } else {
            None
        }
    }

    fn start(self) -> &'static str {
        match self {
            Syntax::Hermes => "<tool_call>",
            Syntax::Pythonic => "<|tool_call_start|>",
            Syntax::LlamaJson => "{",
        }
    }
}

/// One call a model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as JSON text (OpenAI sends and returns them as a string).
    pub arguments: String,
}

/// A reply split into its text and its calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    pub content: String,
    pub calls: Vec<ToolCall>,
}

/// Splits a finished reply. Text that only looks like a call (bad JSON, an unknown shape) stays
/// content, so nothing the model wrote is lost.
pub fn parse(syntax: Syntax, text: &str) -> Reply {
    let plain = || Reply { content: text.to_string(), calls: Vec::new() };
    match syntax {
        Syntax::Hermes => {
            parse_blocks(text, "<tool_call>", "</tool_call>", hermes_call).unwrap_or_else(plain)
        }
        Syntax::Pythonic => parse_blocks(text, "<|tool_call_start|>", "<|tool_call_end|>", pythonic_calls)
            .unwrap_or_else(plain),
        Syntax::LlamaJson => {
            let body = text.trim_start().strip_prefix("<|python_tag|>").unwrap_or(text.trim_start());
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(body.trim()) else { return plain() };
            match call_from_object(&o, "parameters").or_else(|| call_from_object(&o, "arguments")) {
                Some(call) => Reply { content: String::new(), calls: vec![call] },
                None => plain(),
            }
        }
    }
}

/// Content outside `open … close` blocks, and the calls inside them; None when a block does not
/// parse or is never closed.
fn parse_blocks(
    text: &str,
    open: &str,
    close: &str,
    calls_in: fn(&str) -> Option<Vec<ToolCall>>,
) -> Option<Reply> {
    let mut reply = Reply::default();
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        reply.content.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        let end = after.find(close)?;
        reply.calls.extend(calls_in(&after[..end])?);
        rest = &after[end + close.len()..];
    }
    if reply.calls.is_empty() {
        return None;
    }
    reply.content.push_str(rest);
    reply.content = reply.content.trim().to_string();
    Some(reply)
}

/// One call object, or a list of them (SmolLM2 writes `<tool_call>[{…}, …]</tool_call>`).
fn hermes_call(body: &str) -> Option<Vec<ToolCall>> {
    let call = |v: &Value| call_from_object(v.as_object()?, "arguments");
    match serde_json::from_str::<Value>(body.trim()).ok()? {
        Value::Array(calls) if !calls.is_empty() => calls.iter().map(call).collect(),
        one => Some(vec![call(&one)?]),
    }
}

fn call_from_object(o: &Map<String, Value>, arguments_key: &str) -> Option<ToolCall> {
    let name = o.get("name")?.as_str()?.to_string();
    let arguments = match o.get(arguments_key)? {
        // Some models write the arguments as a JSON string of an object.
        Value::String(s) => match serde_json::from_str::<Value>(s).ok()? {
            v @ Value::Object(_) => v.to_string(),
            _ => return None,
        },
        v @ Value::Object(_) => v.to_string(),
        _ => return None,
    };
    Some(ToolCall { name, arguments })
}

/// `[f(a=1, b="x"), g()]`: Python calls with literal keyword arguments.
fn pythonic_calls(body: &str) -> Option<Vec<ToolCall>> {
    let mut p = Py { s: body.trim().as_bytes(), at: 0 };
    p.eat(b'[')?;
    let calls = p.items(b']', |p| {
        let name = p.ident()?;
        p.eat(b'(')?;
        let args = p.items(b')', |p| {
            let key = p.ident()?;
            p.space();
            p.eat(b'=')?;
            Some((key, p.literal()?))
        })?;
        Some(ToolCall { name, arguments: Value::Object(args.into_iter().collect()).to_string() })
    })?;
    p.space();
    (p.at == p.s.len()).then_some(calls)
}

/// A cursor over Python source: identifiers and literals (strings, numbers, True/False/None,
/// lists, dicts).
struct Py<'a> {
    s: &'a [u8],
    at: usize,
}

impl Py<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.at += 1)
    }

    fn space(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-') {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn literal(&mut self) -> Option<Value> {
        self.space();
        let v = match self.peek()? {
            q @ (b'"' | b'\'') => Value::String(self.string(q)?),
            b'[' => {
                self.at += 1;
                Value::Array(self.items(b']', |p| p.literal())?)
            }
            b'{' => {
                self.at += 1;
                let pairs = self.items(b'}', |p| {
                    let k = match p.literal()? {
                        Value::String(k) => k,
                        other => other.to_string(),
                    };
                    p.space();
                    p.eat(b':')?;
                    Some((k, p.literal()?))
                })?;
                Value::Object(pairs.into_iter().collect())
            }
            _ => {
                let word = self.ident()?;
                match word.as_str() {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::Null,
                    n => serde_json::from_str::<serde_json::Number>(n).ok().map(Value::Number)?,
                }
            }
        };
        self.space();
        Some(v)
    }

    /// Comma-separated items up to `close` (a trailing comma allowed).
    fn items<T>(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        loop {
            self.space();
            if self.eat(close).is_some() {
                return Some(out);
            }
            if !out.is_empty() {
                self.eat(b',')?;
                self.space();
                if self.eat(close).is_some() {
                    return Some(out);
                }
            }
            out.push(item(self)?);
        }
    }

    /// A quoted string with Python's common escapes.
    fn string(&mut self, quote: u8) -> Option<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            match c {
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                c if c == quote => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
    }
}

/// Holds back a streamed reply from the first sign of a call, so calls go out whole at the end
/// while plain text streams as it comes.
pub struct ToolStream {
    syntax: Syntax,
    text: String,
    emitted: usize,
    /// A call has begun: everything from `emitted` waits for the end.
    holding: bool,
    /// (Llama JSON) the reply began with text, so it holds no call.
    plain: bool,
}

impl ToolStream {
    pub fn new(syntax: Syntax) -> ToolStream {
        ToolStream { syntax, text: String::new(), emitted: 0, holding: false, plain: false }
    }

    /// Adds generated text; returns the text that can be sent now.
    pub fn push(&mut self, s: &str) -> String {
        self.text.push_str(s);
        if self.holding {
            return String::new();
        }
        let start = self.syntax.start();
        if self.syntax == Syntax::LlamaJson {
            // A call is the whole reply: decide on its first visible character.
            let trimmed = self.text.trim_start();
            let python_tag = "<|python_tag|>";
            if !self.plain {
                if trimmed.is_empty() || python_tag.starts_with(trimmed) {
                    return String::new();
                }
                self.holding = trimmed.starts_with(start) || trimmed.starts_with(python_tag);
                self.plain = !self.holding;
                if self.holding {
                    return String::new();
                }
            }
            let out = self.text[self.emitted..].to_string();
            self.emitted = self.text.len();
            return out;
        }
        let tail = &self.text[self.emitted..];
        if let Some(at) = tail.find(start) {
            self.holding = true;
            let out = tail[..at].to_string();
            self.emitted += at;
            return out;
        }
        // The longest tail that begins the start marker waits for more text.
        let hold = (1..start.len()).rev().find(|&n| tail.ends_with(&start[..n])).unwrap_or(0);
        let end = self.text.len() - hold;
        let out = self.text[self.emitted..end].to_string();
        self.emitted = end;
        out
    }

    /// At the end of the reply: text not yet sent, and the calls.
    pub fn finish(self) -> Reply {
        // Without calls, parse gives the text back as it is.
        parse(self.syntax, &self.text[self.emitted..])
    }
}

/// A request's tool call as the chat templates expect it: OpenAI's arguments string parsed
/// into an object (templates write `arguments | tojson`), as llama.cpp does for them.
pub fn call_for_template(call: &Value) -> Value {
    let mut call = call.clone();
    if let Some(args) = call.pointer_mut("/function/arguments")
        && let Some(parsed) = args.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        *args = parsed;
    }
    call
}

/// `tool_calls` of a response message, with ids `{prefix}_{i}`.
pub fn calls_json(calls: &[ToolCall], prefix: &str) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"id": format!("{prefix}_{i}"), "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall { name: name.into(), arguments: arguments.to_string() }
    }

    #[test]
    fn templates_name_their_syntax() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/chat-templates");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        // The published templates, when fetch-models has extracted them.
        if let Some(t) = read("Qwen-Qwen2.5-7B-Instruct.jinja") {
            assert_eq!(Syntax::of_template(&t), Some(Syntax::Hermes));
        }
        if let Some(t) = read("LFM2-8B-A1B.jinja") {
            assert_eq!(Syntax::of_template(&t), Some(Syntax::Pythonic));
        }
        if let Some(t) = read("meta-llama-Llama-3.2-3B-Instruct.jinja") {
            assert_eq!(Syntax::of_template(&t), Some(Syntax::LlamaJson));
        }
        assert_eq!(Syntax::of_template(crate::template::CHATML), None);
    }

    #[test]
    fn hermes_blocks_become_calls_and_the_rest_content() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        let r = parse(Syntax::Hermes, text);
        assert_eq!(r.content, "Let me check.");
        assert_eq!(r.calls, vec![call("get_weather", json!({"city": "Paris"})), call("get_time", json!({}))]);
        let list = "<tool_call>[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"n\": 1}}]</tool_call>";
        assert_eq!(parse(Syntax::Hermes, list).calls, vec![call("a", json!({})), call("b", json!({"n": 1}))]);
        // Broken or unclosed blocks stay text.
        for bad in [
            "<tool_call>{\"name\": 3}</tool_call>",
            "<tool_call>{\"name\": \"f\", \"arguments\": {}}",
            "no calls",
        ] {
            assert_eq!(parse(Syntax::Hermes, bad), Reply { content: bad.into(), calls: vec![] }, "{bad}");
        }
    }

    #[test]
    fn llama_json_replies_are_one_call() {
        let r =
            parse(Syntax::LlamaJson, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}");
        assert_eq!(
            r,
            Reply { content: String::new(), calls: vec![call("get_weather", json!({"city": "Paris"}))] }
        );
        let r =
            parse(Syntax::LlamaJson, "<|python_tag|>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}");
        assert_eq!(r.calls, vec![call("f", json!({"x": 1}))]);
        let text = "{\"answer\": 42}";
        assert_eq!(parse(Syntax::LlamaJson, text).content, text);
        assert_eq!(parse(Syntax::LlamaJson, "Paris.").calls, vec![]);
    }

    #[test]
    fn pythonic_calls_take_python_literals() {
        let text = "<|tool_call_start|>[get_weather(city=\"Paris\", days=3, metric=True), note(text='it\\'s', tags=['a', \"b\"], extra={'k': None, 'n': -1.5})]<|tool_call_end|>Checking.";
        let r = parse(Syntax::Pythonic, text);
        assert_eq!(r.content, "Checking.");
        assert_eq!(
            r.calls,
            vec![
                call("get_weather", json!({"city": "Paris", "days": 3, "metric": true})),
                call("note", json!({"text": "it's", "tags": ["a", "b"], "extra": {"k": null, "n": -1.5}})),
            ]
        );
        let none = "<|tool_call_start|>[ping()]<|tool_call_end|>";
        assert_eq!(parse(Syntax::Pythonic, none).calls, vec![call("ping", json!({}))]);
        for bad in
            ["<|tool_call_start|>[f(x=)]<|tool_call_end|>", "<|tool_call_start|>f(x=1)<|tool_call_end|>"]
        {
            assert_eq!(parse(Syntax::Pythonic, bad).calls, vec![], "{bad}");
        }
    }

    #[test]
    fn streams_send_text_and_hold_calls_whole() {
        let mut s = ToolStream::new(Syntax::Hermes);
        assert_eq!(s.push("Sure. <tool"), "Sure. ");
        assert_eq!(s.push("_call>\n{\"name\": \"f\", "), "");
        assert_eq!(s.push("\"arguments\": {}}\n</tool_call>"), "");
        assert_eq!(s.finish(), Reply { content: String::new(), calls: vec![call("f", json!({}))] });
        // A marker that never completes is text after all.
        let mut s = ToolStream::new(Syntax::Hermes);
        assert_eq!(s.push("a <tool"), "a ");
        assert_eq!(s.push("box>"), "<toolbox>");
        assert_eq!(s.finish(), Reply::default());
        // A held block that is not a call comes out as text at the end.
        let mut s = ToolStream::new(Syntax::Hermes);
        assert_eq!(s.push("<tool_call>oops"), "");
        assert_eq!(s.finish().content, "<tool_call>oops");

        let mut s = ToolStream::new(Syntax::LlamaJson);
        assert_eq!(s.push("  "), "");
        assert_eq!(s.push("{\"name\": \"f\", \"parameters\": {}}"), "");
        assert_eq!(s.finish().calls, vec![call("f", json!({}))]);
        let mut s = ToolStream::new(Syntax::LlamaJson);
        assert_eq!(s.push(" Paris"), " Paris");
        assert_eq!(s.push(" is {big}"), " is {big}");
        assert_eq!(s.finish(), Reply::default());
    }

    #[test]
    fn request_arguments_reach_templates_as_objects() {
        let c =
            json!({"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}});
        assert_eq!(call_for_template(&c)["function"]["arguments"], json!({"x": 1}));
        let odd = json!({"function": {"name": "f", "arguments": "not json"}});
        assert_eq!(call_for_template(&odd), odd);
        assert_eq!(
            calls_json(&[call("f", json!({"x": 1}))], "call_7"),
            json!([{"id": "call_7_0", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}])
        );
    }
}
