//! `collect --format json` against Microsoft's dotnet-counters (10.0.750501) on the same process,
//! one after the other (dotnet-counters refuses to share the process's metrics session): one reader, written for dotnet-counters' document, reads both files, and
//! both name the same counters.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_success, collect_into, dotnet_counters};
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;
use serial_test::serial;

/// What a script written for dotnet-counters' `--format json` reads: the process name, the start
/// time, and per event its time, provider, name, tags, type and value.
#[derive(Debug)]
struct Event {
    provider: String,
    name: String,
    counter_type: String,
}

fn read_document(path: &Path) -> (String, Vec<Event>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let process = doc["TargetProcess"]
        .as_str()
        .expect("TargetProcess")
        .to_string();
    chrono::DateTime::parse_from_rfc3339(doc["StartTime"].as_str().expect("StartTime"))
        .expect("StartTime is ISO 8601 with an offset");
    let events = doc["Events"]
        .as_array()
        .expect("Events")
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().expect("timestamp"))
                .expect("timestamp is ISO 8601 with an offset");
            assert!(e["tags"].is_string(), "{e}");
            assert!(e["value"].is_number(), "{e}");
            Event {
                provider: e["provider"].as_str().expect("provider").to_string(),
                name: e["name"].as_str().expect("name").to_string(),
                counter_type: e["counterType"].as_str().expect("counterType").to_string(),
            }
        })
        .collect();
    (process, events)
}

/// `GC Heap Size (MB)` -> `GC Heap Size`; `dotnet.gc.collections ({collection} / 1 sec)` ->
/// `dotnet.gc.collections`.
fn base_name(display: &str) -> &str {
    match display.rfind(" (") {
        Some(i) if display.ends_with(')') => &display[..i],
        _ => display,
    }
}

fn same_document_as_dotnet_counters(rt: Runtime) {
    let target = Target::start(Fixture::Console, rt);
    let dir = tempfile::tempdir().unwrap();
    let (theirs, ours) = (dir.path().join("theirs.json"), dir.path().join("ours.json"));
    let oracle = Command::new(dotnet_counters())
        .args([
            "collect",
            "-p",
            &target.pid().to_string(),
            "--format",
            "json",
        ])
        .arg("-o")
        .arg(&theirs)
        .args(["--duration", "00:00:00:04"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&oracle);
    let mine = collect_into(target.pid(), "json", &ours)
        .args(["--duration", "4"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&mine);
    let (their_process, their_events) = read_document(&theirs);
    let (our_process, our_events) = read_document(&ours);
    assert_eq!(our_process, their_process);
    let names = |events: &[Event], ty: Option<&str>| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| e.provider == "System.Runtime")
            .filter(|e| ty.is_none_or(|t| e.counter_type == t))
            .map(|e| base_name(&e.name).to_string())
            .collect()
    };
    assert!(names(&their_events, None).len() >= 15, "{their_events:?}");
    assert_eq!(
        names(&our_events, None),
        names(&their_events, None),
        "{}: counter names differ",
        rt.label()
    );
    if rt.major() < 9 {
        // EventCounters: the very same display names (units and rate scale included) and types.
        let full = |events: &[Event]| -> BTreeSet<(String, String)> {
            events
                .iter()
                .map(|e| (e.name.clone(), e.counter_type.clone()))
                .collect()
        };
        assert_eq!(full(&our_events), full(&their_events), "{}", rt.label());
    }
}

#[test]
#[serial]
fn json_document_matches_dotnet_counters_net8() {
    same_document_as_dotnet_counters(Runtime::Net8);
}

#[test]
#[serial]
fn json_document_matches_dotnet_counters_net10() {
    same_document_as_dotnet_counters(Runtime::Net10);
}
