//! A workspace never lets a write out: `..`, absolute paths and symbolic
//! links from task metadata or artefact names are refused.

use pxos_agent::workspace::Workspace;
use pxos_test_support::TempDir;

#[test]
fn hostile_names_and_links_cannot_leave_the_workspace() {
    let dir = TempDir::new("workspace");
    let home = dir.path();
    for id in ["../t1", "/tmp", "t1/../../x", "", "t", "x1"] {
        assert!(Workspace::open(home, id).is_err(), "{id:?}");
    }
    let ws = Workspace::open(home, "t1").unwrap();
    for name in ["../escape", "/etc/x", "a/../../b", ".", "a/./b"] {
        assert!(ws.write(name, b"x").is_err(), "{name:?}");
    }
    // A link planted inside the workspace, pointing outside it.
    let outside = home.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, ws.dir().join("link")).unwrap();
    let err = ws.write("link/file.txt", b"x").unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(!outside.join("file.txt").exists());
    // A workspace that is itself a link.
    std::fs::create_dir_all(home.join("agents/workspace")).unwrap();
    std::os::unix::fs::symlink(&outside, home.join("agents/workspace/t2")).unwrap();
    assert!(Workspace::open(home, "t2").is_err());
    // And the workspace root as a link.
    let other = TempDir::new("workspace-root-link");
    std::fs::create_dir_all(other.path().join("agents")).unwrap();
    std::os::unix::fs::symlink(&outside, other.path().join("agents/workspace")).unwrap();
    assert!(Workspace::open(other.path(), "t1").is_err());
    // A plain write lands inside.
    let path = ws.write("sub/ok.txt", b"fine").unwrap();
    assert!(path.starts_with(ws.dir()));
}
