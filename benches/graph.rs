//! Benchmark: the heap graph (graph + dominators + suspects, `dumpheap -stat -live`, gcroot)
//! against Microsoft's dotnet-dump and ClrMD on the same cores, in the same run.
//!
//! Run: `cargo bench --bench graph`. Needs about 8 GB of memory and 10 GB of disk in the target
//! folder. Steps:
//! 1. A .NET 10 console fixture with about 29 million objects (`alloc-mb 256`,
//!    `leak 9000000`, `objects 1000000`), dumped with `dn-dump collect --type heap`. On it:
//!    - `dn-dump analyze -c suspects` (open, heap graph, dominators, suspects) against
//!      `dotnet-dump analyze -c "dumpheap -stat"`, with our peak RssAnon per object;
//!    - `dumpheap -stat -live`, ours against dotnet-dump's;
//!    - `dn-dump report` against `suspects` alone (`cargo bench --bench graph report` for
//!      only this).
//! 2. On .NET 8 and on .NET 10, a fixture with a 1,000,000-object chain: `gcroot` on the chain's
//!    far end, ours (open + graph + first answer) against ClrMD's GCRoot (open + first path).
//!
//! Not a test: nothing here passes or fails on timing. Figures go to docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

fn main() {
    let target_dir = common::target_dir();
    let dn_dump = common::dn_dump();
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let wants = |step: &str| only.as_deref().is_none_or(|o| o == step);

    if wants("big") || wants("report") {
        let dir = tempfile::tempdir_in(&target_dir).unwrap();
        let core = big_core(&dn_dump, dir.path());
        if wants("big") {
            let dotnet_dump = dn_testkit::dotnet_tool("dotnet-dump").expect("dotnet-dump");
            big_heap(&dn_dump, &dotnet_dump, &core);
        }
        if wants("report") {
            report_vs_suspects(&dn_dump, &core, dir.path());
        }
    }
    if wants("gcroot") {
        let oracle = dn_testkit::oracle("HeapOracle").expect("HeapOracle");
        for rt in [Runtime::Net8, Runtime::Net10] {
            chain_gcroot(&dn_dump, &oracle, &target_dir, rt);
        }
    }
}

/// The big heap: about 29 million objects, dumped with `dn-dump collect --type heap`.
fn big_core(dn_dump: &Path, dir: &Path) -> PathBuf {
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(t.command("alloc-mb 256"), "ok");
    // In steps: each command must answer within the harness's timeout.
    for i in 1..=9 {
        assert_eq!(t.command("leak 1000000"), format!("ok {}", i * 1_000_000));
    }
    assert_eq!(t.command("objects 1000000"), "ok");
    assert_eq!(t.command("gc"), "ok");
    collect(dn_dump, &t, dir)
}

/// `dn-dump report` against `suspects` alone on the same core, best of 3 each, alternating.
fn report_vs_suspects(dn_dump: &Path, core: &Path, dir: &Path) {
    let page = dir.join("report.html");
    let suspects = || {
        let mut c = Command::new(dn_dump);
        c.arg("analyze")
            .arg(core)
            .args(["--json", "-c", "suspects"]);
        c
    };
    let report = || {
        let mut c = Command::new(dn_dump);
        c.arg("report")
            .arg(core)
            .arg("-o")
            .arg(&page)
            .arg("--force");
        c
    };
    // Warm the page cache.
    measure(&mut suspects());
    let (mut s, mut r) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        s.push(measure(&mut suspects()));
        r.push(measure(&mut report()));
    }
    let s = s.into_iter().min_by_key(|x| x.wall).unwrap();
    let r = r.into_iter().min_by_key(|x| x.wall).unwrap();
    let kib = std::fs::metadata(&page).unwrap().len() >> 10;
    println!(
        "report {:>7.2} s (peak RSS {} MiB, page {kib} KiB)   suspects {:>7.2} s (peak RSS {} MiB)   ratio {:.2}x",
        r.wall.as_secs_f64(),
        r.peak_rss_kib >> 10,
        s.wall.as_secs_f64(),
        s.peak_rss_kib >> 10,
        r.wall.as_secs_f64() / s.wall.as_secs_f64()
    );
}

fn big_heap(dn_dump: &Path, dotnet_dump: &Path, core: &Path) {
    let core_mib = std::fs::metadata(core).unwrap().len() >> 20;

    let ours = |c: &str| {
        let mut cmd = Command::new(dn_dump);
        cmd.arg("analyze").arg(core).args(["--json", "-c", c]);
        cmd
    };
    let theirs = |c: &str| {
        let mut cmd = Command::new(dotnet_dump);
        cmd.arg("analyze").arg(core).args(["-c", c, "-c", "exit"]);
        cmd
    };
    // Warm the page cache for both.
    measure(&mut ours("dumpheap -stat"));
    let stat: Value =
        serde_json::from_slice(&ours("dumpheap -stat").output().unwrap().stdout).unwrap();
    let objects = stat["total_objects"].as_u64().unwrap();

    let s = measure(&mut ours("suspects"));
    let d = measure(&mut theirs("dumpheap -stat"));
    let live_ours = measure(&mut ours("dumpheap -stat -live"));
    let live_theirs = measure(&mut theirs("dumpheap -stat -live"));
    println!(
        "core: {core_mib} MiB, {objects} objects, {} bytes on the heap",
        stat["total_bytes"]
    );
    println!(
        "graph + dominators + suspects  dn {:>7.2} s (peak RSS {} MiB, peak RssAnon {} MiB = {:.1} B/object)   dotnet-dump dumpheap -stat {:>7.2} s (peak RSS {} MiB)   ratio {:.2}x",
        s.wall.as_secs_f64(),
        s.peak_rss_kib >> 10,
        s.peak_anon_kib >> 10,
        (s.peak_anon_kib * 1024) as f64 / objects as f64,
        d.wall.as_secs_f64(),
        d.peak_rss_kib >> 10,
        d.wall.as_secs_f64() / s.wall.as_secs_f64()
    );
    println!(
        "dumpheap -stat -live           dn {:>7.2} s (peak RSS {} MiB, RssAnon {} MiB)   dotnet-dump {:>7.2} s (peak RSS {} MiB)   ratio {:.1}x",
        live_ours.wall.as_secs_f64(),
        live_ours.peak_rss_kib >> 10,
        live_ours.peak_anon_kib >> 10,
        live_theirs.wall.as_secs_f64(),
        live_theirs.peak_rss_kib >> 10,
        live_theirs.wall.as_secs_f64() / live_ours.wall.as_secs_f64()
    );
}

fn chain_gcroot(dn_dump: &Path, oracle: &Path, target_dir: &Path, rt: Runtime) {
    let mut t = Target::start(Fixture::Console, rt);
    assert_eq!(t.command("leak 100000"), "ok 100000");
    assert_eq!(t.command("objects 1000000"), "ok");
    assert_eq!(t.command("gc"), "ok");
    let dir = tempfile::tempdir_in(target_dir).unwrap();
    let core = collect(dn_dump, &t, dir.path());
    let dac = t.built().runtime_dir.join("libmscordaccore.so");
    drop(t);
    let ours = |c: &str| {
        let mut cmd = Command::new(dn_dump);
        cmd.arg("analyze").arg(&core).args(["--json", "-c", c]);
        cmd
    };
    // The chain's far end: the SmallNode with Value 0, allocated first. Nodes are allocated
    // back to back, so it starts a run of adjacent nodes; with regions, runs need not be in
    // allocation order by address. One session reads every run's first node.
    let list = ours("dumpheap -type ConsoleTarget.SmallNode")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut nodes: Vec<(u64, u64)> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let a = o["address"].as_str().unwrap().trim_start_matches("0x");
            (
                u64::from_str_radix(a, 16).unwrap(),
                o["size"].as_u64().unwrap(),
            )
        })
        .collect();
    nodes.sort_unstable();
    let starts: Vec<u64> = nodes
        .iter()
        .enumerate()
        .filter(|&(i, &(a, _))| i == 0 || nodes[i - 1].0 + nodes[i - 1].1 != a)
        .map(|(_, &(a, _))| a)
        .collect();
    let mut read = Command::new(dn_dump);
    read.arg("analyze").arg(&core).arg("--json");
    for a in &starts {
        read.arg("-c").arg(format!("dumpobj 0x{a:x}"));
    }
    let out = read.output().unwrap();
    let far_end = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .find(|v| {
            v["fields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == "Value" && f["value"] == 0))
        })
        .and_then(|v| v["address"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            panic!(
                "no run of SmallNodes starts with Value 0 ({} runs)",
                starts.len()
            )
        });
    measure(&mut ours(&format!("gcroot {far_end}")));
    let o = best(3, || ours(&format!("gcroot {far_end}")));
    let c = best(3, || {
        let mut c = Command::new(dn_testkit::dotnet());
        c.arg(oracle)
            .arg("gcroot")
            .arg(&core)
            .arg(&dac)
            .arg(&far_end);
        c
    });
    println!(
        "gcroot, 1,000,000-object chain, {}: dn {:>6.3} s (peak RSS {} MiB)   ClrMD GCRoot {:>6.3} s (peak RSS {} MiB)   ratio {:.1}x",
        rt.label(),
        o.wall.as_secs_f64(),
        o.peak_rss_kib >> 10,
        c.wall.as_secs_f64(),
        c.peak_rss_kib >> 10,
        c.wall.as_secs_f64() / o.wall.as_secs_f64()
    );
}

fn collect(dn_dump: &Path, t: &Target, dir: &Path) -> PathBuf {
    let core = dir.join("core_bench");
    let out = Command::new(dn_dump)
        .args([
            "collect",
            "-p",
            &t.pid().to_string(),
            "--type",
            "heap",
            "-o",
        ])
        .arg(&core)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    core
}

/// Wall time, peak RSS and peak anonymous RSS of one run.
struct Run {
    wall: Duration,
    peak_rss_kib: u64,
    peak_anon_kib: u64,
}

fn best(n: usize, mut make: impl FnMut() -> Command) -> Run {
    (0..n)
        .map(|_| measure(&mut make()))
        .min_by_key(|r| r.wall)
        .unwrap()
}

/// Runs `cmd` to completion, sampling its /proc status every 10 ms for the peaks.
fn measure(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let (mut rss, mut anon) = (0u64, 0u64);
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            for line in text.lines() {
                let kib = || {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("VmHWM:") {
                    rss = rss.max(kib());
                } else if line.starts_with("RssAnon:") {
                    anon = anon.max(kib());
                }
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "{cmd:?} failed: {st}");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Run {
        wall: start.elapsed(),
        peak_rss_kib: rss,
        peak_anon_kib: anon,
    }
}
