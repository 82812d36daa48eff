use crate::support::{Home, json_lines, repo_root};

#[test]
fn discover_the_project_tree_then_tree_resolve_and_dedup() {
    let home = Home::new("discover");
    let root = repo_root();
    let summary = json_lines(&home.ok(&[
        "fs",
        "discover",
        root.to_str().unwrap(),
        "--prefix",
        "/src",
        "--json",
    ]));
    let last = summary.last().unwrap();
    assert_eq!(last["type"], "add-summary");
    let files = last["files"].as_u64().unwrap();
    assert!(files > 20, "the project has more files: {last}");

    let tree = home.ok(&["fs", "tree", "/src"]);
    for expected in [
        "crates/",
        "pxos-pixel/",
        "Cargo.toml",
        "lib.rs",
        &format!("{files} files"),
    ] {
        assert!(tree.contains(expected), "tree lacks {expected}:\n{tree}");
    }
    assert!(!tree.contains("target/"), "target/ is skipped");

    // Resolve from a path, a file id and a boot pixel.
    let resolved = json_lines(&home.ok(&["fs", "resolve", "/src/Cargo.toml", "--json"]));
    let entry = &resolved[0]["entry"];
    let file_id = entry["file_id"].as_str().unwrap().to_string();
    let by_id = json_lines(&home.ok(&["fs", "resolve", &file_id, "--json"]));
    assert!(
        by_id
            .iter()
            .any(|r| r["entry"]["path"] == "/src/Cargo.toml")
    );
    let pixel = home.scratch("cargo-pixel.png");
    home.ok(&[
        "fs",
        "boot-pixel",
        "/src/Cargo.toml",
        "-o",
        pixel.to_str().unwrap(),
    ]);
    let by_pixel = json_lines(&home.ok(&["fs", "resolve", pixel.to_str().unwrap(), "--json"]));
    assert!(
        by_pixel
            .iter()
            .any(|r| r["entry"]["path"] == "/src/Cargo.toml")
    );
    home.fails(1, &["fs", "resolve", "/src/nope"]);

    // The same content again is one object.
    let copy = home.scratch("Cargo-copy.toml");
    std::fs::copy(root.join("Cargo.toml"), &copy).unwrap();
    let added = json_lines(&home.ok(&[
        "fs",
        "add",
        "/copy/Cargo.toml",
        copy.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(added[0]["new_object"], false);
    assert_eq!(added[0]["entry"]["sha256"], entry["sha256"]);
    let fsck = json_lines(&home.ok(&["fs", "fsck", "--json"]));
    let report = &fsck.last().unwrap()["report"];
    assert_eq!(report["entries"].as_u64().unwrap(), files + 1);
    // One object per distinct content, plus one per directory version.
    assert!(
        report["objects"].as_u64().unwrap() <= files + report["trees"].as_u64().unwrap(),
        "dedup keeps file objects <= files: {report}"
    );

    // get and cat give back the exact bytes.
    let out = home.scratch("got.toml");
    home.ok(&["fs", "get", "/src/Cargo.toml", "-o", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(root.join("Cargo.toml")).unwrap()
    );
    assert_eq!(
        home.ok(&["fs", "cat", "/src/Cargo.toml"]).as_bytes(),
        std::fs::read(root.join("Cargo.toml")).unwrap()
    );
    assert!(home.ok(&["fs", "ls", "/src"]).contains("crates/"));
}

#[test]
fn fsck_finds_a_planted_corruption() {
    let home = Home::new("fsck");
    let file = home.scratch("data.bin");
    std::fs::write(&file, vec![7u8; 50_000]).unwrap();
    let added =
        json_lines(&home.ok(&["fs", "add", "/data/seven", file.to_str().unwrap(), "--json"]));
    let sha = added[0]["entry"]["sha256"].as_str().unwrap().to_string();
    home.ok(&["fs", "fsck"]);
    home.ok(&["fs", "verify"]);
    let object = home
        .home()
        .join("fs/objects")
        .join(&sha[..2])
        .join(format!("{}.png", &sha[2..]));
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08;
    std::fs::write(&object, bytes).unwrap();
    let output = home.run(&["fs", "fsck"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("PROBLEM") && stdout.contains(&sha[2..]),
        "{stdout}"
    );
    assert_eq!(
        home.run(&["fs", "verify", "/data/seven"]).status.code(),
        Some(1)
    );
    home.fails(1, &["fs", "cat", "/data/seven"]);
}

#[test]
fn rm_keeps_earlier_snapshots_whole_and_gc_lists_exactly_what_a_crashed_add_left() {
    let home = Home::new("gc");
    let keep = home.scratch("keep.txt");
    let drop = home.scratch("drop.txt");
    std::fs::write(&keep, "keep").unwrap();
    std::fs::write(&drop, "drop").unwrap();
    home.ok(&["fs", "init"]);
    home.ok(&["fs", "add", "/keep", keep.to_str().unwrap()]);
    home.ok(&["fs", "add", "/drop", drop.to_str().unwrap()]);
    let no_garbage = |home: &Home| {
        json_lines(&home.ok(&["fs", "gc", "--dry-run", "--json"]))
            .iter()
            .all(|l| l["type"] != "gc")
    };
    assert!(no_garbage(&home));
    home.ok(&["fs", "rm", "/drop"]);
    home.fails(1, &["fs", "info", "/drop"]);
    // The snapshot before the rm still holds it, so gc keeps its object.
    assert!(no_garbage(&home));
    let cat = home
        .pxos()
        .args(["fs", "cat", "/drop", "--at", "2"])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, b"drop");
    // An add killed after its object was written, before anything named it.
    let orphan = home.scratch("orphan.txt");
    std::fs::write(&orphan, "never committed").unwrap();
    let crashed = home
        .pxos()
        .env("PXOS_CRASH_AT", "fs-tree.create-temp")
        .args(["fs", "add", "/orphan", orphan.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("crash injected"));
    home.fails(1, &["fs", "info", "/orphan"]);
    let listed = json_lines(&home.ok(&["fs", "gc", "--dry-run", "--json"]));
    let objects: Vec<&serde_json::Value> = listed.iter().filter(|l| l["type"] == "gc").collect();
    assert_eq!(objects.len(), 1, "{listed:?}");
    let sha = objects[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(objects[0]["removed"], false);
    // Plain gc is also a dry run; only --apply deletes.
    home.ok(&["fs", "gc"]);
    let object = home
        .home()
        .join("fs/objects")
        .join(&sha[..2])
        .join(format!("{}.png", &sha[2..]));
    assert!(object.is_file());
    home.ok(&["fs", "gc", "--apply"]);
    assert!(!object.exists());
    home.ok(&["fs", "cat", "/keep"]);
    home.ok(&["fs", "cat", "/drop", "--at", "2"]);
    assert!(home.ok(&["fs", "fsck"]).contains("clean"));
}

#[test]
fn reads_on_a_fresh_home_say_to_init() {
    let home = Home::new("fresh");
    let stderr = home.fails(2, &["fs", "ls"]);
    assert!(stderr.contains("pxos fs init"), "{stderr}");
}

#[test]
fn a_second_writer_gets_a_clear_lock_error() {
    let home = Home::new("lock");
    home.ok(&["fs", "init"]);
    let fs = pxos_fs::PixelFs::open(&home.home().join("fs")).unwrap();
    let guard = fs.lock().unwrap();
    let file = home.scratch("a.txt");
    std::fs::write(&file, "a").unwrap();
    let stderr = home.fails(2, &["fs", "add", "/a", file.to_str().unwrap()]);
    assert!(stderr.contains("another pxos process"), "{stderr}");
    drop(guard);
    home.ok(&["fs", "add", "/a", file.to_str().unwrap()]);
}

#[test]
fn add_dir_adds_under_a_destination_and_refuses_bad_paths() {
    let home = Home::new("add-dir");
    let dir = home.scratch("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "alpha").unwrap();
    std::fs::write(dir.join("sub/b.bin"), [0u8, 159, 146, 150]).unwrap();
    let lines = json_lines(&home.ok(&["fs", "add-dir", dir.to_str().unwrap(), "/data", "--json"]));
    let added: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "added")
        .map(|l| l["entry"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["/data/a.txt", "/data/sub/b.bin"]);
    assert_eq!(lines[1]["entry"]["type"], "blob");
    assert_eq!(home.ok(&["fs", "cat", "/data/a.txt"]), "alpha");
    for bad in ["data", "/data/../etc", "/data//x", "/"] {
        let stderr = home.fails(2, &["fs", "add", bad, dir.join("a.txt").to_str().unwrap()]);
        assert!(stderr.contains("invalid PixelFS path"), "{bad}: {stderr}");
    }
    // A file cannot also be a directory.
    let stderr = home.fails(
        2,
        &[
            "fs",
            "add",
            "/data/a.txt/inner",
            dir.join("a.txt").to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("is a file"), "{stderr}");
}

#[test]
fn four_writers_in_parallel_lose_nothing() {
    let home = Home::new("fs-parallel");
    home.ok(&["fs", "init"]);
    // Four processes, each adding 500 files (one batch each), and beside
    // them four threads of single adds racing for the same lock.
    let mut sources = Vec::new();
    for writer in 0..4 {
        let dir = home.scratch(&format!("w{writer}"));
        for file in 0..500 {
            let sub = dir.join(format!("d{}", file / 50));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("f{file}.txt")), format!("{writer}/{file}")).unwrap();
        }
        sources.push(dir);
    }
    let batches: Vec<std::process::Child> = sources
        .iter()
        .enumerate()
        .map(|(writer, dir)| {
            home.pxos()
                .args([
                    "fs",
                    "add-dir",
                    dir.to_str().unwrap(),
                    &format!("/w{writer}"),
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let home = &home;
            scope.spawn(move || {
                for n in 0..10 {
                    let file = home.scratch(&format!("single-{thread}-{n}.txt"));
                    std::fs::write(&file, format!("single {thread} {n}")).unwrap();
                    home.ok(&[
                        "fs",
                        "add",
                        &format!("/single/t{thread}/{n}.txt"),
                        file.to_str().unwrap(),
                    ]);
                }
            });
        }
    });
    for mut child in batches {
        assert!(child.wait().unwrap().success());
    }
    let fsck = json_lines(&home.ok(&["fs", "fsck", "--json"]));
    let report = &fsck.last().unwrap()["report"];
    assert_eq!(report["entries"], 4 * 500 + 4 * 10, "{report}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    // One snapshot per commit: init, four batches, forty adds.
    assert_eq!(report["snapshots"], 1 + 4 + 40, "{report}");
    let cat = home
        .pxos()
        .args(["fs", "cat", "/w3/d9/f499.txt"])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, b"3/499");
}

#[test]
fn every_earlier_snapshot_reads_back_exactly() {
    let home = Home::new("fs-snapshots");
    home.ok(&["fs", "init"]);
    // A history of adds, replacements, removals and a revert; after each
    // commit, what the tree held, path by path.
    let mut expected: Vec<std::collections::BTreeMap<String, String>> = vec![Default::default()];
    let mut now = std::collections::BTreeMap::new();
    let mut rng = pxos_test_support::Rng::new(15);
    for step in 0..40 {
        let path = format!("/d{}/e{}/f{}.txt", rng.below(3), rng.below(3), rng.below(4));
        if now.contains_key(&path) && rng.below(3) == 0 {
            home.ok(&["fs", "rm", &path]);
            now.remove(&path);
        } else {
            let text = format!("step {step}");
            let file = home.scratch("in.txt");
            std::fs::write(&file, &text).unwrap();
            let out = home.run(&["fs", "add", &path, file.to_str().unwrap(), "--replace"]);
            assert!(out.status.success());
            now.insert(path, text);
        }
        expected.push(now.clone());
    }
    home.ok(&["fs", "revert", "10"]);
    expected.push(expected[10].clone());
    for (snapshot, files) in expected.iter().enumerate() {
        let at = snapshot.to_string();
        let listed = json_lines(&home.ok(&["fs", "tree", "/", "--at", &at, "--json"]));
        let paths: Vec<&str> = listed
            .iter()
            .map(|l| l["entry"]["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            "snapshot {at}"
        );
        for (path, text) in files {
            let cat = home
                .pxos()
                .args(["fs", "cat", path, "--at", &at])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&cat.stdout),
                *text,
                "{path} at {at}"
            );
        }
    }
    // diff names exactly what changed.
    let diff = json_lines(&home.ok(&["fs", "diff", "10", "20", "--json"]));
    let changed: std::collections::BTreeSet<&str> = diff
        .iter()
        .filter(|l| l["type"] == "change")
        .map(|l| l["change"]["path"].as_str().unwrap())
        .collect();
    let truth: std::collections::BTreeSet<&str> = expected[10]
        .keys()
        .chain(expected[20].keys())
        .filter(|p| expected[10].get(*p) != expected[20].get(*p))
        .map(String::as_str)
        .collect();
    assert_eq!(changed, truth);
    // The project boot pixel resolves to the whole current tree.
    let pixel = home.scratch("root.png");
    home.ok(&["fs", "boot-pixel", "/", "-o", pixel.to_str().unwrap()]);
    let resolved = json_lines(&home.ok(&["fs", "resolve", pixel.to_str().unwrap(), "--json"]));
    assert_eq!(resolved[0]["type"], "resolved-root");
    assert_eq!(resolved[0]["snapshot"], expected.len() - 1);
    assert_eq!(resolved.len() - 1, expected.last().unwrap().len());
}
