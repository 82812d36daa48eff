//! `pxos remote ...`, and the remote halves of `fs push|pull|clone`,
//! `cart push|pull`, `pixel info|read|verify URL` and `log --network`.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use pxos_remote::config::{self, Credentials, RemoteConfig, Remotes};
use pxos_remote::fs::Meter;
use pxos_remote::{Remote, netlog};
use serde_json::json;

use crate::Outcome;
use crate::cli::{Global, KeyArgs, RemoteCommand};
use crate::error::{CliError, Result, bail};
use crate::home::home;
use crate::output::{Output, Progress, human_bytes};

impl From<pxos_remote::Error> for CliError {
    fn from(err: pxos_remote::Error) -> CliError {
        CliError::new(err.kind(), err.to_string())
    }
}

/// A progress bar per phase, on a terminal.
struct Bar<'a> {
    output: &'a Output,
    bar: Mutex<Option<Progress>>,
}

impl<'a> Bar<'a> {
    fn new(output: &'a Output) -> Bar<'a> {
        Bar {
            output,
            bar: Mutex::new(None),
        }
    }
}

impl Meter for Bar<'_> {
    fn phase(&self, what: &str, total: u64) {
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(self.output.progress(total, what));
    }

    fn position(&self, done: u64) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.set(done);
        }
    }
}

fn read_key(key: &KeyArgs) -> Result<Option<Credentials>> {
    let Some(key_id) = &key.key_id else {
        return Ok(None);
    };
    let secret = if let Some(file) = &key.secret_file {
        std::fs::read_to_string(file)
            .map_err(|err| CliError::usage(format!("cannot read {}: {err}", file.display())))?
    } else if key.secret_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        bail!(Usage, "--key-id needs --secret-file FILE or --secret-stdin");
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        bail!(Usage, "the secret key is empty");
    }
    Ok(Some(Credentials {
        key_id: key_id.clone(),
        secret,
    }))
}

fn add_remote(
    home: &Path,
    name: &str,
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    key: &KeyArgs,
) -> Result<RemoteConfig> {
    config::check_name(name)?;
    config::parse_url(url)?;
    if let Some(endpoint) = endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        bail!(
            Usage,
            "--endpoint {endpoint}: an endpoint is an http:// or https:// URL"
        );
    }
    let credentials = read_key(key)?;
    let mut remotes = Remotes::load(home)?;
    let remote = RemoteConfig {
        name: name.to_string(),
        url: url.trim_end_matches('/').to_string(),
        endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        region: region.map(str::to_string),
        added: pxos_fs::time::now_rfc3339(),
    };
    remotes.add(remote.clone())?;
    if let Some(credentials) = credentials {
        config::store_credentials(home, name, credentials)?;
    }
    Ok(remote)
}

pub fn run(command: &RemoteCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    match command {
        RemoteCommand::Add {
            name,
            url,
            endpoint,
            region,
            key,
        } => {
            let remote = add_remote(
                &home,
                name,
                url,
                endpoint.as_deref(),
                region.as_deref(),
                key,
            )?;
            let (_, source) = config::credentials(&home, name)?;
            output.emit(
                json!({"type": "remote-add", "name": remote.name, "url": remote.url, "endpoint": remote.endpoint, "region": remote.region, "credentials": source}),
                || format!("added remote {} ({})", remote.name, remote.url),
            )?;
        }
        RemoteCommand::List => {
            for remote in Remotes::load(&home)?.list {
                let source = config::credentials(&home, &remote.name)
                    .map(|(_, s)| s)
                    .unwrap_or(config::CredentialSource::None);
                output.emit(
                    json!({"type": "remote", "name": remote.name, "url": remote.url, "endpoint": remote.endpoint, "region": remote.region, "credentials": source, "added": remote.added}),
                    || {
                        format!(
                            "{}\t{}{}\tcredentials: {}",
                            remote.name,
                            remote.url,
                            remote
                                .endpoint
                                .as_deref()
                                .map(|e| format!(" via {e}"))
                                .unwrap_or_default(),
                            match source {
                                config::CredentialSource::Environment => "environment",
                                config::CredentialSource::File => "credentials.json",
                                config::CredentialSource::None => "none",
                            }
                        )
                    },
                )?;
            }
        }
        RemoteCommand::Remove { name } => {
            let removed = Remotes::load(&home)?.remove(name)?;
            config::forget_credentials(&home, name)?;
            output.emit(
                json!({"type": "remote-remove", "name": removed.name, "url": removed.url}),
                || {
                    format!(
                        "removed remote {} ({}); nothing on it was touched",
                        removed.name, removed.url
                    )
                },
            )?;
        }
    }
    Ok(Outcome::Success)
}

fn open_remote(home: &Path, name: Option<&str>) -> Result<Remote> {
    let name = match name {
        Some(name) => name.to_string(),
        None => Remotes::load(home)?.default_name()?,
    };
    Ok(Remote::open(home, &name)?)
}

pub fn fs_push(remote: Option<&str>, global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let fs = pxos_fs::PixelFs::open(&home.join("fs"))?.with_limits(global.pixel_limits());
    let remote = open_remote(&home, remote)?;
    let report = pxos_remote::fs::push(&home, &fs, &remote, &Bar::new(output))?;
    output.emit(
        json!({"type": "fs-push", "report": report}),
        || {
            if report.up_to_date {
                format!("remote {} is up to date (root {})", report.remote, report.root.short())
            } else {
                format!(
                    "pushed snapshot {} (root {}) to {}: {} objects and {} packs sent ({}), {} already there; its fs reference is at {}",
                    report.snapshot,
                    report.root.short(),
                    report.remote,
                    report.objects_sent,
                    report.packs_sent,
                    human_bytes(report.bytes_sent),
                    report.skipped,
                    report.seq
                )
            }
        },
    )?;
    Ok(Outcome::Success)
}

fn pull_into(home: &Path, name: &str, force: bool, global: &Global, output: &Output) -> Result<()> {
    let fs = pxos_fs::PixelFs::open_or_init(&home.join("fs"))?.with_limits(global.pixel_limits());
    let remote = Remote::open(home, name)?;
    let report = pxos_remote::fs::pull(home, &fs, &remote, force, &Bar::new(output))?;
    output.emit(json!({"type": "fs-pull", "report": report}), || {
        if report.up_to_date {
            format!("up to date with {} (root {})", report.remote, report.root.short())
        } else {
            format!(
                "pulled root {} from {} (its reference at {}): {} objects and {} packs fetched and checked ({}); now snapshot {}",
                report.root.short(),
                report.remote,
                report.seq,
                report.objects_fetched,
                report.packs_fetched,
                human_bytes(report.bytes_fetched),
                report.snapshot
            )
        }
    })?;
    Ok(())
}

pub fn fs_pull(
    remote: Option<&str>,
    force: bool,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let home = home(global)?;
    let name = match remote {
        Some(name) => name.to_string(),
        None => Remotes::load(&home)?.default_name()?,
    };
    pull_into(&home, &name, force, global, output)?;
    Ok(Outcome::Success)
}

pub fn fs_clone(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    name: &str,
    key: &KeyArgs,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let home = home(global)?;
    if let Ok(fs) = pxos_fs::PixelFs::open(&home.join("fs"))
        && fs.head()?.files > 0
    {
        bail!(
            Refused,
            "this home's PixelFS is not empty: clone into a new home (--home DIR), or add the remote and pull"
        );
    }
    let remotes = Remotes::load(&home)?;
    match remotes.get(name) {
        Ok(existing) if existing.url == url.trim_end_matches('/') => {}
        Ok(existing) => bail!(
            Refused,
            "a remote named {name} exists with another URL ({}); choose --name",
            existing.url
        ),
        Err(_) => {
            add_remote(&home, name, url, endpoint, region, key)?;
        }
    }
    pull_into(&home, name, false, global, output)?;
    Ok(Outcome::Success)
}

pub fn cart_push(
    cartridge: &str,
    remote: Option<&str>,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let home = home(global)?;
    let stores = pxos_boot::boot::HomeStores::open(&home)?;
    let remote = open_remote(&home, remote)?;
    let report = pxos_remote::cart::push(
        &home,
        &stores.registry,
        &remote,
        cartridge,
        &Bar::new(output),
    )?;
    output.emit(json!({"type": "cart-push", "report": report}), || {
        if report.up_to_date {
            format!("{} is on {} already", report.cartridge, report.remote)
        } else {
            format!(
                "pushed {} ({}, hash {}) to {}",
                report.cartridge,
                human_bytes(report.bytes),
                report.sha256.short(),
                report.remote
            )
        }
    })?;
    Ok(Outcome::Success)
}

pub fn cart_pull(
    cartridge: &str,
    remote: Option<&str>,
    actor: pxos_cart::Actor,
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let home = home(global)?;
    let stores = pxos_boot::boot::HomeStores::open(&home)?;
    let remote = open_remote(&home, remote)?;
    let report = pxos_remote::cart::pull(
        &home,
        &stores.registry,
        &remote,
        cartridge,
        actor,
        &Bar::new(output),
    )?;
    output.emit(json!({"type": "cart-pull", "report": report}), || {
        if report.up_to_date {
            format!(
                "{} is registered here already ({})",
                report.cartridge,
                report.status.as_deref().unwrap_or("?")
            )
        } else {
            format!(
                "pulled {} (hash {} checked) from {}: registered as {}; Genesis there: {}. \
                 To make it current: `pxos cart test {}`, then a person's `pxos cart promote {} --approved-by NAME`",
                report.cartridge,
                report.sha256.short(),
                report.remote,
                report.status.as_deref().unwrap_or("?"),
                match report.genesis_passed_there {
                    Some(true) => "passed",
                    Some(false) => "failed",
                    None => "never run",
                },
                report.cartridge,
                report.cartridge
            )
        }
    })?;
    Ok(Outcome::Success)
}

pub fn network_log(global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    for record in netlog::read(&home)? {
        output.emit(json!({"type": "request", "request": record}), || {
            format!(
                "{} {} {} {} {} sent {} received {} {} ms{}",
                record.time,
                record.remote,
                record.method,
                record.url,
                record
                    .status
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                record.sent,
                record
                    .received
                    .map_or_else(|| "-".to_string(), |r| r.to_string()),
                record.ms,
                record
                    .error
                    .as_deref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            )
        })?;
    }
    Ok(Outcome::Success)
}

/// A remote PXI under a remote the user added, open for random reads; its
/// file length and the counter of bytes fetched.
fn open_remote_pixel(
    url: &str,
    global: &Global,
) -> Result<(
    pxos_pixel::PixelReader,
    u64,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
)> {
    let (remote, rel) = pxos_remote::pixel::open_url(&home(global)?, url)?;
    let file = pxos_remote::pixel::RemoteFile::open(std::sync::Arc::new(remote), &rel, 64 << 10)?;
    let (len, fetched) = (file.len(), file.fetched.clone());
    let reader = pxos_pixel::PixelReader::from_source(
        Box::new(file),
        len,
        Path::new(url),
        &global.pixel_limits(),
    )?;
    Ok((reader, len, fetched))
}

/// `pxos pixel info URL`.
pub fn pixel_info(url: &str, global: &Global, output: &Output) -> Result<Outcome> {
    let (mut reader, len, fetched) = open_remote_pixel(url, global)?;
    let header = reader.header().clone();
    let geometry = *reader.geometry();
    let metadata = reader.metadata()?;
    let fetched = fetched.load(std::sync::atomic::Ordering::Relaxed);
    output.emit(
        json!({"type": "info", "input": url, "header": super::pixel::header_json(&header),
               "width": geometry.width, "height": geometry.height, "file_len": len,
               "indexed": reader.has_index(), "fetched": fetched,
               "metadata": String::from_utf8(metadata).ok()}),
        || {
            format!(
                "{url}\n  kind         {}\n  payload      {} ({} bytes)\n  sha256       {}\n  image        {}x{} pixels, {} file\n  index        {}\n  fetched      {}",
                header.kind.name(),
                human_bytes(header.payload_len),
                header.payload_len,
                pxos_pixel::hex(&header.sha256),
                geometry.width,
                geometry.height,
                human_bytes(len),
                if reader.has_index() { "pxIX (ranged reads)" } else { "none (a read fetches from the start)" },
                human_bytes(fetched)
            )
        },
    )?;
    Ok(Outcome::Success)
}

/// `pxos pixel read URL --offset --length`.
pub fn pixel_read(
    url: &str,
    offset: u64,
    length: usize,
    target: Option<&Path>,
    (as_hex, raw): (bool, bool),
    global: &Global,
    output: &Output,
) -> Result<Outcome> {
    let (mut reader, len, fetched) = open_remote_pixel(url, global)?;
    let bytes = reader.read_at(offset, length)?;
    let fetched = fetched.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(target) = target {
        pxos_pixel::durable::write_atomic(target, &bytes, pxos_pixel::durable::label::PIXEL_READ)?;
    }
    if output.json {
        output.emit(
            json!({"type": "read", "input": url, "offset": offset, "length": length, "hex": pxos_pixel::hex(&bytes), "indexed": reader.has_index(), "fetched": fetched, "file_len": len}),
            String::new,
        )?;
    } else if target.is_none() {
        super::pixel::print_bytes(&bytes, offset, as_hex, raw)?;
    }
    Ok(Outcome::Success)
}

/// `pxos pixel verify URL`: the whole file streams through the decoder.
pub fn pixel_verify(url: &str, global: &Global, output: &Output) -> Result<bool> {
    let home = home(global)?;
    let limits = global.pixel_limits();
    let (remote, rel) = pxos_remote::pixel::open_url(&home, url)?;
    let file = pxos_remote::pixel::RemoteFile::open(std::sync::Arc::new(remote), &rel, 8 << 20)?;
    let progress = output.progress(file.len(), "verifying");
    let result = pxos_pixel::decode(
        std::io::BufReader::with_capacity(1 << 20, file),
        &mut std::io::sink(),
        &limits,
        &mut |done| progress.set(done),
    );
    drop(progress);
    match result {
        Ok(decoded) => {
            output.emit(
                json!({"type": "verify", "input": url, "ok": true, "sha256": pxos_pixel::hex(&decoded.header.sha256), "size": decoded.header.payload_len}),
                || format!("{} {url}", output.good("ok")),
            )?;
            Ok(true)
        }
        Err(err) if err.is_bad_input() => {
            output.emit(
                json!({"type": "verify", "input": url, "ok": false, "error": err.to_string()}),
                || format!("{} {url}: {err}", output.bad("DAMAGED")),
            )?;
            if !output.json {
                eprintln!("pxos: error: {url}: {err}");
            }
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}
