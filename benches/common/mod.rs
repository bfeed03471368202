//! What the benchmarks share: the target folder and a release build of the tools.

use std::path::PathBuf;
use std::process::Command;

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
