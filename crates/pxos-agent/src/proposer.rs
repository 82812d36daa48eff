//! A model as the VRAM improvement loop's proposer, behind the same
//! [`Proposer`] trait as the rule proposer: it gets the roadmap and the
//! failed checks, answers with a whole roadmap in a YAML block, and the
//! loop builds and scores it (a proposal that lowers the score is rejected
//! there, and the rejection recorded). An answer that is not a valid
//! roadmap is noted here and proposes nothing.

use pxos_vram::evaluate::Evaluation;
use pxos_vram::improve::Proposer;
use pxos_vram::roadmap::Roadmap;

use crate::check::extract_code;
use crate::provider::{Gate, Message, Purpose, Request};

pub struct LlmProposer {
    pub gate: Gate,
    pub max_tokens: usize,
    /// Why answers were not used (unparseable, invalid, refused).
    pub notes: Vec<String>,
}

impl LlmProposer {
    pub fn new(gate: Gate) -> LlmProposer {
        LlmProposer {
            gate,
            max_tokens: 1024,
            notes: Vec::new(),
        }
    }
}

impl Proposer for LlmProposer {
    fn propose(&mut self, roadmap: &Roadmap, evaluation: &Evaluation) -> Option<Roadmap> {
        let failed: Vec<String> = evaluation
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        let request = Request {
            purpose: Purpose::Propose,
            messages: vec![
                Message::new(
                    "system",
                    "You improve pxOS VRAM roadmaps. Answer with the whole revised roadmap in one ```yaml block.",
                ),
                Message::new(
                    "user",
                    format!(
                        "The roadmap scores {}/{}. Failed checks:\n{}\nThe roadmap:\n```yaml\n{}```",
                        evaluation.score,
                        evaluation.max_score,
                        failed.join("\n"),
                        roadmap.to_yaml()
                    ),
                ),
            ],
            max_tokens: self.max_tokens,
        };
        let reply = match self.gate.complete(&request) {
            Ok(reply) => reply,
            Err(err) => {
                self.notes.push(format!("no proposal: {err}"));
                return None;
            }
        };
        match Roadmap::parse(&extract_code(&reply.text)).and_then(|r| r.check().map(|()| r)) {
            Ok(next) if next != *roadmap => Some(next),
            Ok(_) => {
                self.notes
                    .push("the model proposed the same roadmap".into());
                None
            }
            Err(err) => {
                self.notes
                    .push(format!("the model's answer is not a valid roadmap: {err}"));
                None
            }
        }
    }
}
