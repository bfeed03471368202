//! The Console fixture starts and answers on every runtime the harness supports.

use dn_testkit::{Fixture, Runtime, StartOptions, Target};
use std::time::Duration;

fn ping_and_socket(rt: Runtime) {
    let mut t = Target::start(Fixture::Console, rt);
    assert_eq!(t.command("ping"), "pong");
    let socket = t.socket_path();
    let name = socket.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("dotnet-diagnostic-{}-", t.pid())),
        "{name}"
    );
    assert!(socket.exists(), "{} missing", socket.display());
    assert!(t.built().runtime_dir.join("libcoreclr.so").is_file());
    assert!(t.built().runtime_dir.join("libmscordaccore.so").is_file());
    assert_eq!(t.command("leak 3"), "ok 3");
    assert_eq!(t.command("exit"), "bye");
    assert_eq!(t.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn console_on_netcore31() {
    ping_and_socket(Runtime::NetCore31);
}

#[test]
fn console_on_net8() {
    ping_and_socket(Runtime::Net8);
}

#[test]
fn console_on_net9() {
    ping_and_socket(Runtime::Net9);
}

#[test]
fn console_on_net10() {
    ping_and_socket(Runtime::Net10);
}

#[test]
fn console_on_net11() {
    ping_and_socket(Runtime::Net11);
}

#[test]
fn console_commands_reply_as_documented() {
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(t.command("leak 5"), "ok 5");
    assert_eq!(t.command("leak 2"), "ok 7");
    assert_eq!(t.command("alloc-mb 3"), "ok");
    assert_eq!(t.command("objects 1000"), "ok");
    assert_eq!(t.command("throw 4"), "ok");
    assert_eq!(t.command("gc"), "ok");

    let reply = t.command("pattern");
    let parts: Vec<&str> = reply.split(' ').collect();
    assert_eq!(parts.len(), 3, "{reply}");
    assert_eq!(parts[0], "pattern");
    let addr = u64::from_str_radix(parts[1].trim_start_matches("0x"), 16).unwrap();
    assert_ne!(addr, 0);
    assert_eq!(parts[2], "1048576");
    // The pattern really is in the target's memory at that address.
    let mem = std::fs::read(format!("/proc/{}/mem", t.pid())).err();
    assert!(mem.is_some(), "reading all of /proc/PID/mem must fail");
    let bytes = read_target_memory(t.pid(), addr, 256);
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(*b, ((i * 7 + 3) & 0xff) as u8, "byte {i}");
    }

    let reply = t.command("threads 3");
    let count: usize = reply.strip_prefix("ok ").unwrap().parse().unwrap();
    let tasks = std::fs::read_dir(format!("/proc/{}/task", t.pid()))
        .unwrap()
        .count();
    assert!(count >= 4 && tasks >= 4, "{reply}, {tasks} tasks");

    assert!(t.command("frobnicate").starts_with("error "));
}

fn read_target_memory(pid: i32, addr: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    f.seek(SeekFrom::Start(addr)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn dropping_a_target_kills_it() {
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let pid = t.pid();
    let socket = t.socket_path();
    drop(t);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still there"
    );
    assert!(!socket.exists());
}

#[test]
fn eof_on_stdin_ends_the_console_target() {
    let mut t = Target::start_with(
        Fixture::Console,
        Runtime::Net10,
        StartOptions {
            wait_for_socket: false,
            ..StartOptions::default()
        },
    );
    assert_eq!(t.close_stdin_and_wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn target_can_run_as_another_user() {
    let mut t = Target::start_with(
        Fixture::Console,
        Runtime::Net8,
        StartOptions {
            run_as: Some((65534, 65534)),
            ..StartOptions::default()
        },
    );
    assert_eq!(t.command("ping"), "pong");
    let status = std::fs::read_to_string(format!("/proc/{}/status", t.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("65534"),
        "{uid_line}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(t.socket_path()).unwrap().uid(), 65534);
}

#[test]
fn extra_environment_reaches_the_target() {
    // DOTNET_EnableDiagnostics=0 turns the diagnostics socket off: proof the variable arrived.
    let mut t = Target::start_with(
        Fixture::Console,
        Runtime::Net10,
        StartOptions {
            env: vec![("DOTNET_EnableDiagnostics".into(), "0".into())],
            wait_for_socket: false,
            ..StartOptions::default()
        },
    );
    assert_eq!(t.command("ping"), "pong");
    assert!(!t.socket_path().exists());
}
