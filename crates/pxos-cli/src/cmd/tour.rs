//! `pxos tour`: the short demonstration of the substrate.

use crate::error::{Context, Result};
use pxos_fs::{AddOptions, PixelFs};
use pxos_pixel::{EncodeOptions, Kind, Limits};
use serde_json::json;

use crate::Outcome;
use crate::cli::Global;
use crate::home::home;
use crate::output::{Output, human_bytes};

const SAMPLE: &str = "pxOS keeps every file as pixels.\n\
Each byte of this text is one colour channel of a pixel in an ordinary PNG,\n\
and the first row of the image holds a header with the text's SHA-256,\n\
so the exact bytes come back from the picture and any damage is detected.\n";

pub fn run(global: &Global, output: &Output) -> Result<Outcome> {
    let home = home(global)?;
    let tour_dir = home.join("tour");
    std::fs::create_dir_all(&tour_dir)
        .with_context(|| format!("cannot create {}", tour_dir.display()))?;

    let text_path = tour_dir.join("hello.txt");
    std::fs::write(&text_path, SAMPLE)
        .with_context(|| format!("cannot write {}", text_path.display()))?;
    let step = |n: u32, text: String| format!("[{n}/4] {text}");
    output.emit(
        json!({"type": "tour-step", "step": 1, "file": text_path, "size": SAMPLE.len()}),
        || {
            step(
                1,
                format!(
                    "wrote a sample file: {} ({} bytes)",
                    text_path.display(),
                    SAMPLE.len()
                ),
            )
        },
    )?;

    let image_path = tour_dir.join("hello.png");
    let encoded = pxos_pixel::encode_file(
        &text_path,
        &image_path,
        &EncodeOptions::kind(Kind::Text),
        &mut |_| {},
    )?;
    output.emit(
        json!({"type": "tour-step", "step": 2, "image": image_path, "width": encoded.geometry.width,
               "height": encoded.geometry.height, "file_len": encoded.file_len}),
        || {
            step(
                2,
                format!(
                    "encoded it as pixels: {} is a {}x{} PNG ({}) that any image viewer opens",
                    image_path.display(),
                    encoded.geometry.width,
                    encoded.geometry.height,
                    human_bytes(encoded.file_len)
                ),
            )
        },
    )?;

    let fs = PixelFs::open_or_init(&home.join("fs"))?;
    let options = AddOptions {
        kind: Some(Kind::Text),
        description: Some("the tour's sample text".into()),
        replace: true,
    };
    let added = fs.add_file("/tour/hello.txt", &text_path, &options)?;
    let entry = &added.entry;
    let pixel_path = tour_dir.join("hello-boot-pixel.png");
    pxos_fs::write_boot_pixel(&pixel_path, entry.rgba())?;
    output.emit(
        json!({"type": "tour-step", "step": 3, "path": entry.path, "file_id": entry.file_id, "color": entry.color,
               "object": fs.object_path(&entry.sha256), "boot_pixel": pixel_path}),
        || step(3, format!(
            "filed it in PixelFS at {} (file id {}, colour {}); its boot pixel {} resolves back to it",
            entry.path, entry.file_id, entry.color, pixel_path.display()
        )),
    )?;

    let decoded = pxos_pixel::verify_file(&image_path, &Limits::default(), &mut |_| {})?;
    let resolved = fs.resolve(pixel_path.to_str().context("tour path is not UTF-8")?)?;
    let problems = fs.verify(std::slice::from_ref(&entry.path))?;
    let round_trip = {
        let mut bytes = Vec::new();
        fs.read_to(entry, &mut bytes)?;
        bytes == SAMPLE.as_bytes()
    };
    let ok = problems.is_empty() && round_trip && resolved.iter().any(|e| e.path == entry.path);
    output.emit(
        json!({"type": "tour-step", "step": 4, "verified": ok, "sha256": pxos_pixel::hex(&decoded.header.sha256)}),
        || step(4, format!(
            "verified: the pixels decode to the exact bytes (sha256 {}...) -> {}",
            &pxos_pixel::hex(&decoded.header.sha256)[..16],
            if ok { output.good("ok") } else { output.bad("FAILED") }
        )),
    )?;
    output.emit(json!({"type": "tour-done", "home": home}), || {
        format!(
            "\nNext: `pxos pixel info {}`, `pxos fs tree`, `pxos fs discover DIR`.",
            image_path.display()
        )
    })?;
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}
