//! Agents through the real binary: the coaching loop over real HTTP against
//! `pxos llm serve`, replays, world rebuilds and the promotion gate from the
//! agent's side, the network log, SYS_LLM and the shell's `ask`, map chat,
//! the model policy, hostile task metadata and a damaged queue.

use std::io::Write;

use serde_json::Value;

use crate::llm::Server;
use crate::support::{Home, json_lines};

const GOOD: &str = "```pxasm\nSTART:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"hi\"\n```";
const WRONG: &str = "```pxasm\nSTART:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"bye\"\n```";

fn exchange(purpose: &str, response: &str) -> Value {
    serde_json::json!({"time": "", "purpose": purpose, "provider": "recorded", "model": "recorded-model",
        "prompt": [], "response": response, "prompt_tokens": 1, "completion_tokens": 1, "ms": 0})
}

fn recording(home: &Home, name: &str, answers: &[(&str, &str)]) -> String {
    let list: Vec<Value> = answers.iter().map(|(p, r)| exchange(p, r)).collect();
    let path = home.scratch(name);
    std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    format!("replay:{}", path.display())
}

fn add_hi_task(home: &Home) {
    home.ok(&[
        "tasks", "add", "print hi", "--expect", "hi", "--path", "hi.pxasm",
    ]);
}

fn network_log(home: &Home) -> Vec<Value> {
    match std::fs::read_to_string(home.home().join("log/network.jsonl")) {
        Ok(text) => json_lines(&text),
        Err(_) => Vec::new(),
    }
}

fn last_log_entry(home: &Home) -> Value {
    json_lines(&home.ok(&["--json", "log"])).pop().unwrap()
}

#[test]
fn coaching_over_real_http_retries_with_the_failure_and_never_accepts_failing_code() {
    let home = Home::new("agents-http");
    let server = Server::start(&home, &[]);
    let url = format!("http://{}/v1", server.addr);
    home.ok(&[
        "agents",
        "add",
        "local",
        "--url",
        &url,
        "--model",
        "pixellm",
        "--default",
    ]);
    let status = json_lines(&home.ok(&["--json", "agents"]));
    let local = status.iter().find(|v| v["name"] == "local").unwrap();
    assert_eq!(local["reachable"], true, "{local}");
    add_hi_task(&home);
    // The built-in model cannot write PXVM code: every round fails its checks.
    let out = home.run(&["--json", "coach", "run"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let run = lines.iter().find(|v| v["type"] == "coach-run").unwrap();
    assert_eq!(run["tasks"], 1);
    assert_eq!(run["accepted"], 0);
    assert_eq!(run["provider"], "openai:local");
    let report = &run["reports"][0];
    assert_eq!(report["rounds"].as_array().unwrap().len(), 3);
    // Each later round was told why the one before failed.
    let session: Value = serde_json::from_slice(
        &std::fs::read(home.home().join(report["session"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let generations: Vec<&Value> = session["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["purpose"] == "generate")
        .collect();
    assert_eq!(generations.len(), 3);
    for later in &generations[1..] {
        let prompt = later["prompt"].to_string();
        assert!(
            prompt.contains("was not accepted") && prompt.contains("Checks:"),
            "{prompt}"
        );
    }
    let task = json_lines(&home.ok(&["--json", "tasks", "show", "t1"])).remove(0);
    assert_eq!(task["status"], "failed");
    assert!(
        task["outcome"]["artefact"]
            .as_str()
            .unwrap()
            .ends_with("best.pxasm")
    );
    assert!(!home.home().join("agents/workspace/t1/hi.pxasm").exists());
    let entry = last_log_entry(&home);
    assert_eq!(entry["details"]["task"]["accepted"], false);
    assert_eq!(entry["actor"]["kind"], "llm");
    // Every request is in the network log: 3 rounds x (generate + review), plus the probe.
    let requests = network_log(&home);
    let posts = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["remote"] == "llm:local")
        .count();
    assert_eq!(posts, 6, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r["url"].as_str().unwrap().starts_with(&url))
    );
    let shown = home.ok(&["log", "--network"]);
    assert!(shown.contains("llm:local"), "{shown}");
    drop(server);
    // The endpoint gone: a clear network error, and the task is not lost.
    home.ok(&["tasks", "retry", "t1"]);
    let err = home.fails(2, &["coach", "run"]);
    assert!(
        err.contains("network") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert_eq!(network_log(&home).last().unwrap()["status"], Value::Null);
}

#[test]
fn nothing_leaves_the_machine_unless_configured() {
    let home = Home::new("agents-offline");
    home.ok(&["boot", "-q"]);
    add_hi_task(&home);
    let _ = home.run(&["coach", "run"]);
    home.ok(&["agents", "ask", "what is pxOS?"]);
    home.ok(&["agents"]);
    // An endpoint added but not chosen is not contacted either.
    home.ok(&[
        "agents",
        "add",
        "far",
        "--url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]);
    home.ok(&["agents", "ask", "still offline?"]);
    home.ok(&["agents", "--offline"]);
    assert!(network_log(&home).is_empty(), "{:?}", network_log(&home));
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    assert!(exchanges.iter().all(|e| e["provider"] == "builtin"));
    assert!(exchanges.iter().any(|e| e["purpose"] == "ask"));
}

#[test]
fn replays_accept_passing_answers_identically_and_refuse_failing_checks() {
    let home = Home::new("agents-replay");
    add_hi_task(&home);
    let good = recording(
        &home,
        "good.json",
        &[("generate", GOOD), ("review", "SCORE: 9\nFEEDBACK: good")],
    );
    let lines = json_lines(&home.ok(&["--json", "coach", "run", "--provider", &good]));
    let run = lines.iter().find(|v| v["type"] == "coach-run").unwrap();
    assert_eq!(run["accepted"], 1);
    assert_eq!(
        std::fs::read_to_string(home.home().join("agents/workspace/t1/hi.pxasm")).unwrap(),
        "START:\n    IMM32 R1, T\n    LI R2, 1\n    SYSCALL 1\n    HALT\nT: .string \"hi\"\n"
    );
    let session = home.home().join("agents/sessions/t1-attempt-1.json");
    let mut entries = Vec::new();
    for _ in 0..3 {
        let replay =
            json_lines(&home.ok(&["--json", "coach", "replay", session.to_str().unwrap()]));
        let end = replay.iter().find(|v| v["type"] == "coach-replay").unwrap();
        assert_eq!(end["accepted"], true);
        assert_eq!(end["matches_recording"], true);
        let mut entry = last_log_entry(&home);
        for volatile in ["seq", "time", "prev", "hash"] {
            entry.as_object_mut().unwrap().remove(volatile);
        }
        entries.push(entry);
    }
    assert!(entries.windows(2).all(|w| w[0] == w[1]), "{entries:?}");
    assert_eq!(entries[0]["details"]["task"]["accepted"], true);

    // Review says 10, the code prints the wrong line: never accepted.
    home.ok(&["tasks", "add", "print hi again", "--expect", "hi"]);
    let wrong = recording(
        &home,
        "wrong.json",
        &[
            ("generate", WRONG),
            ("review", "SCORE: 10\nFEEDBACK: perfect"),
            ("generate", WRONG),
            ("review", "SCORE: 10"),
            ("generate", WRONG),
            ("review", "SCORE: 10"),
        ],
    );
    home.fails(1, &["coach", "run", "--provider", &wrong]);
    let task = json_lines(&home.ok(&["--json", "tasks", "show", "t2"])).remove(0);
    assert_eq!(task["status"], "failed");
    assert_eq!(task["review_score"], 10);
    assert_eq!(task["outcome"]["checks_passed"], false);
    let session = home.home().join("agents/sessions/t2-attempt-1.json");
    let err = home.fails(1, &["coach", "replay", session.to_str().unwrap()]);
    assert!(err.is_empty() || !err.contains("panicked"), "{err}");
    // A recording that runs out is a clear error, not an acceptance.
    home.ok(&["tasks", "add", "third", "--expect", "hi"]);
    let short = recording(&home, "short.json", &[("generate", GOOD)]);
    let err = home.fails(1, &["coach", "run", "--provider", &short]);
    assert!(err.contains("no answer left"), "{err}");
    // A damaged recording names itself.
    std::fs::write(home.scratch("bad.json"), b"{not json").unwrap();
    let err = home.fails(
        1,
        &[
            "coach",
            "replay",
            home.scratch("bad.json").to_str().unwrap(),
        ],
    );
    assert!(err.contains("not a recorded coaching session"), "{err}");
}

#[test]
fn a_world_rebuild_registers_a_booting_experiment_that_only_a_person_promotes() {
    let home = Home::new("agents-rebuild");
    home.ok(&["boot", "-q"]);
    // Guardrails: a reason without a measurement is not enough.
    home.fails(1, &["evolve", "propose", "--reason", "make it better"]);
    assert!(home.ok(&["tasks", "list"]).contains("no tasks"));
    home.ok(&[
        "evolve",
        "propose",
        "--reason",
        "boot takes 120 ms; the target is 50 ms",
    ]);
    // One evolution at a time.
    home.fails(1, &["evolve", "propose", "--reason", "and 3 more things"]);
    let lines = json_lines(&home.ok(&["--json", "coach", "run"]));
    let run = lines.iter().find(|v| v["type"] == "coach-run").unwrap();
    assert_eq!(run["accepted"], 1, "{run}");
    assert_eq!(run["reports"][0]["cartridge"], "default@1.1.0");
    let workspace = home.home().join("agents/workspace/t1");
    let compliance = std::fs::read_to_string(workspace.join("GENESIS_COMPLIANCE.md")).unwrap();
    assert!(
        compliance.contains("Genesis passes default@1.1.0"),
        "{compliance}"
    );
    assert!(
        compliance.contains("programs/count.pxasm test 1"),
        "{compliance}"
    );
    home.ok(&["genesis", "check", "default@1.1.0"]);
    home.ok(&["boot", "--cartridge", "default@1.1.0", "--no-shell"]);
    let out = home.ok(&["run", "count", "--cartridge", "default@1.1.0", "a", "bc"]);
    assert_eq!(
        out.lines().take(3).collect::<Vec<_>>(),
        ["a", "bc", "2"],
        "{out}"
    );
    let list = json_lines(&home.ok(&["--json", "cart", "list"]));
    let new = &list
        .iter()
        .find(|c| c["record"]["id"] == "default@1.1.0")
        .unwrap()["record"];
    assert_eq!(new["status"], "experimental");
    assert_eq!(new["creator"]["kind"], "llm");
    let log = json_lines(&home.ok(&["--json", "log"]));
    let register = log
        .iter()
        .find(|e| e["details"]["register"]["cartridge"]["version"] == "1.1.0")
        .unwrap();
    assert_eq!(register["actor"]["kind"], "llm");
    // From the agent's side, the gate holds: an LLM cannot promote or roll back.
    let err = home.fails(1, &["cart", "promote", "default@1.1.0", "--llm"]);
    assert!(err.contains("needs a person's approval"), "{err}");
    let err = home.fails(
        1,
        &[
            "cart",
            "promote",
            "default@1.1.0",
            "--approved-by",
            "builtin",
            "--llm",
        ],
    );
    assert!(err.to_lowercase().contains("llm"), "{err}");
    assert_eq!(crate::support::current(&home)["id"], "default@1.0.0");
    // A person can.
    home.ok(&["cart", "promote", "default@1.1.0", "--approved-by", "ada"]);
    assert_eq!(crate::support::current(&home)["id"], "default@1.1.0");
}

#[test]
fn hostile_task_metadata_cannot_choose_a_workspace() {
    let home = Home::new("agents-hostile");
    for meta in ["workspace=/", "workspace=../../etc"] {
        let err = home.fails(
            1,
            &[
                "tasks",
                "add",
                "x",
                "--action",
                "world-rebuild",
                "--meta",
                meta,
            ],
        );
        assert!(err.contains("chooses a task's workspace"), "{err}");
    }
    for path in ["../escape.pxasm", "/etc/passwd", "a/../../b"] {
        let err = home.fails(1, &["tasks", "add", "x", "--expect", "hi", "--path", path]);
        assert!(err.contains("refused"), "{err}");
    }
    // A queue file edited by hand to smuggle a workspace in is refused at run time.
    home.ok(&["boot", "-q"]);
    home.ok(&[
        "evolve",
        "propose",
        "--reason",
        "boot takes 120 ms; the target is 50 ms",
    ]);
    let path = home.home().join("agents/tasks.png");
    let mut queue = pxos_agent::queue::TaskQueue::load(&home.home()).unwrap();
    queue.tasks[0]
        .metadata
        .insert("workspace".into(), Value::String("/".into()));
    std::fs::write(&path, queue.encode()).unwrap();
    let err = home.fails(1, &["coach", "run"]);
    assert!(err.contains("pxOS chooses workspaces"), "{err}");
    // A damaged queue: a clear error, and the file is left alone.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    for args in [
        &["tasks", "list"][..],
        &["tasks", "add", "y", "--expect", "z"],
        &["coach", "run"],
    ] {
        let err = home.fails(1, args);
        assert!(
            err.contains("task queue") && err.contains("damaged"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..bytes.len() / 3]);
}

const ASKER: &str = "START:\n    IMM32 R1, Q\n    IMM32 R2, BUF\n    IMM32 R3, 400\n    SYSCALL 76\n    LI R4, 0\n    BEQ R0, R4, NO\n    IMM32 R1, BUF\n    LI R2, 1\n    SYSCALL 1\n    HALT\nNO:\n    IMM32 R1, REFUSED\n    LI R2, 1\n    SYSCALL 1\n    HALT\nQ: .string \"what is pxOS?\"\nREFUSED: .string \"refused\"\nBUF: .word 0\n";

#[test]
fn a_pixel_program_asks_the_model_only_with_consent() {
    let home = Home::new("agents-sysllm");
    home.ok(&["boot", "-q"]);
    let source = home.scratch("ask.pxasm");
    std::fs::write(&source, ASKER).unwrap();
    let image = home.scratch("ask.png");
    home.ok(&[
        "asm",
        source.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]);
    // Sandboxed (not part of the current cartridge), no consent: refused.
    let out = home.run(&["run", image.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("refused"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("DENIED"));
    assert!(
        json_lines(&home.ok(&["--json", "agents", "log"]))
            .iter()
            .all(|e| e["type"] != "exchange")
    );
    // With a person's consent it asks the built-in model and prints the answer.
    let lines = json_lines(&home.ok(&["--json", "run", image.to_str().unwrap(), "--allow-llm"]));
    let printed: Vec<&str> = lines
        .iter()
        .filter(|v| v["type"] == "print")
        .map(|v| v["text"].as_str().unwrap())
        .collect();
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    let asked = exchanges.iter().find(|e| e["purpose"] == "ask").unwrap();
    assert_eq!(asked["provider"], "builtin");
    assert!(asked["prompt"].to_string().contains("what is pxOS?"));
    let answer = asked["response"].as_str().unwrap();
    assert_ne!(printed.first().copied(), Some("refused"));
    assert_eq!(
        printed.join("\n"),
        answer.lines().collect::<Vec<_>>().join("\n")
    );
    let run = lines.iter().find(|v| v["type"] == "run").unwrap();
    assert!(
        run["sandbox"].as_str().unwrap().contains("--allow-llm"),
        "{run}"
    );
    // The policy refuses, and says so to the program.
    home.ok(&["agents", "policy", "--refuse", "pxOS"]);
    let out = home.run(&["run", image.to_str().unwrap(), "--allow-llm"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("refused"));
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    assert!(
        exchanges.last().unwrap()["refused"]
            .as_str()
            .unwrap()
            .contains("pxOS")
    );
    let err = home.fails(1, &["agents", "ask", "tell me about pxOS"]);
    assert!(err.contains("policy refused"), "{err}");
}

#[test]
fn the_shell_asks_the_model() {
    let home = Home::new("agents-shell-ask");
    home.ok(&["boot", "-q"]);
    let mut child = home
        .pxos()
        .args(["shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ask what is a pixel\nask\nhelp\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("usage: ask TEXT"), "{stdout}");
    assert!(stdout.contains("ask TEXT        ask the model"), "{stdout}");
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    let asked = exchanges.iter().find(|e| e["purpose"] == "ask").unwrap();
    let question = asked["prompt"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(question, "what is a pixel", "the words, joined");
    let answer = asked["response"].as_str().unwrap();
    if let Some(first) = answer.lines().find(|l| !l.trim().is_empty()) {
        assert!(stdout.contains(first.trim()), "{stdout}\n---\n{answer}");
    }
}

#[test]
fn a_map_tile_keeps_its_conversation() {
    let home = Home::new("agents-map-chat");
    home.ok(&["map", "note", "300", "20", "the red square"]);
    let first =
        json_lines(&home.ok(&["--json", "map", "chat", "300", "20", "who are you?"])).remove(0);
    assert_eq!(first["tile"], serde_json::json!([1, 0]));
    assert_eq!(first["topic"], "the red square");
    home.ok(&["map", "chat", "260", "100", "and what do you hold?"]);
    let history = json_lines(&home.ok(&["--json", "map", "chat", "300", "20"])).remove(0);
    let turns = history["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4, "{history}");
    assert_eq!(turns[2]["content"], "and what do you hold?");
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    let chats: Vec<&Value> = exchanges
        .iter()
        .filter(|e| e["purpose"] == "chat")
        .collect();
    assert_eq!(chats.len(), 2);
    assert!(
        chats[1]["prompt"].to_string().contains("who are you?"),
        "the history goes back to the model"
    );
    assert!(chats[1]["prompt"].to_string().contains("the red square"));
    let text = home.ok(&["map", "chat", "-5", "-5"]);
    assert!(text.contains("no conversation yet"), "{text}");
}

#[test]
fn the_llm_proposer_is_rejected_when_it_lowers_the_score() {
    let home = Home::new("agents-vram-proposer");
    let out = home.scratch("gens");
    // The model drops the hello program: a valid roadmap that scores lower.
    let worse = "```yaml\nmetadata:\n  name: worse\n  vram_width: 512\n  vram_height: 512\nsteps:\n  - name: background\n    kind: fill_region\n    params: {region: metadata, color: [10, 10, 10, 255]}\n```";
    let replay = recording(
        &home,
        "proposer.json",
        &[("propose", worse), ("propose", "no roadmap here")],
    );
    let result = home.run(&[
        "--json",
        "vram",
        "loop",
        "deficient",
        "--generations",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--proposer",
        "llm",
        "--provider",
        &replay,
    ]);
    assert_eq!(
        result.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines = json_lines(&String::from_utf8_lossy(&result.stdout));
    let generations: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "generation")
        .map(|v| &v["generation"])
        .collect();
    assert_eq!(generations.len(), 2, "{generations:?}");
    assert!(generations[0]["rejected"].is_null());
    assert!(generations[1]["score"].as_u64() < generations[0]["score"].as_u64());
    let why = generations[1]["rejected"].as_str().unwrap();
    assert!(
        why.contains("rejected") && why.contains("generation 0"),
        "{why}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("vram_os_stage1.gen001.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["rejected"].as_str(),
        Some(why),
        "the rejection is recorded"
    );
    let exchanges = json_lines(&home.ok(&["--json", "agents", "log"]));
    assert_eq!(
        exchanges
            .iter()
            .filter(|e| e["purpose"] == "propose")
            .count(),
        2
    );
}

#[test]
fn the_boot_loads_the_policy_and_writes_the_routing_table_without_requests() {
    let home = Home::new("agents-control-plane");
    home.ok(&[
        "agents",
        "add",
        "lab",
        "--url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]);
    home.ok(&["architect", "setup", "--provider", "lab"]);
    let out = home.ok(&["boot", "--no-shell"]);
    assert!(
        out.contains("[3] policy   ok")
            && out.contains("model policy loaded: 60 requests a minute"),
        "{out}"
    );
    assert!(
        out.contains("[4] models   ok") && out.contains("routing table written"),
        "{out}"
    );
    let routing: Value =
        serde_json::from_slice(&std::fs::read(home.home().join("agents/routing.json")).unwrap())
            .unwrap();
    assert_eq!(routing["routes"]["ask"], "builtin");
    assert_eq!(routing["routes"]["architect"], "lab");
    assert_eq!(
        routing["models"][1]["state"],
        "configured (not contacted at boot)"
    );
    assert!(network_log(&home).is_empty(), "a boot makes no request");
    // A damaged configuration fails the optional stages, by name; the boot goes on.
    std::fs::write(home.home().join("agents/config.json"), b"{broken").unwrap();
    let out = home.ok(&["boot", "--no-shell"]);
    assert!(
        out.contains("[3] policy   skipped")
            && out.contains("host step policy failed")
            && out.contains("not a pxOS agents configuration"),
        "{out}"
    );
    assert!(out.contains("[4] models   skipped"), "{out}");
    assert!(out.contains("boot complete"), "{out}");
    assert_eq!(
        std::fs::read(home.home().join("agents/config.json")).unwrap(),
        b"{broken"
    );
}
