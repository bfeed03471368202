//! Benchmark: `dn-ps` against `dotnet-trace ps`, three .NET targets running, same run.
//!
//! Run: `cargo bench --bench ps` (builds dn-ps in release mode first; installs dotnet-trace as a
//! local tool under target/dn-tools if it is not there). Prints mean wall time per listing and the
//! ratio. Not a test: nothing here passes or fails on timing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use dn_testkit::{Fixture, Runtime, Target};

const RUNS: u32 = 20;

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let root = dn_testkit::workspace_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "dn-ps"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building dn-ps failed");
    let dn_ps = target_dir(&root).join("release/dn-ps");
    let dotnet_trace = install_dotnet_trace(&root);

    let _targets: Vec<Target> = [Runtime::Net8, Runtime::Net9, Runtime::Net10]
        .iter()
        .map(|&rt| Target::start(Fixture::Console, rt))
        .collect();

    let ours = time_command(Command::new(&dn_ps).arg("--json"));
    let theirs = time_command(Command::new(&dotnet_trace).arg("ps"));
    println!("targets running:      3 (.NET 8, 9, 10 console fixtures)");
    println!(
        "dn-ps --json:         {:>8.2} ms per listing (mean of {RUNS})",
        ms(ours)
    );
    println!(
        "dotnet-trace ps:      {:>8.2} ms per listing (mean of {RUNS})",
        ms(theirs)
    );
    println!(
        "ratio:                {:>8.1}x faster",
        ms(theirs) / ms(ours)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn time_command(cmd: &mut Command) -> Duration {
    // One warm-up run so both sides start with warm page caches.
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    for _ in 0..RUNS {
        let out = cmd.output().expect("run");
        assert!(out.status.success());
    }
    start.elapsed() / RUNS
}

fn install_dotnet_trace(root: &std::path::Path) -> PathBuf {
    let dir = target_dir(root).join("dn-tools");
    let exe = dir.join("dotnet-trace");
    if !exe.exists() {
        let status = Command::new(dn_testkit::dotnet())
            .args(["tool", "install", "--tool-path"])
            .arg(&dir)
            .args(["dotnet-trace", "--version", "10.0.750501"])
            .status()
            .expect("dotnet tool install");
        assert!(status.success(), "could not install dotnet-trace");
    }
    exe
}
