//! `atenia chat`: a conversation on stdin/stdout through the model's chat
//! template, kept in the KV cache across turns.
//!
//! Each turn renders the whole conversation with the template, tokenizes it,
//! and compares it with the ids the session already holds: only the suffix
//! beyond their common prefix is prefilled. When the rendering disagrees with
//! the cache (a reply that re-tokenizes differently, a template that rewrites
//! earlier turns), the session is truncated to the divergence point and
//! re-prefilled from there, so the cache always holds exactly the rendered
//! conversation.

use std::io::{BufRead, IsTerminal, Write};

use rustyline::error::ReadlineError;
use std::path::PathBuf;

use atenia_engine::exec::decoder::Session;
use atenia_engine::exec::generate::{
    context_full_note, generate, ContextPlan, StopReason, Timings,
};
use atenia_engine::exec::sampler::Sampler;
use atenia_engine::model::open::TokenizerLoad;
use atenia_engine::text::chat_template::ChatMessage;
use atenia_engine::text::tokenizer::Tokenizer;
use atenia_engine::{Error, Result};

use atenia_engine::cli::args::GuardArgs;
use atenia_engine::guard::wiring::RunGuard;

use super::generate::{hex, SamplingArgs, GUARD_EVERY};

/// Exit status of Ctrl-C at an empty prompt (128 + SIGINT, as shells use).
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(clap::Args)]
#[command(mut_arg("ctx_size", |a| a.help(
    "Context size in tokens for the whole conversation (0 = the model's, at most 4096)"
)))]
#[command(after_help = "Examples:\n  \
    atenia chat -m SmolLM2-135M-Instruct.Q4_1.gguf\n  \
    atenia chat -m SmolLM2-135M-Instruct.Q4_1.gguf --system \"You are terse.\" --temperature 0\n  \
    printf 'Hi!\\nWhat did I just say?\\n/exit\\n' | atenia chat -m model.gguf -n 64\n\n\
    In the conversation:\n  \
    /reset   forget the conversation and start again at turn 1 (the system message stays)\n  \
    /exit    quit (exit status 0; so does end of input, Ctrl-D)\n  \
    Ctrl-C   stop the reply being written; at an empty prompt, quit with exit status 130\n           \
    (as shells do); on a line being typed, clear it\n\n\
    On a terminal the prompt line is editable (arrows, Home/End, Ctrl-A/E/K/U/W) and Up/Down\n\
    recall this session's earlier lines. When stdin is not a terminal (a pipe, a file),\n\
    plain lines are read, one message each.\n\n\
    Replies go to stdout; prompts and per-turn timings go to stderr. Each turn's `stop:` is\n\
    spelled as in `atenia generate`: eos, max_tokens, context_full, interrupted. When the\n\
    conversation fills the context, the turn says `context full`: /reset or raise --ctx-size.")]
pub struct Args {
    /// Model: a GGUF file or a Hugging Face checkpoint directory (it needs a chat template)
    #[arg(short, long, value_name = "FILE")]
    pub model: PathBuf,
    /// A system message that opens the conversation
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Most tokens per reply
    #[arg(short = 'n', long, default_value_t = 512, value_name = "N")]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    #[command(flatten)]
    pub ctx_size: atenia_engine::cli::args::CtxSizeArgs,
    #[command(flatten)]
    pub isa: atenia_engine::cli::args::IsaArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// Ctrl-C handling without a signal crate: the C library's `signal(3)`
/// (which std already links) installs a handler that only touches atomics
/// (async-signal-safe). While a reply is being written, Ctrl-C sets
/// [`INTERRUPTED`], which the token callback reads to stop that reply; at the
/// prompt it ends the process with status 130, as a shell would.
#[cfg(unix)]
mod sigint {
    use std::sync::atomic::{AtomicBool, Ordering};

    pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    pub static GENERATING: AtomicBool = AtomicBool::new(false);

    const SIGINT: i32 = 2;

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
        fn _exit(status: i32) -> !;
    }

    extern "C" fn on_sigint(_: i32) {
        if GENERATING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        } else {
            // SAFETY: write(2) and _exit(2) are async-signal-safe.
            unsafe {
                write(2, b"\n".as_ptr(), 1);
                _exit(130);
            }
        }
    }

    pub fn install() {
        // SAFETY: the handler only uses async-signal-safe operations.
        unsafe {
            signal(SIGINT, on_sigint);
        }
    }
}

#[cfg(not(unix))]
mod sigint {
    use std::sync::atomic::AtomicBool;
    pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    pub static GENERATING: AtomicBool = AtomicBool::new(false);
    pub fn install() {}
}

use std::sync::atomic::Ordering;

/// What reading one line of input gave.
enum Line {
    Text(String),
    /// End of input (Ctrl-D at an empty prompt): quit with status 0.
    Eof,
    /// Ctrl-C at an empty prompt: quit with [`EXIT_INTERRUPTED`].
    Interrupted,
}

/// Where the user's lines come from: an editor with history when stdin and
/// stdout are a terminal, plain lines otherwise (pipes, files, tests).
enum Input {
    Editor(Box<rustyline::DefaultEditor>),
    Plain {
        lines: std::io::StdinLock<'static>,
        prompt: bool,
    },
}

/// Ctrl-C in the editor: quit at an empty prompt, clear a line being typed.
struct CtrlC;

impl rustyline::ConditionalEventHandler for CtrlC {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: rustyline::RepeatCount,
        _: bool,
        ctx: &rustyline::EventContext<'_>,
    ) -> Option<rustyline::Cmd> {
        Some(if ctx.line().is_empty() {
            rustyline::Cmd::Interrupt
        } else {
            rustyline::Cmd::Kill(rustyline::Movement::WholeBuffer)
        })
    }
}

impl Input {
    fn new() -> Input {
        let stdin = std::io::stdin();
        if stdin.is_terminal() && std::io::stdout().is_terminal() {
            if let Ok(mut ed) = rustyline::DefaultEditor::new() {
                ed.bind_sequence(
                    rustyline::KeyEvent::ctrl('C'),
                    rustyline::EventHandler::Conditional(Box::new(CtrlC)),
                );
                return Input::Editor(Box::new(ed));
            }
        }
        Input::Plain {
            prompt: stdin.is_terminal(),
            lines: stdin.lock(),
        }
    }

    fn read(&mut self) -> Result<Line> {
        match self {
            Input::Editor(ed) => match ed.readline("> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = ed.add_history_entry(line.as_str());
                    }
                    Ok(Line::Text(line))
                }
                Err(ReadlineError::Eof) => Ok(Line::Eof),
                Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
                Err(ReadlineError::Io(e)) => Err(Error::io("<stdin>", e)),
                Err(e) => Err(Error::io("<stdin>", std::io::Error::other(e.to_string()))),
            },
            Input::Plain { lines, prompt } => {
                if *prompt {
                    eprint!("> ");
                    let _ = std::io::stderr().flush();
                }
                let mut line = String::new();
                match lines.read_line(&mut line) {
                    Ok(0) => Ok(Line::Eof),
                    Ok(_) => Ok(Line::Text(line.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => Err(Error::io("<stdin>", e)),
                }
            }
        }
    }
}

/// Length of the common prefix of two id sequences.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

pub fn run(a: Args) -> Result<()> {
    let mut sampler = Sampler::new(a.sampling.config())?;
    if a.max_tokens == 0 {
        return Err(Error::argument("--max-tokens", "must be at least 1"));
    }
    let rt = a.isa.runtime(&a.threads)?;
    let loaded = atenia_engine::cli::ui::load_model(&a.model, TokenizerLoad::Now)?;
    let tok = loaded.tokenizer()?;
    if tok.chat_template.is_none() {
        return Err(Error::ChatTemplate(format!(
            "{} has no chat template; use `atenia generate` for plain completion",
            a.model.display()
        )));
    }
    let config = &loaded.model.config;
    let plan = ContextPlan::for_chat(config.context_length, a.ctx_size.ctx_size, 4096);
    let capacity = plan.capacity;
    if let Some(w) = plan.over_trained_warning() {
        tracing::warn!("{w}");
    }
    // A context chosen with --ctx-size: its KV cache is stated before it is
    // allocated (and before the guard weighs it).
    if a.ctx_size.ctx_size > 0 {
        tracing::info!("{}", plan.kv_cache_line(config));
    }
    // The memory guard: refuse, proceed or tighten at start (the KV cache of
    // the whole context counts), then a reading every GUARD_EVERY tokens.
    let guard = RunGuard::start(
        &loaded.model,
        a.guard
            .options(capacity, rt.threads(), "atenia chat", GUARD_EVERY),
    )?;
    let opening: Vec<ChatMessage> = a
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s.as_str()))
        .collect();
    let mut chat = Conversation {
        tok,
        session: Session::new(&loaded.model, &rt, capacity)?,
        guard,
        plan,
        max_tokens: a.max_tokens,
        generated_total: 0,
        messages: opening.clone(),
        opening,
        held: Vec::new(),
        turn: 0,
    };

    let interactive = std::io::stdin().is_terminal();
    sigint::install();
    if interactive {
        eprintln!(
            "Chatting with {} ({} tokens of context). /reset clears, /exit or Ctrl-D quits, Ctrl-C stops a reply.",
            loaded.name, capacity
        );
    }
    let mut input = Input::new();
    loop {
        let line = match input.read()? {
            Line::Text(t) => t,
            Line::Eof => break,
            Line::Interrupted => {
                let _ = std::io::stdout().lock().flush();
                std::process::exit(EXIT_INTERRUPTED);
            }
        };
        let text = line.as_str();
        match text.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.reset();
                eprintln!("[conversation cleared]");
                continue;
            }
            "/help" => {
                eprintln!("/reset: forget the conversation; /exit: quit; Ctrl-C: stop a reply");
                continue;
            }
            cmd if cmd.starts_with('/') && !cmd.contains(' ') => {
                eprintln!("unknown command {cmd}; /help lists them");
                continue;
            }
            _ => {}
        }
        if chat.turn(text, &mut sampler)? == Flow::Quit {
            break;
        }
    }
    Ok(())
}

/// Whether the conversation goes on after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Next,
    /// stdout was closed.
    Quit,
}

/// A conversation: the messages so far and the session whose KV cache holds
/// exactly their rendering (`held`).
struct Conversation<'m> {
    tok: &'m Tokenizer,
    session: Session<'m>,
    guard: RunGuard<'m>,
    plan: ContextPlan,
    max_tokens: usize,
    /// Tokens generated over the whole conversation (the guard's clock).
    generated_total: u64,
    /// The system message, kept across /reset.
    opening: Vec<ChatMessage>,
    messages: Vec<ChatMessage>,
    /// The ids in the KV cache: always `session.position()` long.
    held: Vec<u32>,
    turn: usize,
}

impl Conversation<'_> {
    /// `/reset`: the opening messages only, an empty cache, turn 1 next.
    fn reset(&mut self) {
        self.messages = self.opening.clone();
        self.held.clear();
        self.session.reset();
        self.turn = 0;
    }

    fn full_note(&self) -> String {
        context_full_note(
            self.plan.capacity,
            self.plan.trained,
            "/reset to start over, or raise --ctx-size",
        )
    }

    /// One turn: the user's `text` added, the conversation rendered, the ids
    /// not already in the cache prefilled, and the reply streamed to stdout.
    /// A turn that fails is reported and taken back; the next can follow.
    fn turn(&mut self, text: &str, sampler: &mut Sampler) -> Result<Flow> {
        self.messages.push(ChatMessage::new("user", text));
        let ids = match self.tok.apply_chat_template(&self.messages, true) {
            Ok(ids) if !ids.is_empty() => ids,
            Ok(_) => {
                self.messages.pop();
                eprintln!("[the template rendered nothing]");
                return Ok(Flow::Next);
            }
            Err(e) => {
                self.messages.pop();
                super::report(&e);
                return Ok(Flow::Next);
            }
        };
        // Reuse the cached prefix; re-prefill from the first id that differs.
        let keep = common_prefix(&self.held, &ids).min(ids.len() - 1);
        let diverged = keep < self.held.len();
        if diverged {
            self.session.truncate(keep);
            self.held.truncate(keep);
        }
        let keep = self.session.position();
        let new = &ids[keep..];
        let capacity = self.plan.capacity;
        if keep + new.len() >= capacity {
            self.messages.pop();
            let e = Error::argument(
                "--ctx-size",
                format!(
                    "{}; this message makes the conversation {} tokens long",
                    self.full_note(),
                    ids.len()
                ),
            );
            super::report(&e);
            return Ok(Flow::Next);
        }
        self.turn += 1;
        let Some(r) = self.reply(new, sampler)? else {
            return Ok(Flow::Next);
        };
        if r.write_failed {
            return Ok(Flow::Quit);
        }
        if !r.incomplete.is_empty() {
            tracing::info!(
                "[the reply stopped inside a multi-byte character: {} byte(s) held back: {}]",
                r.incomplete.len(),
                hex(&r.incomplete)
            );
        }
        self.messages.push(ChatMessage::new("assistant", r.text));
        let (reason, t) = (r.reason, r.timings);
        if reason == StopReason::ContextFull {
            tracing::info!("[{}]", self.full_note());
        }
        tracing::info!(
            "[turn {}: {} new prompt tokens, {keep} reused from the cache{} | {} generated, {:.1} tok/s | stop: {} | {}/{capacity} tokens in context]",
            self.turn,
            new.len(),
            if diverged { " (re-prefilled from the divergence)" } else { "" },
            t.generated_tokens,
            t.decode_tokens_per_s(),
            reason,
            self.session.position(),
        );
        Ok(Flow::Next)
    }

    /// Generates the reply to the prefilled `new` ids, streaming it to
    /// stdout (Ctrl-C stops it). A failed generation is reported and the
    /// user's message taken back, with the cache emptied: `None`.
    fn reply(&mut self, new: &[u32], sampler: &mut Sampler) -> Result<Option<Reply>> {
        let stdout = std::io::stdout();
        let mut stream = self.tok.stream_decoder();
        let mut write_failed = false;
        let mut text = String::new();
        let generated_total = &mut self.generated_total;
        let guard = &mut self.guard;
        let mut on_token = |id: u32| -> Result<bool> {
            *generated_total += 1;
            guard.progress(*generated_total)?;
            let piece = stream.step(id)?;
            text.push_str(&piece);
            let mut out = stdout.lock();
            if out
                .write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                write_failed = true;
                return Ok(false);
            }
            Ok(!sigint::INTERRUPTED.load(Ordering::SeqCst))
        };
        sigint::INTERRUPTED.store(false, Ordering::SeqCst);
        sigint::GENERATING.store(true, Ordering::SeqCst);
        let tok = self.tok;
        let result = generate(
            &mut self.session,
            new,
            self.max_tokens,
            sampler,
            &|id| tok.is_end_of_generation(id),
            &mut on_token,
        );
        sigint::GENERATING.store(false, Ordering::SeqCst);
        let (generated, reason, timings) = match result {
            Ok(r) => r,
            Err(e) => {
                // The cache may hold part of this turn: start the next from scratch.
                self.session.reset();
                self.held.clear();
                self.messages.pop();
                super::report(&e);
                return Ok(None);
            }
        };
        self.guard.stop(reason, generated.len() as u64)?;
        self.held.extend_from_slice(new);
        self.held.extend_from_slice(&generated);
        self.held.truncate(self.session.position());
        // A reply cut inside a multi-byte character: its bytes are held back.
        let (tail, incomplete) = stream.finish_held();
        text.push_str(&tail);
        {
            let mut out = stdout.lock();
            let _ = out.write_all(tail.as_bytes());
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        Ok(Some(Reply {
            text,
            incomplete,
            reason,
            timings,
            write_failed,
        }))
    }
}

/// A reply written out.
struct Reply {
    text: String,
    /// The bytes of a character the reply stopped inside, held back.
    incomplete: Vec<u8>,
    reason: StopReason,
    timings: Timings,
    /// stdout was closed while it was written.
    write_failed: bool,
}
