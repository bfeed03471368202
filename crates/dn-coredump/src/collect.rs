//! One dump from start to end: checks, the staging buffer, the GC watch, and
//! the tries ([`attempt`](crate::attempt)) until one did not overlap a GC.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::arena::{self, Arena};
use crate::attempt::{attempt, Job};
use crate::copy::CHUNK;
use crate::dirty::{self, Tracking};
use crate::error::CollectError;
use crate::gc::{GcCheck, GcWatch};
use crate::precopy;
use crate::procinfo;
use crate::select::DumpType;
use crate::signals;
use crate::warm;

/// Progress callback: (bytes of address space processed, total).
pub type ProgressFn = Box<dyn FnMut(u64, u64)>;

pub struct CollectOptions {
    pub pid: i32,
    /// Created exclusively; an existing file is an error.
    pub output: PathBuf,
    pub dump_type: DumpType,
    pub progress: Option<ProgressFn>,
    /// How the memory gets into the file; `None`: [`CopyMode::Staged`] when `max_buffer` is
    /// given ([`CopyMode::Streamed`] when it is 0), else [`CopyMode::DEFAULT`].
    pub copy: Option<CopyMode>,
    /// Staged: most bytes copied into our memory while the target is stopped (the rest is
    /// streamed to the file while it waits); `None`: half of `MemAvailable`; 0: stream
    /// everything. Not used by the other modes.
    pub max_buffer: Option<u64>,
    /// Ask the runtime (EventPipe GC events) whether a GC was under way during the stop, and
    /// take the dump again if so.
    pub gc_check: bool,
}

impl CollectOptions {
    pub fn new(pid: i32, output: impl Into<PathBuf>) -> Self {
        CollectOptions {
            pid,
            output: output.into(),
            dump_type: DumpType::Full,
            progress: None,
            copy: None,
            max_buffer: None,
            gc_check: true,
        }
    }
}

impl std::fmt::Debug for CollectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectOptions")
            .field("pid", &self.pid)
            .field("output", &self.output)
            .field("dump_type", &self.dump_type)
            .field("copy", &self.copy)
            .field("max_buffer", &self.max_buffer)
            .field("gc_check", &self.gc_check)
            .finish_non_exhaustive()
    }
}

/// How the target's memory gets into the file (see docs/dump-types.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CopyMode {
    /// Written to the file while the target runs; during the stop only the pages it wrote
    /// meanwhile are copied again (soft-dirty bits, or a comparison where the kernel has none).
    Precopy,
    /// Copied into a buffer (filled once beforehand) while the target is stopped, written
    /// after it runs again; what does not fit is streamed while stopped.
    Staged,
    /// Written to the file while the target is stopped.
    Streamed,
}

impl CopyMode {
    pub const DEFAULT: CopyMode = CopyMode::Precopy;

    /// The mode `copy` and `max_buffer` ask for together.
    pub fn resolve(copy: Option<CopyMode>, max_buffer: Option<u64>) -> CopyMode {
        match (copy, max_buffer) {
            (Some(m), _) => m,
            (None, Some(0)) => CopyMode::Streamed,
            (None, Some(_)) => CopyMode::Staged,
            (None, None) => CopyMode::DEFAULT,
        }
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
    pub copy: CopyMode,
    /// Pre-copy: how the pages written after the pre-copy were found.
    pub tracking: Option<Tracking>,
    /// From the first PTRACE_INTERRUPT to the last PTRACE_DETACH, on every path (the pre-copy
    /// runs before the first).
    pub target_stopped_ms: f64,
    /// Bytes copied into our memory while the target was stopped, written after its resume.
    pub staged_bytes: u64,
    /// Bytes written to the file while the target was stopped (the staging buffer was full).
    pub streamed_bytes: u64,
    /// Bytes of untouched file pages read from their files after the resume.
    pub deferred_bytes: u64,
    /// Pre-copy: bytes of address space written to the file while the target ran.
    pub precopied_bytes: u64,
    /// Pre-copy: bytes read from the target while it was stopped (written if they changed,
    /// counted in `streamed_bytes`).
    pub reread_bytes: u64,
    /// libcoreclr.so is mapped in the target.
    pub runtime_found: bool,
    /// Resident pages that could not be read (left as zeros in the dump).
    pub unreadable_bytes: u64,
    /// Whether the runtime was in a GC suspension during the stop.
    pub gc_check: GcCheck,
    /// Tries given up because a GC overlapped the stop.
    pub gc_retries: u32,
    /// What the dump could not include (e.g. a module whose unwind data could not be found).
    pub warnings: Vec<String>,
}

fn not_found_or(pid: i32, e: io::Error, what: &str) -> CollectError {
    if e.kind() == io::ErrorKind::NotFound {
        CollectError::NoSuchProcess(pid)
    } else {
        CollectError::proc(format!("/proc/{pid}/{what}"), e)
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

    let interrupt = signals::guard();
    let mode = CopyMode::resolve(opts.copy, opts.max_buffer);
    let tracking = (mode == CopyMode::Precopy).then(dirty::probe);
    let mut arena = match mode {
        CopyMode::Staged => {
            staging_arena(pid, opts.max_buffer, &|| interrupt.interrupted().is_some())
        }
        CopyMode::Precopy | CopyMode::Streamed => Arena::empty(),
    };
    if let Some(signal) = interrupt.interrupted() {
        return Err(CollectError::Interrupted(signal));
    }
    let mut progress = opts.progress.take();
    let mut gc_retries = 0u32;
    let done = loop {
        let gc = if opts.gc_check {
            GcWatch::start(pid)
        } else {
            None
        };
        let checked = gc.is_some();
        if let Some(w) = &gc {
            w.wait_quiet(GC_WAIT);
        }
        let job = Job {
            pid,
            output: &opts.output,
            dump_type: opts.dump_type,
            stat: &stat,
            status: &status,
            comm: &comm,
            cmdline: &cmdline,
            arena: &mut arena,
            progress: &mut progress,
            interrupt: &interrupt,
            gc,
            retry_if_in_gc: checked && gc_retries < GC_MAX_RETRIES,
        };
        let tried = match tracking {
            Some(t) => precopy::attempt(job, t)?,
            None => attempt(job)?,
        };
        match tried {
            Some(d) => break d,
            None => {
                gc_retries += 1;
                std::thread::sleep(GC_BACKOFF);
            }
        }
    };
    drop(interrupt);
    let m = &done.moved;
    Ok(CollectSummary {
        path: done.path.clone(),
        pid,
        dump_type: opts.dump_type,
        bytes_written: done.bytes_written,
        bytes_on_disk: done.bytes_on_disk,
        threads: m.thread_count,
        regions: done.regions,
        seconds: began.elapsed().as_secs_f64(),
        copy: mode,
        tracking: m.tracking,
        target_stopped_ms: m.stopped_for.as_secs_f64() * 1000.0,
        staged_bytes: m.staged_bytes,
        streamed_bytes: m.streamed_bytes,
        deferred_bytes: m.deferred_bytes,
        precopied_bytes: m.precopied_bytes,
        reread_bytes: m.reread_bytes,
        runtime_found: done.runtime_found,
        unreadable_bytes: done.unreadable_bytes,
        gc_check: m.gc,
        gc_retries,
        warnings: done.warnings,
    })
}

/// How long to wait before a try while a GC suspension is under way (as far as we know).
const GC_WAIT: Duration = Duration::from_secs(2);
/// Tries given up for a GC before the next one is kept whatever it overlaps.
const GC_MAX_RETRIES: u32 = 5;
/// The pause between tries.
const GC_BACKOFF: Duration = Duration::from_millis(50);

/// The pre-faulted staging buffer: what the target may need, within the budget. When it cannot
/// be had, the dump streams everything while the target is stopped (as with a budget of 0).
fn staging_arena(pid: i32, max_buffer: Option<u64>, stop: &(dyn Fn() -> bool + Sync)) -> Arena {
    let budget = max_buffer.unwrap_or_else(arena::default_budget);
    let want = budget.min(arena::estimate_need(pid)) / CHUNK as u64 * CHUNK as u64;
    let len = usize::try_from(want).unwrap_or(0);
    let Ok(mut arena) = Arena::reserve(len) else {
        return Arena::empty();
    };
    let warmed = warm::prefill(pid, arena.as_mut_slice(), stop);
    if !stop() {
        arena.populate(warmed);
    }
    arena
}
