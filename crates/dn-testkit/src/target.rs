//! A running fixture process, killed with its whole process group when dropped.

use crate::builder::{build, Built};
use crate::runtime::{Fixture, Runtime};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a target.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Extra environment variables (applied last, so they can override the harness's).
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments for the program.
    pub args: Vec<String>,
    /// Run as this (uid, gid) through `setpriv`.
    pub run_as: Option<(u32, u32)>,
    /// Wait for the diagnostics socket before returning from start.
    pub wait_for_socket: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            env: Vec::new(),
            args: Vec::new(),
            run_as: None,
            wait_for_socket: true,
        }
    }
}

/// Output captured from the target, for failure messages.
type Captured = Arc<Mutex<String>>;

/// A running fixture.
pub struct Target {
    child: Child,
    fixture: Fixture,
    runtime: Runtime,
    built: Built,
    stdin: Option<ChildStdin>,
    replies: Option<Receiver<String>>,
    stdout_log: Captured,
    stderr_log: Captured,
    socket: Option<PathBuf>,
    port: Option<u16>,
}

impl Target {
    /// Builds (if needed) and starts `fixture` on `rt`; panics with a clear message on failure.
    pub fn start(fixture: Fixture, rt: Runtime) -> Target {
        Target::start_with(fixture, rt, StartOptions::default())
    }

    /// Like [`Target::start`], with options.
    pub fn start_with(fixture: Fixture, rt: Runtime, opts: StartOptions) -> Target {
        let built = match build(fixture, rt) {
            Ok(b) => b,
            Err(e) => panic!("cannot build {} for {}: {e:#}", fixture.name(), rt.label()),
        };
        let built = match opts.run_as {
            Some((uid, _)) => accessible_to_others(&built, uid),
            None => built,
        };
        let port = fixture.is_web().then(free_port);
        let mut cmd = match opts.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&built.program);
                c
            }
            None => Command::new(&built.program),
        };
        cmd.args(&built.args)
            .args(&opts.args)
            // The runtime puts its diagnostics socket in $TMPDIR; tests look in /tmp.
            .env("TMPDIR", "/tmp")
            // Both fixtures exit when stdin closes, so a crashed test leaves nothing behind.
            .env("DN_EXIT_ON_STDIN_EOF", "1")
            .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so drop can kill everything the target started.
            .process_group(0);
        if let Some(port) = port {
            cmd.env("ASPNETCORE_URLS", format!("http://127.0.0.1:{port}"));
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start {} ({}) for {}: {e}",
                fixture.name(),
                built.program.display(),
                rt.label()
            ),
        };
        let stdout_log: Captured = Arc::default();
        let stderr_log: Captured = Arc::default();
        let stderr = child.stderr.take().expect("piped stderr");
        drain_into(stderr, stderr_log.clone());
        let stdout = child.stdout.take().expect("piped stdout");
        let replies = if fixture.is_web() {
            drain_into(stdout, stdout_log.clone());
            None
        } else {
            Some(forward_lines(stdout, stdout_log.clone()))
        };
        let mut target = Target {
            stdin: child.stdin.take(),
            child,
            fixture,
            runtime: rt,
            built,
            replies,
            stdout_log,
            stderr_log,
            socket: None,
            port,
        };
        if fixture.is_web() {
            target.wait_for_http();
        } else {
            target.wait_for_ready();
        }
        if opts.wait_for_socket {
            target.socket = Some(target.wait_for_socket());
        }
        target
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn fixture(&self) -> Fixture {
        self.fixture
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    pub fn built(&self) -> &Built {
        &self.built
    }

    /// The target's diagnostics socket `/tmp/dotnet-diagnostic-<pid>-<key>-socket`.
    pub fn socket_path(&self) -> PathBuf {
        if let Some(s) = &self.socket {
            return s.clone();
        }
        find_socket(self.pid()).unwrap_or_else(|| {
            let key = start_time_ticks(self.pid()).unwrap_or(0);
            PathBuf::from(format!(
                "/tmp/dotnet-diagnostic-{}-{key}-socket",
                self.pid()
            ))
        })
    }

    /// Console fixture: sends one command line and returns the one-line reply.
    pub fn command(&mut self, line: &str) -> String {
        let name = self.describe();
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        if let Err(e) = writeln!(stdin, "{line}").and_then(|_| stdin.flush()) {
            panic!(
                "{name}: cannot send {line:?}: {e}; {}",
                self.output_summary()
            );
        }
        let replies = self
            .replies
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: command() is for the Console fixture"));
        match replies.recv_timeout(COMMAND_TIMEOUT) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{name}: no reply to {line:?} within {} s; {}",
                COMMAND_TIMEOUT.as_secs(),
                self.output_summary()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{name}: exited before replying to {line:?}; {}",
                self.output_summary()
            ),
        }
    }

    /// SampleService: `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        let port = self
            .port
            .unwrap_or_else(|| panic!("{}: base_url() is for the web fixture", self.describe()));
        format!("http://127.0.0.1:{port}")
    }

    /// SampleService: GET `path` (e.g. "/api/diagscenario/memleak/1"), returns (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let port = self
            .port
            .unwrap_or_else(|| panic!("{}: http_get() is for the web fixture", self.describe()));
        match crate::http::get(port, path, COMMAND_TIMEOUT) {
            Ok(r) => r,
            Err(e) => panic!(
                "{}: GET {path} failed: {e}; {}",
                self.describe(),
                self.output_summary()
            ),
        }
    }

    /// Closes stdin (the fixtures exit on EOF) and waits up to `timeout` for the exit code.
    pub fn close_stdin_and_wait(&mut self, timeout: Duration) -> Option<i32> {
        self.stdin = None;
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the target to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} on {} (pid {})",
            self.fixture.name(),
            self.runtime.label(),
            self.pid()
        )
    }

    fn output_summary(&self) -> String {
        let tail = |c: &Captured| {
            let s = c.lock().map(|s| s.clone()).unwrap_or_default();
            let start = s.len().saturating_sub(2000);
            s[floor_char_boundary(&s, start)..].to_string()
        };
        format!(
            "stdout: {:?}; stderr: {:?}",
            tail(&self.stdout_log),
            tail(&self.stderr_log)
        )
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{status}")),
            _ => None,
        }
    }

    fn wait_for_ready(&mut self) {
        let name = self.describe();
        let replies = self.replies.as_ref().expect("console replies");
        match replies.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.starts_with("READY ") => {
                let reported: i32 = line[6..].trim().parse().unwrap_or(-1);
                assert_eq!(
                    reported,
                    self.pid(),
                    "{name}: READY line reports another pid"
                );
            }
            Ok(line) => panic!(
                "{name}: expected a READY line first, got {line:?}; {}",
                self.output_summary()
            ),
            Err(_) => panic!(
                "{name}: did not print READY within {} s; {}",
                START_TIMEOUT.as_secs(),
                self.output_summary()
            ),
        }
    }

    fn wait_for_http(&mut self) {
        let port = self.port.expect("web port");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if crate::http::get(port, "/", Duration::from_secs(10)).is_ok() {
                return;
            }
            if let Some(status) = self.exited() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "{}: exited ({status}) before answering HTTP; {}",
                    self.describe(),
                    self.output_summary()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: port {port} did not answer within {} s; {}",
                    self.describe(),
                    START_TIMEOUT.as_secs(),
                    self.output_summary()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_socket(&mut self) -> PathBuf {
        let deadline = Instant::now() + SOCKET_TIMEOUT;
        loop {
            if let Some(path) = find_socket(self.pid()) {
                return path;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{}: exited ({status}) before creating its diagnostics socket; {}",
                    self.describe(),
                    self.output_summary()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no /tmp/dotnet-diagnostic-{}-*-socket within {} s; {}",
                    self.describe(),
                    self.pid(),
                    SOCKET_TIMEOUT.as_secs(),
                    self.output_summary()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let pid = self.pid();
        // SAFETY: kill() has no memory effects; the group id is our child's own pid
        // (process_group(0)), and the child is not yet reaped, so the id cannot be reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // The runtime cannot remove its socket when killed; do it for it.
        if let Some(socket) = &self.socket {
            let _ = fs::remove_file(socket);
            // Nor its debugger FIFOs beside it (clr-debug-pipe-PID-KEY-in/-out).
            if let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) {
                let name = name.to_string_lossy();
                if let Some(key) = name
                    .strip_prefix("dotnet-diagnostic-")
                    .and_then(|r| r.strip_suffix("-socket"))
                {
                    for end in ["in", "out"] {
                        let _ = fs::remove_file(dir.join(format!("clr-debug-pipe-{key}-{end}")));
                    }
                }
            }
        }
    }
}

/// The largest char boundary of `s` at or before `i`, so slicing captured output never splits a
/// UTF-8 character (`str::floor_char_boundary` needs a newer Rust than the workspace minimum).
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn drain_into(mut from: impl Read + Send + 'static, into: Captured) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Ok(mut s) = into.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        }
    });
}

fn forward_lines(from: impl Read + Send + 'static, log: Captured) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if let Ok(mut s) = log.lock() {
                s.push_str(&line);
                s.push('\n');
            }
            // Other writers share the target's stdout (createdump reports progress there when
            // a dump is requested); only the fixture's own reply lines answer commands.
            if is_reply(&line) && tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Whether a stdout line is one of ConsoleTarget's replies (see fixtures/README.md).
fn is_reply(line: &str) -> bool {
    let word = line.split(' ').next().unwrap_or_default();
    matches!(
        word,
        "READY" | "pong" | "ok" | "bye" | "pattern" | "scribble" | "heartbeat" | "error"
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local addr").port()
}

/// Process start time in clock ticks (field 22 of /proc/PID/stat): the runtime's socket key.
fn start_time_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// The diagnostics socket of `pid`, preferring the one whose key matches its start time
/// (stale sockets of an earlier process with the same pid may linger).
fn find_socket(pid: i32) -> Option<PathBuf> {
    let prefix = format!("dotnet-diagnostic-{pid}-");
    let mut found: Vec<PathBuf> = fs::read_dir("/tmp")
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with("-socket")
        })
        .map(|e| e.path())
        .collect();
    if let Some(key) = start_time_ticks(pid) {
        let exact = PathBuf::from(format!("/tmp/{prefix}{key}-socket"));
        if found.contains(&exact) {
            return Some(exact);
        }
        // Only stale sockets so far: keep waiting for ours.
        return None;
    }
    found.pop()
}

/// Makes the build usable by `uid`: if a folder on the way to it is closed to others,
/// runs from a copy under /tmp instead.
fn accessible_to_others(built: &Built, uid: u32) -> Built {
    if uid == 0 || path_open_to_others(&built.dir) {
        return built.clone();
    }
    let copy = Path::new("/tmp").join(format!(
        "dn-testkit-{}",
        built.dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let key = copy
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let _lock = crate::cache::lock_entry(Path::new("/tmp"), &key)
        .unwrap_or_else(|e| panic!("cannot lock the shared copy {}: {e:#}", copy.display()));
    let stamp = fs::read_to_string(built.dir.join("stamp")).unwrap_or_default();
    if fs::read_to_string(copy.join("stamp")).ok() != Some(stamp.clone()) {
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir_all(&copy).expect("creating a shared copy of the fixture");
        let status = Command::new("cp")
            .arg("-a")
            .arg(built.out_dir())
            .arg(copy.join("out"))
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "cannot copy {} to {}",
            built.dir.display(),
            copy.display()
        );
        let _ = fs::set_permissions(&copy, fs::Permissions::from_mode(0o755));
        let _ = fs::write(copy.join("stamp"), stamp);
    }
    let relocate = |p: &Path| match p.strip_prefix(&built.dir) {
        Ok(rel) => copy.join(rel),
        Err(_) => p.to_path_buf(),
    };
    Built {
        dir: copy.clone(),
        program: relocate(&built.program),
        args: built
            .args
            .iter()
            .map(|a| relocate(Path::new(a)).into_os_string())
            .collect(),
        runtime_dir: relocate(&built.runtime_dir),
    }
}

fn path_open_to_others(path: &Path) -> bool {
    path.ancestors().all(|p| {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fixture_replies_count_as_replies() {
        assert!(is_reply("pong"));
        assert!(is_reply("ok 12"));
        assert!(is_reply("pattern 0x7f00 1048576"));
        assert!(is_reply("error unknown command: x"));
        assert!(!is_reply("[createdump] Gathering state for process 12"));
        assert!(!is_reply("Writing minidump with heap to file /tmp/x"));
        assert!(!is_reply("okay"));
    }

    #[test]
    fn start_time_is_read_from_proc_stat() {
        let me = std::process::id() as i32;
        assert!(start_time_ticks(me).is_some_and(|t| t > 0));
        assert_eq!(start_time_ticks(-5), None);
    }
}
