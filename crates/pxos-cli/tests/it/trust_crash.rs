//! A real `pxos` killed at every durable write point of the first install,
//! register, promote, rollback, kernel install and switch, and the boot-time
//! kernel changes. The points come from the code itself: each operation runs
//! once with `PXOS_CRASH_TRACE`, which lists every point it passes (with its
//! occurrence), then once per point with `PXOS_CRASH_AT=POINT#N`. After every
//! crash the log verifies, the registry and the kernel store agree with it,
//! an atomic operation left the old state or the new one, and the next
//! command works.

use std::path::Path;

use crate::support::{Home, derive_world, evolving_cartridge, json_lines, shell_message};

/// Copies a directory tree (a prepared home) so each crash starts from it.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What an operation changes, as far as "old or new" goes.
fn observe(home: &Home) -> String {
    let status = json_lines(&home.ok(&["status", "--json"]));
    let s = &status[0];
    let ids: Vec<String> = s["cartridges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["id"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect();
    let kernels: Vec<String> = json_lines(&home.ok(&["kernel", "list", "--json"]))
        .iter()
        .filter(|k| k["id"].is_number())
        .map(|k| {
            format!(
                "{}:{}:{}",
                k["id"],
                k["status"].as_str().unwrap(),
                k["current"]
            )
        })
        .collect();
    format!("{} | {}", ids.join(","), kernels.join(","))
}

struct Scenario {
    name: &'static str,
    /// Prepares the home; returns the operation's arguments.
    setup: fn(&Home) -> Vec<String>,
    /// The operation is one atomic step: after a crash the state is the old or the new one.
    atomic: bool,
    /// Every crash point this scenario must pass (at least one occurrence each).
    labels: &'static [&'static str],
}

fn booted(home: &Home) {
    home.ok(&["boot", "-q"]);
}

fn with_variant(home: &Home) -> String {
    booted(home);
    derive_world(home, "v110", "1.1.0", |dir, _| shell_message(dir, "1.1.0"))
        .to_string_lossy()
        .into_owned()
}

fn tested(home: &Home) {
    with_variant(home);
    home.ok(&["cart", "test", "default@1.1.0", "--actor", "ada", "-q"]);
}

fn kernel_source(home: &Home, text: &str) -> String {
    let path = home.scratch("k.pxasm");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "first-install",
            setup: |_| args(&["boot"]),
            atomic: false,
            labels: &[
                "cart-pack",
                "registry-cartridge",
                "registry-intent",
                "registry",
                "kernel-image",
                "kernel-intent",
                "kernel-state",
                "boot-screen",
                "boot-log",
                "seglog-append",
            ],
        },
        Scenario {
            name: "register",
            setup: |home| {
                booted(home);
                let dir = crate::support::unpack_current(home, "v2");
                let manifest = dir.join("cartridge.json");
                let text = std::fs::read_to_string(&manifest)
                    .unwrap()
                    .replace("\"1.0.0\"", "\"1.2.0\"");
                std::fs::write(&manifest, text).unwrap();
                let cart = home.scratch("v2.pxa");
                home.ok(&[
                    "cart",
                    "pack",
                    dir.to_str().unwrap(),
                    "-o",
                    cart.to_str().unwrap(),
                    "--actor",
                    "ada",
                ]);
                args(&["cart", "register", cart.to_str().unwrap(), "--actor", "ada"])
            },
            atomic: true,
            labels: &[
                "registry-cartridge",
                "registry-intent",
                "registry",
                "seglog-append",
            ],
        },
        Scenario {
            name: "promote",
            setup: |home| {
                tested(home);
                args(&[
                    "cart",
                    "promote",
                    "default@1.1.0",
                    "--approved-by",
                    "ada",
                    "--reason",
                    "ok",
                ])
            },
            atomic: true,
            labels: &["registry-intent", "registry", "seglog-append"],
        },
        Scenario {
            name: "rollback",
            setup: |home| {
                tested(home);
                home.ok(&[
                    "cart",
                    "promote",
                    "default@1.1.0",
                    "--approved-by",
                    "ada",
                    "--reason",
                    "ok",
                ]);
                args(&[
                    "cart",
                    "rollback",
                    "default@1.0.0",
                    "--actor",
                    "ada",
                    "--reason",
                    "back",
                ])
            },
            atomic: true,
            labels: &["registry-intent", "registry", "seglog-append"],
        },
        Scenario {
            name: "kernel-install",
            setup: |home| {
                booted(home);
                let source = kernel_source(home, "LI R1, 4\nSYSCALL 1\nHALT\n");
                args(&[
                    "kernel",
                    "install",
                    &source,
                    "--version",
                    "two",
                    "--current",
                    "--actor",
                    "ada",
                ])
            },
            atomic: true,
            labels: &[
                "kernel-image",
                "kernel-intent",
                "kernel-state",
                "seglog-append",
            ],
        },
        Scenario {
            name: "kernel-switch",
            setup: |home| {
                booted(home);
                let source = kernel_source(home, "LI R1, 4\nSYSCALL 1\nHALT\n");
                home.ok(&[
                    "kernel",
                    "install",
                    &source,
                    "--version",
                    "two",
                    "--actor",
                    "ada",
                ]);
                args(&["kernel", "switch", "2", "--actor", "ada"])
            },
            atomic: true,
            labels: &["kernel-intent", "kernel-state", "seglog-append"],
        },
        Scenario {
            name: "boot-adopts-and-evolves",
            // A promoted cartridge whose kernel asks SELF_MODIFY for a trapping module:
            // the boot adopts its kernel, boots it, and applies the request.
            setup: |home| {
                booted(home);
                evolving_cartridge(home, "LI R1, 0\nDIV R1, R1, R1\nHALT");
                args(&["boot"])
            },
            atomic: false,
            labels: &[
                "kernel-image",
                "kernel-intent",
                "kernel-state",
                "seglog-append",
                "boot-screen",
            ],
        },
        Scenario {
            name: "boot-reverts",
            // The next boot tries the evolved kernel, which traps: boot counting reverts.
            setup: |home| {
                booted(home);
                evolving_cartridge(home, "LI R1, 0\nDIV R1, R1, R1\nHALT");
                home.ok(&["boot", "-q"]);
                args(&["boot"])
            },
            atomic: false,
            labels: &["kernel-intent", "kernel-state", "seglog-append"],
        },
    ]
}

/// The state must be consistent: the log verifies and everything agrees with it.
fn assert_consistent(home: &Home, context: &str) {
    let out = home.run(&["log", "verify"]);
    assert!(
        out.status.success(),
        "{context}: log verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [&["cart", "fsck"][..], &["kernel", "fsck"]] {
        let out = home.run(args);
        assert!(
            out.status.success(),
            "{context}: {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_crash_at_every_write_point_of_every_trust_operation_leaves_a_consistent_home() {
    let mut total = 0;
    for scenario in scenarios() {
        // The template: prepared once, copied for every crash.
        let template = Home::new(&format!("tc-{}", scenario.name));
        let op = (scenario.setup)(&template);
        let op: Vec<&str> = op.iter().map(String::as_str).collect();
        let before = if scenario.name == "first-install" {
            String::new()
        } else {
            observe(&template)
        };
        // A clean run, traced: the points, and the new state.
        let clean = Home::new(&format!("tc-{}-clean", scenario.name));
        copy_tree(&template.dir, &clean.dir);
        let trace = clean.scratch("trace.txt");
        let out = clean
            .pxos()
            .env("PXOS_CRASH_TRACE", &trace)
            .args(&op)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: the clean run failed: {}",
            scenario.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let after = observe(&clean);
        let points: Vec<String> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        for label in scenario.labels {
            assert!(
                points.iter().any(|p| p.starts_with(&format!("{label}."))),
                "{}: no {label} point was passed: {points:?}",
                scenario.name
            );
        }
        for point in &points {
            total += 1;
            let home = Home::new(&format!("tc-{}-{}", scenario.name, point.replace('#', "-")));
            copy_tree(&template.dir, &home.dir);
            let out = home
                .pxos()
                .env("PXOS_CRASH_AT", point)
                .args(&op)
                .output()
                .unwrap();
            let context = format!("{} at {point}", scenario.name);
            assert!(
                String::from_utf8_lossy(&out.stderr)
                    .contains(&format!("crash injected at {point}")),
                "{context}: the process did not die there: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success(), "{context}");
            if scenario.name == "first-install" && observe_is_empty(&home) {
                // Nothing committed yet: the next boot installs from scratch.
            } else {
                assert_consistent(&home, &context);
                if scenario.atomic {
                    let now = observe(&home);
                    assert!(
                        now == before || now == after,
                        "{context}: neither old nor new:\n old {before}\n new {after}\n now {now}"
                    );
                }
            }
            // The next command works, and leaves a consistent home.
            let next = home.run(&op);
            let next_ok = next.status.success()
                || (scenario.atomic && String::from_utf8_lossy(&next.stderr).contains("already"));
            assert!(
                next_ok,
                "{context}: the next run failed: {}",
                String::from_utf8_lossy(&next.stderr)
            );
            home.ok(&["boot", "-q"]);
            assert_consistent(&home, &format!("{context}, then again"));
        }
    }
    assert!(total > 150, "only {total} crash points were exercised");
}

/// True when a crashed first install left no log entry at all.
fn observe_is_empty(home: &Home) -> bool {
    json_lines(&home.ok(&["log", "--json"])).is_empty()
}
