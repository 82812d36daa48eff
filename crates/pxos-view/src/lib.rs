//! The pxOS desktop in a browser (`docs/view.md`).
//!
//! A web server on 127.0.0.1 serves one plain HTML/JS page (`page.html`, no
//! build step) and a small JSON API over the home: the live VRAM (frames
//! pushed by `pxos vram build|loop|run --view` and sent on to pages as
//! server-sent events), per-pixel provenance, generation diffs, the boot
//! screen, the PixelFS tree with a PXI browser (header, the image itself, a hex
//! view through the random-access reader), the evolution log, the cartridge
//! lineage, the kernel history and InfiniteMap tiles.
//!
//! Nothing is served from outside the home: files are named by PixelFS path
//! and found through the path table, never joined onto a host path.

pub mod publish;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pxos_pixel::{ErrorKind, Limits};
use pxos_vram::Vram;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

/// The page.
pub const PAGE: &str = include_str!("page.html");
/// Largest frame a publisher may send (the PNG and its provenance).
pub const MAX_FRAME: usize = 96 << 20;
/// Longest query string accepted.
pub const MAX_QUERY: usize = 2048;
/// Most bytes one hex view shows.
pub const MAX_HEX: u64 = 4096;
/// Largest PXI served as a preview.
pub const MAX_PREVIEW: u64 = 64 << 20;
/// Generations kept for the diff mode.
pub const MAX_GENERATIONS: usize = 64;
/// Most log entries one request returns.
pub const MAX_LOG: usize = 10_000;
/// Most map tiles one listing returns.
pub const MAX_TILES: usize = 4096;
/// The header a publisher and the page's POSTs carry.
pub const TOKEN_HEADER: &str = "x-pxos-token";

/// A frame as a publisher sends it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// `build`, `loop` or `run`.
    pub source: String,
    /// What happened: the step, the generation or the slice.
    pub label: String,
    /// The improvement loop's generation, for the diff mode.
    pub generation: Option<u32>,
    /// The VRAM PNG.
    pub png: Vec<u8>,
    /// Its provenance (`Vram::provenance_json`).
    pub provenance: Value,
}

#[derive(Default)]
struct LiveState {
    seq: u64,
    meta: Value,
    /// The frame as shown: alpha made opaque so code pixels are visible.
    png: Option<Arc<Vec<u8>>>,
    vram: Option<Vram>,
    generations: BTreeMap<u32, (String, Vram)>,
}

/// What every request handler shares.
pub struct Shared {
    home: PathBuf,
    token: String,
    limits: Limits,
    live: Mutex<LiveState>,
    events: broadcast::Sender<String>,
    /// Set once: the server is stopping (event streams end, connections drain).
    quit: watch::Sender<bool>,
    started: Instant,
}

impl Shared {
    /// Takes a frame: the page is told at once.
    pub fn accept(&self, frame: Frame) -> Result<u64, String> {
        let mut vram = Vram::from_png(&frame.png).map_err(|err| err.to_string())?;
        if !frame.provenance.is_null() {
            vram.load_provenance(&frame.provenance)
                .map_err(|err| err.to_string())?;
        }
        let (width, height) = (vram.width(), vram.height());
        let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
        for y in 0..height {
            for x in 0..width {
                let [r, g, b, _] = vram.pixel(x, y).unwrap_or_default();
                rgba.extend_from_slice(&[r, g, b, 255]);
            }
        }
        let shown = pxos_pixel::plain_png(width, height, pxos_pixel::PlainColor::Rgba, &rgba);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.seq += 1;
        let seq = live.seq;
        let meta = json!({
            "seq": seq, "source": frame.source, "label": frame.label, "generation": frame.generation,
            "width": width, "height": height, "ms": self.started.elapsed().as_secs_f64() * 1000.0,
        });
        if let Some(generation) = frame.generation {
            live.generations
                .insert(generation, (frame.label.clone(), vram.clone()));
            while live.generations.len() > MAX_GENERATIONS {
                live.generations.pop_first();
            }
        }
        live.meta = meta.clone();
        live.png = Some(Arc::new(shown));
        live.vram = Some(vram);
        drop(live);
        // No page listening is fine: frames are not queued for nobody.
        let _ = self.events.send(meta.to_string());
        Ok(seq)
    }

    /// Asks the server to stop.
    pub fn stop(&self) {
        self.quit.send_replace(true);
    }

    /// Resolves once [`Shared::stop`] was called.
    fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut quit = self.quit.subscribe();
        async move {
            let _ = quit.wait_for(|stop| *stop).await;
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

/// A bound server, not yet serving.
pub struct Bound {
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
}

/// A random token for the publisher's and the page's POSTs.
pub fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for round in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(round);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// Binds 127.0.0.1:`port` (0: any free port) for the home at `home`.
pub fn bind(home: &Path, port: u16, limits: Limits) -> std::io::Result<Bound> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let (events, _) = broadcast::channel(64);
    Ok(Bound {
        listener,
        shared: Arc::new(Shared {
            home: home.to_path_buf(),
            token: new_token(),
            limits,
            live: Mutex::new(LiveState::default()),
            events,
            quit: watch::Sender::new(false),
            started: Instant::now(),
        }),
    })
}

impl Bound {
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Serves until the page's Q (`POST /api/quit`) or [`Shared::stop`].
    pub fn serve(self) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .enable_time()
            .build()?;
        let shared = self.shared;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            let drained = shared.stopping();
            let stopped = shared.stopping();
            let server = axum::serve(listener, router(shared)).with_graceful_shutdown(drained);
            // Connections get a moment to finish; a client that never does is dropped.
            tokio::select! {
                result = server => result,
                () = async move {
                    stopped.await;
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                } => Ok(()),
            }
        })?;
        // Streams of connected pages end with the runtime.
        runtime.shutdown_timeout(std::time::Duration::from_millis(200));
        Ok(())
    }

    /// Serves on a thread of its own.
    pub fn spawn(self) -> std::thread::JoinHandle<std::io::Result<()>> {
        std::thread::spawn(move || self.serve())
    }
}

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/api/events", get(events))
        .route("/api/frame", post(frame))
        .route("/api/quit", post(quit))
        .route("/api/vram/meta", get(vram_meta))
        .route("/api/vram/frame.png", get(vram_png))
        .route("/api/vram/who", get(vram_who))
        .route("/api/vram/generations", get(generations))
        .route("/api/vram/diff.png", get(diff_png))
        .route("/api/vram/diff", get(diff_json))
        .route("/api/boot/screen.png", get(boot_screen))
        .route("/api/fs/tree", get(fs_tree))
        .route("/api/fs/info", get(fs_info))
        .route("/api/fs/preview.png", get(fs_preview))
        .route("/api/fs/hex", get(fs_hex))
        .route("/api/log", get(log))
        .route("/api/lineage", get(lineage))
        .route("/api/kernels", get(kernels))
        .route("/api/map/stats", get(map_stats))
        .route("/api/map/tiles", get(map_tiles))
        .route("/api/map/tile.png", get(map_tile))
        .route("/api/map/chat", get(map_chat_history).post(map_chat))
        .route("/api/agents", get(agents))
        .fallback(|uri: axum::http::Uri| async move {
            fail(
                StatusCode::NOT_FOUND,
                format!("no such page: {}; the desktop is at /", clip(uri.path())),
            )
        })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(shared)
}

type Shared_ = State<Arc<Shared>>;

/// A failed request, boxed (a `Response` is large): the `Err` of the helpers.
type Bad = Box<Response>;

fn bad(status: StatusCode, message: impl Into<String>) -> Bad {
    Box::new(fail(status, message))
}

/// A JSON error with a status.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadInput | ErrorKind::Usage => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Tampered | ErrorKind::Refused => StatusCode::CONFLICT,
        ErrorKind::Io => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// At most 200 characters of something a client sent, for an error message.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn png(bytes: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes.into(),
    )
        .into_response()
}

/// Query parameters, percent-decoded, with the length checked.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<String>) -> Result<Query, Bad> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY {
            return Err(bad(
                StatusCode::URI_TOO_LONG,
                format!("the query is {} bytes, more than {MAX_QUERY}", raw.len()),
            ));
        }
        let mut map = HashMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode_component(key)?, decode_component(value)?);
        }
        Ok(Query(map))
    }

    fn text(&self, name: &str) -> Result<&str, Bad> {
        self.0.get(name).map(String::as_str).ok_or_else(|| {
            bad(
                StatusCode::BAD_REQUEST,
                format!("missing query parameter '{name}'"),
            )
        })
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, Bad> {
        let text = self.text(name)?;
        text.parse().map_err(|_| {
            bad(
                StatusCode::BAD_REQUEST,
                format!(
                    "query parameter '{name}' = '{}' is not a number in range",
                    clip(text)
                ),
            )
        })
    }

    fn number_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Bad> {
        if self.0.contains_key(name) {
            self.number(name)
        } else {
            Ok(default)
        }
    }
}

fn decode_component(text: &str) -> Result<String, Bad> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        bad(StatusCode::BAD_REQUEST, "a broken %-escape in the query")
                    })?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad(StatusCode::BAD_REQUEST, "the query is not UTF-8"))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(response) => return *response,
        }
    };
}

async fn page(State(shared): Shared_) -> Response {
    let html = PAGE.replace("__PXOS_TOKEN__", &shared.token);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

async fn status(State(shared): Shared_) -> Response {
    let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    axum::Json(json!({
        "pxos": env!("CARGO_PKG_VERSION"), "home": shared.home, "seq": live.seq, "frame": live.meta,
        "fs": shared.home.join("fs").is_dir(), "map": shared.home.join("map/map.json").is_file(),
        "boot_screen": shared.home.join("boot/screen.png").is_file(),
    }))
    .into_response()
}

async fn events(State(shared): Shared_) -> Response {
    use tokio_stream::StreamExt;
    let receiver = shared.events.subscribe();
    let first = {
        let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
        (live.seq > 0).then(|| live.meta.to_string())
    };
    let hello = tokio_stream::iter(
        std::iter::once(": pxos view\n\n".to_string())
            .chain(first.map(|meta| format!("event: frame\ndata: {meta}\n\n"))),
    );
    // A page that falls behind skips frames; it never holds up a publisher.
    let updates = tokio_stream::wrappers::BroadcastStream::new(receiver)
        .filter_map(|item| item.ok())
        .map(|meta| format!("event: frame\ndata: {meta}\n\n"));
    // The stream ends when the server stops, so stopping never waits on a page.
    let stop = tokio_stream::wrappers::WatchStream::new(shared.quit.subscribe())
        .filter(|stopping| *stopping)
        .map(|_| None);
    let stream = hello
        .chain(updates)
        .map(Some)
        .merge(stop)
        .take_while(Option::is_some)
        .filter_map(|item| item)
        .map(Ok::<_, std::convert::Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn check_token(shared: &Shared, headers: &HeaderMap) -> Result<(), Bad> {
    let given = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    if given == Some(shared.token.as_str()) {
        Ok(())
    } else {
        Err(bad(
            StatusCode::FORBIDDEN,
            format!("this needs the view's token in the {TOKEN_HEADER} header"),
        ))
    }
}

async fn frame(State(shared): Shared_, request: axum::extract::Request) -> Response {
    tri!(check_token(&shared, request.headers()));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FRAME as u64) {
        return fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a frame is at most {MAX_FRAME} bytes"),
        );
    }
    let body: Bytes = match axum::body::to_bytes(request.into_body(), MAX_FRAME).await {
        Ok(body) => body,
        Err(_) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a frame is at most {MAX_FRAME} bytes"),
            );
        }
    };
    let frame = tri!(publish::decode_frame(&body).map_err(|why| bad(StatusCode::BAD_REQUEST, why)));
    let shared2 = Arc::clone(&shared);
    match tokio::task::spawn_blocking(move || shared2.accept(frame)).await {
        Ok(Ok(seq)) => axum::Json(json!({"seq": seq})).into_response(),
        Ok(Err(why)) => fail(StatusCode::BAD_REQUEST, format!("not a VRAM frame: {why}")),
        Err(err) => fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn quit(State(shared): Shared_, headers: HeaderMap) -> Response {
    tri!(check_token(&shared, &headers));
    shared.stop();
    axum::Json(json!({"stopping": true})).into_response()
}

async fn vram_meta(State(shared): Shared_) -> Response {
    let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    axum::Json(live.meta.clone()).into_response()
}

async fn vram_png(State(shared): Shared_) -> Response {
    let shown = shared
        .live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .png
        .clone();
    match shown {
        Some(bytes) => png(bytes.as_ref().clone()),
        None => fail(
            StatusCode::NOT_FOUND,
            "no VRAM frame yet: run `pxos vram build default --view` (or loop/run with --view)",
        ),
    }
}

async fn vram_who(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    let query = tri!(Query::parse(raw));
    let x: u32 = tri!(query.number("x"));
    let y: u32 = tri!(query.number("y"));
    let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    let Some(vram) = &live.vram else {
        return fail(StatusCode::NOT_FOUND, "no VRAM frame yet");
    };
    let Some(rgba) = vram.pixel(x, y) else {
        return fail(
            StatusCode::BAD_REQUEST,
            format!(
                "({x}, {y}) is outside the {}x{} VRAM",
                vram.width(),
                vram.height()
            ),
        );
    };
    axum::Json(json!({
        "x": x, "y": y, "region": vram.region_of(y).map(|r| r.name()), "rgba": rgba,
        "word": format!("0x{:08x}", u32::from_le_bytes(rgba)), "address": vram.address(x, y),
        "write": vram.who_wrote(x, y), "frame": live.seq,
    }))
    .into_response()
}

async fn generations(State(shared): Shared_) -> Response {
    let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    let list: Vec<Value> = live
        .generations
        .iter()
        .map(|(n, (label, _))| json!({"generation": n, "label": label}))
        .collect();
    axum::Json(json!({"generations": list})).into_response()
}

fn diff_of(shared: &Shared, query: &Query) -> Result<pxos_vram::vram::Diff, Bad> {
    let a: u32 = query.number("a")?;
    let b: u32 = query.number("b")?;
    let live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    let get = |n: u32| {
        live.generations.get(&n).map(|(_, v)| v).ok_or_else(|| {
            bad(
                StatusCode::NOT_FOUND,
                format!("no generation {n} (run `pxos vram loop --view` to show generations)"),
            )
        })
    };
    get(a)?
        .diff(get(b)?)
        .map_err(|err| bad(StatusCode::BAD_REQUEST, err.to_string()))
}

async fn diff_png(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    let query = tri!(Query::parse(raw));
    png(tri!(diff_of(&shared, &query)).png)
}

async fn diff_json(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    let query = tri!(Query::parse(raw));
    let diff = tri!(diff_of(&shared, &query));
    let changed: BTreeMap<&str, u64> = diff.changed.iter().map(|(r, n)| (r.name(), *n)).collect();
    axum::Json(json!({"changed": changed})).into_response()
}

async fn boot_screen(State(shared): Shared_) -> Response {
    blocking(move || {
        let path = shared.home.join("boot/screen.png");
        match std::fs::read(&path) {
            Ok(bytes) => png(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                fail(StatusCode::NOT_FOUND, "no boot screen yet: run `pxos boot`")
            }
            Err(err) => fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
        }
    })
    .await
}

/// Runs blocking store work off the async workers.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))
}

fn open_fs(shared: &Shared) -> Result<pxos_fs::PixelFs, Bad> {
    let root = shared.home.join("fs");
    if !root.is_dir() {
        return Err(bad(
            StatusCode::NOT_FOUND,
            "no PixelFS in this home yet: run `pxos boot` or `pxos fs init`",
        ));
    }
    pxos_fs::PixelFs::open(&root)
        .map(|fs| fs.with_limits(shared.limits))
        .map_err(|err| bad(status_of(err.kind()), err.to_string()))
}

fn fs_entry(shared: &Shared, query: &Query) -> Result<(pxos_fs::PixelFs, pxos_fs::Entry), Bad> {
    let fs = open_fs(shared)?;
    let path = query.text("path")?;
    let entry = fs
        .get(path)
        .map_err(|err| bad(status_of(err.kind()), err.to_string()))?;
    Ok((fs, entry))
}

/// The PXI holding an entry's object (its own file, or its pack) and the
/// object's offset in that PXI's payload.
fn object_pxi(
    fs: &pxos_fs::PixelFs,
    entry: &pxos_fs::Entry,
) -> Result<(std::path::PathBuf, u64), Bad> {
    match fs.object_pxi(&entry.sha256) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(bad(
            StatusCode::NOT_FOUND,
            format!(
                "the object of {} is missing (run `pxos fs fsck`)",
                entry.path
            ),
        )),
        Err(err) => Err(bad(status_of(err.kind()), err.to_string())),
    }
}

async fn fs_tree(State(shared): Shared_) -> Response {
    blocking(move || {
        let fs = tri!(open_fs(&shared));
        match fs.table() {
            Ok(table) => {
                let entries: Vec<&pxos_fs::Entry> = table.entries().collect();
                axum::Json(json!({"entries": entries})).into_response()
            }
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

async fn fs_info(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let (fs, entry) = tri!(fs_entry(&shared, &query));
        let (object, offset) = tri!(object_pxi(&fs, &entry));
        let reader = match pxos_pixel::PixelReader::open(&object, &shared.limits) {
            Ok(reader) => reader,
            Err(err) => return fail(status_of(err.kind()), format!("{}: {err}", entry.path)),
        };
        let h = reader.header();
        let file_len = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
        axum::Json(json!({
            "entry": entry,
            "header": {
                "version": h.version, "layout": h.layout.name(), "kind": h.kind.name(),
                "compression": h.compression.name(), "width": h.width, "band_rows": h.band_rows,
                "payload_len": h.payload_len, "metadata_len": h.metadata_len,
                "sha256": pxos_pixel::hex(&h.sha256),
            },
            "file_len": file_len,
            "file": object,
            "packed": object.parent().is_some_and(|p| p.ends_with("packs")),
            "offset": offset,
        }))
        .into_response()
    })
    .await
}

async fn fs_preview(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let (fs, entry) = tri!(fs_entry(&shared, &query));
        let (object, _) = tri!(object_pxi(&fs, &entry));
        if object.parent().is_some_and(|p| p.ends_with("packs")) {
            // A packed object has no PXI of its own: show the pixels it would
            // have as one (its bytes, at most 256 KiB, verified on the way).
            let mut bytes = Vec::new();
            if let Err(err) = fs.read_to(&entry, &mut bytes) {
                return fail(status_of(err.kind()), err.to_string());
            }
            let kind = entry.kind.parse().unwrap_or(pxos_pixel::Kind::Blob);
            return match pxos_pixel::encode_to_vec(&bytes, &pxos_pixel::EncodeOptions::kind(kind)) {
                Ok(bytes) => png(bytes),
                Err(err) => fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            };
        }
        match std::fs::metadata(&object) {
            Ok(meta) if meta.len() > MAX_PREVIEW => fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{} is {} bytes; previews stop at {MAX_PREVIEW}",
                    entry.path,
                    meta.len()
                ),
            ),
            Ok(_) => match std::fs::read(&object) {
                Ok(bytes) => png(bytes),
                Err(err) => fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            },
            Err(err) => fail(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
        }
    })
    .await
}

async fn fs_hex(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let offset: u64 = tri!(query.number_or("offset", 0));
        let length: u64 = tri!(query.number_or("length", 256));
        if length > MAX_HEX {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("length {length} is more than {MAX_HEX} bytes"),
            );
        }
        let (fs, entry) = tri!(fs_entry(&shared, &query));
        if offset > entry.size {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("offset {offset} is past the end of {} ({} bytes)", entry.path, entry.size),
            );
        }
        let length = length.min(entry.size - offset);
        let (object, base) = tri!(object_pxi(&fs, &entry));
        let bytes = match pxos_pixel::PixelReader::open(&object, &shared.limits)
            .and_then(|mut reader| reader.read_at(base + offset, length as usize))
        {
            Ok(bytes) => bytes,
            Err(err) => return fail(status_of(err.kind()), format!("{}: {err}", entry.path)),
        };
        let rows: Vec<Value> = bytes
            .chunks(16)
            .enumerate()
            .map(|(i, chunk)| {
                let ascii: String = chunk
                    .iter()
                    .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
                    .collect();
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                json!({"offset": offset + 16 * i as u64, "hex": hex.join(" "), "ascii": ascii})
            })
            .collect();
        axum::Json(json!({"path": entry.path, "offset": offset, "length": length, "size": entry.size, "rows": rows}))
            .into_response()
    })
    .await
}

/// A log entry with its action's name and cartridge flattened (as `pxos log --json`).
fn entry_json(entry: &pxos_cart::log::LogEntry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    value["details"] = value["action"].clone();
    value["action"] = json!(entry.action.name());
    value["cartridge"] = json!(entry.action.cartridge().map(pxos_cart::log::CartRef::id));
    value
}

fn open_log(shared: &Shared) -> Result<pxos_cart::EvolutionLog, Bad> {
    pxos_cart::EvolutionLog::open(&shared.home.join("log"))
        .map_err(|err| bad(status_of(err.kind()), err.to_string()))
}

async fn log(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let limit: usize = tri!(query.number_or("limit", 500));
        let log = tri!(open_log(&shared));
        match log.entries() {
            Ok(entries) => {
                let skip = entries.len().saturating_sub(limit.min(MAX_LOG));
                let list: Vec<Value> = entries[skip..].iter().map(entry_json).collect();
                axum::Json(json!({"total": entries.len(), "entries": list})).into_response()
            }
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

async fn lineage(State(shared): Shared_) -> Response {
    blocking(move || {
        let log = tri!(open_log(&shared));
        let registry = match pxos_cart::Registry::open(&shared.home.join("carts"), log) {
            Ok(registry) => registry,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        match (registry.list(), registry.current()) {
            (Ok(records), Ok(current)) => axum::Json(json!({
                "cartridges": records, "current": current.map(|r| r.id),
            }))
            .into_response(),
            (Err(err), _) | (_, Err(err)) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

async fn kernels(State(shared): Shared_) -> Response {
    blocking(move || {
        let log = tri!(open_log(&shared));
        let store = match pxos_boot::KernelStore::open(&shared.home.join("kernels"), log) {
            Ok(store) => store,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        match (store.history(), store.state()) {
            (Ok(history), Ok(state)) => {
                let list: Vec<Value> = history.iter().map(entry_json).collect();
                axum::Json(json!({"history": list, "state": state})).into_response()
            }
            (Err(err), _) | (_, Err(err)) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

fn open_map(shared: &Shared) -> Result<pxos_map::InfiniteMap, Bad> {
    pxos_map::InfiniteMap::open_read_only(&shared.home.join("map"))
        .map_err(|err| bad(status_of(err.kind()), err.to_string()))
}

async fn map_stats(State(shared): Shared_) -> Response {
    blocking(move || {
        let mut map = tri!(open_map(&shared));
        match map.stats() {
            Ok(stats) => axum::Json(json!({"stats": stats})).into_response(),
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

async fn map_tiles(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let tx0: i64 = tri!(query.number("tx0"));
        let ty0: i64 = tri!(query.number("ty0"));
        let tx1: i64 = tri!(query.number("tx1"));
        let ty1: i64 = tri!(query.number("ty1"));
        let mut map = tri!(open_map(&shared));
        let mut tiles = match map.tiles_in(tx0, ty0, tx1, ty1) {
            Ok(tiles) => tiles,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        let truncated = tiles.len() > MAX_TILES;
        tiles.truncate(MAX_TILES);
        let mut list: Vec<Value> = Vec::with_capacity(tiles.len());
        for (tx, ty) in tiles {
            let note = match map.tile_note(tx, ty) {
                Ok(note) => note,
                Err(err) => return fail(status_of(err.kind()), err.to_string()),
            };
            list.push(json!({"tx": tx, "ty": ty, "note": note}));
        }
        axum::Json(json!({"tile_size": map.tile_size(), "tiles": list, "truncated": truncated}))
            .into_response()
    })
    .await
}

async fn map_tile(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let tx: i64 = tri!(query.number("tx"));
        let ty: i64 = tri!(query.number("ty"));
        let mut map = tri!(open_map(&shared));
        match map.tile_png(tx, ty) {
            Ok(Some(bytes)) => png(bytes),
            Ok(None) => StatusCode::NO_CONTENT.into_response(),
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

/// The address file a running `pxos view` leaves in the home.
pub fn address_file(home: &Path) -> PathBuf {
    home.join("view").join("server.json")
}

/// Records where this view listens, so `--view` publishers find it.
pub fn write_address(home: &Path, addr: SocketAddr, token: &str) -> std::io::Result<()> {
    let path = address_file(home);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = json!({"pid": std::process::id(), "port": addr.port(), "token": token}).to_string();
    // Runtime state that lives as long as the server: written beside and
    // renamed into place (a reader sees the old file or the new one), not
    // fsync'd, and readable by this user only, since the token guards
    // publishing and quitting.
    let temporary = path.with_extension(format!("json.{}", std::process::id()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
    }
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// Removes the address file if it is still this process's.
pub fn remove_address(home: &Path) {
    let path = address_file(home);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(value) = serde_json::from_str::<Value>(&text)
        && value["pid"] == json!(std::process::id())
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The agents panel: the task queue, the last exchanges with models, and
/// the recorded sessions (the page polls it, so a running `pxos coach run`
/// shows live).
async fn agents(State(shared): Shared_) -> Response {
    blocking(move || {
        let home = &shared.home;
        let queue = match pxos_agent::queue::TaskQueue::load(home) {
            Ok(queue) => queue,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        let tasks: Vec<serde_json::Value> = queue
            .tasks
            .iter()
            .map(|t| {
                json!({"id": t.id, "title": t.title, "status": t.status.name(), "action": t.action.name(),
                       "priority": t.priority, "attempts": t.attempts, "max_attempts": t.max_attempts,
                       "review_score": t.review_score, "needs_human": t.needs_human, "error": t.error,
                       "outcome": t.outcome})
            })
            .collect();
        let exchanges = pxos_agent::provider::recent_exchanges(home, 20).unwrap_or_default();
        let recent: Vec<serde_json::Value> = exchanges
            .iter()
            .rev()
            .map(|e| {
                json!({"time": e.time, "purpose": e.purpose.name(), "provider": e.provider, "model": e.model,
                       "question": e.prompt.last().map(|m| m.content.chars().take(200).collect::<String>()),
                       "response": e.response.chars().take(400).collect::<String>(), "ms": e.ms,
                       "refused": e.refused})
            })
            .collect();
        let mut sessions: Vec<String> = std::fs::read_dir(home.join(pxos_agent::coach::SESSIONS))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        sessions.sort();
        axum::Json(json!({"tasks": tasks, "progress": queue.progress(None), "exchanges": recent,
                          "sessions": sessions}))
        .into_response()
    })
    .await
}

/// A map tile's conversation.
async fn map_chat_history(State(shared): Shared_, RawQuery(raw): RawQuery) -> Response {
    blocking(move || {
        let query = tri!(Query::parse(raw));
        let x: i64 = tri!(query.number("x"));
        let y: i64 = tri!(query.number("y"));
        let mut map = tri!(open_map(&shared));
        match pxos_agent::chat::history(&mut map, x, y) {
            Ok(((tx, ty), chat)) => {
                axum::Json(json!({"tile": [tx, ty], "topic": chat.topic, "turns": chat.turns}))
                    .into_response()
            }
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}

/// Says something to a map tile (the token is required: it writes the
/// tile's note and asks the home's model).
async fn map_chat(State(shared): Shared_, headers: HeaderMap, body: Bytes) -> Response {
    tri!(check_token(&shared, &headers));
    blocking(move || {
        let request: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(err) => return fail(StatusCode::BAD_REQUEST, format!("not JSON: {err}")),
        };
        let (Some(x), Some(y), Some(text)) = (
            request["x"].as_i64(),
            request["y"].as_i64(),
            request["text"].as_str().filter(|t| !t.trim().is_empty()),
        ) else {
            return fail(
                StatusCode::BAD_REQUEST,
                "send {\"x\": X, \"y\": Y, \"text\": TEXT}",
            );
        };
        let home = &shared.home;
        let gate = pxos_agent::config::AgentConfig::load(home).and_then(|config| {
            let spec = pxos_agent::control::route(home, &config, "chat");
            let provider = pxos_agent::provider::open(home, &config, Some(&spec))?;
            Ok(pxos_agent::provider::Gate::new(
                provider,
                config.policy,
                Some(home),
            ))
        });
        let mut gate = match gate {
            Ok(gate) => gate,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        let root = home.join("map");
        let mut map = match pxos_map::InfiniteMap::open(&root, pxos_map::DEFAULT_TILE_SIZE) {
            Ok(map) => map,
            Err(err) => return fail(status_of(err.kind()), err.to_string()),
        };
        match pxos_agent::chat::say(&mut map, &mut gate, x, y, text) {
            Ok((reply, chat)) => {
                axum::Json(json!({"reply": reply, "turns": chat.turns})).into_response()
            }
            Err(err) => fail(status_of(err.kind()), err.to_string()),
        }
    })
    .await
}
