//! The Dump command set: ask the runtime to write a core of itself with its own `createdump`.
//! For hosts where we may not ptrace; the dump is written by the target, in its mount namespace.

use serde::Serialize;

use super::process::CommandChannel;
use super::protocol::{commands, PayloadWriter};
use super::IpcError;

/// createdump's dump kinds, numbered as the protocol numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeDumpType {
    Mini = 1,
    Heap = 2,
    Triage = 3,
    Full = 4,
}

/// Asks the runtime to write a dump to `path` (an absolute path, resolved by the target) and waits
/// until it is written: GenerateCoreDump3, falling back to 2 and 1 on older runtimes.
pub fn generate_core_dump(
    ch: &impl CommandChannel,
    path: &str,
    kind: RuntimeDumpType,
    log_to_target_console: bool,
) -> Result<(), IpcError> {
    let flags = u32::from(log_to_target_console);
    let mut payload = PayloadWriter::new();
    payload.string(Some(path)).u32(kind as u32).u32(flags);
    let payload = payload.into_bytes();
    let mut last = None;
    for cmd in [
        commands::GENERATE_CORE_DUMP3,
        commands::GENERATE_CORE_DUMP2,
        commands::GENERATE_CORE_DUMP,
    ] {
        match ch.exchange(cmd, &payload) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_unknown_command() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// What a runtime-written dump produced.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeDumpSummary {
    pub path: std::path::PathBuf,
    pub bytes_written: u64,
    pub bytes_on_disk: u64,
    pub seconds: f64,
    /// Who wrote the dump: always "runtime" here (the target's own createdump).
    pub writer: &'static str,
}

/// Asks `pid`'s runtime to write a dump at `output` and reports what it wrote. The path is made
/// absolute first, since the target resolves it against its own working directory.
pub fn collect_via_runtime(
    pid: i32,
    output: &std::path::Path,
    kind: RuntimeDumpType,
) -> anyhow::Result<RuntimeDumpSummary> {
    use anyhow::Context;
    use std::os::unix::fs::MetadataExt;
    let output = if output.is_absolute() {
        output.to_path_buf()
    } else {
        std::env::current_dir()?.join(output)
    };
    if output.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} already exists: dn never overwrites a file",
            output.display()
        );
    }
    let client = super::DiagnosticsClient::for_pid(pid)?.with_timeouts(super::Timeouts {
        connect: std::time::Duration::from_secs(3),
        // The reply comes only once the dump is written: allow for big heaps.
        io: std::time::Duration::from_secs(600),
    });
    let path = output
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", output.display()))?;
    let start = std::time::Instant::now();
    generate_core_dump(&client, path, kind, false)?;
    let seconds = start.elapsed().as_secs_f64();
    let meta = std::fs::metadata(&output).with_context(|| {
        format!(
            "the runtime reported success but {} is not visible here (a target in another mount namespace writes inside its own filesystem)",
            output.display()
        )
    })?;
    Ok(RuntimeDumpSummary {
        path: output,
        bytes_written: meta.len(),
        bytes_on_disk: meta.blocks() * 512,
        seconds,
        writer: "runtime",
    })
}
