//! Pre-copy (the default mode): memory the target keeps writing while it is dumped holds, in
//! the core, the values of the moment it was stopped; the managed heap of such a core walks as
//! ClrMD and dotnet-dump see it; a disk that fills up during the pre-copy or after the stop
//! leaves no file and a running target.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use common::*;
use dn_coredump::{collect, CollectOptions, CopyMode, GcCheck, Tracking};
use dn_testkit::{Fixture, Runtime, Target};

const PAGE: u64 = 4096;

/// The PT_LOAD segments of a core: (vaddr, size, file offset).
fn loads(core: &Path) -> Vec<(u64, u64, u64)> {
    let f = File::open(core).unwrap();
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh, 0).unwrap();
    assert_eq!(&eh[..4], b"\x7fELF");
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64_at(&eh, 0x20);
    let phnum = u16::from_le_bytes([eh[0x38], eh[0x39]]) as usize;
    assert_ne!(phnum, 0xffff, "test cores have few segments");
    let mut ph = vec![0u8; phnum * 56];
    f.read_exact_at(&mut ph, phoff).unwrap();
    ph.chunks_exact(56)
        .filter(|p| u32::from_le_bytes(p[..4].try_into().unwrap()) == 1)
        .map(|p| (u64_at(p, 0x10), u64_at(p, 0x20), u64_at(p, 0x08)))
        .collect()
}

/// Reads `buf.len()` bytes at `addr` from the core's segments (a read may span several).
fn read_core(core: &Path, segs: &[(u64, u64, u64)], addr: u64, buf: &mut [u8]) {
    let f = File::open(core).unwrap();
    let mut done = 0usize;
    while done < buf.len() {
        let a = addr + done as u64;
        let &(va, size, off) = segs
            .iter()
            .find(|&&(va, size, _)| a >= va && a < va + size)
            .unwrap_or_else(|| panic!("{a:#x} is in no segment of the core"));
        let n = ((va + size - a) as usize).min(buf.len() - done);
        f.read_exact_at(&mut buf[done..done + n], off + (a - va))
            .unwrap();
        done += n;
    }
}

fn parse_scribble(reply: &str) -> (u64, u64) {
    let mut it = reply.split_whitespace();
    assert_eq!(it.next(), Some("scribble"), "{reply}");
    let addr = u64::from_str_radix(it.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    (addr, it.next().unwrap().parse().unwrap())
}

#[test]
fn memory_written_during_a_precopied_dump_holds_its_values_at_the_stop() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("leak 3000"), "ok 3000");
    assert_eq!(target.command("alloc-mb 64"), "ok");
    let (base, pages) = parse_scribble(&target.command("scribble 64"));
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let core = dir.path().join(format!("core{round}"));
        let mut opts = CollectOptions::new(pid, &core);
        opts.copy = Some(CopyMode::Precopy);
        let s = collect(opts).expect("collect");
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong");
        assert_eq!(s.copy, CopyMode::Precopy);
        assert!(s.tracking.is_some(), "{s:?}");
        assert!(s.precopied_bytes > 128 << 20, "{s:?}");
        assert_eq!(s.staged_bytes, 0, "{s:?}");
        // The scribbler wrote pages after the pre-copy read them: they were found again.
        assert!(s.streamed_bytes > 0, "no page copied again: {s:?}");
        if s.tracking == Some(Tracking::Compare) {
            assert!(s.reread_bytes > 128 << 20, "{s:?}");
        }
        assert!(s.target_stopped_ms > 0.0 && s.target_stopped_ms < s.seconds * 1000.0);
        assert_eq!(s.gc_check, GcCheck::NotInGc, "{s:?}");
        assert_eq!(
            std::fs::metadata(&core).unwrap().len(),
            s.bytes_written,
            "{s:?}"
        );

        let segs = loads(&core);
        let mut block = vec![0u8; (pages * PAGE) as usize];
        read_core(&core, &segs, base, &mut block);
        let word = |o: usize| u64::from_le_bytes(block[o..o + 8].try_into().unwrap());
        let last = word(8);
        assert!(last >= pages, "the scribbler never ran: {last}");
        let mut ahead = 0;
        for i in 0..pages {
            let v = word((i * PAGE) as usize);
            assert_eq!(v % pages, i, "page {i} holds {v}, not one of its numbers");
            // One write may be in flight: page written, last number not yet.
            assert!(
                v + pages > last && v <= last + 1,
                "round {round}: page {i} holds {v}, stale against the last number {last} ({pages} pages)"
            );
            ahead += usize::from(v == last + 1);
        }
        assert!(ahead <= 1, "{ahead} pages ahead of the last number");

        assert_eq!(check_readelf(&core), s.threads, "round {round}");
        assert_eq!(clrmd_leaked(&target, &core), (3000, true), "round {round}");
        std::fs::remove_file(&core).unwrap();
    }
}

#[test]
fn precopied_heap_matches_dotnet_dump_and_a_staged_core() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("leak 3000"), "ok 3000");
    assert_eq!(target.command("alloc-mb 32"), "ok");
    assert!(target.command("scribble 16").starts_with("scribble"));
    assert_eq!(target.command("gc"), "ok");
    let dir = tempfile::tempdir().unwrap();
    let mut stats = Vec::new();
    for (name, mode) in [("precopy", CopyMode::Precopy), ("staged", CopyMode::Staged)] {
        let core = dir.path().join(name);
        let mut opts = CollectOptions::new(pid, &core);
        opts.copy = Some(mode);
        // The GC check's EventPipe session makes the runtime allocate managed objects: without
        // it the idle target's heap stays the same from one dump to the next.
        opts.gc_check = false;
        let s = collect(opts).expect("collect");
        assert_eq!(s.copy, mode);
        let out = dn_testkit::dotnet_dump_analyze(&core, &["dumpheap -stat".to_string()]);
        stats.push((name, heap_stat_rows(&out)));
    }
    // The target is idle but for the scribbler (native memory): both heaps are the same.
    assert!(!stats[0].1.is_empty(), "no dumpheap -stat rows");
    assert_eq!(stats[0].1, stats[1].1, "dumpheap -stat: precopy vs staged");
    assert!(
        stats[0]
            .1
            .iter()
            .any(|r| r.contains("ConsoleTarget.LeakedItem")),
        "{:?}",
        stats[0].1
    );
}

/// `dumpheap -stat`'s per-type rows (method table, count, total size, name), sorted.
fn heap_stat_rows(out: &str) -> Vec<String> {
    let mut rows: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4
                && u64::from_str_radix(f[0], 16).is_ok()
                && f[1].replace(',', "").parse::<u64>().is_ok()
        })
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

#[test]
fn disk_full_during_or_after_the_precopy_leaves_no_file_and_a_running_target() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("alloc-mb 64"), "ok");
    assert!(target.command("scribble 4").starts_with("scribble"));
    // 24 MiB fills early in the pre-copy (the target runs); 8 KiB less than a whole dump took
    // fills at its end (the pre-copy's last chunks, the pages rewritten during the stop or the
    // headers written after the resume, depending on what the target wrote meanwhile).
    let first = {
        let dir = tempfile::tempdir().unwrap();
        let core = dir.path().join("core");
        let mut opts = CollectOptions::new(pid, &core);
        opts.copy = Some(CopyMode::Precopy);
        let s = collect(opts).expect("collect");
        s.bytes_on_disk
    };
    let tight = format!("size={}k", first / 1024 - 8);
    for size in ["size=24m", tight.as_str()] {
        let small = TmpMount::new(size);
        let core = small.0.path().join("core");
        let out = Command::new(collector())
            .args(["-p", &pid.to_string(), "--copy", "precopy", "-o"])
            .arg(&core)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{size}: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("Writing ") && !l.starts_with("note: "))
            .collect();
        assert_eq!(lines.len(), 1, "one-line error expected ({size}): {err}");
        assert!(
            lines[0].contains("disk full") && lines[0].contains("target resumed"),
            "{size}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(small.0.path()).unwrap().count(),
            0,
            "partial file left ({size})"
        );
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong");
    }
}

#[test]
fn max_buffer_with_another_mode_is_refused() {
    for args in [
        ["--copy", "precopy", "--max-buffer", "8MB"],
        ["--copy", "streamed", "--max-buffer", "8MB"],
    ] {
        let out = Command::new(collector())
            .args(["-p", "1", "-o", "/nonexistent/core"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--max-buffer sizes the staging buffer"),
            "{err}"
        );
    }
}
