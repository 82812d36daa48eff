//! The network log (`HOME/log/network.jsonl`): one JSON line per HTTP
//! request any remote made (time, remote, method, URL without credentials,
//! bytes each way, status, milliseconds), written by the HTTP layer itself,
//! so no request can bypass it. `pxos log --network` shows it.
//!
//! Each record is one `write` to a file opened for appending; the file is
//! synced when the command ends (`NetLog::sync`), not per request: it is an
//! audit trail of traffic, not state that recovery replays.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const NETWORK_LOG: &str = "log/network.jsonl";

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub time: String,
    pub remote: String,
    pub method: String,
    /// Scheme, host, path and query, with no user, password or signature.
    pub url: String,
    /// Request body bytes.
    pub sent: u64,
    /// Response body bytes, as the response declared them.
    pub received: Option<u64>,
    /// None when no response came (a timeout, a refused connection).
    pub status: Option<u16>,
    pub ms: u64,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct NetLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl NetLog {
    pub fn open(home: &Path) -> Result<NetLog> {
        let path = home.join(NETWORK_LOG);
        let dir = path.parent().expect("the log has a folder");
        std::fs::create_dir_all(dir).map_err(|err| Error::io(err, dir))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|err| Error::io(err, &path))?;
        Ok(NetLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn record(&self, record: &NetRecord) {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line: appends from concurrent processes do not interleave.
        if let Err(err) = file.write_all(&line) {
            eprintln!(
                "warning: the network log {} could not be written: {err}",
                self.path.display()
            );
        }
    }

    /// Makes the records durable (at the end of a command).
    pub fn sync(&self) {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.sync_data();
    }
}

/// Every record of a home's network log (a torn last line is skipped).
pub fn read(home: &Path) -> Result<Vec<NetRecord>> {
    let path = home.join(NETWORK_LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(err, &path)),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// A URL as the log keeps it: no user or password, and no query parameter
/// that could carry a signature or a key.
pub fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("").to_ascii_lowercase();
            !(key.starts_with("x-amz-") || key.contains("signature") || key.contains("token"))
        })
        .collect();
    if kept.is_empty() {
        base
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_drops_users_and_signatures() {
        assert_eq!(
            redact(
                "http://user:pw@127.0.0.1:3900/b/k?list-type=2&X-Amz-Signature=abc&X-Amz-Credential=GK1"
            ),
            "http://127.0.0.1:3900/b/k?list-type=2"
        );
        assert_eq!(redact("https://h/p"), "https://h/p");
    }
}
