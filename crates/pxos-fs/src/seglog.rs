//! Segmented, pixel-native, append-only logs (`docs/formats/segmented-log.md`).
//!
//! A log is a folder. Records are appended in place to the open segment
//! (`open-NNNNNNNN.log`, one line per record: the record's chained hash, a
//! space, the body, a newline) and made durable before the append returns.
//! When the open segment holds `segment_records` records it is sealed: its
//! lines become the payload of a PXI (`segments/NNNNNNNN.png`), which chains
//! to the segment before it, and the open segment starts again empty. The
//! head (`head.json`, replaced atomically) names the end of the log (how many
//! records, the last hash) and, while an append is under way, the record
//! being appended, so a crash leaves a log that either has the record or not.
//!
//! An append reads only the head and the open segment, so its cost does not
//! grow with the log. Verification can start from the last verified
//! checkpoint (`verified.json`): the segments sealed since, then the open one.
//!
//! Writers hold the owner's write lock; this module takes none itself.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Hash256, Kind, Limits, durable};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` of `head.json`.
pub const HEAD_FORMAT: &str = "pxos-seglog";
/// The `format` of a sealed segment's header line.
pub const SEGMENT_FORMAT: &str = "pxos-segment";
/// The `format` of `verified.json`.
pub const CHECKPOINT_FORMAT: &str = "pxos-seglog-verified";
/// Records in a segment unless the log was created with another size.
pub const DEFAULT_SEGMENT_RECORDS: u32 = 256;
/// Largest record body, in bytes.
pub const MAX_RECORD: usize = 1 << 20;
/// Largest `head.json` or `verified.json` read.
const MAX_STATE_BYTES: u64 = 64 << 10;

/// A point in a log: records before it and the hash of the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub count: u64,
    pub hash: Hash256,
}

/// `head.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    pub version: u32,
    /// Records per sealed segment.
    pub segment_records: u32,
    /// Sealed segments (the open segment is number `sealed`).
    pub sealed: u64,
    /// The end of the last sealed segment.
    pub sealed_end: Position,
    /// The payload SHA-256 of the last sealed segment (zero when none).
    pub last_segment: Hash256,
    /// The end of the log.
    pub end: Position,
    /// The end the log will have once the append under way is durable.
    pub pending: Option<Position>,
}

impl Head {
    fn empty(segment_records: u32) -> Head {
        Head {
            format: HEAD_FORMAT.into(),
            version: 1,
            segment_records,
            sealed: 0,
            sealed_end: Position::default(),
            last_segment: Hash256::ZERO,
            end: Position::default(),
            pending: None,
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.format != HEAD_FORMAT || self.version != 1 {
            return Err(format!(
                "not a segmented log head (format {:?} version {})",
                self.format, self.version
            ));
        }
        if !(2..=65_536).contains(&self.segment_records) {
            return Err(format!(
                "segment_records {} is outside 2..=65536",
                self.segment_records
            ));
        }
        let sealed_records = self.sealed.checked_mul(u64::from(self.segment_records));
        if sealed_records != Some(self.sealed_end.count) {
            return Err(format!(
                "{} sealed segments of {} records cannot end at record {}",
                self.sealed, self.segment_records, self.sealed_end.count
            ));
        }
        if self.end.count < self.sealed_end.count
            || self.end.count - self.sealed_end.count > u64::from(self.segment_records)
        {
            return Err(format!(
                "the log end {} is not within the open segment after record {}",
                self.end.count, self.sealed_end.count
            ));
        }
        if let Some(pending) = self.pending
            && pending.count != self.end.count + 1
        {
            return Err(format!(
                "the pending append ends at {}, not one after {}",
                pending.count, self.end.count
            ));
        }
        Ok(())
    }
}

/// The header line of a sealed segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentHeader {
    format: String,
    version: u32,
    index: u64,
    /// The position before its first record.
    start: Position,
    records: u32,
    /// The payload SHA-256 of the segment before (zero for the first).
    prev_segment: Hash256,
}

/// `verified.json`: how far the log was last verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    format: String,
    /// Sealed segments verified.
    segments: u64,
    /// The payload SHA-256 of the last of them.
    last_segment: Hash256,
    /// The position at their end.
    end: Position,
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its number, from 0.
    pub index: u64,
    /// SHA-256 of the previous record's hash and this body.
    pub hash: Hash256,
    pub body: Vec<u8>,
}

/// The hash of a record with `body` after a record with hash `prev`.
pub fn chain(prev: &Hash256, body: &[u8]) -> Hash256 {
    let mut bytes = Vec::with_capacity(32 + body.len());
    bytes.extend_from_slice(&prev.0);
    bytes.extend_from_slice(body);
    Hash256::of(&bytes)
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// Records in the log.
    pub records: u64,
    /// Records checked by this run (all of them with `full`).
    pub checked: u64,
    /// Sealed segments decoded by this run.
    pub segments_checked: u64,
    /// Where this run started (the checkpoint's record count; 0 when full).
    pub from: u64,
    pub problems: Vec<String>,
    /// Not problems: an interrupted append, a checkpoint not used.
    pub notes: Vec<String>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The open segment as read: its complete lines, and what follows the last one.
struct OpenSegment {
    records: Vec<Record>,
    /// Bytes of complete lines.
    complete_len: u64,
    /// Bytes after the last newline (a torn append).
    torn: u64,
}

/// A segmented log in a folder.
#[derive(Clone, Debug)]
pub struct SegLog {
    dir: PathBuf,
    segment_records: u32,
}

impl SegLog {
    /// The log in `dir`; `segment_records` applies when it is created.
    pub fn new(dir: &Path) -> SegLog {
        SegLog {
            dir: dir.to_path_buf(),
            segment_records: DEFAULT_SEGMENT_RECORDS,
        }
    }

    /// Sets the segment size a new log is created with.
    pub fn with_segment_records(mut self, records: u32) -> SegLog {
        self.segment_records = records.clamp(2, 65_536);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `head.json`.
    pub fn head_path(&self) -> PathBuf {
        self.dir.join("head.json")
    }

    /// The open segment of a log with `sealed` sealed segments.
    pub fn open_path(&self, sealed: u64) -> PathBuf {
        self.dir.join(format!("open-{sealed:08}.log"))
    }

    /// Sealed segment `index`.
    pub fn segment_path(&self, index: u64) -> PathBuf {
        self.dir.join("segments").join(format!("{index:08}.png"))
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("verified.json")
    }

    /// True when the log has a head (it was written to at least once).
    pub fn exists(&self) -> bool {
        self.head_path().is_file()
    }

    /// The head as stored (an empty log when there is none).
    pub fn head(&self) -> Result<Head> {
        let path = self.head_path();
        let bytes = match read_bounded(&path, MAX_STATE_BYTES) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if self.has_records() {
                    return Err(Error::Format(format!(
                        "the log head {} is missing, but the log has records: it was deleted",
                        path.display()
                    )));
                }
                return Ok(Head::empty(self.segment_records));
            }
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::Format(format!("the log head is damaged: {err}")));
            }
            Err(err) => return Err(Error::from(err).with_path(&path)),
        };
        let head: Head = serde_json::from_slice(&bytes)
            .map_err(|err| Error::Format(format!("the log head is damaged: {err}")))
            .map_err(|err| err.with_path(&path))?;
        head.check().map_err(|why| {
            Error::Format(format!("the log head is damaged: {why}")).with_path(&path)
        })?;
        Ok(head)
    }

    /// True when any segment file exists (sealed, or open and not empty).
    fn has_records(&self) -> bool {
        if self.dir.join("segments").is_dir() {
            return true;
        }
        fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with("open-")
                    && name.ends_with(".log")
                    && entry.metadata().is_ok_and(|m| m.len() > 0)
            })
        })
    }

    fn write_head(&self, head: &Head, label: durable::Label) -> Result<()> {
        let mut json = serde_json::to_vec(head).expect("the head serializes");
        json.push(b'\n');
        durable::write_atomic(self.head_path(), &json, label)
            .map_err(|err| Error::from(err).with_path(self.head_path()))
    }

    /// Reads the open segment's complete lines, checking their chain from the
    /// head's sealed end.
    /// At most `segment_records` full records and one torn one are read.
    fn read_open(&self, head: &Head) -> Result<OpenSegment> {
        let (sealed, start) = (head.sealed, head.sealed_end);
        let path = self.open_path(sealed);
        let limit = (u64::from(head.segment_records) + 1) * (MAX_RECORD as u64 + 66);
        let bytes = match read_bounded(&path, limit) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::Format(format!(
                    "the open segment holds more than its head allows: {err}"
                ))
                .with_path(&path));
            }
            Err(err) => return Err(Error::from(err).with_path(&path)),
        };
        let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let records = parse_lines(&bytes[..complete_len], start)
            .map_err(|why| Error::Format(why).with_path(&path))?;
        Ok(OpenSegment {
            records,
            complete_len: complete_len as u64,
            torn: (bytes.len() - complete_len) as u64,
        })
    }

    /// The log's state, checked against the open segment: the end the
    /// records really reach, counting an append that was durable but not yet
    /// in the head. Damage is an error.
    fn settle(&self, head: &Head) -> Result<(Position, OpenSegment)> {
        let open = self.read_open(head)?;
        let reached = Position {
            count: head.sealed_end.count + open.records.len() as u64,
            hash: open.records.last().map_or(head.sealed_end.hash, |r| r.hash),
        };
        if reached == head.end || Some(reached) == head.pending {
            return Ok((reached, open));
        }
        Err(Error::Format(format!(
            "{}: the head says the log ends after {} records at {}, but the records end after {} at {}: records were appended, cut off or replaced by hand",
            self.dir.display(),
            head.end.count,
            head.end.hash.short(),
            reached.count,
            reached.hash.short()
        )))
    }

    /// The end of the log (the head, or the append it names as pending when
    /// that append is durable).
    pub fn end(&self) -> Result<Position> {
        let head = self.head()?;
        Ok(self.settle(&head)?.0)
    }

    /// Appends one record and returns it. The caller holds the owner's lock.
    pub fn append(&self, body: &[u8]) -> Result<Record> {
        check_body(body)?;
        fs::create_dir_all(&self.dir).map_err(|err| Error::from(err).with_path(&self.dir))?;
        let mut head = self.recover()?;
        let record = Record {
            index: head.end.count,
            hash: chain(&head.end.hash, body),
            body: body.to_vec(),
        };
        let after = Position {
            count: record.index + 1,
            hash: record.hash,
        };
        head.pending = Some(after);
        self.write_head(&head, durable::label::SEGLOG_HEAD_INTENT)?;
        let line = line_of(&record);
        durable::append_synced(
            &self.open_path(head.sealed),
            &line,
            durable::label::SEGLOG_APPEND,
        )
        .map_err(|err| Error::from(err).with_path(self.open_path(head.sealed)))?;
        head.end = after;
        head.pending = None;
        self.write_head(&head, durable::label::SEGLOG_HEAD)?;
        if head.end.count - head.sealed_end.count >= u64::from(head.segment_records) {
            self.seal(&mut head)?;
        }
        Ok(record)
    }

    /// Brings the stored log to a clean state before a write: completes an
    /// append that was durable, drops a torn or undone one (never a record
    /// the head counts), finishes a seal, removes open segments already
    /// sealed. Damage is an error: nothing is built on it.
    fn recover(&self) -> Result<Head> {
        let mut head = self.head()?;
        let (reached, open) = self.settle(&head)?;
        if open.torn > 0 {
            // A prefix of an append whose fsync never returned: not a record.
            let path = self.open_path(head.sealed);
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|err| Error::from(err).with_path(&path))?;
            file.set_len(open.complete_len)
                .and_then(|()| file.sync_data())
                .map_err(|err| Error::from(err).with_path(&path))?;
        }
        if reached != head.end || head.pending.is_some() {
            head.end = reached;
            head.pending = None;
            self.write_head(&head, durable::label::SEGLOG_HEAD)?;
        }
        if head.end.count - head.sealed_end.count >= u64::from(head.segment_records) {
            self.seal(&mut head)?;
        }
        for stale in 0..head.sealed.min(2) {
            let old = self.open_path(head.sealed - 1 - stale);
            if old.exists() && self.segment_path(head.sealed - 1 - stale).is_file() {
                let _ = fs::remove_file(&old);
            }
        }
        Ok(head)
    }

    /// Seals the full open segment into a PXI and starts the next.
    fn seal(&self, head: &mut Head) -> Result<()> {
        let open = self.read_open(head)?;
        let header = SegmentHeader {
            format: SEGMENT_FORMAT.into(),
            version: 1,
            index: head.sealed,
            start: head.sealed_end,
            records: open.records.len() as u32,
            prev_segment: head.last_segment,
        };
        let mut payload = serde_json::to_vec(&header).expect("the header serializes");
        payload.push(b'\n');
        for record in &open.records {
            payload.extend_from_slice(&line_of(record));
        }
        let png = pxos_pixel::encode_to_vec(&payload, &EncodeOptions::kind(Kind::Table))?;
        let path = self.segment_path(head.sealed);
        let dir = path.parent().expect("segments folder");
        fs::create_dir_all(dir).map_err(|err| Error::from(err).with_path(dir))?;
        durable::write_atomic(&path, &png, durable::label::SEGLOG_SEGMENT)
            .map_err(|err| Error::from(err).with_path(&path))?;
        let old_open = self.open_path(head.sealed);
        head.sealed += 1;
        head.sealed_end = head.end;
        head.last_segment = Hash256::of(&payload);
        self.write_head(head, durable::label::SEGLOG_HEAD)?;
        // Its records are in the sealed segment now.
        let _ = fs::remove_file(old_open);
        Ok(())
    }

    /// Decodes sealed segment `index`, checking its header against what
    /// should precede it.
    fn read_segment(
        &self,
        index: u64,
        start: Position,
        prev_segment: Hash256,
    ) -> Result<(Vec<Record>, Hash256)> {
        let path = self.segment_path(index);
        let bytes = fs::read(&path).map_err(|err| Error::from(err).with_path(&path))?;
        let (decoded, payload) = pxos_pixel::decode_from_slice(&bytes, &Limits::default())
            .map_err(|err| Error::Pixel(err).with_path(&path))?;
        let bad = |why: String| Error::Format(why).with_path(&path);
        if decoded.header.kind != Kind::Table {
            return Err(bad("not a log segment".into()));
        }
        let newline = payload
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("the segment has no header line".into()))?;
        let header: SegmentHeader = serde_json::from_slice(&payload[..newline])
            .map_err(|err| bad(format!("the segment header is damaged: {err}")))?;
        if header.format != SEGMENT_FORMAT || header.version != 1 {
            return Err(bad(format!(
                "not a log segment (format {:?})",
                header.format
            )));
        }
        if header.index != index || header.start != start || header.prev_segment != prev_segment {
            return Err(bad(format!(
                "segment {index} does not follow the segment before it (it says it is segment {} starting after record {}): segments were removed, reordered or replaced",
                header.index, header.start.count
            )));
        }
        let records = parse_lines(&payload[newline + 1..], start).map_err(bad)?;
        if records.len() as u64 != u64::from(header.records) {
            return Err(bad(format!(
                "the segment says it holds {} records but holds {}",
                header.records,
                records.len()
            )));
        }
        Ok((records, Hash256::of(&payload)))
    }

    /// Every record from `from` on, checked against the head (sealed segments
    /// chained, the open segment's lines chained, the end where the head says).
    pub fn read_from(&self, from: u64) -> Result<Vec<Record>> {
        let head = self.head()?;
        let per = u64::from(head.segment_records);
        let mut out = Vec::new();
        let first_segment = (from / per).min(head.sealed);
        let (mut start, mut prev_segment) = if first_segment == 0 {
            (Position::default(), Hash256::ZERO)
        } else {
            // The segment before the first one read gives the chain's start.
            let header = self.segment_header(first_segment - 1)?;
            let end = Position {
                count: header.0.start.count + u64::from(header.0.records),
                hash: header.2,
            };
            (end, header.1)
        };
        for index in first_segment..head.sealed {
            let (records, hash) = self.read_segment(index, start, prev_segment)?;
            start = Position {
                count: start.count + records.len() as u64,
                hash: records.last().map_or(start.hash, |r| r.hash),
            };
            prev_segment = hash;
            out.extend(records.into_iter().filter(|r| r.index >= from));
        }
        if start != head.sealed_end || prev_segment != head.last_segment {
            return Err(Error::Format(format!(
                "{}: the sealed segments end after record {} but the head says {}: a segment was replaced",
                self.dir.display(),
                start.count,
                head.sealed_end.count
            )));
        }
        let (reached, open) = self.settle(&head)?;
        out.extend(
            open.records
                .into_iter()
                .filter(|r| r.index >= from && r.index < reached.count),
        );
        Ok(out)
    }

    /// Sealed segment `index`'s header, its payload hash and its last record's hash.
    fn segment_header(&self, index: u64) -> Result<(SegmentHeader, Hash256, Hash256)> {
        let path = self.segment_path(index);
        let bytes = fs::read(&path).map_err(|err| Error::from(err).with_path(&path))?;
        let (_, payload) = pxos_pixel::decode_from_slice(&bytes, &Limits::default())
            .map_err(|err| Error::Pixel(err).with_path(&path))?;
        let newline = payload
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(payload.len());
        let header: SegmentHeader = serde_json::from_slice(&payload[..newline]).map_err(|err| {
            Error::Format(format!("the segment header is damaged: {err}")).with_path(&path)
        })?;
        let last = payload[..payload.len().saturating_sub(1)]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let hash = std::str::from_utf8(payload.get(last..last + 64).unwrap_or_default())
            .ok()
            .and_then(Hash256::parse)
            .unwrap_or(header.start.hash);
        Ok((header, Hash256::of(&payload), hash))
    }

    /// The records of the open segment, or of the last sealed one when the
    /// open one is empty: the end of the log, read in bounded time.
    pub fn tail(&self) -> Result<Vec<Record>> {
        let head = self.head()?;
        let (reached, open) = self.settle(&head)?;
        let records: Vec<Record> = open
            .records
            .into_iter()
            .filter(|r| r.index < reached.count)
            .collect();
        if !records.is_empty() || head.sealed == 0 {
            return Ok(records);
        }
        self.read_from(head.sealed_end.count - u64::from(head.segment_records))
    }

    /// Every record.
    pub fn read_all(&self) -> Result<Vec<Record>> {
        self.read_from(0)
    }

    /// The last record, reading at most one segment.
    pub fn last(&self) -> Result<Option<Record>> {
        let head = self.head()?;
        let (reached, open) = self.settle(&head)?;
        if reached.count == 0 {
            return Ok(None);
        }
        if let Some(record) = open.records.into_iter().rfind(|r| r.index < reached.count) {
            return Ok(Some(record));
        }
        Ok(self.read_from(reached.count - 1)?.pop())
    }

    /// Checks the log: every record's chain, every sealed segment's header
    /// and chain, the head. From the last checkpoint unless `full`; each
    /// record checked is also handed to `check` (with the record before the
    /// first, when there is one, so it can pick up its own chain). A clean run
    /// moves the checkpoint to the last sealed segment.
    pub fn verify(
        &self,
        full: bool,
        check: &mut dyn FnMut(&Record) -> std::result::Result<(), String>,
    ) -> Result<Verification> {
        let mut report = Verification::default();
        let head = match self.head() {
            Ok(head) => head,
            Err(err) if err.root_io_kind().is_some() => return Err(err),
            Err(err) => {
                report.problems.push(err.to_string());
                return Ok(report);
            }
        };
        let mut start = Position::default();
        let mut prev_segment = Hash256::ZERO;
        let mut first_segment = 0;
        let stored_checkpoint = self.checkpoint(&head);
        let stored_segments = match &stored_checkpoint {
            Ok(Some(checkpoint)) => checkpoint.segments,
            _ => 0,
        };
        if !full {
            match stored_checkpoint {
                Ok(Some(checkpoint)) => {
                    start = checkpoint.end;
                    prev_segment = checkpoint.last_segment;
                    first_segment = checkpoint.segments;
                    report.from = start.count;
                }
                Ok(None) => {}
                Err(why) => report.notes.push(format!(
                    "the verified checkpoint was not used ({why}); checking everything"
                )),
            }
        }
        // The record before the first checked, for the caller's own chain.
        if start.count > 0 {
            match self.read_from(start.count - 1) {
                Ok(records) => {
                    if let Some(record) = records.first()
                        && let Err(why) = check(record)
                    {
                        report
                            .problems
                            .push(format!("record {}: {why}", record.index));
                    }
                }
                Err(err) => report.problems.push(err.to_string()),
            }
        }
        for index in first_segment..head.sealed {
            match self.read_segment(index, start, prev_segment) {
                Ok((records, hash)) => {
                    report.segments_checked += 1;
                    report.checked += records.len() as u64;
                    for record in &records {
                        if let Err(why) = check(record) {
                            report
                                .problems
                                .push(format!("record {}: {why}", record.index));
                        }
                    }
                    start = Position {
                        count: start.count + records.len() as u64,
                        hash: records.last().map_or(start.hash, |r| r.hash),
                    };
                    prev_segment = hash;
                }
                Err(err) if err.root_io_kind().is_some() => return Err(err),
                Err(err) => {
                    report.problems.push(err.to_string());
                    report.records = head.end.count;
                    return Ok(report);
                }
            }
        }
        if start != head.sealed_end || prev_segment != head.last_segment {
            report.problems.push(format!(
                "the sealed segments end after record {} ({}) but the head says {} ({}): segments were removed or replaced",
                start.count,
                start.hash.short(),
                head.sealed_end.count,
                head.sealed_end.hash.short()
            ));
        }
        match self.read_open(&head) {
            Ok(open) => {
                let reached = Position {
                    count: head.sealed_end.count + open.records.len() as u64,
                    hash: open.records.last().map_or(head.sealed_end.hash, |r| r.hash),
                };
                report.records = reached.count;
                for record in &open.records {
                    report.checked += 1;
                    if let Err(why) = check(record) {
                        report
                            .problems
                            .push(format!("record {}: {why}", record.index));
                    }
                }
                if Some(reached) == head.pending {
                    report.notes.push(format!(
                        "the last append (record {}) was interrupted before the head named it; the next append completes it",
                        reached.count - 1
                    ));
                } else if reached != head.end {
                    report.problems.push(format!(
                        "the head says the log ends after {} records at {}, but the records end after {} at {}: records were appended, cut off or replaced by hand",
                        head.end.count,
                        head.end.hash.short(),
                        reached.count,
                        reached.hash.short()
                    ));
                }
                if open.torn > 0 {
                    report.notes.push(format!(
                        "{} bytes of an interrupted append follow the last record; the next append removes them",
                        open.torn
                    ));
                }
            }
            Err(err) if err.root_io_kind().is_some() => return Err(err),
            Err(err) => {
                report.records = head.end.count;
                report.problems.push(err.to_string());
            }
        }
        if report.is_ok() && head.sealed > stored_segments {
            let checkpoint = Checkpoint {
                format: CHECKPOINT_FORMAT.into(),
                segments: head.sealed,
                last_segment: head.last_segment,
                end: head.sealed_end,
            };
            let mut json = serde_json::to_vec(&checkpoint).expect("the checkpoint serializes");
            json.push(b'\n');
            // Advisory: a reader without write access still verifies.
            let _ = durable::write_atomic(
                self.checkpoint_path(),
                &json,
                durable::label::SEGLOG_CHECKPOINT,
            );
        }
        Ok(report)
    }

    /// The checkpoint, when there is one that fits this head.
    fn checkpoint(&self, head: &Head) -> std::result::Result<Option<Checkpoint>, String> {
        let path = self.checkpoint_path();
        let bytes = match read_bounded(&path, MAX_STATE_BYTES) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err.to_string()),
        };
        let checkpoint: Checkpoint =
            serde_json::from_slice(&bytes).map_err(|err| format!("it is damaged: {err}"))?;
        if checkpoint.format != CHECKPOINT_FORMAT
            || checkpoint.segments > head.sealed
            || checkpoint
                .segments
                .checked_mul(u64::from(head.segment_records))
                != Some(checkpoint.end.count)
        {
            return Err("it does not fit the log's head".into());
        }
        if checkpoint.segments == 0 {
            return Ok(None);
        }
        // The last verified segment must still be the one verified.
        let (_, hash, last) = self
            .segment_header(checkpoint.segments - 1)
            .map_err(|err| err.to_string())?;
        if hash != checkpoint.last_segment || last != checkpoint.end.hash {
            return Err(format!(
                "segment {} changed since it was verified",
                checkpoint.segments - 1
            ));
        }
        Ok(Some(checkpoint))
    }

    /// Writes `bodies` as a new log in this (absent or empty) folder, sealing
    /// segments as they fill, with one fsync per segment. Not atomic: build
    /// in a staging folder and rename it into place.
    pub fn create_from(&self, bodies: &mut dyn Iterator<Item = Vec<u8>>) -> Result<Head> {
        fs::create_dir_all(&self.dir).map_err(|err| Error::from(err).with_path(&self.dir))?;
        if self.exists() {
            return Err(Error::Usage(format!(
                "{} already holds a log",
                self.dir.display()
            )));
        }
        let mut head = Head::empty(self.segment_records);
        let mut lines = Vec::new();
        let flush = |head: &Head, lines: &mut Vec<u8>| -> Result<()> {
            if !lines.is_empty() {
                let path = self.open_path(head.sealed);
                durable::append_synced(&path, lines, durable::label::SEGLOG_APPEND)
                    .map_err(|err| Error::from(err).with_path(&path))?;
                lines.clear();
            }
            Ok(())
        };
        for body in bodies {
            check_body(&body)?;
            let record = Record {
                index: head.end.count,
                hash: chain(&head.end.hash, &body),
                body,
            };
            lines.extend_from_slice(&line_of(&record));
            head.end = Position {
                count: record.index + 1,
                hash: record.hash,
            };
            if head.end.count - head.sealed_end.count >= u64::from(head.segment_records) {
                flush(&head, &mut lines)?;
                self.seal(&mut head)?;
            }
        }
        flush(&head, &mut lines)?;
        self.write_head(&head, durable::label::SEGLOG_HEAD)?;
        Ok(head)
    }
}

fn check_body(body: &[u8]) -> Result<()> {
    if body.len() > MAX_RECORD {
        return Err(Error::Usage(format!(
            "a log record of {} bytes is larger than {MAX_RECORD}",
            body.len()
        )));
    }
    if body.contains(&b'\n') {
        return Err(Error::Usage(
            "a log record may not contain a newline".into(),
        ));
    }
    Ok(())
}

fn line_of(record: &Record) -> Vec<u8> {
    let mut line = Vec::with_capacity(66 + record.body.len());
    line.extend_from_slice(record.hash.to_hex().as_bytes());
    line.push(b' ');
    line.extend_from_slice(&record.body);
    line.push(b'\n');
    line
}

/// Parses complete lines, checking each hash against the chain from `start`.
fn parse_lines(bytes: &[u8], start: Position) -> std::result::Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut prev = start.hash;
    for piece in bytes.split_inclusive(|&b| b == b'\n') {
        let index = start.count + records.len() as u64;
        let Some(line) = piece.strip_suffix(b"\n") else {
            return Err(format!("record {index} is cut short (no newline)"));
        };
        let index = start.count + records.len() as u64;
        let (hash, body) = match (line.get(..64), line.get(64), line.get(65..)) {
            (Some(hash), Some(b' '), Some(body)) => (hash, body),
            _ => return Err(format!("record {index} is not a hash and a body")),
        };
        let hash = std::str::from_utf8(hash)
            .ok()
            .and_then(Hash256::parse)
            .ok_or_else(|| format!("record {index} has no valid hash"))?;
        if chain(&prev, body) != hash {
            return Err(format!(
                "record {index} does not match its hash or does not chain to the record before it: records were edited, removed, inserted or reordered"
            ));
        }
        records.push(Record {
            index,
            hash,
            body: body.to_vec(),
        });
        prev = hash;
    }
    Ok(records)
}

pub(crate) fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pxos-seglog-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn ok(_: &Record) -> std::result::Result<(), String> {
        Ok(())
    }

    #[test]
    fn appends_seal_and_read_back_across_segments() {
        let dir = temp("seal");
        let log = SegLog::new(&dir).with_segment_records(4);
        for i in 0..11u32 {
            let record = log.append(format!("{{\"n\":{i}}}").as_bytes()).unwrap();
            assert_eq!(record.index, u64::from(i));
        }
        let head = log.head().unwrap();
        assert_eq!((head.sealed, head.end.count), (2, 11));
        assert!(log.segment_path(1).is_file() && !log.open_path(1).exists());
        let all = log.read_all().unwrap();
        assert_eq!(all.len(), 11);
        assert_eq!(all[7].body, b"{\"n\":7}");
        assert_eq!(log.read_from(6).unwrap().len(), 5);
        assert_eq!(log.last().unwrap().unwrap().index, 10);
        let full = log.verify(true, &mut ok).unwrap();
        assert!(full.is_ok(), "{full:?}");
        assert_eq!(full.checked, 11);
        // The checkpoint now covers both sealed segments.
        let incremental = log.verify(false, &mut ok).unwrap();
        assert!(incremental.is_ok(), "{incremental:?}");
        assert_eq!((incremental.from, incremental.checked), (8, 3));
        // Built in one go, the same records give the same head.
        let copy = SegLog::new(&temp("copy")).with_segment_records(4);
        let head2 = copy
            .create_from(&mut all.iter().map(|r| r.body.clone()))
            .unwrap();
        assert_eq!(head2.end, head.end);
        assert_eq!(head2.last_segment, head.last_segment);
    }

    #[test]
    fn a_torn_append_is_dropped_and_a_durable_one_completed() {
        let dir = temp("torn");
        let log = SegLog::new(&dir).with_segment_records(8);
        log.append(b"a").unwrap();
        let mut head = log.head().unwrap();
        // A crash after the line was durable but before the head named it.
        let record = Record {
            index: 1,
            hash: chain(&head.end.hash, b"b"),
            body: b"b".to_vec(),
        };
        head.pending = Some(Position {
            count: 2,
            hash: record.hash,
        });
        log.write_head(&head, durable::label::SEGLOG_HEAD).unwrap();
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(log.open_path(0))
            .unwrap();
        std::io::Write::write_all(&mut file, &line_of(&record)).unwrap();
        // ...and half of another append.
        std::io::Write::write_all(&mut file, b"0123").unwrap();
        assert_eq!(log.end().unwrap().count, 2);
        let report = log.verify(true, &mut ok).unwrap();
        assert!(report.is_ok() && report.notes.len() == 2, "{report:?}");
        log.append(b"c").unwrap();
        let bodies: Vec<Vec<u8>> = log
            .read_all()
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(bodies, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn edits_truncations_and_swapped_segments_are_found() {
        let dir = temp("tamper");
        let log = SegLog::new(&dir).with_segment_records(2);
        for body in [b"a", b"b", b"c", b"d", b"e"] {
            log.append(body).unwrap();
        }
        // A record edited in the open segment.
        let open = log.open_path(2);
        let text = fs::read_to_string(&open).unwrap();
        fs::write(&open, text.replace(" e", " E")).unwrap();
        assert!(!log.verify(true, &mut ok).unwrap().is_ok());
        assert!(log.append(b"f").is_err());
        fs::write(&open, &text).unwrap();
        // The open segment emptied: the head disagrees.
        fs::write(&open, "").unwrap();
        assert!(!log.verify(true, &mut ok).unwrap().is_ok());
        fs::write(&open, &text).unwrap();
        // Two sealed segments swapped.
        let (a, b) = (log.segment_path(0), log.segment_path(1));
        let (bytes_a, bytes_b) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, &bytes_b).unwrap();
        fs::write(&b, &bytes_a).unwrap();
        let report = log.verify(true, &mut ok).unwrap();
        assert!(!report.is_ok(), "{report:?}");
        assert!(log.read_all().is_err());
        fs::write(&a, &bytes_a).unwrap();
        fs::write(&b, &bytes_b).unwrap();
        assert!(log.verify(true, &mut ok).unwrap().is_ok());
        // An open segment larger than its head allows is refused unread.
        let big = fs::File::create(&open).unwrap();
        big.set_len(4 * (MAX_RECORD as u64 + 66)).unwrap();
        let err = log.append(b"g").unwrap_err();
        assert!(
            err.to_string().contains("more than its head allows"),
            "{err}"
        );
        assert!(!log.verify(true, &mut ok).unwrap().is_ok());
        fs::write(&open, &text).unwrap();
        // A hostile head.
        fs::write(log.head_path(), "{\"format\":\"pxos-seglog\"}").unwrap();
        assert!(log.append(b"g").is_err());
        assert!(!log.verify(false, &mut ok).unwrap().is_ok());
    }
}
