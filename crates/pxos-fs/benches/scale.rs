//! How PixelFS's costs grow with the store, against git on the same files in
//! the same run (`docs/benchmarks.md`):
//!
//! * `scale/fs-add`: one `add` (replacing one file of a directory of 100, at
//!   depth 3) into trees of 10^2 .. 10^6 files laid out 100 to a directory,
//!   and `git add` + `git commit` of the same change in a repository holding
//!   the same files (built with `git fast-import`, index read from HEAD).
//! * `scale/discover`: adding a fresh host tree of small files in one batch
//!   (`fs add-dir`, what `fs discover` runs) against `git add -A`.
//! * `scale/fsck`: `fs fsck` of a store of that many files.
//!
//! `cargo bench -p pxos-fs --bench scale` measures 10^2 and 10^4 files;
//! `PXOS_BENCH_FULL=1` adds 10^5 and 10^6 (minutes, a few GB of disk).
//! CI runs each once at the smallest sizes (`-- --test`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_fs::{AddOptions, Batch, PixelFs};

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

fn full() -> bool {
    std::env::var_os("PXOS_BENCH_FULL").is_some()
}

/// The path of file `index` in the bench layout: 100 files to a directory,
/// 100 directories to a directory, three levels.
fn layout(index: usize) -> String {
    format!(
        "/tree/a{:02}/b{:02}/f{:02}.txt",
        index / 10_000,
        (index / 100) % 100,
        index % 100
    )
}

fn content(index: usize) -> Vec<u8> {
    format!("file {index}\n").into_bytes()
}

fn git(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@pxos"])
        .args(args)
        .stdout(Stdio::null());
    command
}

fn run(mut command: Command) {
    let status = command.status().expect("git runs");
    assert!(status.success(), "{command:?} failed");
}

/// A PixelFS store of `files` files (one batch, as `add-dir` writes it).
fn pxos_store(root: &Path, files: usize) -> PixelFs {
    let fs = PixelFs::init(root).unwrap();
    let mut batch = Batch::new();
    for index in 0..files {
        batch.bytes(layout(index), content(index), pxos_pixel::Kind::Text, None);
    }
    fs.add_batch(batch, &AddOptions::default(), "bench", &mut |_| {})
        .unwrap();
    fs
}

/// A git repository with the same files committed, its index read from HEAD
/// (the working tree is not checked out: `git add PATH` and `git commit`
/// read only the index and the one file).
fn git_repo(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    run(git(dir, &["init", "-q"]));
    let mut import = git(dir, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = std::io::BufWriter::new(import.stdin.take().unwrap());
        for index in 0..files {
            let data = content(index);
            write!(stdin, "blob\nmark :{}\ndata {}\n", index + 1, data.len()).unwrap();
            stdin.write_all(&data).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
        write!(
            stdin,
            "commit refs/heads/master\ncommitter b <b@p> 0 +0000\ndata 4\nbase\n"
        )
        .unwrap();
        for index in 0..files {
            writeln!(stdin, "M 100644 :{} {}", index + 1, &layout(index)[1..]).unwrap();
        }
        stdin.write_all(b"\n").unwrap();
    }
    assert!(import.wait().unwrap().success());
    run(git(dir, &["symbolic-ref", "HEAD", "refs/heads/master"]));
    run(git(dir, &["read-tree", "HEAD"]));
}

fn fs_add(c: &mut Criterion) {
    let sizes: &[usize] = match (quick(), full()) {
        (true, _) => &[100, 1_000],
        (false, false) => &[100, 10_000],
        (false, true) => &[100, 10_000, 100_000, 1_000_000],
    };
    let base = std::env::temp_dir().join(format!("pxos-fs-scale-{}", std::process::id()));
    let mut group = c.benchmark_group("scale/fs-add");
    group.sample_size(10);
    for &files in sizes {
        let root = base.join(files.to_string());
        let _ = std::fs::remove_dir_all(&root);
        let fs = pxos_store(&root.join("fs"), files);
        let one = root.join("one.txt");
        let options = AddOptions {
            replace: true,
            ..AddOptions::default()
        };
        let mut round = 0u64;
        group.bench_function(format!("pxos/{files}-files"), |b| {
            b.iter(|| {
                round += 1;
                std::fs::write(&one, format!("round {round}\n")).unwrap();
                fs.add_file("/tree/a00/b00/one.txt", &one, &options)
                    .unwrap()
                    .entry
                    .size
            })
        });
        assert_eq!(fs.head().unwrap().files, files as u64 + 1);
        let repo = root.join("git");
        git_repo(&repo, files);
        let target = repo.join("tree/a00/b00");
        std::fs::create_dir_all(&target).unwrap();
        let mut round = 0u64;
        group.bench_function(format!("git/{files}-files"), |b| {
            b.iter(|| {
                round += 1;
                std::fs::write(target.join("one.txt"), format!("round {round}\n")).unwrap();
                run(git(&repo, &["add", "tree/a00/b00/one.txt"]));
                run(git(&repo, &["commit", "-q", "-m", "one"]));
            })
        });
        let _ = std::fs::remove_dir_all(&root);
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

/// Writes `files` small host files in the bench layout under `dir`.
fn host_tree(dir: &Path, files: usize) {
    for index in 0..files {
        let path = dir.join(&layout(index)[1..]);
        if index % 100 == 0 {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        std::fs::write(path, content(index)).unwrap();
    }
}

/// Times `op` on a fresh copy of the state `fresh` makes, per iteration.
fn fresh_each(iters: u64, fresh: &dyn Fn(u64) -> PathBuf, op: &dyn Fn(&Path)) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let dir = fresh(i);
        let start = Instant::now();
        op(&dir);
        total += start.elapsed();
        let _ = std::fs::remove_dir_all(&dir);
    }
    total
}

fn discover_and_fsck(c: &mut Criterion) {
    let files = match (quick(), full()) {
        (true, _) => 1_000,
        (false, false) => 10_000,
        (false, true) => 100_000,
    };
    let base = std::env::temp_dir().join(format!("pxos-fs-discover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let source = base.join("source");
    host_tree(&source, files);
    let mut group = c.benchmark_group("scale/discover");
    group.sample_size(10);
    group.bench_function(format!("pxos/{files}-files"), |b| {
        b.iter_custom(|iters| {
            fresh_each(iters, &|i| base.join(format!("fs-{i}")), &|dir| {
                let fs = PixelFs::init(dir).unwrap();
                let added = fs
                    .add_tree(&source, "/tree", &AddOptions::default(), false, &mut |_| {})
                    .unwrap();
                assert_eq!(added.len(), files);
            })
        })
    });
    group.bench_function(format!("git-add-A/{files}-files"), |b| {
        b.iter_custom(|iters| {
            fresh_each(
                iters,
                &|_| {
                    let git_dir = base.join("gitdir");
                    let _ = std::fs::remove_dir_all(&git_dir);
                    run(git(
                        &source,
                        &["--git-dir", git_dir.to_str().unwrap(), "init", "-q"],
                    ));
                    git_dir
                },
                &|git_dir| {
                    run(git(
                        &source,
                        &[
                            "--git-dir",
                            git_dir.to_str().unwrap(),
                            "--work-tree",
                            ".",
                            "add",
                            "-A",
                        ],
                    ));
                },
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("scale/fsck");
    group.sample_size(10);
    let store = base.join("fsck");
    let fs = pxos_store(&store, files);
    group.bench_function(format!("pxos/{files}-files"), |b| {
        b.iter(|| {
            let report = fs.fsck().unwrap();
            assert!(report.is_clean() && report.entries == files);
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, fs_add, discover_and_fsck);
criterion_main!(benches);
