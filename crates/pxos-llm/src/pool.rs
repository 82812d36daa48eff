//! Helper threads for the engine's matrix-vector products.
//!
//! A token step runs dozens of products of a few hundred microseconds each.
//! Waking a sleeping pool thread (rayon's) costs tens of microseconds here,
//! so the engine keeps its own helpers, which spin between products while a
//! generation runs and park when it stops. Work is handed over through a
//! mutex-protected slot and sequence counters: all safe code. Each output row
//! is computed whole by one thread with the same kernel, so results do not
//! depend on the number of helpers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dtype::{DType, Input, dot_input};
use crate::format::ModelFile;

/// A run of rows of one tensor: type, first byte in the payload, row bytes, rows.
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub dtype: DType,
    pub start: usize,
    pub row_bytes: usize,
    pub rows: usize,
}

struct Job {
    work: Vec<Rows>,
    x: Arc<Input>,
    out: Vec<f32>,
}

struct Slot {
    posted: AtomicU64,
    finished: AtomicU64,
    stop: AtomicBool,
    job: Mutex<Option<Job>>,
}

struct Helper {
    slot: Arc<Slot>,
    thread: JoinHandle<()>,
}

/// How long a helper spins for the next product before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The engine's helpers (one fewer than the threads it uses).
pub struct Pool {
    helpers: Vec<Helper>,
    file: Arc<ModelFile>,
}

fn run_rows(payload: &[u8], work: &[Rows], x: &Input, out: &mut Vec<f32>) {
    for r in work {
        let bytes = &payload[r.start..r.start + r.rows * r.row_bytes];
        out.extend(
            bytes
                .chunks_exact(r.row_bytes)
                .map(|row| dot_input(r.dtype, row, x)),
        );
    }
}

impl Pool {
    /// A pool using `threads` threads in all (the caller's included).
    pub fn new(file: Arc<ModelFile>, threads: usize) -> Pool {
        let helpers = (1..threads.max(1))
            .map(|_| {
                let slot = Arc::new(Slot {
                    posted: AtomicU64::new(0),
                    finished: AtomicU64::new(0),
                    stop: AtomicBool::new(false),
                    job: Mutex::new(None),
                });
                let theirs = Arc::clone(&slot);
                let file = Arc::clone(&file);
                let thread = std::thread::spawn(move || helper_loop(&theirs, &file));
                Helper { slot, thread }
            })
            .collect();
        Pool { helpers, file }
    }

    /// Computes every product in `jobs` (rows of the model's tensors times
    /// `x`), writing into `outs`: the rows are split by bytes between this
    /// thread and the helpers.
    pub fn run(&self, jobs: &[Rows], outs: &mut [&mut [f32]], x: &[f32]) {
        let x = Input::new(x, jobs.iter().any(|j| j.dtype.reads_q8_input()));
        let payload = self.file.payload();
        let total: usize = jobs.iter().map(|j| j.rows * j.row_bytes).sum();
        let threads = self.helpers.len() + 1;
        if threads == 1 || total < SERIAL_BYTES {
            for (job, out) in jobs.iter().zip(outs.iter_mut()) {
                let mut v = Vec::with_capacity(job.rows);
                run_rows(payload, std::slice::from_ref(job), &x, &mut v);
                out.copy_from_slice(&v);
            }
            return;
        }
        // Shares of about total / threads bytes, in row order.
        let share = total.div_ceil(threads);
        let mut parts: Vec<Vec<Rows>> = vec![Vec::new(); threads];
        let (mut part, mut filled) = (0usize, 0usize);
        for job in jobs {
            let mut done = 0;
            while done < job.rows {
                let room = (share.saturating_sub(filled) / job.row_bytes).max(1);
                let take = room.min(job.rows - done);
                parts[part.min(threads - 1)].push(Rows {
                    start: job.start + done * job.row_bytes,
                    rows: take,
                    ..*job
                });
                done += take;
                filled += take * job.row_bytes;
                if filled >= share {
                    part += 1;
                    filled = 0;
                }
            }
        }
        let x_shared = Arc::new(x);
        let mut mine = Vec::new();
        for (helper, work) in self.helpers.iter().zip(parts.iter().skip(1)) {
            let mut slot = helper.slot.job.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Job {
                work: work.clone(),
                x: Arc::clone(&x_shared),
                out: Vec::new(),
            });
            drop(slot);
            helper.slot.posted.fetch_add(1, Ordering::Release);
            helper.thread.thread().unpark();
        }
        run_rows(payload, &parts[0], &x_shared, &mut mine);
        // Gather: this thread's rows, then each helper's, in order.
        let mut results = vec![mine];
        for helper in &self.helpers {
            let want = helper.slot.posted.load(Ordering::Relaxed);
            let mut spins = 0u32;
            while helper.slot.finished.load(Ordering::Acquire) < want {
                // On a busy machine the helper may be descheduled: give way.
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            let job = helper
                .slot
                .job
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            results.push(job.map(|j| j.out).unwrap_or_default());
        }
        let mut flat = results.iter().flatten().copied();
        for out in outs.iter_mut() {
            for o in out.iter_mut() {
                *o = flat.next().expect("every row computed");
            }
        }
    }
}

/// Below this many bytes of weights a product runs on the calling thread alone.
const SERIAL_BYTES: usize = 64 << 10;

fn helper_loop(slot: &Slot, file: &ModelFile) {
    let payload = file.payload();
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        if slot.stop.load(Ordering::Acquire) {
            return;
        }
        let posted = slot.posted.load(Ordering::Acquire);
        if posted == seen {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) {
                // Give way to other threads now and then, and after SPIN park.
                if idle_since.elapsed() < SPIN {
                    std::thread::yield_now();
                } else {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        seen = posted;
        let mut guard = slot.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = guard.as_mut() {
            let mut out = std::mem::take(&mut job.out);
            run_rows(payload, &job.work, &job.x, &mut out);
            job.out = out;
        }
        drop(guard);
        slot.finished.store(seen, Ordering::Release);
        idle_since = Instant::now();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for helper in self.helpers.drain(..) {
            helper.slot.stop.store(true, Ordering::Release);
            helper.thread.thread().unpark();
            let _ = helper.thread.join();
        }
    }
}
