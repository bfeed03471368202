//! The diagnostics IPC client against real runtimes: what they really answer.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use dn_core::ipc::process::{process_environment, process_info, resume_runtime};
use dn_core::ipc::protocol::Command as IpcCommand;
use dn_core::ipc::reverse::ReversePort;
use dn_core::ipc::{DiagnosticsClient, IpcError};
use dn_testkit::{Fixture, Runtime, StartOptions, Target};

#[test]
fn process_info_on_every_runtime() {
    for rt in Runtime::MAIN {
        let t = Target::start(Fixture::Console, rt);
        let client = DiagnosticsClient::for_pid(t.pid()).expect("socket found");
        let info = process_info(&client).unwrap_or_else(|e| panic!("{rt:?}: {e}"));
        assert_eq!(info.process_id, t.pid() as u64);
        assert_eq!(info.runtime_major(), Some(rt.major()), "{info:?}");
        assert_eq!(info.os, "Linux");
        assert_eq!(info.arch, "x64");
        assert_eq!(info.entrypoint_assembly.as_deref(), Some("ConsoleTarget"));
        assert_eq!(info.runtime_identifier.as_deref(), Some("linux-x64"));
        assert!(
            info.command_line.contains("ConsoleTarget"),
            "{}",
            info.command_line
        );
        assert_eq!(info.runtime_cookie.len(), 36, "{}", info.runtime_cookie);
        // The cookie identifies the runtime instance: stable across requests.
        assert_eq!(
            process_info(&client).unwrap().runtime_cookie,
            info.runtime_cookie
        );
    }
}

#[test]
fn netcore31_has_no_process_commands_and_says_so() {
    let t = Target::start(Fixture::Console, Runtime::NetCore31);
    let client = DiagnosticsClient::for_pid(t.pid()).unwrap();
    let e = process_info(&client).unwrap_err();
    assert!(e.is_unknown_command(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("ProcessInfo") && text.contains("0x80131385"),
        "{text}"
    );
}

#[test]
fn environment_and_resume() {
    let t = Target::start_with(
        Fixture::Console,
        Runtime::Net10,
        StartOptions {
            env: vec![("DN_MARKER".into(), "a=b c".into())],
            ..Default::default()
        },
    );
    let client = DiagnosticsClient::for_pid(t.pid()).unwrap();
    let env = process_environment(&client).expect("ProcessEnvironment");
    assert!(
        env.iter().any(|(k, v)| k == "DN_MARKER" && v == "a=b c"),
        "{env:?}"
    );
    assert!(env.iter().any(|(k, _)| k == "PATH"));
    // Not suspended: a no-op that still answers OK.
    resume_runtime(&client).expect("ResumeRuntime");
}

#[test]
fn an_unknown_command_is_an_error_naming_it() {
    let t = Target::start(Fixture::Console, Runtime::Net8);
    let client = DiagnosticsClient::for_pid(t.pid()).unwrap();
    let bogus = IpcCommand {
        set: 0x04,
        id: 0x7F,
        name: "Bogus",
    };
    match client.request(bogus, &[]) {
        Err(IpcError::Runtime {
            command, hresult, ..
        }) => {
            assert_eq!((command, hresult), ("Bogus", 0x8013_1385));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the runtime accepted a bogus command"),
    }
}

#[test]
fn a_dead_socket_is_a_clear_stale_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dotnet-diagnostic-1-1-socket");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let e = process_info(&DiagnosticsClient::new(&path)).unwrap_err();
    assert!(e.is_stale(), "{e}");
    assert!(e.to_string().contains("stale socket"), "{e}");
}

#[test]
fn a_reverse_port_sees_a_suspended_runtime_and_resumes_it() {
    let built = dn_testkit::build(Fixture::Console, Runtime::Net10).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reverse.sock");
    let mut port = ReversePort::bind(&path).unwrap();
    let mut child = Command::new(&built.program)
        .args(&built.args)
        .env("DOTNET_DiagnosticPorts", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    port.expect_pid(child.id() as u64);
    // Suspended at startup: ProcessInfo works before Main runs.
    let info = process_info(&port).expect("ProcessInfo over the reverse port");
    assert_eq!(info.process_id, child.id() as u64);
    let (adv, _) = port
        .accept(Duration::from_secs(10))
        .expect("the runtime re-advertises");
    assert_eq!(adv.pid, child.id() as u64);
    resume_runtime(&port).expect("ResumeRuntime");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        line.trim(),
        format!("READY {}", child.id()),
        "Main ran after the resume"
    );
}
