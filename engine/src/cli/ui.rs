//! What the command-line tools (`atenia`, `atenia-harness`) share about their
//! terminal: log lines through `tracing` on stderr, progress bars on stderr
//! when it is a terminal, and results on stdout that survive a closed pipe.
//!
//! The configuration is passed in once ([`init`], from the global `-q`, `-v`,
//! `--log-format` flags); nothing here reads environment variables.

use std::borrow::Cow;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::error::Result;
use crate::model::open::{Loaded, TokenizerLoad};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines for people
    #[default]
    Text,
    /// One JSON object per line (level, message, fields, timestamp) for machines
    Json,
}

/// The global logging flags of both binaries.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// Print only errors on stderr: no timings, notes, warnings or progress bars
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Logging"
    )]
    pub quiet: bool,
    /// Print more on stderr: -v adds debug lines (what was loaded, how long it took), -vv traces
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Logging")]
    pub verbose: u8,
    /// Log lines on stderr as text or as JSON (one object per line; no progress bars)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        value_name = "FORMAT",
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The most detailed level that is printed.
    pub fn level(&self) -> Level {
        if self.quiet {
            return Level::ERROR;
        }
        match self.verbose {
            0 => Level::INFO,
            1 => Level::DEBUG,
            _ => Level::TRACE,
        }
    }

    /// Progress bars are drawn only for people: on a terminal, in text format, not with -q.
    pub fn progress(&self, stderr_is_terminal: bool) -> bool {
        stderr_is_terminal && !self.quiet && self.log_format == LogFormat::Text
    }
}

/// Where progress bars are drawn (hidden when they are off). Log lines are
/// written through it so that they appear above a bar instead of through it.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden()))
}

/// Whether progress bars are being drawn (stderr is a terminal, text format, no -q).
pub fn progress_shown() -> bool {
    !bars().is_hidden()
}

/// Sets up logging and progress bars for the process. Call once, first thing
/// in `main`; a second call changes nothing.
pub fn init(args: &LogArgs) {
    let progress = args.progress(std::io::stderr().is_terminal());
    let _ = BARS.set(MultiProgress::with_draw_target(if progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }));
    let builder = tracing_subscriber::fmt()
        .with_max_level(args.level())
        .with_writer(StderrLines);
    let _ = match args.log_format {
        LogFormat::Text => builder
            .event_format(TextFormat {
                verbose: args.verbose > 0,
            })
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Writes one formatted log event to stderr at once, above any progress bar.
struct StderrLines;

/// The buffer of one event; written out when the formatter drops it.
struct EventBuf(Vec<u8>);

impl<'a> MakeWriter<'a> for StderrLines {
    type Writer = EventBuf;
    fn make_writer(&'a self) -> EventBuf {
        EventBuf(Vec::with_capacity(256))
    }
}

impl Write for EventBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuf {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.0);
        // A closed stderr is not worth a panic.
        bars().suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&buf).and_then(|_| err.flush());
        });
    }
}

/// The text format: an info event is its message alone (the lines the tools
/// always printed), a warning reads `warning: …`, an error `error: …`; debug
/// and trace lines name their level and module. Fields follow the message
/// only with -v (the JSON format always carries them).
struct TextFormat {
    verbose: bool,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        match *meta.level() {
            Level::ERROR => write!(w, "error: ")?,
            Level::WARN => write!(w, "warning: ")?,
            Level::INFO => {}
            l => write!(w, "{} {}: ", l.as_str().to_ascii_lowercase(), meta.target())?,
        }
        let mut v = Visitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut v);
        w.write_str(&v.message)?;
        if self.verbose && !v.fields.is_empty() {
            write!(w, " {{{}}}", v.fields.trim_start())?;
        }
        writeln!(w)
    }
}

struct Visitor {
    message: String,
    fields: String,
}

impl tracing::field::Visit for Visitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            use fmt::Write as _;
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// A progress bar or spinner on stderr; does nothing when bars are off
/// (stderr not a terminal, -q, --log-format json). Cleared when dropped.
pub struct Progress(ProgressBar);

impl Progress {
    /// A spinner for work of unknown length.
    pub fn spinner(message: impl Into<Cow<'static, str>>) -> Progress {
        let pb = bars().add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(message);
        pb.enable_steady_tick(Duration::from_millis(100));
        Progress(pb)
    }

    /// A bar for `len` steps.
    pub fn bar(len: u64, message: impl Into<Cow<'static, str>>) -> Progress {
        let pb = bars().add(ProgressBar::new(len));
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_message(message);
        pb.enable_steady_tick(Duration::from_millis(250));
        Progress(pb)
    }

    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        self.0.set_message(message);
    }

    pub fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    pub fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }

    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
        bars().remove(&self.0);
    }
}

/// Opens and loads a model ([`crate::model::open::open`], then
/// [`crate::model::open::Opened::load`]), with a spinner while
/// it loads and a debug line saying what was loaded and how long it took.
pub fn load_model(path: &Path, tokenizer: TokenizerLoad) -> Result<Loaded> {
    let t0 = Instant::now();
    let spinner = Progress::spinner(format!("loading {}", path.display()));
    let loaded = crate::model::open::open(path).and_then(|o| o.load(tokenizer));
    drop(spinner);
    match &loaded {
        Ok(l) => tracing::debug!(
            path = %path.display(),
            name = %l.name,
            family = %l.model.config.family,
            layers = l.model.config.n_layers,
            vocab = l.model.config.vocab,
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "loaded {} ({}) in {:.1} ms",
            path.display(),
            l.name,
            t0.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => tracing::debug!(path = %path.display(), code = e.code(), "loading failed: {e}"),
    }
    loaded
}

/// Writes to stdout and flushes. A closed pipe (`| head`) or any other write
/// error is not a panic: the text is dropped and `false` returned.
pub fn write_stdout(args: fmt::Arguments<'_>) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|_| out.flush()).is_ok()
}

/// `println!` on stdout that survives a closed pipe (see [`write_stdout`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::ui::write_stdout(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::cli::ui::write_stdout(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` on stdout that survives a closed pipe (see [`write_stdout`]).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::ui::write_stdout(format_args!($($t)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_progress_follow_the_flags() {
        let mut a = LogArgs::default();
        assert_eq!(a.level(), Level::INFO);
        assert!(a.progress(true));
        assert!(!a.progress(false));
        a.verbose = 1;
        assert_eq!(a.level(), Level::DEBUG);
        a.verbose = 3;
        assert_eq!(a.level(), Level::TRACE);
        a.log_format = LogFormat::Json;
        assert!(!a.progress(true));
        let q = LogArgs {
            quiet: true,
            ..LogArgs::default()
        };
        assert_eq!(q.level(), Level::ERROR);
        assert!(!q.progress(true));
    }
}
