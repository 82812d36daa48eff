//! A real terminal for tests: a detached tmux pane on a private server,
//! driven with `send-keys` and read with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One tmux server with one pane running a command. The pane outlives the
/// command and shows `[exit CODE]` when it ends. Dropping it kills the server.
pub struct Tmux {
    socket: PathBuf,
}

/// What marks the end of the command in the pane: `[exit 0]` and so on.
pub fn exit_marker(code: i32) -> String {
    format!("[exit {code}]")
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

impl Tmux {
    /// Starts `program ARGS` with `env` in a 200x50 pane, with its own server
    /// socket in `dir`. `None` (a skip) when tmux is missing, except under
    /// `CI=true`, where that fails.
    pub fn start(dir: &Path, env: &[(&str, &Path)], program: &Path, args: &[&str]) -> Option<Tmux> {
        crate::require_tool("tmux")?;
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("tmux.sock");
        let mut line = String::from(
            "env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u PXOS_CRASH_AT NO_COLOR=1 TERM=xterm",
        );
        for (key, value) in env {
            line.push_str(&format!(" {key}={}", quote(&value.display().to_string())));
        }
        line.push(' ');
        line.push_str(&quote(&program.display().to_string()));
        for arg in args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        line.push_str("; echo \"[exit $?]\"; sleep 600");
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                &line,
            ])
            .env_remove("TMUX")
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session failed");
        let tmux = Tmux { socket };
        // Scrollback for long sessions.
        tmux.command(&["set-option", "-g", "history-limit", "10000"]);
        Some(tmux)
    }

    fn command(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` literally, then Enter.
    pub fn line(&self, text: &str) {
        if !text.is_empty() {
            self.command(&["send-keys", "-l", "--", text]);
        }
        self.command(&["send-keys", "Enter"]);
    }

    /// Types `text` literally, without Enter.
    pub fn type_text(&self, text: &str) {
        self.command(&["send-keys", "-l", "--", text]);
    }

    /// Sends tmux key names: `Up`, `Left`, `C-d`, `BSpace`, `Enter`.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.command(&args);
    }

    /// Everything the pane shows, scrollback included, wrapped lines joined.
    pub fn capture(&self) -> String {
        self.command(&["capture-pane", "-p", "-J", "-S", "-10000"])
    }

    /// Waits until the pane shows `needle` `times` times; panics with what it
    /// shows after `timeout`.
    pub fn wait_for_count(&self, needle: &str, times: usize, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let screen = self.capture();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(
                started.elapsed() < timeout,
                "the terminal did not show {needle:?} {times} times within {timeout:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the pane shows `needle` (within 20 s).
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_count(needle, 1, Duration::from_secs(20))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .env_remove("TMUX")
            .status();
    }
}
