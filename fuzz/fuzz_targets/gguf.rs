//! A GGUF file: the header/metadata/tensor-table parser on the bytes, then the
//! whole load (model plan, tokenizer from metadata) and one token.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if atenia_engine::formats::gguf::parse_bytes(data).is_err() {
        return;
    }
    let path = common::scratch().join("model.gguf");
    std::fs::write(&path, data).expect("write scratch file");
    common::load_and_run(&path);
});
