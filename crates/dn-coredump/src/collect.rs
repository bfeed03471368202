//! One dump from start to end: checks, stop, registers, maps, selection,
//! notes, memory copy into the staging arena (streaming what does not fit),
//! resume, then writing what was staged.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use nix::errno::Errno;
use serde::Serialize;

use crate::arena::{self, Arena};
use crate::copy::{Copier, CHUNK};
use crate::elf::{self, LoadSegment};
use crate::error::CollectError;
use crate::maps::{self, Mapping};
use crate::memory::RemoteMemory;
use crate::notes::{self, ProcessFacts, ThreadFacts};
use crate::output::OutputFile;
use crate::procinfo;
use crate::regs::{self, ThreadRegs};
use crate::select::{self, DumpType};
use crate::signals;
use crate::stage::Staged;
use crate::writeback::WriteBehind;
use dn_core::ptrace::{permission_hint, StoppedProcess};

/// Progress callback: (bytes of address space processed, total).
pub type ProgressFn = Box<dyn FnMut(u64, u64)>;

pub struct CollectOptions {
    pub pid: i32,
    /// Created exclusively; an existing file is an error.
    pub output: PathBuf,
    pub dump_type: DumpType,
    pub progress: Option<ProgressFn>,
    /// Most bytes copied into our memory while the target is stopped (the rest is streamed to
    /// the file while it waits); `None`: half of `MemAvailable`; 0: stream everything.
    pub max_buffer: Option<u64>,
}

impl CollectOptions {
    pub fn new(pid: i32, output: impl Into<PathBuf>) -> Self {
        CollectOptions {
            pid,
            output: output.into(),
            dump_type: DumpType::Full,
            progress: None,
            max_buffer: None,
        }
    }
}

impl std::fmt::Debug for CollectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectOptions")
            .field("pid", &self.pid)
            .field("output", &self.output)
            .field("dump_type", &self.dump_type)
            .field("max_buffer", &self.max_buffer)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectSummary {
    pub path: PathBuf,
    pub pid: i32,
    pub dump_type: DumpType,
    /// Logical size of the core file.
    pub bytes_written: u64,
    /// Space the (sparse) file takes on disk: st_blocks * 512.
    pub bytes_on_disk: u64,
    pub threads: usize,
    /// PT_LOAD segments.
    pub regions: usize,
    pub seconds: f64,
    /// From the first PTRACE_INTERRUPT to the last PTRACE_DETACH.
    pub target_stopped_ms: f64,
    /// Bytes copied into our memory while the target was stopped, written after its resume.
    pub staged_bytes: u64,
    /// Bytes written to the file while the target was stopped (the staging buffer was full).
    pub streamed_bytes: u64,
    /// Bytes of untouched file pages read from their files after the resume.
    pub deferred_bytes: u64,
    /// libcoreclr.so is mapped in the target.
    pub runtime_found: bool,
    /// Resident pages that could not be read (left as zeros in the dump).
    pub unreadable_bytes: u64,
}

fn not_found_or(pid: i32, e: io::Error, what: &str) -> CollectError {
    if e.kind() == io::ErrorKind::NotFound {
        CollectError::NoSuchProcess(pid)
    } else {
        CollectError::proc(format!("/proc/{pid}/{what}"), e)
    }
}

/// Maps failures to read ptrace-protected /proc files once attached.
fn attached_read_error(pid: i32, e: io::Error, what: &str) -> CollectError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => CollectError::PermissionDenied {
            pid,
            hint: permission_hint(None),
        },
        Some(libc::ESRCH) | Some(libc::ENOENT) => CollectError::TargetExited(pid),
        _ => CollectError::proc(format!("/proc/{pid}/{what}"), e),
    }
}

/// Optional facts (comm, cmdline): an unreadable file leaves them empty.
fn read_or_empty(path: String) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}

/// Writes an ELF core of process `opts.pid` to `opts.output`.
/// The target is stopped only while its state is copied and is resumed on
/// every path, errors and panics included.
pub fn collect(mut opts: CollectOptions) -> Result<CollectSummary, CollectError> {
    let began = Instant::now();
    let pid = opts.pid;
    if pid <= 0 {
        return Err(CollectError::NoSuchProcess(pid));
    }
    if pid == std::process::id() as i32 {
        // ptrace cannot stop the caller's own threads.
        return Err(CollectError::PermissionDenied {
            pid,
            hint: "a process cannot dump itself; run the collector from another process".into(),
        });
    }
    let stat = procinfo::read_stat(pid).map_err(|e| not_found_or(pid, e, "stat"))?;
    if stat.is_kernel_thread() {
        return Err(CollectError::KernelThread(pid));
    }
    if matches!(stat.state, 'Z' | 'X') {
        return Err(CollectError::Zombie(pid));
    }
    let status = procinfo::read_status(pid).map_err(|e| not_found_or(pid, e, "status"))?;
    let mut comm = read_or_empty(format!("/proc/{pid}/comm"));
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    let cmdline = read_or_empty(format!("/proc/{pid}/cmdline"));

    let out = OutputFile::create(&opts.output)?;
    let mut arena = staging_arena(pid, opts.max_buffer);
    let interrupt = signals::guard();

    let mut stopped = StoppedProcess::stop(pid)?;
    let auxv =
        fs::read(format!("/proc/{pid}/auxv")).map_err(|e| attached_read_error(pid, e, "auxv"))?;
    let remote = RemoteMemory::open(pid).map_err(|e| attached_read_error(pid, e, "pagemap"))?;

    let threads = thread_states(pid, &mut stopped)?;
    let maps = maps::read_mappings(pid).map_err(|e| attached_read_error(pid, e, "smaps"))?;
    let runtime_found = maps.iter().any(select::is_runtime);

    let mut copier = Copier::new(pid, &maps, remote);
    let sps: Vec<u64> = threads.iter().map(|(r, _)| r.sp()).collect();
    let regions = select::select_regions(&maps, opts.dump_type, &sps, &mut |i, a, b| {
        copier.read_small(i, a, b)
    });

    let facts = ProcessFacts {
        pid,
        stat,
        uid: procinfo::status_first_u32(&status, "Uid").unwrap_or(0),
        gid: procinfo::status_first_u32(&status, "Gid").unwrap_or(0),
        comm: String::from_utf8_lossy(&comm).into_owned(),
        cmdline,
        auxv,
    };
    let note_bytes =
        notes::build_notes(&facts, &maps, &threads, procinfo::clock_ticks_per_second())?;
    let segments: Vec<LoadSegment> = regions.iter().map(|r| segment(r, &maps[r.map])).collect();
    let layout = elf::layout(&segments, note_bytes.len() as u64);
    out.write_at(0, &layout.headers)?;
    out.write_at(layout.notes_offset, &note_bytes)?;

    let total: u64 = regions.iter().map(|r| r.end - r.start).sum();
    let mut done = 0u64;
    let mut progress = opts.progress.take();
    let mut on_chunk = |n: u64| {
        if let Some(signal) = interrupt.interrupted() {
            return Err(CollectError::Interrupted(signal));
        }
        done += n;
        if let Some(p) = progress.as_mut() {
            p(done, total);
        }
        Ok(())
    };
    let moved = std::thread::scope(|scope| {
        let overflow = WriteBehind::start(scope, &out, CHUNK);
        let mut staged = Staged::new(arena.as_mut_slice(), overflow);
        let copied = regions
            .iter()
            .zip(&layout.segment_offsets)
            .try_for_each(|(r, &off)| copier.copy_region(r, off, &mut staged, &mut on_chunk));
        let (staged_bytes, streamed_bytes) = (staged.staged_bytes(), staged.streamed_bytes);
        // A write error (disk full) explains a failed copy better than the copy's own error.
        let (written, staging) = staged.finish_streaming();
        written.and(copied)?;
        // A target killed during the copy reads as holes from then on; do not keep such a dump.
        if !procinfo::is_alive(pid) {
            return Err(CollectError::TargetExited(pid));
        }
        let stopped_for = stopped.resume();

        let mut still_wanted = |_: u64| match interrupt.interrupted() {
            Some(signal) => Err(CollectError::Interrupted(signal)),
            None => Ok(()),
        };
        staging.write_pieces(&out, &mut still_wanted)?;
        let mut buf = vec![0u8; CHUNK];
        let mut deferred_bytes = 0u64;
        for d in &staging.deferred {
            let b = &mut buf[..d.len];
            copier.read_deferred(d, b);
            out.write_sparse(d.at, b)?;
            deferred_bytes += d.len as u64;
            still_wanted(0)?;
        }
        Ok(Moved {
            stopped_for,
            staged_bytes,
            streamed_bytes,
            deferred_bytes,
        })
    })?;
    let unreadable_bytes = copier.unreadable_bytes;
    let thread_count = stopped.tids().len();
    drop(stopped);
    drop(interrupt);

    let (path, bytes_on_disk) = out.finish(layout.total_size)?;
    Ok(CollectSummary {
        path,
        pid,
        dump_type: opts.dump_type,
        bytes_written: layout.total_size,
        bytes_on_disk,
        threads: thread_count,
        regions: regions.len(),
        seconds: began.elapsed().as_secs_f64(),
        target_stopped_ms: moved.stopped_for.as_secs_f64() * 1000.0,
        staged_bytes: moved.staged_bytes,
        streamed_bytes: moved.streamed_bytes,
        deferred_bytes: moved.deferred_bytes,
        runtime_found,
        unreadable_bytes,
    })
}

/// What the copy moved, and how long the target waited for it.
struct Moved {
    stopped_for: std::time::Duration,
    staged_bytes: u64,
    streamed_bytes: u64,
    deferred_bytes: u64,
}

/// The pre-faulted staging buffer: what the target may need, within the budget. When it cannot
/// be had, the dump streams everything while the target is stopped (as with a budget of 0).
fn staging_arena(pid: i32, max_buffer: Option<u64>) -> Arena {
    let budget = max_buffer.unwrap_or_else(arena::default_budget);
    let want = budget.min(arena::estimate_need(pid)) / CHUNK as u64 * CHUNK as u64;
    let len = usize::try_from(want).unwrap_or(0);
    Arena::populated(len).unwrap_or_else(|_| Arena::empty())
}

fn segment(r: &select::Region, m: &Mapping) -> LoadSegment {
    LoadSegment {
        vaddr: r.start,
        size: r.end - r.start,
        read: m.read,
        write: m.write,
        exec: m.exec,
    }
}

/// Registers and per-thread facts of every stopped thread, main thread first.
fn thread_states(
    pid: i32,
    stopped: &mut StoppedProcess,
) -> Result<Vec<(ThreadRegs, ThreadFacts)>, CollectError> {
    let mut out = Vec::new();
    for tid in stopped.tids().to_vec() {
        let regs = match regs::read_thread_regs(tid) {
            Ok(r) => r,
            Err(Errno::ESRCH) => {
                // Killed while stopped (SIGKILL cannot be held off).
                stopped.forget(tid);
                continue;
            }
            Err(source) => {
                return Err(CollectError::Ptrace {
                    op: "GETREGSET",
                    tid,
                    source,
                })
            }
        };
        let st = procinfo::read_task_status(pid, tid).unwrap_or_default();
        let ts = procinfo::read_task_stat(pid, tid).unwrap_or_default();
        let facts = ThreadFacts {
            sigpend: procinfo::status_hex(&st, "SigPnd"),
            sighold: procinfo::status_hex(&st, "SigBlk"),
            utime_ticks: ts.utime_ticks,
            stime_ticks: ts.stime_ticks,
        };
        out.push((regs, facts));
    }
    if out.is_empty() {
        return Err(CollectError::TargetExited(pid));
    }
    Ok(out)
}
