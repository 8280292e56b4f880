//! `atenia capabilities`: what this build of the engine can read and run.

use atenia_engine::family::spec::FamilySpec;
use atenia_engine::kernels::Isa;
use atenia_engine::{GgmlType, Result};
use serde_json::{json, Value};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia capabilities\n  \
    atenia capabilities --json\n  \
    atenia capabilities --json | jq -r '.quant_types[].name'")]
pub struct Args {
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// The capabilities as JSON (also what the text form prints).
pub fn collect() -> Value {
    let families: Vec<Value> = FamilySpec::builtin()
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "gguf_architectures": s.gguf_architectures,
                "hf_architectures": s.hf.as_ref().map(|h| h.architectures.clone()).unwrap_or_default(),
                "hf_model_types": s.hf.as_ref().map(|h| h.model_types.clone()).unwrap_or_default(),
            })
        })
        .collect();
    let quant_types: Vec<Value> = GgmlType::ALL
        .iter()
        .map(|t| {
            json!({
                "name": t.name(),
                "ggml_id": t.id(),
                "block_elements": t.block_elems(),
                "block_bytes": t.block_bytes(),
                "bits_per_weight": (t.block_bytes() * 8) as f64 / t.block_elems() as f64,
            })
        })
        .collect();
    let available: Vec<&str> = Isa::available().into_iter().map(Isa::name).collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "families": families,
        "formats": [
            {
                "name": "gguf",
                "versions": [2, 3],
                "what": "a single GGUF file (llama.cpp); weights stay quantized in the memory map",
            },
            {
                "name": "hf",
                "versions": [],
                "what": "a Hugging Face checkpoint directory: config.json, model.safetensors or \
                         model.safetensors.index.json with its shards, tokenizer.json \
                         (and tokenizer_config.json)",
                "dtypes": ["F32", "F16", "BF16"],
            },
        ],
        "quant_types": quant_types,
        "isa": {
            "available": available,
            "selected": Isa::detect().name(),
            "all": ["scalar", "avx2", "avx512"],
        },
    })
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let v = collect();
    if a.json.emit(&v)? {
        return Ok(());
    }
    let mut o = String::new();
    let list = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    outln!(o, "atenia {}", v["version"].as_str().unwrap_or(""));
    outln!(o, "\nModel families:");
    for f in v["families"].as_array().into_iter().flatten() {
        outln!(
            o,
            "  {:<10} GGUF: {:<22} HF: {}",
            f["name"].as_str().unwrap_or(""),
            list(&f["gguf_architectures"]),
            list(&f["hf_architectures"])
        );
    }
    outln!(o, "\nFormats:");
    outln!(o, "  GGUF v2 and v3 files");
    outln!(o, "  Hugging Face checkpoint directories (config.json + safetensors F32/F16/BF16 + tokenizer.json)");
    outln!(o, "\nQuantization types:");
    for t in v["quant_types"].as_array().into_iter().flatten() {
        outln!(
            o,
            "  {:<6} {:>5.2} bits/weight ({} values in {} bytes)",
            t["name"].as_str().unwrap_or(""),
            t["bits_per_weight"].as_f64().unwrap_or(0.0),
            t["block_elements"],
            t["block_bytes"]
        );
    }
    outln!(
        o,
        "\nKernel paths on this CPU: {}",
        list(&v["isa"]["available"])
    );
    outln!(
        o,
        "Selected by default:      {}",
        v["isa"]["selected"].as_str().unwrap_or("")
    );
    super::doctor::print_stdout(&o);
    Ok(())
}
