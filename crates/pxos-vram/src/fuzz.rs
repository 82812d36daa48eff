//! Fuzz target bodies; the test suite runs them on seeded inputs.

/// Parses arbitrary text as a roadmap and, when it parses, builds and
/// evaluates it: must return an error or a result, never panic or hang.
pub fn roadmap_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(roadmap) = crate::Roadmap::parse(text)
        && roadmap.metadata.vram_width * roadmap.metadata.vram_height <= 512 * 512
        && let Ok((vram, _)) = crate::build(&roadmap)
    {
        let _ = crate::evaluate(&vram);
    }
}

/// Loads arbitrary bytes as a VRAM PNG and evaluates it.
pub fn vram_image(data: &[u8]) {
    if let Ok(vram) = crate::Vram::from_png(data)
        && vram.width() * vram.height() <= 512 * 512
    {
        let _ = crate::evaluate(&vram);
    }
}

/// The roadmaps in the repository, the seeds of the roadmap generator.
const SEEDS: [&str; 2] = [
    include_str!("../roadmaps/ROADMAP_VRAM_OS.yaml"),
    include_str!("../roadmaps/deficient.yaml"),
];

/// A generated roadmap: a seed roadmap edited as a document (steps dropped,
/// repeated or reordered, parameters of other types or at the edges, keys
/// renamed), written back as YAML.
pub fn roadmap(u: &mut pxos_pixel::fuzz::Unstructured<'_>) -> String {
    let seed = *u.choose(&SEEDS).unwrap_or(&SEEDS[0]);
    let Ok(mut document) = serde_norway::from_str::<serde_json::Value>(seed) else {
        return seed.to_string();
    };
    let edits: u8 = u.int_in_range(0..=3).unwrap_or(0);
    for _ in 0..edits {
        pxos_pixel::fuzz::mutate_value(u, &mut document);
    }
    // Keep the machine small enough to build thousands of times.
    if let Some(metadata) = document.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for key in ["vram_width", "vram_height"] {
            if metadata
                .get(key)
                .and_then(|v| v.as_u64())
                .is_some_and(|v| v > 512)
            {
                metadata.insert(key.into(), 512.into());
            }
        }
    }
    serde_norway::to_string(&document).unwrap_or_default()
}

/// Fuzz target `vram_roadmap`: a generated roadmap is parsed, built and
/// evaluated; one time in four, the VRAM image it builds is mutated below
/// the PNG container and loaded back.
pub fn vram_roadmap(data: &[u8]) -> pxos_pixel::fuzz::Reach {
    use pxos_pixel::fuzz::Reach;
    let mut u = pxos_pixel::fuzz::Unstructured::new(data);
    let text = roadmap(&mut u);
    let built = crate::Roadmap::parse(&text)
        .ok()
        .filter(|r| r.metadata.vram_width * r.metadata.vram_height <= 512 * 512)
        .and_then(|r| crate::build(&r).ok());
    let Some((vram, _)) = built else {
        return Reach::Parser;
    };
    let _ = crate::evaluate(&vram);
    if u.ratio(1, 4).unwrap_or(false) {
        let mutant = pxos_pixel::fuzz::mutate_png(&mut u, &vram.to_png());
        vram_image(&mutant.png);
    }
    Reach::Accepted
}
