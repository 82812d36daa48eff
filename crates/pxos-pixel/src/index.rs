//! The `pxIX` random-access index chunk.
//!
//! An ancillary, private, unsafe-to-copy chunk written just before `IEND`.
//! It lists the file offset and length of the IDAT chunk that holds each data
//! band, so a reader can inflate only the bands it needs. Its last four bytes
//! repeat its data length, so a reader finds it from the end of the file.
//! A tool that rewrites the image drops it (or leaves it stale); readers then
//! fall back to sequential decoding.

use crate::error::{Error, Result};

/// Magic at the start of the index data.
pub const INDEX_MAGIC: [u8; 4] = *b"PXIX";
const FIXED_LEN: usize = 4 + 4 + 4 + 8 + 8 + 32;
const ENTRY_LEN: usize = 12;

/// Where one band's compressed data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BandEntry {
    /// File offset of the band's IDAT chunk (its length field).
    pub chunk_offset: u64,
    /// Data length of that chunk.
    pub chunk_len: u32,
}

/// The decoded index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Data rows per band (must match the header).
    pub band_rows: u32,
    /// File offset of the header band's IDAT chunk.
    pub header_chunk_offset: u64,
    /// The payload hash (ties the index to the content it indexes).
    pub sha256: [u8; 32],
    /// One entry per data band.
    pub entries: Vec<BandEntry>,
}

impl Index {
    /// Serializes the chunk data, footer included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let total = FIXED_LEN + ENTRY_LEN * self.entries.len() + 4;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&self.band_rows.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.header_chunk_offset.to_le_bytes());
        out.extend_from_slice(&self.sha256);
        for entry in &self.entries {
            out.extend_from_slice(&entry.chunk_offset.to_le_bytes());
            out.extend_from_slice(&entry.chunk_len.to_le_bytes());
        }
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out
    }

    /// Parses chunk data, checking every length and that offsets increase
    /// and stay below `file_len`.
    pub fn parse(data: &[u8], file_len: u64) -> Result<Index> {
        if data.len() < FIXED_LEN + 4 || data[0..4] != INDEX_MAGIC || data[4] != 1 {
            return Err(Error::format("pxIX index chunk is malformed"));
        }
        let band_rows = u32::from_le_bytes(data[8..12].try_into().unwrap());
        let count = u64::from_le_bytes(data[12..20].try_into().unwrap());
        let expected = (count as u128) * ENTRY_LEN as u128 + FIXED_LEN as u128 + 4;
        if expected != data.len() as u128 {
            return Err(Error::format(
                "pxIX index length does not match its entry count",
            ));
        }
        let header_chunk_offset = u64::from_le_bytes(data[20..28].try_into().unwrap());
        let sha256 = data[28..60].try_into().unwrap();
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous_end = header_chunk_offset;
        for raw in data[FIXED_LEN..data.len() - 4].chunks_exact(ENTRY_LEN) {
            let entry = BandEntry {
                chunk_offset: u64::from_le_bytes(raw[0..8].try_into().unwrap()),
                chunk_len: u32::from_le_bytes(raw[8..12].try_into().unwrap()),
            };
            let end = entry
                .chunk_offset
                .checked_add(u64::from(entry.chunk_len) + 12);
            if entry.chunk_offset <= previous_end && !entries.is_empty()
                || end.is_none_or(|end| end > file_len)
            {
                return Err(Error::format("pxIX index entry points outside the file"));
            }
            previous_end = entry.chunk_offset;
            entries.push(entry);
        }
        Ok(Index {
            band_rows,
            header_chunk_offset,
            sha256,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        let index = Index {
            band_rows: 10,
            header_chunk_offset: 47,
            sha256: [3; 32],
            entries: vec![
                BandEntry {
                    chunk_offset: 100,
                    chunk_len: 5,
                },
                BandEntry {
                    chunk_offset: 200,
                    chunk_len: 7,
                },
            ],
        };
        assert_eq!(Index::parse(&index.to_bytes(), 1000).unwrap(), index);
        assert!(Index::parse(&index.to_bytes(), 150).is_err());
        let bytes = index.to_bytes();
        assert!(Index::parse(&bytes[..bytes.len() - 1], 1000).is_err());
    }
}
