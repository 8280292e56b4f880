//! A Hugging Face checkpoint directory whose `tokenizer.json` is the input (the other
//! files are the hostile corpus's valid base): loaded as the CLI loads it,
//! then one token.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::hf_dir_with("tokenizer.json", data);
    common::load_and_run(&dir);
});
