//! Genesis: executable checks of the principles in `docs/GENESIS.md`.
//!
//! Every check looks at one exact cartridge (by hash) and can fail; each has
//! a test with a cartridge that violates it. Principles that need human
//! judgement are listed as such, never reported as passed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pxos_cart::{Action, ActorKind, CreatorKind, Record, Registry};
use pxos_vm::{ProgramImage, asm, isa::syscall};
use serde::Serialize;

use crate::boot::{BUILTIN_VERIFY, Sequence, console, messages, no_storage};
use crate::error::{Error, Result};
use crate::hypervisor::{Hypervisor, Launch, Sandbox};

/// The Genesis version these checks implement.
pub const GENESIS_VERSION: &str = "1.0";
/// Fuel for each program a check runs.
const CHECK_FUEL: u64 = 5_000_000;

/// One machine check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub section: &'static str,
    pub principle: &'static str,
    pub name: &'static str,
    pub passed: bool,
    pub evidence: String,
}

/// A principle a machine cannot judge.
#[derive(Clone, Debug, Serialize)]
pub struct NeedsPerson {
    pub section: &'static str,
    pub principle: &'static str,
    pub why: &'static str,
}

/// The result of `pxos genesis check`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cartridge: String,
    pub sha256: pxos_pixel::Hash256,
    pub genesis_version: &'static str,
    pub checks: Vec<Check>,
    pub needs_person: Vec<NeedsPerson>,
    pub compliance_file: PathBuf,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} {}", c.section, c.name))
            .collect()
    }
}

const NEEDS_PERSON: &[NeedsPerson] = &[
    NeedsPerson {
        section: "§5",
        principle: "GPU-native eventually",
        why: "a direction of travel, not a property of one cartridge",
    },
    NeedsPerson {
        section: "§9",
        principle: "Pixel-native intelligence",
        why: "whether the world's intelligence really lives in pixels is a judgement",
    },
    NeedsPerson {
        section: "§11",
        principle: "Game for good",
        why: "purpose and effect on people need a person",
    },
    NeedsPerson {
        section: "§12",
        principle: "Joy and wonder",
        why: "only a person can say",
    },
];

/// A probe that tries what a sandboxed program must not do.
const SANDBOX_PROBE: &str = "IMM32 R1, 301\nSYSCALL 99\nMOV R9, R0\nIMM32 R1, P\nIMM32 R2, P\nLI R3, 4\nSYSCALL 42\nMOV R10, R0\nL: JMP L\nP: .string \"/outside/the/sandbox\"\n";

/// Runs every check on `record` and writes `GENESIS_COMPLIANCE.md` into its workspace.
pub fn check(home: &Path, registry: &Registry, record: &Record) -> Result<Report> {
    let stored = registry.path_of(record);
    let workspace = home
        .join("genesis")
        .join(format!("{}-{}", record.id, record.sha256.short()));
    let _ = std::fs::remove_dir_all(&workspace);
    std::fs::create_dir_all(&workspace).map_err(|err| Error::io(err, &workspace))?;
    let tree = workspace.join("tree");
    let unpacked = pxos_cart::unpack(&stored, &tree, &pxos_cart::Limits::default());
    let manifest = pxos_cart::read_manifest(&stored, &pxos_cart::Limits::default())
        .ok()
        .map(|(m, _)| m);
    let mut hypervisor = Hypervisor::new(
        &workspace.join("executions"),
        messages(&tree).unwrap_or_default(),
    );
    if let Ok(console) = console(&tree) {
        hypervisor = hypervisor.with_console(console);
    }
    let sandbox = Sandbox::experimental(CHECK_FUEL, &format!("/sandbox/{}", record.id));
    let sequence = std::fs::read(tree.join("boot/sequence.json"))
        .ok()
        .map(|b| Sequence::parse(&b));
    let modules: Vec<(String, std::result::Result<ProgramImage, String>)> = match &sequence {
        Some(Ok(sequence)) => sequence
            .stages
            .iter()
            .filter(|s| s.path != BUILTIN_VERIFY && s.path != crate::boot::BUILTIN_MODELS)
            .map(|s| {
                let loaded = std::fs::read(tree.join(&s.path))
                    .map_err(|err| err.to_string())
                    .and_then(|bytes| {
                        ProgramImage::from_png(&bytes).map_err(|err| err.to_string())
                    });
                (s.path.clone(), loaded)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut checks = Vec::new();

    // §1: every file is held losslessly as pixels, and code is pixel programs.
    checks.push({
        let mut problems = Vec::new();
        // `unpack` decodes the cartridge's own stored pixels and checks every
        // file against its manifest SHA-256 (and the payload against the image
        // header) before the tree appears: a read error or a mismatch is an error.
        let files = match &unpacked {
            Err(err) => {
                problems.push(format!("the cartridge does not unpack: {err}"));
                0
            }
            Ok(manifest) => manifest.files.len(),
        };
        for (path, module) in &modules {
            if let Err(err) = module {
                problems.push(format!("boot module {path} is not a pixel program ({err})"));
            }
        }
        Check {
            section: "§1",
            principle: "Pixel substrate primacy",
            name: "every file decodes from the cartridge's pixels to its manifest hash; every boot module is a PXI program",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                format!(
                    "{files} files decoded from the cartridge's pixels match their manifest hashes; {} boot modules are PXI programs",
                    modules.len()
                )
            } else {
                problems.join("; ")
            },
        }
    });

    // §2: one self-describing, verified archive.
    checks.push({
        let mut problems = Vec::new();
        match (&manifest, &unpacked) {
            (Some(manifest), Ok(_)) => {
                if manifest.genesis_version != GENESIS_VERSION {
                    problems.push(format!(
                        "manifest names Genesis {} (this system checks {GENESIS_VERSION})",
                        manifest.genesis_version
                    ));
                }
                if manifest.creator.name.trim().is_empty() || manifest.created.trim().is_empty() {
                    problems.push("manifest lacks its creator name or creation time".into());
                }
                match &sequence {
                    None => problems.push("no boot/sequence.json".into()),
                    Some(Err(err)) => problems.push(err.to_string()),
                    Some(Ok(_)) => {}
                }
            }
            (_, Err(err)) => problems.push(format!("archive does not verify: {err}")),
            (None, _) => problems.push("manifest unreadable".into()),
        }
        Check {
            section: "§2",
            principle: "Archive-based distribution",
            name: "complete manifest, every file hash verified, a boot sequence",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                "manifest complete; all file hashes verified; boot sequence parses".into()
            } else {
                problems.join("; ")
            },
        }
    });

    // §3: nothing registered was deleted.
    checks.push({
        let mut problems = Vec::new();
        let records = match registry.list() {
            Ok(records) => records,
            Err(err) => {
                problems.push(format!("the registry cannot be read: {err}"));
                Vec::new()
            }
        };
        for other in &records {
            let path = registry.path_of(other);
            match std::fs::read(&path) {
                Err(_) => {
                    problems.push(format!("{} was deleted from the registry store", other.id))
                }
                Ok(bytes) => {
                    let verified = pxos_pixel::decode_from_slice(&bytes, &Default::default())
                        .map(|(d, _)| pxos_pixel::Hash256(d.header.sha256) == other.sha256)
                        .unwrap_or(false);
                    if !verified {
                        problems.push(format!("{} no longer matches its hash", other.id));
                    }
                }
            }
        }
        Check {
            section: "§3",
            principle: "No silent deletion",
            name: "every registered cartridge is still stored and intact",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                format!(
                    "{} registered cartridges present and verified",
                    records.len()
                )
            } else {
                problems.join("; ")
            },
        }
    });

    // §4: every program runs under the hypervisor contract.
    let mut refused = Vec::new();
    let mut kernel_requests: Vec<String> = Vec::new();
    let kernel_stage = match &sequence {
        Some(Ok(sequence)) => sequence.kernel_stage().map(|s| s.path.clone()),
        _ => None,
    };
    checks.push({
        let mut problems = Vec::new();
        let mut ran = 0;
        for (path, module) in &modules {
            let Ok(image) = module else { continue };
            let result = hypervisor.run_program(Launch::new(
                path.clone(),
                image,
                sandbox.clone(),
                no_storage(),
            ));
            ran += 1;
            if !result.success {
                problems.push(format!("{path}: {}", result.trap.unwrap_or_default()));
            }
            if result.log_id == 0 {
                problems.push(format!("{path}: the execution was not logged"));
            }
            // What a program tried that the sandbox refused. The kernel stage may ask for
            // a kernel change: the boot applies those only for the current cartridge,
            // after a clean boot, with boot counting.
            for failure in &result.failures {
                let kernel_change = matches!(
                    failure.number,
                    syscall::SELF_MODIFY | syscall::VERSION_SWITCH
                );
                if failure.code != syscall::error::DENIED {
                    continue;
                }
                if kernel_change && kernel_stage.as_deref() == Some(path.as_str()) {
                    kernel_requests.push(path.clone());
                    continue;
                }
                refused.push(format!(
                    "{path}: {} at pc {} was refused by the sandbox",
                    syscall::name(failure.number).unwrap_or("an unknown syscall"),
                    failure.pc
                ));
            }
        }
        if modules.is_empty() {
            problems.push("the cartridge has no programs to run".into());
        }
        Check {
            section: "§4",
            principle: "Hypervisor contract",
            name: "every boot program runs under run_program and halts within its fuel",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                format!("{ran} programs ran and halted; every run logged")
            } else {
                problems.join("; ")
            },
        }
    });

    // §4/§2: the world boots with no network (there is no network syscall; required stages must succeed).
    checks.push({
        let options = crate::boot::BootOptions {
            dry_run: false,
            sequence: None,
            hypervisor: &hypervisor,
            sandbox: sandbox.clone(),
            storage: &no_storage,
            mounted: None,
            kernels: None,
            host: None,
        };
        let outcome = match (&manifest, unpacked.is_ok()) {
            (Some(manifest), true) => crate::boot::boot(&tree, manifest, &record.sha256, &options)
                .map_err(|e| e.to_string()),
            _ => Err("the cartridge does not unpack".to_string()),
        };
        let (passed, evidence) = match outcome {
            Ok(report) if report.ok() => (
                true,
                format!(
                    "booted offline in the sandbox through {} stages",
                    report.stages.len()
                ),
            ),
            Ok(report) => (
                false,
                format!(
                    "boot halted at required stage {}",
                    report.halted_at.unwrap_or_default()
                ),
            ),
            Err(err) => (false, err),
        };
        Check {
            section: "§2",
            principle: "Archive-based distribution",
            name: "boots without network",
            passed,
            evidence,
        }
    });

    // §6: the sandbox holds, and this cartridge's programs stay inside it.
    checks.push({
        let probe = asm::assemble("sandbox-probe", SANDBOX_PROBE).map_err(|err| Error::Format(err.to_string()))?;
        let image = ProgramImage { words: probe.words, entry: probe.entry };
        let result = hypervisor.run_program(Launch::new("genesis:sandbox-probe", &image, Sandbox::experimental(100_000, "/sandbox/probe"), no_storage()));
        let mut problems = Vec::new();
        if result.trap_kind != Some("fuel-exhausted") {
            problems.push("the probe was not stopped by its fuel cap".to_string());
        }
        let denied: BTreeSet<u16> = result
            .failures
            .iter()
            .filter(|f| f.code == syscall::error::DENIED)
            .map(|f| f.number)
            .collect();
        let denied = |number: u16| denied.contains(&number);
        if !denied(syscall::SELF_MODIFY) {
            problems.push("SELF_MODIFY was not refused in the sandbox".to_string());
        }
        if !denied(syscall::FILE_WRITE) {
            problems.push("a write outside the sandbox directory was not refused".to_string());
        }
        problems.extend(refused);
        Check {
            section: "§6",
            principle: "Sandbox testing required",
            name: "sandbox refuses kernel changes, caps fuel; the cartridge's programs stay inside it",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                let mut text = "probe refused and stopped; no program tried to leave the sandbox".to_string();
                if let Some(path) = kernel_requests.first() {
                    text.push_str(&format!("; the kernel stage ({path}) asks for a kernel change, which a boot applies only for the current cartridge, after a clean boot, with boot counting"));
                }
                text
            } else {
                problems.join("; ")
            },
        }
    });

    // §7: the evolution is on the record.
    checks.push({
        let log = registry.log();
        let verification = log.verify();
        let entries = log.entries().unwrap_or_default();
        let registered = entries.iter().any(|e| {
            matches!(&e.action, Action::Register { cartridge, .. } if cartridge.sha256 == record.sha256)
        });
        let mut problems = Vec::new();
        match verification {
            Ok(v) if v.is_ok() => {}
            Ok(v) => problems.push(format!(
                "the evolution log does not verify: {}",
                v.problems.join("; ")
            )),
            Err(err) => problems.push(format!("the evolution log cannot be read: {err}")),
        }
        if !registered {
            problems.push("the log has no register entry for this exact cartridge".into());
        }
        Check {
            section: "§7",
            principle: "Transparent evolution",
            name: "the log verifies and records this cartridge with its actor",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                format!(
                    "log verifies ({} entries); registration recorded",
                    entries.len()
                )
            } else {
                problems.join("; ")
            },
        }
    });

    // §8: no network and no unknown host calls.
    checks.push({
        let mut problems = Vec::new();
        match &manifest {
            Some(manifest) => {
                for capability in &manifest.capabilities {
                    if capability.contains("net") {
                        problems.push(format!("capability '{capability}' asks for the network, which pxOS never grants a cartridge"));
                    }
                }
            }
            None => problems.push("the manifest cannot be read, so its capabilities cannot be checked".into()),
        }
        let known: BTreeSet<u16> = syscall::ALL.iter().map(|(n, _, _)| *n).collect();
        for (path, module) in &modules {
            let image = match module {
                Ok(image) => image,
                Err(err) => {
                    problems.push(format!("{path} cannot be checked for unknown syscalls: {err}"));
                    continue;
                }
            };
            for line in pxos_vm::disasm::decode_lines(&image.words) {
                if let Some(inst) = line.instruction
                    && inst.op == pxos_vm::isa::Op::SYSCALL
                    && !known.contains(&inst.imm16())
                {
                    problems.push(format!("{path} calls unknown syscall {}", inst.imm16()));
                }
            }
        }
        Check {
            section: "§8",
            principle: "No backdoors",
            name: "no network capability, no unknown host calls",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() { "no network capability; every syscall is a documented one".into() } else { problems.join("; ") },
        }
    });

    // §10: LLM and human work are told apart, on the record, and an LLM explains itself.
    checks.push({
        let mut problems = Vec::new();
        match &manifest {
            Some(manifest) => {
                if manifest.creator.kind == CreatorKind::Llm && manifest.reason.trim().is_empty() {
                    problems.push("an LLM-made cartridge must state its reason".to_string());
                }
                if manifest.creator.kind != record.creator.kind {
                    problems.push(
                        "the registry and the manifest disagree about the creator".to_string(),
                    );
                }
            }
            None => problems.push("the manifest cannot be read, so its creator cannot be checked".into()),
        }
        let entries = match registry.log().entries() {
            Ok(entries) => entries,
            Err(err) => {
                problems.push(format!("the evolution log cannot be read: {err}"));
                Vec::new()
            }
        };
        let about: Vec<&pxos_cart::LogEntry> = entries
            .iter()
            .filter(|e| e.action.cartridge().is_some_and(|c| c.sha256 == record.sha256))
            .collect();
        match about.iter().find_map(|e| match &e.action {
            Action::Register { creator, .. } => Some(creator),
            _ => None,
        }) {
            None => problems.push("the log has no register entry for this cartridge".into()),
            Some(creator) if *creator != record.creator => problems.push(format!(
                "the log registers it as made by {} ({:?}), the registry says {} ({:?})",
                creator.name, creator.kind, record.creator.name, record.creator.kind
            )),
            Some(_) => {}
        }
        for entry in &about {
            match &entry.action {
                Action::Promote { .. } | Action::Rollback { .. }
                    if entry.actor.kind != ActorKind::Human =>
                {
                    problems.push(format!(
                        "log entry {}: {} was approved by {}, not by a person",
                        entry.seq,
                        entry.action.name(),
                        entry.actor
                    ));
                }
                _ => {}
            }
            if entry.actor.kind == ActorKind::Llm && entry.reason.trim().is_empty() {
                problems.push(format!(
                    "log entry {}: the LLM {} gave no reason for its {}",
                    entry.seq,
                    entry.actor.name,
                    entry.action.name()
                ));
            }
        }
        if let Some(entry) = about.iter().find(|e| matches!(e.action, Action::Pack { .. })) {
            let packer = match entry.actor.kind {
                ActorKind::Llm => Some(CreatorKind::Llm),
                ActorKind::Human => Some(CreatorKind::Human),
                ActorKind::System => None,
            };
            if packer.is_some_and(|kind| kind != record.creator.kind) {
                problems.push(format!(
                    "log entry {}: packed by {}, but the manifest names a {:?} creator",
                    entry.seq, entry.actor, record.creator.kind
                ));
            }
        }
        Check {
            section: "§10",
            principle: "Coaching and evolution",
            name: "creator kind recorded in manifest, registry and log; only people approve; LLM work carries its reason",
            passed: problems.is_empty(),
            evidence: if problems.is_empty() {
                format!(
                    "creator {:?} recorded in manifest, registry and log; {} log entries about it, every approval by a person",
                    record.creator.kind,
                    about.len()
                )
            } else {
                problems.join("; ")
            },
        }
    });

    let compliance_file = workspace.join("GENESIS_COMPLIANCE.md");
    let report = Report {
        cartridge: record.id.clone(),
        sha256: record.sha256,
        genesis_version: GENESIS_VERSION,
        checks,
        needs_person: NEEDS_PERSON.to_vec(),
        compliance_file: compliance_file.clone(),
    };
    pxos_pixel::durable::write_atomic(
        &compliance_file,
        compliance_markdown(&report).as_bytes(),
        pxos_pixel::durable::label::GENESIS_COMPLIANCE,
    )
    .map_err(|err| Error::io(err, &compliance_file))?;
    let _ = std::fs::remove_dir_all(&tree);
    Ok(report)
}

fn compliance_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Genesis compliance: {}\n", report.cartridge);
    let _ = writeln!(
        out,
        "Cartridge sha256 `{}`, Genesis {}, checked {}.\n",
        report.sha256,
        report.genesis_version,
        pxos_fs::time::now_rfc3339()
    );
    let _ = writeln!(
        out,
        "Result: **{}**\n",
        if report.passed() {
            "all machine checks passed"
        } else {
            "FAILED"
        }
    );
    let _ = writeln!(
        out,
        "| section | principle | check | result | evidence |\n|---|---|---|---|---|"
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            check.section,
            check.principle,
            check.name,
            if check.passed { "pass" } else { "FAIL" },
            check.evidence.replace('|', "/")
        );
    }
    let _ = writeln!(out, "\n## Needs a person\n");
    for item in &report.needs_person {
        let _ = writeln!(out, "- {} {}: {}", item.section, item.principle, item.why);
    }
    out
}
