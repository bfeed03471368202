//! DAC calls that may crash, run in a forked copy of this process.
//!
//! Some runtimes' DACs crash (SIGSEGV inside libmscordaccore) on some dumps, e.g. .NET 10's
//! stack-reference walk on threads in certain async states; dotnet-dump dies there too. A crash
//! in our process would lose the whole session, so such calls run in a child made by `fork`:
//! it has the DAC, the dump's mappings and the open files exactly as they are here, writes its
//! answers to a pipe and exits; if it dies instead, the caller learns how far it got and turns
//! the rest into a warning.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};

/// How the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildEnd {
    /// It finished (exit status 0).
    Finished,
    /// It was killed by this signal (a crash: SIGSEGV, SIGBUS, SIGABRT...).
    Signal(i32),
    /// It exited with this non-zero status (a panic in the child: 101).
    Failed(i32),
}

impl ChildEnd {
    /// How it ended, for a warning: "signal 11, SIGSEGV", "exit status 101", "finished".
    pub(crate) fn describe(self) -> String {
        match self {
            ChildEnd::Finished => "finished".to_string(),
            ChildEnd::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(name) => format!("signal {sig}, {}", name.as_str()),
                Err(_) => format!("signal {sig}"),
            },
            ChildEnd::Failed(code) => format!("exit status {code}"),
        }
    }
}

/// Runs `child` in a forked copy of this process, which writes to the given pipe; returns what
/// it wrote and how it ended. The caller must hold the DAC lock (so no other thread is inside
/// the DAC at the fork) and `child` must only make DAC calls under that same guard, read
/// memory and write to the pipe.
pub(crate) fn run_forked(child: impl FnOnce(&mut File)) -> std::io::Result<(Vec<u8>, ChildEnd)> {
    let (read_end, write_end): (OwnedFd, OwnedFd) = pipe()?;
    // SAFETY: after `fork` the child has only this thread. It runs `child`, which calls the
    // DAC under the lock this thread already holds (so its copy of the lock is consistent and
    // no other thread was inside the DAC), allocates (glibc makes malloc safe across fork),
    // reads memory already mapped or files already open, and writes to the pipe; then it
    // leaves with `_exit`, running no destructor, atexit handler or stdio flush of the parent's
    // state. The parent only closes its write end and reads.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(read_end);
            // A crash here is expected and handled: no core file for it.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit with a valid struct; it only changes this child's limit.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
            let mut out = File::from(write_end);
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child(&mut out);
                out.flush()
            }));
            let code = if matches!(ok, Ok(Ok(()))) { 0 } else { 101 };
            // SAFETY: `_exit` ends the child at once, as the comment above the fork requires.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut bytes = Vec::new();
            let read = File::from(read_end).read_to_end(&mut bytes);
            let end = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, 0)) => break ChildEnd::Finished,
                    Ok(WaitStatus::Exited(_, code)) => break ChildEnd::Failed(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => break ChildEnd::Signal(sig as i32),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            read?;
            Ok((bytes, end))
        }
    }
}
