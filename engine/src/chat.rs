//! Chat templates by recognition: the model's `tokenizer.chat_template` (Jinja) is matched
//! against the common formats and the single user turn is formatted the same way.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    ChatMl,
    Llama2,
    Zephyr,
}

impl ChatFormat {
    /// Recognizes a template; the error names what was found so users can report it.
    pub fn recognize(template: Option<&str>) -> Result<ChatFormat, String> {
        let Some(t) = template else {
            return Err("the model has no tokenizer.chat_template; run without --chat".into());
        };
        if t.contains("<|im_start|>") {
            Ok(ChatFormat::ChatMl)
        } else if t.contains("<|user|>") && t.contains("<|assistant|>") {
            Ok(ChatFormat::Zephyr)
        } else if t.contains("[INST]") {
            Ok(ChatFormat::Llama2)
        } else {
            let head: String = t.chars().take(60).collect();
            Err(format!(
                "unrecognized chat template (starts {head:?}); hartlm knows ChatML, Llama-2 and Zephyr; run without --chat"
            ))
        }
    }

    /// The prompt text for one user message, ready for the assistant's reply. The tokenizer
    /// adds BOS where the model wants it.
    pub fn format(self, user: &str) -> String {
        match self {
            ChatFormat::ChatMl => format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"),
            ChatFormat::Llama2 => format!("[INST] {user} [/INST]"),
            ChatFormat::Zephyr => format!("<|user|>\n{user}</s>\n<|assistant|>\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_common_templates_and_refuses_others() {
        let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
        assert_eq!(ChatFormat::recognize(Some(chatml)), Ok(ChatFormat::ChatMl));
        assert_eq!(
            ChatFormat::recognize(Some("{{ bos_token }}[INST] {{ m }} [/INST]")),
            Ok(ChatFormat::Llama2)
        );
        assert_eq!(ChatFormat::recognize(Some("<|user|>\n{{m}}</s><|assistant|>")), Ok(ChatFormat::Zephyr));
        assert!(ChatFormat::recognize(Some("<start_of_turn>user")).unwrap_err().contains("unrecognized"));
        assert!(ChatFormat::recognize(None).unwrap_err().contains("no tokenizer.chat_template"));
        assert_eq!(
            ChatFormat::ChatMl.format("hi"),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
