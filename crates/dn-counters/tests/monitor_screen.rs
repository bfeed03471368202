//! The live monitor in a real terminal (tmux): rows and values, in-place updates, resize,
//! scrolling, pause/resume, quitting with `q`, and a sane terminal afterwards.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bin;
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

/// A private tmux server (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(cmd: &str, width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: format!("dn-counters-test-{}", std::process::id()),
        };
        let st = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "m",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                cmd,
            ])
            .status()
            .expect("tmux is required for this test (apt-get install tmux)");
        assert!(st.success());
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn capture(&self) -> Vec<String> {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "m"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "m"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    /// Captures until `pred` holds (10 s at most) and returns the screen.
    fn wait(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {what}:\n{}", s.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// Runs `monitor -p PID` in a shell that then prints its exit code and the terminal's settings.
fn monitor_then_report(pid: i32) -> String {
    format!(
        "{} monitor -p {pid}; echo EXIT:$?; sleep 2; stty -a; sleep 60",
        bin().display()
    )
}

/// Presses `key`, then checks the monitor exited with 0, left its last screen of values above
/// the shell's next line (as dotnet-counters does), and left the terminal in cooked mode with
/// echo.
fn quit_cleanly_with(tmux: &Tmux, key: &str) {
    tmux.keys(&[key]);
    let s = tmux.wait("the exit line", |s| {
        s.iter().any(|l| l.starts_with("EXIT:"))
    });
    let exit = s.iter().position(|l| l.starts_with("EXIT:")).unwrap();
    let above = s[..exit].join("\n");
    assert!(s[exit].contains("EXIT:0"), "{}", s.join("\n"));
    assert!(
        above.contains("Current Value") && above.contains("    dotnet."),
        "the last values are gone:\n{}",
        s.join("\n")
    );
    let s = tmux.wait("stty's report", |s| s.iter().any(|l| l.contains("icanon")));
    let text = s.join("\n");
    assert!(
        text.contains(" icanon") && text.contains(" echo "),
        "terminal left raw:\n{text}"
    );
}

fn row<'a>(screen: &'a [String], name: &str) -> Option<&'a String> {
    screen.iter().find(|l| l.trim_start().starts_with(name))
}

#[test]
#[serial]
fn monitor_screen_in_tmux() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    let cmd = monitor_then_report(target.pid());
    // Tall enough for every System.Runtime row of .NET 10 (42 with the tag tables).
    let tmux = Tmux::new(&cmd, 120, 60);
    let alloc = "dotnet.gc.heap.total_allocated";
    let s = tmux.wait("Running with rows", |s| {
        s.iter().any(|l| l.contains("Status: Running"))
            && row(s, alloc).is_some()
            && row(s, "dotnet.timer.count").is_some()
            && !s[1].contains("rows 1-")
    });
    assert_eq!(s[0], "Press p to pause, r to resume, q to quit.");
    assert!(
        s[3].starts_with("Name") && s[3].ends_with("Current Value"),
        "{}",
        s[3]
    );
    assert_eq!(s[3].len(), 120);
    assert_eq!(s[4], "[System.Runtime]");
    let ws = row(&s, "dotnet.process.memory.working_set ")
        .unwrap_or_else(|| panic!("working set row in\n{}", s.join("\n")));
    assert_eq!(ws.len(), 120, "value right-aligned at the edge: {ws:?}");
    assert!(ws.ends_with(" MiB"), "{ws}");
    let gen = s
        .iter()
        .position(|l| l.trim() == "gc.heap.generation")
        .expect("tag header row");
    assert!(s[gen + 1].trim().starts_with("----"));
    let before = row(&s, alloc).unwrap().clone();

    // Values change in place.
    target.command("alloc-mb 16");
    tmux.wait("a new allocation total", |s| {
        row(s, alloc).is_some_and(|r| *r != before)
    });

    // Pause and resume.
    tmux.keys(&["p"]);
    tmux.wait("Paused", |s| s[1].contains("Status: Paused"));
    tmux.keys(&["r"]);
    tmux.wait("Running again", |s| s[1].contains("Status: Running"));

    // Smaller terminal: lines fit, rows beyond the screen scroll.
    assert!(tmux
        .cmd(&["resize-window", "-t", "m", "-x", "80", "-y", "15"])
        .status()
        .unwrap()
        .success());
    let s = tmux.wait("the 80x15 layout", |s| {
        s.get(3).is_some_and(|l| l.len() == 80) && s[1].contains("rows 1-")
    });
    assert!(s.iter().all(|l| l.chars().count() <= 80));
    assert_eq!(s.len().min(15), s.len());
    let first_body = s[4].clone();
    tmux.keys(&["Down"]);
    tmux.wait("scrolled by one row", |s| {
        s[1].contains("rows 2-") && s[4] != first_body
    });

    // q ends it, exit code 0, terminal back to cooked mode with echo.
    quit_cleanly_with(&tmux, "q");
}

/// Pids of dn-counters processes monitoring `target`.
fn monitors_of(target: i32) -> Vec<i32> {
    let needle = format!("monitor\0-p\0{target}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Closing the terminal under a running monitor (SIGHUP, stdin at EOF) ends it, and its
/// session with it.
#[test]
#[serial]
fn monitor_exits_when_its_terminal_goes_away() {
    let target = Target::start(Fixture::Console, Runtime::Net8);
    let cmd = format!("{} monitor -p {}", bin().display(), target.pid());
    let tmux = Tmux::new(&cmd, 100, 30);
    tmux.wait("Running", |s| {
        s.iter().any(|l| l.contains("Status: Running"))
    });
    let pids = monitors_of(target.pid());
    assert_eq!(pids.len(), 1);
    drop(tmux);
    let deadline = Instant::now() + Duration::from_secs(8);
    while !monitors_of(target.pid()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "dn-counters {pids:?} still running without a terminal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C in the live screen (raw mode: a key, not a signal) quits like `q`: exit code 0, the
/// terminal restored, and the session in the target gone.
#[test]
#[serial]
fn ctrl_c_quits_cleanly_and_ends_the_session() {
    let target = Target::start(Fixture::Console, Runtime::Net9);
    let pid = target.pid();
    let eventpipe_threads = || common::eventpipe_threads(pid);
    let before = eventpipe_threads();
    let tmux = Tmux::new(&monitor_then_report(pid), 100, 30);
    tmux.wait("Running", |s| {
        s.iter().any(|l| l.contains("Status: Running"))
    });
    assert_eq!(eventpipe_threads(), before + 1);
    quit_cleanly_with(&tmux, "C-c");
    assert_eq!(
        eventpipe_threads(),
        before,
        "session still streaming after exit"
    );
}
