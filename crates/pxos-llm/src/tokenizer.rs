//! Tokenizers: text to token ids and back, streaming.

use crate::format::TokenizerSpec;
use crate::vocab::Vocab;

#[derive(Clone, Debug)]
enum Kind {
    Spec(TokenizerSpec),
    /// An imported vocabulary.
    Vocab(Box<Vocab>),
    /// The seed v0 tokenizer: each code point `c` is `c % vocab`; ids below
    /// 128 decode as ASCII, others as `?`. No BOS, no EOS.
    SeedV0 {
        vocab: u32,
    },
}

/// A tokenizer built from a manifest's spec.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    kind: Kind,
}

impl Tokenizer {
    pub fn new(spec: TokenizerSpec) -> Tokenizer {
        let kind = match spec {
            TokenizerSpec::Vocab(v) => Kind::Vocab(Box::new(Vocab::new(v))),
            spec => Kind::Spec(spec),
        };
        Tokenizer { kind }
    }

    /// The imported vocabulary, if this is one.
    pub fn vocab(&self) -> Option<&Vocab> {
        match &self.kind {
            Kind::Vocab(v) => Some(v),
            _ => None,
        }
    }

    /// Whether `token` ends generation: end-of-sequence or end-of-turn.
    pub fn is_end(&self, token: u32) -> bool {
        match &self.kind {
            Kind::Vocab(v) => token == v.spec.eos || v.spec.end_of_turn.contains(&token),
            _ => token == self.eos(),
        }
    }

    pub fn seed_v0(vocab: u32) -> Tokenizer {
        Tokenizer {
            kind: Kind::SeedV0 {
                vocab: vocab.max(1),
            },
        }
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> u32 {
        match &self.kind {
            Kind::Spec(TokenizerSpec::Bytes { bos, .. }) => *bos,
            Kind::Vocab(v) => v.spec.bos.unwrap_or(u32::MAX),
            Kind::Spec(TokenizerSpec::Vocab(_)) => unreachable!("built as Kind::Vocab"),
            Kind::SeedV0 { .. } => u32::MAX,
        }
    }

    /// Whether the vocabulary has a beginning-of-sequence token.
    pub fn has_bos(&self) -> bool {
        match &self.kind {
            Kind::Vocab(v) => v.spec.bos.is_some(),
            Kind::Spec(TokenizerSpec::Bytes { .. }) => true,
            _ => false,
        }
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> u32 {
        match &self.kind {
            Kind::Spec(TokenizerSpec::Bytes { eos, .. }) => *eos,
            Kind::Vocab(v) => v.spec.eos,
            Kind::Spec(TokenizerSpec::Vocab(_)) => unreachable!("built as Kind::Vocab"),
            Kind::SeedV0 { .. } => u32::MAX,
        }
    }

    /// `text` as tokens, after the beginning-of-sequence token (if the tokenizer has one).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.kind {
            Kind::Vocab(ref v) => v.encode(text),
            Kind::Spec(TokenizerSpec::Vocab(_)) => unreachable!("built as Kind::Vocab"),
            Kind::Spec(TokenizerSpec::Bytes { bos, .. }) => std::iter::once(bos)
                .chain(text.bytes().map(u32::from))
                .collect(),
            // An empty prompt would pool nothing: start from a space.
            Kind::SeedV0 { vocab } if text.is_empty() => vec![' ' as u32 % vocab],
            Kind::SeedV0 { vocab } => text.chars().map(|c| c as u32 % vocab).collect(),
        }
    }

    /// The bytes a token stands for (none for special tokens).
    pub fn token_bytes(&self, token: u32) -> &[u8] {
        match self.kind {
            Kind::Vocab(ref v) => v.token_bytes(token),
            Kind::Spec(TokenizerSpec::Vocab(_)) => unreachable!("built as Kind::Vocab"),
            Kind::Spec(TokenizerSpec::Bytes { .. }) | Kind::SeedV0 { .. } if token < 128 => {
                &BYTES[token as usize..][..1]
            }
            Kind::Spec(TokenizerSpec::Bytes { .. }) if token < 256 => &BYTES[token as usize..][..1],
            Kind::Spec(TokenizerSpec::Bytes { .. }) => &[],
            Kind::SeedV0 { .. } => b"?",
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
