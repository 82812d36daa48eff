//! The shell's cost per command, against the same work done directly in Rust
//! in the same run (the reference), and how it grows with the store behind
//! the command: `ls /` over a PixelFS root of 10^2 and 10^4 entries, `log 3`
//! over an evolution log of 10^2 and 10^4 entries, `run hello 1`.
//! A session is 100 identical lines read from a scripted terminal, so the
//! per-line figure includes the shell's start (log replay, unpack check).
//! `cargo bench -p pxos-boot --bench shell`; CI runs it once (`-- --test`).

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pxos_boot::boot::{BootRequest, boot_home};
use pxos_boot::shell::{ShellRequest, Terminal, run_shell};
use pxos_cart::EvolutionLog;
use pxos_vm::{LineRead, Storage};

#[path = "support/log.rs"]
mod log_support;
use log_support::grow_log;

const LINES: usize = 100;

/// `count` copies of `line`, then the end of input.
struct Script {
    line: String,
    left: usize,
}

impl Terminal for Script {
    fn read_line(&mut self, _prompt: &str) -> LineRead {
        if self.left == 0 {
            return LineRead::End;
        }
        self.left -= 1;
        LineRead::Line(self.line.clone())
    }
    fn clear(&mut self) {}
}

fn session(home: &Path, line: &str) -> usize {
    let printed = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let counter = printed.clone();
    let end = run_shell(
        home,
        &ShellRequest::default(),
        Box::new(Script {
            line: line.to_string(),
            left: LINES,
        }),
        Some(Box::new(move |_: &str| counter.set(counter.get() + 1))),
    )
    .unwrap();
    assert!(end.result.success && end.lines_read == LINES as u64);
    printed.get()
}

/// A booted home whose PixelFS root holds `files` entries and whose
/// evolution log has `entries` entries.
fn home(name: &str, files: usize, entries: usize) -> PathBuf {
    let home = std::env::temp_dir().join(format!("pxos-shell-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let fs = pxos_fs::PixelFs::init(&home.join("fs")).unwrap();
    let mut batch = pxos_fs::Batch::new();
    for index in 0..files {
        batch.bytes(
            format!("/f{index:06}"),
            format!("file {index}").into_bytes(),
            pxos_pixel::Kind::Text,
            None,
        );
    }
    fs.add_batch(batch, &pxos_fs::AddOptions::default(), "bench", &mut |_| {})
        .unwrap();
    boot_home(&home, &BootRequest::default()).unwrap();
    grow_log(&home, entries);
    home
}

fn shell(c: &mut Criterion) {
    let mut group = c.benchmark_group("shell");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LINES as u64));
    for size in [100, 10_000] {
        let home = home(&format!("n{size}"), size, size);
        // The references: the same work from Rust, one call per line.
        group.bench_function(format!("reference/list-root/{size}"), |b| {
            b.iter(|| {
                let fs = pxos_fs::PixelFs::open(&home.join("fs")).unwrap();
                let mut storage = pxos_boot::FsStorage::read_only(fs, home.join("tmp"));
                for _ in 0..LINES {
                    assert!(storage.list_dir("/").unwrap().len() >= size);
                }
            })
        });
        group.bench_function(format!("ls-root/{size}"), |b| {
            b.iter(|| assert!(session(&home, "ls /") >= LINES))
        });
        group.bench_function(format!("reference/log-tail/{size}"), |b| {
            b.iter(|| {
                let log = EvolutionLog::open(&home.join("log")).unwrap();
                for _ in 0..LINES {
                    let end = log.end().unwrap().count;
                    assert!(log.entries_from(end - 3).unwrap().len() >= 3);
                }
            })
        });
        group.bench_function(format!("log-3/{size}"), |b| {
            b.iter(|| assert!(session(&home, "log 3") >= LINES))
        });
        {
            group.bench_function(format!("reference/run-hello/{size}"), |b| {
                b.iter(|| {
                    for _ in 0..LINES {
                        let (result, _) = pxos_boot::run::run_named(
                            &home,
                            "hello",
                            None,
                            &["1".to_string()],
                            100_000_000,
                            None,
                        )
                        .unwrap();
                        assert!(result.success);
                    }
                })
            });
            group.bench_function(format!("run-hello-1/{size}"), |b| {
                b.iter(|| assert!(session(&home, "run hello 1") >= LINES))
            });
        }
        // The shell's start (finding the current cartridge replays the log)
        // and 100 empty lines.
        group.bench_function(format!("empty-line/{size}"), |b| {
            b.iter(|| session(&home, ""))
        });
    }
    group.finish();
}

criterion_group!(benches, shell);
criterion_main!(benches);
