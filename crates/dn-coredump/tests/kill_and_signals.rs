//! The target must keep running whatever happens to the collector: SIGKILL
//! at random moments, SIGTERM/SIGINT mid-dump; and the dump must hold up while
//! the target creates and destroys threads. No partial file ever carries the
//! final name, and the exit status says what happened.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dn_testkit::{Fixture, Runtime, Target};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn spawn_collector(pid: i32, core: &std::path::Path) -> std::process::Child {
    Command::new(collector())
        .args(["-p", &pid.to_string(), "-o"])
        .arg(core)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How long a complete dump of `pid` takes with the collector binary.
fn dump_duration(pid: i32, dir: &std::path::Path) -> Duration {
    let core = dir.join("timing");
    let t = Instant::now();
    let st = spawn_collector(pid, &core).wait_with_output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let d = t.elapsed();
    std::fs::remove_file(core).unwrap();
    d
}

#[test]
fn sigkill_of_the_collector_at_random_moments_never_leaves_the_target_stopped() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert!(target.command("threads 4").starts_with("ok"));
    assert_eq!(target.command("alloc-mb 128"), "ok");
    let dir = tempfile::tempdir().unwrap();
    // The shortest of three: the first dump faults in fresh memory and takes several times as
    // long as the next ones, which would put most kills after the collector ended.
    let full = (0..3)
        .map(|_| dump_duration(pid, dir.path()))
        .min()
        .unwrap();
    let window_us = (full.as_micros() as u64).max(1000) + 5_000;
    let mut rng = Lcg(0x5eed_0000 ^ u64::from(std::process::id()));
    let mut killed_mid_run = 0;
    for round in 0..30 {
        let core = dir.path().join(format!("k{round}"));
        let mut child = spawn_collector(pid, &core);
        std::thread::sleep(Duration::from_micros(rng.below(window_us)));
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let status = child.wait().unwrap();
        if status.signal() == Some(libc::SIGKILL) {
            killed_mid_run += 1;
            // The dump is written unnamed and linked when complete: nothing is left behind.
            assert!(
                !core.exists(),
                "round {round}: partial file under the final name"
            );
        } else {
            assert!(status.success(), "round {round}: {status:?}");
            std::fs::remove_file(&core).unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "round {round}: a leftover file"
        );
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong", "round {round}");
    }
    // The kills must really have landed while the collector ran.
    assert!(
        killed_mid_run >= 15,
        "only {killed_mid_run}/30 kills hit a running collector"
    );
}

#[test]
fn sigterm_and_sigint_abort_cleanly_remove_the_file_and_resume() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("alloc-mb 512"), "ok");
    let dir = tempfile::tempdir().unwrap();
    // The shortest of three: the first dump faults in fresh memory and takes several times as
    // long as the next ones, which would put most kills after the collector ended.
    let full = (0..3)
        .map(|_| dump_duration(pid, dir.path()))
        .min()
        .unwrap();
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let core = dir.path().join(format!("{sig:?}"));
        // The signal must land during the copy; a dump that wins the race proves nothing, so
        // try again (a few times) rather than pass without checking the interrupt path.
        let mut interrupted = false;
        for _attempt in 0..3 {
            let child = spawn_collector(pid, &core);
            // Into the memory copy (the stop happens within the first few ms).
            std::thread::sleep(full / 3);
            kill(Pid::from_raw(child.id() as i32), sig).unwrap();
            let out = child.wait_with_output().unwrap();
            assert_running(pid);
            assert_eq!(target.command("ping"), "pong");
            if out.status.success() {
                eprintln!("{sig:?} arrived after completion; retrying");
                std::fs::remove_file(&core).unwrap();
                continue;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("interrupted by {}", sig.as_str())),
                "{sig:?}: {err}"
            );
            // As a shell reports a process the signal ended: 128 + its number.
            assert_eq!(out.status.code(), Some(128 + sig as i32), "{sig:?}: {err}");
            assert!(!core.exists(), "partial file left after {sig:?}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            interrupted = true;
            break;
        }
        assert!(
            interrupted,
            "{sig:?} never arrived while a dump was running"
        );
    }
}

#[test]
fn threads_created_and_destroyed_during_the_dump_do_not_break_it() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("churn 4"), "ok");
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let core = dir.path().join(format!("churn{round}"));
        let out = spawn_collector(pid, &core).wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every thread in the core was stopped with valid registers: gdb and readelf read it.
        let threads = check_readelf(&core);
        assert!(threads >= 5, "round {round}: {threads} threads");
        std::fs::remove_file(&core).unwrap();
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong", "round {round}");
    }
}
