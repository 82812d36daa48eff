//! Trust: every side door to a promotion or a program run passes the same
//! gate, the boot and the kernel store are one story, and tampering is caught
//! and reported, never obeyed. One test per finding of the trust issue.

use crate::support::{
    Home, assemble, current, derive_world, evolving_cartridge, glyphs_at, json_lines, shell_message,
};

fn log_actions(home: &Home) -> Vec<String> {
    json_lines(&home.ok(&["log", "--json"]))
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// A home where default@1.1.0 (tested) was promoted over default@1.0.0, and
/// default@1.3.0 is registered but was never current.
fn promoted_home(name: &str) -> Home {
    let home = Home::new(name);
    home.ok(&["boot", "-q"]);
    derive_world(&home, "v110", "1.1.0", |dir, _| shell_message(dir, "1.1.0"));
    home.ok(&["cart", "test", "default@1.1.0", "--actor", "ada", "-q"]);
    home.ok(&[
        "cart",
        "promote",
        "default@1.1.0",
        "--approved-by",
        "ada",
        "--reason",
        "ok",
    ]);
    derive_world(&home, "v130", "1.3.0", |dir, _| shell_message(dir, "1.3.0"));
    home
}

#[test]
fn rollback_is_not_a_forced_promote() {
    let home = promoted_home("rollback-gate");
    let before = log_actions(&home).len();
    // The repro: an LLM rolls back to a cartridge that was never current.
    let stderr = home.fails(
        1,
        &[
            "cart",
            "rollback",
            "default@1.3.0",
            "--actor",
            "bot",
            "--llm",
            "--reason",
            "try it",
        ],
    );
    assert!(stderr.contains("was never current"), "{stderr}");
    // Even a person cannot roll back to it: that is a promotion.
    let stderr = home.fails(
        1,
        &[
            "cart",
            "rollback",
            "default@1.3.0",
            "--actor",
            "ada",
            "--reason",
            "try it",
        ],
    );
    assert!(stderr.contains("promote it instead"), "{stderr}");
    // No reason: refused.
    let stderr = home.fails(1, &["cart", "rollback", "default@1.0.0", "--actor", "ada"]);
    assert!(stderr.contains("needs a reason"), "{stderr}");
    // An LLM approving: refused.
    let stderr = home.fails(
        1,
        &[
            "cart",
            "rollback",
            "default@1.0.0",
            "--approved-by",
            "bot",
            "--llm",
            "--reason",
            "x",
        ],
    );
    assert!(stderr.contains("only a person"), "{stderr}");
    assert_eq!(
        log_actions(&home).len(),
        before,
        "nothing refused is logged"
    );
    assert_eq!(current(&home)["id"], "default@1.1.0");

    // An LLM may ask: a request, recorded, with no effect until a person approves.
    let out = json_lines(&home.ok(&[
        "cart",
        "rollback",
        "default@1.0.0",
        "--actor",
        "bot",
        "--llm",
        "--reason",
        "1.1.0 is slower",
        "--json",
    ]));
    assert_eq!(out[0]["type"], "rollback-requested");
    assert_eq!(out[0]["applied"], false);
    assert_eq!(current(&home)["id"], "default@1.1.0");
    let status = json_lines(&home.ok(&["status", "--json"]));
    assert_eq!(status[0]["requests"][0]["cartridge"], "default@1.0.0");
    assert!(home.ok(&["status"]).contains("waiting for a person"));
    // A person approves it.
    let out = json_lines(&home.ok(&[
        "cart",
        "rollback",
        "default@1.0.0",
        "--actor",
        "bot",
        "--llm",
        "--approved-by",
        "ada",
        "--reason",
        "1.1.0 is slower",
        "--json",
    ]));
    assert_eq!(out[0]["applied"], true);
    assert_eq!(current(&home)["id"], "default@1.0.0");
    let log = json_lines(&home.ok(&["log", "--json"]));
    let rollback = log
        .iter()
        .rev()
        .find(|e| e["action"] == "rollback")
        .unwrap();
    assert_eq!(rollback["actor"]["name"], "ada");
    assert_eq!(
        rollback["details"]["rollback"]["requested_by"]["kind"],
        "llm"
    );
    assert!(
        log.iter().all(|e| e["actor"]["kind"].is_string()),
        "every entry has an actor kind"
    );
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));
}

#[test]
fn every_program_run_goes_through_the_hypervisor() {
    let home = Home::new("hypervisor-doors");
    home.ok(&["fs", "init"]);
    let pwn = home.scratch("pwn.png");
    assemble(
        &home,
        "IMM32 R1, P\nIMM32 R2, P\nLI R3, 5\nSYSCALL 42\nMOV R9, R0\nMOV R10, R1\nHALT\nP: .string \"/docs/pwned\"",
        &pwn,
    );
    // `pxos run FILE`: sandboxed, the write refused, the run logged.
    let out = home.run(&["run", pwn.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let run = json_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .unwrap();
    assert_eq!(run["registers"][9], 0, "FILE_WRITE failed");
    assert_eq!(run["registers"][10], 1, "with DENIED (docs/isa.md)");
    assert_eq!(
        home.run(&["fs", "cat", "/docs/pwned"]).status.code(),
        Some(1),
        "nothing written"
    );
    // `pxos debug`: the same sandbox, and the session is recorded too.
    let mut child = home
        .pxos()
        .args(["debug", pwn.to_str().unwrap(), "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"continue\nregs\nquit\n")
        .unwrap();
    let debug = child.wait_with_output().unwrap();
    let lines = json_lines(&String::from_utf8_lossy(&debug.stdout));
    let regs = lines.iter().find(|l| l["type"] == "registers").unwrap();
    assert_eq!(
        regs["registers"][9], 0,
        "the debugger's write was refused too"
    );
    let end = lines.iter().find(|l| l["type"] == "debug-end").unwrap();
    assert!(end["execution"].as_u64().unwrap() > 0);
    // A debugger that quits half way is still recorded (abandoned).
    let mut child = home
        .pxos()
        .args(["debug", pwn.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"step\nquit\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let records = pxos_test_support::read_log_records(&home.home().join("run/executions"));
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r["sandbox"].as_str().unwrap().starts_with("sandboxed"))
    );
    assert_eq!(records[2]["outcome"], "abandoned");
    // --trusted lifts it, and says so in the record.
    home.ok(&["run", pwn.to_str().unwrap(), "--trusted"]);
    assert_eq!(home.ok(&["fs", "cat", "/docs/pwned"]), "/docs");
    let records = pxos_test_support::read_log_records(&home.home().join("run/executions"));
    assert_eq!(records[3]["lifted_by_trusted_flag"], true);
    assert!(
        records[3]["sandbox"]
            .as_str()
            .unwrap()
            .contains("--trusted")
    );
}

#[test]
fn a_file_of_the_current_cartridge_runs_as_that_program_and_others_run_sandboxed() {
    let home = promoted_home("run-cartridge");
    home.ok(&["boot", "-q"]);
    // The current cartridge's own hello, given as a file: trusted, like `run hello`.
    let sha = current(&home)["sha256"].as_str().unwrap().to_string();
    let hello = home
        .home()
        .join("run")
        .join(&sha)
        .join("programs/hello.png");
    let out = json_lines(&home.ok(&["run", hello.to_str().unwrap(), "--json"]));
    assert_eq!(out.last().unwrap()["placement"]["mode"], "trusted");
    // `run --cartridge`: a program of a cartridge that is not current, sandboxed.
    let out = json_lines(&home.ok(&[
        "run",
        "--cartridge",
        "default@1.3.0",
        "hello",
        "2",
        "--json",
    ]));
    let run = out.last().unwrap();
    assert_eq!(run["placement"]["mode"], "sandboxed");
    assert!(
        run["sandbox"]
            .as_str()
            .unwrap()
            .contains("/sandbox/default@1.3.0"),
        "{run}"
    );
    assert_eq!(out[0]["text"], "hello from a pixel program");
    let stderr = home.fails(1, &["run", "--cartridge", "nope@9.9.9", "hello"]);
    assert!(stderr.contains("no cartridge 'nope@9.9.9'"), "{stderr}");
}

#[test]
fn self_modify_outside_a_kernel_boot_says_it_cannot() {
    let home = Home::new("self-modify-run");
    let program = home.scratch("evolve.png");
    assemble(
        &home,
        "IMM32 R1, 301\nSYSCALL 99\nMOV R9, R0\nMOV R10, R1\nHALT",
        &program,
    );
    for extra in [&[][..], &["--trusted"][..]] {
        let mut args = vec!["run", program.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let run = json_lines(&home.ok(&args)).pop().unwrap();
        assert_eq!(run["registers"][9], 0, "never success");
        let code = run["registers"][10].as_u64().unwrap();
        // Sandboxed: DENIED (1); trusted but not a kernel boot: UNSUPPORTED (2).
        assert_eq!(code, if extra.is_empty() { 1 } else { 2 }, "{run}");
    }
    let isa = std::fs::read_to_string(crate::support::repo_root().join("docs/isa.md")).unwrap();
    assert!(
        isa.contains("| 2 | `UNSUPPORTED` |"),
        "documented in docs/isa.md"
    );
}

#[test]
fn the_boot_boots_the_kernel_store_and_reverts_a_trapping_self_modify() {
    let home = Home::new("self-modify-trap");
    home.ok(&["boot", "-q"]);
    let status = json_lines(&home.ok(&["status", "--json"]));
    assert_eq!(
        status[0]["kernel"]["version"], "default@1.0.0",
        "the boot installed the cartridge's kernel"
    );
    evolving_cartridge(&home, "LI R1, 0\nDIV R1, R1, R1\nHALT");
    // The first boot of 1.1.0 runs its kernel, which asks for the module.
    let first = json_lines(&home.ok(&["boot", "--json"]));
    let change = first.iter().find(|l| l["type"] == "kernel-change").unwrap();
    assert_eq!(change["applied"], true);
    let evolved = change["kernel"].as_u64().unwrap();
    // The next boot tries it, it traps, the store reverts, the boot goes on: exit 0.
    let out = home.run(&["boot"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("REVERT kernel {evolved}")) && text.contains("division by zero"),
        "{text}"
    );
    assert!(text.contains("boot complete"), "{text}");
    // status and kernel list show the reason.
    assert!(
        home.ok(&["status"])
            .contains(&format!("reverted from kernel {evolved}"))
    );
    let list = home.ok(&["kernel", "list"]);
    assert!(
        list.contains("failed") && list.contains("division by zero"),
        "{list}"
    );
    // It is not retried on the kernel's next request.
    let again = json_lines(&home.ok(&["boot", "--json"]));
    let change = again.iter().find(|l| l["type"] == "kernel-change").unwrap();
    assert_eq!(change["applied"], false);
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));
}

#[test]
fn a_good_self_modify_runs_at_the_next_boot() {
    let home = Home::new("self-modify-good");
    home.ok(&["boot", "-q"]);
    evolving_cartridge(&home, "LI R1, 4\nLI R2, 0\nSYSCALL 1\nHALT");
    home.ok(&["boot", "-q"]);
    let next = json_lines(&home.ok(&["boot", "--json"]));
    let kernel = next
        .iter()
        .find(|l| l["type"] == "stage" && l["stage"]["name"] == "kernel")
        .unwrap();
    assert_eq!(
        kernel["stage"]["output"][0], "Kernel init done",
        "the new kernel ran"
    );
    assert_eq!(kernel["stage"]["kernels"][0]["version"], "default@1.1.0+3");
    let current = json_lines(&home.ok(&["kernel", "current", "--json"]));
    assert_eq!(current[0]["status"], "good");
}

#[test]
fn a_crash_in_the_first_install_does_not_brick_the_home() {
    // The repro.
    let home = Home::new("brick");
    let out = home
        .pxos()
        .env("PXOS_CRASH_AT", "registry.create-temp")
        .arg("boot")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("crash injected at registry.create-temp")
    );
    let boot = home.ok(&["boot"]);
    assert!(boot.contains("boot complete"), "{boot}");
    assert!(home.ok(&["log", "verify"]).contains("chain intact"));
    assert_eq!(current(&home)["id"], "default@1.0.0");
}

#[test]
fn tampered_state_is_refused_with_the_file_named_never_a_panic() {
    let home = Home::new("tamper-sha");
    home.ok(&["boot", "-q"]);
    let registry = home.home().join("carts/registry.png");
    pxos_test_support::edit_table(&registry, |v| v["cartridges"][0]["sha256"] = "abc".into());
    for args in [
        &["status"][..],
        &["cart", "list"],
        &["cart", "lineage"],
        &["boot"],
        &["log", "verify"],
    ] {
        let out = home.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if args == ["boot"] {
            continue; // boot refuses too, below
        }
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("registry.png"),
            "{args:?} names the file: {stderr}"
        );
    }
    let kernels = home.home().join("kernels/state.png");
    pxos_test_support::edit_table(&kernels, |v| v["kernels"][0]["sha256"] = "abc".into());
    let stderr = home.fails(1, &["kernel", "list"]);
    assert!(
        stderr.contains("state.png") && !stderr.contains("panicked"),
        "{stderr}"
    );
    // A log entry with a short hash.
    let home = Home::new("tamper-log-sha");
    home.ok(&["boot", "-q"]);
    pxos_test_support::edit_log(&home.home().join("log/evolution"), |v| {
        v["entries"][0]["hash"] = "abc".into()
    });
    let stderr = home.fails(1, &["log", "verify"]);
    assert!(stderr.contains("log/evolution"), "{stderr}");
}

#[test]
fn fsck_rebuilds_state_from_the_log_and_lists_what_it_cannot() {
    let home = promoted_home("fsck");
    home.ok(&["boot", "-q"]);
    assert!(
        home.ok(&["cart", "fsck"])
            .contains("agrees with the evolution log")
    );
    assert!(
        home.ok(&["kernel", "fsck"])
            .contains("agrees with the evolution log")
    );
    // Both state files garbled: status refuses, fsck --repair rebuilds them.
    std::fs::write(home.home().join("carts/registry.png"), b"garbage").unwrap();
    std::fs::write(home.home().join("kernels/state.png"), b"garbage").unwrap();
    home.fails(1, &["status"]);
    home.fails(1, &["cart", "fsck"]);
    assert!(home.ok(&["cart", "fsck", "--repair"]).contains("rebuilt"));
    assert!(home.ok(&["kernel", "fsck", "--repair"]).contains("rebuilt"));
    assert_eq!(current(&home)["id"], "default@1.1.0");
    let kept: Vec<String> = std::fs::read_dir(home.home().join("carts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("registry.png.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept, never deleted");
    assert!(home.ok(&["boot"]).contains("boot complete"));
    // A missing cartridge file is listed as not recovered; repair deletes nothing.
    let sha = current(&home)["sha256"].as_str().unwrap().to_string();
    std::fs::remove_file(home.home().join("carts").join(format!("{sha}.pxa"))).unwrap();
    let out = home.run(&["cart", "fsck", "--repair"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT RECOVERED"));
}

#[test]
fn cart_test_and_lineage_default_to_the_current_cartridge() {
    let home = promoted_home("defaults");
    let test = json_lines(&home.ok(&["cart", "test", "--json"]));
    assert_eq!(test.last().unwrap()["cartridge"], "default@1.1.0");
    let lineage = home.ok(&["cart", "lineage"]);
    assert!(
        lineage.contains("default@1.0.0") && lineage.contains("└─ default@1.1.0"),
        "{lineage}"
    );
    let fresh = Home::new("defaults-fresh");
    let stderr = fresh.fails(1, &["cart", "test"]);
    assert!(stderr.contains("no current cartridge"), "{stderr}");
}

#[test]
fn a_forged_log_entry_does_not_change_the_current_cartridge() {
    let home = promoted_home("forged");
    let untested = json_lines(&home.ok(&["cart", "list", "--json"]))
        .into_iter()
        .find(|l| l["record"]["id"] == "default@1.3.0")
        .unwrap()["record"]
        .clone();
    let current_record = current(&home);
    // A promote entry with a correct prev and hash; the head left alone.
    let log_dir = home.home().join("log/evolution");
    let forge = |home: &Home| {
        pxos_test_support::edit_log(&log_dir, |v| {
            let entries: Vec<pxos_cart::LogEntry> =
                serde_json::from_value(v["entries"].clone()).unwrap();
            let last = entries.last().unwrap();
            let mut entry = pxos_cart::LogEntry {
                seq: last.seq + 1,
                time: last.time.clone(),
                actor: pxos_cart::Actor::human("eve"),
                action: pxos_cart::Action::Promote {
                    cartridge: serde_json::from_value(serde_json::json!({"name": "default", "version": "1.3.0", "sha256": untested["sha256"]})).unwrap(),
                    from: Some(serde_json::from_value(serde_json::json!({"name": "default", "version": "1.1.0", "sha256": current_record["sha256"]})).unwrap()),
                    forced: false,
                },
                reason: "forged".into(),
                prev: last.hash,
                hash: pxos_pixel::Hash256::ZERO,
            };
            entry.hash = entry.compute_hash();
            let mut entries = entries;
            entries.push(entry);
            v["entries"] = serde_json::to_value(&entries).unwrap();
        });
        let _ = home;
    };
    forge(&home);
    let out = home.run(&["log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("log/evolution")
            && stdout.contains("appended, cut off or replaced by hand"),
        "names the log and what is wrong: {stdout}"
    );
    let stderr = home.fails(1, &["status"]);
    assert!(stderr.contains("does not verify"), "{stderr}");
    // Boot warns visibly and boots the registry's current cartridge, read-only.
    let out = home.run(&["boot"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TAMPERED") && stderr.contains("read-only"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("default@1.1.0"),
        "not the forged one"
    );
    // Appending refuses; nothing changed.
    home.fails(1, &["log", "note", "cover it up"]);

    // The same forgery with the head rewritten to match: the log verifies on
    // its own, but the registry never began that change (found by the
    // incremental check, which reads only the end of the log, and by --full).
    pxos_test_support::edit_log(&log_dir, |v| {
        v["head"]["count"] = v["entries"].as_array().unwrap().len().into();
    });
    for args in [&["log", "verify"][..], &["log", "verify", "--full"]] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("registry.png") && stdout.contains("never began"),
            "{args:?}: {stdout}"
        );
    }
    assert_eq!(home.run(&["status"]).status.code(), Some(1));

    // The log and its anchor deleted together while cartridges are registered.
    let home = promoted_home("deleted-log");
    std::fs::remove_dir_all(home.home().join("log/evolution")).unwrap();
    let out = home.run(&["log", "verify"]);
    assert_eq!(out.status.code(), Some(1), "not 'ok 0 entries'");
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted or replaced"));
    // A non-UTF-8 head: a tamper report (exit 1), not an i/o error.
    let home = promoted_home("anchor-bytes");
    let head = home.home().join("log/evolution/head.json");
    std::fs::write(&head, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let out = home.run(&["log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("head is damaged"));
    // A missing head.
    std::fs::remove_file(&head).unwrap();
    let out = home.run(&["log", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is missing"));
}

#[test]
fn the_boot_screen_shows_what_the_programs_printed() {
    let home = Home::new("screen-words");
    home.ok(&["boot", "-q"]);
    let (width, _, rgb) = pxos_test_support::read_png_rgb(&home.home().join("boot/screen.png"));
    let [left, top, _, _] = pxos_vm::DEFAULT_CONSOLE_AREA;
    let lines = [
        "PXVM booting...",
        "BIOS: memory and screen checked",
        "Kernel loaded",
        "Kernel init done",
    ];
    for (row, line) in lines.iter().enumerate() {
        assert!(
            glyphs_at(
                &rgb,
                width as usize,
                line,
                left as usize,
                top as usize + row * 8
            ),
            "line {row} ({line:?}) is not drawn where expected"
        );
    }
    assert!(
        !glyphs_at(
            &rgb,
            width as usize,
            "Kernel loadeX",
            left as usize,
            top as usize + 16
        ),
        "the check can fail"
    );
    // The font the world used is its own pixel file.
    let sha = current(&home)["sha256"].as_str().unwrap().to_string();
    let font = home.home().join("run").join(sha).join("fonts/console.png");
    let info = json_lines(&home.ok(&["pixel", "info", font.to_str().unwrap(), "--json"]));
    assert!(info[0]["metadata"].as_str().unwrap().contains("pxos-font"));
}
