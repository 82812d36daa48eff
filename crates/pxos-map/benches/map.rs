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

criterion_group!(benches, render);
criterion_main!(benches);
