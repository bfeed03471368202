//! The Process command set: ProcessInfo (v3, v2, v1), ProcessEnvironment, ResumeRuntime.

use serde::Serialize;

use super::client::DiagnosticsClient;
use super::protocol::{commands, PayloadReader};
use super::{transport, IpcError};

/// What a runtime says about itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The pid inside the target's PID namespace.
    pub process_id: u64,
    pub runtime_cookie: String,
    /// The host's view of the command line (`/full/path/dotnet app.dll args`).
    pub command_line: String,
    pub os: String,
    pub arch: String,
    /// Entry assembly name without `.dll` (ProcessInfo2 and later).
    pub entrypoint_assembly: Option<String>,
    /// The CLR product version, e.g. `10.0.12` (ProcessInfo2 and later).
    pub runtime_version: Option<String>,
    /// Portable runtime identifier, e.g. `linux-x64` (ProcessInfo3 with version >= 1).
    pub runtime_identifier: Option<String>,
}

impl ProcessInfo {
    /// The runtime's major version, when known.
    pub fn runtime_major(&self) -> Option<u32> {
        self.runtime_version
            .as_deref()?
            .split('.')
            .next()?
            .parse()
            .ok()
    }

    fn decode(payload: &[u8], version: u8) -> Result<Self, IpcError> {
        let context = match version {
            3 => "ProcessInfo3",
            2 => "ProcessInfo2",
            _ => "ProcessInfo",
        };
        let mut r = PayloadReader::new(payload, context);
        let payload_version = if version == 3 {
            r.u32("the payload version")?
        } else {
            0
        };
        let process_id = r.u64("processId")?;
        let runtime_cookie = r.guid("runtimeCookie")?.to_string();
        let command_line = r.string("commandLine")?;
        let os = r.string("OS")?;
        let arch = r.string("arch")?;
        let (mut entrypoint_assembly, mut runtime_version, mut runtime_identifier) =
            (None, None, None);
        if version >= 2 {
            entrypoint_assembly =
                Some(r.string("managedEntrypointAssemblyName")?).filter(|s| !s.is_empty());
            runtime_version = Some(r.string("clrProductVersion")?)
                .map(|v| clean_version(&v))
                .filter(|s| !s.is_empty());
        }
        if version == 3 && payload_version >= 1 {
            runtime_identifier = Some(r.string("runtimeIdentifier")?).filter(|s| !s.is_empty());
        }
        Ok(ProcessInfo {
            process_id,
            runtime_cookie,
            command_line,
            os,
            arch,
            entrypoint_assembly,
            runtime_version,
            runtime_identifier,
        })
    }
}

/// Drops SemVer build metadata (`+commit`), which tools do not show.
fn clean_version(v: &str) -> String {
    v.split('+').next().unwrap_or(v).to_string()
}

/// Something that can carry one command and return its reply: our own connection to the
/// runtime's socket, or a reverse connection the runtime opened to us.
pub trait CommandChannel {
    fn exchange(
        &self,
        cmd: super::protocol::Command,
        payload: &[u8],
    ) -> Result<super::client::Reply, IpcError>;
}

impl CommandChannel for DiagnosticsClient {
    fn exchange(
        &self,
        cmd: super::protocol::Command,
        payload: &[u8],
    ) -> Result<super::client::Reply, IpcError> {
        self.request(cmd, payload)
    }
}

/// ProcessInfo3, falling back to 2 and 1 on runtimes that do not know the newer command.
/// .NET Core 3.1 knows none of them: the "unknown command" error is returned to the caller.
pub fn process_info(ch: &impl CommandChannel) -> Result<ProcessInfo, IpcError> {
    let attempts = [
        (commands::PROCESS_INFO3, 3),
        (commands::PROCESS_INFO2, 2),
        (commands::PROCESS_INFO, 1),
    ];
    let mut last = None;
    for (cmd, version) in attempts {
        match ch.exchange(cmd, &[]) {
            Ok(reply) => return ProcessInfo::decode(&reply.payload, version),
            Err(e) if e.is_unknown_command() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// The target's environment as `NAME=value` pairs, in the runtime's order.
pub fn process_environment(ch: &impl CommandChannel) -> Result<Vec<(String, String)>, IpcError> {
    let reply = ch.exchange(commands::PROCESS_ENVIRONMENT, &[])?;
    let mut r = PayloadReader::new(&reply.payload, "ProcessEnvironment");
    let incoming = r.u32("the continuation length")? as usize;
    if incoming > 64 << 20 {
        return Err(IpcError::Protocol(format!(
            "ProcessEnvironment: implausible environment block of {incoming} bytes"
        )));
    }
    let mut stream = reply.stream;
    let mut block = vec![0u8; incoming];
    transport::read_exact(&mut stream, &mut block, "ProcessEnvironment")?;
    let mut r = PayloadReader::new(&block, "ProcessEnvironment");
    let count = r.u32("the variable count")?;
    let mut vars = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let entry = r.string("a variable")?;
        let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        vars.push((k.to_string(), v.to_string()));
    }
    Ok(vars)
}

/// Lets a runtime that waits at startup (a `suspend` diagnostic port) run. A no-op otherwise.
pub fn resume_runtime(ch: &impl CommandChannel) -> Result<(), IpcError> {
    ch.exchange(commands::RESUME_RUNTIME, &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::protocol::PayloadWriter;

    #[test]
    fn decodes_process_info3_as_a_net10_runtime_sends_it() {
        let mut w = PayloadWriter::new();
        w.u32(1).u64(7191);
        let mut bytes = w.into_bytes();
        bytes.extend_from_slice(&[
            0x3C, 0xBA, 0xD7, 0x4B, 0x93, 0x34, 0xC4, 0x41, 0xBF, 0x41, 0xAD, 0x3D, 0xA5, 0xCB,
            0xD1, 0x66,
        ]);
        let mut w = PayloadWriter::new();
        w.string(Some("/usr/bin/dotnet app.dll"))
            .string(Some("Linux"))
            .string(Some("x64"))
            .string(Some("app"))
            .string(Some("10.0.12+abc"))
            .string(Some("linux-x64"));
        bytes.extend_from_slice(w.bytes());
        let info = ProcessInfo::decode(&bytes, 3).unwrap();
        assert_eq!(info.process_id, 7191);
        assert_eq!(info.runtime_cookie, "4bd7ba3c-3493-41c4-bf41-ad3da5cbd166");
        assert_eq!(info.runtime_version.as_deref(), Some("10.0.12"));
        assert_eq!(info.runtime_major(), Some(10));
        assert_eq!(info.runtime_identifier.as_deref(), Some("linux-x64"));
        // Cut anywhere: an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(ProcessInfo::decode(&bytes[..cut], 3).is_err());
        }
    }
}
