//! The command line. Library errors become `error[E-CODE]` messages here and
//! exit codes: 0 ok, 1 environment, 2 bad input or bad file, 3 runtime failure,
//! 101 an internal panic caught at the boundary.

mod generate;

use clap::{Parser, Subcommand};

use atenia_engine::Error;

#[derive(Parser)]
#[command(
    name = "atenia",
    version,
    about = "Run decoder-only language models with float64-checked numerics",
    long_about = "Atenia runs decoder-only language models (GGUF files) on the CPU.\n\
                  Every kernel is checked against float64 and MPFR references; see\n\
                  `atenia-harness validate` for the numeric gate.",
    after_help = "Examples:\n  atenia generate -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"The capital of France is\" -n 20 --temperature 0\n  atenia generate -m model.gguf -p \"Why is the sky blue?\" --chat --output json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt (streams to stdout)
    Generate(generate::Args),
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
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Generate(a) => generate::run(a),
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
