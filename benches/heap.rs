//! Benchmark: heap analysis of one big dump against ClrMD, same dump, same run.
//!
//! Run: `cargo bench --bench heap`. Starts the .NET 10 console fixture, fills its heap with
//! `alloc-mb 1024` (over a gigabyte in millions of objects), `leak 2100000` (6.3 million more) and a
//! chain of 1,000,000 objects (`objects 1000000`), writes one core with `dn-dump collect --type heap`, then times
//! - `dn-dump analyze -c "dumpheap -stat"` against the ClrMD oracle's same aggregation,
//! - the floor: a plain sequential read of the heap's bytes from the dump (dn-heap's bench_heap),
//! - `gcroot` on the object at the far end of the chain against ClrMD's GCRoot,
//!
//! and reports peak RSS of each. Not a test: nothing here passes or fails on timing.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{best_of, timed};

use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

fn main() {
    let target_dir = common::target_dir();
    let dn_dump = common::dn_dump();
    common::cargo_release(&["-p", "dn-heap", "--example", "bench_heap"]);
    let oracle = dn_testkit::oracle("HeapOracle").expect("HeapOracle");

    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(t.command("alloc-mb 1024"), "ok");
    assert_eq!(t.command("leak 2100000"), "ok 2100000");
    assert_eq!(t.command("objects 1000000"), "ok");
    assert_eq!(t.command("gc"), "ok");
    let dir = tempfile::tempdir_in(&target_dir).unwrap();
    let core = dir.path().join("core_bench");
    let out = Command::new(&dn_dump)
        .args([
            "collect",
            "-p",
            &t.pid().to_string(),
            "--type",
            "heap",
            "--json",
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
    let dac = t_dac();
    let core_mib = std::fs::metadata(&core).unwrap().len() as f64 / (1 << 20) as f64;

    // dumpheap -stat, both sides, after one warm-up each (page cache warm for both).
    let ours_cmd = |c: &str| {
        let mut cmd = Command::new(&dn_dump);
        cmd.arg("analyze").arg(&core).args(["--json", "-c", c]);
        cmd
    };
    let (_, _) = timed(&mut ours_cmd("dumpheap -stat"));
    let (ours_stat, ours_rss) = best_of(3, || ours_cmd("dumpheap -stat"));
    let theirs_cmd = || {
        let mut cmd = Command::new(dn_testkit::dotnet());
        cmd.arg(&oracle).arg("stat").arg(&core).arg(&dac);
        cmd
    };
    let (_, _) = timed(&mut theirs_cmd());
    let (theirs_stat, theirs_rss) = best_of(3, theirs_cmd);
    let stat: Value =
        serde_json::from_slice(&ours_cmd("dumpheap -stat").output().unwrap().stdout).unwrap();

    // The floor: reading the heap's bytes sequentially from the same dump.
    let floor = Command::new(target_dir.join("release/examples/bench_heap"))
        .arg(&core)
        .arg("3")
        .output()
        .unwrap();
    let floor_text = String::from_utf8_lossy(&floor.stdout).into_owned();

    // gcroot on the far end of the chain: the node with Value == 0 (allocated first, so at the
    // lowest address of its type).
    let node_mt = stat["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ConsoleTarget.SmallNode")
        .expect("SmallNode")["mt"]
        .as_str()
        .unwrap()
        .to_string();
    let list = Command::new(&dn_dump)
        .arg("analyze")
        .arg(&core)
        .args(["-c", &format!("dumpheap -mt {node_mt} -short")])
        .output()
        .unwrap();
    let far_end = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit()))
        .find(|a| {
            let o = ours_cmd(&format!("dumpobj {a}")).output().unwrap();
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            v["fields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == "Value" && f["value"] == 0))
        })
        .expect("the node with Value 0")
        .to_string();
    let (ours_root, ours_root_rss) = best_of(1, || ours_cmd(&format!("gcroot {far_end}")));
    let (theirs_root, theirs_root_rss) = best_of(1, || {
        let mut c = Command::new(dn_testkit::dotnet());
        c.arg(&oracle)
            .arg("gcroot")
            .arg(&core)
            .arg(&dac)
            .arg(&far_end);
        c
    });

    println!(
        "dump: {:.0} MiB heap core, {} objects, {} bytes on the heap",
        core_mib, stat["total_objects"], stat["total_bytes"]
    );
    println!("dumpheap -stat   dn {:>7.3} s (peak RSS {:>5} MiB)   ClrMD {:>7.3} s (peak RSS {:>5} MiB)   ratio {:.1}x",
        ours_stat.as_secs_f64(), ours_rss / 1024, theirs_stat.as_secs_f64(), theirs_rss / 1024,
        theirs_stat.as_secs_f64() / ours_stat.as_secs_f64());
    println!(
        "sequential read floor (bench_heap):\n{}",
        floor_text.trim_end()
    );
    println!("gcroot (1,000,000-object chain)   dn {:>7.3} s (peak RSS {:>5} MiB)   ClrMD {:>7.3} s (peak RSS {:>5} MiB)   ratio {:.1}x",
        ours_root.as_secs_f64(), ours_root_rss / 1024, theirs_root.as_secs_f64(), theirs_root_rss / 1024,
        theirs_root.as_secs_f64() / ours_root.as_secs_f64());
}

fn t_dac() -> PathBuf {
    dn_testkit::build(Fixture::Console, Runtime::Net10)
        .expect("build")
        .runtime_dir
        .join("libmscordaccore.so")
}
