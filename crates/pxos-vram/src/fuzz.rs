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
