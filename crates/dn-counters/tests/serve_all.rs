//! `serve --all` scraped by a real Prometheus server: every fixture process is there with its
//! labels and GC heap size, a process started later appears, a killed one disappears, a process
//! that never answers does not break the endpoint, and `promtool check metrics` accepts the text.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;
use serial_test::serial;

/// GC heap size: the EventCounter before .NET 9, the Meter's per-generation sizes from 9 on.
const HEAP: &str = r#"{__name__=~"dotnet_system_runtime_gc_heap_size_bytes|dotnet_system_runtime_gc_last_collection_heap_size_bytes"}"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: &str, path: &str) -> String {
    let (head, body) = http_try(addr, path).unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    assert!(head.contains(" 200 "), "{head}");
    body
}

fn http_try(addr: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Ok((head.to_string(), body.to_string()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `dn-counters serve --all` on a loopback port.
struct ServeAll {
    child: Child,
    addr: String,
    /// Where its stderr goes.
    log: tempfile::NamedTempFile,
}

impl ServeAll {
    fn start() -> ServeAll {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(bin())
            .args(["serve", "--all", "--listen", "127.0.0.1:0"])
            .args(["--discover-interval", "2"])
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        ServeAll { child, addr, log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }
}

impl Drop for ServeAll {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus server scraping one target every second, its data in a temporary folder.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: dn\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Prometheus server is required for this test (apt-get install prometheus)");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_try(&p.addr, "/-/ready").is_ok_and(|(h, _)| h.contains(" 200 ")) {
            assert!(Instant::now() < deadline, "Prometheus did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<Value> {
        let body = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", percent_encode(q)),
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// pid -> labels of the series matching `q` (one entry per pid).
    fn pids(&self, q: &str) -> std::collections::BTreeMap<String, Value> {
        self.query(q)
            .into_iter()
            .map(|r| (r["metric"]["pid"].as_str().unwrap_or("").to_string(), r))
            .collect()
    }

    fn wait_until(
        &self,
        what: &str,
        q: &str,
        pred: impl Fn(&std::collections::BTreeMap<String, Value>) -> bool,
    ) -> std::collections::BTreeMap<String, Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.pids(q);
            if pred(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "{what}: {got:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process that looks like a .NET runtime to discovery (a socket named for its pid and start
/// time) but never answers: attaching to it fails, and must fail alone.
struct Mute {
    child: Child,
    socket: std::path::PathBuf,
    _listener: UnixListener,
}

impl Mute {
    fn start() -> Mute {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let start = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(19)
            .unwrap()
            .to_string();
        let socket =
            std::path::PathBuf::from(format!("/tmp/dotnet-diagnostic-{pid}-{start}-socket"));
        let listener = UnixListener::bind(&socket).unwrap();
        Mute {
            child,
            socket,
            _listener: listener,
        }
    }
}

impl Drop for Mute {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn promtool_check(body: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required for this test (apt-get install prometheus)");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[serial]
fn prometheus_scrapes_every_process() {
    let mute = Mute::start();
    let mut targets: Vec<Target> = [Runtime::Net8, Runtime::Net9, Runtime::Net10]
        .into_iter()
        .map(|rt| Target::start(Fixture::Console, rt))
        .collect();
    for t in &mut targets {
        assert_eq!(t.command("gc"), "ok");
    }
    let serve = ServeAll::start();
    let prom = Prometheus::start(&serve.addr);
    let per_pid = format!("max by (pid, process, runtime_version) ({HEAP})");
    let pid_of = |t: &Target| t.pid().to_string();
    let got = prom.wait_until("the three processes' GC heap sizes", &per_pid, |got| {
        targets.iter().all(|t| got.contains_key(&pid_of(t)))
    });
    for t in &targets {
        let r = &got[&pid_of(t)];
        let version = r["metric"]["runtime_version"].as_str().unwrap();
        assert!(
            version.starts_with(&format!("{}.", t.runtime().major())),
            "{}: runtime_version {version}",
            t.runtime().label()
        );
        assert!(!r["metric"]["process"].as_str().unwrap().is_empty());
        let heap: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        assert!(heap > 0.0, "{}: heap {heap}", t.runtime().label());
    }
    // The mute process never answered: reported, and everything else is served.
    assert!(!got.contains_key(&mute.child.id().to_string()));
    promtool_check(&http_get(&serve.addr, "/metrics"));

    // A fourth process started now shows up within the discover interval (plus a scrape).
    let mut late = Target::start(Fixture::Console, Runtime::Net11);
    assert_eq!(late.command("gc"), "ok");
    let late_pid = pid_of(&late);
    prom.wait_until("the process started later", &per_pid, |got| {
        got.contains_key(&late_pid)
    });

    // A killed process drops out: its series are gone at the next scrape.
    let killed = targets.remove(1);
    let killed_pid = pid_of(&killed);
    drop(killed);
    let got = prom.wait_until("the killed process gone", &per_pid, |got| {
        !got.contains_key(&killed_pid)
    });
    for t in targets.iter().chain([&late]) {
        assert!(got.contains_key(&pid_of(t)), "{} lost", t.runtime().label());
    }
    let body = http_get(&serve.addr, "/metrics");
    assert!(!body.contains(&format!("pid=\"{killed_pid}\"")));
    promtool_check(&body);

    // The mute process is reported once (its attach times out), not at every discovery.
    let line = format!("Warning: process {} is not watched", mute.child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve.stderr().contains(&line) {
        assert!(
            Instant::now() < deadline,
            "not reported: {}",
            serve.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        serve.stderr().matches(&line).count(),
        1,
        "{}",
        serve.stderr()
    );
}

/// A runtime in its own PID namespace (a container without the container engine: `unshare`),
/// found through /proc/PID/root and labelled with its container id (here the namespace's, as
/// there is no engine's id in its cgroup).
#[test]
#[serial]
fn process_in_another_pid_namespace_is_labelled() {
    let built = dn_testkit::build(Fixture::Console, Runtime::Net8).expect("fixture builds");
    let mut outer = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
        ])
        .arg(&built.program)
        .args(&built.args)
        .env("TMPDIR", "/tmp")
        .env("DN_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) is required for this test");
    let mut ready = String::new();
    BufReader::new(outer.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(
        ready.trim(),
        "READY 1",
        "the app is pid 1 of its namespace (user namespaces must be enabled)"
    );
    let upid = outer.id();
    let children = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children")).unwrap();
    let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let inode = ns
        .to_string_lossy()
        .trim_start_matches("pid:[")
        .trim_end_matches(']')
        .to_string();

    let serve = ServeAll::start();
    let want = format!(
        "{{pid=\"{pid}\",process=\"ConsoleTarget\",runtime_version=\"8.0.31\",container_id=\"pidns-{inode}\"}}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = http_get(&serve.addr, "/metrics");
        if body.contains(&format!("dotnet_system_runtime_gc_heap_size_bytes{want}")) {
            break body;
        }
        assert!(Instant::now() < deadline, "no {want} in:\n{body}");
        std::thread::sleep(Duration::from_millis(250));
    };
    promtool_check(&body);
    // The socket and debugger pipes the runtime (pid 1 inside) leaves behind when killed.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let key = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    // SAFETY: kill(2) on the namespace's init (the app), which takes the namespace down.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = outer.kill();
    let _ = outer.wait();
    let _ = std::fs::remove_file(format!("/tmp/dotnet-diagnostic-1-{key}-socket"));
    for end in ["in", "out"] {
        let _ = std::fs::remove_file(format!("/tmp/clr-debug-pipe-1-{key}-{end}"));
    }
}
