//! Streaming detokenization: token bytes in, only complete UTF-8 out, so a character split
//! across tokens is never printed as two replacement characters.

/// Turns a stream of tokens into text, holding back bytes until they form complete UTF-8.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// Adds a token's bytes; returns whatever complete text is now available.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid (not merely incomplete) bytes: replace them rather than stall forever.
                let s = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return s;
            }
            Err(e) => e.valid_up_to(),
        };
        String::from_utf8(self.pending.drain(..valid).collect()).unwrap_or_default()
    }

    /// Flushes what is left at the end of generation (incomplete sequences become U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_decoder_waits_for_complete_characters() {
        let mut d = StreamDecoder::default();
        let llama = "🦙".as_bytes();
        assert_eq!(d.push(b"a"), "a");
        assert_eq!(d.push(&llama[..2]), "");
        assert_eq!(d.push(&llama[2..]), "🦙");
        assert_eq!(d.push(&[0xff]), "\u{fffd}");
        assert_eq!(d.push(&llama[..1]), "");
        assert_eq!(d.finish(), "\u{fffd}");
    }
}
