//! dotnet-counters' monitor options: `--showDeltas` and `--resume-runtime false`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use common::{assert_success, bin};
use dn_core::ipc::process::resume_runtime;
use dn_core::ipc::reverse::ReversePort;
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

/// Plain snapshots with `--raw --showDeltas`: every delta is the value minus the same row's value
/// in the snapshot before.
#[test]
#[serial]
fn show_deltas_are_the_change_since_the_previous_refresh() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let out = Command::new(bin())
        .args(["monitor", "-p", &target.pid().to_string()])
        .args(["--raw", "--showDeltas", "--duration", "4.5"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let snapshots: Vec<&str> = text.split("\n\n").filter(|s| !s.is_empty()).collect();
    assert!(snapshots.len() >= 3, "{text}");
    assert!(snapshots[0].lines().nth(1).unwrap().ends_with("Last Delta"));
    // Untagged rows: `    name (unit)   value   [delta]`.
    let rows = |snap: &str| -> Vec<(String, f64, Option<f64>)> {
        snap.lines()
            .filter(|l| l.starts_with("    dotnet."))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                let num = |s: &str| s.parse::<f64>().ok();
                match cells.as_slice() {
                    [name, unit, v, d] if num(v).is_some() => {
                        Some((format!("{name} {unit}"), num(v)?, Some(num(d)?)))
                    }
                    [name, unit, v] => Some((format!("{name} {unit}"), num(v)?, None)),
                    _ => None,
                }
            })
            .collect()
    };
    let mut checked = 0;
    for pair in snapshots.windows(2) {
        let before = rows(pair[0]);
        for (name, value, delta) in rows(pair[1]) {
            let Some((_, prev, _)) = before.iter().find(|(n, _, _)| *n == name) else {
                continue;
            };
            let delta = delta.unwrap_or_else(|| panic!("{name}: no delta in {}", pair[1]));
            let want = value - prev;
            assert!(
                (delta - want).abs() <= want.abs() * 1e-9 + 1e-9,
                "{name}: delta {delta}, values {prev} -> {value}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} deltas checked:\n{text}");
}

/// `--diagnostic-port P --resume-runtime false`: the session runs on a runtime waiting at startup
/// and leaves it waiting; another tool listening on P afterwards resumes it.
#[test]
#[serial]
fn resume_runtime_false_leaves_the_runtime_suspended() {
    let built = dn_testkit::build(Fixture::Console, Runtime::Net8).expect("fixture builds");
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("port.sock");
    let tool = Command::new(bin())
        .args(["collect", "--format", "jsonl", "-o", "-", "--duration", "3"])
        .arg("--diagnostic-port")
        .arg(&port)
        .args(["--resume-runtime", "false"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !port.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut app = Command::new(&built.program)
        .args(&built.args)
        .env("TMPDIR", "/tmp")
        .env("DN_EXIT_ON_STDIN_EOF", "1")
        .env("DOTNET_DiagnosticPorts", &port)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = channel();
    let stdout = app.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let out = tool.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stays suspended"), "{err}");
    // Main has not run: no READY line while dn-counters watched, nor after.
    let early = lines.recv_timeout(Duration::from_millis(500));
    assert!(
        !early.as_deref().is_ok_and(|l| l.starts_with("READY")),
        "resumed: {early:?}"
    );
    assert!(app.try_wait().unwrap().is_none(), "the app exited");
    // Another tool takes the port and resumes it.
    let other = ReversePort::bind(&port).expect("the port path is free again");
    resume_runtime(&other).expect("ResumeRuntime");
    let ready = lines.recv_timeout(Duration::from_secs(20));
    assert!(
        ready.as_deref().is_ok_and(|l| l.starts_with("READY")),
        "{ready:?}"
    );
    let _ = app.kill();
    let _ = app.wait();
}
