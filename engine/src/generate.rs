//! The generation loop: prefill the prompt in one pass, then decode one token
//! at a time through the KV cache, sampling each next token.

use std::time::Instant;

use crate::decoder::{Logits, Session};
use crate::error::Result;
use crate::sampler::Sampler;

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token (not included in the output).
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context is full.
    ContextFull,
    /// The caller asked to stop (e.g. Ctrl-C).
    Interrupted,
}

/// Timings of one generation, measured with a monotonic clock.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Generated tokens, the first one (sampled from the prefill) included.
    pub generated_tokens: usize,
    /// Prompt submitted to first token sampled.
    pub ttft_ms: f64,
    pub prefill_ms: f64,
    /// Time spent in single-token forward passes and their sampling.
    pub decode_ms: f64,
    /// Single-token forward passes run.
    pub decode_steps: usize,
}

impl Timings {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        per_s(self.prompt_tokens, self.prefill_ms)
    }
    pub fn decode_tokens_per_s(&self) -> f64 {
        per_s(self.decode_steps, self.decode_ms)
    }
}

fn per_s(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 / (ms / 1000.0)
    } else {
        0.0
    }
}

/// What [`generate`] tells its caller after each token; returning `false` stops.
pub type OnToken<'a> = dyn FnMut(u32) -> Result<bool> + 'a;

/// Runs `prompt` (appended to whatever the session already holds) and
/// generates up to `max_tokens` tokens. `is_stop` marks end-of-generation ids.
/// Returns the generated ids (stop token excluded), why it stopped, and timings.
pub fn generate(
    session: &mut Session<'_>,
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    is_stop: &dyn Fn(u32) -> bool,
    on_token: &mut OnToken<'_>,
) -> Result<(Vec<u32>, StopReason, Timings)> {
    let mut t = Timings {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    let mut history: Vec<u32> = Vec::with_capacity(prompt.len() + max_tokens);
    history.extend_from_slice(prompt);
    let mut out = Vec::new();
    let mut generated = Vec::with_capacity(max_tokens);
    if max_tokens == 0 {
        return Ok((generated, StopReason::MaxTokens, t));
    }
    let start = Instant::now();
    session.forward(prompt, Logits::Last, &mut out)?;
    let mut next = sampler.sample(&mut out, &history);
    t.prefill_ms = ms(start);
    t.ttft_ms = t.prefill_ms;
    let mut decode_start = Instant::now();
    let reason = loop {
        if is_stop(next) {
            break StopReason::EndOfGeneration;
        }
        generated.push(next);
        history.push(next);
        t.generated_tokens += 1;
        // Time spent in the caller (printing) is not decode time.
        t.decode_ms += ms(decode_start);
        let go_on = on_token(next)?;
        decode_start = Instant::now();
        if !go_on {
            break StopReason::Interrupted;
        }
        if generated.len() >= max_tokens {
            break StopReason::MaxTokens;
        }
        if session.position() >= session.capacity() {
            break StopReason::ContextFull;
        }
        session.forward(&[next], Logits::Last, &mut out)?;
        next = sampler.sample(&mut out, &history);
        t.decode_steps += 1;
    };
    t.decode_ms += ms(decode_start);
    Ok((generated, reason, t))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
