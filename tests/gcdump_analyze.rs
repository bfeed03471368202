//! `dn-dump analyze FILE.gcdump`: the heap-graph commands on a snapshot of the leaking sample
//! service, for our snapshot and for dotnet-gcdump's of the same process, with
//! `dotnet-gcdump report` as the oracle for the per-type counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

mod common;

use common::{dn_dump, dotnet_gcdump_collect, dotnet_gcdump_report, gcdump_collect};
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// `memleak/{kb}` caches kb*10 customers; two calls.
const CUSTOMERS: u64 = 2 * 20_000 * 10;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `analyze FILE --json -c CMD`, one JSON document.
fn analyze(file: &Path, cmd: &str) -> Value {
    let out = dn_dump(&["analyze", file.to_str().unwrap(), "--json", "-c", cmd]);
    assert!(out.status.success(), "{cmd}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd}: not JSON: {e}"))
}

/// `dotnet-gcdump report FILE`: (type with module) -> count, and the heap bytes of the header.
fn their_counts(tool: &Path, file: &Path) -> (BTreeMap<String, u64>, u64) {
    let text = dotnet_gcdump_report(tool, file);
    let number = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let heap_bytes = text
        .lines()
        .find(|l| l.trim_end().ends_with("GC Heap bytes"))
        .and_then(|l| number(l.split_whitespace().next()?))
        .expect("a 'GC Heap bytes' line");
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .skip_while(|l| !l.contains("Object Bytes"))
        .skip(1)
    {
        // "  <type size>  <count>  <type name with module>"
        let mut parts = line.trim_start().splitn(2, char::is_whitespace);
        let (Some(_size), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((count, name)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        let count = number(count).unwrap_or_else(|| panic!("count in {line:?}"));
        *counts.entry(name.trim().to_string()).or_insert(0) += count;
    }
    (counts, heap_bytes)
}

/// Checks every snapshot command on `file` and returns the suspect's (type, retained,
/// accumulated customers) for comparing the two files.
fn check(tool: &Path, file: &Path) -> (String, u64, u64) {
    // dumpheap -stat: per type the counts dotnet-gcdump reports, the same heap bytes.
    let stat = analyze(file, "dumpheap -stat");
    let (theirs, heap_bytes) = their_counts(tool, file);
    let ours: BTreeMap<String, u64> = stat["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "{}: per-type counts", file.display());
    assert_eq!(stat["total_bytes"].as_u64().unwrap(), heap_bytes);
    assert_eq!(
        ours["SampleService.Customer  [SampleService.dll]"],
        CUSTOMERS
    );

    // suspects: the Processor held by its static field, accumulating in the Customer[].
    let s = analyze(file, "suspects");
    let first = &s["suspects"][0];
    assert_eq!(first["kind"], "single", "{s}");
    assert_eq!(
        first["type"],
        "SampleService.Processor  [SampleService.dll]"
    );
    assert_eq!(first["root"]["kind"], "static", "{s}");
    assert_eq!(first["root"]["field"], "p", "the static field's name");
    let point = &first["accumulation_point"];
    assert!(
        point["type"]
            .as_str()
            .unwrap()
            .starts_with("SampleService.Customer[]"),
        "{s}"
    );
    let row = |t: &str| {
        first["accumulated"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == t)
            .unwrap_or_else(|| panic!("{t} accumulates: {s}"))
            .clone()
    };
    let customers = row("SampleService.Customer  [SampleService.dll]");
    assert_eq!(customers["count"].as_u64().unwrap(), CUSTOMERS);
    // Each customer owns its name string alone: a customer retains itself and its string.
    let strings = row("System.String  [System.Private.CoreLib.dll]");
    assert_eq!(strings["count"].as_u64().unwrap(), CUSTOMERS);
    assert_eq!(
        customers["retained"].as_u64().unwrap(),
        customers["size"].as_u64().unwrap() + strings["size"].as_u64().unwrap()
    );

    // dumpheap -stat -retained: the Processor's type row retains what the suspect does.
    let r = analyze(file, "dumpheap -stat -retained");
    let processor = r["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "SampleService.Processor  [SampleService.dll]")
        .expect("Processor row");
    assert_eq!(processor["retained"], first["retained"]);

    // dominators: the Processor is a top-level dominator with the suspect's retained size.
    let d = analyze(file, "dominators -top 3 -depth 1");
    assert_eq!(d["address"], Value::Null);
    assert_eq!(d["retained"], s["live_bytes"]);
    assert!(
        d["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == first["type"] && c["retained"] == first["retained"]),
        "{d}"
    );

    // gcroot on the Processor: rooted, the path ends at it.
    let addr = first["address"].as_str().unwrap();
    let g = analyze(file, &format!("gcroot {addr}"));
    let roots = g["roots"].as_array().unwrap();
    assert!(!roots.is_empty(), "{g}");
    for r in roots {
        let path = r["path"].as_array().unwrap();
        assert_eq!(path.last().unwrap()["address"].as_str().unwrap(), addr);
    }

    // What needs memory contents says so, in one line, with a failing status.
    let out = dn_dump(&[
        "analyze",
        file.to_str().unwrap(),
        "-c",
        &format!("dumpobj {addr}"),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("'dumpobj' needs the process's memory, which a heap snapshot does not have"),
        "{}",
        stderr(&out)
    );
    (
        first["type"].as_str().unwrap().to_string(),
        first["retained"].as_u64().unwrap(),
        customers["count"].as_u64().unwrap(),
    )
}

#[test]
fn snapshot_commands_on_ours_and_dotnet_gcdumps_files() {
    let tool = dn_testkit::dotnet_tool("dotnet-gcdump").expect("dotnet-gcdump");
    let dir = tempfile::tempdir().unwrap();
    let service = Target::start(Fixture::SampleService, Runtime::Net10);
    for _ in 0..2 {
        let (code, body) = service.http_get("/api/diagscenario/memleak/20000");
        assert_eq!(code, 200, "{body}");
    }
    let ours = dir.path().join("ours.gcdump");
    let out = gcdump_collect(&service, &ours, &[]);
    assert!(out.status.success(), "collect: {}", stderr(&out));
    let theirs = dir.path().join("theirs.gcdump");
    dotnet_gcdump_collect(&tool, &service, &theirs);

    let a = check(&tool, &ours);
    let b = check(&tool, &theirs);
    assert_eq!(a, b, "the same suspect from both tools' snapshots");

    // diff: a snapshot against a later snapshot, and against a later core (by the core's
    // spelling of type names), after one more leak call.
    let (code, body) = service.http_get("/api/diagscenario/memleak/20000");
    assert_eq!(code, 200, "{body}");
    let later = dir.path().join("later.gcdump");
    let out = gcdump_collect(&service, &later, &[]);
    assert!(out.status.success(), "collect: {}", stderr(&out));
    let core = dir.path().join("later.core");
    let out = common::collect(&service, &core, &["--type", "heap"]);
    assert!(out.status.success(), "dump: {}", stderr(&out));
    let growth = |b: &Path, name: &str| -> (u64, u64) {
        let out = dn_dump(&[
            "diff",
            ours.to_str().unwrap(),
            b.to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "diff: {}", stderr(&out));
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        let t = d["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {d}"));
        (
            t["count_a"].as_u64().unwrap(),
            t["count_b"].as_u64().unwrap(),
        )
    };
    let more = CUSTOMERS / 2;
    assert_eq!(
        growth(&later, "SampleService.Customer  [SampleService.dll]"),
        (CUSTOMERS, CUSTOMERS + more)
    );
    assert_eq!(
        growth(&core, "SampleService.Customer"),
        (CUSTOMERS, CUSTOMERS + more)
    );

    // A truncated snapshot: one line, a failing status.
    let bytes = std::fs::read(&ours).unwrap();
    let cut = dir.path().join("cut.gcdump");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dn_dump(&["analyze", cut.to_str().unwrap(), "-c", "dumpheap -stat"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("Loading")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("dn-dump: cannot read"), "{err}");
}
