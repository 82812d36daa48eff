//! `pxos view` (the desktop in a browser) and the `--view` of the vram commands.

use std::time::{Duration, Instant};

use pxos_view::publish::{Sink, find_running};
use pxos_vram::Vram;
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output::Output;

/// Frames a `--view` run sends at most (a frame every 40 ms, plus the last).
const FRAME_INTERVAL: Duration = Duration::from_millis(40);

/// `pxos view`: serves the desktop until Q in the page (or Ctrl-C).
pub fn serve(port: u16, open: bool, global: &Global, output: &Output) -> Result<Outcome> {
    let home = crate::home::home(global)?;
    let bound = pxos_view::bind(&home, port, global.pixel_limits())
        .map_err(|err| CliError::usage(format!("cannot listen on 127.0.0.1:{port}: {err}")))?;
    let addr = bound.addr()?;
    let url = format!("http://{addr}/");
    let token = bound.shared().token().to_string();
    pxos_view::write_address(&home, addr, &token).map_err(|err| {
        CliError::new(
            pxos_pixel::ErrorKind::Io,
            format!("{}: {err}", pxos_view::address_file(&home).display()),
        )
    })?;
    output.emit(json!({"type": "view", "url": url, "port": addr.port(), "home": home}), || {
        format!(
            "pxos view: {url}\n  the live VRAM appears while `pxos vram build|loop|run --view` runs; keys: arrows pan, + and - zoom, R resets, Q quits"
        )
    })?;
    if open {
        open_browser(&url, output)?;
    }
    let result = bound.serve();
    pxos_view::remove_address(&home);
    result?;
    output.emit(json!({"type": "stopped"}), || {
        "pxos view stopped".to_string()
    })?;
    Ok(Outcome::Success)
}

/// Starts the system's browser when there is a desktop; says so when there is not.
fn open_browser(url: &str, output: &Output) -> Result<()> {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if !desktop && !cfg!(target_os = "macos") {
        eprintln!(
            "pxos: no desktop here (neither DISPLAY nor WAYLAND_DISPLAY is set): open {url} in a browser yourself"
        );
        return Ok(());
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => output.emit(
            json!({"type": "opened", "url": url, "with": opener}),
            || format!("opened {url} with {opener}"),
        )?,
        Err(err) => {
            eprintln!("pxos: cannot start {opener} ({err}): open {url} in a browser yourself")
        }
    }
    Ok(())
}

/// Where a `--view` command sends its frames.
pub struct Live {
    sink: Option<Sink>,
    source: &'static str,
    last: Option<Instant>,
    /// A server this command started because no `pxos view` was running.
    own: Option<(String, std::thread::JoinHandle<std::io::Result<()>>)>,
}

impl Live {
    /// With `enabled`, finds the `pxos view` of this home, or starts a view in this process.
    pub fn start(
        enabled: bool,
        global: &Global,
        _output: &Output,
        source: &'static str,
    ) -> Result<Live> {
        let mut live = Live {
            sink: None,
            source,
            last: None,
            own: None,
        };
        if !enabled {
            return Ok(live);
        }
        let home = crate::home::home(global)?;
        if let Some(sink) = find_running(&home) {
            if let Sink::Remote { port, .. } = &sink {
                eprintln!(
                    "pxos: showing this {source} in the running pxos view: http://127.0.0.1:{port}/"
                );
            }
            live.sink = Some(sink);
            return Ok(live);
        }
        let bound = pxos_view::bind(&home, 0, global.pixel_limits())
            .map_err(|err| CliError::usage(format!("cannot start a view on 127.0.0.1: {err}")))?;
        let url = format!("http://{}/", bound.addr()?);
        eprintln!(
            "pxos: no `pxos view` runs for this home, so this {source} serves its own: {url} (it stays open after the {source} until Q in the page or Ctrl-C)"
        );
        live.sink = Some(Sink::Local(bound.shared()));
        live.own = Some((url, bound.spawn()));
        Ok(live)
    }

    /// Whether a throttled frame is due now.
    pub fn due(&mut self) -> bool {
        if self.sink.is_none() {
            return false;
        }
        match self.last {
            Some(last) if last.elapsed() < FRAME_INTERVAL => false,
            _ => {
                self.last = Some(Instant::now());
                true
            }
        }
    }

    /// Sends the VRAM as a frame; a view that stops answering is dropped with one warning.
    pub fn frame(&mut self, vram: &Vram, label: &str, generation: Option<u32>) {
        let Some(sink) = &self.sink else {
            return;
        };
        let frame = pxos_view::Frame {
            source: self.source.into(),
            label: label.into(),
            generation,
            png: vram.to_png(),
            provenance: vram.provenance_json(),
        };
        if let Err(why) = sink.send(frame) {
            eprintln!("pxos: warning: the view stopped taking frames ({why}); going on without it");
            self.sink = None;
        }
    }

    /// For a view this command started: keeps serving until the page's Q or Ctrl-C.
    pub fn finish(self, _output: &Output) -> Result<()> {
        if let Some((url, thread)) = self.own {
            eprintln!(
                "pxos: the {} is done; the view stays at {url} until Q in the page or Ctrl-C",
                self.source
            );
            match thread.join() {
                Ok(result) => result?,
                Err(_) => {
                    return Err(CliError::new(
                        pxos_pixel::ErrorKind::Io,
                        "the view's thread failed",
                    ));
                }
            }
        }
        Ok(())
    }
}
