//! The few raw PNG/zlib primitives the PXI writer and the random-access reader need.

use std::io::{Read, Write};

use crate::error::{Error, Result};

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Writes one chunk: length, type, data, CRC-32 of type and data.
pub fn write_chunk<W: Write>(out: &mut W, kind: &[u8; 4], data: &[u8]) -> Result<()> {
    let len =
        u32::try_from(data.len()).map_err(|_| Error::Usage("chunk larger than 4 GiB".into()))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.write_all(&len.to_be_bytes())?;
    out.write_all(kind)?;
    out.write_all(data)?;
    out.write_all(&crc.finalize().to_be_bytes())?;
    Ok(())
}

/// Reads one chunk whose data length must not exceed `max_len`, checking its CRC.
pub fn read_chunk<R: Read>(input: &mut R, max_len: usize) -> Result<([u8; 4], Vec<u8>)> {
    let mut head = [0u8; 8];
    input.read_exact(&mut head)?;
    let len = u32::from_be_bytes(head[0..4].try_into().unwrap()) as usize;
    let kind: [u8; 4] = head[4..8].try_into().unwrap();
    if len > max_len {
        return Err(Error::format(format!(
            "chunk {} claims {len} bytes, more than the {max_len} expected",
            String::from_utf8_lossy(&kind)
        )));
    }
    let mut data = vec![0u8; len];
    input.read_exact(&mut data)?;
    let mut crc_bytes = [0u8; 4];
    input.read_exact(&mut crc_bytes)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&kind);
    crc.update(&data);
    if crc.finalize() != u32::from_be_bytes(crc_bytes) {
        return Err(Error::format(format!(
            "chunk {} has a bad CRC (the file is damaged)",
            String::from_utf8_lossy(&kind)
        )));
    }
    Ok((kind, data))
}

/// The Adler-32 of `a ++ b` from the Adler-32s of `a` and `b` (zlib's `adler32_combine`).
pub fn adler32_combine(adler_a: u32, adler_b: u32, len_b: u64) -> u32 {
    const BASE: u64 = 65521;
    let rem = len_b % BASE;
    let a1 = u64::from(adler_a & 0xffff);
    let a2 = u64::from(adler_a >> 16);
    let b1 = u64::from(adler_b & 0xffff);
    let b2 = u64::from(adler_b >> 16);
    let sum1 = (a1 + b1 + BASE - 1) % BASE;
    let sum2 = (rem * a1 % BASE + a2 + b2 + BASE - rem) % BASE;
    (sum1 | (sum2 << 16)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adler(data: &[u8]) -> u32 {
        let mut a = simd_adler32::Adler32::new();
        a.write(data);
        a.finish()
    }

    #[test]
    fn adler_combine_matches_direct() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 65520, 65521, 65522, 100_000, 200_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                adler32_combine(adler(a), adler(b), b.len() as u64),
                adler(&data),
                "split {split}"
            );
        }
    }
}
