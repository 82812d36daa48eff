//! A home written by release 0.1.0 (`tests/fixtures/home-0.1.0`, frozen: made
//! by `pxos boot`, `fs add`, `fs add-dir`, `run hello`, `log note`, and a
//! second cartridge version packed, registered and tested) still works with
//! this release: every path, log entry and cartridge is there and verifies,
//! and the next boot works. When a release changes an on-disk format, this is
//! the test its migration must pass.

use crate::support::{Home, copy_tree, json_lines, repo_root};

#[test]
fn a_home_written_by_release_0_1_0_still_reads_and_verifies() {
    let home = Home::new("release-home");
    copy_tree(
        &repo_root().join("crates/pxos-cli/tests/fixtures/home-0.1.0"),
        &home.home(),
    );
    // Every store verifies.
    assert!(
        home.ok(&["log", "verify"])
            .contains("8 entries, chain intact")
    );
    home.ok(&["cart", "fsck"]);
    home.ok(&["kernel", "fsck"]);
    home.ok(&["fs", "fsck"]);
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
