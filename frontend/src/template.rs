//! Chat templates: the model's `tokenizer.chat_template` (Jinja) rendered with minijinja the
//! way Hugging Face's `apply_chat_template` renders it with jinja2, or a named fallback.
//!
//! Hugging Face's environment: `trim_blocks` and `lstrip_blocks`, loop controls, Python string
//! methods, `raise_exception`, `strftime_now`, and a `tojson` that does not HTML-escape.

use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

/// One chat message. The tool fields are absent unless set: templates test `'tool_calls' in
/// message`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    /// An assistant's calls, OpenAI's shape with arguments as objects
    /// ([`crate::tools::call_for_template`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
    /// A tool result's call id and tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }
}

/// ChatML, llama.cpp's default when a model carries no template.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A chat template ready to render.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Where the template came from, for `--verbose`.
    pub source: String,
    /// How the template's model writes tool calls.
    pub tool_syntax: Option<crate::tools::Syntax>,
}

impl ChatTemplate {
    /// The model's template, or ChatML when it has none (the source says which). Fails when
    /// the template does not parse.
    pub fn new(template: Option<&str>, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, String> {
        let (text, source) = match template {
            Some(t) => (t.to_string(), "the model's tokenizer.chat_template".to_string()),
            None => (CHATML.to_string(), "ChatML (the model has no tokenizer.chat_template)".to_string()),
        };
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        let tool_syntax = crate::tools::Syntax::of_template(&text);
        env.add_template_owned("chat", text)
            .map_err(|e| format!("the chat template does not parse: {e:#}"))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            source,
            tool_syntax,
        })
    }

    /// Renders `messages`, ending with the assistant's turn opened when `add_generation_prompt`.
    /// `extra` adds variables (Qwen3's `enable_thinking`).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        // Messages keep their fields' order (role, content), as Python dicts do for `tojson`.
        let mut ctx: std::collections::BTreeMap<String, Value> =
            extra.iter().map(|(k, v)| (k.clone(), Value::from_serialize(v))).collect();
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".into(), add_generation_prompt.into());
        ctx.insert("bos_token".into(), self.bos_token.clone().into());
        ctx.insert("eos_token".into(), self.eos_token.clone().into());
        let tmpl = self.env.get_template("chat").map_err(|e| e.to_string())?;
        tmpl.render(Value::from_serialize(&ctx)).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation if e.detail().is_some_and(|d| d.starts_with("template: ")) => {
                format!("the chat template refused the conversation: {}", &e.detail().unwrap_or("")[10..])
            }
            _ => format!("rendering the chat template failed: {e:#}"),
        })
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, format!("template: {message}")))
}

/// The current UTC time through a strftime format (Llama-3.1's template dates its system turn).
fn strftime_now(format: String) -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    strftime_utc(secs, &format)
}

/// The subset of strftime templates use: `%d %b %Y %m %B %H %M %S %y %%`.
pub fn strftime_utc(unix: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (days, rem) = (unix.div_euclid(86400), unix.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let name = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out += &format!("{day:02}"),
            Some('m') => out += &format!("{month:02}"),
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &format!("{:02}", year % 100),
            Some('b') => out += &name[..3],
            Some('B') => out += name,
            Some('H') => out += &format!("{:02}", rem / 3600),
            Some('M') => out += &format!("{:02}", rem / 60 % 60),
            Some('S') => out += &format!("{:02}", rem % 60),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Hugging Face's `tojson`: `json.dumps(x, ensure_ascii=False, indent=indent)`: Python's
/// separators, keys in the template's order, nothing HTML-escaped.
fn tojson(value: Value, positional: Option<usize>, kwargs: minijinja::value::Kwargs) -> Result<Value, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.or(positional);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    python_json(&value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn python_json(v: &Value, indent: Option<usize>, depth: usize, out: &mut String) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    let bad = |e: serde_json::Error| Error::new(ErrorKind::InvalidOperation, e.to_string());
    let (open, close, is_map) = match v.kind() {
        ValueKind::Map => ('{', '}', true),
        ValueKind::Seq | ValueKind::Iterable => ('[', ']', false),
        ValueKind::Undefined | ValueKind::None => {
            out.push_str("null");
            return Ok(());
        }
        ValueKind::String => {
            out.push_str(&serde_json::to_string(v.as_str().unwrap_or("")).map_err(bad)?);
            return Ok(());
        }
        _ => {
            out.push_str(&serde_json::to_string(v).map_err(bad)?);
            return Ok(());
        }
    };
    let items: Vec<Value> = v.try_iter()?.collect();
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        out.push_str(match (i, indent) {
            (0, None) => "",
            (_, None) => ", ",
            (0, Some(_)) => "\n",
            (_, Some(_)) => ",\n",
        });
        if let Some(n) = indent {
            out.push_str(&" ".repeat(n * (depth + 1)));
        }
        if is_map {
            python_json(item, None, 0, out)?;
            out.push_str(": ");
            python_json(&v.get_item(item)?, indent, depth + 1, out)?;
        } else {
            python_json(item, indent, depth + 1, out)?;
        }
    }
    if let (Some(n), false) = (indent, items.is_empty()) {
        out.push('\n');
        out.push_str(&" ".repeat(n * depth));
    }
    out.push(close);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, msgs: &[Message]) -> String {
        ChatTemplate::new(Some(t), "<s>", "</s>").unwrap().render(msgs, true, &Default::default()).unwrap()
    }

    #[test]
    fn chatml_fallback_is_named_and_renders() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        assert!(t.source.contains("ChatML"));
        let out = t.render(&[Message::new("user", "hi")], true, &Default::default()).unwrap();
        assert_eq!(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_is_a_clear_error() {
        let t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}";
        let e = ChatTemplate::new(Some(t), "", "")
            .unwrap()
            .render(&[Message::new("assistant", "x")], true, &Default::default())
            .unwrap_err();
        assert_eq!(e, "the chat template refused the conversation: Conversation roles must alternate");
    }

    #[test]
    fn python_string_methods_and_trimmed_blocks() {
        // As jinja2 renders it: lstrip_blocks strips before block tags only, trim_blocks eats
        // the newline after one.
        let t = "{% for m in messages %}\n  {{ m['content'].strip().upper() }}|{{ m.role.startswith('us') }}\n{% endfor %}";
        assert_eq!(render(t, &[Message::new("user", "  hi ")]), "  HI|True\n");
    }

    #[test]
    fn strftime_covers_the_formats_templates_use() {
        // 2024-07-26 13:05:09 UTC.
        assert_eq!(
            strftime_utc(1_722_000_309, "%d %b %Y %H:%M:%S %B %m %y %%"),
            "26 Jul 2024 13:25:09 July 07 24 %"
        );
        assert_eq!(strftime_utc(0, "%Y-%m-%d"), "1970-01-01");
    }

    #[test]
    fn tojson_writes_like_python() {
        let t = "{{ messages | tojson }}";
        assert_eq!(render(t, &[Message::new("user", "<a>é")]), r#"[{"role": "user", "content": "<a>é"}]"#);
        let t = "{{ messages[0] | tojson(indent=2) }}";
        assert_eq!(
            render(t, &[Message::new("user", "x")]),
            "{\n  \"role\": \"user\",\n  \"content\": \"x\"\n}"
        );
    }

    #[test]
    fn a_broken_template_fails_to_load() {
        let e = ChatTemplate::new(Some("{% for %}"), "", "").err().unwrap();
        assert!(e.starts_with("the chat template does not parse"), "{e}");
    }
}
