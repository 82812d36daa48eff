//! Every crash point in pxOS, hit. `durable::label::ALL` is every durable
//! write there is (a label exists only as one of those constants), and each
//! has five points. For each label this test names the command that reaches
//! it; a label without one fails the test. For each point it kills a real
//! `pxos` there (`PXOS_CRASH_AT`) and asserts: the process died at that point
//! (the marker, not just an exit code); the output is absent or complete; the
//! stores still check (`log verify`, `cart fsck`, `kernel fsck`, `fs fsck`);
//! the next command of the same kind works; and no temporary file is left.

use std::path::{Path, PathBuf};

use pxos_pixel::durable::{self, Label, label};

use crate::support::{Home, temporaries_under, unpack_current};

/// The command that reaches a label, run twice: round 0 is killed at the
/// point, round 1 must then work.
struct Scenario {
    /// Prepares a fresh home.
    setup: fn(&Home),
    /// The command of round `round` (0 or 1).
    op: fn(&Home, u32) -> Vec<String>,
    /// The file the command writes, if it is an output: after the crash it is
    /// absent or, when `deterministic`, byte for byte what round 1 writes.
    target: Option<&'static str>,
    deterministic: bool,
    /// What the crashed command reads on stdin (nothing when `None`).
    stdin: Option<&'static str>,
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

fn nothing(_: &Home) {}

fn booted(home: &Home) {
    home.ok(&["boot", "-q"]);
}

fn source(home: &Home) {
    std::fs::write(home.scratch("p.pxasm"), "LI R1, 7\nHALT\n").unwrap();
}

fn pixel_file(home: &Home) {
    std::fs::write(home.scratch("in.txt"), "bytes to keep").unwrap();
    home.ok(&[
        "pixel",
        "encode",
        &s(&home.scratch("in.txt")),
        "-o",
        &s(&home.scratch("in.png")),
    ]);
}

fn builtin_model(home: &Home) {
    std::fs::write(home.scratch("m.png"), pxos_llm::BUILTIN_PIXELLM).unwrap();
}

fn store_with_file(home: &Home) {
    pixel_file(home);
    home.ok(&["fs", "add", "/a.txt", &s(&home.scratch("in.txt"))]);
}

fn source_tree(home: &Home) {
    let dir = home.scratch("tree/sub");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "packed a").unwrap();
    std::fs::write(home.scratch("tree/b.txt"), "packed b").unwrap();
}

/// A log whose head says segments hold 2 records, with one record: the next
/// append seals a segment.
fn log_with_small_segments(home: &Home) {
    home.ok(&["log", "note", "first", "--actor", "ada"]);
    let head = home.home().join("log/evolution/head.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head).unwrap()).unwrap();
    value["segment_records"] = 2.into();
    std::fs::write(&head, serde_json::to_vec(&value).unwrap()).unwrap();
}

/// The same log grown past a sealed segment, never verified since.
fn log_with_a_sealed_segment(home: &Home) {
    log_with_small_segments(home);
    home.ok(&["log", "note", "second", "--actor", "ada"]);
    home.ok(&["log", "note", "third", "--actor", "ada"]);
}

/// Two program tasks and a recording that answers one of them correctly.
fn two_tasks_and_answers(home: &Home) {
    for title in ["first", "second"] {
        home.ok(&["tasks", "add", title, "--expect", "hi"]);
    }
    let answers = serde_json::json!([
        {"time": "", "purpose": "generate", "provider": "r", "model": "m", "prompt": [],
         "response": "```pxasm\nIMM32 R1, T\nLI R2, 1\nSYSCALL 1\nHALT\nT: .string \"hi\"\n```",
         "prompt_tokens": 1, "completion_tokens": 1, "ms": 0},
        {"time": "", "purpose": "review", "provider": "r", "model": "m", "prompt": [],
         "response": "SCORE: 9", "prompt_tokens": 1, "completion_tokens": 1, "ms": 0}
    ]);
    std::fs::write(home.scratch("answers.json"), answers.to_string()).unwrap();
}

fn cart_dir(home: &Home) {
    let dir = home.scratch("cart");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    std::fs::write(
        dir.join("cartridge.json"),
        r#"{"name":"tiny","version":"1.0.0","creator":{"name":"t","kind":"human"},"notes":"","reason":""}"#,
    )
    .unwrap();
}

/// A booted home with two packed (not registered) variants of the default world.
fn two_variants(home: &Home) {
    booted(home);
    for (name, version) in [("v0", "1.1.0"), ("v1", "1.2.0")] {
        let dir = unpack_current(home, name);
        let manifest_path = dir.join("cartridge.json");
        let mut manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        manifest["version"] = version.into();
        manifest["parent"] = "default@1.0.0".into();
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();
        home.ok(&[
            "cart",
            "pack",
            &s(&dir),
            "-o",
            &s(&home.scratch(&format!("{name}.pxa"))),
        ]);
    }
}

fn kernel_sources(home: &Home) {
    booted(home);
    for round in 0..2 {
        std::fs::write(
            home.scratch(&format!("k{round}.pxasm")),
            format!("LI R1, {round}\nHALT\n"),
        )
        .unwrap();
    }
}

fn two_vram_images(home: &Home) {
    home.ok(&["vram", "build", "default", "-o", &s(&home.scratch("a.png"))]);
    home.ok(&[
        "vram",
        "build",
        "deficient",
        "-o",
        &s(&home.scratch("b.png")),
    ]);
}

fn vram_image(home: &Home) {
    home.ok(&[
        "vram",
        "build",
        "default",
        "-o",
        &s(&home.scratch("os.png")),
    ]);
}

fn map_source(home: &Home) {
    std::fs::write(home.scratch("in.txt"), "bytes on the map").unwrap();
}

fn map_written(home: &Home) {
    map_source(home);
    home.ok(&["map", "put", "-5", "3", &s(&home.scratch("in.txt"))]);
}

/// The scenario that reaches `label`; `None` fails the test.
/// The Garage cluster the remote labels' scenarios push to: endpoint, key id, secret.
static GARAGE: std::sync::Mutex<Option<(String, String, String)>> = std::sync::Mutex::new(None);

/// Labels whose scenarios need the cluster.
const REMOTE_LABELS: &[&str] = &["fs-import", "remote-tracking"];

/// Adds remote `origin` at a prefix of its own (the home's folder name).
fn with_remote(home: &Home) {
    let (endpoint, key_id, secret) = GARAGE.lock().unwrap().clone().expect("the cluster runs");
    std::fs::write(home.scratch("secret"), secret).unwrap();
    let prefix = home.dir.file_name().unwrap().to_str().unwrap().to_string();
    home.ok(&[
        "remote",
        "add",
        "origin",
        &format!("s3://pxos/{prefix}"),
        "--endpoint",
        &endpoint,
        "--region",
        "garage",
        "--key-id",
        &key_id,
        "--secret-file",
        &s(&home.scratch("secret")),
    ]);
}

fn pushable(home: &Home) {
    store_with_file(home);
    with_remote(home);
}

/// A home that pushed its PixelFS, then lost it: a pull brings it back.
fn pushed_then_lost(home: &Home) {
    pushable(home);
    home.ok(&["fs", "push"]);
    std::fs::remove_dir_all(home.home().join("fs")).unwrap();
}

fn secret_file(home: &Home) {
    std::fs::write(home.scratch("secret"), "not-a-real-secret").unwrap();
}

fn scenario(label: Label) -> Option<Scenario> {
    let output =
        |setup: fn(&Home), op: fn(&Home, u32) -> Vec<String>, target: &'static str| Scenario {
            setup,
            op,
            target: Some(target),
            deterministic: true,
            stdin: None,
        };
    let state = |setup: fn(&Home), op: fn(&Home, u32) -> Vec<String>| Scenario {
        setup,
        op,
        target: None,
        deterministic: false,
        stdin: None,
    };
    Some(match label.name() {
        "remote-config" => state(nothing, |_, round| {
            args(&[
                "remote",
                "add",
                &format!("r{round}"),
                "s3://pxos/x",
                "--endpoint",
                "http://127.0.0.1:9",
            ])
        }),
        "remote-credentials" => state(secret_file, |h, round| {
            args(&[
                "remote",
                "add",
                &format!("r{round}"),
                "s3://pxos/x",
                "--endpoint",
                "http://127.0.0.1:9",
                "--key-id",
                "GKtest",
                "--secret-file",
                &s(&h.scratch("secret")),
            ])
        }),
        "remote-tracking" => state(pushable, |_, _| args(&["fs", "push"])),
        "fs-import" => state(pushed_then_lost, |_, _| args(&["fs", "pull"])),
        "asm" => output(
            source,
            |h, _| {
                args(&[
                    "asm",
                    &s(&h.scratch("p.pxasm")),
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "boot-log" | "boot-screen" | "agent-routing" => state(booted, |_, _| args(&["boot", "-q"])),
        "task-queue" => state(nothing, |_, round| {
            args(&["tasks", "add", &format!("task {round}"), "--expect", "x"])
        }),
        "agent-config" => state(nothing, |_, round| {
            args(&[
                "agents",
                "add",
                &format!("e{round}"),
                "--url",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
            ])
        }),
        "agent-artefact" | "agent-session" => state(two_tasks_and_answers, |h, _| {
            args(&[
                "coach",
                "run",
                "--provider",
                &format!("replay:{}", s(&h.scratch("answers.json"))),
            ])
        }),
        "shell-history" => Scenario {
            stdin: Some("help\nls /\n"),
            ..state(booted, |_, _| args(&["shell"]))
        },
        "boot-pixel" => output(
            store_with_file,
            |h, _| {
                args(&[
                    "fs",
                    "boot-pixel",
                    "/a.txt",
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "cart-pack" => output(
            cart_dir,
            |h, _| {
                args(&[
                    "cart",
                    "pack",
                    &s(&h.scratch("cart")),
                    "-o",
                    &s(&h.scratch("out.pxa")),
                ])
            },
            "out.pxa",
        ),
        "seglog-head" | "seglog-head-intent" | "seglog-append" => state(
            |h| {
                h.ok(&["log", "note", "first", "--actor", "ada"]);
            },
            |_, round| args(&["log", "note", &format!("note {round}"), "--actor", "ada"]),
        ),
        "genesis-compliance" => state(booted, |_, _| args(&["genesis", "check", "default@1.0.0"])),
        "kernel-image" | "kernel-intent" | "kernel-state" => state(kernel_sources, |h, round| {
            args(&[
                "kernel",
                "install",
                &s(&h.scratch(&format!("k{round}.pxasm"))),
                "--version",
                &format!("v9.{round}"),
            ])
        }),
        "lineage" => output(
            booted,
            |h, _| {
                args(&[
                    "cart",
                    "lineage",
                    "default",
                    "--png",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "marker" => state(nothing, |_, _| args(&["fs", "init"])),
        "memory" => output(
            source,
            |h, _| {
                args(&[
                    "run",
                    &s(&h.scratch("p.pxasm")),
                    "--memory",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "evolution-migrate" => state(crate::support::release_home, |_, _| {
            args(&["log", "verify"])
        }),
        "fs-pack" | "fs-pack-index" => state(source_tree, |h, round| {
            args(&[
                "fs",
                "add-dir",
                &s(&h.scratch("tree")),
                &format!("/d{round}"),
            ])
        }),
        "seglog-segment" => state(log_with_small_segments, |_, round| {
            args(&["log", "note", &format!("note {round}"), "--actor", "ada"])
        }),
        "seglog-checkpoint" => state(log_with_a_sealed_segment, |_, _| args(&["log", "verify"])),
        "fs-head" | "fs-tree" => state(store_with_file, |h, round| {
            args(&[
                "fs",
                "add",
                &format!("/r{round}.txt"),
                &s(&h.scratch("in.txt")),
            ])
        }),
        "pixel-decode" => output(
            pixel_file,
            |h, _| {
                args(&[
                    "pixel",
                    "decode",
                    &s(&h.scratch("in.png")),
                    "-o",
                    &s(&h.scratch("out.txt")),
                ])
            },
            "out.txt",
        ),
        "pixel-encode" => output(
            pixel_file,
            |h, _| {
                args(&[
                    "pixel",
                    "encode",
                    &s(&h.scratch("in.txt")),
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "pixel-read" => output(
            pixel_file,
            |h, _| {
                args(&[
                    "pixel",
                    "read",
                    &s(&h.scratch("in.png")),
                    "--offset",
                    "0",
                    "--length",
                    "5",
                    "-o",
                    &s(&h.scratch("out.bin")),
                ])
            },
            "out.bin",
        ),
        "llm-corpus" => output(
            nothing,
            |h, _| {
                let docs = crate::support::repo_root().join("docs");
                args(&[
                    "llm",
                    "corpus",
                    "--root",
                    &s(&docs),
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "llm-model" => output(
            builtin_model,
            |h, _| {
                args(&[
                    "llm",
                    "quantize",
                    &s(&h.scratch("m.png")),
                    "--dtype",
                    "q8_0",
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "llm-export" => output(
            nothing,
            |h, _| {
                args(&[
                    "llm",
                    "export",
                    "--format",
                    "llama2c",
                    "-o",
                    &s(&h.scratch("out.bin")),
                ])
            },
            "out.bin",
        ),
        "llm-render" => output(
            nothing,
            |h, _| args(&["llm", "render", "-o", &s(&h.scratch("out.png"))]),
            "out.png",
        ),
        "pixel-view" => output(
            pixel_file,
            |h, _| {
                args(&[
                    "pixel",
                    "view",
                    &s(&h.scratch("in.png")),
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "registry" | "registry-intent" | "registry-cartridge" => state(two_variants, |h, round| {
            args(&[
                "cart",
                "register",
                &s(&h.scratch(&format!("v{round}.pxa"))),
                "--reason",
                "a variant",
            ])
        }),
        "screen" => output(
            source,
            |h, _| {
                args(&[
                    "run",
                    &s(&h.scratch("p.pxasm")),
                    "--screen",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "vram" | "vram-provenance" => output(
            nothing,
            |h, _| args(&["vram", "build", "default", "-o", &s(&h.scratch("out.png"))]),
            "out.png",
        ),
        "vram-diff" => output(
            two_vram_images,
            |h, _| {
                args(&[
                    "vram",
                    "diff",
                    &s(&h.scratch("a.png")),
                    &s(&h.scratch("b.png")),
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "vram-screen" => output(
            vram_image,
            |h, _| {
                args(&[
                    "vram",
                    "run",
                    &s(&h.scratch("os.png")),
                    "--steps",
                    "5000",
                    "--screen",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "map-tile" | "map-manifest" => state(map_source, |h, round| {
            args(&[
                "map",
                "put",
                &format!("{}", -300 * i64::from(round)),
                "7",
                &s(&h.scratch("in.txt")),
            ])
        }),
        "map-render" => output(
            map_written,
            |h, _| {
                args(&[
                    "map",
                    "render",
                    "-20",
                    "0",
                    "64",
                    "32",
                    "-o",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        "vram-generation" => state(nothing, |h, _| {
            args(&[
                "vram",
                "loop",
                "default",
                "--generations",
                "1",
                "--out",
                &s(&h.scratch("gens")),
            ])
        }),
        "x86-image" => output(
            nothing,
            |h, _| args(&["x86", "build", "-o", &s(&h.scratch("out.bin"))]),
            "out.bin",
        ),
        "x86-png" => output(
            nothing,
            |h, _| {
                args(&[
                    "x86",
                    "build",
                    "-o",
                    &s(&h.scratch("x.bin")),
                    "--png",
                    &s(&h.scratch("out.png")),
                ])
            },
            "out.png",
        ),
        _ => return None,
    })
}

/// The stores the home has all check clean.
fn stores_check(home: &Home, context: &str) {
    // A store is checked once it exists (a crash in `fs init` may leave the old
    // state: no store yet).
    let checks: [(&str, &[&str]); 4] = [
        ("log", &["log", "verify"]),
        ("carts", &["cart", "fsck"]),
        ("kernels", &["kernel", "fsck"]),
        ("fs/PIXELFS", &["fs", "fsck"]),
    ];
    for (exists, command) in checks {
        if home.home().join(exists).exists() {
            let output = home.run(command);
            assert!(
                output.status.success(),
                "{context}: `pxos {}` fails after the crash: {}{}",
                command.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

#[test]
fn every_crash_point_of_every_durable_write_is_hit() {
    let mut uncovered = Vec::new();
    let mut points = 0;
    let garage = pxos_test_support::garage::Garage::start("crash-points", "pxos");
    if let Some(garage) = &garage {
        *GARAGE.lock().unwrap() = Some((
            garage.endpoint(0),
            garage.key_id.clone(),
            garage.secret.clone(),
        ));
    }
    let mut skipped = 0;
    for &label in label::ALL {
        if garage.is_none() && REMOTE_LABELS.contains(&label.name()) {
            // Outside CI without garage (require_tool said so): not covered here.
            skipped += 5;
            continue;
        }
        let Some(scenario) = scenario(label) else {
            uncovered.push(label.name());
            continue;
        };
        for point in durable::crash_points(label) {
            points += 1;
            let home = Home::new(&format!("cp-{}", point.replace('.', "-")));
            (scenario.setup)(&home);
            let mut command = home.pxos();
            if let Some(text) = scenario.stdin {
                let input = home.scratch("stdin.txt");
                std::fs::write(&input, text).unwrap();
                command.stdin(std::fs::File::open(&input).unwrap());
            }
            let crashed = command
                .env("PXOS_CRASH_AT", &point)
                .args((scenario.op)(&home, 0))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&crashed.stderr);
            assert!(
                stderr.contains(&format!("crash injected at {point}")),
                "{point}: the command did not die there (exit {:?}): {stderr}",
                crashed.status.code()
            );
            let target: Option<PathBuf> = scenario.target.map(|t| home.scratch(t));
            let after_crash = target.as_ref().and_then(|t| std::fs::read(t).ok());
            stores_check(&home, &point);
            // The next command of the same kind works...
            let next = (scenario.op)(&home, 1);
            let next: Vec<&str> = next.iter().map(String::as_str).collect();
            match scenario.stdin {
                None => {
                    home.ok(&next);
                }
                Some(_) => {
                    let out = home
                        .pxos()
                        .args(&next)
                        .stdin(std::fs::File::open(home.scratch("stdin.txt")).unwrap())
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{point}: the next command failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            // ...an output left by the crash was complete...
            if let (Some(target), Some(after_crash)) = (&target, after_crash)
                && scenario.deterministic
            {
                assert_eq!(
                    after_crash,
                    std::fs::read(target).unwrap(),
                    "{point}: the output left by the crash is not the complete one"
                );
            }
            // ...and nothing temporary is left, the crashed process's included.
            stores_check(&home, &format!("{point}, after the next command"));
            let left = temporaries_under(&home.dir);
            assert!(left.is_empty(), "{point}: temporaries left: {left:?}");
        }
    }
    assert!(
        uncovered.is_empty(),
        "crash labels with no scenario (add one to crash_points.rs): {uncovered:?}"
    );
    assert_eq!(points + skipped, label::ALL.len() * 5);
}
