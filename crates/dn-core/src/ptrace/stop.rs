//! Stopping and resuming every thread of the target with PTRACE_SEIZE +
//! PTRACE_INTERRUPT. SEIZE sends no SIGSTOP, so if this tool dies at any
//! moment the kernel detaches and the target simply keeps running. Used by the
//! core writer (`dn-dump collect`) and the live heap analyzer (`analyze --pid`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::procinfo;

/// Why the threads of a process could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),

    #[error("process {0} exited while being stopped")]
    Exited(i32),

    #[error("no permission to trace process {pid}: {hint}")]
    PermissionDenied { pid: i32, hint: String },

    #[error("ptrace {op} of thread {tid} failed: {source}")]
    Ptrace {
        op: &'static str,
        tid: i32,
        source: Errno,
    },
}

const PTRACE_EVENT_STOP: i32 = 128;

/// Every thread of the target, stopped. Dropping it detaches them all, so the
/// target is resumed on every path (errors, `?`, panics).
pub struct StoppedProcess {
    pid: i32,
    tids: Vec<i32>,
    started: Instant,
    stopped_for: Option<Duration>,
    /// How many scans of /proc/PID/task the attach needed.
    pub passes: u32,
}

impl StoppedProcess {
    /// Seizes and interrupts every thread, rescanning /proc/PID/task until a
    /// pass finds no thread it has not seen. The main thread comes first.
    ///
    /// While another tracer holds the process (another dump being taken, say
    /// two triggers firing at once), every thread held so far is let go and
    /// the stop is tried again, for up to [`TRACER_PATIENCE`]; a tracer that
    /// stays (a debugger) is then reported as before.
    pub fn stop(pid: i32) -> Result<Self, StopError> {
        let deadline = Instant::now() + TRACER_PATIENCE;
        loop {
            match Self::stop_once(pid) {
                Err(StopError::PermissionDenied { .. })
                    if Instant::now() < deadline && traced_by_another(pid) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn stop_once(pid: i32) -> Result<Self, StopError> {
        let mut me = StoppedProcess {
            pid,
            tids: Vec::new(),
            started: Instant::now(),
            stopped_for: None,
            passes: 0,
        };
        // Threads seized but gone before reporting their stop; never retried.
        let mut seen: HashSet<i32> = HashSet::new();
        loop {
            me.passes += 1;
            let listed = match procinfo::task_ids(pid) {
                Ok(t) => t,
                Err(_) if me.tids.is_empty() => return Err(StopError::NoSuchProcess(pid)),
                Err(_) => return Err(StopError::Exited(pid)),
            };
            let new: Vec<i32> = listed.into_iter().filter(|t| !seen.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            let mut seized = Vec::new();
            for tid in new {
                seen.insert(tid);
                if me.seize(tid)? {
                    seized.push(tid);
                }
            }
            for tid in seized {
                if wait_for_stop(tid)? {
                    me.tids.push(tid);
                }
            }
        }
        if me.tids.is_empty() {
            return Err(StopError::Exited(pid));
        }
        // The main thread first: readers treat the first NT_PRSTATUS as the main thread.
        me.tids.sort_by_key(|&t| (t != pid, t));
        Ok(me)
    }

    /// Seizes one thread and asks it to stop. Ok(false): the thread has exited.
    fn seize(&mut self, tid: i32) -> Result<bool, StopError> {
        let p = Pid::from_raw(tid);
        match ptrace::seize(p, ptrace::Options::empty()) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Ok(false),
            Err(Errno::EPERM) if !task_exists(self.pid, tid) => return Ok(false),
            Err(Errno::EPERM) | Err(Errno::EACCES) => {
                return Err(StopError::PermissionDenied {
                    pid: self.pid,
                    hint: denial_hint(self.pid),
                })
            }
            Err(source) => {
                return Err(StopError::Ptrace {
                    op: "SEIZE",
                    tid,
                    source,
                })
            }
        }
        match ptrace::interrupt(p) {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => {
                // Exiting thread: still traced by us until reaped; let detach clean up.
                let _ = ptrace::detach(p, None);
                Ok(false)
            }
            Err(source) => {
                let _ = ptrace::detach(p, None);
                Err(StopError::Ptrace {
                    op: "INTERRUPT",
                    tid,
                    source,
                })
            }
        }
    }

    pub fn tids(&self) -> &[i32] {
        &self.tids
    }

    /// Drops a thread that vanished while stopped (only SIGKILL can do that).
    pub fn forget(&mut self, tid: i32) {
        self.tids.retain(|&t| t != tid);
    }

    /// Detaches every thread; returns how long the target was stopped.
    pub fn resume(&mut self) -> Duration {
        if let Some(d) = self.stopped_for {
            return d;
        }
        let mut dead = Vec::new();
        for &tid in &self.tids {
            if let Err(Errno::ESRCH) = ptrace::detach(Pid::from_raw(tid), None) {
                dead.push(tid);
            }
        }
        let d = self.started.elapsed();
        reap_killed(&dead);
        self.stopped_for = Some(d);
        d
    }
}

impl Drop for StoppedProcess {
    fn drop(&mut self) {
        self.resume();
    }
}

/// A thread killed while we trace it stays a zombie until its tracer waits
/// for it, and its process cannot be reaped before. Wait for such threads,
/// for a bounded time (a SIGKILLed thread exits at once).
fn reap_killed(tids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left: Vec<i32> = tids.to_vec();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|&tid| {
            let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
            match waitpid(Pid::from_raw(tid), Some(flags)) {
                Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => false,
                Ok(WaitStatus::StillAlive) => true,
                Ok(_) => {
                    // A stop report from a thread that is not dead after all: resume it.
                    let _ = ptrace::detach(Pid::from_raw(tid), None);
                    true
                }
                Err(_) => false,
            }
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// How long [`StoppedProcess::stop`] waits for another tracer to let go.
const TRACER_PATIENCE: Duration = Duration::from_secs(10);

/// True if a process other than this one traces `pid`'s main thread.
fn traced_by_another(pid: i32) -> bool {
    let status = procinfo::read_status(pid).unwrap_or_default();
    procinfo::status_first_u32(&status, "TracerPid")
        .is_some_and(|t| t != 0 && t != std::process::id())
}

fn task_exists(pid: i32, tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}

fn denial_hint(pid: i32) -> String {
    let status = procinfo::read_status(pid).unwrap_or_default();
    let tracer = procinfo::status_first_u32(&status, "TracerPid").unwrap_or(0);
    if tracer != 0 {
        return format!("it is already being traced by process {tracer} (a debugger?)");
    }
    permission_hint(procinfo::status_first_u32(&status, "Uid"))
}

/// Waits until a seized thread reports its interrupt stop. Signals that
/// arrive first are re-injected so the target does not lose them.
/// Ok(false): the thread exited meanwhile.
fn wait_for_stop(tid: i32) -> Result<bool, StopError> {
    let p = Pid::from_raw(tid);
    loop {
        match waitpid(p, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, ev)) if ev == PTRACE_EVENT_STOP => return Ok(true),
            Ok(WaitStatus::Stopped(_, sig)) => {
                // Signal-delivery stop: pass the signal on; the interrupt is still pending.
                if let Err(Errno::ESRCH) = ptrace::cont(p, sig) {
                    return Ok(false);
                }
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => return Ok(false),
            Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::PtraceSyscall(_)) => {
                if let Err(Errno::ESRCH) = ptrace::cont(p, None) {
                    return Ok(false);
                }
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) | Err(Errno::ESRCH) => return Ok(false),
            Err(source) => {
                return Err(StopError::Ptrace {
                    op: "wait",
                    tid,
                    source,
                })
            }
        }
    }
}

/// The rights a tracer needs, with the host's current Yama setting, for the
/// "no permission" message.
pub fn permission_hint(target_uid: Option<u32>) -> String {
    let me = nix::unistd::geteuid().as_raw();
    let owner = match target_uid {
        Some(uid) => format!("the target runs as uid {uid}, you are uid {me}"),
        None => format!("you are uid {me}"),
    };
    let yama = match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(s) => {
            let v = s.trim().to_string();
            let meaning = match v.as_str() {
                "0" => "same user suffices",
                "1" => "same user only for descendants; otherwise root/CAP_SYS_PTRACE",
                "2" => "root/CAP_SYS_PTRACE only",
                "3" => "ptrace disabled until reboot",
                _ => "unknown value",
            };
            format!("kernel.yama.ptrace_scope={v} ({meaning})")
        }
        Err(_) => "Yama not active (/proc/sys/kernel/yama/ptrace_scope absent)".to_string(),
    };
    format!("run as the same user as the target or as root (CAP_SYS_PTRACE); {owner}; {yama}")
}
