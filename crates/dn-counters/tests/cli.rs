//! The command line: errors are one clear line with exit code 1; `list` and `ps` output.

mod common;

use std::process::Command;

use common::bin;
use dn_testkit::{Fixture, Runtime, Target};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_one_clear_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["monitor", "-p", "999999"],
            "process 999999 is not running",
        ),
        (&["monitor"], "say which process to watch"),
        (
            &[
                "collect",
                "-p",
                "1",
                "--counters",
                "System.Runtime[cpu-usage",
            ],
            "Error parsing --counters argument",
        ),
        (
            &["collect", "-p", "1", "--counters", ""],
            "Expected non-empty counter_provider",
        ),
        (
            &["collect", "-p", "1", "-o", ""],
            "Output cannot be an empty string",
        ),
        (&["list", "-r", "abc"], "unknown runtime version 'abc'"),
        (&["list", "-r", "7"], "unknown runtime version '7'"),
        (
            &["serve", "-p", "999999", "--listen", "not-an-address"],
            "cannot listen on not-an-address",
        ),
    ];
    for (args, want) in cases {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Usage errors exit with 2, also in one line.
    let usage: &[(&[&str], &str)] = &[
        (&["monitor", "-p", "1", "-n", "x"], "cannot be used with"),
        (
            &["monitor", "--refresh-interval", "0", "-p", "1"],
            "the refresh interval is whole seconds from 1 to 86400, not '0'",
        ),
        (
            &["collect", "--refresh-interval", "0.5", "-p", "1"],
            "not '0.5'",
        ),
        (&["serve", "--all", "-p", "1"], "cannot be used with"),
        (&["monitor", "--no-such-option"], "unexpected argument"),
    ];
    for (args, want) in usage {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("dn-counters: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn list_knows_the_runtime_counters() {
    let (code, out, _) = run(&["list", "-r", "8", "--json"]);
    assert_eq!(code, Some(0));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["source"] == "EventCounters")
            .count(),
        27
    );
    assert_eq!(rows.iter().filter(|r| r["source"] == "Meter").count(), 0);
    let (_, out, _) = run(&["list", "-r", "3.1", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 19);
    let (_, out, _) = run(&["list", "-r", "10", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.iter().filter(|r| r["source"] == "Meter").count(), 19);
    let (code, out, _) = run(&["list"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().next().unwrap().starts_with("PROVIDER"));
    assert!(out.contains("dotnet.gc.collections") && out.contains("gen-0-gc-budget"));
}

/// A port in use is an error before anything else happens, for one process and for --all.
#[test]
fn port_in_use_is_one_clear_line() {
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for args in [
        vec!["serve", "-p", &t.pid().to_string(), "--listen", &addr],
        vec!["serve", "--all", "--listen", &addr],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
            "{err}"
        );
    }
}

#[test]
fn ps_lists_the_target() {
    let t = Target::start(Fixture::Console, Runtime::Net8);
    let (code, out, _) = run(&["ps", "--json"]);
    assert_eq!(code, Some(0));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let me = rows
        .iter()
        .find(|r| r["pid"].as_i64() == Some(i64::from(t.pid())))
        .expect("target listed");
    assert_eq!(me["name"], "ConsoleTarget");
    let (_, out, _) = run(&["ps"]);
    assert!(out.contains(&t.pid().to_string()));
}
