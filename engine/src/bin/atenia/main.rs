//! `atenia`: run, chat with, and inspect decoder-only language models.
//!
//! The binary only parses arguments and prints (`cli/`, one file a command);
//! the work is the library's, and the flags both binaries share are
//! `atenia_engine::cli`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
