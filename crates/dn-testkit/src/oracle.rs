//! Runs the oracle programs (independent .NET tools that tell what the right answer is).

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};

/// Builds (if needed) and runs oracle `name` with `args`; returns its stdout.
/// A non-zero exit is an error carrying the oracle's stderr.
pub fn run_oracle(name: &str, args: &[&str]) -> Result<String> {
    let dll = crate::builder::oracle(name)?;
    let output = Command::new(crate::dotnet())
        .arg(&dll)
        .args(args)
        .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
        .env("DOTNET_NOLOGO", "1")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running oracle {name}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "oracle {name} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(stdout)
}
