//! Chat prompts: a conversation rendered by the model's own Jinja chat
//! template (as Hugging Face renders it: `trim_blocks`, `lstrip_blocks`,
//! Python string methods, `raise_exception`), or by a plain fallback for
//! models that have none.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Renders `messages` as the prompt the model continues: its chat template
/// when it has one, with `add_generation_prompt` set.
pub fn render(tokenizer: &Tokenizer, messages: &[Message]) -> Result<String> {
    let vocab = tokenizer.vocab();
    let Some(template) = vocab.and_then(|v| v.spec.chat_template.as_deref()) else {
        return Ok(plain(messages));
    };
    let vocab = vocab.expect("a template comes from a vocabulary");
    let token_text = |id: Option<u32>| {
        id.and_then(|id| vocab.spec.tokens.get(id as usize))
            .cloned()
            .unwrap_or_default()
    };
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    env.add_function("strftime_now", |format: String| -> String {
        // Templates use it for "today's date"; pxOS answers with the Unix epoch
        // day count rendered in the requested pattern's simplest form.
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        let (y, m, d) = civil_from_days(days as i64);
        format
            .replace("%Y", &format!("{y:04}"))
            .replace("%m", &format!("{m:02}"))
            .replace("%d", &format!("{d:02}"))
            .replace("%b", MONTHS[(m - 1) as usize])
    });
    env.add_template("chat", template)
        .map_err(|e| Error::bad_input(format!("the model's chat template does not parse: {e}")))?;
    let tmpl = env.get_template("chat").expect("just added");
    tmpl.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => token_text(vocab.spec.bos),
        eos_token => token_text(Some(vocab.spec.eos)),
    })
    .map_err(|e| Error::bad_input(format!("the model's chat template failed: {e}")))
}

/// The prompt for a model without a template: one `role: content` line per
/// message, then `assistant:`.
pub fn plain(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&m.role);
        out.push_str(": ");
        out.push_str(&m.content);
        out.push('\n');
    }
    out.push_str("assistant:");
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
    }
}
