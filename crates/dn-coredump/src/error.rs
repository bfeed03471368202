//! Errors of a dump collection. Every variant is a one-line message meant for
//! the user; the target process is resumed before any of them is returned.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),

    #[error("process {0} is a zombie: it has exited and has no memory left to dump")]
    Zombie(i32),

    #[error("process {0} is a kernel thread: it has no user-space memory to dump")]
    KernelThread(i32),

    #[error("no permission to trace process {pid}: {hint}")]
    PermissionDenied { pid: i32, hint: String },

    #[error("process {0} exited during the dump; partial file removed")]
    TargetExited(i32),

    #[error("output file {} already exists (dumps never overwrite a file)", .0.display())]
    OutputExists(PathBuf),

    #[error("cannot create output file {}: {source}", path.display())]
    CreateOutput { path: PathBuf, source: io::Error },

    #[error("disk full while writing {}; partial file removed, target resumed", .0.display())]
    DiskFull(PathBuf),

    #[error("write to {} failed: {source}; partial file removed, target resumed", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error("interrupted by {}; partial file removed, target resumed", signal_name(*.0))]
    Interrupted(i32),

    #[error("ptrace {op} of thread {tid} failed: {source}")]
    Ptrace {
        op: &'static str,
        tid: i32,
        source: nix::Error,
    },

    #[error("cannot read {what}: {source}")]
    Proc { what: String, source: io::Error },

    #[error("cannot build the core's notes: {0}")]
    Notes(#[from] dn_core::elf::notes::NoteError),
}

impl From<dn_core::ptrace::StopError> for CollectError {
    fn from(e: dn_core::ptrace::StopError) -> Self {
        use dn_core::ptrace::StopError as S;
        match e {
            S::NoSuchProcess(pid) => CollectError::NoSuchProcess(pid),
            S::Exited(pid) => CollectError::TargetExited(pid),
            S::PermissionDenied { pid, hint } => CollectError::PermissionDenied { pid, hint },
            S::Ptrace { op, tid, source } => CollectError::Ptrace { op, tid, source },
        }
    }
}

impl CollectError {
    /// The process exit status that says what happened: 128 + the signal's number when a
    /// signal interrupted the dump (as a shell reports a process the signal killed), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CollectError::Interrupted(sig) => u8::try_from(128 + sig).unwrap_or(1),
            _ => 1,
        }
    }

    pub(crate) fn proc(what: impl Into<String>, source: io::Error) -> Self {
        CollectError::Proc {
            what: what.into(),
            source,
        }
    }

    /// Maps an error of writing the output file, telling ENOSPC apart.
    pub(crate) fn write(path: &std::path::Path, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            CollectError::DiskFull(path.to_path_buf())
        } else {
            CollectError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => "a signal".to_string(),
    }
}
