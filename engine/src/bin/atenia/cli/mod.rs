//! The command line. Library errors become `error[E-CODE]` messages here and
//! exit codes: 0 ok, 1 environment, 2 bad input or bad file, 3 runtime failure,
//! 101 an internal panic caught at the boundary.

/// `println!` / `print!` into a `String` (written out at once by
/// [`doctor::print_stdout`], which survives a closed pipe). One definition
/// for every command file below.
macro_rules! outln {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}
#[allow(unused_macros)]
macro_rules! out {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($o, $($t)*);
    }};
}

mod capabilities;
mod chat;
mod convert;
mod diagnose;
mod doctor;
mod generate;
mod inspect;
mod load;

use clap::{Parser, Subcommand};

use atenia_engine::Error;

#[derive(Parser)]
#[command(
    name = "atenia",
    version,
    about = "Run decoder-only language models with float64-checked numerics",
    long_about = "Atenia runs decoder-only language models on the CPU: GGUF files (llama.cpp's format, \
                  quantized or not) and Hugging Face checkpoint directories (config.json, safetensors, \
                  tokenizer.json). Every kernel is checked against float64 and MPFR references; \
                  `atenia-harness validate MODEL` runs the numeric gate on a model.",
    after_help = "Examples:\n  \
    atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"The capital of France is\" -n 20 --temperature 0\n  \
    atenia chat -m SmolLM2-135M-Instruct.Q4_1.gguf\n  \
    atenia diagnose model.gguf\n  \
    atenia doctor\n\n\
JSON: --json prints a command's result as one JSON object on stdout; --json-out FILE\n\
writes it to FILE (checked before the work starts). `atenia COMMAND --help` shows\n\
each command's options and examples.",
    after_long_help = "Examples:\n  \
    atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"The capital of France is\" -n 20 --temperature 0\n  \
    atenia generate -m model.gguf -p \"Why is the sky blue?\" --chat --json\n  \
    atenia chat -m SmolLM2-135M-Instruct.Q4_1.gguf --temperature 0\n  \
    atenia diagnose model.gguf          # can it run here, and how much memory will it take?\n  \
    atenia doctor                       # what this machine offers the engine\n  \
    atenia -q generate -m model.gguf -p \"Hi\" --json | jq -r .text\n  \
    atenia --log-format json -v generate -m model.gguf -p \"Hi\" 2> log.jsonl\n\n\
Output: results (generated text, reports, JSON) go to stdout, everything else\n\
(timings, log lines, progress bars, errors) to stderr. Progress bars appear only\n\
when stderr is a terminal. A closed stdout (`| head`) ends a command quietly.\n\n\
JSON: every command that reports takes --json (one JSON object on stdout instead\n\
of the text; generate's --output json is the same) and --json-out FILE (the object\n\
written to FILE, the text still on stdout). Output paths (--json-out, --trace,\n\
convert --out) are checked to be writable before any work starts.\n\n\
Mistakes get exit 2 at once: --threads above 4 per CPU is refused (0 = one per\n\
CPU); sampling values outside their range, negative ones included, are refused\n\
(--seed -1 draws a random seed); --memory-budget needs a unit (16MiB, 1048576B),\n\
and a budget above the memory available is lowered with a warning.\n\n\
Errors read `error[E-CODE]: what happened` followed by a `help:` line.\n\
Exit codes: 0 ok, 1 environment (memory, permissions), 2 bad input or bad\n\
model file, 3 runtime failure, 101 an internal error (a bug: please report it)."
)]
struct Cli {
    #[command(flatten)]
    log: atenia_engine::cli::ui::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt (streams to stdout)
    Generate(generate::Args),
    /// Chat with a model through its chat template (a REPL on stdin/stdout)
    Chat(chat::Args),
    /// Explain a model without running it: format, shape, tensors, tokenizer, memory, can it run
    Diagnose(diagnose::Args),
    /// Check this machine: CPU features, kernel path, threads, memory, model cache
    Doctor(doctor::Args),
    /// List the families, formats, quantization types and kernel paths this build supports
    Capabilities(capabilities::Args),
    /// Show what a GGUF file or checkpoint holds and draft a family spec for it
    Inspect(inspect::Args),
    /// Check a family spec (YAML) on a model: load it, run one forward pass, show the next tokens
    Load(load::Args),
    /// Convert a GGUF file to a Hugging Face checkpoint directory (safetensors)
    Convert(convert::Args),
}

/// Prints an error the way every command does.
pub fn report(e: &Error) {
    eprintln!("error[{}]: {e}", e.code());
    eprintln!("  help: {}", e.hint());
}

pub fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error[E-PANIC]: internal error: {info}");
        eprintln!("  help: this is a bug in atenia; please report it with the command you ran");
    }));
    let cli = Cli::parse();
    atenia_engine::cli::ui::init(&cli.log);
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Load(a) => load::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Diagnose(a) => diagnose::run(a),
        Command::Capabilities(a) => capabilities::run(a),
    });
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            report(&e);
            e.exit_code()
        }
        Err(_) => 101,
    }
}
