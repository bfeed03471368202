//! What `dn-counters serve --all` costs while serving 10 processes: CPU (utime+stime from
//! /proc/PID/stat) and memory (VmRSS, VmHWM) over a measured window, scraped once a second as
//! Prometheus would. Starts 10 console fixtures (.NET 8, 9 and 10), builds dn-counters in the
//! same profile as this example.
//!
//! ```sh
//! cargo run --release -p dn-counters --example serve_all_overhead [-- SECONDS]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dn_testkit::{Fixture, Runtime, Target};

fn main() {
    let window: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS"))
        .unwrap_or(60);
    let runtimes = [
        Runtime::Net8,
        Runtime::Net8,
        Runtime::Net8,
        Runtime::Net9,
        Runtime::Net9,
        Runtime::Net9,
        Runtime::Net10,
        Runtime::Net10,
        Runtime::Net10,
        Runtime::Net10,
    ];
    let targets: Vec<Target> = runtimes
        .iter()
        .map(|rt| Target::start(Fixture::Console, *rt))
        .collect();
    let mut serve = Command::new(dn_counters_binary())
        .args(["serve", "--all", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dn-counters");
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("address")
        .to_string();
    let pid = serve.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = scrape(&addr);
        if targets
            .iter()
            .all(|t| body.contains(&format!("pid=\"{}\"", t.pid())))
        {
            break;
        }
        assert!(Instant::now() < deadline, "not every target is served");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Warm-up: every session past its first intervals.
    for _ in 0..10 {
        scrape(&addr);
        std::thread::sleep(Duration::from_secs(1));
    }
    let body = scrape(&addr);
    let served: std::collections::BTreeSet<&str> = body
        .lines()
        .filter_map(|l| l.split("pid=\"").nth(1)?.split('"').next())
        .collect();
    let series = body.lines().filter(|l| !l.starts_with('#')).count();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let mut max_rss = 0;
    for _ in 0..window {
        std::thread::sleep(Duration::from_secs(1));
        scrape(&addr);
        max_rss = max_rss.max(status_kib(pid, "VmRSS:"));
    }
    let (cpu1, elapsed) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
    let cpu = cpu1 - cpu0;
    println!(
        "serve --all: {} processes served ({} series), {window} s window scraped every second",
        served.len(),
        series
    );
    println!(
        "CPU {cpu:.2} s in {elapsed:.1} s = {:.2}% of one core",
        cpu / elapsed * 100.0
    );
    println!(
        "RSS {:.1} MiB at most during the window, peak (VmHWM) {:.1} MiB",
        max_rss as f64 / 1024.0,
        status_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    let _ = serve.kill();
    let _ = serve.wait();
}

/// The dn-counters binary of this workspace, built in this example's profile.
fn dn_counters_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/examples/<example>
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let target = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "dn", "--bin", "dn-counters"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().unwrap().success(),
        "building dn-counters failed"
    );
    profile_dir.join("dn-counters")
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based) -> indexes 11 and 12.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no memory effects.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn status_kib(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
