//! Fuzz target bodies (see `fuzz/`); the test suite runs them on seeded inputs.

/// Fuzz target `path_table`: a generated path table (real and hostile
/// paths, every kind), mutated at one layer, decoded.
pub fn path_table(data: &[u8]) -> pxos_pixel::fuzz::Reach {
    use pxos_pixel::fuzz::{Unstructured, table_body};
    const PATHS: [&str; 8] = [
        "/boot/00_kernel",
        "/boot/01_init",
        "/docs/readme",
        "/a/b/c",
        "/a/b",
        "/programs/hello",
        "/x",
        "/ü/ñ",
    ];
    let mut u = Unstructured::new(data);
    let mut table = crate::PathTable::default();
    let count: u8 = u.int_in_range(0..=8).unwrap_or(0);
    for _ in 0..count {
        let path = *u.choose(&PATHS).unwrap_or(&PATHS[0]);
        let kind = *u
            .choose(pxos_pixel::Kind::ALL)
            .unwrap_or(&pxos_pixel::Kind::Blob);
        let size: u64 = u.int_in_range(0..=1 << 20).unwrap_or(0);
        let sha256 = pxos_pixel::sha256(&size.to_le_bytes());
        let entry = crate::Entry::new(
            path,
            kind,
            "generated",
            size,
            &sha256,
            "2026-11-30T00:00:00Z".into(),
        );
        let _ = table.insert(entry);
    }
    let json = table
        .encode()
        .ok()
        .and_then(|png| pxos_pixel::decode_from_slice(&png, &pxos_pixel::Limits::default()).ok())
        .map(|(_, json)| json)
        .unwrap_or_default();
    table_body(&mut u, &json, crate::PathTable::decode)
}

/// Fuzz target `tree_object`: a generated directory object (files and
/// subdirectories, real and hostile names), mutated at one layer, decoded;
/// what decodes is encoded again and must decode to the same tree.
pub fn tree_object(data: &[u8]) -> pxos_pixel::fuzz::Reach {
    use pxos_pixel::fuzz::{Unstructured, table_body};
    const NAMES: [&str; 8] = ["kernel", "readme.md", "a", "b c", "ü", "..", "x/y", ""];
    let mut u = Unstructured::new(data);
    let mut tree = crate::tree::Tree::default();
    let count: u8 = u.int_in_range(0..=8).unwrap_or(0);
    for _ in 0..count {
        let name = *u.choose(&NAMES).unwrap_or(&NAMES[0]);
        let size: u64 = u.int_in_range(0..=1 << 20).unwrap_or(0);
        let sha = pxos_pixel::Hash256::of(&size.to_le_bytes());
        let node = if u.arbitrary::<bool>().unwrap_or(false) {
            crate::tree::Node::Dir {
                tree: sha,
                files: size,
                bytes: size * 3,
            }
        } else {
            let kind = *u
                .choose(pxos_pixel::Kind::ALL)
                .unwrap_or(&pxos_pixel::Kind::Blob);
            crate::tree::Node::File(crate::tree::FileMeta {
                kind: kind.name().into(),
                description: "generated".into(),
                size,
                sha256: sha,
                created: "2026-11-30T00:00:00Z".into(),
            })
        };
        tree.children.insert(name.to_string(), node);
    }
    let json = tree.encode();
    table_body(&mut u, &json, |png| {
        let (_, payload) = pxos_pixel::decode_from_slice(png, &pxos_pixel::Limits::default())?;
        let decoded = crate::tree::Tree::decode(&payload)?;
        let again = crate::tree::Tree::decode(&decoded.encode())?;
        assert_eq!(again, decoded, "a decoded tree encodes to itself");
        let _ = decoded.totals();
        Ok::<(), crate::Error>(())
    })
}
