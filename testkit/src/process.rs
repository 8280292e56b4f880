//! Running a binary under test: its output as text or JSON, and a run that
//! fails the test when the binary hangs or panics.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A byte stream as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stdout parsed as JSON; on failure the panic shows stdout and stderr.
pub fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&o.stdout),
            text(&o.stderr)
        )
    })
}

/// Runs `exe ARGS` with no stdin and returns its output and how long it
/// took. A run past `hang` is killed and fails the test (a hang detector,
/// not a speed check: leave room for a loaded CI machine), and so does an
/// internal panic (exit 101 or `E-PANIC`).
pub fn run_bounded(exe: &str, args: &[&str], hang: Duration) -> (Output, Duration) {
    let t0 = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
    // Drain both pipes while waiting, so a chatty child cannot block on a full pipe.
    let drain = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut r = r;
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > hang {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{exe} {args:?} hung (killed after {hang:?})");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let o = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    let e = text(&o.stderr);
    assert!(
        !e.contains("E-PANIC") && o.status.code() != Some(101),
        "{exe} {args:?} panicked: {e}"
    );
    (o, t0.elapsed())
}
