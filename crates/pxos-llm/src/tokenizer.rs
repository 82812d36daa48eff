//! Tokenizers: text to token ids and back, streaming.

use crate::format::TokenizerSpec;

/// A tokenizer built from a manifest's spec.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    spec: TokenizerSpec,
}

impl Tokenizer {
    pub fn new(spec: TokenizerSpec) -> Tokenizer {
        Tokenizer { spec }
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> u32 {
        match self.spec {
            TokenizerSpec::Bytes { bos, .. } => bos,
        }
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> u32 {
        match self.spec {
            TokenizerSpec::Bytes { eos, .. } => eos,
        }
    }

    /// `text` as tokens, after the beginning-of-sequence token.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.spec {
            TokenizerSpec::Bytes { bos, .. } => std::iter::once(bos)
                .chain(text.bytes().map(u32::from))
                .collect(),
        }
    }

    /// The bytes a token stands for (none for special tokens).
    pub fn token_bytes(&self, token: u32) -> &'static [u8] {
        match self.spec {
            TokenizerSpec::Bytes { .. } if token < 256 => &BYTES[token as usize..][..1],
            TokenizerSpec::Bytes { .. } => &[],
        }
    }

    /// A decoder that turns tokens into whole UTF-8 characters as they arrive.
    pub fn stream(&self) -> TextStream<'_> {
        TextStream {
            tokenizer: self,
            pending: Vec::new(),
        }
    }
}

static BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// Turns a stream of tokens into text, holding back a UTF-8 character until
/// all its bytes have arrived; bytes that can never be valid become U+FFFD.
pub struct TextStream<'t> {
    tokenizer: &'t Tokenizer,
    pending: Vec<u8>,
}

impl TextStream<'_> {
    /// The text that `token` completes (often empty mid-character).
    pub fn push(&mut self, token: u32) -> String {
        self.pending
            .extend_from_slice(self.tokenizer.token_bytes(token));
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[..valid]).expect("valid prefix"),
                    );
                    match err.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is held back at the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_stream_whole_characters() {
        let t = Tokenizer::new(TokenizerSpec::Bytes { bos: 256, eos: 257 });
        let tokens = t.encode("pxOS é");
        assert_eq!(tokens[0], 256);
        assert_eq!(tokens.len(), 1 + "pxOS é".len());
        let mut stream = t.stream();
        let pieces: Vec<String> = tokens.iter().map(|&tok| stream.push(tok)).collect();
        assert_eq!(pieces.concat(), "pxOS é");
        // The two bytes of é arrive as one piece, on the second byte.
        assert_eq!(pieces[pieces.len() - 2], "");
        assert_eq!(pieces[pieces.len() - 1], "é");
        assert_eq!(stream.push(0xFF), "\u{FFFD}");
        assert_eq!(stream.push(0xC3), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }
}
