//! SHA-256 on a second thread, so hashing overlaps with PNG decoding.
//!
//! SHA-256 is inherently sequential and is the slowest step of a verified
//! decode (about 1.8 GB/s with SHA-NI on one core); running it beside the
//! decoder lets the two halves of the work share the machine's cores.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

const BUFFER: usize = 4 << 20;

pub(crate) enum Work {
    /// A buffer to hash and hand back for reuse.
    Owned(Vec<u8>),
    /// A range of a shared buffer (no copy needed).
    Shared(Arc<Vec<u8>>, Range<usize>),
}

/// Hashes bytes on the calling thread for small inputs, on a worker otherwise.
pub(crate) enum PayloadHasher {
    Inline(Sha256),
    Parallel {
        to_worker: SyncSender<Work>,
        free: Receiver<Vec<u8>>,
        current: Vec<u8>,
        worker: JoinHandle<[u8; 32]>,
    },
}

impl PayloadHasher {
    /// A hasher suited to `expected_len` bytes.
    pub(crate) fn new(expected_len: u64) -> PayloadHasher {
        if expected_len < 2 * BUFFER as u64 {
            return PayloadHasher::Inline(Sha256::new());
        }
        let (to_worker, work) = sync_channel::<Work>(16);
        let (give_back, free) = channel::<Vec<u8>>();
        give_back
            .send(Vec::with_capacity(BUFFER))
            .expect("receiver alive");
        give_back
            .send(Vec::with_capacity(BUFFER))
            .expect("receiver alive");
        let worker = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            while let Ok(item) = work.recv() {
                match item {
                    Work::Owned(mut buffer) => {
                        hasher.update(&buffer);
                        buffer.clear();
                        let _ = give_back.send(buffer);
                    }
                    Work::Shared(data, range) => hasher.update(&data[range]),
                }
            }
            hasher.finalize().into()
        });
        PayloadHasher::Parallel {
            to_worker,
            free,
            current: Vec::with_capacity(BUFFER),
            worker,
        }
    }

    /// Hashes a copy of `bytes`.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        match self {
            PayloadHasher::Inline(hasher) => hasher.update(bytes),
            PayloadHasher::Parallel {
                to_worker,
                free,
                current,
                ..
            } => {
                while !bytes.is_empty() {
                    let take = (BUFFER - current.len()).min(bytes.len());
                    current.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if current.len() == BUFFER {
                        let next = free.recv().unwrap_or_else(|_| Vec::with_capacity(BUFFER));
                        let full = std::mem::replace(current, next);
                        // A send only fails if the worker died; finalize reports that.
                        let _ = to_worker.send(Work::Owned(full));
                    }
                }
            }
        }
    }

    /// Hashes `data[range]` without copying it.
    pub(crate) fn update_shared(&mut self, data: Arc<Vec<u8>>, range: Range<usize>) {
        match self {
            PayloadHasher::Inline(hasher) => hasher.update(&data[range]),
            PayloadHasher::Parallel {
                to_worker,
                free,
                current,
                ..
            } => {
                if !current.is_empty() {
                    let next = free.recv().unwrap_or_else(|_| Vec::with_capacity(BUFFER));
                    let pending = std::mem::replace(current, next);
                    let _ = to_worker.send(Work::Owned(pending));
                }
                let _ = to_worker.send(Work::Shared(data, range));
            }
        }
    }

    pub(crate) fn finalize(self) -> [u8; 32] {
        match self {
            PayloadHasher::Inline(hasher) => hasher.finalize().into(),
            PayloadHasher::Parallel {
                to_worker,
                current,
                worker,
                ..
            } => {
                let _ = to_worker.send(Work::Owned(current));
                drop(to_worker);
                worker.join().expect("hash worker does not panic")
            }
        }
    }
}
