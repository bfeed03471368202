//! Shared helpers for dn-counters' tests: the CLI binary, a JSON Lines reader of `collect`, and
//! facts about a process read from /proc (the oracle for memory).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `dn-counters` binary of this workspace, built once per test process.
pub fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/<test> -> <target>
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let target = profile_dir.parent().expect("target dir");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "dn", "--bin", "dn-counters"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot run cargo to build dn-counters");
        assert!(status.success(), "building dn-counters failed");
        let path = profile_dir.join("dn-counters");
        assert!(path.exists(), "{} missing after the build", path.display());
        path
    })
    .clone()
}

/// `dn-counters collect -p PID --format FORMAT -o OUT`, ready for more arguments.
pub fn collect_into(pid: i32, format: &str, out: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["collect", "-p", &pid.to_string(), "--format", format, "-o"])
        .arg(out);
    c
}

/// Asserts a finished run of the tool succeeded, showing its stderr when not.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dn-counters collect --format jsonl -o -` running against a process, its lines parsed as they
/// arrive. Killed (SIGTERM, then SIGKILL) when dropped.
pub struct JsonlCollect {
    pub child: Child,
    rx: Receiver<(Instant, Value)>,
    pub started: Instant,
    pub seen: Vec<Value>,
    pub state: State,
}

/// What the samples so far add up to.
#[derive(Default, Debug)]
pub struct State {
    /// Latest sample per series (name + tags).
    pub latest: std::collections::HashMap<String, Value>,
    /// Sum of every value per counter name (for per-interval rates).
    pub sums: std::collections::HashMap<String, f64>,
}

impl State {
    fn add(&mut self, v: &Value) {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let key = format!("{name}{}", v["tags"]);
        *self.sums.entry(name).or_default() += v["value"].as_f64().unwrap_or(0.0);
        self.latest.insert(key, v.clone());
    }

    /// Latest samples of counter `name` (one per tag set).
    pub fn series(&self, name: &str) -> Vec<&Value> {
        self.latest
            .values()
            .filter(|v| v["name"].as_str() == Some(name))
            .collect()
    }

    pub fn sum_latest(&self, name: &str) -> Option<f64> {
        let s = self.series(name);
        (!s.is_empty()).then(|| s.iter().map(|v| bytes(v)).sum())
    }
}

impl JsonlCollect {
    pub fn start(args: &[&str]) -> JsonlCollect {
        let started = Instant::now();
        let mut child = Command::new(bin())
            .args(["collect", "--format", "jsonl", "-o", "-"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start dn-counters");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {e}: {line}"));
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        });
        JsonlCollect {
            child,
            rx,
            started,
            seen: Vec::new(),
            state: State::default(),
        }
    }

    /// Next sample for which `pred` holds, within `timeout`; also returns when it arrived.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, v)) => {
                    self.state.add(&v);
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some((t, v));
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Consumes samples until `f` finds what it needs in the accumulated state.
    pub fn wait_state<T>(
        &mut self,
        timeout: Duration,
        f: impl Fn(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(x) = f(&self.state) {
                return Some(x);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((_, v)) => {
                    self.state.add(&v);
                    self.seen.push(v);
                }
                Err(_) => return None,
            }
        }
    }

    /// Everything printed on stderr so far is only available after exit; this ends the tool.
    pub fn stop(&mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (st.code(), err);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            None,
            "dn-counters did not exit within 10 s of SIGTERM".into(),
        )
    }
}

impl Drop for JsonlCollect {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn name_is(v: &Value, names: &[&str]) -> bool {
    v["name"].as_str().is_some_and(|n| names.contains(&n))
}

pub fn value(v: &Value) -> f64 {
    v["value"].as_f64().expect("numeric value")
}

/// A sample's value in bytes, for memory counters in either MB (EventCounters) or bytes.
pub fn bytes(v: &Value) -> f64 {
    match v["unit"].as_str() {
        Some("MB") => value(v) * 1e6,
        _ => value(v),
    }
}

/// VmRSS of `pid` in bytes, straight from the kernel.
pub fn vm_rss(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024.0
}

pub fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Names of the threads of `pid` (comm of each task).
pub fn thread_names(pid: i32) -> Vec<String> {
    let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![];
    };
    d.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// EventPipe streaming threads of `pid`: one per live session.
pub fn eventpipe_threads(pid: i32) -> usize {
    thread_names(pid)
        .iter()
        .filter(|n| n.starts_with(".NET EventPipe"))
        .count()
}

/// Open Unix-socket connections of `pid` (inodes of its socket fds).
pub fn socket_fd_count(pid: i32) -> usize {
    let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    d.flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Microsoft's dotnet-counters, the oracle for formats and counter names (installed as a .NET
/// tool on first use).
pub fn dotnet_counters() -> PathBuf {
    dn_testkit::dotnet_tool("dotnet-counters").unwrap_or_else(|e| panic!("{e:#}"))
}

/// A dn-counters (or dotnet-counters) run whose stderr lines arrive on a channel, so a test can
/// wait for "Collecting ..." while it runs. Killed when dropped.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub stderr: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the tool");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_line(&mut self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(text);
                    self.stderr.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the exit; returns the code and everything printed on stderr.
    pub fn wait(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("no exit within {timeout:?}; stderr: {:?}", self.stderr);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.stderr.push(l);
        }
        (code, self.stderr.join("\n"))
    }

    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
