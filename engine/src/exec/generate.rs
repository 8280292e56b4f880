//! The generation loop: prefill the prompt in one pass, then decode one token
//! at a time through the KV cache, sampling each next token.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::exec::decoder::{Logits, Session};
use crate::exec::sampler::Sampler;
use crate::model::types::ModelConfig;

/// Why generation stopped. One spelling everywhere ([`StopReason::as_str`]):
/// the stderr timing lines of `generate` and `chat`, `stop_reason` in
/// `--output json`, and the `end` event of a `--trace` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StopReason {
    /// The model produced an end-of-generation token (not included in the
    /// output): `eos`.
    #[serde(rename = "eos")]
    EndOfGeneration,
    /// `max_tokens` were generated: `max_tokens`.
    #[serde(rename = "max_tokens")]
    MaxTokens,
    /// Every position of the context is used: `context_full`.
    #[serde(rename = "context_full")]
    ContextFull,
    /// The caller asked to stop (Ctrl-C, a closed stdout): `interrupted`.
    #[serde(rename = "interrupted")]
    Interrupted,
}

impl StopReason {
    pub const ALL: [StopReason; 4] = [
        StopReason::EndOfGeneration,
        StopReason::MaxTokens,
        StopReason::ContextFull,
        StopReason::Interrupted,
    ];

    /// The one spelling of this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfGeneration => "eos",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Interrupted => "interrupted",
        }
    }

    /// The reason spelled `s`, if it is one.
    pub fn from_name(s: &str) -> Option<StopReason> {
        StopReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The note printed when a run stops at [`StopReason::ContextFull`], the same
/// in `generate` and `chat`.
pub fn context_full_note(capacity: usize, trained: usize, fix: &str) -> String {
    format!(
        "context full: all {capacity} positions of the context are used (the model was trained on {trained}); {fix}"
    )
}

/// How many positions a session holds, decided before anything is allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextPlan {
    /// Positions of the KV cache.
    pub capacity: usize,
    /// The model's context length (rope scaling in its configuration included).
    pub trained: usize,
}

impl ContextPlan {
    /// Positions for `generate`: `ctx_size` when given (non-zero), else the
    /// prompt plus `max_tokens` capped at the trained context. A prompt that
    /// does not fit is an `E-ARG` error naming the numbers and the fix.
    pub fn for_generate(
        trained: usize,
        prompt_tokens: usize,
        max_tokens: usize,
        ctx_size: usize,
    ) -> Result<ContextPlan> {
        let capacity = if ctx_size > 0 {
            if prompt_tokens > ctx_size {
                return Err(Error::argument(
                    "--ctx-size",
                    format!(
                        "the prompt has {prompt_tokens} tokens but --ctx-size {ctx_size} holds only {ctx_size} positions \
                         (and -n asks for {max_tokens} more); raise --ctx-size (up to the trained context of {trained}) \
                         or shorten the prompt"
                    ),
                ));
            }
            ctx_size
        } else {
            if prompt_tokens > trained {
                return Err(Error::argument(
                    "--prompt",
                    format!(
                        "the prompt has {prompt_tokens} tokens but the model's context holds {trained} (and -n asks for {max_tokens} more); \
                         shorten the prompt to at most {} tokens so that {max_tokens} more fit, or pass --ctx-size above {trained} \
                         to run past the trained context (output usually degrades there)",
                        trained.saturating_sub(max_tokens).max(1)
                    ),
                ));
            }
            prompt_tokens.saturating_add(max_tokens).min(trained)
        };
        Ok(ContextPlan { capacity, trained })
    }

    /// Positions for `chat`: `ctx_size` when given, else the trained context
    /// capped at `default_cap`.
    pub fn for_chat(trained: usize, ctx_size: usize, default_cap: usize) -> ContextPlan {
        let capacity = if ctx_size > 0 {
            ctx_size
        } else {
            trained.min(default_cap)
        };
        ContextPlan { capacity, trained }
    }

    /// At most this many tokens can be generated after `prompt_tokens` before
    /// [`StopReason::ContextFull`] (the first one comes from the prefill; the
    /// last one is never written to the cache).
    pub fn max_generated(&self, prompt_tokens: usize) -> usize {
        (self.capacity + 1).saturating_sub(prompt_tokens)
    }

    /// The warning for a context above the trained one, if it is.
    pub fn over_trained_warning(&self) -> Option<String> {
        (self.capacity > self.trained).then(|| {
            format!(
                "--ctx-size {} is above the model's trained context of {} positions, and no rope scaling in its \
                 configuration extends it: positions past {} were never seen in training and the output usually degrades there",
                self.capacity, self.trained, self.trained
            )
        })
    }

    /// Bytes of the KV cache for this plan.
    pub fn kv_cache_bytes(&self, config: &ModelConfig) -> u64 {
        crate::exec::kv_cache::bytes_for(config.n_layers, self.capacity, config.kv_dim())
    }

    /// The line stating the KV cache's size and how it is computed, printed
    /// before the cache is allocated.
    pub fn kv_cache_line(&self, config: &ModelConfig) -> String {
        format!(
            "[context {} positions (trained {}) | KV cache {} = {} layers × {} positions × {} (kv dim) × 2 (K, V) × {} bytes (f32)]",
            self.capacity,
            self.trained,
            crate::memory::placement::format_size(self.kv_cache_bytes(config)),
            config.n_layers,
            self.capacity,
            config.kv_dim(),
            crate::exec::kv_cache::ELEMENT_BYTES,
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_round_trip_their_one_spelling() {
        for r in StopReason::ALL {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json, r.as_str());
            assert_eq!(StopReason::from_name(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(StopReason::from_name("EndOfGeneration"), None);
    }

    #[test]
    fn context_plans_fit_the_prompt_or_say_why_not() {
        // No --ctx-size: prompt + n, capped at the trained context.
        let p = ContextPlan::for_generate(8192, 10, 20, 0).unwrap();
        assert_eq!((p.capacity, p.max_generated(10)), (30, 21));
        let p = ContextPlan::for_generate(8192, 8000, 500, 0).unwrap();
        assert_eq!((p.capacity, p.max_generated(8000)), (8192, 193));
        assert_eq!(p.over_trained_warning(), None);
        let e = ContextPlan::for_generate(8192, 10_000, 128, 0).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("10000 tokens") && e.contains("8192") && e.contains("128"),
            "{e}"
        );
        // A prompt of exactly the context fits and leaves one token.
        let p = ContextPlan::for_generate(8192, 8192, 5, 0).unwrap();
        assert_eq!(p.max_generated(8192), 1);
        // --ctx-size: taken as given, refused below the prompt, warned above training.
        let e = ContextPlan::for_generate(8192, 200, 5, 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ctx-size 100 holds only 100"), "{e}");
        let p = ContextPlan::for_generate(8192, 10, 5, 9000).unwrap();
        assert_eq!(p.capacity, 9000);
        assert!(p
            .over_trained_warning()
            .unwrap()
            .contains("above the model's trained context of 8192"));
        let p = ContextPlan::for_chat(8192, 0, 4096);
        assert_eq!(p.capacity, 4096);
        assert_eq!(ContextPlan::for_chat(2048, 0, 4096).capacity, 2048);
        assert_eq!(crate::exec::kv_cache::bytes_for(30, 300, 192), 13_824_000);
        assert_eq!(
            crate::exec::kv_cache::bytes_for(usize::MAX, usize::MAX, 2),
            u64::MAX
        );
    }
}
