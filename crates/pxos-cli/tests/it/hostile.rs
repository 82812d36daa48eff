//! The hostile-input corpus (`tests/hostile/`, described in its README), fed
//! to every command that reads a file, through the binary. Each run must end
//! with exit 1 or 2 (0 only where a command takes any bytes, like `pixel
//! encode`), an error that names the input, no panic or abort, nothing left
//! outside its target, within 10 s and 512 MiB of virtual memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Home, temporaries_under};

/// A command that reads `{in}`; `{out}` is a target path that must not be
/// left behind when the command fails; `{name}` is the input's file name.
/// `valid` names the corpus files this command rightly accepts (exit 0), by
/// prefix; `*` means every input (the command takes any bytes).
struct Reader {
    args: &'static [&'static str],
    valid: &'static [&'static str],
}

const fn reads(args: &'static [&'static str]) -> Reader {
    Reader { args, valid: &[] }
}

/// Well-formed PXI files among the hostile ones: cartridges and programs that
/// are hostile only to the commands that unpack or run them.
const VALID_PXI: &[&str] = &["cart-", "program-"];

const READERS: &[Reader] = &[
    // Agents: a recorded session, a recording as a provider, a world template.
    reads(&["coach", "replay", "{in}"]),
    reads(&["coach", "run", "--provider", "replay:{in}"]),
    reads(&[
        "evolve",
        "propose",
        "--reason",
        "boot takes 120 ms",
        "--template",
        "{in}",
    ]),
    // `pixel info` reads the header only (`pixel verify` checks the rest):
    // damage past the header is not its business.
    Reader {
        args: &["pixel", "info", "{in}"],
        valid: &["cart-", "program-", "flipped-byte.png", "truncated.png"],
    },
    Reader {
        args: &["pixel", "verify", "{in}"],
        valid: VALID_PXI,
    },
    Reader {
        args: &["pixel", "decode", "{in}", "-o", "{out}"],
        valid: VALID_PXI,
    },
    Reader {
        args: &["pixel", "read", "{in}", "--offset", "0", "--length", "16"],
        valid: VALID_PXI,
    },
    // `pixel view` renders any PNG, a plain image too.
    Reader {
        args: &["pixel", "view", "{in}", "-o", "{out}"],
        valid: &["cart-", "program-", "plain-image.png"],
    },
    Reader {
        args: &["pixel", "encode", "{in}", "-o", "{out}"],
        valid: &["*"],
    },
    Reader {
        args: &["fs", "add", "/hostile/{name}", "{in}"],
        valid: &["*"],
    },
    reads(&["asm", "{in}", "-o", "{out}"]),
    reads(&["disasm", "{in}"]),
    reads(&["run", "{in}"]),
    reads(&["debug", "{in}"]),
    reads(&["kernel", "install", "{in}", "--version", "hostile"]),
    reads(&["cart", "info", "{in}"]),
    reads(&["cart", "unpack", "{in}", "{out}"]),
    reads(&["cart", "register", "{in}", "--reason", "hostile"]),
    reads(&["vram", "build", "{in}", "-o", "{out}"]),
    reads(&[
        "vram",
        "loop",
        "{in}",
        "--generations",
        "1",
        "--out",
        "{out}",
    ]),
    reads(&["vram", "eval", "{in}"]),
    reads(&["vram", "who", "{in}", "0", "0"]),
    reads(&["vram", "diff", "{in}", "{in}", "-o", "{out}"]),
    reads(&["vram", "run", "{in}", "--steps", "10000", "-o", "{out}"]),
    // Any bytes are something to store on the map.
    Reader {
        args: &["map", "put", "-7", "9", "{in}"],
        valid: &["*"],
    },
    reads(&["x86", "build", "{in}", "-o", "{out}"]),
    // Any bytes are a raw image to disassemble.
    Reader {
        args: &["x86", "disasm", "{in}"],
        valid: &["*"],
    },
    reads(&["boot", "--sequence", "{in}", "--dry-run"]),
    // Models: PXI-LLM readers, and the importers (GGUF by magic, else llama2.c).
    reads(&["llm", "inspect", "{in}"]),
    reads(&["llm", "tokenize", "{in}", "--text", "x"]),
    reads(&["llm", "logits", "{in}", "--tokens", "1", "--device", "cpu"]),
    reads(&["llm", "export", "{in}", "-o", "{out}"]),
    reads(&["llm", "import", "{in}", "-o", "{out}"]),
    reads(&["llm", "import", "{in}", "--format", "gguf", "-o", "{out}"]),
    reads(&[
        "llm",
        "import",
        "{in}",
        "--format",
        "llama2c",
        "--tokenizer",
        "{in}",
        "-o",
        "{out}",
    ]),
    // QEMU, for any file that is a boot image (none here is: each is refused first).
    reads(&["x86", "run", "{in}", "--headless", "--timeout", "3"]),
];

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "the corpus is missing files: {files:?}");
    files
}

/// Every file below `dir` (relative paths), for "nothing left behind" checks.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_file_reading_command_refuses_the_hostile_corpus_cleanly() {
    let home = Home::new("hostile");
    home.ok(&["boot"]);
    home.ok(&["fs", "init"]);
    let inputs = home.scratch("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    for source in corpus() {
        // A copy, so that nothing can touch the checked-in corpus.
        let name = source.file_name().unwrap().to_str().unwrap().to_string();
        let input = inputs.join(&name);
        std::fs::copy(&source, &input).unwrap();
        for reader in READERS {
            let out = home.scratch("target");
            let args: Vec<String> = reader
                .args
                .iter()
                .map(|a| {
                    a.replace("{in}", input.to_str().unwrap())
                        .replace("{out}", out.to_str().unwrap())
                        .replace("{name}", &name)
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let scratch_before = listing(&home.dir.join("scratch"));
            let run = home.bounded(&args, Duration::from_secs(10));
            runs += 1;
            let what = format!("pxos {} on {name}", reader.args.join(" "));
            let mut problems = Vec::new();
            let clean_refusal = matches!(run.code, Some(1 | 2));
            let valid = reader
                .valid
                .iter()
                .any(|prefix| *prefix == "*" || name.starts_with(prefix));
            if !(clean_refusal || valid && run.code == Some(0)) {
                problems.push(format!("exit {:?}, signal {:?}", run.code, run.signal));
            }
            if run.stderr.contains("panicked") {
                problems.push("panicked".to_string());
            }
            if clean_refusal && !run.stderr.contains(&name) {
                problems.push("the error does not name the input".to_string());
            }
            if run.seconds > 10.0 {
                problems.push(format!("took {:.1} s", run.seconds));
            }
            let mut scratch_after = listing(&home.dir.join("scratch"));
            if run.code == Some(0) {
                scratch_after.retain(|p| !p.starts_with("target"));
            }
            if scratch_after != scratch_before {
                problems.push(format!(
                    "left files behind: {:?}",
                    scratch_after
                        .iter()
                        .filter(|p| !scratch_before.contains(p))
                        .collect::<Vec<_>>()
                ));
            }
            if !temporaries_under(&home.dir).is_empty() {
                problems.push(format!(
                    "left temporaries: {:?}",
                    temporaries_under(&home.dir)
                ));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{what}: {}\n    stderr: {}",
                    problems.join("; "),
                    run.stderr.chars().take(400).collect::<String>()
                ));
            }
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_file(&out);
        }
    }
    assert!(runs >= 600, "only {runs} runs");
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
