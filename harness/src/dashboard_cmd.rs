//! `atenia-harness dashboard` (command line).

use std::path::{Path, PathBuf};

use atenia_engine::{Error, Result};
use atenia_harness::bench::read_history;
use atenia_harness::dashboard::{render, Drift};

#[derive(clap::Args)]
#[command(
    after_help = "Renders the bench history (one `atenia-harness bench` record per line) as one\n\
self-contained HTML page (inline SVG, no scripts, no external assets): prefill and decode tok/s,\n\
time to first token and decode at depth by commit, one line per model (a peer engine's figures,\n\
from records made with `bench --peer`, beside atenia's), and beside them the max abs logit\n\
difference of the latest validate reports. Without --validate, every validate-*.json next to the\n\
history file is used. The page depends on its inputs only (no clock): CI regenerates the committed\n\
reports/dashboard.html (scripts/ci-report.sh) and a test checks that it matches.\n\
Exit code 0 when the page was written, 2 when the history is missing or a given report is not JSON.\n\
Examples:\n  atenia-harness dashboard\n  \
atenia-harness dashboard --history reports/bench-history.jsonl --validate reports/validate-*.json --out reports/dashboard.html"
)]
pub struct Args {
    /// The bench history (JSON lines, schema atenia.bench/1)
    #[arg(
        long,
        default_value = "reports/bench-history.jsonl",
        value_name = "FILE"
    )]
    pub history: PathBuf,
    /// Validate reports (JSON, schema atenia.validate/1) whose drift is shown
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub validate: Vec<PathBuf>,
    /// Where to write the page
    #[arg(long, default_value = "reports/dashboard.html", value_name = "OUT")]
    pub out: PathBuf,
}

/// `validate-*.json` files in `dir`, sorted by name.
fn default_reports(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("validate-") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn run(a: Args) -> Result<i32> {
    atenia_engine::cli::args::check_writable(&a.out, "--out")?;
    let (records, skipped) = read_history(&a.history)?;
    let mut notes = Vec::new();
    if skipped > 0 {
        notes.push(format!(
            "{skipped} line(s) of {} are not atenia.bench/1 records and were skipped.",
            a.history.display()
        ));
    }
    let reports = if a.validate.is_empty() {
        let dir = a
            .history
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        default_reports(dir)
    } else {
        a.validate.clone()
    };
    let mut drifts = Vec::new();
    for p in &reports {
        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::argument("--validate", format!("{} is not JSON: {e}", p.display()))
        })?;
        match Drift::from_report(&p.display().to_string(), &v) {
            Some(d) => drifts.push(d),
            None => notes.push(format!(
                "{} is not a validate report (schema atenia.validate/*); skipped.",
                p.display()
            )),
        }
    }
    // Models in the order the history first shows them (so that a model
    // has the same colour in every chart), then the others.
    let order = |file: &str| {
        records
            .iter()
            .position(|r| r.model.file == file)
            .unwrap_or(usize::MAX)
    };
    drifts.sort_by_key(|d| order(&d.model_file));
    let page = render(&records, &drifts, &notes);
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(&a.out, page).map_err(|e| Error::io(&a.out, e))?;
    atenia_engine::outln!(
        "wrote {} ({} records, {} validate reports)",
        a.out.display(),
        records.len(),
        drifts.len()
    );
    for n in &notes {
        tracing::info!("note: {n}");
    }
    Ok(0)
}
