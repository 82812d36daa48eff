//! A real `pxos` process killed at every durable write point of an update
//! leaves either the old or the new state.

use pxos_fs::PixelFs;

use crate::support::Home;

#[test]
fn a_crash_at_every_write_point_leaves_old_or_new_table() {
    let mut points = pxos_pixel::durable::crash_points("path-table");
    points.extend(pxos_pixel::durable::crash_points("pixel-encode"));
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
    // Crashes before the rename keep the old table; after it, the new one.
    assert_eq!(
        saw_new, 1,
        "only a crash after the table rename shows the new table"
    );
    assert_eq!(saw_old, points.len() - 1);
}
