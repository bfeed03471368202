//! dn-ps against real .NET runtimes.

use std::collections::BTreeSet;
use std::process::Command;

use dn_testkit::{Fixture, Runtime, StartOptions, Target};
use serde_json::Value;
use serial_test::serial;

fn dn_ps(args: &[&str]) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_dn-ps"))
        .args(args)
        .output()
        .expect("run dn-ps");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

fn listing() -> Vec<Value> {
    let (stdout, stderr, ok) = dn_ps(&["--json"]);
    assert!(ok, "dn-ps --json failed: {stderr}");
    serde_json::from_str::<Vec<Value>>(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON array ({e}): {stdout}"))
}

fn row_for(rows: &[Value], pid: i32) -> Option<&Value> {
    rows.iter().find(|r| r["pid"].as_i64() == Some(pid as i64))
}

#[test]
#[serial]
fn lists_each_runtime_with_its_version_and_command_line() {
    let targets: Vec<(Runtime, Target)> = Runtime::MAIN
        .iter()
        .map(|&rt| (rt, Target::start(Fixture::Console, rt)))
        .collect();
    let rows = listing();
    for (rt, t) in &targets {
        let row = row_for(&rows, t.pid())
            .unwrap_or_else(|| panic!("{rt:?} target {} missing from {rows:#?}", t.pid()));
        let version = row["runtime_version"].as_str().expect("runtime_version");
        assert_eq!(
            version.split('.').next().unwrap(),
            rt.major().to_string(),
            "{rt:?}: {row:#}"
        );
        assert_eq!(row["os"], "Linux");
        assert_eq!(row["arch"], "x64");
        assert_eq!(row["entrypoint_assembly"], "ConsoleTarget", "{row:#}");
        let cmd = row["command_line"].as_str().expect("command_line");
        assert!(cmd.contains("ConsoleTarget"), "{rt:?}: {cmd}");
        assert!(row["socket"]
            .as_str()
            .unwrap()
            .contains(&format!("dotnet-diagnostic-{}-", t.pid())));
        assert!(row["reason"].is_null(), "{row:#}");
        assert!(row["executable"].as_str().is_some());
    }
    // The table shows them too, with a header.
    let (table, _, ok) = dn_ps(&["--wide"]);
    assert!(ok);
    assert!(
        table.starts_with("  PID")
            || table.starts_with("PID")
            || table.lines().next().unwrap().contains("PID")
    );
    for (_, t) in &targets {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{} ", t.pid()))),
            "{table}"
        );
    }
}

#[test]
#[serial]
fn a_dotnet_host_process_is_named_by_its_entry_assembly() {
    // .NET 10 fixtures run as `dotnet ConsoleTarget.dll`.
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let rows = listing();
    let row = row_for(&rows, t.pid()).expect("listed");
    assert_eq!(row["process_name"], "dotnet", "{row:#}");
    assert_eq!(row["name"], "ConsoleTarget", "{row:#}");
}

#[test]
#[serial]
fn netcore31_is_listed_with_facts_from_proc() {
    let t = Target::start(Fixture::Console, Runtime::NetCore31);
    let rows = listing();
    let row = row_for(&rows, t.pid()).expect("3.1 target listed");
    assert_eq!(row["runtime_version"], "3.1.3", "{row:#}");
    assert!(row["reason"].as_str().unwrap().contains("3.x"), "{row:#}");
    assert!(row["command_line"]
        .as_str()
        .unwrap()
        .contains("ConsoleTarget"));
}

#[test]
#[serial]
fn non_dotnet_processes_are_absent_and_stale_sockets_are_harmless() {
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let sleeper_pid = sleeper.id() as i32;
    // A stale socket file for a live non-.NET pid (wrong key) and for a dead pid.
    let dir = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let stale_live = format!("{dir}/dotnet-diagnostic-{sleeper_pid}-1-socket");
    let stale_dead = format!("{dir}/dotnet-diagnostic-{}-1-socket", i32::MAX - 7);
    let l1 = std::os::unix::net::UnixListener::bind(&stale_live).unwrap();
    drop(l1); // the file stays, nobody listens
    std::fs::write(&stale_dead, b"").unwrap();
    let t = Target::start(Fixture::Console, Runtime::Net10);

    let rows = listing();
    let _ = std::fs::remove_file(&stale_live);
    let _ = std::fs::remove_file(&stale_dead);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        row_for(&rows, sleeper_pid).is_none(),
        "a non-.NET process was listed: {rows:#?}"
    );
    assert!(row_for(&rows, i32::MAX - 7).is_none());
    assert!(
        row_for(&rows, t.pid()).is_some(),
        "the real target must still be listed"
    );
    assert!(row_for(&rows, std::process::id() as i32).is_none());
}

#[test]
#[serial]
fn a_target_of_another_user_is_listed_with_a_reason() {
    let t = Target::start_with(
        Fixture::Console,
        Runtime::Net10,
        StartOptions {
            run_as: Some((65534, 65534)),
            ..Default::default()
        },
    );
    // Run dn-ps as a third user who can see the socket name but cannot open it.
    let out = Command::new("setpriv")
        .args(["--reuid", "65533", "--regid", "65533", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_dn-ps"))
        .arg("--json")
        .output()
        .expect("setpriv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = row_for(&rows, t.pid())
        .unwrap_or_else(|| panic!("target of another user dropped: {rows:#?}"));
    let reason = row["reason"].as_str().expect("a reason");
    assert!(reason.contains("permission denied"), "{reason}");
    assert!(
        row["command_line"]
            .as_str()
            .unwrap_or("")
            .contains("ConsoleTarget"),
        "{row:#}"
    );
}

#[test]
#[serial]
fn pids_equal_what_the_microsoft_client_lists() {
    let _targets: Vec<Target> = [Runtime::Net8, Runtime::Net10]
        .iter()
        .map(|&rt| Target::start(Fixture::Console, rt))
        .collect();
    let oracle: BTreeSet<i64> = serde_json::from_str::<Vec<i64>>(
        dn_testkit::run_oracle("PsOracle", &[])
            .expect("PsOracle")
            .trim(),
    )
    .expect("oracle prints a JSON array of pids")
    .into_iter()
    .collect();
    let ours: BTreeSet<i64> = listing().iter().filter_map(|r| r["pid"].as_i64()).collect();
    // The oracle is itself a .NET process: it lists itself, and is gone now.
    let oracle_alive: BTreeSet<i64> = oracle
        .into_iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    for pid in &ours {
        assert!(
            oracle_alive.contains(pid),
            "we list {pid}, the oracle does not: {oracle_alive:?}"
        );
    }
    // The oracle trusts any socket name whose pid exists; we also require the name's key to be the
    // live process's start time and a runtime to answer. Every extra pid must be such a stale one.
    for pid in oracle_alive.difference(&ours) {
        assert!(
            only_stale_sockets(*pid as i32),
            "the oracle lists {pid} with a live socket that we missed"
        );
    }
}

/// True when every socket named for `pid` in /tmp is stale: its key is not the start time of the
/// process now holding that pid, or nothing listens on it.
fn only_stale_sockets(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let starttime = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(19).map(str::to_string));
    std::fs::read_dir("/tmp").unwrap().flatten().all(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = name
            .strip_prefix(&format!("dotnet-diagnostic-{pid}-"))
            .and_then(|r| r.strip_suffix("-socket"))
        else {
            return true;
        };
        Some(key.to_string()) != starttime
            || std::os::unix::net::UnixStream::connect(e.path()).is_err()
    })
}

#[test]
#[serial]
fn bad_arguments_are_one_line_errors() {
    let (_, stderr, ok) = dn_ps(&["--no-such-flag"]);
    assert!(!ok);
    assert!(stderr.contains("--no-such-flag"));
}

/// Kills a process when dropped, for targets started outside the harness.
struct KillOnDrop(Vec<i32>, std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

struct RemoveOnDrop(Vec<std::path::PathBuf>);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
#[serial]
fn a_target_in_another_pid_namespace_is_listed() {
    use std::io::BufRead;
    let built = dn_testkit::build(Fixture::Console, Runtime::Net10).expect("build");
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&built.program)
        .args(&built.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unshare");
    let unshare_pid = child.id() as i32;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Inside its namespace the target is pid 1.
    assert_eq!(line.trim(), "READY 1", "{line}");
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
            .unwrap();
    let host_pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let _guard = KillOnDrop(vec![host_pid], child);
    let socket_dir = format!("/proc/{host_pid}/root/tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_dir(&socket_dir).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("dotnet-diagnostic-1-")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "no socket in the namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The runtime leaves its socket behind when killed: remove it with the target.
    let _socket_cleanup = RemoveOnDrop(
        std::fs::read_dir(&socket_dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("dotnet-diagnostic-1-")
            })
            .map(|e| std::path::PathBuf::from("/tmp").join(e.file_name()))
            .collect(),
    );
    let rows = listing();
    let row = row_for(&rows, host_pid)
        .unwrap_or_else(|| panic!("namespaced target {host_pid} missing: {rows:#?}"));
    assert_eq!(
        row["runtime_version"].as_str().unwrap().split('.').next(),
        Some("10")
    );
    assert!(
        row["socket"]
            .as_str()
            .unwrap()
            .contains(&format!("/proc/{host_pid}/root/")),
        "{row:#}"
    );
    assert!(row["reason"].is_null(), "{row:#}");
}

#[test]
#[serial]
fn no_dotnet_process_at_all_is_a_clear_line_and_success() {
    // In a fresh PID namespace dn-ps is alone (pid 1); the host's sockets in /tmp name pids that
    // do not exist there.
    let run = |args: &[&str]| {
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(env!("CARGO_BIN_EXE_dn-ps"))
            .args(args)
            .output()
            .expect("unshare")
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No .NET processes were found.\n"
    );
    assert!(out.stderr.is_empty());
    let out = run(&["--json"]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
#[serial]
fn a_hung_runtime_does_not_hang_the_listing() {
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    let pid = nix::unistd::Pid::from_raw(t.pid());
    // A stopped process still has its socket's backlog: connect succeeds, no reply ever comes.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let start = std::time::Instant::now();
    let rows = listing();
    let took = start.elapsed();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(
        took < std::time::Duration::from_secs(6),
        "dn-ps took {took:?}"
    );
    let row = row_for(&rows, t.pid()).expect("the hung target is still listed");
    let reason = row["reason"].as_str().expect("a reason");
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(t.command("ping"), "pong", "the target runs on");
}
