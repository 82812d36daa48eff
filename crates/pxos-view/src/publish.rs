//! Publishing frames to a view: into a server in this process, or over HTTP
//! to a `pxos view` running for the same home.
//!
//! A frame on the wire is one `POST /api/frame` body: a little-endian u32
//! length, that many bytes of JSON (`source`, `label`, `generation`,
//! `provenance`), then the VRAM PNG.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Frame, Shared, TOKEN_HEADER, address_file};

/// Where frames go.
pub enum Sink {
    /// A server in this process.
    Local(Arc<Shared>),
    /// A `pxos view` of the same home, over loopback HTTP.
    Remote { port: u16, token: String },
}

/// The body of `POST /api/frame`.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let meta = json!({"source": frame.source, "label": frame.label, "generation": frame.generation,
                      "provenance": frame.provenance})
    .to_string();
    let mut body = Vec::with_capacity(4 + meta.len() + frame.png.len());
    body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(meta.as_bytes());
    body.extend_from_slice(&frame.png);
    body
}

/// Reads a `POST /api/frame` body.
pub fn decode_frame(body: &[u8]) -> Result<Frame, String> {
    let len = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("a frame starts with a 4-byte length")?;
    let meta = body
        .get(4..4 + len)
        .ok_or("the frame's metadata runs past its end")?;
    let meta: Value =
        serde_json::from_slice(meta).map_err(|err| format!("the frame's metadata: {err}"))?;
    let text = |key: &str| {
        meta[key]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>()
    };
    Ok(Frame {
        source: text("source"),
        label: text("label"),
        generation: meta["generation"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok()),
        png: body[4 + len..].to_vec(),
        provenance: meta["provenance"].clone(),
    })
}

/// The `pxos view` running for `home`, if one answers.
pub fn find_running(home: &Path) -> Option<Sink> {
    let text = std::fs::read_to_string(address_file(home)).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let port = u16::try_from(value["port"].as_u64()?).ok()?;
    let token = value["token"].as_str()?.to_string();
    let (status, _) = request(port, "GET", "/api/status", &token, &[]).ok()?;
    (status == 200).then_some(Sink::Remote { port, token })
}

impl Sink {
    /// Sends a frame; the view's sequence number on success.
    pub fn send(&self, frame: Frame) -> Result<u64, String> {
        match self {
            Sink::Local(shared) => shared.accept(frame),
            Sink::Remote { port, token } => {
                let (status, body) =
                    request(*port, "POST", "/api/frame", token, &encode_frame(&frame))
                        .map_err(|err| format!("pxos view on port {port}: {err}"))?;
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if status == 200 {
                    Ok(value["seq"].as_u64().unwrap_or(0))
                } else {
                    Err(format!(
                        "pxos view on port {port} answered {status}: {}",
                        value["error"].as_str().unwrap_or("")
                    ))
                }
            }
        }
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: (status, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{TOKEN_HEADER}: {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.take(16 << 20).read_to_end(&mut response)?;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
    let head = String::from_utf8_lossy(&response[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let mut body = response[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let Some(chunk) = data.get(start..start + size) else {
            break;
        };
        out.extend_from_slice(chunk);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}
