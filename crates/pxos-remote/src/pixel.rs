//! Remote pixels by URL and hash (seed 003): a PXI on a remote read by
//! ranged GETs, so a small read of a large image fetches the PNG header,
//! the index at its tail and the bands the read touches, not the file.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::client::Remote;
use crate::config::Remotes;
use crate::error::{Error, Result};

/// A remote object as a file: ranged GETs of `block` bytes, a few kept.
pub struct RemoteFile {
    remote: std::sync::Arc<Remote>,
    rel: String,
    len: u64,
    pos: u64,
    block: u64,
    cache: Vec<(u64, Vec<u8>)>,
    /// Bytes fetched so far.
    pub fetched: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const CACHED_BLOCKS: usize = 8;

impl RemoteFile {
    pub fn open(remote: std::sync::Arc<Remote>, rel: &str, block: u64) -> Result<RemoteFile> {
        let len = remote.head(rel)?.ok_or_else(|| {
            Error::NotFound(format!("remote {:?} has no {rel}", remote.config.name))
        })?;
        Ok(RemoteFile {
            remote,
            rel: rel.to_string(),
            len,
            pos: 0,
            block,
            cache: Vec::new(),
            fetched: Default::default(),
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block(&mut self, index: u64) -> std::io::Result<&[u8]> {
        if let Some(at) = self.cache.iter().position(|(i, _)| *i == index) {
            let entry = self.cache.remove(at);
            self.cache.push(entry);
        } else {
            let start = index * self.block;
            let end = (start + self.block).min(self.len);
            let bytes = self
                .remote
                .get_range(&self.rel, start..end)
                .map_err(std::io::Error::other)?;
            self.fetched
                .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if self.cache.len() == CACHED_BLOCKS {
                self.cache.remove(0);
            }
            self.cache.push((index, bytes));
        }
        Ok(&self.cache.last().expect("just cached").1)
    }
}

impl Read for RemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let (index, within) = (self.pos / self.block, (self.pos % self.block) as usize);
        let block = self.block(index)?;
        let take = (block.len() - within).min(buf.len());
        buf[..take].copy_from_slice(&block[within..within + take]);
        self.pos += take as u64;
        Ok(take)
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
