//! Fuzz target bodies; the test suite runs them on seeded inputs.

/// Treats arbitrary bytes as a cartridge payload (wrapped in a valid PXI of
/// kind `archive`) and unpacks it: must return an error or a verified tree.
pub fn unpack_payload(data: &[u8]) {
    let Ok(png) = pxos_pixel::encode_to_vec(
        data,
        &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Archive),
    ) else {
        return;
    };
    unpack_image(&png);
}

/// Treats arbitrary bytes as a `.pxa` file and unpacks it.
pub fn unpack_image(png: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pxos-cart-fuzz-{}-{unique}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let cartridge = dir.join("in.pxa");
    if std::fs::write(&cartridge, png).is_ok() {
        let limits = crate::Limits {
            max_total_bytes: 1 << 20,
            max_file_bytes: 1 << 20,
            ..crate::Limits::default()
        };
        let result = crate::unpack(&cartridge, &dir.join("out"), &limits);
        // Whatever happened, no staging folder is left behind, and a failure leaves no target.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(pxos_pixel::durable::TEMP_PREFIX)
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "unpack left {leftovers:?}");
        assert_eq!(result.is_ok(), dir.join("out").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Treats arbitrary bytes as an evolution log file: must decode or refuse.
pub fn log_decode(data: &[u8]) {
    if let Ok(entries) = crate::log::decode_log_bytes(data) {
        for entry in &entries {
            let _ = entry.compute_hash();
        }
    }
}

/// Treats arbitrary bytes as the JSON inside a log file (wrapped in a valid
/// PXI of kind `table`), so the fuzzer reaches the typed decoder itself.
pub fn log_json(data: &[u8]) {
    if let Ok(png) = pxos_pixel::encode_to_vec(
        data,
        &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
    ) {
        log_decode(&png);
    }
}

/// Treats arbitrary bytes as the JSON inside `registry.png`.
pub fn registry_json(data: &[u8]) {
    if let Ok(png) = pxos_pixel::encode_to_vec(
        data,
        &pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table),
    ) && let Ok(state) = crate::registry::decode_state(&png)
    {
        let _ = state.current_record();
    }
}
