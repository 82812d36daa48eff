//! InfiniteMap: floor division, LRU eviction with dirty tiles saved, region
//! queries, neighbours, exact byte round trips across restarts, damaged tiles.

use pxos_map::{InfiniteMap, tile_of};
use pxos_test_support::TempDir;

#[test]
fn negative_coordinates_use_floor_division() {
    assert_eq!(tile_of(-1, -1, 256), ((-1, -1), (255, 255)));
    assert_eq!(tile_of(-256, 0, 256), ((-1, 0), (0, 0)));
    assert_eq!(tile_of(-257, 255, 256), ((-2, 0), (255, 255)));
    assert_eq!(
        tile_of(i64::MIN, i64::MAX, 256),
        ((i64::MIN / 256, i64::MAX / 256), (0, 255))
    );

    let dir = TempDir::new("map-floor");
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    map.set_pixel(-1, -1, [1, 2, 3]).unwrap();
    map.set_pixel(0, 0, [4, 5, 6]).unwrap();
    assert_eq!(
        map.find_tiles_in_region(-1, -1, 2, 2).unwrap(),
        vec![(-1, -1), (0, 0)]
    );
    assert_eq!(map.get_pixel(-1, -1).unwrap(), [1, 2, 3]);
    assert_eq!(
        map.get_pixel(-65, -1).unwrap(),
        [0, 0, 0],
        "empty space is black"
    );
    // A region across the origin reads both tiles in place.
    let rgb = map.read_region(-1, -1, 2, 2).unwrap();
    assert_eq!(rgb, vec![1, 2, 3, 0, 0, 0, 0, 0, 0, 4, 5, 6]);
}

#[test]
fn lru_eviction_saves_dirty_tiles_and_reloads_them() {
    let dir = TempDir::new("map-lru");
    let mut map = InfiniteMap::open(dir.path(), 32).unwrap();
    map.set_cache_capacity(3).unwrap();
    for i in 0..10i64 {
        map.set_pixel(i * 32, 0, [i as u8, 0, 0]).unwrap();
    }
    let stats = map.stats().unwrap();
    assert_eq!(stats.tiles_in_memory, 3);
    assert_eq!(stats.evictions, 7);
    assert_eq!(stats.saves, 7, "every evicted tile was dirty and saved");
    for i in 0..7i64 {
        assert!(map.tile_path(i, 0).is_file(), "tile {i} saved on eviction");
    }
    assert!(
        !map.tile_path(9, 0).exists(),
        "a cached dirty tile is not saved yet"
    );
    // The least recently used goes first: touch tile 7, then load tile 0.
    map.get_pixel(7 * 32, 0).unwrap();
    assert_eq!(map.get_pixel(0, 0).unwrap(), [0, 0, 0]);
    assert_eq!(map.get_pixel(32, 0).unwrap(), [1, 0, 0]);
    assert!(
        map.tile_path(8, 0).is_file(),
        "tile 8 was the least recently used"
    );
    assert!(!map.tile_path(9, 0).exists() || map.stats().unwrap().saves > 7);
    drop(map);
    // Everything is on disk after the map is dropped (exit).
    let mut map = InfiniteMap::open(dir.path(), 32).unwrap();
    for i in 0..10i64 {
        assert_eq!(map.get_pixel(i * 32, 0).unwrap(), [i as u8, 0, 0]);
    }
    assert_eq!(map.stats().unwrap().tiles_on_disk, 10);
}

#[test]
fn region_queries_and_neighbours() {
    let dir = TempDir::new("map-region");
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    for (x, y) in [
        (0, 0),
        (100, 100),
        (-100, 50),
        (1000, -1000),
        (-5000, -5000),
    ] {
        map.set_pixel(x, y, [9, 9, 9]).unwrap();
    }
    map.flush().unwrap();
    assert_eq!(
        map.find_tiles_in_region(-128, 0, 256, 128).unwrap(),
        vec![(-2, 0), (0, 0), (1, 1)]
    );
    assert_eq!(
        map.find_tiles_in_region(0, 0, 64, 64).unwrap(),
        vec![(0, 0)]
    );
    assert!(
        map.find_tiles_in_region(200, 200, 10, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(map.stats().unwrap().bounds, Some([-5056, -5056, 1024, 128]));
    map.set_pixel(11, 10, [7, 7, 7]).unwrap();
    let around = map.neighbors(10, 10, 1).unwrap();
    assert_eq!(around.len(), 8);
    assert_eq!(around.iter().filter(|n| n.2 == [7, 7, 7]).count(), 1);
    assert_eq!(map.neighbors(10, 10, 2).unwrap().len(), 24);
}

#[test]
fn byte_writes_read_back_exactly_after_a_restart() {
    let dir = TempDir::new("map-bytes");
    let far: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    {
        let mut map = InfiniteMap::open(dir.path(), 256).unwrap();
        map.put(10000, 20000, &far).unwrap();
        map.put(-10, -20, b"Hello, Infinite Pixel World!").unwrap();
        map.put(5, 5, b"").unwrap();
        map.note(10000, 20000, "far away").unwrap();
        map.flush().unwrap();
    }
    let mut map = InfiniteMap::open(dir.path(), 256).unwrap();
    assert_eq!(map.get(10000, 20000).unwrap(), far);
    assert_eq!(map.get(-10, -20).unwrap(), b"Hello, Infinite Pixel World!");
    assert_eq!(map.get(5, 5).unwrap(), b"");
    assert_eq!(map.tile_note(39, 78).unwrap().as_deref(), Some("far away"));
    let err = map.get(1, 1).unwrap_err();
    assert!(
        err.to_string().contains("no data written at (1, 1)"),
        "{err}"
    );
    assert_eq!(map.writes().unwrap().len(), 3);
    // Overwriting pixels under a write is detected, not returned as other bytes.
    map.set_pixel(-5, -20, [1, 1, 1]).unwrap();
    let err = map.get(-10, -20).unwrap_err();
    assert!(err.to_string().contains("no longer matches"), "{err}");
}

#[test]
fn a_damaged_tile_is_named_and_the_others_still_read() {
    let dir = TempDir::new("map-damaged");
    {
        let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
        map.set_pixel(0, 0, [1, 1, 1]).unwrap();
        map.set_pixel(-1, -1, [2, 2, 2]).unwrap();
        map.flush().unwrap();
    }
    let path = dir.path().join("tiles/-1_-1.png");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    let err = map.get_pixel(-1, -1).unwrap_err();
    assert!(err.to_string().contains("tile (-1, -1)"), "{err}");
    assert!(err.to_string().contains("-1_-1.png"), "{err}");
    assert_eq!(map.get_pixel(0, 0).unwrap(), [1, 1, 1]);
    // A tile file that claims to be another tile is refused too.
    std::fs::copy(dir.path().join("tiles/0_0.png"), &path).unwrap();
    let mut map = InfiniteMap::open_read_only(dir.path()).unwrap();
    let err = map.get_pixel(-1, -1).unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
    // A missing tile the manifest lists is an error, not empty space.
    std::fs::remove_file(&path).unwrap();
    let err = map.get_pixel(-1, -1).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn hostile_sizes_are_refused() {
    let dir = TempDir::new("map-hostile");
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    assert!(map.read_region(0, 0, 100_000, 100_000).is_err());
    assert!(map.read_region(i64::MAX - 1, 0, 10, 1).is_err());
    assert!(map.read_region(0, 0, 0, 5).is_err());
    assert!(map.note(0, 0, &"x".repeat(5000)).is_err());
    assert!(InfiniteMap::open(&dir.join("other"), 7).is_err());
    drop(map);
    std::fs::write(dir.join("map.json"), b"{not json").unwrap();
    let err = InfiniteMap::open(dir.path(), 64).unwrap_err();
    assert!(err.to_string().contains("map.json"), "{err}");
}

#[test]
fn a_put_that_crashed_before_its_manifest_never_happened() {
    let dir = TempDir::new("map-torn");
    {
        let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
        map.put(0, 0, b"kept").unwrap();
        map.flush().unwrap();
    }
    // A tile file with no manifest entry, as a crash between the tile and the
    // manifest leaves it: it does not exist for reads, region queries or get.
    std::fs::copy(
        dir.path().join("tiles/0_0.png"),
        dir.path().join("tiles/5_5.png"),
    )
    .unwrap();
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    assert_eq!(map.get_pixel(5 * 64, 5 * 64).unwrap(), [0, 0, 0]);
    assert!(
        map.find_tiles_in_region(5 * 64, 5 * 64, 1, 1)
            .unwrap()
            .is_empty()
    );
    let err = map.get(5 * 64, 5 * 64).unwrap_err();
    assert!(err.to_string().contains("no data written"), "{err}");
    // Writing that tile replaces the stray file.
    map.set_pixel(5 * 64 + 1, 5 * 64, [3, 3, 3]).unwrap();
    map.flush().unwrap();
    drop(map);
    let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
    assert_eq!(map.get_pixel(5 * 64, 5 * 64).unwrap(), [0, 0, 0]);
    assert_eq!(map.get_pixel(5 * 64 + 1, 5 * 64).unwrap(), [3, 3, 3]);
    assert_eq!(map.get(0, 0).unwrap(), b"kept");
}

#[test]
fn a_damaged_index_chunk_is_named() {
    let dir = TempDir::new("map-index");
    {
        let mut map = InfiniteMap::open(dir.path(), 64).unwrap();
        map.put(-1, -1, b"x").unwrap();
        map.flush().unwrap();
    }
    let chunk = dir.path().join("index/-1_-1.json");
    assert!(chunk.is_file());
    for bad in [
        &b"{broken"[..],
        br#"{"tiles": [[0, 0]]}"#,
        br#"{"tiles": [], "notes": {"5,5": "elsewhere"}}"#,
        br#"{"tiles": [], "unknown": 1}"#,
    ] {
        std::fs::write(&chunk, bad).unwrap();
        let mut map = InfiniteMap::open_read_only(dir.path()).unwrap();
        let err = map.get_pixel(-1, -1).unwrap_err();
        assert!(err.to_string().contains("-1_-1.json"), "{err}");
        // Other chunks still read.
        assert_eq!(map.get_pixel(10, 10).unwrap(), [0, 0, 0]);
    }
}
