//! `pxos map ...`: InfiniteMap in the home (`<home>/map`).

use std::io::Write;

use pxos_map::InfiniteMap;
use serde_json::json;

use crate::Outcome;
use crate::cli::{Global, MapCommand};
use crate::error::Result;
use crate::output::Output;

pub fn run(command: &MapCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let root = crate::home::home(global)?.join("map");
    match command {
        MapCommand::Put {
            x,
            y,
            file,
            tile_size,
        } => {
            let bytes = pxos_pixel::text::read_input(file)?;
            let mut map = InfiniteMap::open(&root, *tile_size)?;
            let record = map.put(*x, *y, &bytes)?;
            let rows = (record.len + 9)
                .div_ceil(3)
                .div_ceil(u64::from(record.width));
            map.flush()?;
            let tiles = map.find_tiles_in_region(
                *x,
                *y,
                record.width,
                rows.min(u64::from(u32::MAX)) as u32,
            )?;
            output.emit(json!({"type": "put", "write": record, "tiles": tiles}), || {
                format!(
                    "stored {} bytes at ({x}, {y}) in rows of {} pixels across {} tile(s); read back with `pxos map get {x} {y}`",
                    record.len, record.width, tiles.len()
                )
            })?;
        }
        MapCommand::Get {
            x,
            y,
            output: target,
        } => {
            let mut map = InfiniteMap::open_read_only(&root)?;
            let bytes = map.get(*x, *y)?;
            match target {
                Some(path) => {
                    crate::output::write_output(
                        path,
                        &bytes,
                        pxos_pixel::durable::label::MAP_RENDER,
                    )?;
                    output.emit(json!({"type": "get", "x": x, "y": y, "bytes": bytes.len(), "output": path}), || {
                        format!("wrote {} bytes to {}", bytes.len(), path.display())
                    })?;
                }
                None => std::io::stdout().lock().write_all(&bytes)?,
            }
        }
        MapCommand::Render {
            x,
            y,
            w,
            h,
            output: target,
        } => {
            let mut map = InfiniteMap::open_read_only(&root)?;
            let png = map.render(*x, *y, *w, *h)?;
            let tiles = map.find_tiles_in_region(*x, *y, *w, *h)?.len();
            crate::output::write_output(target, &png, pxos_pixel::durable::label::MAP_RENDER)?;
            output.emit(json!({"type": "render", "x": x, "y": y, "w": w, "h": h, "tiles": tiles, "output": target}), || {
                format!("rendered {w}x{h} at ({x}, {y}) from {tiles} stored tile(s) to {}", target.display())
            })?;
        }
        MapCommand::Stats => {
            let mut map = InfiniteMap::open_read_only(&root)?;
            let stats = map.stats()?;
            output.emit(json!({"type": "stats", "stats": stats}), || {
                format!(
                    "tile size {}\ntiles on disk {}\nnotes {}\nwrites {}\nbounds {}",
                    stats.tile_size,
                    stats.tiles_on_disk,
                    stats.notes,
                    stats.writes,
                    stats
                        .bounds
                        .map_or("(empty)".to_string(), |[x0, y0, x1, y1]| format!(
                            "x {x0}..{x1}, y {y0}..{y1}"
                        ))
                )
            })?;
        }
        MapCommand::Note { x, y, text } => {
            let mut map = InfiniteMap::open(&root, pxos_map::DEFAULT_TILE_SIZE)?;
            let (tx, ty) = map.note(*x, *y, text)?;
            map.flush()?;
            output.emit(
                json!({"type": "note", "tile": [tx, ty], "text": text}),
                || format!("noted tile ({tx}, {ty})"),
            )?;
        }
        MapCommand::Chat {
            x,
            y,
            text,
            provider,
        } => {
            return super::agents::map_chat(
                &root,
                *x,
                *y,
                text.as_deref(),
                provider.provider.as_deref(),
                global,
                output,
            );
        }
        MapCommand::Set { x, y, r, g, b } => {
            let mut map = InfiniteMap::open(&root, pxos_map::DEFAULT_TILE_SIZE)?;
            map.set_pixel(*x, *y, [*r, *g, *b])?;
            map.flush()?;
            output.emit(
                json!({"type": "set", "x": x, "y": y, "rgb": [r, g, b]}),
                || format!("({x}, {y}) = ({r}, {g}, {b})"),
            )?;
        }
    }
    Ok(Outcome::Success)
}
