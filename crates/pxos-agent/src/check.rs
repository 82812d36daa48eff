//! The real checks an artefact must pass, by kind: PXVM code is assembled
//! and run through the hypervisor (sandboxed, recorded) against its expected
//! output; a roadmap is checked, built and evaluated; a world is built,
//! packed, registered as an experimental cartridge and Genesis-checked.
//! A check that cannot run says so and fails; none reports success by default.

use std::path::Path;

use pxos_boot::hypervisor::{Hypervisor, Launch, Sandbox};
use pxos_vm::{MemoryStorage, ProgramImage, asm};
use serde::{Deserialize, Serialize};

use crate::queue::Expect;

/// Fuel for a checked program run.
pub const CHECK_FUEL: u64 = 10_000_000;

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    pub passed: bool,
    /// One line for people and for the model's next round.
    pub summary: String,
    pub details: Vec<String>,
    /// The execution records of the runs it made.
    #[serde(default)]
    pub executions: Vec<u64>,
}

impl CheckReport {
    pub fn failed(summary: impl Into<String>) -> CheckReport {
        CheckReport {
            passed: false,
            summary: summary.into(),
            ..CheckReport::default()
        }
    }
}

/// Assembles `source` (`name` for error positions).
pub fn assemble(name: &str, source: &str) -> Result<ProgramImage, String> {
    let program = asm::assemble(name, source).map_err(|err| err.to_string())?;
    Ok(ProgramImage {
        words: program.words,
        entry: program.entry,
    })
}

/// Assembles `source` and runs it through the hypervisor in the
/// experimental sandbox with `expect.args`, recording the execution in
/// `HOME/run/executions`; passes when it halts and prints exactly
/// `expect.output`.
pub fn check_program(home: &Path, name: &str, source: &str, expect: &Expect) -> CheckReport {
    let image = match assemble(name, source) {
        Ok(image) => image,
        Err(err) => return CheckReport::failed(format!("it does not assemble: {err}")),
    };
    let hypervisor = Hypervisor::new(
        &home.join("run").join("executions"),
        pxos_vm::default_messages(),
    );
    let mut launch = Launch::new(
        format!("agent:{name}"),
        &image,
        Sandbox::experimental(CHECK_FUEL, "/sandbox/agents"),
        Box::new(MemoryStorage::default()),
    );
    launch.args = &expect.args;
    let result = hypervisor.run_program(launch);
    let mut details = vec![format!(
        "assembled to {} words; ran {} instructions (execution {})",
        image.words.len(),
        result.cycles,
        result.log_id
    )];
    details.extend(result.output.iter().map(|l| format!("printed: {l}")));
    details.extend(result.warnings.iter().map(|w| format!("warning: {w}")));
    let executions = vec![result.log_id];
    if let Some(trap) = &result.trap {
        return CheckReport {
            passed: false,
            summary: format!("it assembles, but the run ended in a trap: {trap}"),
            details,
            executions,
        };
    }
    if result.output != expect.output {
        return CheckReport {
            passed: false,
            summary: format!(
                "it ran, but printed {:?} where {:?} was expected",
                result.output, expect.output
            ),
            details,
            executions,
        };
    }
    CheckReport {
        passed: true,
        summary: format!(
            "it assembles and prints the {} expected line(s)",
            expect.output.len()
        ),
        details,
        executions,
    }
}

/// Checks, builds and evaluates a VRAM roadmap; passes at full marks.
pub fn check_roadmap(yaml: &str) -> CheckReport {
    let roadmap = match pxos_vram::roadmap::Roadmap::parse(yaml) {
        Ok(roadmap) => roadmap,
        Err(err) => return CheckReport::failed(format!("the roadmap does not parse: {err}")),
    };
    if let Err(err) = roadmap.check() {
        return CheckReport::failed(format!("the roadmap is invalid: {err}"));
    }
    let (vram, steps) = match pxos_vram::roadmap::build(&roadmap) {
        Ok(built) => built,
        Err(err) => return CheckReport::failed(format!("the roadmap does not build: {err}")),
    };
    let evaluation = pxos_vram::evaluate::evaluate(&vram);
    let details = evaluation
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                c.name,
                c.detail
            )
        })
        .collect();
    CheckReport {
        passed: evaluation.full_marks(),
        summary: format!(
            "{} steps built; the evaluation scores {}/{}{}",
            steps.len(),
            evaluation.score,
            evaluation.max_score,
            if evaluation.full_marks() {
                String::new()
            } else {
                format!(" (failed: {})", evaluation.failed().join(", "))
            }
        ),
        details,
        executions: Vec::new(),
    }
}

/// The first fenced code block of `text` (its body), or the whole text
/// when it has none.
pub fn extract_code(text: &str) -> String {
    fenced_blocks(text)
        .into_iter()
        .next()
        .map(|(_, body)| body)
        .unwrap_or_else(|| text.trim().to_string() + "\n")
}

/// Every fenced block: (its info string, its body).
pub fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        blocks.push((info.trim().to_string(), body));
    }
    blocks
}

/// The review's `SCORE:` (1 to 10) and `FEEDBACK:`.
pub fn parse_review(text: &str) -> (Option<u8>, String) {
    let mut score = None;
    let mut feedback = Vec::new();
    let mut in_feedback = false;
    for line in text.lines() {
        let trimmed = line.trim().trim_start_matches(['*', '#', ' ']);
        let upper = trimmed.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("SCORE:") {
            let digits: String = rest
                .trim_start_matches(['*', ' ', '\t'])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            score = digits.parse::<u8>().ok().filter(|s| (1..=10).contains(s));
            in_feedback = false;
        } else if upper.starts_with("FEEDBACK:") {
            feedback.push(trimmed["FEEDBACK:".len()..].trim().to_string());
            in_feedback = true;
        } else if in_feedback && !trimmed.is_empty() {
            feedback.push(trimmed.to_string());
        }
    }
    (score, feedback.join(" ").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_parse() {
        assert_eq!(
            parse_review("SCORE: 9\nFEEDBACK: fine\nmore"),
            (Some(9), "fine more".into())
        );
        assert_eq!(parse_review("**Score:** 8/10").0, Some(8));
        assert_eq!(parse_review("SCORE: 11").0, None);
        assert_eq!(parse_review("SCORE: 0").0, None);
        assert_eq!(parse_review("looks good").0, None);
    }

    #[test]
    fn code_is_taken_from_the_first_fence() {
        assert_eq!(extract_code("text\n```pxasm\nHALT\n```\nafter"), "HALT\n");
        assert_eq!(extract_code("HALT"), "HALT\n");
        let blocks =
            fenced_blocks("```pxasm programs/a.pxasm\nHALT\n```\n```json messages.json\n{}\n```");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].0, "json messages.json");
    }
}
