//! Fuzz target body (see `fuzz/`); the test suite runs it on seeded inputs.

use std::sync::atomic::{AtomicU64, Ordering};

use pxos_pixel::fuzz::{
    Reach, Unstructured, fuzz_limits, mutate_bytes, mutate_json, mutate_pxi, stage,
};

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Fuzz target `map_tile`: a map with one generated tile whose PXI is
/// mutated at one layer, and whose index chunk is sometimes mutated too, read
/// back through a fresh `InfiniteMap`. Oracles: nothing panics; a tile the
/// pixel layers refuse never reads; a tile that reads gives exactly the
/// pixels the PXI holds, never other ones.
pub fn map_tile(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    const SIZE: u32 = 32;
    let tx: i64 = u.int_in_range(-3..=3).unwrap_or(0);
    let ty: i64 = u.int_in_range(-3..=3).unwrap_or(0);
    let seed: u8 = u.arbitrary().unwrap_or(0);
    let rgb: Vec<u8> = (0..SIZE as usize * SIZE as usize * 3)
        .map(|i| (i as u8).wrapping_mul(seed | 1))
        .collect();
    let mutant = mutate_pxi(
        &mut u,
        &rgb,
        &crate::tile_options(tx, ty, SIZE),
        &mut |u, bytes| mutate_bytes(u, bytes),
    );
    let mut chunk =
        serde_json::json!({"tiles": [[tx, ty]], "notes": {format!("{tx},{ty}"): "fuzz"}})
            .to_string()
            .into_bytes();
    let chunk_mutated = u.ratio(1, 4).unwrap_or(false);
    if chunk_mutated {
        mutate_json(&mut u, &mut chunk);
    }

    let dir = std::env::temp_dir().join(format!(
        "pxos-fuzz-map-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    let (cx, cy) = crate::index::chunk_of(tx, ty);
    let written = std::fs::create_dir_all(dir.join("tiles"))
        .and_then(|()| std::fs::create_dir_all(dir.join("index")))
        .and_then(|()| {
            std::fs::write(
                dir.join("map.json"),
                format!(r#"{{"format":"{}","tile_size":{SIZE}}}"#, crate::FORMAT),
            )
        })
        .and_then(|()| std::fs::write(dir.join(format!("index/{cx}_{cy}.json")), &chunk))
        .and_then(|()| std::fs::write(dir.join(format!("tiles/{tx}_{ty}.png")), &mutant.png));
    let read = written.ok().and_then(|()| {
        let mut map = crate::InfiniteMap::open_read_only(&dir).ok()?;
        let pixels = map.read_region(tx * i64::from(SIZE), ty * i64::from(SIZE), SIZE, SIZE);
        Some(pixels)
    });
    let _ = std::fs::remove_dir_all(&dir);

    let staged = stage(&mutant.png, &fuzz_limits());
    let Some(pixels) = read else {
        return Reach::Container;
    };
    match (staged, pixels) {
        (Err(reach), Ok(pixels)) => {
            // Only an index that no longer lists the tile makes it read (as black).
            assert!(
                chunk_mutated && pixels.iter().all(|&b| b == 0),
                "a tile the pixel layers refuse was read"
            );
            reach
        }
        (Err(reach), Err(_)) => reach,
        (Ok(payload), Ok(pixels)) => {
            if pixels != payload {
                assert!(
                    chunk_mutated && pixels.iter().all(|&b| b == 0),
                    "the tile read as other pixels than its PXI holds"
                );
            }
            Reach::Accepted
        }
        (Ok(_), Err(_)) => Reach::Parser,
    }
}
