//! PixelFS behaviour: dedup, unlink + gc, fsck, resolve, locking, hostile tables.

use std::path::{Path, PathBuf};

use pxos_fs::{
    AddOptions, AddStatus, Error, PathTable, PixelFs, read_boot_pixel, write_boot_pixel,
};

use pxos_test_support::TempDir;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    pxos_test_support::write_file(dir, name, bytes)
}

#[test]
fn same_content_twice_is_one_object() {
    let dir = TempDir::new("dedup");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    let a = write(&dir.0, "a.txt", b"identical content");
    let b = write(&dir.0, "b.txt", b"identical content");
    let first = fs.add_file("/one", &a, &AddOptions::default()).unwrap();
    let second = fs.add_file("/two", &b, &AddOptions::default()).unwrap();
    assert!(first.new_object && !second.new_object);
    assert_eq!(first.entry.sha256, second.entry.sha256);
    assert!(fs.object_path(&first.entry.sha256).is_file());
    assert_eq!(fs.table().unwrap().len(), 2);
    // Adding the same thing again changes nothing.
    let again = fs.add_file("/one", &a, &AddOptions::default()).unwrap();
    assert_eq!(again.status, AddStatus::Unchanged);
    // Other content at an existing path needs --replace.
    let c = write(&dir.0, "c.txt", b"other");
    assert!(fs.add_file("/one", &c, &AddOptions::default()).is_err());
    let replaced = fs
        .add_file(
            "/one",
            &c,
            &AddOptions {
                replace: true,
                ..AddOptions::default()
            },
        )
        .unwrap();
    assert_eq!(replaced.status, AddStatus::Replaced);
    let mut out = Vec::new();
    fs.read_to(&fs.get("/one").unwrap(), &mut out).unwrap();
    assert_eq!(out, b"other");
}

#[test]
fn rm_keeps_the_object_and_gc_lists_exactly_what_no_snapshot_reaches() {
    let dir = TempDir::new("gc");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    fs.add_file(
        "/keep",
        &write(&dir.0, "k", b"keep me"),
        &AddOptions::default(),
    )
    .unwrap();
    let dropped = fs
        .add_file(
            "/drop",
            &write(&dir.0, "d", b"drop me"),
            &AddOptions::default(),
        )
        .unwrap();
    assert!(fs.gc(false).unwrap().is_empty());
    let before_rm = fs.head().unwrap().snapshot;
    fs.remove("/drop").unwrap();
    assert!(fs.get("/drop").unwrap_err().is_not_found());
    // The earlier snapshot still holds it, so gc keeps it.
    assert!(fs.gc(false).unwrap().is_empty());
    assert_eq!(
        fs.get_at("/drop", Some(before_rm)).unwrap().sha256,
        dropped.entry.sha256
    );
    // An object nothing reaches (a write that never committed) is garbage.
    let (orphan, _) = fs
        .store()
        .put_loose(
            b"never committed",
            pxos_pixel::Kind::Blob,
            pxos_pixel::durable::label::FS_TREE,
        )
        .unwrap();
    let listed = fs.gc(false).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sha256, orphan.to_hex());
    assert!(listed[0].path.is_file(), "dry run deletes nothing");
    let removed = fs.gc(true).unwrap();
    assert_eq!(removed, listed);
    assert!(!listed[0].path.exists());
    assert!(fs.fsck().unwrap().is_clean());
    assert!(
        std::fs::read_to_string(fs.root().join("gc.log"))
            .unwrap()
            .contains(&orphan.to_hex())
    );
    // Every snapshot still reads back.
    for snapshot in fs.snapshots().unwrap() {
        fs.table_at(Some(snapshot.snapshot)).unwrap();
    }
}

#[test]
fn fsck_finds_planted_corruption() {
    let dir = TempDir::new("fsck");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    let added = fs
        .add_file(
            "/data",
            &write(&dir.0, "x", &vec![42u8; 100_000]),
            &AddOptions::default(),
        )
        .unwrap();
    assert!(fs.fsck().unwrap().is_clean());
    let object = fs.object_path(&added.entry.sha256);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&object, bytes).unwrap();
    let report = fs.fsck().unwrap();
    assert!(!report.is_clean());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.subject.contains(&added.entry.sha256[2..])),
        "{report:?}"
    );
    assert_eq!(fs.verify(&[]).unwrap().len(), 1);
    // A missing object is a problem too.
    std::fs::remove_file(&object).unwrap();
    let report = fs.fsck().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.subject == "/data" && p.message.contains("missing"))
    );
}

#[test]
fn resolve_from_path_file_id_and_boot_pixel() {
    let dir = TempDir::new("resolve");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    let added = fs
        .add_file(
            "/boot/00_kernel",
            &write(&dir.0, "k", b"kernel bytes"),
            &AddOptions::default(),
        )
        .unwrap();
    let entry = added.entry;
    assert_eq!(fs.resolve("/boot/00_kernel").unwrap(), vec![entry.clone()]);
    assert_eq!(fs.resolve(&entry.file_id).unwrap(), vec![entry.clone()]);
    assert_eq!(
        fs.resolve(&entry.file_id[2..]).unwrap(),
        vec![entry.clone()]
    );
    let pixel = dir.0.join("kernel-pixel.png");
    write_boot_pixel(&pixel, entry.rgba()).unwrap();
    assert_eq!(read_boot_pixel(&pixel).unwrap(), entry.file_id_value());
    assert_eq!(
        fs.resolve(pixel.to_str().unwrap()).unwrap(),
        vec![entry.clone()]
    );
    assert!(fs.resolve("/nope").unwrap_err().is_not_found());
    assert!(fs.resolve("0x00000000").unwrap_err().is_not_found());
    let not_pixel = write(
        &dir.0,
        "big.png",
        &pxos_pixel::encode_to_vec(b"x", &Default::default()).unwrap(),
    );
    assert!(
        fs.resolve(not_pixel.to_str().unwrap())
            .unwrap_err()
            .to_string()
            .contains("not a boot pixel")
    );
}

#[test]
fn a_second_writer_waits_for_the_lock_then_gives_up_or_goes_on() {
    pxos_fs::lock::set_lock_timeout(std::time::Duration::from_millis(300));
    let dir = TempDir::new("lock");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    // Held throughout: the writer waits its timeout, then says why it gave up.
    let guard = fs.lock().unwrap();
    let started = std::time::Instant::now();
    let err = fs
        .add_file("/a", &write(&dir.0, "a", b"a"), &AddOptions::default())
        .unwrap_err();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(matches!(err.root(), Error::Locked { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(message.contains("--lock-timeout"), "{message}");
    // Released while the writer waits: it goes on.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(guard);
    });
    fs.add_file("/a", &write(&dir.0, "a", b"a"), &AddOptions::default())
        .unwrap();
    releaser.join().unwrap();
}

#[test]
fn add_tree_walks_and_skips_hidden_and_target() {
    let dir = TempDir::new("tree");
    let src = dir.0.join("src");
    write(&src, "lib.rs", b"fn main() {}");
    write(&src, "nested/deep/data.bin", &[0, 1, 2, 255]);
    write(&src, ".git/config", b"hidden");
    write(&src, "target/debug/out", b"built");
    let fs = PixelFs::init(&dir.0.join("fs")).unwrap();
    let added = fs
        .add_tree(&src, "/src", &AddOptions::default(), false, &mut |_| {})
        .unwrap();
    let paths: Vec<&str> = added.iter().map(|a| a.entry.path.as_str()).collect();
    assert_eq!(paths, ["/src/lib.rs", "/src/nested/deep/data.bin"]);
    assert_eq!(added[0].entry.kind, "text");
    assert_eq!(added[1].entry.kind, "blob");
    let again = fs
        .add_tree(&src, "/src", &AddOptions::default(), false, &mut |_| {})
        .unwrap();
    assert!(again.iter().all(|a| a.status == AddStatus::Unchanged));
}

#[test]
fn hostile_path_tables_are_refused() {
    let json_cases: &[&str] = &[
        "",
        "{}",
        r##"{"format":"pxos-path-table","version":2,"generation":0,"entries":[]}"##,
        r##"{"format":"pxos-path-table","version":1,"generation":0,"entries":[{"path":"../etc/passwd","type":"blob","description":"","size":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000","file_id":"0x00000000","color":"#00000000","created":""}]}"##,
        r##"{"format":"pxos-path-table","version":1,"generation":0,"entries":[{"path":"/a","type":"blob","description":"","size":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000","file_id":"0x00000001","color":"#00000000","created":""}]}"##,
    ];
    for json in json_cases {
        let png = pxos_pixel::encode_to_vec(
            json.as_bytes(),
            &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
        )
        .unwrap();
        assert!(PathTable::decode(&png).is_err(), "accepted {json}");
    }
    let blob = pxos_pixel::encode_to_vec(b"{}", &Default::default()).unwrap();
    assert!(
        PathTable::decode(&blob)
            .unwrap_err()
            .to_string()
            .contains("not a path table")
    );
}

/// A store with loose objects, a pack and a few snapshots.
fn store_with_history(dir: &Path) -> PixelFs {
    let fs = PixelFs::init(&dir.join("fs")).unwrap();
    let mut batch = pxos_fs::Batch::new();
    for i in 0..20 {
        batch.bytes(
            format!("/pack/d{}/f{i}.txt", i % 3),
            format!("packed {i}").into_bytes(),
            pxos_pixel::Kind::Text,
            None,
        );
    }
    fs.add_batch(batch, &AddOptions::default(), "add-dir", &mut |_| {})
        .unwrap();
    fs.add_file(
        "/loose/big.bin",
        &write(dir, "big", &vec![7u8; 300_000]),
        &AddOptions::default(),
    )
    .unwrap();
    fs
}

#[test]
fn batches_pack_small_files_and_read_them_back() {
    let dir = TempDir::new("packs");
    let fs = store_with_history(&dir.0);
    assert_eq!(fs.store().pack_files().unwrap().len(), 1);
    for i in 0..20 {
        let entry = fs.get(&format!("/pack/d{}/f{i}.txt", i % 3)).unwrap();
        let mut out = Vec::new();
        fs.read_to(&entry, &mut out).unwrap();
        assert_eq!(out, format!("packed {i}").as_bytes());
        assert!(
            fs.object_location(&entry.sha256)
                .unwrap()
                .unwrap()
                .contains("packs/")
        );
    }
    let big = fs.get("/loose/big.bin").unwrap();
    assert!(
        fs.object_path(&big.sha256).is_file(),
        "large files stay loose"
    );
    let head = fs.head().unwrap();
    assert_eq!((head.files, head.snapshot), (21, 2));
    let report = fs.fsck().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // The same batch again is unchanged: no new snapshot, no new pack.
    let mut batch = pxos_fs::Batch::new();
    batch.bytes(
        "/pack/d0/f0.txt".into(),
        b"packed 0".to_vec(),
        pxos_pixel::Kind::Text,
        None,
    );
    let added = fs
        .add_batch(batch, &AddOptions::default(), "add-dir", &mut |_| {})
        .unwrap();
    assert_eq!(added[0].status, AddStatus::Unchanged);
    assert_eq!(fs.head().unwrap().snapshot, 2);
    // A lost or damaged index is only an accelerator: rebuilt from the pack.
    let pack = fs.store().pack_files().unwrap().remove(0);
    for damage in [
        None,
        Some(vec![0u8; 7]),
        Some(b"PXPKIX1\n\x05\0\0\0\0\0\0\0".to_vec()),
    ] {
        match &damage {
            None => std::fs::remove_file(pack.with_extension("idx")).unwrap(),
            Some(bytes) => std::fs::write(pack.with_extension("idx"), bytes).unwrap(),
        }
        let fresh = PixelFs::open(fs.root()).unwrap();
        let entry = fresh.get("/pack/d1/f7.txt").unwrap();
        let mut out = Vec::new();
        fresh.read_to(&entry, &mut out).unwrap();
        assert_eq!(out, b"packed 7", "{damage:?}");
        assert!(fresh.fsck().unwrap().is_clean());
    }
}

#[test]
fn damaged_or_hostile_stores_are_reported_never_a_panic() {
    type Damage = fn(&PixelFs);
    let damages: Vec<(&str, Damage, &str)> = vec![
        (
            "HEAD garbage",
            |fs| std::fs::write(fs.root().join("HEAD"), "{").unwrap(),
            "HEAD",
        ),
        (
            "HEAD names another root",
            |fs| {
                let mut head = fs.head().unwrap();
                head.root = pxos_pixel::Hash256::of(b"elsewhere");
                std::fs::write(fs.root().join("HEAD"), serde_json::to_vec(&head).unwrap()).unwrap();
            },
            "HEAD",
        ),
        (
            "a directory object replaced by other valid pixels",
            |fs| {
                let root = fs.head().unwrap().root;
                let object = fs.object_path(&root.to_hex());
                let png = pxos_pixel::encode_to_vec(
                    b"{\"format\":\"pxos-tree\",\"version\":1,\"entries\":[]}",
                    &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
                )
                .unwrap();
                std::fs::write(object, png).unwrap();
            },
            "other content",
        ),
        (
            "a pack byte flipped",
            |fs| {
                let pack = fs.store().pack_files().unwrap().remove(0);
                let mut bytes = std::fs::read(&pack).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x40;
                std::fs::write(pack, bytes).unwrap();
            },
            "pack",
        ),
        (
            "a snapshot record edited",
            |fs| {
                pxos_test_support::edit_log(&fs.root().join("snapshots"), |v| {
                    v["entries"][1]["op"] = "nothing happened".into()
                })
            },
            "snapshots",
        ),
        (
            "the snapshot log deleted",
            |fs| std::fs::remove_dir_all(fs.root().join("snapshots")).unwrap(),
            "snapshot",
        ),
    ];
    for (name, damage, expected) in damages {
        let dir = TempDir::new("hostile-store");
        let fs = store_with_history(&dir.0);
        damage(&fs);
        // Every reader answers, with an error or a report; gc keeps everything.
        let fresh = PixelFs::open(fs.root());
        if let Ok(fresh) = &fresh {
            let report = fresh.fsck();
            match report {
                Ok(report) => {
                    assert!(!report.is_clean(), "{name}: fsck found nothing");
                    assert!(
                        report
                            .problems
                            .iter()
                            .any(|p| p.subject.contains(expected) || p.message.contains(expected)),
                        "{name}: {report:?}"
                    );
                }
                Err(err) => assert!(err.to_string().contains(expected), "{name}: {err}"),
            }
            let _ = fresh.table();
            let _ = fresh.get("/pack/d1/f7.txt");
            let _ = fresh.snapshots();
            let _ = fresh.diff(0, 1);
            if let Ok(garbage) = fresh.gc(false) {
                assert!(garbage.is_empty(), "{name}: gc would delete {garbage:?}");
            }
            let added = fresh.add_file(
                "/after",
                &write(&dir.0, "after", b"x"),
                &AddOptions::default(),
            );
            assert!(
                added.is_err() || name == "a pack byte flipped",
                "{name}: a write built on damage"
            );
        }
    }
}
