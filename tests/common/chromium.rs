//! Headless Chromium for page tests: the DOM after the page's scripts ran, its console
//! messages (from Chromium's log on stderr), the HTTP requests it made (through a recording
//! proxy: every request, to any host, goes to it), and screenshots.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What loading a page showed.
pub struct Loaded {
    pub dom: String,
    /// Lines Chromium logged for `console.*` calls and uncaught errors.
    pub console: Vec<String>,
    /// First lines of the HTTP requests made through the proxy, Chromium's own background
    /// requests to Google's update and time services left out.
    pub requests: Vec<String>,
}

/// The browser, or a panic saying how to install it (`.ci/run` does).
pub fn browser() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("these tests need Chromium (Debian package `chromium`; .ci/run installs it)");
}

/// Hosts Chromium itself talks to in the background (updates, network time, sign-in).
fn background(request: &str) -> bool {
    ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
        .iter()
        .any(|h| request.contains(&format!("{h}/")) || request.contains(&format!("{h}:")))
}

/// Runs headless Chromium on `page` with `extra` arguments, a fresh profile and a recording
/// proxy; returns its stdout, the console lines and the requests.
fn run(page: &Path, extra: &[String]) -> Loaded {
    let listener = TcpListener::bind("127.0.0.1:0").expect("proxy socket");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            let first = text.lines().next().unwrap_or("").to_string();
            record.lock().unwrap().push(first);
        }
    });
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let out = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    // Requests in flight when Chromium exits were accepted before it did.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let requests = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !background(r))
        .cloned()
        .collect();
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
        requests,
    }
}

/// The page's DOM once its scripts ran.
pub fn dump_dom(page: &Path) -> Loaded {
    run(page, &["--dump-dom".to_string()])
}

/// A PNG of the page, `width` x `height` CSS pixels.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> Loaded {
    let loaded = run(
        page,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_string(),
        ],
    );
    assert!(png.is_file(), "no screenshot at {}", png.display());
    loaded
}
