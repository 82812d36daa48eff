//! References on a remote that move by compare-and-swap, on a store that
//! has no conditional PUT (Garage accepts `If-Match` and `If-None-Match`
//! and ignores them). See `docs/formats/remote.md` for the argument.
//!
//! A reference `NAME` is a series of numbered slots under `refs/NAME/`:
//!
//! * `SEQ/claim-NONCE.json`: a writer's claim on slot SEQ (append-only; a
//!   nonce is unique to one attempt, so no claim overwrites another);
//! * `SEQ/lost-NONCE.json`: that writer gave the slot up;
//! * `SEQ/commit.json`: the winner's value;
//! * `HEAD.json`: a hint naming a committed slot, so readers list only the
//!   slots from there on. It may lag; it never leads.
//!
//! A writer claims slot `last + 1`, then lists the slot. It wins only when
//! its claim is the only one there. Two winners are impossible: with
//! read-after-write consistent PUT and LIST (Garage gives both, by quorum),
//! of two claims the later PUT is listed by the other's LIST or follows it,
//! and so the later writer's own LIST sees the earlier claim. A writer that
//! sees another claim records `lost`; when every claimant of a slot lost
//! (both saw each other), the slot is dead and the next attempt uses the
//! slot after it. The value of the reference is the committed slot with the
//! highest number.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use pxos_pixel::Hash256;
use serde::{Deserialize, Serialize};

use crate::client::Remote;
use crate::error::{Error, Result};

/// A claim neither committed nor given up after this long is abandoned
/// (its writer died); a live writer commits within [`COMMIT_DEADLINE`].
pub const ABANDONED: Duration = Duration::from_secs(600);
/// A writer that could not commit this soon after claiming gives up.
pub const COMMIT_DEADLINE: Duration = Duration::from_secs(120);
/// Attempts when every claimant of a slot lost (a tie), before giving up.
const TIE_ATTEMPTS: u32 = 6;

/// A reference's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefValue {
    pub seq: u64,
    /// The value: a PixelFS root.
    pub root: Hash256,
    /// The slot this one replaced (0 for the first) and its root.
    pub prev_seq: u64,
    pub prev_root: Hash256,
    pub files: u64,
    pub bytes: u64,
    pub time: String,
    /// Who pushed (the host and the home's path, for people).
    pub by: String,
    pub nonce: String,
}

#[derive(Debug, Default)]
struct Slot {
    claims: BTreeMap<String, SystemTime>,
    lost: Vec<String>,
    committed: bool,
}

impl Slot {
    /// Some claim is neither lost nor committed, and not abandoned.
    fn in_flight(&self, now: SystemTime) -> Option<&String> {
        if self.committed {
            return None;
        }
        self.claims.iter().find_map(|(nonce, at)| {
            let live = now.duration_since(*at).unwrap_or_default() < ABANDONED;
            (live && !self.lost.contains(nonce)).then_some(nonce)
        })
    }
}

fn slot_dir(name: &str, seq: u64) -> String {
    format!("refs/{name}/{seq:020}/")
}

/// The slots from `from` on.
fn read_slots(remote: &Remote, name: &str, from: u64) -> Result<BTreeMap<u64, Slot>> {
    let base = format!("refs/{name}/");
    // After every key of slot `from - 1` (its names all sort before "zz").
    let offset = (from > 0).then(|| format!("{base}{:020}/zz", from - 1));
    let mut slots: BTreeMap<u64, Slot> = BTreeMap::new();
    for listed in remote.list(&base, offset.as_deref())? {
        let Some(rest) = listed.rel.strip_prefix(&base) else {
            continue;
        };
        let Some((seq, file)) = rest.split_once('/') else {
            continue;
        };
        let Ok(seq) = seq.parse::<u64>() else {
            continue;
        };
        let slot = slots.entry(seq).or_default();
        if file == "commit.json" {
            slot.committed = true;
        } else if let Some(nonce) = file
            .strip_prefix("claim-")
            .and_then(|f| f.strip_suffix(".json"))
        {
            slot.claims.insert(nonce.to_string(), listed.modified);
        } else if let Some(nonce) = file
            .strip_prefix("lost-")
            .and_then(|f| f.strip_suffix(".json"))
        {
            slot.lost.push(nonce.to_string());
        }
    }
    Ok(slots)
}

fn hint(remote: &Remote, name: &str) -> u64 {
    remote
        .get(&format!("refs/{name}/HEAD.json"))
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<RefValue>(&b).ok())
        .map_or(0, |v| v.seq)
}

fn read_commit(remote: &Remote, name: &str, seq: u64) -> Result<RefValue> {
    let rel = format!("{}commit.json", slot_dir(name, seq));
    let bytes = remote
        .get(&rel)?
        .ok_or_else(|| Error::Remote(format!("{rel} was listed but cannot be read")))?;
    let value: RefValue = serde_json::from_slice(&bytes)
        .map_err(|err| Error::Remote(format!("{rel} is not a reference value: {err}")))?;
    if value.seq != seq {
        return Err(Error::Remote(format!("{rel} names slot {}", value.seq)));
    }
    Ok(value)
}

/// The state of a reference: its value and what lies beyond it.
struct State {
    head: Option<RefValue>,
    /// The highest slot anything was written to.
    last_slot: u64,
    /// A slot with a live claim that is neither committed nor given up.
    in_flight: Option<u64>,
}

fn read_state(remote: &Remote, name: &str) -> Result<State> {
    let mut from = hint(remote, name);
    let mut slots = read_slots(remote, name, from)?;
    if from > 0 && !slots.get(&from).is_some_and(|s| s.committed) {
        // A hint that names no commit is wrong: read everything.
        from = 0;
        slots = read_slots(remote, name, from)?;
    }
    let head_seq = slots
        .iter()
        .rev()
        .find(|(_, s)| s.committed)
        .map(|(seq, _)| *seq);
    let head = head_seq
        .map(|seq| read_commit(remote, name, seq))
        .transpose()?;
    let now = SystemTime::now();
    let in_flight = slots
        .iter()
        .filter(|(seq, _)| Some(**seq) > head_seq)
        .find(|(_, slot)| slot.in_flight(now).is_some())
        .map(|(seq, _)| *seq);
    Ok(State {
        head,
        last_slot: slots.keys().next_back().copied().unwrap_or(0),
        in_flight,
    })
}

/// The reference's current value (None: never set).
pub fn read(remote: &Remote, name: &str) -> Result<Option<RefValue>> {
    Ok(read_state(remote, name)?.head)
}

fn nonce() -> String {
    let mut seed = Vec::new();
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seed.extend_from_slice(
        &SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    seed.extend_from_slice(format!("{:p}", &seed).as_bytes());
    if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
        seed.extend_from_slice(&bytes);
    }
    Hash256::of(&seed).to_hex()[..24].to_string()
}

/// What a swap sets.
pub struct NewValue {
    pub root: Hash256,
    pub files: u64,
    pub bytes: u64,
    pub by: String,
}

/// Moves reference `name` from `expected` (None: unset) to `new`: a
/// compare-and-swap. Refused with [`Error::Moved`] when the reference is
/// not `expected`, or another push wins the slot; nothing changes then.
pub fn swap(
    remote: &Remote,
    name: &str,
    expected: Option<&RefValue>,
    new: &NewValue,
) -> Result<RefValue> {
    for attempt in 0..TIE_ATTEMPTS {
        let state = read_state(remote, name)?;
        let expected_seq = expected.map_or(0, |v| v.seq);
        let head_seq = state.head.as_ref().map_or(0, |v| v.seq);
        if head_seq != expected_seq {
            return Err(Error::Moved(format!(
                "its reference {name} is at {} now, not at {} as expected; pull first",
                describe(state.head.as_ref()),
                describe(expected)
            )));
        }
        if let Some(seq) = state.in_flight {
            return Err(Error::Moved(format!(
                "another push to {name} is under way (slot {seq}); try again when it ends"
            )));
        }
        let seq = state.last_slot.max(head_seq) + 1;
        let value = RefValue {
            seq,
            root: new.root,
            prev_seq: head_seq,
            prev_root: state.head.as_ref().map_or(Hash256::ZERO, |v| v.root),
            files: new.files,
            bytes: new.bytes,
            time: pxos_fs::time::now_rfc3339(),
            by: new.by.clone(),
            nonce: nonce(),
        };
        let dir = slot_dir(name, seq);
        let json = serde_json::to_vec_pretty(&value).expect("values serialize");
        let claimed = Instant::now();
        remote.put(&format!("{dir}claim-{}.json", value.nonce), json.clone())?;
        let rivals = remote
            .list(&dir, None)?
            .into_iter()
            .filter(|l| {
                l.rel.starts_with(&format!("{dir}claim-"))
                    && l.rel != format!("{dir}claim-{}.json", value.nonce)
            })
            .count();
        if rivals == 0 && claimed.elapsed() < COMMIT_DEADLINE {
            remote.put(&format!("{dir}commit.json"), json.clone())?;
            // The hint: best effort (a reader that finds it stale lists more).
            let _ = remote.put(&format!("refs/{name}/HEAD.json"), json);
            return Ok(value);
        }
        remote.put(&format!("{dir}lost-{}.json", value.nonce), Vec::new())?;
        // Did a rival win, or did we all lose (a tie)? Only a tie retries.
        let after = read_state(remote, name)?;
        if after.head.as_ref().map_or(0, |v| v.seq) != expected_seq {
            return Err(Error::Moved(format!(
                "another push to {name} won (it is at {} now); pull first",
                describe(after.head.as_ref())
            )));
        }
        // Back off by a random amount so the tied writers do not meet again.
        let jitter = u64::from_str_radix(&value.nonce[..4], 16).unwrap_or(0) % 200;
        std::thread::sleep(Duration::from_millis(
            50 + jitter * (u64::from(attempt) + 1),
        ));
    }
    Err(Error::Moved(format!(
        "pushes to {name} kept colliding; try again"
    )))
}

fn describe(value: Option<&RefValue>) -> String {
    match value {
        None => "nothing (never pushed)".into(),
        Some(v) => format!(
            "slot {} (root {}, pushed {} by {})",
            v.seq,
            v.root.short(),
            v.time,
            v.by
        ),
    }
}
