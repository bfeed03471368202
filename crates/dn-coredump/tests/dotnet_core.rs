//! Dumps of real .NET processes, read back with gdb, readelf and ClrMD.

mod common;

use std::process::Command;

use common::*;
use dn_coredump::{collect, CollectOptions, DumpType};
use dn_testkit::{Fixture, Runtime, Target};

#[test]
fn full_dump_opens_in_gdb_with_every_thread_and_exact_memory() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert!(target.command("threads 3").starts_with("ok"));
    let (addr, len) = parse_pattern(&target.command("pattern"));
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");

    // The GC check's EventPipe session makes the runtime allocate its event buffers (about
    // 3 MiB, once); this test is about the reads, so it runs without it.
    let mut opts = CollectOptions::new(pid, &core);
    opts.gc_check = false;
    let rss_before = vm_rss_kib(pid);
    let tasks_before = task_count(pid);
    let s = collect(opts).expect("collect");
    let tasks_after = task_count(pid);
    let rss_after = vm_rss_kib(pid);

    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");
    assert!(s.runtime_found);
    assert_eq!(s.dump_type, DumpType::Full);
    assert!(s.target_stopped_ms > 0.0 && s.target_stopped_ms <= s.seconds * 1000.0 + 1.0);
    if tasks_before == tasks_after {
        assert_eq!(
            s.threads, tasks_before,
            "threads in the dump vs /proc/{pid}/task"
        );
    }
    let md = std::fs::metadata(&core).unwrap();
    assert_eq!(md.len(), s.bytes_written);
    assert!(
        s.bytes_on_disk < s.bytes_written,
        "sparse output expected: {s:?}"
    );
    // Reading memory through pagemap must not make the target's memory resident.
    assert!(
        rss_after <= rss_before + 2048,
        "target RSS grew during the dump: {rss_before} -> {rss_after} KiB"
    );

    assert_eq!(check_readelf(&core), s.threads);
    let bin = dir.path().join("pattern.bin");
    let dump_cmd = format!(
        "dump binary memory {} {:#x} {:#x}",
        bin.display(),
        addr,
        addr + len as u64
    );
    let (threads, bt, _) = gdb_threads_and_bt(&core, &exe_of(pid), &[dump_cmd]);
    assert_eq!(threads, s.threads, "gdb thread count");
    assert!(
        has_resolved_frame(&bt),
        "no resolved frame in gdb bt:\n{bt}"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        expected_pattern(len),
        "pattern bytes in the core"
    );
}

#[test]
fn heap_dump_is_readable_by_clrmd_with_the_runtime_dac() {
    for rt in Runtime::MAIN {
        heap_dump_on(rt);
    }
}

fn heap_dump_on(rt: Runtime) {
    let mut target = Target::start(Fixture::Console, rt);
    let pid = target.pid();
    assert_eq!(target.command("leak 3000"), "ok 3000");
    let dir = tempfile::tempdir().unwrap();
    let heap = dir.path().join("heap");
    let full = dir.path().join("full");
    let mut opts = CollectOptions::new(pid, &heap);
    opts.dump_type = DumpType::Heap;
    let h = collect(opts).expect("heap dump");
    let f = collect(CollectOptions::new(pid, &full)).expect("full dump");
    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");
    assert!(
        h.bytes_written < f.bytes_written,
        "heap {h:?} vs full {f:?}"
    );

    assert_eq!(clrmd_leaked(&target, &heap), (3000, true), "{rt:?}");

    let (threads, bt, _) = gdb_threads_and_bt(&heap, &exe_of(pid), &[]);
    assert_eq!(threads, h.threads);
    assert!(has_resolved_frame(&bt), "{bt}");
}

#[test]
fn mini_and_triage_dumps_hold_threads_and_are_small() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("alloc-mb 64"), "ok");
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for kind in [DumpType::Heap, DumpType::Mini, DumpType::Triage] {
        let core = dir.path().join(format!("{kind:?}"));
        let mut opts = CollectOptions::new(pid, &core);
        opts.dump_type = kind;
        let s = collect(opts).expect("collect");
        assert_running(pid);
        assert_eq!(check_readelf(&core), s.threads, "{kind:?}");
        let (threads, _, regs) =
            gdb_threads_and_bt(&core, &exe_of(pid), &["info registers rip rsp".to_string()]);
        assert_eq!(threads, s.threads, "{kind:?}");
        assert!(regs.contains("rsp"), "{regs}");
        sizes.push(s.bytes_written);
    }
    assert_eq!(target.command("ping"), "pong");
    assert!(
        sizes[1] < sizes[0] / 4,
        "mini much smaller than heap: {sizes:?}"
    );
    assert!(
        sizes[2] <= sizes[1],
        "triage no larger than mini: {sizes:?}"
    );
}

#[test]
fn json_summary_from_the_command_line() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("c");
    let out = Command::new(collector())
        .args([
            "-p",
            &target.pid().to_string(),
            "--type",
            "mini",
            "--json",
            "-o",
        ])
        .arg(&core)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "path",
        "bytes_written",
        "bytes_on_disk",
        "threads",
        "regions",
        "seconds",
        "target_stopped_ms",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    assert_eq!(v["path"], core.to_str().unwrap());
    assert_eq!(v["dump_type"], "mini");
    assert_eq!(v["runtime_found"], true);
    assert_eq!(
        std::fs::metadata(&core).unwrap().len(),
        v["bytes_written"].as_u64().unwrap()
    );
    assert_running(target.pid());
}

#[test]
fn progress_is_reported_and_a_panicking_callback_still_resumes_the_target() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    let dir = tempfile::tempdir().unwrap();

    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut opts = CollectOptions::new(pid, dir.path().join("ok"));
    opts.progress = Some(Box::new(move |done, total| {
        log.borrow_mut().push((done, total))
    }));
    collect(opts).unwrap();
    let seen = seen.borrow();
    let (last_done, total) = *seen.last().expect("progress called");
    assert_eq!(last_done, total);
    assert!(seen
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1));

    let core = dir.path().join("panics");
    let mut opts = CollectOptions::new(pid, &core);
    opts.progress = Some(Box::new(|done, _| {
        if done > 0 {
            panic!("callback failure");
        }
    }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collect(opts)));
    assert!(r.is_err(), "the panic propagates");
    assert!(!core.exists(), "partial file removed on panic");
    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");
}

#[test]
fn target_killed_during_the_dump_is_reported_and_leaves_no_file() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    assert_eq!(target.command("alloc-mb 256"), "ok");
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let mut opts = CollectOptions::new(pid, &core);
    let mut killed = false;
    opts.progress = Some(Box::new(move |done, total| {
        // Kill the target once the copy is under way.
        if !killed && done > total / 4 {
            killed = true;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
    }));
    let r = collect(opts);
    assert!(
        matches!(r, Err(dn_coredump::CollectError::TargetExited(p)) if p == pid),
        "{r:?}"
    );
    assert!(!core.exists());
    drop(target);
}
