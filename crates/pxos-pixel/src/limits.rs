//! Resource limits for untrusted input.

/// What a decoder will accept. Anything larger is refused with
/// [`crate::Error::LimitExceeded`] before any big allocation or long loop.
///
/// The defaults accept every file this crate writes up to 64 GiB of payload
/// and refuse absurd headers (for example a PNG claiming 100000x100000 pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Widest image accepted, in pixels. Default 16384 (the widest PXI).
    pub max_width: u32,
    /// Tallest image accepted, in pixels. Default 2^24.
    pub max_height: u32,
    /// Largest decoded image accepted (width * height * 4), in bytes. Default 64 GiB.
    pub max_image_bytes: u64,
    /// Largest metadata block accepted, in bytes. Default 16 MiB.
    pub max_metadata_len: u32,
    /// Largest buffer a decoder may hold in memory at once (interlaced PNGs
    /// must be decoded whole; `decode_to_vec` holds the payload). Default 1 GiB.
    pub max_in_memory: usize,
    /// Largest payload a header may declare, in bytes. Default 4 GiB.
    pub max_payload: u64,
    /// Largest ratio between the decoded image size and the file's size,
    /// applied once the decoded size passes [`RATIO_FLOOR`]. Default 200:
    /// real data compresses far less, and deflate's ceiling is about 1032.
    pub max_ratio: u64,
}

/// Decoded sizes up to this many bytes are never refused for their ratio (a
/// highly compressible file of up to 1 GiB, a sparse disk image say, costs a
/// second or so to decode, and its output is checked against the free space). 1 GiB.
pub const RATIO_FLOOR: u64 = 1 << 30;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_width: crate::header::MAX_WIDTH,
            max_height: 1 << 24,
            max_image_bytes: 64 << 30,
            max_metadata_len: 16 << 20,
            max_in_memory: 1 << 30,
            max_payload: 4 << 30,
            max_ratio: 200,
        }
    }
}

impl Limits {
    /// Limits with no practical bound, for trusted files only.
    pub fn unlimited() -> Limits {
        Limits {
            max_width: u32::MAX,
            max_height: u32::MAX,
            max_image_bytes: u64::MAX,
            max_metadata_len: u32::MAX,
            max_in_memory: usize::MAX,
            max_payload: u64::MAX,
            max_ratio: u64::MAX,
        }
    }

    /// Checks image dimensions against these limits.
    pub fn check_dimensions(&self, width: u32, height: u32) -> crate::Result<()> {
        let bytes = u64::from(width) * u64::from(height) * 4;
        if width > self.max_width || height > self.max_height || bytes > self.max_image_bytes {
            return Err(crate::Error::LimitExceeded(format!(
                "image of {width}x{height} pixels exceeds the limits ({}x{} pixels, {} bytes decoded)",
                self.max_width, self.max_height, self.max_image_bytes
            )));
        }
        Ok(())
    }

    /// Checks what a header declares against the file it came from, before
    /// anything is inflated: the payload size, and the ratio of the decoded
    /// image to the file (a decompression bomb declares a huge image in a
    /// small file).
    pub fn check_declared(
        &self,
        payload_len: u64,
        image_bytes: u64,
        file_len: u64,
    ) -> crate::Result<()> {
        if payload_len > self.max_payload {
            return Err(crate::Error::LimitExceeded(format!(
                "the header declares a payload of {payload_len} bytes, over the limit of {} bytes \
                 (raise it with --max-payload BYTES if the file is trusted)",
                self.max_payload
            )));
        }
        if image_bytes > RATIO_FLOOR && image_bytes / file_len.max(1) > self.max_ratio {
            return Err(crate::Error::LimitExceeded(format!(
                "the image decodes to {image_bytes} bytes from a file of {file_len} bytes, \
                 a ratio over the limit of {} (a decompression bomb? raise it with --max-ratio N \
                 if the file is trusted)",
                self.max_ratio
            )));
        }
        Ok(())
    }
}
