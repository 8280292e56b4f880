//! The engine reads the memory limit of its cgroup (v1 or v2): a
//! `--memory-budget` above what the cgroup allows is lowered with a warning.
//! Run inside a real cgroup made by `scripts/small-machine.sh` (needs root,
//! as CI and the development machines have).

use std::process::Command;

/// Whether the script said it could not create a cgroup here (a container
/// whose cgroup file system is read-only): the one case these tests cannot
/// check, said on stderr rather than failed.
fn no_cgroups_here(out: &std::process::Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    let cannot = out.status.code() == Some(1) && err.contains("error: cannot create a cgroup at");
    if cannot {
        eprintln!("{err}");
    }
    cannot
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_budget_above_the_cgroup_limit_is_lowered() {
    if !is_root() {
        eprintln!("not root: scripts/small-machine.sh cannot make a cgroup; CI runs this as root");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/small-machine.sh");
    let out = Command::new(script)
        .args(["160MiB", env!("CARGO_BIN_EXE_atenia"), "generate", "-m"])
        .arg(atenia_testkit::smollm2())
        .args([
            "-p",
            "The capital of France is",
            "-n",
            "2",
            "--temperature",
            "0",
        ])
        .args(["--memory-budget", "4GiB"])
        .output()
        .unwrap();
    if no_cgroups_here(&out) {
        return;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("small machine: cgroup v"), "{err}");
    assert!(
        err.contains("--memory-budget 4.0 GiB is more than the")
            && err.contains("(MemAvailable and the cgroup limit): running under"),
        "the cgroup's limit was not read:\n{err}"
    );
}

#[test]
fn doctor_reports_the_limit_of_its_own_cgroup() {
    if !is_root() {
        eprintln!("not root: scripts/small-machine.sh cannot make a cgroup; CI runs this as root");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/small-machine.sh");
    let out = Command::new(script)
        .args(["300MiB", env!("CARGO_BIN_EXE_atenia"), "doctor", "--json"])
        .output()
        .unwrap();
    if no_cgroups_here(&out) {
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["memory"]["cgroup_limit_bytes"], 300 << 20, "{v}");
    assert!(v["memory"]["cgroup_source"]
        .as_str()
        .is_some_and(|s| s.starts_with("cgroup v")));
}
