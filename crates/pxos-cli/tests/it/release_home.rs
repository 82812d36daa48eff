//! A home written by release 0.1.0 (`tests/fixtures/home-0.1.0`, frozen: made
//! by `pxos boot`, `fs add`, `fs add-dir`, `run hello`, `log note`, and a
//! second cartridge version packed, registered and tested) still works with
//! this release: every path, log entry and cartridge is there and verifies,
//! and the next boot works. When a release changes an on-disk format, this is
//! the test its migration must pass.

use crate::support::{Home, json_lines, release_home};

#[test]
fn a_home_written_by_release_0_1_0_still_reads_and_verifies() {
    let home = Home::new("release-home");
    release_home(&home);
    // Every store verifies.
    assert!(
        home.ok(&["log", "verify"])
            .contains("8 entries, chain intact")
    );
    home.ok(&["cart", "fsck"]);
    home.ok(&["kernel", "fsck"]);
    home.ok(&["fs", "fsck"]);
    // Migrated in place; the old files are kept, not deleted.
    assert!(home.home().join("fs/legacy/paths-v1.png").is_file());
    assert!(home.home().join("log/legacy/evolution.png").is_file());
    assert!(home.home().join("log/legacy/evolution.anchor").is_file());
    assert!(home.ok(&["fs", "log"]).contains("migrate"));
    // Every path, with its bytes.
    let listing = home.ok(&["fs", "ls", "/docs"]);
    for name in ["a.txt", "b.md", "note.txt"] {
        assert!(listing.contains(name), "{listing}");
    }
    let cat = home
        .pxos()
        .args(["fs", "cat", "/docs/a.txt"])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, b"one\n");
    // Every log entry, in order, with its actor.
    let entries = json_lines(&home.ok(&["--json", "log"]));
    assert_eq!(entries.len(), 8);
    assert_eq!(entries[4]["actor"]["name"], "fixture");
    assert_eq!(
        entries[4]["reason"],
        "the migration fixture of release 0.1.0"
    );
    assert_eq!(entries[6]["action"], "register");
    assert_eq!(entries[6]["cartridge"], "default@1.1.0");
    // Every cartridge, with its status and lineage.
    let carts = home.ok(&["cart", "list"]);
    assert!(
        carts.contains("default@1.0.0") && carts.contains("current"),
        "{carts}"
    );
    assert!(
        carts.contains("default@1.1.0") && carts.contains("experimental"),
        "{carts}"
    );
    let lineage = home.ok(&["cart", "lineage", "default@1.1.0"]);
    assert!(lineage.contains("default@1.0.0"), "{lineage}");
    // The next boot and a program run work, and append to the same log.
    home.ok(&["boot", "-q"]);
    home.ok(&["run", "hello"]);
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));
}

/// Every path, log entry and cartridge of the fixture is there and verifies.
fn all_there(home: &Home, context: &str) {
    let verify = home.ok(&["log", "verify", "--full"]);
    assert!(
        verify.contains("8 entries, chain intact"),
        "{context}: {verify}"
    );
    let entries = json_lines(&home.ok(&["--json", "log"]));
    assert_eq!(entries.len(), 8, "{context}");
    assert_eq!(entries[4]["actor"]["name"], "fixture", "{context}");
    let fsck = home.ok(&["fs", "fsck"]);
    assert!(fsck.contains("clean"), "{context}: {fsck}");
    let cat = home
        .pxos()
        .args(["fs", "cat", "/docs/a.txt"])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, b"one\n", "{context}");
    let listing = home.ok(&["fs", "ls", "/docs"]);
    for name in ["a.txt", "b.md", "note.txt"] {
        assert!(listing.contains(name), "{context}: {listing}");
    }
    home.ok(&["cart", "fsck"]);
    let carts = home.ok(&["cart", "list"]);
    assert!(carts.contains("default@1.1.0"), "{context}: {carts}");
}

#[test]
fn the_migration_is_atomic_at_every_write_point() {
    // What the first commands pass while they migrate the stores.
    let first_commands: [&[&str]; 2] = [&["fs", "ls", "/docs"], &["log", "verify"]];
    for command in first_commands {
        let traced = Home::new("migrate-trace");
        release_home(&traced);
        let trace = traced.scratch("trace.txt");
        let out = traced
            .pxos()
            .env("PXOS_CRASH_TRACE", &trace)
            .args(command)
            .output()
            .unwrap();
        assert!(out.status.success(), "{command:?}");
        let points: Vec<String> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            points.len() >= 10,
            "{command:?} migrated nothing: {points:?}"
        );
        all_there(&traced, "after a clean migration");
        for point in &points {
            let home = Home::new(&format!("migrate-{}", point.replace(['#', '.'], "-")));
            release_home(&home);
            let out = home
                .pxos()
                .env("PXOS_CRASH_AT", point)
                .args(command)
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("crash injected"),
                "{point}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            all_there(&home, point);
        }
    }
}
