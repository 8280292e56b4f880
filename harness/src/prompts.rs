//! The prompt sets validate runs: a built-in default, or a user's JSON file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use atenia_engine::{Error, Result};

/// One prompt: plain text, or a user message put through the model's chat template.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    pub name: String,
    pub text: String,
    /// Wrap in the model's chat template (ignored, with a note, when it has none).
    #[serde(default)]
    pub chat: bool,
}

fn p(name: &str, text: &str, chat: bool) -> Prompt {
    Prompt {
        name: name.into(),
        text: text.into(),
        chat,
    }
}

/// The default set: facts, code, a story, a sequence, and two chat turns.
pub fn default_prompts() -> Vec<Prompt> {
    vec![
        p("capital", "The capital of France is", false),
        p(
            "chat-sky",
            "Why is the sky blue? Answer in one sentence.",
            true,
        ),
        p(
            "code",
            "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
            false,
        ),
        p(
            "story",
            "Once upon a time, in a small village by the sea,",
            false,
        ),
        p("colors", "The three primary colors are", false),
        p(
            "chat-french",
            "Translate to French: Good morning, how are you?",
            true,
        ),
        p("sequence", "1, 1, 2, 3, 5, 8, 13,", false),
        p("water", "Water boils at a temperature of", false),
    ]
}

/// Reads a prompt file: a JSON array of `{"name", "text", "chat"?}` objects.
pub fn read_prompts(path: &Path) -> Result<Vec<Prompt>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let prompts: Vec<Prompt> = serde_json::from_str(&text).map_err(|e| {
        Error::argument(
            "--prompts",
            format!(
                "{}: {e}; expected a JSON array of {{\"name\": ..., \"text\": ..., \"chat\": false}}",
                path.display()
            ),
        )
    })?;
    if prompts.is_empty() {
        return Err(Error::argument("--prompts", "the file holds no prompts"));
    }
    Ok(prompts)
}
