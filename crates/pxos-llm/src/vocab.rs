//! The tokenizers of imported models: SentencePiece-style vocabularies with
//! scores (GGUF `tokenizer.ggml.model = "llama"`) and GPT-2-style byte-level
//! BPE with merges (`"gpt2"`), following llama.cpp's behaviour.
//!
//! * SentencePiece: spaces become `▁` (with one in front when the vocabulary
//!   asks for a space prefix), the text splits into characters, and the
//!   adjacent pair whose concatenation is a token with the highest score is
//!   merged first (the leftmost on ties), until no pair is a token. A
//!   character that is not a token becomes its UTF-8 bytes as `<0xXX>` tokens.
//! * Byte-level BPE: the text splits into words by the pre-tokenizer's rules,
//!   each word's bytes map to printable characters (GPT-2's byte table), and
//!   the pair with the lowest merge rank is merged first (leftmost on ties).
//!
//! Special tokens (control and user-defined) written in the text are
//! recognised as themselves, so a chat template's `<|im_start|>` is one token.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// GGUF's token types.
pub const TYPE_NORMAL: i32 = 1;
pub const TYPE_UNKNOWN: i32 = 2;
pub const TYPE_CONTROL: i32 = 3;
pub const TYPE_USER_DEFINED: i32 = 4;
pub const TYPE_UNUSED: i32 = 5;
pub const TYPE_BYTE: i32 = 6;

/// Which algorithm a vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabModel {
    /// SentencePiece-style: scores, `▁` for spaces, byte fallback.
    Spm,
    /// GPT-2-style byte-level BPE with merges.
    Bpe,
}

/// How byte-level BPE splits text into words before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreTokenizer {
    /// GPT-2's pattern: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Llama 3's pattern: case-insensitive contractions, `[^\r\n\p{L}\p{N}]?\p{L}+`,
    /// numbers in groups of up to three, punctuation runs with their newlines,
    /// then whitespace as GPT-2.
    Llama3,
}

/// A vocabulary as stored in a PXI-LLM manifest (from GGUF's `tokenizer.*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabSpec {
    pub model: VocabModel,
    pub tokens: Vec<String>,
    /// One per token for SentencePiece; empty for BPE.
    #[serde(default)]
    pub scores: Vec<f32>,
    /// One per token (GGUF's token types); empty means all normal.
    #[serde(default)]
    pub token_types: Vec<i32>,
    /// `"left right"` pairs in rank order (BPE).
    #[serde(default)]
    pub merges: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<PreTokenizer>,
    pub bos: Option<u32>,
    pub eos: u32,
    /// Extra tokens that end a turn (for instance `<|eot_id|>`, `<|im_end|>`).
    #[serde(default)]
    pub end_of_turn: Vec<u32>,
    pub unknown: Option<u32>,
    pub add_bos: bool,
    /// SentencePiece: put a space in front of the text.
    #[serde(default)]
    pub add_space_prefix: bool,
    /// The Jinja chat template, for instruct models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
}

impl VocabSpec {
    /// Checks the vocabulary against a model's vocabulary size.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        let bad = |m: String| Err(Error::bad_input(format!("tokenizer: {m}")));
        if self.tokens.is_empty() || self.tokens.len() > vocab_size {
            return bad(format!(
                "{} tokens for a model with {vocab_size} output rows",
                self.tokens.len()
            ));
        }
        if self.model == VocabModel::Spm && self.scores.len() != self.tokens.len() {
            return bad(format!(
                "{} scores for {} tokens",
                self.scores.len(),
                self.tokens.len()
            ));
        }
        if !self.token_types.is_empty() && self.token_types.len() != self.tokens.len() {
            return bad(format!(
                "{} token types for {} tokens",
                self.token_types.len(),
                self.tokens.len()
            ));
        }
        let n = self.tokens.len() as u32;
        for (what, id) in [
            ("bos", self.bos),
            ("eos", Some(self.eos)),
            ("unknown", self.unknown),
        ]
        .into_iter()
        .chain(self.end_of_turn.iter().map(|&t| ("end-of-turn", Some(t))))
        {
            if let Some(id) = id
                && id >= n
            {
                return bad(format!("the {what} token {id} is outside the {n} tokens"));
            }
        }
        for merge in &self.merges {
            if merge.split_once(' ').is_none() {
                return bad(format!(
                    "merge {merge:?} is not two tokens separated by a space"
                ));
            }
        }
        Ok(())
    }
}

/// A vocabulary ready to encode and decode.
#[derive(Clone, Debug)]
pub struct Vocab {
    pub spec: VocabSpec,
    ids: HashMap<String, u32>,
    /// BPE: rank of each merge pair, keyed by `(left id, right id)`.
    ranks: HashMap<(u32, u32), u32>,
    /// Specials recognised in text, longest first.
    specials: Vec<(String, u32)>,
    /// What each token decodes to.
    bytes: Vec<Vec<u8>>,
    /// SentencePiece: the `<0xXX>` token of each byte.
    byte_tokens: [Option<u32>; 256],
}

impl Vocab {
    pub fn new(spec: VocabSpec) -> Vocab {
        let mut ids = HashMap::with_capacity(spec.tokens.len());
        for (i, t) in spec.tokens.iter().enumerate() {
            // The first of duplicate spellings wins, as in llama.cpp.
            ids.entry(t.clone()).or_insert(i as u32);
        }
        let ty = |i: usize| spec.token_types.get(i).copied().unwrap_or(TYPE_NORMAL);
        let mut ranks = HashMap::new();
        for (rank, merge) in spec.merges.iter().enumerate() {
            if let Some((l, r)) = merge.split_once(' ')
                && let (Some(&l), Some(&r)) = (ids.get(l), ids.get(r))
            {
                ranks.entry((l, r)).or_insert(rank as u32);
            }
        }
        let mut specials: Vec<(String, u32)> = spec
            .tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| matches!(ty(*i), TYPE_CONTROL | TYPE_USER_DEFINED) && !t.is_empty())
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let unicode_to_byte = byte_decoder();
        let mut byte_tokens = [None; 256];
        let bytes = spec
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match (spec.model, ty(i)) {
                (_, TYPE_CONTROL | TYPE_UNKNOWN | TYPE_UNUSED) => Vec::new(),
                (VocabModel::Spm, TYPE_BYTE) => match parse_byte_token(t) {
                    Some(b) => {
                        byte_tokens[b as usize].get_or_insert(i as u32);
                        vec![b]
                    }
                    None => t.as_bytes().to_vec(),
                },
                (VocabModel::Spm, _) => t.replace('\u{2581}', " ").into_bytes(),
                (VocabModel::Bpe, TYPE_USER_DEFINED) => t.as_bytes().to_vec(),
                (VocabModel::Bpe, _) => t
                    .chars()
                    .map(|c| unicode_to_byte.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| t.as_bytes().to_vec()),
            })
            .collect();
        if spec.model == VocabModel::Spm {
            for (i, t) in spec.tokens.iter().enumerate() {
                if let Some(b) = parse_byte_token(t) {
                    byte_tokens[b as usize].get_or_insert(i as u32);
                }
            }
        }
        Vocab {
            ids,
            ranks,
            specials,
            bytes,
            byte_tokens,
            spec,
        }
    }

    pub fn len(&self) -> usize {
        self.spec.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spec.tokens.is_empty()
    }

    /// The id of a token's exact spelling.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// What `token` decodes to (nothing for control tokens and ids past the end).
    pub fn token_bytes(&self, token: u32) -> &[u8] {
        self.bytes.get(token as usize).map_or(&[], |b| b.as_slice())
    }

    /// `text` as tokens: BOS first when the vocabulary asks for it, special
    /// tokens written in the text recognised as themselves.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        if self.spec.add_bos
            && let Some(bos) = self.spec.bos
        {
            out.push(bos);
        }
        // As llama.cpp: the space prefix goes before text that starts the
        // input or follows a special token.
        let mut after_special = true;
        let mut rest = text;
        while !rest.is_empty() {
            let next = self.next_special(rest);
            let (plain, special) = match next {
                Some((at, len, id)) => (&rest[..at], Some((len, id))),
                None => (rest, None),
            };
            if !plain.is_empty() {
                self.encode_plain(plain, after_special, &mut out);
            }
            after_special = special.is_some();
            match special {
                Some((len, id)) => {
                    // A template that writes BOS itself must not get two.
                    if !(out.len() == 1 && Some(id) == self.spec.bos && out[0] == id) {
                        out.push(id);
                    }
                    rest = &rest[plain.len() + len..];
                }
                None => break,
            }
        }
        out
    }

    /// The earliest special token in `text`: `(byte offset, length, id)`.
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (s, id) in &self.specials {
            if let Some(at) = text.find(s.as_str())
                && best.is_none_or(|(b, len, _)| at < b || (at == b && s.len() > len))
            {
                best = Some((at, s.len(), *id));
            }
        }
        best
    }

    fn encode_plain(&self, text: &str, first: bool, out: &mut Vec<u32>) {
        match self.spec.model {
            VocabModel::Spm => self.encode_spm(text, first, out),
            VocabModel::Bpe => {
                let pre = self.spec.pre.unwrap_or(PreTokenizer::Gpt2);
                for word in split_words(text, pre) {
                    self.encode_bpe_word(word, out);
                }
            }
        }
    }

    fn encode_spm(&self, text: &str, first: bool, out: &mut Vec<u32>) {
        let mut s = String::with_capacity(text.len() + 3);
        if first && self.spec.add_space_prefix {
            s.push('\u{2581}');
        }
        for c in text.chars() {
            s.push(if c == ' ' { '\u{2581}' } else { c });
        }
        let score = |piece: &str| -> Option<f32> {
            self.ids
                .get(piece)
                .map(|&id| self.spec.scores.get(id as usize).copied().unwrap_or(0.0))
        };
        let merged = merge_symbols(&s, |a, b| {
            // Higher score first: order by the negated score.
            score(&s[a.0..b.1]).map(Priority::Score)
        });
        for (start, end) in merged {
            let piece = &s[start..end];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for b in piece.bytes() {
                        match (self.byte_tokens[b as usize], self.spec.unknown) {
                            (Some(id), _) | (None, Some(id)) => out.push(id),
                            (None, None) => {}
                        }
                    }
                }
            }
        }
    }

    fn encode_bpe_word(&self, word: &str, out: &mut Vec<u32>) {
        let table = byte_encoder();
        let mapped: String = word.bytes().map(|b| table[b as usize]).collect();
        // Llama 3's vocabulary takes a whole word that is a token as it is
        // (llama.cpp's `ignore_merges`); GPT-2's always merges.
        if self.spec.pre == Some(PreTokenizer::Llama3)
            && let Some(&id) = self.ids.get(&mapped)
        {
            out.push(id);
            return;
        }
        let merged = merge_symbols(&mapped, |a, b| {
            let l = self.ids.get(&mapped[a.0..a.1])?;
            let r = self.ids.get(&mapped[b.0..b.1])?;
            self.ranks.get(&(*l, *r)).map(|&rank| Priority::Rank(rank))
        });
        for (start, end) in merged {
            let piece = &mapped[start..end];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for c in piece.chars() {
                        let mut buf = [0u8; 4];
                        if let Some(&id) = self.ids.get(c.encode_utf8(&mut buf) as &str) {
                            out.push(id);
                        } else if let Some(unk) = self.spec.unknown {
                            out.push(unk);
                        }
                    }
                }
            }
        }
    }
}

/// Which pair merges first: the highest score (SentencePiece) or the lowest
/// rank (BPE); ties go to the leftmost pair.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Priority {
    Score(f32),
    Rank(u32),
}

impl Priority {
    /// Larger is merged first.
    fn cmp_key(&self, other: &Priority) -> Ordering {
        match (self, other) {
            (Priority::Score(a), Priority::Score(b)) => a.total_cmp(b),
            (Priority::Rank(a), Priority::Rank(b)) => b.cmp(a),
            _ => Ordering::Equal,
        }
    }
}

struct Candidate {
    priority: Priority,
    left: usize,
    right: usize,
    /// The byte length of the pair when queued (stale entries differ).
    len: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp_key(&other.priority)
            .then(other.left.cmp(&self.left))
    }
}

/// Merges the characters of `s` pairwise by `priority` (a pair's byte spans;
/// `None` = cannot merge) and returns the final symbols' byte spans.
fn merge_symbols(
    s: &str,
    priority: impl Fn((usize, usize), (usize, usize)) -> Option<Priority>,
) -> Vec<(usize, usize)> {
    // Symbols as a linked list of byte spans.
    let mut spans: Vec<(usize, usize)> = s
        .char_indices()
        .map(|(i, c)| (i, i + c.len_utf8()))
        .collect();
    let n = spans.len();
    let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
    let mut next: Vec<Option<usize>> = (0..n).map(|i| (i + 1 < n).then_some(i + 1)).collect();
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<Candidate>, spans: &[(usize, usize)], l: usize, r: usize| {
        if let Some(p) = priority(spans[l], spans[r]) {
            heap.push(Candidate {
                priority: p,
                left: l,
                right: r,
                len: spans[r].1 - spans[l].0,
            });
        }
    };
    for i in 1..n {
        push(&mut heap, &spans, i - 1, i);
    }
    while let Some(c) = heap.pop() {
        let (l, r) = (c.left, c.right);
        if !alive[l] || !alive[r] || next[l] != Some(r) || spans[r].1 - spans[l].0 != c.len {
            continue;
        }
        spans[l].1 = spans[r].1;
        alive[r] = false;
        next[l] = next[r];
        if let Some(nn) = next[r] {
            prev[nn] = Some(l);
        }
        if let Some(p) = prev[l] {
            push(&mut heap, &spans, p, l);
        }
        if let Some(nn) = next[l] {
            push(&mut heap, &spans, l, nn);
        }
    }
    let mut out = Vec::new();
    let mut at = if n > 0 { Some(0) } else { None };
    while let Some(i) = at {
        out.push(spans[i]);
        at = next[i];
    }
    out
}

fn parse_byte_token(t: &str) -> Option<u8> {
    let hex = t.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2's table from bytes to printable characters.
fn byte_encoder() -> &'static [char; 256] {
    static TABLE: std::sync::OnceLock<[char; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut extra = 0u32;
        for b in 0..=255u32 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            table[b as usize] = if printable {
                char::from_u32(b).expect("a Latin-1 character")
            } else {
                extra += 1;
                char::from_u32(255 + extra).expect("a Latin Extended character")
            };
        }
        table
    })
}

fn byte_decoder() -> HashMap<char, u8> {
    byte_encoder()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic()
}

fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// Splits text into the words byte-level BPE merges within.
pub fn split_words(text: &str, pre: PreTokenizer) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| if i < n { chars[i].0 } else { text.len() };
    let mut words = Vec::new();
    let mut i = 0;
    while i < n {
        let start = i;
        let c = chars[i].1;
        // Contractions.
        if c == '\'' {
            let rest: String = chars[i + 1..(i + 3).min(n)].iter().map(|x| x.1).collect();
            let rest_cmp = if pre == PreTokenizer::Llama3 {
                rest.to_lowercase()
            } else {
                rest.clone()
            };
            let len = ["re", "ve", "ll"]
                .iter()
                .find(|s| rest_cmp.starts_with(*s))
                .map(|_| 2)
                .or_else(|| {
                    ["s", "t", "m", "d"]
                        .iter()
                        .find(|s| rest_cmp.starts_with(*s))
                        .map(|_| 1)
                });
            if let Some(len) = len {
                i += 1 + len;
                words.push(&text[at(start)..at(i)]);
                continue;
            }
        }
        let j = match pre {
            PreTokenizer::Gpt2 => {
                let lead = usize::from(c == ' ' && i + 1 < n);
                let k = i + lead;
                let d = chars.get(k).map(|x| x.1);
                match d {
                    Some(d) if is_letter(d) => run(&chars, k, is_letter),
                    Some(d) if is_number(d) => run(&chars, k, is_number),
                    Some(d) if !d.is_whitespace() => run(&chars, k, |x| {
                        !x.is_whitespace() && !is_letter(x) && !is_number(x)
                    }),
                    _ => whitespace(&chars, i),
                }
            }
            PreTokenizer::Llama3 => {
                let d = chars.get(i + 1).map(|x| x.1);
                if is_letter(c) {
                    run(&chars, i, is_letter)
                } else if !matches!(c, '\r' | '\n') && !is_number(c) && d.is_some_and(is_letter) {
                    run(&chars, i + 1, is_letter)
                } else if is_number(c) {
                    (i + 3).min(run(&chars, i, is_number))
                } else {
                    let lead = usize::from(c == ' ' && i + 1 < n);
                    let k = i + lead;
                    let punct = |x: char| !x.is_whitespace() && !is_letter(x) && !is_number(x);
                    if chars.get(k).is_some_and(|x| punct(x.1)) {
                        run(&chars, run(&chars, k, punct), |x| matches!(x, '\r' | '\n'))
                    } else {
                        // \s*[\r\n]+ first, then GPT-2's whitespace rules.
                        let ws_end = run(&chars, i, char::is_whitespace);
                        let last_newline = (i..ws_end)
                            .rev()
                            .find(|&k| matches!(chars[k].1, '\r' | '\n'));
                        match last_newline {
                            Some(k) => k + 1,
                            None => whitespace(&chars, i),
                        }
                    }
                }
            }
        };
        let j = j.max(i + 1);
        words.push(&text[at(start)..at(j)]);
        i = j;
    }
    words
}

/// The end of the run of characters from `i` that satisfy `f`.
fn run(chars: &[(usize, char)], mut i: usize, f: impl Fn(char) -> bool) -> usize {
    while i < chars.len() && f(chars[i].1) {
        i += 1;
    }
    i
}

/// `\s+(?!\S)|\s+`: a whitespace run, leaving its last character to the next
/// word when a non-space follows.
fn whitespace(chars: &[(usize, char)], i: usize) -> usize {
    let end = run(chars, i, char::is_whitespace);
    if end < chars.len() && end - i > 1 {
        end - 1
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_split_matches_the_regex_on_known_cases() {
        let words = split_words("Hello world's  end 123abc!!\n\n x", PreTokenizer::Gpt2);
        assert_eq!(
            words,
            [
                "Hello", " world", "'s", " ", " end", " 123", "abc", "!!", "\n\n", " x"
            ]
        );
        let words = split_words("I'M fine 12345, ok.\n\nYes", PreTokenizer::Llama3);
        assert_eq!(
            words,
            [
                "I", "'M", " fine", " ", "123", "45", ",", " ok", ".\n\n", "Yes"
            ]
        );
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_encoder();
        let set: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(t[b' ' as usize], '\u{120}');
        assert_eq!(t[b'a' as usize], 'a');
    }

    fn spm() -> Vocab {
        let tokens = [
            "<unk>",
            "<s>",
            "</s>",
            "\u{2581}",
            "a",
            "b",
            "ab",
            "\u{2581}ab",
            "<0xC3>",
            "<0xA9>",
        ];
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -0.5, -0.1, 0.0, 0.0];
        let types = [2, 3, 3, 1, 1, 1, 1, 1, 6, 6];
        Vocab::new(VocabSpec {
            model: VocabModel::Spm,
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
            scores: scores.to_vec(),
            token_types: types.to_vec(),
            merges: vec![],
            pre: None,
            bos: Some(1),
            eos: 2,
            end_of_turn: vec![],
            unknown: Some(0),
            add_bos: true,
            add_space_prefix: true,
            chat_template: None,
        })
    }

    #[test]
    fn spm_merges_by_score_and_falls_back_to_bytes() {
        let v = spm();
        assert_eq!(v.encode("ab"), [1, 7]);
        assert_eq!(v.encode("ab é"), [1, 7, 3, 8, 9]);
        assert_eq!(v.encode("<s>ab"), [1, 7]);
        assert_eq!(v.encode("a</s>b"), [1, 3, 4, 2, 3, 5]);
        let text: Vec<u8> = v
            .encode("ab é")
            .iter()
            .flat_map(|&t| v.token_bytes(t).to_vec())
            .collect();
        assert_eq!(text, " ab é".as_bytes());
    }
}
