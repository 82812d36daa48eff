//! Remote pixels by URL and hash (seed 003): a PXI on a remote read by
//! ranged GETs, so a small read of a large image fetches the PNG header,
//! the index at its tail and the bands the read touches, not the file.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::client::Remote;
use crate::config::Remotes;
use crate::error::{Error, Result};

/// A remote object as a file: ranged GETs of whole `block`-byte blocks,
/// up to 64 kept. A read that needs several missing blocks fetches them in
/// one GET; opening fetches the first and the last block together (a PXI's
/// header is at the start, its index at the end).
pub struct RemoteFile {
    remote: std::sync::Arc<Remote>,
    rel: String,
    len: u64,
    pos: u64,
    block: u64,
    cache: std::collections::BTreeMap<u64, Vec<u8>>,
    /// Blocks in the order they were fetched (for eviction).
    order: std::collections::VecDeque<u64>,
    /// Bytes fetched so far.
    pub fetched: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const CACHED_BLOCKS: usize = 64;
/// Blocks fetched at least, from a missing one on (and at each end on open).
const READAHEAD: u64 = 4;
/// The most one read fetches at once.
const MAX_SPAN: u64 = 16 << 20;

impl RemoteFile {
    pub fn open(remote: std::sync::Arc<Remote>, rel: &str, block: u64) -> Result<RemoteFile> {
        let len = remote.head(rel)?.ok_or_else(|| {
            Error::NotFound(format!("remote {:?} has no {rel}", remote.config.name))
        })?;
        let mut file = RemoteFile {
            remote,
            rel: rel.to_string(),
            len,
            pos: 0,
            block,
            cache: Default::default(),
            order: Default::default(),
            fetched: Default::default(),
        };
        let last = len.saturating_sub(1) / block;
        let mut ends: Vec<u64> = (0..READAHEAD.min(last + 1))
            .chain(last.saturating_sub(READAHEAD - 1)..=last)
            .collect();
        ends.sort_unstable();
        ends.dedup();
        if len > 0 {
            file.fetch_blocks(&ends)?;
        }
        Ok(file)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fetches `blocks` (sorted), one GET per run of adjacent ones, the runs together.
    fn fetch_blocks(&mut self, blocks: &[u64]) -> Result<()> {
        let mut runs: Vec<std::ops::Range<u64>> = Vec::new();
        for &b in blocks {
            match runs.last_mut() {
                Some(run) if run.end == b => run.end = b + 1,
                _ => runs.push(b..b + 1),
            }
        }
        let ranges: Vec<std::ops::Range<u64>> = runs
            .iter()
            .map(|run| run.start * self.block..(run.end * self.block).min(self.len))
            .collect();
        let bodies = self.remote.get_ranges(&self.rel, &ranges)?;
        for (run, body) in runs.into_iter().zip(bodies) {
            self.fetched
                .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
            for (i, b) in run.enumerate() {
                let from = i * self.block as usize;
                let to = (from + self.block as usize).min(body.len());
                self.cache.insert(b, body[from..to].to_vec());
                self.order.push_back(b);
            }
        }
        while self.cache.len() > CACHED_BLOCKS {
            if let Some(old) = self.order.pop_front() {
                self.cache.remove(&old);
            }
        }
        Ok(())
    }
}

impl Read for RemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = (self.pos + buf.len() as u64)
            .min(self.len)
            .min(self.pos + MAX_SPAN);
        let (first, last) = (self.pos / self.block, (end - 1) / self.block);
        let mut missing: Vec<u64> = (first..=last)
            .filter(|b| !self.cache.contains_key(b))
            .collect();
        if !missing.is_empty() {
            // Read ahead: a chunk's data follows its 8-byte header.
            let final_block = (self.len - 1) / self.block;
            let ahead = (last + 1..=(first + READAHEAD - 1).min(final_block))
                .filter(|b| !self.cache.contains_key(b));
            missing.extend(ahead);
        }
        if !missing.is_empty() {
            self.fetch_blocks(&missing).map_err(std::io::Error::other)?;
        }
        let mut done = 0;
        while self.pos < end {
            let b = self.pos / self.block;
            let Some(block) = self.cache.get(&b) else {
                break;
            };
            let within = (self.pos - b * self.block) as usize;
            let n = (block.len() - within).min((end - self.pos) as usize);
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }
}

impl Seek for RemoteFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// True when `text` is a URL a pixel command reads through a remote.
pub fn is_url(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("https://") || text.starts_with("http://")
}

/// Opens the remote whose URL holds `url` (one the user added: nothing
/// else is contacted) and returns it with the object's key below it.
pub fn open_url(home: &Path, url: &str) -> Result<(Remote, String)> {
    let remotes = Remotes::load(home)?;
    let Some(config) = remotes.covering(url) else {
        return Err(Error::Refused(format!(
            "{url} is not under any remote this home added, and pxOS contacts no other host: \
             `pxos remote add NAME URL` first"
        )));
    };
    let base = config.url.trim_end_matches('/');
    let rel = match url.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
        Some(rel) => rel.to_string(),
        // A bucket-wide S3 remote: the key is everything after the bucket.
        None => url
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .map(|(_, key)| key.to_string())
            .unwrap_or_default(),
    };
    if rel.is_empty() {
        return Err(Error::Usage(format!(
            "{url} names a remote, not an image in it"
        )));
    }
    let remote = Remote::connect(home, config.clone())?;
    Ok((remote, rel))
}
