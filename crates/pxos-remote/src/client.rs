//! One open remote: an `object_store` client (S3 with SigV4, or plain
//! HTTP(S) for read-only remotes) whose every request passes through the
//! network log, with timeouts and a few retries, driven from synchronous
//! code through its own Tokio runtime.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::http::{HttpBuilder, HttpStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};

use crate::config::{self, Location, RemoteConfig};
use crate::error::{Error, Result};
use crate::netlog::{NetLog, NetRecord, redact};

/// Bytes in one part of a multipart upload, and in one ranged GET of a
/// download: 16 MiB, or `PXOS_REMOTE_PART_MIB` (5 to 1024; S3's smallest
/// part is 5 MiB).
pub fn part_size() -> u64 {
    std::env::var("PXOS_REMOTE_PART_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|mib| (5..=1024).contains(mib))
        .unwrap_or(16)
        << 20
}
/// Objects at most this big are sent in one PUT (larger ones go in parts).
pub const SINGLE_PUT_MAX: u64 = 16 << 20;
/// Every this many parts, the crash point `remote-upload.part-batch` (tests
/// interrupt an upload there).
const PART_BATCH: usize = 4;
/// Requests in flight at once.
pub const CONCURRENCY: usize = 8;

/// The request timeout: `PXOS_REMOTE_TIMEOUT` seconds, 30 by default. A
/// server that stalls fails the request after this long (then two retries).
pub fn timeout() -> Duration {
    let seconds = std::env::var("PXOS_REMOTE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0 && *s < 86_400.0)
        .unwrap_or(30.0);
    Duration::from_secs_f64(seconds)
}

#[derive(Debug)]
struct LoggingConnector {
    log: Arc<NetLog>,
    remote: String,
}

impl HttpConnector for LoggingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(LoggingService {
            inner,
            log: self.log.clone(),
            remote: self.remote.clone(),
        }))
    }
}

#[derive(Debug)]
struct LoggingService {
    inner: HttpClient,
    log: Arc<NetLog>,
    remote: String,
}

#[async_trait]
impl HttpService for LoggingService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = req.method().to_string();
        let url = redact(&req.uri().to_string());
        let sent = req.body().content_length() as u64;
        let time = pxos_fs::time::now_rfc3339();
        let started = Instant::now();
        let result = self.inner.execute(req).await;
        let (status, received, error) = match &result {
            Ok(response) => (
                Some(response.status().as_u16()),
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
                None,
            ),
            Err(err) => (None, None, Some(err.to_string())),
        };
        self.log.record(&NetRecord {
            time,
            remote: self.remote.clone(),
            method,
            url,
            sent,
            received,
            status,
            ms: started.elapsed().as_millis() as u64,
            error,
        });
        result
    }
}

enum Backend {
    S3(Arc<AmazonS3>),
    Http(Arc<HttpStore>),
}

/// An object a listing found.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The key below the remote's prefix.
    pub rel: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// An open remote.
pub struct Remote {
    pub config: RemoteConfig,
    backend: Backend,
    /// The key prefix (`PREFIX/` or empty).
    prefix: String,
    runtime: tokio::runtime::Runtime,
    log: Arc<NetLog>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.log.sync();
    }
}

/// A multipart upload under way, kept so an interrupted push resumes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadState {
    key: String,
    upload_id: String,
    size: u64,
    part: u64,
    /// ETags of the parts sent, in order.
    parts: Vec<String>,
}

impl Remote {
    /// Opens remote `name` of `home` (credentials from the environment or the 0600 file).
    pub fn open(home: &Path, name: &str) -> Result<Remote> {
        let remotes = config::Remotes::load(home)?;
        let config = remotes.get(name)?.clone();
        Remote::connect(home, config)
    }

    /// Connects to a remote described by `config` (it must be one the user added).
    pub fn connect(home: &Path, config: RemoteConfig) -> Result<Remote> {
        let log = Arc::new(NetLog::open(home)?);
        let connector = || LoggingConnector {
            log: log.clone(),
            remote: config.name.clone(),
        };
        let options = ClientOptions::new()
            .with_allow_http(true)
            .with_timeout(timeout())
            .with_connect_timeout(Duration::from_secs(5).min(timeout()));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: timeout() * 3,
        };
        let (backend, prefix) = match config::parse_url(&config.url)? {
            Location::S3 { bucket, prefix } => {
                let (credentials, _) = config::credentials(home, &config.name)?;
                let credentials = credentials.ok_or_else(|| {
                    Error::Usage(format!(
                        "no credentials for remote {:?}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                         or add them with `pxos remote add ... --key-id ID --secret-file FILE`",
                        config.name
                    ))
                })?;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&bucket)
                    .with_region(config.region.as_deref().unwrap_or("us-east-1"))
                    .with_access_key_id(&credentials.key_id)
                    .with_secret_access_key(&credentials.secret)
                    .with_virtual_hosted_style_request(false)
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_http_connector(connector());
                if let Some(endpoint) = &config.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let store = builder
                    .build()
                    .map_err(|err| Error::Usage(format!("remote {:?}: {err}", config.name)))?;
                (Backend::S3(Arc::new(store)), prefix)
            }
            Location::Http { base } => {
                let store = HttpBuilder::new()
                    .with_url(&base)
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_http_connector(connector())
                    .build()
                    .map_err(|err| Error::Usage(format!("remote {:?}: {err}", config.name)))?;
                (Backend::Http(Arc::new(store)), String::new())
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|err| Error::Io(format!("cannot start the network runtime: {err}")))?;
        Ok(Remote {
            config,
            backend,
            prefix: if prefix.is_empty() {
                prefix
            } else {
                format!("{prefix}/")
            },
            runtime,
            log,
        })
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        match &self.backend {
            Backend::S3(store) => store.clone(),
            Backend::Http(store) => store.clone(),
        }
    }

    fn key(&self, rel: &str) -> Key {
        Key::from(format!("{}{rel}", self.prefix))
    }

    /// True when this remote can be written (an S3 remote).
    pub fn writable(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    fn network(&self, what: &str, rel: &str, err: object_store::Error) -> Error {
        Error::Network(format!(
            "{what} {}{rel} on remote {:?}: {err}",
            self.prefix, self.config.name
        ))
    }

    /// Runs a future on this remote's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The whole object, or None when it does not exist.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let store = self.store();
        let key = self.key(rel);
        self.block_on(async move { get_whole(store.as_ref(), &key).await })
            .map_err(|err| self.network("GET", rel, err))
    }

    /// Bytes `range` of an object; a short answer is an error, not data.
    pub fn get_range(&self, rel: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let store = self.store();
        let key = self.key(rel);
        let want = range.end - range.start;
        let bytes = self
            .block_on(async move { store.get_range(&key, range).await })
            .map_err(|err| self.network("GET (range)", rel, err))?;
        if bytes.len() as u64 != want {
            return Err(Error::Remote(format!(
                "{rel}: asked for {want} bytes, got {} (a truncated response)",
                bytes.len()
            )));
        }
        Ok(bytes.to_vec())
    }

    /// Several ranges of one object, fetched together; a short answer is an error.
    pub fn get_ranges(&self, rel: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let store = self.store();
        let key = self.key(rel);
        let wanted = ranges.to_vec();
        let bodies = self
            .block_on(async move {
                futures::stream::iter(wanted)
                    .map(|range| {
                        let (store, key) = (store.clone(), key.clone());
                        async move { store.get_range(&key, range).await }
                    })
                    .buffered(CONCURRENCY)
                    .try_collect::<Vec<_>>()
                    .await
            })
            .map_err(|err| self.network("GET (range)", rel, err))?;
        ranges
            .iter()
            .zip(bodies)
            .map(|(range, bytes)| {
                let want = range.end - range.start;
                if bytes.len() as u64 != want {
                    return Err(Error::Remote(format!(
                        "{rel}: asked for {want} bytes, got {} (a truncated response)",
                        bytes.len()
                    )));
                }
                Ok(bytes.to_vec())
            })
            .collect()
    }

    /// The size of an object, or None.
    pub fn head(&self, rel: &str) -> Result<Option<u64>> {
        let store = self.store();
        let key = self.key(rel);
        self.block_on(async move {
            match store.head(&key).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(err) => Err(err),
            }
        })
        .map_err(|err| self.network("HEAD", rel, err))
    }

    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.check_writable()?;
        let store = self.store();
        let key = self.key(rel);
        self.block_on(async move { store.put(&key, PutPayload::from(bytes)).await })
            .map(|_| ())
            .map_err(|err| self.network("PUT", rel, err))
    }

    /// PUTs many small objects, [`CONCURRENCY`] at a time.
    pub fn put_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.check_writable()?;
        let store = self.store();
        let prefix = self.prefix.clone();
        self.block_on(async move {
            futures::stream::iter(items)
                .map(|(rel, bytes)| {
                    let store = store.clone();
                    let key = Key::from(format!("{prefix}{rel}"));
                    async move {
                        store
                            .put(&key, PutPayload::from(bytes))
                            .await
                            .map_err(|err| (rel, err))
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await
        })
        .map(|_| ())
        .map_err(|(rel, err)| self.network("PUT", &rel, err))
    }

    /// GETs many small objects, [`CONCURRENCY`] at a time (None: not there).
    pub fn get_many(&self, rels: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let store = self.store();
        let prefix = self.prefix.clone();
        let rels = rels.to_vec();
        self.block_on(async move {
            futures::stream::iter(rels)
                .map(|rel| {
                    let store = store.clone();
                    let key = Key::from(format!("{prefix}{rel}"));
                    async move {
                        get_whole(store.as_ref(), &key)
                            .await
                            .map_err(|err| (rel, err))
                    }
                })
                .buffered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await
        })
        .map_err(|(rel, err)| self.network("GET", &rel, err))
    }

    /// Refuses `what` on an http(s) remote, which can be read by URL but
    /// neither listed nor written.
    pub fn require_s3(&self, what: &str) -> Result<()> {
        if self.writable() {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "remote {:?} is an http(s) remote: it can be read, not written or listed, so it cannot {what}",
                self.config.name
            )))
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable() {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "remote {:?} is an http(s) remote: it can be read, not written",
                self.config.name
            )))
        }
    }

    /// Every object under `rel_prefix` (keys below the remote's prefix), after `offset` when given.
    pub fn list(&self, rel_prefix: &str, offset: Option<&str>) -> Result<Vec<Listed>> {
        let store = self.store();
        let prefix = self.key(rel_prefix);
        let offset = offset.map(|o| self.key(o));
        let strip = self.prefix.clone();
        self.block_on(async move {
            let stream = match &offset {
                Some(offset) => store.list_with_offset(Some(&prefix), offset),
                None => store.list(Some(&prefix)),
            };
            stream
                .map_ok(|meta| Listed {
                    rel: meta
                        .location
                        .as_ref()
                        .strip_prefix(&strip)
                        .unwrap_or(meta.location.as_ref())
                        .to_string(),
                    size: meta.size,
                    modified: meta.last_modified.into(),
                })
                .try_collect::<Vec<_>>()
                .await
        })
        .map_err(|err| self.network("LIST", rel_prefix, err))
    }

    /// Uploads host file `path` as `rel`. Large files go in parts; the parts
    /// sent are remembered in `resume` so an interrupted upload goes on
    /// where it stopped.
    pub fn upload_file(
        &self,
        rel: &str,
        path: &Path,
        resume: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        self.check_writable()?;
        let size = std::fs::metadata(path)
            .map_err(|err| Error::io(err, path))?
            .len();
        if size <= SINGLE_PUT_MAX {
            let bytes = std::fs::read(path).map_err(|err| Error::io(err, path))?;
            self.put(rel, bytes)?;
            progress(size);
            return Ok(());
        }
        let Backend::S3(s3) = &self.backend else {
            unreachable!("checked writable")
        };
        let key = self.key(rel);
        let part = part_size();
        let mut state: UploadState = std::fs::read(resume)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &UploadState| s.key == key.as_ref() && s.size == size && s.part == part)
            .map(Ok)
            .unwrap_or_else(|| -> Result<UploadState> {
                let s3 = s3.clone();
                let target = key.clone();
                let upload_id = self
                    .block_on(async move { s3.create_multipart(&target).await })
                    .map_err(|err| self.network("POST (multipart)", rel, err))?;
                Ok(UploadState {
                    key: key.as_ref().to_string(),
                    upload_id,
                    size,
                    part,
                    parts: Vec::new(),
                })
            })?;
        save_state(resume, &state)?;
        progress(state.parts.len() as u64 * part);
        let parts = size.div_ceil(part);
        let file = std::fs::File::open(path).map_err(|err| Error::io(err, path))?;
        // A sliding window of parts in flight; each finished part is
        // recorded (in order) before the next one counts as sent.
        let first = state.parts.len() as u64;
        let id = state.upload_id.clone();
        let file = &file;
        let state = &mut state;
        self.block_on(async {
            let mut stream = futures::stream::iter(first..parts)
                .map(|index| {
                    let (s3, key, id) = (s3.clone(), key.clone(), id.clone());
                    let start = index * part;
                    let mut buf = vec![0u8; part.min(size - start) as usize];
                    let read = std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, start);
                    async move {
                        read.map_err(|err| Error::io(err, path))?;
                        s3.put_part(&key, &id, index as usize, PutPayload::from(buf))
                            .await
                            .map_err(|err| self.network("PUT (part)", rel, err))
                    }
                })
                .buffered(CONCURRENCY);
            while let Some(sent) = stream.next().await {
                state.parts.push(sent?.content_id);
                save_state(resume, state)?;
                progress((state.parts.len() as u64 * part).min(size));
                if state.parts.len().is_multiple_of(PART_BATCH) {
                    pxos_pixel::durable::crash_point("remote-upload.part-batch");
                }
            }
            Ok::<(), Error>(())
        })?;
        let parts: Vec<PartId> = state
            .parts
            .iter()
            .map(|content_id| PartId {
                content_id: content_id.clone(),
            })
            .collect();
        let s3 = s3.clone();
        let id = state.upload_id.clone();
        self.block_on(async move { s3.complete_multipart(&key, &id, parts).await })
            .map_err(|err| self.network("POST (complete)", rel, err))?;
        let _ = std::fs::remove_file(resume);
        Ok(())
    }

    /// Downloads object `rel` of `size` bytes into `part`, resuming from the
    /// bytes `part` already holds, in ranged GETs. The caller checks the bytes.
    pub fn download(
        &self,
        rel: &str,
        size: u64,
        part: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        self.download_checked(rel, size, part, progress, |_| Ok(()))
    }

    /// [`Remote::download`], with `check` reading the file while it arrives
    /// (from another thread): the end of the object is fetched first and
    /// served from memory, the rest as it is written, so a PXI is decoded
    /// and hashed alongside the transfer instead of after it. `check` sees
    /// exactly the bytes that end up in `part`.
    pub fn download_checked<T: Send>(
        &self,
        rel: &str,
        size: u64,
        part: &Path,
        progress: &(dyn Fn(u64) + Sync),
        check: impl FnOnce(Box<dyn pxos_pixel::Source>) -> Result<T> + Send,
    ) -> Result<T> {
        let dir = part.parent().expect("a part file has a folder");
        std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(part)
            .map_err(|err| Error::io(err, part))?;
        let mut have = file.metadata().map_err(|err| Error::io(err, part))?.len();
        if have > size {
            // Not a prefix of this object: start again.
            file.set_len(0).map_err(|err| Error::io(err, part))?;
            have = 0;
        }
        progress(have);
        let chunk = part_size();
        // The tail (the PXI index lives there) first.
        let tail_start = size.saturating_sub(TAIL).max(have);
        let tail = if tail_start < size {
            self.get_range(rel, tail_start..size)?
        } else {
            Vec::new()
        };
        let (sender, chunks) = std::sync::mpsc::sync_channel::<bytes::Bytes>(64);
        let reader = Growing {
            file: file.try_clone().map_err(|err| Error::io(err, part))?,
            pos: 0,
            size,
            prefix: have,
            tail_start,
            tail: tail.clone(),
            chunk: (have, bytes::Bytes::new()),
            chunks,
        };
        let ranges: Vec<Range<u64>> = (have..tail_start)
            .step_by(chunk as usize)
            .map(|start| start..(start + chunk).min(tail_start))
            .collect();
        std::thread::scope(|scope| {
            let checker = scope.spawn(move || check(Box::new(reader)));
            // Writeback alongside the transfer: a syncer flushes what has
            // arrived every 128 MiB, so the final sync has little left to do.
            let (flush, flushes) = std::sync::mpsc::channel::<()>();
            let syncing = file.try_clone().map_err(|err| Error::io(err, part))?;
            let syncer = scope.spawn(move || {
                while flushes.recv().is_ok() {
                    while flushes.try_recv().is_ok() {}
                    let _ = syncing.sync_data();
                }
            });
            let mut flushed = have;
            let fetched = (|| -> Result<()> {
                let store = self.store();
                let key = self.key(rel);
                self.block_on(async {
                    // Each range arrives as the response's own chunks (no copy
                    // into one buffer); they are written and handed on in order.
                    let mut stream = futures::stream::iter(ranges)
                        .map(|range| {
                            let (store, key) = (store.clone(), key.clone());
                            async move {
                                let want = range.end - range.start;
                                let options = object_store::GetOptions {
                                    range: Some(range.into()),
                                    ..Default::default()
                                };
                                let result = store.get_opts(&key, options).await?;
                                let parts: Vec<bytes::Bytes> =
                                    result.into_stream().try_collect().await?;
                                Ok::<_, object_store::Error>((want, parts))
                            }
                        })
                        .buffered(CONCURRENCY);
                    while let Some(next) = stream.next().await {
                        let (want, parts) =
                            next.map_err(|err| self.network("GET (range)", rel, err))?;
                        let got: u64 = parts.iter().map(|p| p.len() as u64).sum();
                        if got != want {
                            return Err(Error::Remote(format!(
                                "{rel}: asked for {want} bytes, got {got} (a truncated response)"
                            )));
                        }
                        for piece in parts {
                            file.write_all(&piece).map_err(|err| Error::io(err, part))?;
                            // A checker that stopped (it found damage) just stops listening.
                            let _ = sender.send(piece);
                        }
                        have += want;
                        if have - flushed >= 128 << 20 {
                            flushed = have;
                            let _ = flush.send(());
                        }
                        progress(have);
                    }
                    Ok(())
                })?;
                file.write_all(&tail).map_err(|err| Error::io(err, part))?;
                progress(size);
                file.sync_data().map_err(|err| Error::io(err, part))
            })();
            // Closing the channel ends (or, after a failure, fails) the checker's reads.
            drop(sender);
            drop(flush);
            let _ = syncer.join();
            let checked = checker
                .join()
                .unwrap_or_else(|_| Err(Error::Io(format!("the check of {rel} panicked"))));
            fetched.and(checked)
        })
    }
}

/// Bytes at the end of an object fetched before the rest.
const TAIL: u64 = 1 << 20;

/// A file being downloaded, read as it arrives: the bytes it held before
/// (`prefix`) from the file, the new ones from the downloader's chunks in
/// order (a step back is read from the file, where they were written
/// first), and the tail from memory.
struct Growing {
    file: std::fs::File,
    pos: u64,
    size: u64,
    prefix: u64,
    tail_start: u64,
    tail: Vec<u8>,
    /// The current chunk and the offset it starts at.
    chunk: (u64, bytes::Bytes),
    chunks: std::sync::mpsc::Receiver<bytes::Bytes>,
}

impl std::io::Read for Growing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.tail_start {
            let from = (self.pos - self.tail_start) as usize;
            let n = buf.len().min(self.tail.len() - from);
            buf[..n].copy_from_slice(&self.tail[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let limit = buf.len().min((self.tail_start - self.pos) as usize);
        if self.pos < self.prefix || self.pos < self.chunk.0 {
            // Already in the file.
            let end = if self.pos < self.prefix {
                self.prefix
            } else {
                self.chunk.0
            };
            let n = limit.min((end - self.pos) as usize);
            let n = std::os::unix::fs::FileExt::read_at(&self.file, &mut buf[..n], self.pos)?;
            self.pos += n as u64;
            return Ok(n);
        }
        while self.pos >= self.chunk.0 + self.chunk.1.len() as u64 {
            let next = self
                .chunks
                .recv()
                .map_err(|_| std::io::Error::other("the download stopped"))?;
            let start = self.chunk.0 + self.chunk.1.len() as u64;
            self.chunk = (start, next);
        }
        let from = (self.pos - self.chunk.0) as usize;
        let n = limit.min(self.chunk.1.len() - from);
        buf[..n].copy_from_slice(&self.chunk.1[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Growing {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(at) => Some(at),
            std::io::SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            std::io::SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// A whole object (None: not there); a body shorter than its declared size is an error.
async fn get_whole(store: &dyn ObjectStore, key: &Key) -> object_store::Result<Option<Vec<u8>>> {
    let result = match store.get(key).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    let expected = result.meta.size;
    let bytes = result.bytes().await?;
    if bytes.len() as u64 != expected {
        return Err(object_store::Error::Generic {
            store: "pxos",
            source: format!("the response held {} of {expected} bytes", bytes.len()).into(),
        });
    }
    Ok(Some(bytes.to_vec()))
}

fn save_state(path: &Path, state: &UploadState) -> Result<()> {
    let dir = path.parent().expect("state has a folder");
    std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
    let json = serde_json::to_vec(state).expect("state serializes");
    pxos_pixel::durable::write_atomic(path, &json, pxos_pixel::durable::label::REMOTE_TRACKING)
        .map_err(|err| Error::io(err, path))
}
