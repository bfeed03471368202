//! Microsoft's diagnostics tools (dotnet-dump, dotnet-gcdump, dotnet-counters, dotnet-trace) as
//! oracles and benchmark peers: installed as .NET tools into the build cache on first use,
//! under the cache's file lock so parallel test binaries install each once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The version the tests and benchmarks compare against.
pub const TOOLS_VERSION: &str = "10.0.750501";

/// The executable of Microsoft's tool `name` (e.g. "dotnet-dump"), installing it first if
/// needed. Fails with the installer's output when the tool cannot be had.
pub fn dotnet_tool(name: &str) -> Result<PathBuf> {
    let root = crate::cache::cache_root();
    let _lock = crate::cache::lock_entry(&root, &format!("tool-{name}-{TOOLS_VERSION}"))?;
    let dir = root.join(format!("tool-{name}-{TOOLS_VERSION}"));
    let exe = dir.join(name);
    if exe.is_file() {
        return Ok(exe);
    }
    let out = Command::new(crate::dotnet())
        .args(["tool", "install", "--tool-path"])
        .arg(&dir)
        .args([name, "--version", TOOLS_VERSION])
        .envs(crate::builder::build_env())
        .output()
        .with_context(|| format!("running dotnet tool install {name}"))?;
    if !out.status.success() || !exe.is_file() {
        bail!(
            "cannot install {name} {TOOLS_VERSION} (dotnet tool install): {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(exe)
}

/// Runs dotnet-dump's `analyze` on `core` with `commands` (then `exit`) and returns its stdout.
/// Panics with dotnet-dump's stderr when it fails: it is the oracle, a test cannot go on.
pub fn dotnet_dump_analyze(core: &Path, commands: &[String]) -> String {
    let exe = dotnet_tool("dotnet-dump").expect("dotnet-dump as a .NET tool");
    let mut cmd = Command::new(exe);
    cmd.arg("analyze").arg(core);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd
        .args(["-c", "exit"])
        .stdin(Stdio::null())
        .output()
        .expect("running dotnet-dump");
    assert!(
        out.status.success(),
        "dotnet-dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
