//! One try at a dump: stop, registers, maps, selection, notes, copy into the
//! staging arena (streaming what does not fit), resume, then — unless a GC
//! overlapped the stop and the caller wants another try — write what was
//! staged and read the deferred file pages.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use crate::arena::Arena;
use crate::collect::ProgressFn;
use crate::copy::{Copier, CHUNK};
use crate::dirty::Tracking;
use crate::elf::{self, LoadSegment};
use crate::error::CollectError;
use crate::gc::{self, GcCheck, GcWatch};
use crate::maps::{self, Mapping};
use crate::memory::RemoteMemory;
use crate::notes::{self, ProcessFacts, ThreadFacts};
use crate::output::OutputFile;
use crate::procinfo::{self, Stat};
use crate::regs::{self, ThreadRegs};
use crate::select::{self, DumpType};
use crate::signals::InterruptGuard;
use crate::stage::Staged;
use crate::writeback::WriteBehind;
use dn_core::ptrace::{permission_hint, StoppedProcess};

/// What one try needs; facts read before the stop are shared by every try.
pub struct Job<'a> {
    pub pid: i32,
    pub output: &'a Path,
    pub dump_type: DumpType,
    pub stat: &'a Stat,
    pub status: &'a str,
    pub comm: &'a [u8],
    pub cmdline: &'a [u8],
    pub arena: &'a mut Arena,
    pub progress: &'a mut Option<ProgressFn>,
    pub interrupt: &'a InterruptGuard,
    /// The GC watch for this try, consumed by its verdict after the resume.
    pub gc: Option<GcWatch>,
    /// Give up this try (nothing kept) when a GC overlapped the stop.
    pub retry_if_in_gc: bool,
}

/// What the copy moved, and how long the target waited for it.
pub struct Moved {
    pub stopped_for: Duration,
    pub thread_count: usize,
    pub gc: GcCheck,
    pub staged_bytes: u64,
    pub streamed_bytes: u64,
    pub deferred_bytes: u64,
    /// Bytes of address space written to the file before the stop (pre-copy only).
    pub precopied_bytes: u64,
    /// Bytes read from the target during the stop to bring the pre-copy up to date.
    pub reread_bytes: u64,
    /// How the pre-copy's stale pages were found; `None` when nothing was pre-copied.
    pub tracking: Option<Tracking>,
}

/// A finished core.
pub struct Done {
    pub path: PathBuf,
    pub bytes_written: u64,
    pub bytes_on_disk: u64,
    pub regions: usize,
    pub runtime_found: bool,
    pub unreadable_bytes: u64,
    /// What the dump could not include, one sentence each.
    pub warnings: Vec<String>,
    pub moved: Moved,
}

/// Maps failures to read ptrace-protected /proc files once attached.
pub(crate) fn attached_read_error(pid: i32, e: io::Error, what: &str) -> CollectError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => CollectError::PermissionDenied {
            pid,
            hint: permission_hint(None),
        },
        Some(libc::ESRCH) | Some(libc::ENOENT) => CollectError::TargetExited(pid),
        _ => CollectError::proc(format!("/proc/{pid}/{what}"), e),
    }
}

/// Takes the dump once. `Ok(None)`: a GC overlapped the stop and `retry_if_in_gc` was set;
/// the target runs again and no file was left.
pub fn attempt(mut job: Job<'_>) -> Result<Option<Done>, CollectError> {
    let pid = job.pid;
    let out = OutputFile::create(job.output)?;
    let interrupt = job.interrupt;

    let stop_began = gc::monotonic_ns();
    let mut stopped = StoppedProcess::stop(pid)?;
    let auxv =
        fs::read(format!("/proc/{pid}/auxv")).map_err(|e| attached_read_error(pid, e, "auxv"))?;
    let remote = RemoteMemory::open(pid).map_err(|e| attached_read_error(pid, e, "pagemap"))?;

    let threads = thread_states(pid, &mut stopped)?;
    let maps = maps::read_mappings(pid).map_err(|e| attached_read_error(pid, e, "smaps"))?;
    let runtime_found = maps.iter().any(select::is_runtime);

    let mut copier = Copier::new(pid, &maps, remote);
    let pointers: Vec<select::ThreadPointers> = threads
        .iter()
        .map(|(r, _)| select::ThreadPointers {
            sp: r.sp(),
            fs_base: r.fs_base(),
        })
        .collect();
    let select::Selection { regions, warnings } =
        select::select_regions(&maps, job.dump_type, &pointers, &auxv, &mut |i, a, b| {
            copier.read_small(i, a, b)
        });

    let facts = ProcessFacts {
        pid,
        stat: job.stat.clone(),
        uid: procinfo::status_first_u32(job.status, "Uid").unwrap_or(0),
        gid: procinfo::status_first_u32(job.status, "Gid").unwrap_or(0),
        comm: String::from_utf8_lossy(job.comm).into_owned(),
        cmdline: job.cmdline.to_vec(),
        auxv,
    };
    let note_bytes =
        notes::build_notes(&facts, &maps, &threads, procinfo::clock_ticks_per_second())?;
    let segments: Vec<LoadSegment> = regions.iter().map(|r| segment(r, &maps[r.map])).collect();
    let layout = elf::layout(&segments, note_bytes.len() as u64);
    out.write_at(0, &layout.headers)?;
    out.write_at(layout.notes_offset, &note_bytes)?;

    let total: u64 = regions.iter().map(|r| r.end - r.start).sum();
    let mut on_chunk = chunk_progress(interrupt, &mut *job.progress, total);
    let moved = std::thread::scope(|scope| {
        let overflow = WriteBehind::start(scope, &out, CHUNK);
        let mut staged = Staged::new(job.arena.as_mut_slice(), overflow);
        let copied = regions
            .iter()
            .zip(&layout.segment_offsets)
            .try_for_each(|(r, &off)| copier.copy_region(r, off, &mut staged, &mut on_chunk));
        let (staged_bytes, streamed_bytes) = (staged.staged_bytes(), staged.streamed_bytes);
        // A write error (disk full) explains a failed copy better than the copy's own error.
        let (written, staging) = staged.finish_streaming();
        written.and(copied)?;
        let Some(Resumed {
            stopped_for,
            thread_count,
            gc,
        }) = resume_checked(
            &mut stopped,
            pid,
            &mut job.gc,
            job.retry_if_in_gc,
            stop_began,
        )?
        else {
            return Ok::<_, CollectError>(None);
        };

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
        Ok(Some(Moved {
            stopped_for,
            thread_count,
            gc,
            staged_bytes,
            streamed_bytes,
            deferred_bytes,
            precopied_bytes: 0,
            reread_bytes: 0,
            tracking: None,
        }))
    })?;
    let Some(moved) = moved else {
        return Ok(None);
    };
    drop(stopped);

    let (path, bytes_on_disk) = out.finish(layout.total_size)?;
    Ok(Some(Done {
        path,
        bytes_written: layout.total_size,
        bytes_on_disk,
        regions: regions.len(),
        runtime_found,
        unreadable_bytes: copier.unreadable_bytes,
        warnings,
        moved,
    }))
}

/// The per-chunk callback of a copy: stops at Ctrl-C or a signal, else reports the bytes done
/// so far out of `total`.
pub(crate) fn chunk_progress<'a>(
    interrupt: &'a InterruptGuard,
    progress: &'a mut Option<ProgressFn>,
    total: u64,
) -> impl FnMut(u64) -> Result<(), CollectError> + 'a {
    let mut done = 0u64;
    move |n: u64| {
        if let Some(signal) = interrupt.interrupted() {
            return Err(CollectError::Interrupted(signal));
        }
        done += n;
        if let Some(p) = progress.as_mut() {
            p(done, total);
        }
        Ok(())
    }
}

/// The end of a stop: how long it lasted, the threads it held and the GC check's verdict.
pub(crate) struct Resumed {
    pub stopped_for: Duration,
    pub thread_count: usize,
    pub gc: GcCheck,
}

/// Ends the stop after the copy: refuses the dump of a target that died meanwhile (it reads as
/// holes from then on), resumes the threads, and asks the GC check whether the stop overlapped
/// a collection. `None`: it did and the job wants another try.
pub(crate) fn resume_checked(
    stopped: &mut StoppedProcess,
    pid: i32,
    gc_watch: &mut Option<GcWatch>,
    retry_if_in_gc: bool,
    stop_began: i128,
) -> Result<Option<Resumed>, CollectError> {
    if !procinfo::is_alive(pid) {
        return Err(CollectError::TargetExited(pid));
    }
    let stopped_for = stopped.resume();
    let stop_ended = gc::monotonic_ns();
    let thread_count = stopped.tids().len();
    let gc = match gc_watch.take() {
        Some(w) => w.verdict(stop_began, stop_ended),
        None => GcCheck::NotChecked,
    };
    if gc == GcCheck::InGc && retry_if_in_gc {
        return Ok(None);
    }
    Ok(Some(Resumed {
        stopped_for,
        thread_count,
        gc,
    }))
}

pub(crate) fn segment(r: &select::Region, m: &Mapping) -> LoadSegment {
    LoadSegment {
        vaddr: r.start,
        size: r.end - r.start,
        read: m.read,
        write: m.write,
        exec: m.exec,
    }
}

/// Registers and per-thread facts of every stopped thread, main thread first.
pub(crate) fn thread_states(
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
