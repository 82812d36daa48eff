//! Shared by the boot and shell benches.

use std::path::Path;

use pxos_cart::{Action, Actor, EvolutionLog, LogEntry};
use pxos_pixel::Hash256;

/// Grows the home's evolution log to `total` entries with notes, written in
/// one go (appending them one by one would take a while).
pub fn grow_log(home: &Path, total: usize) {
    let log = EvolutionLog::open(&home.join("log")).unwrap();
    let mut entries = log.entries().unwrap();
    while entries.len() < total {
        let last = entries.last().unwrap();
        let mut entry = LogEntry {
            seq: last.seq + 1,
            time: last.time.clone(),
            actor: Actor::human("bench"),
            action: Action::Note {
                label: "note".into(),
            },
            reason: format!("note {}", entries.len()),
            prev: last.hash,
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        entries.push(entry);
    }
    // Rebuilt in one go through the segmented log's bulk writer.
    std::fs::remove_dir_all(log.log_path()).unwrap();
    pxos_fs::seglog::SegLog::new(&log.log_path())
        .create_from(&mut entries.iter().map(|e| serde_json::to_vec(e).unwrap()))
        .unwrap();
    let log = EvolutionLog::open(&home.join("log")).unwrap();
    assert!(log.verify().unwrap().is_ok());
}
