//! The client side of the .NET runtime's diagnostics IPC channel: finding a runtime's socket,
//! framing commands and decoding replies.

pub mod client;
pub mod discovery;
pub mod dump;
pub mod process;
pub mod protocol;
pub mod reverse;
pub mod transport;

use std::path::PathBuf;
use std::time::Duration;

pub use client::{DiagnosticsClient, Timeouts};
pub use discovery::{find_endpoint, for_each_endpoint, Endpoint};
pub use process::ProcessInfo;
pub use protocol::Guid;

/// Everything that can go wrong talking to a runtime. Messages are one line, meant for users.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("process {pid} is not running")]
    NoSuchProcess { pid: i32 },
    #[error("process {pid} has no .NET diagnostics socket in {searched} (not a .NET Core 3.0+ process, started with DOTNET_EnableDiagnostics=0, or using a different TMPDIR)")]
    NoSocket { pid: i32, searched: String },
    #[error("cannot connect to {}: {source}{hint}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
        hint: String,
    },
    #[error("timed out after {:.1}s {what}", after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    #[error("{command} failed: the runtime answered {hresult:#010x}{}{}", name_suffix(*hresult), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Runtime {
        command: &'static str,
        hresult: u32,
        message: Option<String>,
    },
    #[error("diagnostics protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The uid owning a socket file (the runtime makes its socket 0600 for its own user).
pub fn socket_owner(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

fn name_suffix(hr: u32) -> String {
    protocol::hresult_name(hr)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default()
}

impl IpcError {
    pub(crate) fn connect(path: &std::path::Path, source: std::io::Error) -> Self {
        let hint = match source.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                let owner = socket_owner(path)
                    .map(|uid| format!(" owned by uid {uid}"))
                    .unwrap_or_default();
                format!(" (the socket is{owner}: run as the same user as the target, or as root)")
            }
            Some(libc::ECONNREFUSED) => {
                " (nothing listens on it: a stale socket of an exited runtime)".to_string()
            }
            Some(libc::ENOENT) => " (the socket is gone: the runtime has exited)".to_string(),
            _ => String::new(),
        };
        IpcError::Connect {
            path: path.to_path_buf(),
            source,
            hint,
        }
    }

    /// True when the runtime answered "unknown command": the caller may fall back to an older one.
    pub fn is_unknown_command(&self) -> bool {
        matches!(self, IpcError::Runtime { hresult, .. } if *hresult == protocol::HR_UNKNOWN_COMMAND)
    }

    /// True when no runtime is listening any more (stale socket, exited process).
    pub fn is_stale(&self) -> bool {
        matches!(self, IpcError::Connect { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENOENT)))
    }

    pub fn is_permission(&self) -> bool {
        matches!(self, IpcError::Connect { source, .. }
            if matches!(source.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)))
    }
}
