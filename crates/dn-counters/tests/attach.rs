//! Ways to pick the target: `-- COMMAND` (started suspended, watched from startup), `-n NAME`,
//! `--diagnostic-port` (listening, or `,connect`), and what happens when the target exits.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, JsonlCollect};
use dn_testkit::{Fixture, Runtime, StartOptions, Target};
use serial_test::serial;

/// Starts the Console fixture through dn-counters, feeds it commands on stdin (which the child
/// shares), and checks counters flowed from its start to its exit.
fn launch(rt: Runtime) {
    let built = dn_testkit::build(Fixture::Console, rt).expect("fixture builds");
    let started = std::time::Instant::now();
    let mut child = Command::new(bin())
        .args(["collect", "--format", "jsonl", "-o", "-", "--"])
        .arg(&built.program)
        .args(&built.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    writeln!(stdin, "throw 7").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    writeln!(stdin, "exit").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", rt.label());
    // The child's own output goes to our stderr, the exit is reported there too.
    assert!(err.contains("READY "), "{err}");
    assert!(err.contains("exited (exit code 0)"), "{err}");
    // The tool ends when its child does (about 6 s of scripted input here), not at some later
    // timeout; the bound is loose because test binaries run side by side on small machines.
    assert!(
        took < Duration::from_secs(60),
        "{}: took {took:?}",
        rt.label()
    );
    let samples: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        samples.len() > 10,
        "{}: {} samples",
        rt.label(),
        samples.len()
    );
    let pid = samples[0]["pid"].as_i64().unwrap();
    assert!(
        err.contains(&format!("READY {pid}")),
        "the advertised pid is the child: {err}"
    );
    let thrown: f64 = if rt.major() >= 9 {
        samples
            .iter()
            .filter(|s| s["name"] == "dotnet.exceptions")
            .map(common::value)
            .fold(0.0, f64::max)
    } else {
        samples
            .iter()
            .filter(|s| s["name"] == "exception-count")
            .map(common::value)
            .sum()
    };
    assert!(thrown >= 7.0, "{}: exceptions {thrown}", rt.label());
}

#[test]
#[serial]
fn launch_command_net8() {
    launch(Runtime::Net8);
}

#[test]
#[serial]
fn launch_command_net10() {
    launch(Runtime::Net10);
}

#[test]
#[serial]
fn name_must_match_exactly_one_process() {
    let a = Target::start(Fixture::Console, Runtime::Net8);
    let b = Target::start(Fixture::Console, Runtime::Net8);
    let out = Command::new(bin())
        .args([
            "collect",
            "-n",
            "ConsoleTarget",
            "--duration",
            "1",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("are named 'ConsoleTarget'"), "{err}");
    assert!(
        err.contains(&a.pid().to_string()) && err.contains(&b.pid().to_string()),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["collect", "-n", "NoSuchProgramAnywhere", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no .NET process named"));
}

/// Other programs on the machine may run the same fixtures, so the process gets a name of its
/// own: the self-contained apphost started through a uniquely named symlink (the kernel names
/// the process after it; the apphost finds its files through /proc/self/exe).
#[test]
#[serial]
fn name_finds_the_one_process() {
    let built = dn_testkit::build(Fixture::Console, Runtime::Net8).expect("fixture builds");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("dnc{}", std::process::id());
    let link = dir.path().join(&name);
    std::os::unix::fs::symlink(&built.program, &link).unwrap();
    let mut app = Command::new(&link)
        .args(&built.args)
        .env("TMPDIR", "/tmp")
        .env("DN_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(app.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.starts_with("READY"), "{ready}");
    let pid = app.id() as i64;
    let mut c = JsonlCollect::start(&["-n", &name]);
    let got = c.wait_for(Duration::from_secs(15), |_| true);
    let _ = app.kill();
    let _ = app.wait();
    let (_, v) = got.unwrap_or_else(|| panic!("no samples: {:?}", c.stop()));
    assert_eq!(v["pid"].as_i64(), Some(pid));
}

#[test]
#[serial]
fn diagnostic_port_listen_and_connect() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("port.sock");
    let port_s = port.to_str().unwrap().to_string();
    let mut c = JsonlCollect::start(&["--diagnostic-port", &port_s]);
    while !port.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The runtime connects to us and waits (suspend) until dn-counters resumes it.
    let t = Target::start_with(
        Fixture::Console,
        Runtime::Net9,
        StartOptions {
            env: vec![("DOTNET_DiagnosticPorts".into(), port_s.clone())],
            ..StartOptions::default()
        },
    );
    let (_, v) = c
        .wait_for(Duration::from_secs(15), |_| true)
        .unwrap_or_else(|| panic!("no samples: {:?}", c.stop()));
    assert_eq!(v["pid"].as_i64(), Some(i64::from(t.pid())));
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Waiting for connection on"), "{err}");

    // `,connect`: we connect to the runtime's own socket.
    let spec = format!("{},connect", t.socket_path().display());
    let mut c = JsonlCollect::start(&["--diagnostic-port", &spec]);
    let (_, v) = c
        .wait_for(Duration::from_secs(15), |_| true)
        .unwrap_or_else(|| panic!("no samples: {:?}", c.stop()));
    assert_eq!(v["pid"].as_i64(), Some(i64::from(t.pid())));
}

/// The target exiting ends the tool with a line saying so and exit code 0.
#[test]
#[serial]
fn target_exit_ends_the_monitor() {
    for rt in [Runtime::Net8, Runtime::Net10] {
        let mut t = Target::start(Fixture::Console, rt);
        let pid = t.pid();
        let child = Command::new(bin())
            .args(["monitor", "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(t.command("exit"), "bye");
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        common::assert_success(&out);
        assert!(text.contains("[System.Runtime]"), "{text}");
        assert!(
            text.trim_end().ends_with(&format!("Process {pid} exited.")),
            "{}: {text}",
            rt.label()
        );
    }
}
