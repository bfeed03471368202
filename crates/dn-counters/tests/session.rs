//! EventPipe sessions against real runtimes: the stop handshake drains the stream (no deadlock
//! with a rundown-sized tail), old runtimes fall back to CollectTracing, and no session outlives
//! dn-counters, whether it stops cleanly or is SIGKILLed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventpipe_threads, socket_fd_count, thread_names, JsonlCollect};
use dn_core::eventpipe::{Chunk, Provider, Session, SessionConfig, SharedChannel};
use dn_core::ipc::client::Reply;
use dn_core::ipc::process::CommandChannel;
use dn_core::ipc::protocol::{commands, Command};
use dn_core::ipc::{DiagnosticsClient, IpcError};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

#[derive(Default)]
struct Seen {
    bytes: usize,
    ended: bool,
    error: Option<String>,
}

fn start(target: &Target, config: &SessionConfig) -> (Session, Arc<Mutex<Seen>>) {
    let client = DiagnosticsClient::for_pid(target.pid()).expect("diagnostics socket");
    start_on(Arc::new(client), config)
}

/// Starts a session over `channel`, recording what its stream delivers.
fn start_on(channel: SharedChannel, config: &SessionConfig) -> (Session, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let session = Session::start(channel, config, move |c| {
        let mut s = s2.lock().unwrap();
        match c {
            Chunk::Data(b) => s.bytes += b.len(),
            Chunk::End(e) => {
                s.ended = true;
                s.error = e.map(|e| e.to_string());
            }
        }
    })
    .expect("session starts");
    (session, seen)
}

/// With rundown on, the runtime writes most of a megabyte after StopTracing and answers only once
/// it is out: stopping must drain it and finish promptly.
fn stop_drains_rundown(rt: Runtime) {
    let target = Target::start(Fixture::Console, rt);
    let mut config = SessionConfig::new(vec![Provider::new(
        "Microsoft-Windows-DotNETRuntime",
        0x1,
        4,
    )]);
    config.request_rundown = true;
    let (mut session, seen) = start(&target, &config);
    assert_eq!(session.start_command(), "CollectTracing2");
    std::thread::sleep(Duration::from_millis(500));
    let before = seen.lock().unwrap().bytes;
    let t = Instant::now();
    session
        .stop(Duration::from_secs(20))
        .expect("stop succeeds");
    let took = t.elapsed();
    let s = seen.lock().unwrap();
    assert!(
        s.ended && s.error.is_none(),
        "{}: stream end {:?}",
        rt.label(),
        s.error
    );
    assert!(
        s.bytes - before > 100_000,
        "{}: only {} bytes after StopTracing: no rundown tail?",
        rt.label(),
        s.bytes - before
    );
    assert!(
        took < Duration::from_secs(10),
        "{}: stop took {took:?}",
        rt.label()
    );
    assert!(session.has_ended());
}

#[test]
#[serial]
fn stop_drains_rundown_net8() {
    stop_drains_rundown(Runtime::Net8);
}

#[test]
#[serial]
fn stop_drains_rundown_net10() {
    stop_drains_rundown(Runtime::Net10);
}

/// A runtime that answers "unknown command" to CollectTracing2 (older than any we can run here:
/// even 3.1 knows it) gets CollectTracing; the real runtime then serves that command, rundown
/// tail included, and the stop drains it.
struct WithoutCollectTracing2(DiagnosticsClient);

impl CommandChannel for WithoutCollectTracing2 {
    fn exchange(&self, cmd: Command, payload: &[u8]) -> Result<Reply, IpcError> {
        if cmd == commands::COLLECT_TRACING2 {
            return Err(IpcError::Runtime {
                command: cmd.name,
                hresult: dn_core::ipc::protocol::HR_UNKNOWN_COMMAND,
                message: None,
            });
        }
        self.0.exchange(cmd, payload)
    }
}

#[test]
#[serial]
fn falls_back_to_collect_tracing() {
    let target = Target::start(Fixture::Console, Runtime::Net8);
    let config =
        SessionConfig::new(vec![Provider::new("System.Runtime", 0, 4)
            .with_arguments(&[("EventCounterIntervalSec", "1")])]);
    let client = DiagnosticsClient::for_pid(target.pid()).unwrap();
    let (mut session, seen) = start_on(Arc::new(WithoutCollectTracing2(client)), &config);
    assert_eq!(session.start_command(), "CollectTracing");
    std::thread::sleep(Duration::from_millis(1500));
    session.stop(Duration::from_secs(20)).expect("stop");
    let s = seen.lock().unwrap();
    assert!(s.ended && s.bytes > 1000, "{} bytes", s.bytes);
}

/// .NET Core 3.1 has no ProcessInfo and no Metrics: dn-counters still shows its EventCounters.
#[test]
#[serial]
fn netcore31_event_counters() {
    let target = Target::start(Fixture::Console, Runtime::NetCore31);
    let mut c = JsonlCollect::start(&["-p", &target.pid().to_string()]);
    let (_, v) = c
        .wait_for(Duration::from_secs(15), |v| {
            common::name_is(v, &["cpu-usage"])
        })
        .expect("cpu-usage from .NET Core 3.1");
    assert_eq!(v["provider"], "System.Runtime");
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
    // No spurious bursts: cpu-usage is a percentage of the machine.
    for v in c.seen.iter().filter(|v| common::name_is(v, &["cpu-usage"])) {
        assert!(common::value(v) <= 100.0, "{v}");
    }
}

fn metrics_threads(pid: i32) -> usize {
    thread_names(pid)
        .iter()
        .filter(|n| n.starts_with("MetricsEventSou"))
        .count()
}

/// Waits up to 5 s for `f` to hold.
fn settles(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// What the runtime does when dn-counters dies without a word (SIGKILL): the closed socket ends
/// the session at the runtime's next write (within about a second for a counters session). The
/// session's streaming thread and socket go away, the MetricsEventSource aggregation thread
/// (.NET 9+) stops, and a new session works. The clean path (SIGTERM -> StopTracing) likewise.
fn no_session_left_behind(rt: Runtime) {
    let target = Target::start(Fixture::Console, rt);
    let pid = target.pid();
    let (threads0, sockets0) = (eventpipe_threads(pid), socket_fd_count(pid));

    for kill in [libc::SIGKILL, libc::SIGTERM] {
        let mut c = JsonlCollect::start(&["-p", &pid.to_string()]);
        c.wait_for(Duration::from_secs(15), |_| true)
            .unwrap_or_else(|| panic!("{}: no samples", rt.label()));
        assert_eq!(
            eventpipe_threads(pid),
            threads0 + 1,
            "{}: a streaming thread",
            rt.label()
        );
        assert_eq!(
            socket_fd_count(pid),
            sockets0 + 1,
            "{}: one more socket",
            rt.label()
        );
        if rt.major() >= 9 {
            assert_eq!(metrics_threads(pid), 1, "{}", rt.label());
        }
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(c.child.id() as i32, kill);
        }
        let _ = c.child.wait();
        assert!(
            settles(|| eventpipe_threads(pid) == threads0 && socket_fd_count(pid) == sockets0),
            "{} after signal {kill}: {} EventPipe threads (was {threads0}), {} sockets (was {sockets0})",
            rt.label(),
            eventpipe_threads(pid),
            socket_fd_count(pid)
        );
        assert!(
            settles(|| metrics_threads(pid) == 0),
            "{} after signal {kill}: MetricsEventSource still aggregating",
            rt.label()
        );
    }
    // And the target takes a new session as before.
    let mut c = JsonlCollect::start(&["-p", &pid.to_string()]);
    assert!(c.wait_for(Duration::from_secs(15), |_| true).is_some());
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(settles(|| eventpipe_threads(pid) == threads0));
}

#[test]
#[serial]
fn no_session_left_behind_net8() {
    no_session_left_behind(Runtime::Net8);
}

#[test]
#[serial]
fn no_session_left_behind_net9() {
    no_session_left_behind(Runtime::Net9);
}

#[test]
#[serial]
fn no_session_left_behind_net10() {
    no_session_left_behind(Runtime::Net10);
}

/// Two tools on one .NET 10 process share MetricsEventSource's SHARED session. The second asks
/// for another refresh interval: the runtime keeps the running one, tells that client (event 17,
/// matched by our ClientId), and the SHARED values still reach both.
#[test]
#[serial]
fn shared_metrics_session_conflict_is_reported() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid().to_string();
    let mut first = JsonlCollect::start(&["-p", &pid, "--refresh-interval", "1"]);
    first
        .wait_for(Duration::from_secs(15), |_| true)
        .expect("first tool gets samples");
    let mut second = JsonlCollect::start(&["-p", &pid, "--refresh-interval", "2"]);
    let mut times = Vec::new();
    while times.len() < 3 {
        let (_, v) = second
            .wait_for(Duration::from_secs(15), |v| {
                v["name"] == "dotnet.timer.count"
            })
            .expect("second tool gets the shared values");
        times.push(chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).unwrap());
    }
    // Values at the running session's 1 s interval, not the 2 s asked for.
    let gap = (times[2] - times[1]).num_milliseconds();
    assert!((700..=1300).contains(&gap), "interval {gap} ms");
    let (code, err) = second.stop();
    assert_eq!(code, Some(0));
    assert!(
        err.contains("already runs with refresh interval 1s (asked for 2s)"),
        "{err}"
    );
    let (_, err) = first.stop();
    assert!(
        !err.contains("Warning"),
        "the first tool was not the one rejected: {err}"
    );
}
