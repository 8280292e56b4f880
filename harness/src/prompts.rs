//! The prompt sets validate runs: a built-in default, or a user's JSON file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use atenia_engine::{Error, Result};

/// One prompt: plain text, a user message put through the model's chat
/// template, or token ids run as they are (no tokenizer needed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "PromptFile", into = "PromptFile")]
pub struct Prompt {
    pub name: String,
    /// The text to tokenize; empty for an ids prompt.
    pub text: String,
    /// Token ids to run as they are, instead of text: the model needs no
    /// tokenizer for them (BOS is not added; put it in the list if wanted).
    pub ids: Option<Vec<u32>>,
    /// Wrap in the model's chat template (ignored, with a note, when it has none).
    pub chat: bool,
}

/// A prompt as the file spells it: `text` or `ids`, not both.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<u32>>,
    #[serde(default)]
    chat: bool,
}

impl From<Prompt> for PromptFile {
    fn from(p: Prompt) -> PromptFile {
        PromptFile {
            name: p.name,
            text: p.ids.is_none().then_some(p.text),
            ids: p.ids,
            chat: p.chat,
        }
    }
}

impl TryFrom<PromptFile> for Prompt {
    type Error = String;

    fn try_from(f: PromptFile) -> std::result::Result<Prompt, String> {
        let name = f.name;
        let (text, ids) = match (f.text, f.ids) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "prompt {name:?} has both \"text\" and \"ids\"; give one"
                ))
            }
            (None, None) => {
                return Err(format!("prompt {name:?} has neither \"text\" nor \"ids\""))
            }
            (Some(t), None) => (t, None),
            (None, Some(ids)) => {
                if ids.is_empty() {
                    return Err(format!("prompt {name:?} has an empty \"ids\" list"));
                }
                if f.chat {
                    return Err(format!(
                        "prompt {name:?}: \"chat\" needs \"text\" (ids are run as they are)"
                    ));
                }
                (String::new(), Some(ids))
            }
        };
        Ok(Prompt {
            name,
            text,
            ids,
            chat: f.chat,
        })
    }
}

fn p(name: &str, text: &str, chat: bool) -> Prompt {
    Prompt {
        name: name.into(),
        text: text.into(),
        ids: None,
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

/// Reads a prompt file: a JSON array of `{"name", "text", "chat"?}` or
/// `{"name", "ids"}` objects (the two kinds may be mixed).
pub fn read_prompts(path: &Path) -> Result<Vec<Prompt>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let prompts: Vec<Prompt> = serde_json::from_str(&text).map_err(|e| {
        Error::argument(
            "--prompts",
            format!(
                "{}: {e}; expected a JSON array of {{\"name\": ..., \"text\": ..., \"chat\": false}} \
                 or {{\"name\": ..., \"ids\": [1, 2, 3]}}",
                path.display()
            ),
        )
    })?;
    if prompts.is_empty() {
        return Err(Error::argument("--prompts", "the file holds no prompts"));
    }
    Ok(prompts)
}
