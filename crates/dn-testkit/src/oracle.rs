//! Runs the oracle programs (independent .NET tools that tell what the right answer is).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest an oracle run may take before it is killed (the dumps tests give it are small).
const ORACLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds (if needed) and runs oracle `name` with `args`; returns its stdout.
/// A non-zero exit is an error carrying the oracle's stderr. A run that does not end within
/// [`ORACLE_TIMEOUT`] is killed and tried once more (a .NET process has been seen to hang at
/// startup under load); a second hang is an error.
pub fn run_oracle(name: &str, args: &[&str]) -> Result<String> {
    let dll = crate::builder::oracle(name)?;
    for attempt in 1..=2 {
        match run_once(&dll, name, args)? {
            Some(out) => return Ok(out),
            None => eprintln!(
                "dn-testkit: oracle {name} {args:?} did not finish in {} s (attempt {attempt}): killed",
                ORACLE_TIMEOUT.as_secs()
            ),
        }
    }
    bail!(
        "oracle {name} {args:?} hung twice (over {} s each)",
        ORACLE_TIMEOUT.as_secs()
    )
}

/// One run: `Ok(None)` if it timed out (and was killed).
fn run_once(dll: &std::path::Path, name: &str, args: &[&str]) -> Result<Option<String>> {
    let mut child = Command::new(crate::dotnet())
        .arg(dll)
        .args(args)
        .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
        .env("DOTNET_NOLOGO", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running oracle {name}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > ORACLE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if !status.success() {
        bail!(
            "oracle {name} {args:?} failed ({status}): {}",
            stderr.trim()
        );
    }
    Ok(Some(stdout))
}
