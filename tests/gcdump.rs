//! `dn-dump gcdump` against real runtimes, with dotnet-gcdump as the oracle.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::dn_dump;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// (type, module) -> (count, total bytes) from our JSON report of `file`.
fn our_rows(file: &Path) -> BTreeMap<(String, String), (u64, u64)> {
    let out = dn_dump(&["gcdump", "report", "--json", file.to_str().unwrap()]);
    assert!(out.status.success(), "report failed: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["type_name"].as_str().unwrap().to_string(),
                    r["module"].as_str().unwrap_or("").to_string(),
                ),
                (
                    r["count"].as_u64().unwrap(),
                    r["total_bytes"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The rows of `dotnet-gcdump report` (object bytes, count, type with module), in its order.
fn their_report(tool: &Path, file: &Path) -> Vec<String> {
    let out = Command::new(tool).arg("report").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "dotnet-gcdump report failed: {}",
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.contains("Object Bytes"))
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Our snapshot of `t` into `file`; its JSON summary. Every runtime loses nothing here: .NET 11
/// is asked for a blocking (lossless) session with CollectTracing6, the older ones get the
/// circular buffer of CollectTracing2 (CollectTracing on 3.1).
fn ours(t: &Target, file: &Path) -> Value {
    let pid = t.pid().to_string();
    let out = dn_dump(&[
        "gcdump",
        "collect",
        "-p",
        &pid,
        "-o",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "collect failed: {}", stderr(&out));
    assert!(stderr(&out).contains(" 0 events lost"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("collect JSON");
    let (buffering, command) = match t.runtime() {
        Runtime::Net11 => ("block", "CollectTracing6"),
        Runtime::NetCore31 => ("drop", "CollectTracing"),
        _ => ("drop", "CollectTracing2"),
    };
    assert_eq!(v["buffering"], buffering, "{v}");
    assert_eq!(v["start_command"], command, "{v}");
    assert_eq!(v["attempts"], 1, "{v}");
    assert_eq!(v["losses"]["events"], 0, "{v}");
    v
}

fn agrees_with_dotnet_gcdump(rt: Runtime) {
    let tool = dn_testkit::dotnet_tool("dotnet-gcdump").expect("dotnet-gcdump");
    let dir = tempfile::tempdir().unwrap();
    let mut t = Target::start(Fixture::Console, rt);
    assert!(t.command("leak 1000").starts_with("ok"));
    // Each tool's first sessions make the target's runtime build EventSource metadata
    // (reflection caches: RuntimeMethodInfo, ParameterInfo[]...), and finalization churns a few
    // DestroyScout objects: rounds of (theirs, ours) until the target is quiet, then the two
    // snapshots of one round must agree exactly.
    let mut last = Vec::new();
    let mut agreed = None;
    for round in 0..6 {
        let theirs = dir.path().join(format!("theirs{round}.gcdump"));
        let out = Command::new(&tool)
            .args(["collect", "-p", &t.pid().to_string(), "-o"])
            .arg(&theirs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dotnet-gcdump collect: {}",
            stderr(&out)
        );
        let mine = dir.path().join(format!("ours{round}.gcdump"));
        ours(&t, &mine);
        let (a, b) = (our_rows(&mine), our_rows(&theirs));
        last = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| (k.clone(), a.get(k).copied(), b.get(k).copied()))
            .collect();
        if round >= 1 && last.is_empty() {
            agreed = Some((a, mine, theirs));
            break;
        }
    }
    let Some((a, mine, theirs)) = agreed else {
        panic!("{}: (type, ours, theirs) {last:?}", rt.label());
    };
    let leaked = &a[&(
        "ConsoleTarget.LeakedItem".to_string(),
        "ConsoleTarget.dll".to_string(),
    )];
    assert_eq!(leaked.0, 1000);
    // dotnet-gcdump reads our file and prints the same rows as for its own (rows of equal
    // size and count are ordered by type-table position, which differs between the files).
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(their_report(&tool, &mine)),
        sorted(their_report(&tool, &theirs))
    );
}

#[test]
fn agrees_with_dotnet_gcdump_net8() {
    agrees_with_dotnet_gcdump(Runtime::Net8);
}

#[test]
fn agrees_with_dotnet_gcdump_net10() {
    agrees_with_dotnet_gcdump(Runtime::Net10);
}

#[test]
fn agrees_with_dotnet_gcdump_netcore31() {
    agrees_with_dotnet_gcdump(Runtime::NetCore31);
}

#[test]
fn agrees_with_dotnet_gcdump_net11() {
    agrees_with_dotnet_gcdump(Runtime::Net11);
}

/// Non-zero exit with one error line (after the progress lines, if any) that says `needle`.
fn fails_with(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "should fail: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("dn-dump: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains(needle), "{err}");
    assert_eq!(err.trim_end().lines().last(), Some(errors[0]), "{err}");
}

#[test]
fn bad_files_fail_with_one_line_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert!(t.command("ping").starts_with("pong"));
    let good = dir.path().join("good.gcdump");
    ours(&t, &good);
    let bytes = std::fs::read(&good).unwrap();
    for cut in [10, 100, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.gcdump"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        fails_with(
            &dn_dump(&["gcdump", "report", p.to_str().unwrap()]),
            "offset",
        );
    }
    let foreign = dir.path().join("foreign.gcdump");
    std::fs::write(&foreign, b"this is not a heap snapshot at all, just text\n").unwrap();
    fails_with(
        &dn_dump(&["gcdump", "report", foreign.to_str().unwrap()]),
        "not a .gcdump file",
    );
}

#[test]
fn non_dotnet_pid_and_timeout_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("x.gcdump");
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let out = dn_dump(&[
        "gcdump",
        "collect",
        "-p",
        &sleeper.id().to_string(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    fails_with(&out, "diagnostics socket");
    assert!(!out_file.exists());

    // A stopped runtime accepts the connection but never answers: the timeout ends it.
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert!(t.command("ping").starts_with("pong"));
    let pid = nix::unistd::Pid::from_raw(t.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let out = dn_dump(&[
        "gcdump",
        "collect",
        "-p",
        &t.pid().to_string(),
        "-o",
        out_file.to_str().unwrap(),
        "--timeout",
        "2",
    ]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(!out_file.exists());

    // Ctrl-C while the (stopped) runtime has not answered: out at once, no file.
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_dn-dump"))
        .args(["gcdump", "collect", "-p", &t.pid().to_string(), "-o"])
        .arg(&out_file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let child_pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(child_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    fails_with(&out, "interrupted");
    assert!(!out_file.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    // The target is unharmed.
    assert!(t.command("ping").starts_with("pong"));
}
