//! `atenia generate`.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use atenia_engine::cli::args;
use atenia_engine::exec::decoder::Session;
use atenia_engine::exec::generate::{
    context_full_note, generate, ContextPlan, StopReason, Timings,
};
use atenia_engine::exec::sampler::{Sampler, SamplerConfig};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::open::{Loaded, TokenizerLoad};
use atenia_engine::model::ModelConfig;
use atenia_engine::text::chat_template::ChatMessage;

/// Sampling flags shared by `generate` and `chat` (llama.cpp's names and defaults).
#[derive(clap::Args)]
#[command(next_help_heading = "Sampling")]
pub struct SamplingArgs {
    /// Sampling temperature, ≥ 0; 0 picks the most likely token every time (greedy)
    #[arg(long, default_value_t = 0.8, value_name = "T", allow_negative_numbers = true, value_parser = args::parse_temperature)]
    pub temperature: f32,
    /// Sample only among the K most likely tokens (0 = all)
    #[arg(long, default_value_t = 40, value_name = "K", allow_negative_numbers = true, value_parser = args::parse_top_k)]
    pub top_k: usize,
    /// Sample only among the most likely tokens whose probabilities sum to P, in (0, 1] (1 = all)
    #[arg(long, default_value_t = 0.95, value_name = "P", allow_negative_numbers = true, value_parser = args::parse_top_p)]
    pub top_p: f32,
    /// Drop tokens less likely than P times the most likely one, in [0, 1] (0 = off)
    #[arg(long, default_value_t = 0.05, value_name = "P", allow_negative_numbers = true, value_parser = args::parse_min_p)]
    pub min_p: f32,
    /// Penalize tokens seen in the last --repeat-last-n tokens, > 0 (1 = off)
    #[arg(long, default_value_t = 1.0, value_name = "R", allow_negative_numbers = true, value_parser = args::parse_repeat_penalty)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at
    #[arg(long, default_value_t = 64, value_name = "N", allow_negative_numbers = true, value_parser = args::parse_repeat_last_n)]
    pub repeat_last_n: usize,
    /// Random seed; the same seed, settings and input give the same text.
    /// -1 draws a random one (reported on stderr, and as `seed` in JSON)
    #[arg(short, long, default_value = "0", value_name = "S", allow_negative_numbers = true, value_parser = args::parse_seed)]
    pub seed: args::Seed,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        if self.seed.random {
            tracing::info!(
                seed = self.seed.value,
                "seed {0} (random; --seed {0} repeats this run)",
                self.seed.value
            );
        }
        SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed.value,
        }
    }
}
use atenia_engine::cli::args::GuardArgs;
use atenia_engine::guard::wiring::RunGuard;
use atenia_engine::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Stream the text to stdout; timings go to stderr
    Text,
    /// Print one JSON object when done
    Json,
}

#[derive(clap::Args)]
#[command(mut_arg("ctx_size", |a| a.help(
    "Context size in tokens (0 = prompt + max tokens, capped by the model's trained context). \
     Above the trained context: a warning. The KV cache it takes is printed before it is allocated"
)))]
#[command(after_help = "Examples:\n  \
    atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"The capital of France is\" -n 20 --temperature 0\n  \
    atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"Why is the sky blue?\" --chat\n  \
    atenia generate -m model.gguf -p \"Once upon a time\" --temperature 0.7 --top-p 0.9 --seed 42 --output json\n\n\
    Why generation stopped (`stop:` on stderr, `stop_reason` in JSON, the `stop` event of --trace):\n  \
    eos           the model ended its text (end-of-generation token)\n  \
    max_tokens    -n tokens were generated\n  \
    context_full  every position of the context is used (see --ctx-size)\n  \
    interrupted   stdout was closed\n\n\
    A prompt longer than the context is refused (exit 2) before anything runs. When generation\n\
    stops inside a multi-byte character, its bytes are held back, not printed as U+FFFD\n\
    (JSON: `incomplete_bytes`).")]
pub struct Args {
    /// Model: a GGUF file or a Hugging Face checkpoint directory
    #[arg(short, long, value_name = "MODEL")]
    pub model: PathBuf,
    /// The prompt text
    #[arg(short, long, value_name = "TEXT")]
    pub prompt: String,
    /// Most tokens to generate (fewer when the context fills first: stop reason context_full)
    #[arg(short = 'n', long, default_value_t = 128, value_name = "N")]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Wrap the prompt in the model's chat template as a user message
    #[arg(long)]
    pub chat: bool,
    /// A system message for --chat
    #[arg(long, value_name = "TEXT", requires = "chat")]
    pub system: Option<String>,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    #[command(flatten)]
    pub ctx_size: atenia_engine::cli::args::CtxSizeArgs,
    #[command(flatten)]
    pub isa: atenia_engine::cli::args::IsaArgs,
    /// Output format (`--output json` is the same as --json)
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub json: args::JsonArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// Generated tokens between two guard readings.
pub const GUARD_EVERY: u64 = 16;

/// One line of memory telemetry for stderr.
pub fn memory_line(loaded: &Loaded, budget: Option<u64>) -> String {
    use atenia_engine::memory::placement::format_size;
    let v = loaded.model.memory.stats.to_json(budget);
    let b = |k: &str| v[k].as_u64().map_or("-".to_string(), format_size);
    format!(
        "[memory: budget {} + overhead {} | peak RSS {} | {} mapped, {} streamed/pass | read-ahead hit {} | I/O wait {:.1} ms, compute {:.1} ms]",
        b("budget_bytes"),
        b("fixed_overhead_bytes"),
        b("peak_rss_bytes"),
        b("mapped_bytes"),
        b("streamed_bytes_per_pass"),
        v["readahead_hit_rate"].as_f64().map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r)),
        v["io_wait_ms"].as_f64().unwrap_or(0.0),
        v["compute_ms"].as_f64().unwrap_or(0.0),
    )
}

/// Turns the prompt into token ids, through the chat template when asked.
pub fn prompt_ids(
    loaded: &Loaded,
    prompt: &str,
    chat: bool,
    system: Option<&str>,
) -> Result<Vec<u32>> {
    let tok = loaded.tokenizer()?;
    if !chat {
        return tok.encode(prompt, true);
    }
    let mut messages = vec![];
    if let Some(s) = system {
        messages.push(ChatMessage::new("system", s));
    }
    messages.push(ChatMessage::new("user", prompt));
    tok.apply_chat_template(&messages, true)
}

/// Bytes as lowercase hex pairs separated by spaces (`f0 9f 98`).
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The context for `ids` prompt tokens and `-n` more: chosen, and what it
/// means said (over the trained context, too short for `-n`, its KV cache).
fn context_plan(a: &Args, config: &ModelConfig, prompt_len: usize) -> Result<ContextPlan> {
    let plan = ContextPlan::for_generate(
        config.context_length,
        prompt_len,
        a.max_tokens,
        a.ctx_size.ctx_size,
    )?;
    let capacity = plan.capacity;
    if let Some(w) = plan.over_trained_warning() {
        tracing::warn!("{w}");
    }
    let max_generated = plan.max_generated(prompt_len);
    if max_generated < a.max_tokens {
        tracing::info!(
            "[the prompt's {} tokens and -n {} need more than the {capacity} positions of the context: generation stops at context_full after at most {max_generated} tokens]",
            prompt_len,
            a.max_tokens
        );
    }
    // A context chosen with --ctx-size: its KV cache is stated before it is
    // allocated (and before the guard weighs it). JSON always has the size.
    if a.ctx_size.ctx_size > 0 {
        tracing::info!("{}", plan.kv_cache_line(config));
    }
    Ok(plan)
}

/// The text output's end: the held tail of the text, a newline, and the
/// timings (and the memory line under a budget) on stderr.
fn print_text(
    tail: &str,
    incomplete_note: Option<&str>,
    reason: StopReason,
    t: &Timings,
    rt: &Runtime,
    loaded: &Loaded,
) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(tail.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    if let Some(n) = incomplete_note {
        tracing::info!("{n}");
    }
    tracing::info!(
        prompt_tokens = t.prompt_tokens,
        generated_tokens = t.generated_tokens,
        ttft_ms = t.ttft_ms,
        prefill_tokens_per_s = t.prefill_tokens_per_s(),
        decode_tokens_per_s = t.decode_tokens_per_s(),
        stop_reason = reason.as_str(),
        "[{} prompt tokens: {:.1} tok/s prefill, ttft {:.1} ms | {} generated: {:.1} tok/s decode | stop: {} | {} threads, {}]",
        t.prompt_tokens,
        t.prefill_tokens_per_s(),
        t.ttft_ms,
        t.generated_tokens,
        t.decode_tokens_per_s(),
        reason,
        rt.threads(),
        rt.isa
    );
    let budget = loaded.model.memory.budget();
    if budget.is_some() {
        tracing::info!("{}", memory_line(loaded, budget));
    }
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let output = if a.json.json { Output::Json } else { a.output };
    let sampler_config = a.sampling.config();
    let mut sampler = Sampler::new(sampler_config)?;
    let rt = a.isa.runtime(&a.threads)?;
    let loaded = atenia_engine::cli::ui::load_model(&a.model, TokenizerLoad::Now)?;
    let ids = prompt_ids(&loaded, &a.prompt, a.chat, a.system.as_deref())?;
    if ids.is_empty() {
        return Err(Error::argument("--prompt", "the prompt gives no tokens"));
    }
    let config = &loaded.model.config;
    let plan = context_plan(&a, config, ids.len())?;
    let capacity = plan.capacity;
    // The memory guard: a reading and a decision at start (refuse, proceed, or
    // proceed under a tightened budget), then one every GUARD_EVERY tokens.
    let mut guard = RunGuard::start(
        &loaded.model,
        a.guard
            .options(capacity, rt.threads(), "atenia generate", GUARD_EVERY),
    )?;
    let mut session = Session::new(&loaded.model, &rt, capacity)?;
    let mut n_tokens = 0u64;
    let tok = loaded.tokenizer()?;
    let mut stream = tok.stream_decoder();
    let stdout = std::io::stdout();
    let text_mode = output == Output::Text;
    // The text so far (what --json and --json-out report), streamed or not.
    let mut streamed = String::new();
    let mut on_token = |id: u32| -> Result<bool> {
        n_tokens += 1;
        guard.progress(n_tokens)?;
        let piece = stream.step(id)?;
        streamed.push_str(&piece);
        if text_mode {
            let mut out = stdout.lock();
            // A closed pipe (e.g. `| head`) ends generation quietly.
            if out
                .write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let (generated, reason, t) = generate(
        &mut session,
        &ids,
        a.max_tokens,
        &mut sampler,
        &|id| tok.is_end_of_generation(id),
        &mut on_token,
    )?;
    guard.stop(reason, generated.len() as u64)?;
    // A generation cut inside a multi-byte character: those bytes are held
    // back (reported, never printed as U+FFFD).
    let (tail, incomplete) = stream.finish_held();
    let incomplete_note = (!incomplete.is_empty()).then(|| {
        format!(
            "[generation stopped inside a multi-byte character: {} byte(s) held back: {}]",
            incomplete.len(),
            hex(&incomplete)
        )
    });
    if reason == StopReason::ContextFull {
        tracing::info!(
            "[{}]",
            context_full_note(
                capacity,
                plan.trained,
                "shorten the prompt or raise --ctx-size"
            )
        );
    }
    streamed.push_str(&tail);
    let v = serde_json::json!({
        "model": loaded.path.display().to_string(),
        "prompt_ids": ids,
        "token_ids": generated,
        "text": streamed,
        "incomplete_bytes": incomplete,
        "stop_reason": reason,
        "seed": a.sampling.seed.value,
        "prompt_tokens": t.prompt_tokens,
        "generated_tokens": t.generated_tokens,
        "ttft_ms": t.ttft_ms,
        "prefill_tokens_per_s": t.prefill_tokens_per_s(),
        "decode_tokens_per_s": t.decode_tokens_per_s(),
        "ctx_size": capacity,
        "trained_context": plan.trained,
        "kv_cache_bytes": plan.kv_cache_bytes(config),
        "threads": rt.threads(),
        "isa": rt.isa.name(),
        "memory": loaded.model.memory.stats.to_json(loaded.model.memory.budget()),
    });
    match output {
        Output::Text => print_text(&tail, incomplete_note.as_deref(), reason, &t, &rt, &loaded),
        Output::Json => {
            atenia_engine::outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    // `--json-out FILE`: the same object, whatever went to stdout.
    a.json.write_file(&v)?;
    Ok(())
}
