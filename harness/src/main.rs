//! `atenia-harness`: checks the engine against references.

mod bench_cmd;
mod compare_cmd;
mod dashboard_cmd;
mod logits;
mod replay_cmd;
mod report_diff_cmd;
mod validate_cmd;

use clap::{Parser, Subcommand};

use atenia_engine::Error;

#[derive(Parser)]
#[command(
    name = "atenia-harness",
    version,
    about = "Check Atenia's numbers against float64 references",
    after_help = "Examples:\n  \
    atenia-harness validate SmolLM2-135M-Instruct.Q4_1.gguf --json-out report.json --html report.html\n  \
    atenia-harness bench SmolLM2-135M-Instruct.Q4_1.gguf --threads 2\n  \
    atenia-harness report-diff reports/validate-smollm2.json report.json\n  \
    atenia-harness logits --model SmolLM2-135M-Instruct.Q4_1.gguf --prompt \"The capital of France is\" --out logits.safetensors\n\n\
Results go to stdout; log lines, progress bars (on a terminal) and errors to stderr.\n\
JSON: --json prints a command's result as one JSON object on stdout instead of the text;\n\
--json-out FILE writes it to FILE (the text still on stdout). validate's old `--json FILE`\n\
still means --json-out FILE. Output paths (--json-out, --html, --out, --record, --trace)\n\
are checked to be writable before the work starts (exit 2 when not).\n\
--threads above 4 per CPU is refused (0 = one per CPU); --memory-budget needs a unit.\n\
`atenia-harness COMMAND --help` shows each command's options and examples."
)]
struct Cli {
    #[command(flatten)]
    log: atenia_engine::cli::ui::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the logits of every position to a safetensors file for outside tools
    Logits(logits::Args),
    /// Check the engine against a reference logits file (exit 0 pass, 1 fail)
    Compare(compare_cmd::Args),
    /// Run the engine and the float64 reference on a prompt set; the ADR-004 gate (exit 0 pass, 1 fail)
    Validate(validate_cmd::Args),
    /// Summarize what changed between two validate reports (JSON)
    ReportDiff(report_diff_cmd::Args),
    /// Measure time to first token, prefill and decode speed (and decode at depth); append to the history
    Bench(bench_cmd::Args),
    /// Render the bench history and the validate reports' drift as one HTML page
    Dashboard(dashboard_cmd::Args),
    /// Replay a decision trace through the memory guard; exit 0 when every decision is the same, 1 at the first difference
    Replay(replay_cmd::Args),
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error[E-PANIC]: internal error: {info}");
        eprintln!(
            "  help: this is a bug in atenia-harness; please report it with the command you ran"
        );
    }));
    let cli = Cli::parse();
    atenia_engine::cli::ui::init(&cli.log);
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Logits(a) => logits::run(a).map(|()| 0),
        Command::Compare(a) => compare_cmd::run(a),
        Command::Validate(a) => validate_cmd::run(a),
        Command::ReportDiff(a) => report_diff_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Dashboard(a) => dashboard_cmd::run(a),
        Command::Replay(a) => replay_cmd::run(a),
    });
    let code = match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            report(&e);
            e.exit_code()
        }
        Err(_) => 101,
    };
    std::process::exit(code);
}

fn report(e: &Error) {
    eprintln!("error[{}]: {e}", e.code());
    eprintln!("  help: {}", e.hint());
}
