//! Helpers shared by the binaries' integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

use dn_testkit::Target;

/// Runs `dn-dump` with `args` and returns what it did.
pub fn dn_dump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dn-dump"))
        .args(args)
        .output()
        .expect("run dn-dump")
}

/// The text `dotnet-gcdump report FILE` prints (the oracle for snapshots); fails the test if
/// it fails.
pub fn dotnet_gcdump_report(tool: &Path, file: &Path) -> String {
    let out = Command::new(tool).arg("report").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "dotnet-gcdump report {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dotnet-gcdump collect -p PID -o PATH` (the oracle's own snapshot); fails the test if it
/// fails.
pub fn dotnet_gcdump_collect(tool: &Path, t: &Target, path: &Path) {
    let out = Command::new(tool)
        .args(["collect", "-p", &t.pid().to_string(), "-o"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dotnet-gcdump collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dn-dump gcdump collect -p PID -o PATH EXTRA...` of a started target.
pub fn gcdump_collect(t: &Target, path: &Path, extra: &[&str]) -> Output {
    let pid = t.pid().to_string();
    let mut args = vec![
        "gcdump",
        "collect",
        "-p",
        &pid,
        "-o",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dn_dump(&args)
}

/// `dn-dump collect -p PID -o PATH EXTRA...` of a started target.
pub fn collect(t: &Target, path: &Path, extra: &[&str]) -> Output {
    let pid = t.pid().to_string();
    let mut args = vec!["collect", "-p", &pid, "-o", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    dn_dump(&args)
}

pub mod chromium;
