//! `collect` never loses a file: an existing output stays byte for byte as it was until the
//! session runs and the first sample is written, a failing run never touches it, and a target
//! that exits mid-collection leaves a complete, valid file.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, collect_into, Running};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

const OLD: &[u8] = b"precious,data\n1,2\nnot rewritten\n";

/// Files in `dir` (to see that no temporary file is left behind).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
#[serial]
fn failing_runs_leave_the_file_unchanged() {
    let target = Target::start(Fixture::Console, Runtime::Net8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    std::fs::write(&path, OLD).unwrap();
    let pid = target.pid().to_string();
    let cases: &[&[&str]] = &[
        &["collect", "-p", "999999"],
        &["collect", "-n", "NoSuchProcessAnywhere"],
        &["collect", "-p", &pid, "--counters", "System.Runtime[x"],
        &["collect", "-p", &pid, "--format", "json"],
    ];
    for args in cases {
        let out = Command::new(bin())
            .args(*args)
            .arg("-o")
            .arg(&path)
            .args(if args.contains(&"json") {
                // Ends before any sample: a valid run, but an existing file is not replaced.
                &["--duration", "0.3"][..]
            } else {
                &[][..]
            })
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if args.contains(&"json") {
            assert!(out.status.success(), "{args:?}: {err}");
            assert!(err.contains("left unchanged"), "{args:?}: {err}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            OLD,
            "{args:?} changed the file"
        );
        assert_eq!(entries(dir.path()), ["results.csv"], "{args:?}");
    }
}

/// The session is established (the tool says so) well before the first sample (3 s interval):
/// in between the old file is still there, after it the new one has replaced it whole.
#[test]
#[serial]
fn replaced_only_once_the_first_sample_is_written() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    std::fs::write(&path, OLD).unwrap();
    let mut cmd = collect_into(target.pid(), "csv", &path);
    cmd.args(["--refresh-interval", "3"]);
    let mut run = Running::spawn(cmd);
    assert!(
        run.wait_line("Collecting counters", Duration::from_secs(20)),
        "{:?}",
        run.stderr
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        OLD,
        "replaced before a sample"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read(&path).unwrap() == OLD {
        assert!(
            Instant::now() < deadline,
            "never replaced: {:?}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("timestamp,pid,provider,"), "{text}");
    assert!(text.lines().count() >= 2, "header and a sample: {text}");
    run.terminate();
    let (code, err) = run.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("File saved to"), "{err}");
    assert_eq!(entries(dir.path()), ["results.csv"]);
}

/// The target exits before the first sample: an error, and the old file is intact.
#[test]
#[serial]
fn target_exiting_before_a_sample_is_an_error_and_keeps_the_file() {
    let mut target = Target::start(Fixture::Console, Runtime::Net9);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, OLD).unwrap();
    let mut cmd = collect_into(target.pid(), "json", &path);
    cmd.args(["--refresh-interval", "10"]);
    let mut run = Running::spawn(cmd);
    assert!(run.wait_line("Collecting counters", Duration::from_secs(20)));
    assert!(target
        .close_stdin_and_wait(Duration::from_secs(20))
        .is_some());
    let (code, err) = run.wait(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("was not written"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), OLD);
    assert_eq!(entries(dir.path()), ["results.json"]);
}

/// The target exits mid-collection: the JSON document is closed and holds what came until then.
#[test]
#[serial]
fn target_exiting_mid_collection_leaves_a_valid_file() {
    let mut target = Target::start(Fixture::Console, Runtime::Net8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let mut run = Running::spawn(collect_into(target.pid(), "json", &path));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&path).map_or(0, |t| t.matches("\"timestamp\"").count()) < 30 {
        assert!(Instant::now() < deadline, "no samples: {:?}", run.stderr);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(target
        .close_stdin_and_wait(Duration::from_secs(20))
        .is_some());
    let (code, err) = run.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("exited"), "{err}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("a complete JSON document");
    assert!(doc["Events"].as_array().unwrap().len() >= 30);
}
