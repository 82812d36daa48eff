//! Fuzz target bodies, shared by `fuzz/` (cargo-fuzz) and the test suite's
//! seeded runs. Each body turns the fuzzer's bytes into a *generated* input
//! (a cartridge, a log, a registry state) through structured generators,
//! mutates it at one layer with [`pxos_pixel::fuzz::mutate_pxi`], feeds it to
//! the real decoder and says how deep it got.

use std::collections::BTreeMap;

use pxos_pixel::fuzz::{
    Reach, Unstructured, fuzz_limits, mutate_json, mutate_pxi, stage, table_body,
};
use pxos_pixel::{EncodeOptions, Hash256, Kind};
use serde_json::json;

use crate::cartridge::{Creator, CreatorKind, FileEntry, Manifest, PAYLOAD_MAGIC};
use crate::checkpoint::Checkpointed;
use crate::log::{
    Action, Actor, ActorKind, CartRef, KernelOutcome, LOG_FORMAT, LOG_VERSION, LogEntry,
    LogPosition, SwitchCause,
};

/// A small world the generators talk about, so that generated references
/// (parents, rollbacks, kernel ids) often point at something that exists.
const NAMES: [&str; 3] = ["default", "alpha", "beta"];
const VERSIONS: [&str; 4] = ["1.0.0", "1.1.0", "1.0.1", "2.0.0-rc.1"];
const PEOPLE: [&str; 3] = ["ada", "pixellm", "pxos"];
const PATHS: [&str; 8] = [
    "boot/sequence.json",
    "kernels/kernel.pxi",
    "programs/hello.pxi",
    "docs/README.md",
    "docs/a/b/c.txt",
    "messages/0001.txt",
    "models/tiny.pxi",
    "cartridge.json",
];

/// The cartridge a generated id names: its hash follows from the id, so the
/// same id always has the same hash unless the generator chooses otherwise.
fn cart_ref(u: &mut Unstructured<'_>) -> CartRef {
    let name = *u.choose(&NAMES).unwrap_or(&NAMES[0]);
    let version = *u.choose(&VERSIONS).unwrap_or(&VERSIONS[0]);
    let sha256 = if u.ratio(1, 8).unwrap_or(false) {
        Hash256::of(u.bytes(4).unwrap_or_default())
    } else {
        Hash256::of(format!("{name}@{version}").as_bytes())
    };
    CartRef {
        name: name.into(),
        version: version.into(),
        sha256,
    }
}

fn actor(u: &mut Unstructured<'_>) -> Actor {
    let kind = *u
        .choose(&[ActorKind::Human, ActorKind::Llm, ActorKind::System])
        .unwrap_or(&ActorKind::Human);
    Actor {
        kind,
        name: (*u.choose(&PEOPLE).unwrap_or(&PEOPLE[0])).into(),
    }
}

fn kernel_id(u: &mut Unstructured<'_>) -> u32 {
    u.int_in_range(0..=4).unwrap_or(1)
}

fn switch_cause(u: &mut Unstructured<'_>) -> SwitchCause {
    match u.int_in_range(0..=4u8).unwrap_or(0) {
        0 => SwitchCause::Manual,
        1 => SwitchCause::Rollback,
        2 => SwitchCause::SelfModify {
            module: u.int_in_range(0..=3).unwrap_or(0),
        },
        3 => SwitchCause::VersionSwitch,
        _ => SwitchCause::Cartridge {
            sha256: cart_ref(u).sha256,
        },
    }
}

/// One generated action of any kind.
pub fn action(u: &mut Unstructured<'_>) -> Action {
    match u.int_in_range(0..=11u8).unwrap_or(0) {
        11 => Action::Task {
            task: format!("t{}", u.int_in_range(1..=9u32).unwrap_or(1)),
            title: "write a program".into(),
            accepted: u.arbitrary().unwrap_or(false),
            rounds: u.int_in_range(1..=3).unwrap_or(1),
            score: u.arbitrary::<bool>().unwrap_or(false).then_some(8),
            artefact: u
                .arbitrary::<bool>()
                .unwrap_or(false)
                .then(|| cart_ref(u).sha256),
        },
        0 => Action::Note {
            label: "note".into(),
        },
        1 => Action::Pack {
            cartridge: cart_ref(u),
        },
        2 => {
            let cartridge = cart_ref(u);
            let parent = u
                .arbitrary::<bool>()
                .unwrap_or(false)
                .then(|| cart_ref(u).id());
            Action::Register {
                cartridge,
                parent,
                creator: Creator {
                    kind: if u.arbitrary().unwrap_or(false) {
                        CreatorKind::Llm
                    } else {
                        CreatorKind::Human
                    },
                    name: "ada".into(),
                },
                file_len: u.int_in_range(0..=1 << 20).unwrap_or(0),
                as_current: u.arbitrary().unwrap_or(false),
                origin: None,
            }
        }
        3 => {
            let passed = u.ratio(3, 4).unwrap_or(true);
            Action::GenesisCheck {
                cartridge: cart_ref(u),
                passed,
                failed: if passed { Vec::new() } else { vec!["1".into()] },
            }
        }
        4 => Action::Promote {
            cartridge: cart_ref(u),
            from: u.arbitrary::<bool>().unwrap_or(false).then(|| cart_ref(u)),
            forced: u.ratio(1, 8).unwrap_or(false),
        },
        5 => Action::RollbackRequest {
            cartridge: cart_ref(u),
            from: cart_ref(u),
        },
        6 => Action::Rollback {
            cartridge: cart_ref(u),
            from: cart_ref(u),
            requested_by: u.arbitrary::<bool>().unwrap_or(false).then(|| actor(u)),
        },
        7 => {
            let kernel = kernel_id(u);
            Action::KernelInstall {
                kernel,
                version: format!("v{kernel}"),
                parent: kernel.checked_sub(1),
                image: Hash256::of(&kernel.to_le_bytes()),
                size: u.int_in_range(0..=4096).unwrap_or(64),
                tries: u.int_in_range(0..=3).unwrap_or(3),
                current: u
                    .arbitrary::<bool>()
                    .unwrap_or(false)
                    .then(|| switch_cause(u)),
            }
        }
        8 => Action::KernelSwitch {
            kernel: kernel_id(u),
            from: u.arbitrary::<bool>().unwrap_or(false).then(|| kernel_id(u)),
            cause: switch_cause(u),
        },
        _ => Action::KernelBoot {
            kernel: kernel_id(u),
            outcome: if u.arbitrary().unwrap_or(false) {
                KernelOutcome::Good
            } else {
                KernelOutcome::Failed {
                    why: "halted with an error".into(),
                    tries_left: u.int_in_range(0..=3).unwrap_or(0),
                    reverted_to: u.arbitrary::<bool>().unwrap_or(false).then(|| kernel_id(u)),
                }
            },
        },
    }
}

/// A generated, correctly chained run of log entries (0 to 16 of them).
pub fn log_entries(u: &mut Unstructured<'_>) -> Vec<LogEntry> {
    let count: u8 = u.int_in_range(0..=16).unwrap_or(0);
    let mut entries: Vec<LogEntry> = Vec::new();
    for seq in 1..=u64::from(count) {
        let mut entry = LogEntry {
            seq,
            time: format!("2026-11-30T00:00:{:02}Z", seq % 60),
            actor: actor(u),
            action: action(u),
            reason: "generated".into(),
            prev: entries.last().map_or(Hash256::ZERO, |e| e.hash),
            hash: Hash256::ZERO,
        };
        entry.hash = entry.compute_hash();
        entries.push(entry);
    }
    entries
}

/// The JSON of a log file holding `entries`.
pub fn log_json(entries: &[LogEntry]) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "format": LOG_FORMAT,
        "version": LOG_VERSION,
        "head": LogPosition::end_of(entries),
        "entries": entries,
    }))
    .expect("entries serialize")
}

/// The JSON of a state built by applying generated entries (those that
/// apply) to an empty state: a state the real code could have saved.
pub fn state_json<S: Checkpointed>(u: &mut Unstructured<'_>) -> Vec<u8> {
    let entries = log_entries(u);
    let mut state = S::default();
    for entry in entries.iter().filter(|e| e.action.domain() == S::DOMAIN) {
        let _ = state.apply(entry);
    }
    state.set_position(LogPosition::end_of(&entries));
    serde_json::to_vec_pretty(&state).expect("states serialize")
}

/// Fuzz target `evolution_log`: a generated log, mutated, decoded.
pub fn evolution_log(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let entries = log_entries(&mut u);
    let json = log_json(&entries);
    table_body(&mut u, &json, |png| {
        crate::log::decode_log_bytes(png).map(|entries| {
            for entry in &entries {
                let _ = entry.compute_hash();
            }
        })
    })
}

/// Fuzz target `registry_state`: a generated registry state, mutated, decoded.
pub fn registry_state(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let json = state_json::<crate::registry::State>(&mut u);
    table_body(&mut u, &json, |png| {
        crate::registry::decode_state(png).map(|state| {
            let _ = state.current_record();
        })
    })
}

/// A generated manifest and the files it lists: names from a small set of
/// real and hostile paths, sizes and hashes that match the bytes.
pub fn manifest(u: &mut Unstructured<'_>) -> (Manifest, Vec<u8>) {
    let mut paths: Vec<String> = Vec::new();
    let count: u8 = u.int_in_range(0..=6).unwrap_or(1);
    for _ in 0..count {
        let path = *u.choose(&PATHS).unwrap_or(&PATHS[0]);
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
        }
    }
    paths.sort();
    let mut data = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        let len = usize::from(u.int_in_range(0..=64u8).unwrap_or(0));
        let bytes = u.bytes(len).unwrap_or_default().to_vec();
        files.push(FileEntry {
            path,
            size: bytes.len() as u64,
            sha256: Hash256::of(&bytes).to_string(),
            offset: data.len() as u64,
        });
        data.extend_from_slice(&bytes);
    }
    let cart = cart_ref(u);
    let manifest = Manifest {
        format: "pxos-cartridge".into(),
        format_version: 1,
        name: cart.name,
        version: cart.version,
        parent: u
            .arbitrary::<bool>()
            .unwrap_or(false)
            .then(|| cart_ref(u).id()),
        creator: Creator {
            kind: CreatorKind::Human,
            name: "ada".into(),
        },
        created: "2026-11-30T00:00:00Z".into(),
        notes: String::new(),
        reason: "generated".into(),
        capabilities: vec!["pxvm".into()],
        metrics: BTreeMap::new(),
        genesis_version: "1.0".into(),
        files,
    };
    (manifest, data)
}

/// A cartridge payload: magic, manifest length, manifest JSON, file data.
pub fn cartridge_payload(manifest: &[u8], data: &[u8]) -> Vec<u8> {
    let mut payload = PAYLOAD_MAGIC.to_vec();
    payload.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    payload.extend_from_slice(manifest);
    payload.extend_from_slice(data);
    payload
}

/// Fuzz target `cart_unpack`: a generated cartridge, mutated (its manifest
/// as JSON, its length field, its data), unpacked into a scratch folder.
pub fn cart_unpack(data: &[u8]) -> Reach {
    let mut u = Unstructured::new(data);
    let (manifest, files) = manifest(&mut u);
    let manifest_json = serde_json::to_vec(&manifest).expect("manifests serialize");
    let payload = cartridge_payload(&manifest_json, &files);
    let mutant = mutate_pxi(
        &mut u,
        &payload,
        &EncodeOptions::kind(Kind::Archive),
        &mut |u, payload| {
            let mut json = manifest_json.clone();
            let mut data = files.clone();
            match u.int_in_range(0..=5u8).unwrap_or(0) {
                0 => pxos_pixel::fuzz::mutate_bytes(u, payload),
                1 => {
                    pxos_pixel::fuzz::mutate_bytes(u, &mut data);
                    *payload = cartridge_payload(&json, &data);
                }
                2 => {
                    // The manifest length no longer matches the manifest.
                    mutate_json(u, &mut json);
                    let mut out = cartridge_payload(&json, &data);
                    let wrong: u32 = u.arbitrary().unwrap_or(0);
                    out[4..8].copy_from_slice(&wrong.to_le_bytes());
                    *payload = out;
                }
                _ => {
                    mutate_json(u, &mut json);
                    *payload = cartridge_payload(&json, &data);
                }
            }
        },
    );
    let staged = stage(&mutant.png, &fuzz_limits());
    let parsed = unpack_image(&mutant.png);
    match staged {
        Ok(_) => Reach::parsed(parsed),
        Err(reach) => {
            assert!(!parsed, "unpacked a file the pixel layers refuse");
            reach
        }
    }
}

/// Unpacks arbitrary bytes as a `.pxa` file into a scratch folder: true when
/// it unpacked. Either way no staging folder is left, and a failure leaves
/// no target.
pub fn unpack_image(png: &[u8]) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pxos-cart-fuzz-{}-{unique}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let cartridge = dir.join("in.pxa");
    let mut unpacked = false;
    if std::fs::write(&cartridge, png).is_ok() {
        let limits = crate::Limits {
            max_total_bytes: 1 << 20,
            max_file_bytes: 1 << 20,
            ..crate::Limits::default()
        };
        let result = crate::unpack(&cartridge, &dir.join("out"), &limits);
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
        unpacked = result.is_ok();
    }
    let _ = std::fs::remove_dir_all(&dir);
    unpacked
}
