//! `dn-dump collect` as a user runs it, against real .NET targets.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::dn_dump;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

fn is_running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.chars().next().unwrap_or('?'));
    matches!(state, Some('R') | Some('S') | Some('D'))
}

fn elf_core(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    // ELF magic, 64-bit, ET_CORE (4).
    bytes.len() > 64 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2 && bytes[16] == 4
}

fn summary(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "dn-dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn collect_writes_a_private_core_and_leaves_the_target_running() {
    let dir = tempfile::tempdir().unwrap();
    for rt in Runtime::MAIN {
        let mut t = Target::start(Fixture::Console, rt);
        let path = dir.path().join(format!("core-{}", rt.label()));
        let out = common::collect(&t, &path, &["--json"]);
        let s = summary(&out);
        assert_eq!(s["path"].as_str(), Some(path.to_str().unwrap()));
        assert!(s["threads"].as_u64().unwrap() >= 2, "{s}");
        assert!(s["regions"].as_u64().unwrap() > 10, "{s}");
        assert!(
            s["bytes_on_disk"].as_u64().unwrap() <= s["bytes_written"].as_u64().unwrap(),
            "{s}"
        );
        assert!(s["target_stopped_ms"].as_f64().is_some());
        assert!(elf_core(&path), "{rt:?}: not an ELF core");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{rt:?}");
        assert!(is_running(t.pid()), "{rt:?}: target left stopped");
        assert_eq!(t.command("ping"), "pong");
    }
}

#[test]
fn via_runtime_asks_the_runtime_to_write_the_dump() {
    let dir = tempfile::tempdir().unwrap();
    for rt in [Runtime::Net8, Runtime::Net10] {
        let mut t = Target::start(Fixture::Console, rt);
        let path = dir.path().join(format!("rt-core-{}", rt.label()));
        let out = common::collect(&t, &path, &["--type", "heap", "--via-runtime", "--json"]);
        let s = summary(&out);
        assert_eq!(s["writer"], "runtime");
        assert!(s["bytes_written"].as_u64().unwrap() > 1 << 20, "{s}");
        assert!(
            elf_core(&path),
            "{rt:?}: the runtime's dump is not an ELF core"
        );
        assert_eq!(t.command("ping"), "pong");
    }
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // No such process.
    let out = dn_dump(&[
        "collect",
        "-p",
        "2147483000",
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("dn-dump: ") && last.contains("2147483000"),
        "{err}"
    );
    assert!(!dir.path().join("x").exists(), "a partial file was left");

    // An existing file is never overwritten, by either writer.
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"keep me").unwrap();
    for extra in [&[][..], &["--via-runtime"][..]] {
        let mut args = vec!["collect", "-p"];
        let pid = t.pid().to_string();
        args.push(&pid);
        args.extend(["-o", existing.to_str().unwrap()]);
        args.extend(extra);
        let out = dn_dump(&args);
        assert!(!out.status.success(), "{extra:?} overwrote a file");
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exists"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(is_running(t.pid()));

    // A pid with no .NET runtime and --via-runtime: a clear error about the socket.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let out = dn_dump(&[
        "collect",
        "-p",
        &sleeper.id().to_string(),
        "-o",
        dir.path().join("y").to_str().unwrap(),
        "--via-runtime",
    ]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("diagnostics socket"));
}

/// `collect -n NAME` finds the process by name (here a name no other process has: the
/// self-contained app started through a uniquely named link, which becomes its process name),
/// `--process-id` is `-p`'s long alias, and dump types take any letter case.
#[test]
fn collect_by_name_or_process_id_and_types_in_any_case() {
    let built = dn_testkit::build(Fixture::Console, Runtime::Net8).expect("fixture");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("dnct{}", std::process::id() % 1_000_000);
    let link = dir.path().join(&name);
    std::os::unix::fs::symlink(&built.program, &link).unwrap();
    let mut child = Command::new(&link)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the fixture");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(&mut child);
    let by_name = dir.path().join("by-name");
    // The runtime's diagnostic socket appears shortly after start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let s = loop {
        let out = dn_dump(&[
            "collect",
            "-n",
            &name,
            "--type",
            "Heap",
            "--json",
            "-o",
            by_name.to_str().unwrap(),
        ]);
        if out.status.success() || std::time::Instant::now() > deadline {
            break summary(&out);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(
        s["pid"].as_i64(),
        Some(i64::from(guard.0.id() as i32)),
        "{s}"
    );
    assert_eq!(s["dump_type"], "heap", "{s}");
    assert!(elf_core(&by_name));

    let by_pid = dir.path().join("by-pid");
    let pid = guard.0.id().to_string();
    let out = dn_dump(&[
        "collect",
        "--process-id",
        &pid,
        "--type",
        "MINI",
        "--json",
        "-o",
        by_pid.to_str().unwrap(),
    ]);
    assert_eq!(summary(&out)["dump_type"], "mini");

    // `analyze` opens the mini dump: what needs only the runtime answers, the heap commands
    // say what the dump lacks.
    let out = dn_dump(&[
        "analyze",
        by_pid.to_str().unwrap(),
        "--json",
        "-c",
        "eeversion",
        "-c",
        "dumpheap -stat",
    ]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0]["version_string"]
            .as_str()
            .unwrap()
            .starts_with("8.0."),
        "{}",
        lines[0]
    );
    let err = lines[1]["error"].as_str().unwrap();
    assert!(err.contains("the GC heap is not in this dump"), "{err}");
    assert!(
        !out.status.success(),
        "a failed command makes the exit status non-zero"
    );

    // No such name: one line, non-zero exit.
    let out = dn_dump(&["collect", "-n", "no-such-process-anywhere"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim().lines().count() == 1 && err.contains("no-such-process-anywhere"),
        "{err}"
    );
}
