//! Copy-then-resume: the target is resumed before the file is written; a small `--max-buffer`
//! streams the rest while stopped; a disk that fills up after the resume leaves no file and a
//! running target; a dump never lands in a GC. Cores are checked by readelf and ClrMD.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use dn_coredump::{collect, CollectOptions, CollectSummary, CopyMode, GcCheck};
use dn_testkit::{Fixture, Runtime, Target};

const LEAKED: u64 = 3000;

fn dump(pid: i32, core: &Path, max_buffer: Option<u64>) -> CollectSummary {
    let mut opts = CollectOptions::new(pid, core);
    opts.copy = Some(if max_buffer == Some(0) {
        CopyMode::Streamed
    } else {
        CopyMode::Staged
    });
    opts.max_buffer = max_buffer;
    collect(opts).expect("collect")
}

#[test]
fn staged_partly_staged_and_streamed_cores_are_equally_valid() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("leak 3000"), "ok 3000");
    assert_eq!(target.command("alloc-mb 64"), "ok");
    let dir = tempfile::tempdir().unwrap();
    for (name, max_buffer) in [
        ("staged", None),
        ("partly", Some(8 << 20)),
        ("streamed", Some(0)),
    ] {
        let core = dir.path().join(name);
        let s = dump(pid, &core, max_buffer);
        assert_eq!(
            s.copy,
            CopyMode::resolve(None, max_buffer.or(Some(1))),
            "{s:?}"
        );
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong");
        assert!(s.target_stopped_ms > 0.0 && s.target_stopped_ms <= s.seconds * 1000.0 + 1.0);
        match max_buffer {
            None => assert!(s.staged_bytes > 64 << 20 && s.streamed_bytes == 0, "{s:?}"),
            Some(0) => assert!(s.staged_bytes == 0 && s.streamed_bytes > 64 << 20, "{s:?}"),
            Some(b) => assert!(
                s.staged_bytes > 0 && s.staged_bytes <= b && s.streamed_bytes > 0,
                "{s:?}"
            ),
        }
        assert_eq!(s.gc_check, GcCheck::NotInGc, "{s:?}");
        assert_eq!(check_readelf(&core), s.threads, "{name}");
        assert_eq!(clrmd_leaked(&target, &core), (LEAKED, true), "{name}");
    }
}

#[test]
fn disk_full_after_the_resume_or_while_streaming_leaves_no_file_and_a_running_target() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("alloc-mb 64"), "ok");
    // Staged (the disk fills after the resume) and partly staged (it fills while streaming).
    for max_buffer in ["1GB", "8MB"] {
        let small = TmpMount::new("size=24m");
        let core = small.0.path().join("core");
        let out = Command::new(collector())
            .args(["-p", &pid.to_string(), "--max-buffer", max_buffer, "-o"])
            .arg(&core)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("Writing ")).collect();
        assert_eq!(lines.len(), 1, "one-line error expected: {err}");
        assert!(
            lines[0].contains("disk full") && lines[0].contains("target resumed"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(small.0.path()).unwrap().count(),
            0,
            "partial file left with --max-buffer {max_buffer}"
        );
        assert_running(pid);
        assert_eq!(target.command("ping"), "pong");
    }
}

#[test]
fn a_dump_never_lands_in_a_gc() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("leak 3000"), "ok 3000");
    assert_eq!(target.command("alloc-mb 32"), "ok");
    assert_eq!(target.command("gc-loop 60000"), "ok");
    let dir = tempfile::tempdir().unwrap();
    let mut retries = 0;
    for i in 0..4 {
        let core = dir.path().join(format!("core{i}"));
        // Both the staged path and the pre-copy (the default) check for a GC around their stop.
        let s = if i % 2 == 0 {
            dump(pid, &core, None)
        } else {
            let s = collect(CollectOptions::new(pid, &core)).expect("collect");
            assert_eq!(s.copy, CopyMode::Precopy, "{s:?}");
            s
        };
        assert_running(pid);
        retries += s.gc_retries;
        if s.gc_check == GcCheck::NotInGc {
            assert_eq!(
                clrmd_leaked(&target, &core),
                (LEAKED, true),
                "dump {i} said no GC: {s:?}"
            );
        }
        std::fs::remove_file(&core).unwrap();
    }
    eprintln!("tries given up for a GC over 4 dumps: {retries}");
    // With a full GC every 2 ms, at least one try must have seen one.
    assert!(
        retries > 0,
        "no try overlapped a GC: the check sees nothing"
    );

    let core = dir.path().join("unchecked");
    let mut opts = CollectOptions::new(pid, &core);
    opts.gc_check = false;
    let s = collect(opts).expect("collect");
    assert_eq!((s.gc_check, s.gc_retries), (GcCheck::NotChecked, 0));
    assert_eq!(target.command("ping"), "pong");
}
