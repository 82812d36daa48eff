//! `Hash256`: a SHA-256 digest as a value, not a string.
//!
//! Persisted records (the registry, the kernel store, the evolution log) name
//! content by SHA-256. Holding the digest as 32 bytes means a damaged or
//! hostile record (`"sha256": "abc"`) is refused when it is read, instead of
//! surviving as a string that later code slices.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest. Shown and stored as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// All zeros: the `prev` of the first log entry.
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash256 {
        Hash256(crate::sha256(bytes))
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Hash256> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = digit(bytes[2 * i])? << 4 | digit(bytes[2 * i + 1])?;
        }
        Some(Hash256(out))
    }

    /// The full hex form.
    pub fn to_hex(&self) -> String {
        crate::hex(&self.0)
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        crate::hex(&self.0[..6])
    }

    /// The 32-bit content id (first four bytes).
    pub fn file_id(&self) -> u32 {
        crate::file_id(&self.0)
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

/// Why a string is not a `Hash256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadHash(pub String);

impl fmt::Display for BadHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(80).collect();
        write!(
            f,
            "{shown:?} is not a SHA-256 (64 lowercase hex digits expected)"
        )
    }
}

impl std::error::Error for BadHash {}

impl FromStr for Hash256 {
    type Err = BadHash;

    fn from_str(text: &str) -> Result<Hash256, BadHash> {
        Hash256::parse(text).ok_or_else(|| BadHash(text.to_string()))
    }
}

impl From<[u8; 32]> for Hash256 {
    fn from(bytes: [u8; 32]) -> Hash256 {
        Hash256(bytes)
    }
}

impl serde::Serialize for Hash256 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hash256 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hash256, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Hash256;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-256 as 64 lowercase hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hash256, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_hex() {
        let hash = Hash256::of(b"pxos");
        assert_eq!(Hash256::parse(&hash.to_hex()), Some(hash));
        assert_eq!(hash.short().len(), 12);
        for bad in [
            "abc",
            "",
            &hash.to_hex().to_uppercase(),
            &format!("{hash}0"),
            "Ω".repeat(32).as_str(),
        ] {
            assert_eq!(Hash256::parse(bad), None, "{bad}");
        }
    }
}
