//! Every output read back by a real parser: JSON (serde_json), CSV (csv crate), JSON Lines line
//! by line even after SIGKILL, and the monitor's plain snapshots when stdout is not a terminal.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_success, bin, collect_into};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

fn run_collect(
    pid: i32,
    format: &str,
    out: &std::path::Path,
    duration: &str,
) -> std::process::Output {
    collect_into(pid, format, out)
        .args(["--duration", duration])
        .stdin(Stdio::null())
        .output()
        .expect("run dn-counters")
}

#[test]
#[serial]
fn json_document_is_valid_with_samples_and_without() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let out = run_collect(target.pid(), "json", &path, "3.5");
    assert_success(&out);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("valid JSON document");
    // The kernel's name for it, as dotnet-counters writes (`dotnet` for `dotnet app.dll`).
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", target.pid())).unwrap();
    assert_eq!(doc["TargetProcess"].as_str(), Some(comm.trim_end()));
    chrono::DateTime::parse_from_rfc3339(doc["StartTime"].as_str().unwrap()).unwrap();
    let events = doc["Events"].as_array().expect("Events array");
    assert!(!events.is_empty());
    for e in events {
        for key in [
            "timestamp",
            "provider",
            "name",
            "tags",
            "counterType",
            "value",
        ] {
            assert!(!e[key].is_null(), "{key} missing in {e}");
        }
        assert!(e["tags"].is_string() && e["value"].is_number());
        assert!(["Metric", "Rate"].contains(&e["counterType"].as_str().unwrap()));
        chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
    }
    // Stopped before the first interval: still a valid document, with no samples.
    let empty = dir.path().join("e.json");
    let out = run_collect(target.pid(), "json", &empty, "0.2");
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&empty).unwrap()).unwrap();
    assert_eq!(doc["Events"].as_array().map(Vec::len), Some(0));

    // Ended by SIGTERM: the closing bracket is written too.
    let term = dir.path().join("t.json");
    let mut child = collect_into(target.pid(), "json", &term)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&term).unwrap()).unwrap();
    assert!(doc["Events"].is_array());
}

#[test]
#[serial]
fn csv_is_quoted_and_parses() {
    let target = Target::start(Fixture::Console, Runtime::Net9);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.csv");
    let out = run_collect(target.pid(), "csv", &path, "3.5");
    assert_success(&out);
    let mut r = csv::Reader::from_path(&path).unwrap();
    let headers = r.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "timestamp",
            "pid",
            "provider",
            "name",
            "display_name",
            "unit",
            "kind",
            "value",
            "tags"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("valid CSV row")).collect();
    assert!(!rows.is_empty());
    // Tagged series carry commas inside one quoted field.
    let tagged = rows
        .iter()
        .find(|r| r[3] == *"dotnet.gc.last_collection.heap.size" && r[8].contains(','))
        .or_else(|| rows.iter().find(|r| !r[8].is_empty()))
        .expect("a tagged series");
    assert!(tagged[8].contains('='));
    for row in &rows {
        assert_eq!(row.len(), 9);
        row[7].parse::<f64>().expect("numeric value");
        assert_eq!(row[1].parse::<i32>().unwrap(), target.pid());
    }
}

/// ASP.NET Core histograms carry several tags (`k=v,k2=v2`): one quoted CSV field.
#[test]
#[serial]
fn csv_quotes_multi_tag_series() {
    let target = Target::start(Fixture::SampleService, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.csv");
    let mut child = collect_into(target.pid(), "csv", &path)
        .args([
            "--counters",
            "Microsoft.AspNetCore.Hosting",
            "--duration",
            "5",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        target.http_get("/");
    }
    assert!(child.wait().unwrap().success());
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&path)
        .unwrap()
        .records()
        .map(|r| r.expect("valid CSV row"))
        .collect();
    let hist = rows
        .iter()
        .find(|r| r[3] == *"http.server.request.duration" && r[8].contains(','))
        .unwrap_or_else(|| panic!("no multi-tag histogram row in {rows:?}"));
    assert!(hist[8].contains("Percentile="), "{hist:?}");
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(
        raw.contains(&format!("\"{}\"", &hist[8])),
        "tags not quoted"
    );
}

#[test]
#[serial]
fn jsonl_stays_valid_line_by_line_when_killed() {
    let target = Target::start(Fixture::Console, Runtime::Net8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let mut child = collect_into(target.pid(), "jsonl", &path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::read_to_string(&path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 30
    {
        assert!(Instant::now() < deadline, "no samples written");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "last line cut");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["pid"].as_i64(), Some(i64::from(target.pid())));
        assert!(v["value"].is_number());
    }
}

#[test]
#[serial]
fn monitor_prints_plain_snapshots_when_not_a_terminal() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let monitor = |args: &[&str]| {
        Command::new(bin())
            .args(["monitor", "-p", &target.pid().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = monitor(&["--duration", "3.5"]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "escape codes in plain output");
    assert!(text.matches("[System.Runtime]").count() >= 2, "{text}");
    assert!(text.contains("dotnet.process.memory.working_set"), "{text}");
    assert!(text.contains(" MiB"), "human-readable bytes: {text}");
    // --raw: exact digits, no units in values.
    let out = monitor(&["--raw", "--duration", "2.5"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let ws = text
        .lines()
        .find(|l| l.contains("dotnet.process.memory.working_set"))
        .expect("working set row");
    let digits = ws.split_whitespace().last().unwrap();
    assert!(digits.parse::<u64>().is_ok(), "raw value {digits:?}");
}
