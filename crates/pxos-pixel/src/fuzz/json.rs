//! A structure-aware mutator for the JSON inside pxOS files (manifests, path
//! tables, log entries, registry and kernel states).
//!
//! It edits the parsed document, not its bytes: a value replaced by a value
//! of another type or a boundary value, a string nudged into a hostile path
//! or version, a key dropped, renamed or added, an array element dropped,
//! repeated or reordered, a value copied from elsewhere in the same document.
//! The result is still JSON, so it reaches the typed decoder and its checks.

use arbitrary::Unstructured;
use serde_json::{Map, Value};

use super::layers::mutate_bytes;

/// Strings that break naive path, name, version and time handling.
const STRINGS: &[&str] = &[
    "",
    "a",
    ".",
    "..",
    "../../etc/passwd",
    "/abs/path",
    "a/./b",
    "a//b",
    "a\\b",
    "C:x",
    "nul\u{0}byte",
    "\u{202e}rtl",
    "ä/ö",
    "default",
    "default@1.0.0",
    "1.0.0",
    "0.0.0-",
    "1.0.0-rc.1+build",
    "99999999999999999999.0.0",
    "human",
    "llm",
    "system",
    "2026-11-30T00:00:00Z",
    "not-a-time",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// Mutates `bytes` as JSON when they parse as JSON, else byte by byte.
pub fn mutate_json(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        mutate_bytes(u, bytes);
        return;
    };
    let edits: u8 = u.int_in_range(1..=3).unwrap_or(1);
    for _ in 0..edits {
        mutate_value(u, &mut value);
    }
    *bytes = if u.arbitrary().unwrap_or(false) {
        serde_json::to_vec_pretty(&value)
    } else {
        serde_json::to_vec(&value)
    }
    .unwrap_or_default();
    // Now and then the text itself: truncated, a stray byte, a duplicate key.
    if u.ratio(1, 10).unwrap_or(false) {
        mutate_bytes(u, bytes);
    }
}

/// Applies one structured edit somewhere in `root`.
pub fn mutate_value(u: &mut Unstructured<'_>, root: &mut Value) {
    let mut donors = Vec::new();
    collect(root, &mut donors, 64);
    let donor = u.choose(&donors).ok().cloned();
    let node = pick(u, root);
    match node {
        Value::Object(map) if u.arbitrary().unwrap_or(false) => edit_object(u, map),
        Value::Array(items) if u.arbitrary().unwrap_or(false) => edit_array(u, items),
        Value::String(text) if u.arbitrary().unwrap_or(false) => edit_string(u, text),
        Value::Number(number) if u.arbitrary().unwrap_or(false) => {
            *node = nudge_number(u, number);
        }
        _ => {
            *node = match (u.int_in_range(0..=2u8).unwrap_or(0), donor) {
                (0, Some(donor)) => donor,
                _ => interesting(u),
            }
        }
    }
}

/// Walks down from `root`, stopping at a random depth.
fn pick<'v>(u: &mut Unstructured<'_>, root: &'v mut Value) -> &'v mut Value {
    let stop = u.ratio(1, 4).unwrap_or(true);
    let len = match root {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    };
    if stop || len == 0 {
        return root;
    }
    let index = u.int_in_range(0..=len - 1).unwrap_or(0);
    match root {
        Value::Object(map) => {
            let child = map.values_mut().nth(index).expect("index below len");
            pick(u, child)
        }
        Value::Array(items) => pick(u, &mut items[index]),
        _ => unreachable!("len is 0 for scalars"),
    }
}

/// Up to `limit` values of the document, to be copied elsewhere in it.
fn collect(value: &Value, out: &mut Vec<Value>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match value {
        Value::Object(map) => map.values().for_each(|v| collect(v, out, limit)),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out, limit)),
        scalar => out.push(scalar.clone()),
    }
}

fn edit_object(u: &mut Unstructured<'_>, map: &mut Map<String, Value>) {
    let keys: Vec<String> = map.keys().cloned().collect();
    match (u.int_in_range(0..=2u8).unwrap_or(0), u.choose(&keys).ok()) {
        (0, Some(key)) => {
            map.remove(key);
        }
        (1, Some(key)) => {
            if let Some(value) = map.remove(key) {
                map.insert(format!("{key}_"), value);
            }
        }
        _ => {
            map.insert("unexpected".into(), interesting(u));
        }
    }
}

fn edit_array(u: &mut Unstructured<'_>, items: &mut Vec<Value>) {
    let len = items.len();
    if len == 0 {
        items.push(interesting(u));
        return;
    }
    let i = u.int_in_range(0..=len - 1).unwrap_or(0);
    let j = u.int_in_range(0..=len - 1).unwrap_or(0);
    match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => {
            items.remove(i);
        }
        1 => {
            let copy = items[i].clone();
            items.insert(j, copy);
        }
        2 => items.swap(i, j),
        _ => items.reverse(),
    }
}

fn edit_string(u: &mut Unstructured<'_>, text: &mut String) {
    match u.int_in_range(0..=4u8).unwrap_or(0) {
        0 => {
            text.pop();
        }
        1 => text.push(
            *u.choose(&['/', '.', '-', '@', 'X', '\u{0}', 'é'])
                .unwrap_or(&'/'),
        ),
        2 => *text = text.to_uppercase(),
        3 => text.insert_str(0, u.choose(&["../", "/", "./", " "]).unwrap_or(&"/")),
        _ => {
            let repeat = usize::from(u.int_in_range(2..=40u8).unwrap_or(2));
            *text = text.repeat(repeat).chars().take(4096).collect();
        }
    }
}

fn nudge_number(u: &mut Unstructured<'_>, number: &serde_json::Number) -> Value {
    if let Some(n) = number.as_u64() {
        let delta: u64 = u.int_in_range(1..=2).unwrap_or(1);
        return match u.int_in_range(0..=3u8).unwrap_or(0) {
            0 => Value::from(n.wrapping_add(delta)),
            1 => Value::from(n.wrapping_sub(delta)),
            2 => Value::from(n.wrapping_mul(2)),
            _ => Value::from(-(n as i64)),
        };
    }
    Value::from(number.as_f64().map_or(0.0, |f| -f * 2.0))
}

/// A value of any JSON type chosen for being at an edge.
fn interesting(u: &mut Unstructured<'_>) -> Value {
    match u.int_in_range(0..=7u8).unwrap_or(0) {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary().unwrap_or(false)),
        2 => Value::from(
            *u.choose(&[0i64, 1, -1, i64::from(u32::MAX), i64::MAX, i64::MIN])
                .unwrap_or(&0),
        ),
        3 => Value::from(*u.choose(&[u64::MAX, 1 << 53, 1 << 32]).unwrap_or(&0)),
        4 => Value::from(*u.choose(&[1.5f64, -0.0, 1e300]).unwrap_or(&1.5)),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(Map::new()),
        _ => Value::from(*u.choose(STRINGS).unwrap_or(&"")),
    }
}
