//! Chat templates: the Jinja templates Hugging Face tokenizers (and GGUF
//! files, under `tokenizer.chat_template`) carry to turn a conversation into
//! a prompt, rendered with minijinja the way transformers renders them.
//!
//! transformers renders with `trim_blocks` and `lstrip_blocks` on, the loop
//! controls extension, a `raise_exception(message)` function and the
//! `strftime_now(format)` function; templates also call Python string methods
//! (`.strip()`, `.startswith()`...), which minijinja-contrib's pycompat
//! provides. The context holds `messages`, `add_generation_prompt`,
//! `bos_token` and `eos_token`.
//!
//! Tokenize the result with [`crate::text::tokenizer::Tokenizer::encode_chat`]: the
//! template writes the bos token itself when the model wants one, so no
//! second one is added.

use minijinja::{context, Environment, ErrorKind, Value};
use serde::Serialize;

use crate::error::{Error, Result};

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function("strftime_now", |format: String| -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        strftime_utc(&format, secs)
    });
    env
}

/// Renders `template` for `messages`. With `add_generation_prompt` the
/// template appends the opening of the assistant's turn.
pub fn render(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    let env = environment();
    env.render_str(
        template,
        context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        },
    )
    .map_err(describe)
}

fn describe(e: minijinja::Error) -> Error {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::ChatTemplate(msg)
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic
/// Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A small `strftime` over UTC time: `%Y %y %m %d %e %b %B %a %A %H %M %S %j %%`;
/// other directives are written as they are. (Templates' `strftime_now`, and
/// the harness's record dates.)
pub fn strftime_utc(format: &str, unix_secs: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let day_of_year = days - days_of_year_start(year) + 1;
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('a') => out.push_str(&weekday[..3]),
            Some('A') => out.push_str(weekday),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 of January 1st of `year`.
fn days_of_year_start(year: i64) -> i64 {
    // Inverse of civil_from_days for (year, 1, 1).
    let y = year - 1; // January counts as month 13 of the previous year
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * 10 + 2) / 5; // March-based day of year of January 1st
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_chatml() {
        let msgs = [ChatMessage::new("user", "Hi")];
        let out = render(CHATML, &msgs, true, "", "").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = render(CHATML, &msgs, false, "", "").unwrap();
        assert!(out.ends_with("Hi<|im_end|>\n"));
    }

    #[test]
    fn gemma_style_with_bos_methods_and_blocks() {
        // Gemma's template shape: bos, raise_exception, python string methods,
        // and block tags whose newlines trim_blocks removes.
        let t = "{{ bos_token }}{% for message in messages %}\n{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n{{ raise_exception('Conversation roles must alternate') }}{% endif %}\n{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}\n{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}\n{% if add_generation_prompt %}\n{{'<start_of_turn>model\\n'}}{% endif %}\n";
        let msgs = [ChatMessage::new("user", "  Why? ")];
        let out = render(t, &msgs, true, "<bos>", "<eos>").unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n"
        );
        let bad = [ChatMessage::new("assistant", "x")];
        let e = render(t, &bad, true, "<bos>", "<eos>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Conversation roles must alternate"), "{e}");
        let t = "{{ messages[0].content.strip().upper() }}{% if messages[0].content.startswith(' a') %}!{% endif %}";
        let out = render(t, &[ChatMessage::new("user", " ab ")], false, "", "").unwrap();
        assert_eq!(out, "AB!");
    }

    #[test]
    fn loop_controls_and_syntax_errors() {
        let t = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}";
        let msgs = [
            ChatMessage::new("user", "a"),
            ChatMessage::new("assistant", "b"),
        ];
        assert_eq!(render(t, &msgs, false, "", "").unwrap(), "user");
        let e = render("{% for %}", &msgs, false, "", "").unwrap_err();
        assert!(matches!(e, Error::ChatTemplate(_)), "{e}");
    }

    #[test]
    fn strftime() {
        // 2024-07-26 13:05:09 UTC, a Friday, day 208.
        let t = 1_722_000_000 - 1_722_000_000 % 86_400 + 13 * 3600 + 5 * 60 + 9;
        assert_eq!(
            strftime_utc("%d %b %Y %H:%M:%S %A %j %B %y %%", t),
            "26 Jul 2024 13:05:09 Friday 208 July 24 %"
        );
        assert_eq!(strftime_utc("%Y-%m-%d", 0), "1970-01-01");
        assert_eq!(strftime_utc("%Y-%m-%d %j", 951_782_400), "2000-02-29 060");
        assert_eq!(days_of_year_start(1970), 0);
        assert_eq!(days_of_year_start(2000), 10_957);
        let out = render("{{ strftime_now('%Y') }}", &[], false, "", "").unwrap();
        assert!(out.len() == 4 && out.starts_with('2'), "{out}");
    }
}
