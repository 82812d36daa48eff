//! A real `pxos` process killed at every durable write point of an update
//! leaves either the old or the new state.

use pxos_fs::PixelFs;

use crate::support::{Home, temporaries_under};

#[test]
fn a_crash_at_every_write_point_leaves_old_or_new_table() {
    use pxos_pixel::durable::{crash_points, label};
    // The object, the directories on its path, the snapshot record, HEAD.
    let points: Vec<String> = [
        label::PIXEL_ENCODE,
        label::FS_TREE,
        label::SEGLOG_HEAD_INTENT,
        label::SEGLOG_APPEND,
        label::SEGLOG_HEAD,
        label::FS_HEAD,
    ]
    .into_iter()
    .flat_map(crash_points)
    .collect();
    let mut saw_new = 0;
    let mut saw_old = 0;
    for point in &points {
        let home = Home::new(&format!("crash-{point}"));
        let before = home.scratch("before.txt");
        std::fs::write(&before, "present before the crash").unwrap();
        home.ok(&["fs", "add", "/before", before.to_str().unwrap()]);
        let fs = PixelFs::open(&home.home().join("fs")).unwrap();
        let old = fs.table().unwrap();

        let new = home.scratch("new.txt");
        std::fs::write(&new, "added when the crash came").unwrap();
        let output = home
            .pxos()
            .env("PXOS_CRASH_AT", point)
            .args(["fs", "add", "/new", new.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{point}: the process was not killed"
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("crash injected"),
            "{point}: point not reached"
        );

        let table = fs
            .table()
            .unwrap_or_else(|err| panic!("{point}: table unreadable after crash: {err}"));
        if table.get("/new").is_some() {
            saw_new += 1;
            assert_eq!(table.generation, old.generation + 1, "{point}");
        } else {
            saw_old += 1;
            assert_eq!(table, old, "{point}: neither old nor new");
        }
        assert!(table.get("/before").is_some());
        let report = fs.fsck().unwrap();
        assert!(report.is_clean(), "{point}: {report:?}");
        // The store keeps working, and the next write clears leftovers.
        home.ok(&["fs", "add", "/new", new.to_str().unwrap()]);
        let report = fs.fsck().unwrap();
        assert!(
            report.leftovers.is_empty() && report.is_clean(),
            "{point}: {report:?}"
        );
        assert_eq!(home.ok(&["fs", "cat", "/new"]), "added when the crash came");
    }
    // Crashes before HEAD's rename keep the old tree; after it, the new one.
    assert_eq!(
        saw_new, 1,
        "only a crash after HEAD's rename shows the new tree"
    );
    assert_eq!(saw_old, points.len() - 1);
}

#[test]
fn stale_temporaries_of_a_crashed_writer_are_removed_by_the_next_write() {
    let home = Home::new("stale-temporaries");
    home.ok(&["boot", "-q"]);
    let boot_dir = home.home().join("boot");
    for point in [
        "boot-screen.write-temp",
        "boot-screen.rename",
        "boot-log.write-temp",
    ] {
        let output = home
            .pxos()
            .env("PXOS_CRASH_AT", point)
            .args(["boot", "-q"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("crash injected at {point}")),
            "{point}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !temporaries_under(&boot_dir).is_empty(),
            "{point}: the crash left nothing to clean"
        );
        home.ok(&["boot", "-q"]);
        assert!(
            temporaries_under(&boot_dir).is_empty(),
            "{point}: {:?}",
            temporaries_under(&boot_dir)
        );
    }
    // Beside a user's output.
    let input = home.scratch("in.txt");
    std::fs::write(&input, "some bytes").unwrap();
    let png = home.scratch("in.png");
    home.ok(&[
        "pixel",
        "encode",
        input.to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    let out = home.scratch("out.txt");
    let output = home
        .pxos()
        .env("PXOS_CRASH_AT", "pixel-decode.write-temp")
        .args([
            "pixel",
            "decode",
            png.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("crash injected"));
    assert_eq!(temporaries_under(&home.dir.join("scratch")).len(), 1);
    // A live process's temporary for the same name is not touched.
    let live = home.scratch(&format!(".pxos-tmp-{}-0-out.txt", std::process::id()));
    std::fs::write(&live, "mine").unwrap();
    home.ok(&[
        "pixel",
        "decode",
        png.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        temporaries_under(&home.dir.join("scratch")),
        vec![live.clone()]
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "some bytes");
}

/// The files under `/`, path and content, as `fs tree --json` and `fs cat` give them.
fn tree_state(home: &Home) -> Vec<(String, String)> {
    crate::support::json_lines(&home.ok(&["fs", "tree", "/", "--json"]))
        .iter()
        .map(|l| {
            let path = l["entry"]["path"].as_str().unwrap().to_string();
            let out = home.pxos().args(["fs", "cat", &path]).output().unwrap();
            (path, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

#[test]
fn a_crash_at_every_write_point_of_rm_discover_and_revert_leaves_old_or_new() {
    let setup = |home: &Home| {
        let tree = home.scratch("tree");
        for (i, dir) in ["a", "a/b", "c"].iter().enumerate() {
            std::fs::create_dir_all(tree.join(dir)).unwrap();
            std::fs::write(
                tree.join(dir).join(format!("f{i}.txt")),
                format!("file {i}"),
            )
            .unwrap();
        }
        let one = home.scratch("one.txt");
        std::fs::write(&one, "one").unwrap();
        home.ok(&["fs", "add", "/keep/one.txt", one.to_str().unwrap()]);
        home.ok(&["fs", "add", "/gone/one.txt", one.to_str().unwrap()]);
    };
    type Op = fn(&Home) -> Vec<String>;
    let ops: [(&str, Op); 3] = [
        ("rm", |_| {
            vec!["fs".into(), "rm".into(), "/gone/one.txt".into()]
        }),
        ("discover", |h| {
            vec![
                "fs".into(),
                "discover".into(),
                h.scratch("tree").to_str().unwrap().into(),
                "--prefix".into(),
                "/found".into(),
            ]
        }),
        ("revert", |_| vec!["fs".into(), "revert".into(), "1".into()]),
    ];
    for (name, op) in ops {
        // The points a clean run passes, and the old and new trees.
        let clean = Home::new(&format!("crash-{name}-clean"));
        setup(&clean);
        let old = tree_state(&clean);
        let trace = clean.scratch("trace.txt");
        let out = clean
            .pxos()
            .env("PXOS_CRASH_TRACE", &trace)
            .args(op(&clean))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}");
        let new = tree_state(&clean);
        assert_ne!(old, new, "{name} changed nothing");
        let points: Vec<String> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            points.iter().any(|p| p.starts_with("fs-head.")),
            "{name}: {points:?}"
        );
        for point in &points {
            let home = Home::new(&format!("crash-{name}-{}", point.replace(['#', '.'], "-")));
            setup(&home);
            let out = home
                .pxos()
                .env("PXOS_CRASH_AT", point)
                .args(op(&home))
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("crash injected"),
                "{name} {point}"
            );
            // Old or new, never a mix; the store checks; the next run works.
            let after = tree_state(&home);
            assert!(after == old || after == new, "{name} {point}: {after:?}");
            assert!(home.ok(&["fs", "fsck"]).contains("clean"), "{name} {point}");
            let again = home.run(&op(&home).iter().map(String::as_str).collect::<Vec<_>>());
            assert!(
                again.status.success() || name == "rm",
                "{name} {point}: {}",
                String::from_utf8_lossy(&again.stderr)
            );
            assert_eq!(
                tree_state(&home),
                new,
                "{name} {point}: the next run completes it"
            );
            assert!(home.ok(&["fs", "fsck"]).contains("clean"));
            assert!(temporaries_under(&home.dir).is_empty(), "{name} {point}");
        }
    }
}
