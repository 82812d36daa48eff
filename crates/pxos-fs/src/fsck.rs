//! Consistency checks over a whole store.

use std::collections::{HashMap, HashSet};

use pxos_pixel::Hash256;
use serde::Serialize;

use crate::error::Result;
use crate::table::Entry;
use crate::tree::{self, Node};
use crate::{HEAD_FILE, PixelFs};

/// One thing wrong with the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file or path concerned.
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

/// What `fsck` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    /// Files in the current tree.
    pub entries: usize,
    /// Snapshots in the snapshot log.
    pub snapshots: u64,
    /// Directory objects reachable from any snapshot.
    pub trees: usize,
    /// Loose object files and packed objects checked.
    pub objects: usize,
    /// Packs checked.
    pub packs: usize,
    /// Objects no snapshot reaches (not a problem; `gc` lists them).
    pub unreferenced: Vec<String>,
    /// Temporary files left by an interrupted writer (removed by the next write).
    pub leftovers: Vec<String>,
    /// Damage found.
    pub problems: Vec<Problem>,
    /// Not damage: an interrupted write the next one completes.
    pub notes: Vec<String>,
}

impl FsckReport {
    /// True when nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub(crate) fn check_entry(fs: &PixelFs, entry: &Entry) -> Option<Problem> {
    let problem = |message: String| {
        Some(Problem {
            subject: entry.path.clone(),
            message,
        })
    };
    let Some(sha) = Hash256::parse(&entry.sha256) else {
        return problem("the entry's sha256 is not valid".into());
    };
    let mut counter = Counter(0);
    match fs.store.read_to(&sha, &mut counter) {
        Err(err) => problem(err.to_string()),
        Ok(_) if counter.0 != entry.size => problem(format!(
            "entry says {} bytes, object holds {}",
            entry.size, counter.0
        )),
        Ok(_) => None,
    }
}

/// Counts bytes written to it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn fsck(fs: &PixelFs) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let problem = |report: &mut FsckReport, subject: String, message: String| {
        report.problems.push(Problem { subject, message })
    };
    // Every object stored: loose files (each decoded and checked) and packs
    // (each read whole, every object hashed).
    let mut stored: HashSet<Hash256> = HashSet::new();
    let mut pack_members: HashMap<std::path::PathBuf, Vec<Hash256>> = HashMap::new();
    for object in fs.objects()? {
        report.objects += 1;
        let subject = object.path.display().to_string();
        let Some(sha) = Hash256::parse(&object.sha256) else {
            problem(
                &mut report,
                subject,
                "object file name is not a sha256".into(),
            );
            continue;
        };
        match pxos_pixel::verify_file(&object.path, fs.limits(), &mut |_| {}) {
            Err(err) => problem(&mut report, subject, err.to_string()),
            Ok(decoded) if decoded.header.sha256 != sha.0 => problem(
                &mut report,
                subject,
                "object holds other content than its name says".into(),
            ),
            Ok(_) => {
                stored.insert(sha);
            }
        }
    }
    for pack in fs.store.pack_files()? {
        report.packs += 1;
        let subject = pack.display().to_string();
        let entries = match fs.store.read_pack_table(&pack) {
            Ok(entries) => entries,
            Err(err) => {
                problem(&mut report, subject, err.to_string());
                continue;
            }
        };
        let payload = match std::fs::read(&pack)
            .map_err(crate::Error::from)
            .and_then(|bytes| Ok(pxos_pixel::decode_from_slice(&bytes, fs.limits())?.1))
        {
            Ok(payload) => payload,
            Err(err) => {
                problem(&mut report, subject, err.to_string());
                continue;
            }
        };
        if !pack.with_extension("idx").exists() {
            report.notes.push(format!(
                "{} has no index (an interrupted write); the next read rebuilds it",
                pack.display()
            ));
        } else if !fs.store.index_matches(&pack, &entries) {
            problem(
                &mut report,
                pack.with_extension("idx").display().to_string(),
                "the pack's index does not match the pack (remove it: the next read rebuilds it from the pack)".into(),
            );
        }
        let mut members = Vec::with_capacity(entries.len());
        for entry in entries {
            report.objects += 1;
            let bytes = &payload[entry.offset as usize..(entry.offset + entry.len) as usize];
            if Hash256::of(bytes) != entry.sha {
                problem(
                    &mut report,
                    subject.clone(),
                    format!("packed object {} holds other content", entry.sha.short()),
                );
            } else {
                stored.insert(entry.sha);
            }
            members.push(entry.sha);
        }
        pack_members.insert(pack, members);
    }
    // HEAD and the snapshot log.
    let head = match fs.head() {
        Ok(head) => Some(head),
        Err(err) => {
            problem(&mut report, HEAD_FILE.into(), err.to_string());
            None
        }
    };
    let log = fs.snapshot_log();
    let verification = log.verify(true, &mut |_| Ok(()))?;
    report.snapshots = verification.records;
    report.notes.extend(verification.notes.iter().cloned());
    for message in &verification.problems {
        problem(&mut report, "snapshots".into(), message.clone());
    }
    let snapshots = if verification.is_ok() {
        match fs.snapshots() {
            Ok(snapshots) => snapshots,
            Err(err) => {
                problem(&mut report, "snapshots".into(), err.to_string());
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if let (Some(head), None, true) = (&head, snapshots.last(), verification.is_ok()) {
        problem(
            &mut report,
            "snapshots".into(),
            format!(
                "HEAD names snapshot {} but the snapshot log is empty: the log was deleted",
                head.snapshot
            ),
        );
    }
    if let (Some(head), Some(last)) = (&head, snapshots.last()) {
        if last.snapshot == head.snapshot + 1 && last.parent == head.root {
            report.notes.push(format!(
                "snapshot {} was recorded but HEAD not yet moved to it (an interrupted write); the next write completes it",
                last.snapshot
            ));
        } else if last.snapshot != head.snapshot || last.root != head.root {
            problem(
                &mut report,
                HEAD_FILE.into(),
                format!(
                    "HEAD names snapshot {} but the snapshot log ends at {}",
                    head.snapshot, last.snapshot
                ),
            );
        }
    }
    // Every tree reachable from HEAD and every snapshot, each read once.
    let mut roots: Vec<Hash256> = head.iter().map(|h| h.root).collect();
    roots.extend(snapshots.iter().map(|s| s.root));
    let mut seen_trees: HashSet<Hash256> = HashSet::new();
    let mut reached: HashSet<Hash256> = HashSet::new();
    for (n, root) in roots.iter().enumerate() {
        let current = n == 0 && head.is_some();
        let mut stack = vec![(String::new(), *root)];
        while let Some((dir, sha)) = stack.pop() {
            if !seen_trees.insert(sha) {
                continue;
            }
            reached.insert(sha);
            let subject = if dir.is_empty() {
                "/".to_string()
            } else {
                dir.clone()
            };
            if !stored.contains(&sha) {
                problem(
                    &mut report,
                    subject,
                    format!("directory object {} is missing or damaged", sha.short()),
                );
                continue;
            }
            let tree = match tree::load(&fs.store, &sha) {
                Ok(tree) => tree,
                Err(err) => {
                    problem(&mut report, subject, err.to_string());
                    continue;
                }
            };
            for (name, node) in &tree.children {
                let path = format!("{dir}/{name}");
                match node {
                    Node::Dir { tree, .. } => stack.push((path, *tree)),
                    Node::File(meta) => {
                        if current {
                            report.entries += 1;
                        }
                        if reached.insert(meta.sha256) && !stored.contains(&meta.sha256) {
                            problem(
                                &mut report,
                                path,
                                format!("object {} is missing or damaged", meta.sha256.to_hex()),
                            );
                        }
                    }
                }
            }
        }
    }
    report.trees = seen_trees.len();
    if report.problems.iter().all(|p| p.subject != "snapshots") {
        for object in fs.objects()? {
            if Hash256::parse(&object.sha256).is_some_and(|sha| !reached.contains(&sha)) {
                report.unreferenced.push(object.sha256);
            }
        }
        for (pack, members) in &pack_members {
            if members.iter().all(|sha| !reached.contains(sha)) {
                report.unreferenced.push(pack.display().to_string());
            }
        }
    }
    report.leftovers = fs
        .temporaries()
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    Ok(report)
}
