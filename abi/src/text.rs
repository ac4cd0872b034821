//! What the launcher and the engines print that came from outside: model strings, file contents,
//! paths. Control characters are escaped so such text can neither move the cursor nor add lines.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1, and the bidi overrides) written as an escape
/// (`\n`, `\t`, `\e`, `\u{202e}`); everything else is unchanged. Backslashes stay as they are.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert!(matches!(escape_controls("llama 3.2 é"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\nb\x1b[2Jc\u{7f}\u{9b}"), "a\\nb\\e[2Jc\\u{7f}\\u{9b}");
        assert_eq!(escape_controls("x\u{202e}y\r\t"), "x\\u{202e}y\\r\\t");
        assert_eq!(escape_controls("a\nb").lines().count(), 1);
    }
}
