//! Benchmark: heap snapshots against dotnet-gcdump on the same target, same run.
//!
//! Run: `cargo bench --bench gcdump`. Starts the .NET 10 console fixture with a 6 M-object chain
//! (`objects 6000000`), takes one warm-up snapshot with each tool (the first sessions make the
//! runtime build EventSource caches), then alternates `dn-dump gcdump collect` and
//! `dotnet-gcdump collect` three times each, and times opening each file and printing the per-type
//! table (`dn-dump gcdump report` against `dotnet-gcdump report`, on both files). Wall time and
//! peak RSS (wait4) of every run. Not a test: nothing here passes or fails on timing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::timed;
use dn_testkit::{Fixture, Runtime, Target};

/// (fastest, slowest) wall and (lowest, highest) peak RSS in MiB over runs.
fn spread(runs: &[(Duration, u64)]) -> String {
    let secs = |d: &Duration| d.as_secs_f64();
    let min_t = runs.iter().map(|r| secs(&r.0)).fold(f64::MAX, f64::min);
    let max_t = runs.iter().map(|r| secs(&r.0)).fold(0.0, f64::max);
    let min_m = runs.iter().map(|r| r.1).min().unwrap() / 1024;
    let max_m = runs.iter().map(|r| r.1).max().unwrap() / 1024;
    format!("{min_t:.2}-{max_t:.2} s, peak RSS {min_m}-{max_m} MiB")
}

fn main() {
    let dn_dump = common::dn_dump();
    let tool = dn_testkit::dotnet_tool("dotnet-gcdump").expect("dotnet-gcdump");
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(t.command("objects 6000000"), "ok");
    let pid = t.pid().to_string();
    let dir = tempfile::tempdir_in(common::target_dir()).unwrap();
    let file = |name: &str| dir.path().join(name);
    let ours = |out: &Path| {
        let mut c = Command::new(&dn_dump);
        c.args(["gcdump", "collect", "-p", &pid, "-o"]).arg(out);
        c
    };
    let theirs = |out: &Path| {
        let mut c = Command::new(&tool);
        c.args(["collect", "-p", &pid, "-o"]).arg(out);
        c
    };
    timed(&mut ours(&file("warm-ours.gcdump")));
    timed(&mut theirs(&file("warm-theirs.gcdump")));
    let (mut ours_runs, mut theirs_runs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours_runs.push(timed(&mut ours(&file("ours.gcdump"))));
        theirs_runs.push(timed(&mut theirs(&file("theirs.gcdump"))));
    }
    drop(t);

    let report = |exe: &Path, sub: &[&str], f: &Path| {
        let mut c = Command::new(exe);
        c.args(sub).arg(f);
        c
    };
    let mut lines = Vec::new();
    for name in ["ours.gcdump", "theirs.gcdump"] {
        let f = file(name);
        // One warm-up each (page cache), then three runs each, alternating.
        timed(&mut report(&dn_dump, &["gcdump", "report"], &f));
        timed(&mut report(&tool, &["report"], &f));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            a.push(timed(&mut report(&dn_dump, &["gcdump", "report"], &f)));
            b.push(timed(&mut report(&tool, &["report"], &f)));
        }
        let best = |v: &[(Duration, u64)]| v.iter().map(|r| r.0).min().unwrap().as_secs_f64();
        lines.push(format!(
            "report {name} ({} MB): dn-dump {}   dotnet-gcdump {}   ratio {:.1}x (best walls)",
            std::fs::metadata(&f).unwrap().len() / 1_000_000,
            spread(&a),
            spread(&b),
            best(&b) / best(&a)
        ));
    }

    let best_rss = |v: &[(Duration, u64)]| v.iter().map(|r| r.1).min().unwrap() as f64;
    let best_t = |v: &[(Duration, u64)]| v.iter().map(|r| r.0).min().unwrap().as_secs_f64();
    println!("collect, 6 M objects (.NET 10), 3 runs each, alternating:");
    println!("  dn-dump gcdump collect  {}", spread(&ours_runs));
    println!("  dotnet-gcdump collect   {}", spread(&theirs_runs));
    println!(
        "  ratios: peak RSS {:.1}x less, wall {:.1}x faster (best runs)",
        best_rss(&theirs_runs) / best_rss(&ours_runs),
        best_t(&theirs_runs) / best_t(&ours_runs)
    );
    for l in lines {
        println!("{l}");
    }
}
