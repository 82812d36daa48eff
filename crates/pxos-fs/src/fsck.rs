//! Consistency checks over a whole store.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::table::Entry;
use crate::{PixelFs, TABLE_FILE};

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
    /// Entries in the path table.
    pub entries: usize,
    /// Object files checked.
    pub objects: usize,
    /// Objects no path refers to (not a problem; `gc` lists them).
    pub unreferenced: Vec<String>,
    /// Temporary files left by an interrupted writer (removed by the next write).
    pub leftovers: Vec<String>,
    /// Damage found.
    pub problems: Vec<Problem>,
}

impl FsckReport {
    /// True when nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub(crate) fn check_entry(fs: &PixelFs, entry: &Entry) -> Option<Problem> {
    let object = fs.object_path(&entry.sha256);
    let problem = |message: String| {
        Some(Problem {
            subject: entry.path.clone(),
            message,
        })
    };
    if !object.is_file() {
        return problem(format!("object {} is missing", object.display()));
    }
    match pxos_pixel::verify_file(&object, fs.limits(), &mut |_| {}) {
        Err(err) => problem(err.to_string()),
        Ok(decoded) if pxos_pixel::hex(&decoded.header.sha256) != entry.sha256 => problem(format!(
            "object {} holds other content than its name says",
            object.display()
        )),
        Ok(decoded) if decoded.header.payload_len != entry.size => problem(format!(
            "entry says {} bytes, object holds {}",
            entry.size, decoded.header.payload_len
        )),
        Ok(_) => None,
    }
}

pub(crate) fn fsck(fs: &PixelFs) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let table = match fs.table() {
        Ok(table) => Some(table),
        Err(err) => {
            report.problems.push(Problem {
                subject: TABLE_FILE.into(),
                message: err.to_string(),
            });
            None
        }
    };
    let mut referenced = HashSet::new();
    if let Some(table) = &table {
        report.entries = table.len();
        for entry in table.entries() {
            referenced.insert(entry.sha256.clone());
            if !fs.object_path(&entry.sha256).is_file() {
                report.problems.push(Problem {
                    subject: entry.path.clone(),
                    message: format!("object {} is missing", entry.sha256),
                });
            }
        }
    }
    for object in fs.objects()? {
        report.objects += 1;
        let subject = object.path.display().to_string();
        if crate::table::parse_sha(&object.sha256).is_none() {
            report.problems.push(Problem {
                subject,
                message: "object file name is not a sha256".into(),
            });
            continue;
        }
        match pxos_pixel::verify_file(&object.path, fs.limits(), &mut |_| {}) {
            Err(err) => report.problems.push(Problem {
                subject,
                message: err.to_string(),
            }),
            Ok(decoded) if pxos_pixel::hex(&decoded.header.sha256) != object.sha256 => {
                report.problems.push(Problem {
                    subject,
                    message: "object holds other content than its name says".into(),
                })
            }
            Ok(_) => {}
        }
        if table.is_some() && !referenced.contains(&object.sha256) {
            report.unreferenced.push(object.sha256.clone());
        }
    }
    report.leftovers = fs
        .temporaries()
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    Ok(report)
}
