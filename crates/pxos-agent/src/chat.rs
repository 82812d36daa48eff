//! Map chat: a tile of the InfiniteMap as a conversation. The history lives
//! in the tile's note (`pxos-map-chat`, JSON), so it stays with the map; a
//! plain note already there becomes the conversation's topic. The oldest
//! turns give way when the note would pass the map's note limit.

use pxos_map::InfiniteMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::provider::{Gate, Message, Purpose, Request};

pub const CHAT_FORMAT: &str = "pxos-map-chat";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileChat {
    pub format: String,
    /// The tile's note from before the conversation, if it had one.
    #[serde(default)]
    pub topic: String,
    pub turns: Vec<Message>,
}

impl TileChat {
    /// The conversation a note holds (a plain note becomes the topic).
    pub fn from_note(note: Option<&str>) -> TileChat {
        match note {
            Some(text) => serde_json::from_str::<TileChat>(text)
                .ok()
                .filter(|c| c.format == CHAT_FORMAT)
                .unwrap_or_else(|| TileChat {
                    format: CHAT_FORMAT.into(),
                    topic: text.to_string(),
                    turns: Vec::new(),
                }),
            None => TileChat {
                format: CHAT_FORMAT.into(),
                ..TileChat::default()
            },
        }
    }

    /// The note text, dropping the oldest turns until it fits.
    pub fn to_note(&mut self) -> Result<String> {
        loop {
            let text = serde_json::to_string(self).expect("chats serialize");
            if text.len() <= pxos_map::MAX_NOTE {
                return Ok(text);
            }
            if self.turns.len() <= 2 {
                return Err(Error::bad_input(format!(
                    "one exchange does not fit in a tile note ({} bytes at most)",
                    pxos_map::MAX_NOTE
                )));
            }
            self.turns.drain(..2);
        }
    }
}

/// The tile holding (x, y) and its conversation.
pub fn history(map: &mut InfiniteMap, x: i64, y: i64) -> Result<((i64, i64), TileChat)> {
    let ((tx, ty), _) = pxos_map::tile_of(x, y, map.tile_size());
    let note = map.tile_note(tx, ty)?;
    Ok(((tx, ty), TileChat::from_note(note.as_deref())))
}

/// Says `text` to the tile holding (x, y): the model answers with the
/// tile's history as context, and both turns are saved in the tile's note.
pub fn say(
    map: &mut InfiniteMap,
    gate: &mut Gate,
    x: i64,
    y: i64,
    text: &str,
) -> Result<(String, TileChat)> {
    let ((tx, ty), mut chat) = history(map, x, y)?;
    let mut messages = vec![Message::new(
        "system",
        format!(
            "You are tile ({tx}, {ty}) of the pxOS InfiniteMap, holding pixels ({}..{}, {}..{}).{} Answer briefly.",
            tx * i64::from(map.tile_size()),
            (tx + 1) * i64::from(map.tile_size()) - 1,
            ty * i64::from(map.tile_size()),
            (ty + 1) * i64::from(map.tile_size()) - 1,
            if chat.topic.is_empty() {
                String::new()
            } else {
                format!(" Its note: {}.", chat.topic)
            }
        ),
    )];
    messages.extend(chat.turns.iter().cloned());
    messages.push(Message::new("user", text));
    let reply = gate.complete(&Request {
        purpose: Purpose::Chat,
        messages,
        max_tokens: 128,
    })?;
    chat.turns.push(Message::new("user", text));
    chat.turns
        .push(Message::new("assistant", reply.text.clone()));
    let note = chat.to_note()?;
    map.note(x, y, &note)?;
    map.flush()?;
    Ok((reply.text, chat))
}
