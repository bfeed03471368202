//! What the benchmarks share: the target folder and a release build of the tools.
#![allow(dead_code)] // each benchmark uses its own subset

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The cargo target folder (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dn_testkit::workspace_root().join("target"))
}

/// Builds `cargo build --release ARGS` in the workspace; panics if the build fails.
pub fn cargo_release(args: &[&str]) {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .args(args)
        .current_dir(dn_testkit::workspace_root())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --release {args:?} failed");
}

/// The release `dn-dump`, built first.
pub fn dn_dump() -> PathBuf {
    cargo_release(&["--bin", "dn-dump", "-p", "dn"]);
    target_dir().join("release/dn-dump")
}

/// Runs a command and returns its wall time and peak RSS (KiB) from wait4's rusage.
// The child is reaped by wait4 itself, which std's Child does not know about.
#[allow(clippy::zombie_processes, dead_code)]
pub fn timed(cmd: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes into the two locals we pass; the pid is our own child.
    let r = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
    assert_eq!(r, pid.as_raw());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (start.elapsed(), usage.ru_maxrss as u64)
}

/// The fastest of `n` runs (wall, and that run's peak RSS in KiB).
#[allow(dead_code)]
pub fn best_of(n: usize, mut make: impl FnMut() -> Command) -> (Duration, u64) {
    (0..n)
        .map(|_| timed(&mut make()))
        .min_by_key(|(d, _)| *d)
        .unwrap()
}
