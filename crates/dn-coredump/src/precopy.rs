//! One try at a pre-copied dump: the target's memory is written straight into the core file
//! while it runs; then it is stopped, its registers and mappings are read, the pages it wrote
//! since the pre-copy are copied again ([`refresh`](crate::refresh)), regions that appeared
//! or grew meanwhile are copied whole, the notes are built; it is resumed, and the headers go
//! to the file (the program headers and notes after the data, so that nothing pre-copied has
//! to move whatever the final count of segments or the size of the notes).

use std::fs;

use crate::attempt::{self, Done, Job, Moved};
use crate::copy::{Copier, CHUNK};
use crate::dirty::{self, Tracking};
use crate::elf::{self, LoadSegment, HEAD_RESERVED};
use crate::error::CollectError;
use crate::gc;
use crate::maps::{self, Mapping};
use crate::memory::RemoteMemory;
use crate::notes::{self, ProcessFacts};
use crate::output::OutputFile;
use crate::procinfo;
use crate::refresh::{self, Identity, Piece, PreCopied, Refresh};
use crate::select::{self, Region};
use crate::signals::InterruptGuard;
use crate::stage::{Fill, Sink};
use crate::writeback::WriteBehind;
use dn_core::ptrace::StoppedProcess;

/// Takes the dump once (see the module's text). `Ok(None)`: a GC overlapped the stop and
/// `retry_if_in_gc` was set; the target runs again and no file was left.
pub fn attempt(mut job: Job<'_>, tracking: Tracking) -> Result<Option<Done>, CollectError> {
    let pid = job.pid;
    let out = OutputFile::create(job.output)?;
    let interrupt = job.interrupt;
    let mut warnings = Vec::new();
    let mut tracking = tracking;
    if tracking == Tracking::SoftDirty {
        if let Err(e) = dirty::clear(pid) {
            warnings.push(format!(
                "cannot clear the target's soft-dirty bits ({e}): every resident page was \
                 compared during the stop"
            ));
            tracking = Tracking::Compare;
        }
    }
    let read_err = |e, what| attempt::attached_read_error(pid, e, what);

    // While the target runs: the regions a dump of it now would select, minus shared mappings
    // (another process may write those unseen), and their copy into the file.
    let auxv = fs::read(format!("/proc/{pid}/auxv")).map_err(|e| read_err(e, "auxv"))?;
    let maps = maps::read_mappings(pid).map_err(|e| read_err(e, "smaps"))?;
    let remote = RemoteMemory::open(pid).map_err(|e| read_err(e, "pagemap"))?;
    let mut copier = Copier::new(pid, &maps, remote);
    let chosen = select::select_regions(&maps, job.dump_type, &[], &auxv, &mut |i, a, b| {
        copier.read_small(i, a, b)
    });
    let pre_regions: Vec<Region> = chosen
        .regions
        .into_iter()
        .filter(|r| !maps[r.map].shared)
        .collect();
    let mut pre = Vec::with_capacity(pre_regions.len());
    let mut offsets = Vec::with_capacity(pre_regions.len());
    let mut pre_end = HEAD_RESERVED;
    for r in &pre_regions {
        offsets.push(pre_end);
        pre.push(PreCopied {
            start: r.start,
            end: r.end,
            offset: pre_end,
            identity: Identity::of(&maps[r.map]),
        });
        pre_end += r.end - r.start;
    }
    pre.sort_by_key(|q| q.start);
    let total = pre_end - HEAD_RESERVED;
    let mut on_chunk = attempt::chunk_progress(interrupt, &mut *job.progress, total);
    std::thread::scope(|scope| {
        let mut sink = WriteBehind::start(scope, &out, CHUNK);
        let copied = pre_regions
            .iter()
            .zip(&offsets)
            .try_for_each(|(r, &at)| copier.copy_region(r, at, &mut sink, &mut on_chunk));
        // A write error (disk full) explains a failed copy better than the copy's own error.
        sink.finish().and(copied)
    })?;
    let precopy_unreadable = copier.unreadable_bytes;
    drop(copier);
    if precopy_unreadable > 0 && tracking == Tracking::SoftDirty {
        // Pages the pre-copy could not read (left as zeros) are not soft-dirty: only the
        // comparison finds them again.
        warnings.push(format!(
            "{precopy_unreadable} bytes could not be read while the target ran: every resident \
             page was compared during the stop"
        ));
        tracking = Tracking::Compare;
    }
    // Their buffers are faulted in now, not during the stop.
    let mut workers: Vec<Refresh> = (0..REFRESH_THREADS)
        .map(|k| Refresh::new(&out, tracking, k == 0))
        .collect();

    let stop_began = gc::monotonic_ns();
    let mut stopped = StoppedProcess::stop(pid)?;
    let threads = attempt::thread_states(pid, &mut stopped)?;
    let maps = maps::read_mappings(pid).map_err(|e| read_err(e, "smaps"))?;
    let runtime_found = maps.iter().any(select::is_runtime);
    let remote = RemoteMemory::open(pid).map_err(|e| read_err(e, "pagemap"))?;
    let mut reader = Copier::new(pid, &maps, remote);
    let pointers: Vec<select::ThreadPointers> = threads
        .iter()
        .map(|(r, _)| select::ThreadPointers {
            sp: r.sp(),
            fs_base: r.fs_base(),
        })
        .collect();
    let chosen = select::select_regions(&maps, job.dump_type, &pointers, &auxv, &mut |i, a, b| {
        reader.read_small(i, a, b)
    });
    warnings.extend(chosen.warnings);
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
    let placed = refresh::place(&pre, &chosen.regions, &maps, pre_end);

    let mut new_bytes = 0u64;
    let mut still_wanted = |_: u64| match interrupt.interrupted() {
        Some(signal) => Err(CollectError::Interrupted(signal)),
        None => Ok(()),
    };
    let refreshed = refresh_parallel(pid, &maps, &placed.pieces, &mut workers, interrupt);
    let mut stop_unreadable = refreshed?;
    let mut copier = reader;
    for p in placed.pieces.iter().filter(|p| !p.precopied) {
        let r = Region {
            start: p.start,
            end: p.end,
            map: p.map,
        };
        let mut sink = Direct {
            out: &out,
            buf: workers[0].buffer(),
        };
        copier.copy_region(&r, p.at, &mut sink, &mut still_wanted)?;
        new_bytes += p.end - p.start;
    }
    stop_unreadable += copier.unreadable_bytes;
    let Some(attempt::Resumed {
        stopped_for,
        thread_count,
        gc,
    }) = attempt::resume_checked(
        &mut stopped,
        pid,
        &mut job.gc,
        job.retry_if_in_gc,
        stop_began,
    )?
    else {
        return Ok(None);
    };

    // After the resume: pre-copied bytes nothing uses become holes, then the headers.
    for &(at, len) in &placed.unused {
        out.punch_hole(at, len)?;
    }
    let segments: Vec<LoadSegment> = placed
        .pieces
        .iter()
        .map(|p| {
            let r = Region {
                start: p.start,
                end: p.end,
                map: p.map,
            };
            attempt::segment(&r, &maps[p.map])
        })
        .collect();
    let offsets: Vec<u64> = placed.pieces.iter().map(|p| p.at).collect();
    let layout = elf::tail_layout(&segments, &offsets, note_bytes.len() as u64, placed.end);
    out.write_at(0, &layout.head)?;
    out.write_at(placed.end, &layout.phdrs)?;
    out.write_at(layout.notes_offset, &note_bytes)?;
    drop(stopped);
    let recopied_bytes: u64 = workers.iter().map(|w| w.recopied_bytes).sum();
    let read_bytes: u64 = workers.iter().map(|w| w.read_bytes).sum();
    drop(workers);
    let (path, bytes_on_disk) = out.finish(layout.total_size)?;
    Ok(Some(Done {
        path,
        bytes_written: layout.total_size,
        bytes_on_disk,
        regions: segments.len(),
        runtime_found,
        // Compared: every resident page was read again during the stop.
        unreadable_bytes: stop_unreadable
            + match tracking {
                Tracking::SoftDirty => precopy_unreadable,
                Tracking::Compare => 0,
            },
        warnings,
        moved: Moved {
            stopped_for,
            thread_count,
            gc,
            staged_bytes: 0,
            streamed_bytes: recopied_bytes + new_bytes,
            deferred_bytes: 0,
            precopied_bytes: total,
            reread_bytes: read_bytes + new_bytes,
            tracking: Some(tracking),
        },
    }))
}

/// Threads bringing the pre-copied pieces up to date during the stop (the target's threads
/// are all stopped: the cores are ours).
const REFRESH_THREADS: usize = 2;

/// Refreshes the pre-copied `pieces`, split into parts of about equal bytes, one per worker.
/// Returns the bytes of resident pages that could not be read.
fn refresh_parallel(
    pid: i32,
    maps: &[Mapping],
    pieces: &[Piece],
    workers: &mut [Refresh<'_>],
    interrupt: &InterruptGuard,
) -> Result<u64, CollectError> {
    let pre: Vec<&Piece> = pieces.iter().filter(|p| p.precopied).collect();
    let total: u64 = pre.iter().map(|p| p.end - p.start).sum();
    let share = total.div_ceil(workers.len().max(1) as u64).max(1);
    let mut parts: Vec<Vec<&Piece>> = vec![Vec::new(); workers.len()];
    let (mut k, mut bytes) = (0usize, 0u64);
    for p in pre {
        if bytes >= share && k + 1 < parts.len() {
            k += 1;
            bytes = 0;
        }
        parts[k].push(p);
        bytes += p.end - p.start;
    }
    let results: Vec<Result<u64, CollectError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .zip(workers.iter_mut())
            .map(|(part, w)| {
                scope.spawn(move || -> Result<u64, CollectError> {
                    let remote = RemoteMemory::open(pid)
                        .map_err(|e| attempt::attached_read_error(pid, e, "pagemap"))?;
                    let mut copier = Copier::new(pid, maps, remote);
                    for p in part {
                        if let Some(signal) = interrupt.interrupted() {
                            return Err(CollectError::Interrupted(signal));
                        }
                        w.piece(&mut copier, p, &maps[p.map])?;
                    }
                    Ok(copier.unreadable_bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.into_iter().sum()
}

/// Copies new pieces during the stop straight into the file through one buffer.
struct Direct<'o, 'b> {
    out: &'o OutputFile,
    buf: &'b mut [u8],
}

impl Sink for Direct<'_, '_> {
    fn chunk(&mut self, at: u64, len: usize, fill: &mut Fill<'_>) -> Result<(), CollectError> {
        let buf = &mut self.buf[..len];
        if fill(buf)? {
            self.out.write_sparse(at, buf)?;
        }
        Ok(())
    }
}
