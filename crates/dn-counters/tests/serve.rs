//! `serve`: scraped over HTTP, values checked against the process, exposition checked by
//! `promtool check metrics` (Prometheus' own linter).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, vm_rss};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

struct Serving {
    child: Child,
    addr: String,
}

impl Serving {
    fn start(pid: i32, extra: &[&str]) -> Serving {
        let mut child = Command::new(bin())
            .args(["serve", "-p", &pid.to_string(), "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
        Serving { child, addr }
    }

    fn get(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        (head.to_string(), body.to_string())
    }

    /// Scrapes until `pred` holds on the body.
    fn scrape_until(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, body) = self.get("/metrics");
            if pred(&body) || Instant::now() > deadline {
                return body;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the first series of `name` in an exposition.
fn series_value(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
}

fn serve_console(rt: Runtime) {
    let target = Target::start(Fixture::Console, rt);
    let pid = target.pid();
    let s = Serving::start(pid, &[]);
    let ws_name = if rt.major() >= 9 {
        "dotnet_system_runtime_process_memory_working_set_bytes"
    } else {
        "dotnet_system_runtime_working_set_bytes"
    };
    let first = s.scrape_until(|b| b.contains(ws_name));
    assert!(first.contains(ws_name), "no {ws_name} within 15 s: {first}");
    // After a refresh interval (1 s) and a bit, the served sample is newer than this read.
    let rss_before = vm_rss(pid);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let body = s.scrape_until(|b| b.contains(ws_name));
    let (head, _) = s.get("/metrics");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains(&format!("{{pid=\"{pid}\"")), "{body}");
    let ws = series_value(&body, ws_name).unwrap_or_else(|| panic!("{ws_name} in {body}"));
    // The runtime read its RSS between our two reads; it trails the kernel's VmRSS by a few
    // percent (see console_counters.rs): 10% either side.
    let rss_after = vm_rss(pid);
    let (lo, hi) = (rss_before.min(rss_after), rss_before.max(rss_after));
    assert!(
        ws >= lo * 0.90 && ws <= hi * 1.10,
        "{ws} outside VmRSS {rss_before}..{rss_after}"
    );
    if rt.major() < 9 {
        assert!(
            body.contains("dotnet_system_runtime_gc_heap_size_bytes{pid="),
            "{body}"
        );
    }
    promtool_check(&body);
    let (head, _) = s.get("/nope");
    assert!(head.contains("404"));
}

#[test]
#[serial]
fn serve_console_net8() {
    serve_console(Runtime::Net8);
}

#[test]
#[serial]
fn serve_console_net10() {
    serve_console(Runtime::Net10);
}

/// ASP.NET Core: request counting and the request-duration histogram as a summary.
#[test]
#[serial]
fn serve_sample_service_net9() {
    let target = Target::start(Fixture::SampleService, Runtime::Net9);
    let s = Serving::start(
        target.pid(),
        &["--counters", "System.Runtime,Microsoft.AspNetCore.Hosting"],
    );
    let body = s.scrape_until(|b| {
        target.http_get("/api/diagscenario/memleak/10");
        b.contains("quantile=")
    });
    assert!(
        body.contains(
            "dotnet_microsoft_asp_net_core_hosting_http_server_request_duration_seconds{"
        ),
        "{body}"
    );
    assert!(body.contains(
        "# TYPE dotnet_microsoft_asp_net_core_hosting_http_server_request_duration_seconds summary"
    ));
    assert!(
        body.contains("http_route=\"/api/diagscenario/memleak/{kb:int}\""),
        "{body}"
    );
    promtool_check(&body);
}

/// The target exits while served: the values were there until then, and serve ends cleanly
/// saying so.
#[test]
#[serial]
fn serve_ends_when_the_target_exits() {
    let mut target = Target::start(Fixture::Console, Runtime::Net8);
    let mut s = Serving::start(target.pid(), &[]);
    let body = s.scrape_until(|b| b.contains("dotnet_system_runtime_gc_heap_size_bytes{"));
    assert!(
        body.contains("dotnet_system_runtime_gc_heap_size_bytes{"),
        "{body}"
    );
    assert!(target
        .close_stdin_and_wait(Duration::from_secs(20))
        .is_some());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "serve still running after the target exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
