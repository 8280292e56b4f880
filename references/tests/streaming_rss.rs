//! With `Pages::Release` the float64 reference leaves no weight pages of the
//! model file mapped once it is done (it holds one chunk at a time); with
//! `Pages::Keep` every page it read stays in RSS. Alone in its test binary:
//! another test mapping files at the same time would blur `RssFile`.

use atenia_engine::exec::decoder::release_weights;
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::model::Model;
use atenia_references::{forward_f64_with, Pages, Streaming};
use atenia_testkit::model_path;

/// This process's file-backed resident memory (`RssFile` of /proc/self/status).
fn rss_file() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("RssFile:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb << 10
}

#[test]
#[cfg(target_os = "linux")]
fn released_pages_leave_rss_and_kept_pages_stay() {
    let path = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    let g = GgufFile::open(&path).unwrap();
    let model = Model::from_gguf(&g, g.storage()).unwrap();
    let w = &model.weights;
    let bytes: usize = w
        .layers
        .iter()
        .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
        .map(|m| m.bytes().len())
        .sum::<usize>()
        + w.output.bytes().len();
    let ids = [1, 504, 3458, 282, 4649, 314];

    w.embed.data().release_storage();
    release_weights(&model);
    let before = rss_file();
    let release = forward_f64_with(&model, &ids, None, &Streaming::release());
    let grew = rss_file().saturating_sub(before);
    eprintln!(
        "released: RssFile grew {} KiB over a pass reading {} KiB of weights",
        grew >> 10,
        bytes >> 10
    );
    assert!(
        grew < 8 << 20,
        "RssFile grew {grew} bytes with the pages released"
    );

    let keep = Streaming {
        pages: Pages::Keep,
        ..Streaming::release()
    };
    let before = rss_file();
    let kept = forward_f64_with(&model, &ids, None, &keep);
    let grew = rss_file().saturating_sub(before);
    eprintln!("kept: RssFile grew {} KiB", grew >> 10);
    assert!(
        grew as usize > bytes / 2,
        "RssFile grew only {grew} bytes of {bytes} with the pages kept"
    );
    assert_eq!(release, kept, "the pages changed the numbers");
}
