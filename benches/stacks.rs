//! Benchmark: the stack commands against dotnet-dump (10.0.750501) on the same core, same run.
//!
//! Run: `cargo bench --bench stacks`. Starts the .NET 10 console fixture with 200 extra
//! sleeping threads (`threads 200`) and the `stacks` scenario, writes one core with
//! `dn-dump collect --type heap`, then times whole `analyze` runs (loading the dump included) of
//! `clrstack -all`, `clrstack -all -a`, `dumpasync` and `dso`, ours against dotnet-dump's, best of
//! 3 after one warm-up each, and reports the peak RSS of each. Not a test: nothing here passes or
//! fails on timing.

use std::process::Command;

mod common;

use common::best_of;
use dn_testkit::{Fixture, Runtime, Target};

fn main() {
    let target_dir = common::target_dir();
    let dn_dump = common::dn_dump();
    let dotnet_dump = dn_testkit::dotnet_tool("dotnet-dump").expect("dotnet-dump");

    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert!(t.command("threads 200").starts_with("ok"));
    assert_eq!(t.command("stacks"), "READY");
    let dir = tempfile::tempdir_in(&target_dir).unwrap();
    let core = dir.path().join("core_stacks");
    let out = Command::new(&dn_dump)
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
    drop(t);
    let core_mib = std::fs::metadata(&core).unwrap().len() as f64 / (1 << 20) as f64;
    println!("dump: {core_mib:.0} MiB heap core, 200 sleeping threads + the stacks scenario");

    for command in [
        "clrstack -all",
        "clrstack -all -a",
        "dumpasync",
        "setthread 0;dso",
    ] {
        let cmds: Vec<&str> = command.split(';').collect();
        let ours = || {
            let mut c = Command::new(&dn_dump);
            c.arg("analyze").arg(&core);
            for x in &cmds {
                c.args(["-c", x]);
            }
            c
        };
        let theirs = || {
            let mut c = Command::new(&dotnet_dump);
            c.arg("analyze").arg(&core);
            for x in &cmds {
                c.args(["-c", x]);
            }
            c.args(["-c", "exit"]).stdin(std::process::Stdio::null());
            c
        };
        let _ = best_of(1, ours);
        let (o, o_rss) = best_of(3, ours);
        let _ = best_of(1, theirs);
        let (d, d_rss) = best_of(3, theirs);
        println!(
            "{command:<18} dn {:>7.3} s (peak RSS {:>5} MiB)   dotnet-dump {:>7.3} s (peak RSS {:>5} MiB)   ratio {:.1}x",
            o.as_secs_f64(),
            o_rss / 1024,
            d.as_secs_f64(),
            d_rss / 1024,
            d.as_secs_f64() / o.as_secs_f64()
        );
    }
}
