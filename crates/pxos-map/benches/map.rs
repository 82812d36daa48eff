//! InfiniteMap benchmarks: rendering a 4096x4096 region, against a plain PNG
//! encode of the same pixels (the reference measured in the same run).

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_map::InfiniteMap;

fn render(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("pxos-map-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let side: u32 = if std::env::args().any(|a| a == "--test") {
        512
    } else {
        4096
    };
    {
        let mut map = InfiniteMap::open(&dir, 256).unwrap();
        // A gradient over the whole region, written row band by row band.
        for band in 0..side / 256 {
            let mut rgb = Vec::with_capacity(side as usize * 256 * 3);
            for y in 0..256u32 {
                for x in 0..side {
                    rgb.extend_from_slice(&[
                        (x % 251) as u8,
                        ((band * 256 + y) % 241) as u8,
                        ((x ^ y) & 0xff) as u8,
                    ]);
                }
            }
            map.write_pixels(
                -(i64::from(side) / 2),
                i64::from(band * 256) - i64::from(side) / 2,
                side,
                256,
                &rgb,
            )
            .unwrap();
        }
        map.flush().unwrap();
    }
    let mut group = c.benchmark_group("map");
    group.sample_size(10);
    let (x, y) = (-(i64::from(side) / 2), -(i64::from(side) / 2));
    group.bench_function(format!("render_{side}x{side}_cold"), |b| {
        b.iter(|| {
            let mut map = InfiniteMap::open_read_only(&dir).unwrap();
            let png = map.render(x, y, side, side).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            png.len()
        })
    });
    let mut warm = InfiniteMap::open_read_only(&dir).unwrap();
    warm.set_cache_capacity(((side / 256) * (side / 256)) as usize)
        .unwrap();
    let pixels = warm.read_region(x, y, side, side).unwrap();
    group.bench_function(format!("read_region_{side}x{side}_warm"), |b| {
        b.iter(|| {
            let rgb = warm.read_region(x, y, side, side).unwrap();
            assert_eq!(rgb.len(), pixels.len());
            rgb.len()
        })
    });
    group.bench_function(format!("reference_png_encode_{side}x{side}"), |b| {
        b.iter(|| {
            let png = pxos_pixel::plain_png(side, side, pxos_pixel::PlainColor::Rgb, &pixels);
            assert_eq!(&png[1..4], b"PNG");
            png.len()
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A map whose index lists `side * side` tiles (written as index chunks
/// directly: the tiles' PXI files are not needed to measure the index),
/// leaving tile (5, 5) free for the put being measured.
fn synthetic(dir: &std::path::Path, side: i64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("index")).unwrap();
    std::fs::write(
        dir.join("map.json"),
        r#"{"format":"pxos-map/1","tile_size":256}"#,
    )
    .unwrap();
    let chunks = (side + 63) / 64;
    for cy in 0..chunks {
        for cx in 0..chunks {
            let mut tiles = Vec::new();
            for ty in cy * 64..((cy + 1) * 64).min(side) {
                for tx in cx * 64..((cx + 1) * 64).min(side) {
                    if (tx, ty) != (5, 5) {
                        tiles.push(format!("[{tx},{ty}]"));
                    }
                }
            }
            std::fs::write(
                dir.join(format!("index/{cx}_{cy}.json")),
                format!(r#"{{"tiles":[{}]}}"#, tiles.join(",")),
            )
            .unwrap();
        }
    }
}

/// One `pxos map put` (open, write, flush, close) into a map of 10^2 tiles
/// and into one of 10^6: the cost must not grow with the map.
fn put(c: &mut Criterion) {
    let quick = std::env::args().any(|a| a == "--test");
    let mut group = c.benchmark_group("map/put");
    group.sample_size(20);
    let base = std::env::temp_dir().join(format!("pxos-map-put-{}", std::process::id()));
    for side in [10i64, if quick { 100 } else { 1000 }] {
        let dir = base.join(side.to_string());
        synthetic(&dir, side);
        let payload = vec![7u8; 100];
        group.bench_function(format!("{}-tiles", side * side), |b| {
            b.iter(|| {
                let mut map = InfiniteMap::open(&dir, 256).unwrap();
                let record = map.put(5 * 256, 5 * 256, &payload).unwrap();
                map.flush().unwrap();
                record.len
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, render, put);
criterion_main!(benches);
