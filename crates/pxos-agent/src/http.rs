//! A small blocking HTTP/1.1 client for model endpoints. Every request goes
//! through [`Client::send`], which writes its record to the network log
//! (`pxos log --network`) whether it succeeds or not: there is no other way
//! out of this crate onto the network.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use pxos_remote::netlog::{NetLog, NetRecord};

use crate::config::Url;
use crate::error::{Error, Result};

/// The largest response body read (a model's answer is far smaller).
pub const MAX_RESPONSE: usize = 8 << 20;

/// A response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends requests to one endpoint, logging each.
pub struct Client<'a> {
    /// The name the network log gives the endpoint (`llm:NAME`).
    pub remote: String,
    pub url: Url,
    pub timeout: Duration,
    pub log: &'a NetLog,
}

impl Client<'_> {
    /// `method` `path` (below the endpoint's base path) with a JSON `body`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<Response> {
        let started = Instant::now();
        let full_path = format!("{}{}", self.url.path, path);
        let shown = format!("http://{}:{}{}", self.url.host, self.url.port, full_path);
        let result = self.exchange(method, &full_path, body, bearer);
        let (status, received, error) = match &result {
            Ok(response) => (
                Some(response.status),
                Some(response.body.len() as u64),
                None,
            ),
            Err(err) => (None, None, Some(err.to_string())),
        };
        self.log.record(&NetRecord {
            time: pxos_fs::time::now_rfc3339(),
            remote: self.remote.clone(),
            method: method.into(),
            url: shown,
            sent: body.map_or(0, |b| b.len() as u64),
            received,
            status,
            ms: started.elapsed().as_millis() as u64,
            error,
        });
        result
    }

    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<Response> {
        let target = format!("{}:{}", self.url.host, self.url.port);
        let address = target
            .to_socket_addrs()
            .map_err(|err| Error::network(format!("{target}: {err}")))?
            .next()
            .ok_or_else(|| Error::network(format!("{target}: no address")))?;
        let mut stream = TcpStream::connect_timeout(&address, self.timeout)
            .map_err(|err| Error::network(format!("{target}: {err}")))?;
        let io = |err: std::io::Error| Error::network(format!("{target}: {err}"));
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: pxos/{}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.url.host,
            self.url.port,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(io)?;
        if let Some(body) = body {
            stream.write_all(body).map_err(io)?;
        }
        stream.flush().map_err(io)?;
        read_response(BufReader::new(stream)).map_err(|err| match err {
            ReadError::Io(err) => io(err),
            ReadError::Bad(why) => Error::network(format!("{target}: a bad HTTP response: {why}")),
        })
    }
}

enum ReadError {
    Io(std::io::Error),
    Bad(String),
}

impl From<std::io::Error> for ReadError {
    fn from(err: std::io::Error) -> ReadError {
        ReadError::Io(err)
    }
}

fn read_line(reader: &mut impl BufRead) -> std::result::Result<String, ReadError> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(16 * 1024)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Bad(
            "a header line is cut off or too long".into(),
        ));
    }
    String::from_utf8(line)
        .map(|l| l.trim_end().to_string())
        .map_err(|_| ReadError::Bad("a header is not UTF-8".into()))
}

fn read_response(mut reader: impl BufRead) -> std::result::Result<Response, ReadError> {
    let status_line = read_line(&mut reader)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| ReadError::Bad(format!("status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for _ in 0..200 {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            let body = if chunked {
                read_chunked(&mut reader)?
            } else if let Some(length) = length {
                if length > MAX_RESPONSE {
                    return Err(ReadError::Bad(format!(
                        "a body of {length} bytes (the limit is {MAX_RESPONSE})"
                    )));
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                body
            } else {
                let mut body = Vec::new();
                reader
                    .take(MAX_RESPONSE as u64 + 1)
                    .read_to_end(&mut body)?;
                if body.len() > MAX_RESPONSE {
                    return Err(ReadError::Bad("the body passes the limit".into()));
                }
                body
            };
            return Ok(Response { status, body });
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(format!("header {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Bad(format!("Content-Length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    Err(ReadError::Bad("more than 200 headers".into()))
}

fn read_chunked(reader: &mut impl BufRead) -> std::result::Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ReadError::Bad(format!("chunk size {size:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_RESPONSE {
            return Err(ReadError::Bad("the body passes the limit".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Bad("a chunk does not end in CRLF".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> std::result::Result<Response, ReadError> {
        read_response(std::io::Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn lengths_chunks_and_closes_are_read() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .ok()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        let r = parse(b"HTTP/1.1 201 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=1\r\nllo\r\n0\r\n\r\n")
            .ok()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"hello"[..]));
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nrest").ok().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"rest"[..]));
    }

    #[test]
    fn hostile_responses_are_refused() {
        for bad in [
            &b""[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
