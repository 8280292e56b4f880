//! `atenia`: run, chat with, and inspect decoder-only language models.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
