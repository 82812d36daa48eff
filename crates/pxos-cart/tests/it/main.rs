//! Cartridges: deterministic packing, safe unpacking, hostile inputs; the
//! evolution log: chaining and tamper detection.

use std::path::Path;

use pxos_cart::cartridge::{self, Limits};
use pxos_cart::{CreatorKind, fuzz};
use pxos_test_support::{Rng, TempDir};

mod log;
mod registry;

fn write(root: &Path, path: &str, bytes: &[u8]) {
    pxos_test_support::write_file(root, path, bytes);
}

const SOURCE: &str = r#"{"name": "default", "version": "1.1.0", "parent": "default@1.0.0",
  "creator": {"kind": "llm", "name": "pixellm"}, "created": "2026-11-23T00:00:00Z",
  "notes": "a test world", "reason": "testing", "capabilities": ["pxvm"], "metrics": {"boot_ms": 3}}"#;

fn world(root: &Path) {
    write(root, "cartridge.json", SOURCE.as_bytes());
    write(root, "boot/sequence.json", b"{\"stages\": []}");
    write(root, "kernels/k.pxasm", b"HALT\n");
    write(root, "empty.txt", b"");
    write(
        root,
        "data/blob.bin",
        &(0..100_000u32)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>(),
    );
}

#[test]
fn pack_is_deterministic_and_unpack_restores_the_tree() {
    let dir = TempDir::new("pack");
    let src = dir.join("src");
    world(&src);
    let a = cartridge::pack(&src, &dir.join("a.pxa"), &Limits::default()).unwrap();
    let b = cartridge::pack(&src, &dir.join("b.pxa"), &Limits::default()).unwrap();
    assert_eq!(
        std::fs::read(dir.join("a.pxa")).unwrap(),
        std::fs::read(dir.join("b.pxa")).unwrap()
    );
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(a.manifest.id(), "default@1.1.0");
    assert_eq!(a.manifest.creator.kind, CreatorKind::Llm);
    let paths: Vec<&str> = a.manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "boot/sequence.json",
            "data/blob.bin",
            "empty.txt",
            "kernels/k.pxasm"
        ]
    );

    let (manifest, sha) = cartridge::read_manifest(&dir.join("a.pxa"), &Limits::default()).unwrap();
    assert_eq!(manifest, a.manifest);
    assert_eq!(sha, a.sha256);

    let out = dir.join("out");
    cartridge::unpack(&dir.join("a.pxa"), &out, &Limits::default()).unwrap();
    for path in paths {
        assert_eq!(
            std::fs::read(out.join(path)).unwrap(),
            std::fs::read(src.join(path)).unwrap(),
            "{path}"
        );
    }
    assert!(
        cartridge::unpack(&dir.join("a.pxa"), &out, &Limits::default())
            .unwrap_err()
            .to_string()
            .contains("already exists")
    );
}

#[test]
fn packing_refuses_bad_sources() {
    let dir = TempDir::new("bad-src");
    let src = dir.join("src");
    world(&src);
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
    let err = cartridge::pack(&src, &dir.join("x.pxa"), &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("links cannot go into a cartridge"),
        "{err}"
    );
    std::fs::remove_file(src.join("link")).unwrap();
    write(
        &src,
        "cartridge.json",
        br#"{"name": "Bad Name", "version": "1.0.0", "creator": {"kind": "human", "name": "x"}}"#,
    );
    assert!(cartridge::pack(&src, &dir.join("x.pxa"), &Limits::default()).is_err());
    write(
        &src,
        "cartridge.json",
        br#"{"name": "ok", "version": "1.0", "creator": {"kind": "human", "name": "x"}}"#,
    );
    assert!(
        cartridge::pack(&src, &dir.join("x.pxa"), &Limits::default())
            .unwrap_err()
            .to_string()
            .contains("semver")
    );
    write(
        &src,
        "cartridge.json",
        br#"{"name": "ok", "version": "1.0.0", "creator": {"kind": "robot", "name": "x"}}"#,
    );
    assert!(cartridge::pack(&src, &dir.join("x.pxa"), &Limits::default()).is_err());
}

/// A cartridge image with a hand-made manifest and data.
fn forge(manifest: serde_json::Value, data: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(&manifest).unwrap();
    let mut payload = b"PXA1".to_vec();
    payload.extend_from_slice(&(json.len() as u32).to_le_bytes());
    payload.extend_from_slice(&json);
    payload.extend_from_slice(data);
    pxos_pixel::encode_to_vec(
        &payload,
        &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Archive),
    )
    .unwrap()
}

fn manifest_with(files: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "format": "pxos-cartridge", "format_version": 1, "name": "evil", "version": "6.6.6", "parent": null,
        "creator": {"kind": "human", "name": "mallory"}, "created": "2026-01-01T00:00:00Z", "notes": "", "reason": "",
        "capabilities": [], "metrics": {}, "genesis_version": "1.0", "files": files
    })
}

fn sha(bytes: &[u8]) -> String {
    pxos_pixel::hex(&pxos_pixel::sha256(bytes))
}

#[test]
fn hostile_cartridges_are_refused_and_leave_nothing() {
    let dir = TempDir::new("hostile");
    let hi = b"hi";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "traversal",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "../escape", "size": 2, "sha256": sha(hi), "offset": 0}]),
                ),
                hi,
            ),
            "unsafe path",
        ),
        (
            "absolute",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "/etc/passwd", "size": 2, "sha256": sha(hi), "offset": 0}]),
                ),
                hi,
            ),
            "unsafe path",
        ),
        (
            "dotdot-inside",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "a/../../b", "size": 2, "sha256": sha(hi), "offset": 0}]),
                ),
                hi,
            ),
            "unsafe path",
        ),
        (
            "duplicate",
            forge(
                manifest_with(serde_json::json!([
            {"path": "a", "size": 1, "sha256": sha(b"h"), "offset": 0},
            {"path": "a", "size": 1, "sha256": sha(b"i"), "offset": 1}])),
                hi,
            ),
            "twice",
        ),
        (
            "file-and-dir",
            forge(
                manifest_with(serde_json::json!([
            {"path": "a", "size": 1, "sha256": sha(b"h"), "offset": 0},
            {"path": "a/b", "size": 1, "sha256": sha(b"i"), "offset": 1}])),
                hi,
            ),
            "both a file and a directory",
        ),
        (
            "huge",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "big", "size": 1u64 << 50, "sha256": sha(hi), "offset": 0}]),
                ),
                hi,
            ),
            "refused by limits",
        ),
        (
            "wrong-hash",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "a", "size": 2, "sha256": sha(b"no"), "offset": 0}]),
                ),
                hi,
            ),
            "does not match its sha256",
        ),
        (
            "short-data",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "a", "size": 5, "sha256": sha(b"hello"), "offset": 0}]),
                ),
                hi,
            ),
            "ended before",
        ),
        (
            "extra-data",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "a", "size": 1, "sha256": sha(b"h"), "offset": 0}]),
                ),
                hi,
            ),
            "more data",
        ),
        (
            "bad-offset",
            forge(
                manifest_with(
                    serde_json::json!([{"path": "a", "size": 2, "sha256": sha(hi), "offset": 7}]),
                ),
                hi,
            ),
            "offset",
        ),
        (
            "not-json",
            {
                let mut payload = b"PXA1".to_vec();
                payload.extend_from_slice(&3u32.to_le_bytes());
                payload.extend_from_slice(b"{{{");
                pxos_pixel::encode_to_vec(
                    &payload,
                    &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Archive),
                )
                .unwrap()
            },
            "manifest is invalid",
        ),
        (
            "no-magic",
            pxos_pixel::encode_to_vec(
                b"just bytes here",
                &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Archive),
            )
            .unwrap(),
            "PXA1",
        ),
        (
            "not-archive",
            pxos_pixel::encode_to_vec(
                b"PXA1",
                &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Text),
            )
            .unwrap(),
            "not a cartridge",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(format!("{name}.pxa"));
        std::fs::write(&path, &bytes).unwrap();
        let target = dir.join(format!("{name}-out"));
        let err = cartridge::unpack(&path, &target, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert!(err.is_bad_input(), "{name}: {err} should be bad input");
        assert!(!target.exists(), "{name}: target created");
        assert!(!dir.0.join("..").join("escape").exists());
    }
    // A truncated real cartridge.
    let src = dir.join("src");
    world(&src);
    cartridge::pack(&src, &dir.join("good.pxa"), &Limits::default()).unwrap();
    let bytes = std::fs::read(dir.join("good.pxa")).unwrap();
    std::fs::write(dir.join("cut.pxa"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = cartridge::unpack(
        &dir.join("cut.pxa"),
        &dir.join("cut-out"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(!dir.join("cut-out").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pxos-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "staging directories left behind");
}

#[test]
fn fuzz_bodies_survive_seeded_inputs() {
    let mut rng = Rng::new(0x5eed);
    let mut next = move || rng.next_u64();
    let dir = TempDir::new("fuzz");
    let src = dir.join("src");
    world(&src);
    cartridge::pack(&src, &dir.join("good.pxa"), &Limits::default()).unwrap();
    let good = std::fs::read(dir.join("good.pxa")).unwrap();
    for _ in 0..100 {
        let mut image = good.clone();
        let at = next() as usize % image.len();
        image[at] ^= next() as u8 | 1;
        fuzz::unpack_image(&image);
    }
}
