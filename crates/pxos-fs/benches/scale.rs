//! How the cost of one write grows with the store: one `add` (replacing the
//! same path, so the store keeps its size) into PixelFS trees of 10^2, 10^3
//! and 10^4 files. This is the baseline the scale work (issue 15) is
//! measured against: today every add rewrites the whole path table, so the
//! cost grows linearly. `cargo bench -p pxos-fs --bench scale`; CI runs each once
//! at the small sizes (`-- --test`).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_fs::{AddOptions, PixelFs};

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

/// A store holding `files` small files, added in one batch.
fn store(root: &Path, files: usize) -> PixelFs {
    let _ = std::fs::remove_dir_all(root);
    let source = root.join("source");
    std::fs::create_dir_all(&source).unwrap();
    for index in 0..files {
        std::fs::write(
            source.join(format!("f{index:06}.txt")),
            format!("file {index}\n"),
        )
        .unwrap();
    }
    let fs = PixelFs::init(&root.join("fs")).unwrap();
    fs.add_tree(&source, "/tree", &AddOptions::default(), false, &mut |_| {})
        .unwrap();
    fs
}

fn fs_add(c: &mut Criterion) {
    let sizes: &[usize] = if quick() {
        &[100, 300]
    } else {
        &[100, 1_000, 10_000]
    };
    let base = std::env::temp_dir().join(format!("pxos-fs-scale-{}", std::process::id()));
    let mut group = c.benchmark_group("scale/fs-add");
    group.sample_size(10);
    for &files in sizes {
        let root = base.join(files.to_string());
        let fs = store(&root, files);
        let one = root.join("one.txt");
        let options = AddOptions {
            replace: true,
            ..AddOptions::default()
        };
        let mut round = 0u64;
        group.bench_function(format!("{files}-files"), |b| {
            b.iter(|| {
                round += 1;
                std::fs::write(&one, format!("round {round}\n")).unwrap();
                let added = fs.add_file("/docs/one.txt", &one, &options).unwrap();
                assert_eq!(added.entry.path, "/docs/one.txt");
                added.entry.size
            })
        });
        assert_eq!(fs.table().unwrap().entries().count(), files + 1);
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, fs_add);
criterion_main!(benches);
