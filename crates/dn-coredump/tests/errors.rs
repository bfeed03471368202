//! Bad input gives a one-line error, a non-zero exit, no partial file, and a
//! running target.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use dn_coredump::{collect, CollectError, CollectOptions};
use dn_testkit::{Fixture, Runtime, Target};

fn run_collector(args: &[&str], out: &Path) -> Output {
    Command::new(collector())
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

fn one_line_error(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("Writing ")).collect();
    assert_eq!(lines.len(), 1, "one-line error expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn bad_pid_kernel_thread_and_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("c");
    let e = one_line_error(&run_collector(&["-p", "2147483000"], &core));
    assert!(e.contains("no process with pid 2147483000"), "{e}");
    assert!(!core.exists());

    assert!(matches!(
        collect(CollectOptions::new(2, &core)),
        Err(CollectError::KernelThread(2))
    ));
    assert!(!core.exists());
    let me = std::process::id() as i32;
    let r = collect(CollectOptions::new(me, &core));
    assert!(
        matches!(r, Err(CollectError::PermissionDenied { .. })),
        "{r:?}"
    );
    assert!(!core.exists());

    let mut child = Command::new("true").spawn().unwrap();
    let zpid = child.id() as i32;
    // Not reaped yet: a zombie until wait().
    while std::fs::read_to_string(format!("/proc/{zpid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let r = collect(CollectOptions::new(zpid, &core));
    assert!(
        matches!(r, Err(CollectError::Zombie(p)) if p == zpid),
        "{r:?}"
    );
    child.wait().unwrap();
    assert!(!core.exists());
}

#[test]
fn existing_output_file_is_never_touched() {
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("exists");
    std::fs::write(&core, b"precious").unwrap();
    let e = one_line_error(&run_collector(&["-p", &target.pid().to_string()], &core));
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read(&core).unwrap(), b"precious");
    // A symlink to a non-existing file is not followed.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
    one_line_error(&run_collector(&["-p", &target.pid().to_string()], &link));
    assert!(!dir.path().join("elsewhere").exists());
    assert_running(target.pid());
}

#[test]
fn full_disk_and_read_only_dir_leave_no_file_and_a_running_target() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    let full = TmpMount::new("size=2m");
    let core = full.0.path().join("core");
    let e = one_line_error(&run_collector(&["-p", &pid.to_string()], &core));
    assert!(e.contains("disk full"), "{e}");
    assert!(!core.exists(), "partial file left on the full disk");
    assert_eq!(std::fs::read_dir(full.0.path()).unwrap().count(), 0);
    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");

    let ro = TmpMount::new("ro,size=1m");
    let core = ro.0.path().join("core");
    let e = one_line_error(&run_collector(&["-p", &pid.to_string()], &core));
    assert!(e.contains("cannot create output file"), "{e}");
    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");
}

#[test]
fn under_sudo_the_dump_belongs_to_the_invoking_user() {
    use std::os::unix::fs::MetadataExt;
    let target = Target::start(Fixture::Console, Runtime::Net10);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let o = Command::new(collector())
        .args(["-p", &target.pid().to_string(), "--type", "triage", "-o"])
        .arg(&core)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65533")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::metadata(&core).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 65533));
    assert_eq!(md.mode() & 0o777, 0o600);
    assert_running(target.pid());
}

#[test]
fn another_user_gets_a_clear_permission_error() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let pid = target.pid();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The build directory may not be reachable for uid 65534: use a copy.
    let exe = dir.path().join("collector");
    std::fs::copy(collector(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let core = dir.path().join("core");
    let o = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(&exe)
        .args(["-p", &pid.to_string(), "-o"])
        .arg(&core)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(e.contains("no permission"), "{e}");
    assert!(e.contains("CAP_SYS_PTRACE"), "{e}");
    assert!(!core.exists());
    assert_running(pid);
    assert_eq!(target.command("ping"), "pong");
}

/// Two dumps of one process at once (two triggers firing together): the second waits until the
/// first lets the target go, instead of failing on "already being traced".
#[test]
fn a_dump_waits_while_another_tracer_holds_the_target() {
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let pid = t.pid();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("c");
    let held = dn_core::ptrace::StoppedProcess::stop(pid).expect("hold the target");
    let mut child = Command::new(collector())
        .args(["-p", &pid.to_string(), "--type", "mini", "-o"])
        .arg(&core)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the dump waits while another tracer holds the target"
    );
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(check_readelf(&core) > 0, "a valid core");
    assert_running(pid);
}
