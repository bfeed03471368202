//! Helpers shared by the integration tests: target state checks and the
//! external readers (gdb, readelf) used as oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dn_testkit::{run_oracle, Target};

/// The stand-alone collector built from this crate (same path as `dn-dump collect`).
pub fn collector() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dn-coredump"))
}

/// Asserts no thread of `pid` is stopped or traced.
pub fn assert_running(pid: i32) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("target alive");
    for t in tasks {
        let t = t.unwrap().path();
        let stat = std::fs::read_to_string(t.join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next().unwrap_or('?'));
        assert!(
            !matches!(state, Some('T') | Some('t')),
            "thread {} of {pid} left stopped: {stat}",
            t.display()
        );
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let tracer = status
            .lines()
            .find(|l| l.starts_with("TracerPid:"))
            .unwrap_or("TracerPid: 0");
        assert_eq!(
            tracer.split_whitespace().nth(1),
            Some("0"),
            "thread {} still traced",
            t.display()
        );
    }
}

pub fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

pub fn vm_rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

pub fn exe_of(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed: {s}");
    s
}

/// `readelf -lW` and `-n` of a core: checks PT_NOTE comes first and the
/// notes every reader needs are present; returns the NT_PRSTATUS count.
pub fn check_readelf(core: &Path) -> usize {
    let l = run(Command::new("readelf").arg("-lW").arg(core));
    assert!(l.contains("Elf file type is CORE"), "{l}");
    let first = l
        .lines()
        .skip_while(|x| !x.trim_start().starts_with("Type"))
        .nth(1)
        .unwrap_or("");
    assert!(
        first.trim_start().starts_with("NOTE"),
        "first program header is not PT_NOTE: {l}"
    );
    assert!(l.contains("LOAD"), "{l}");
    let n = run(Command::new("readelf").arg("-n").arg(core));
    for note in [
        "NT_PRPSINFO",
        "NT_AUXV",
        "NT_FILE",
        "NT_PRSTATUS",
        "NT_FPREGSET",
        "NT_X86_XSTATE",
    ] {
        assert!(n.contains(note), "{note} missing: {n}");
    }
    n.matches("NT_PRSTATUS").count()
}

/// gdb's view of a core: (thread count, `bt` of the current thread, extra output).
pub fn gdb_threads_and_bt(core: &Path, exe: &Path, extra: &[String]) -> (usize, String, String) {
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx", "-c"]).arg(core).arg(exe);
    cmd.args([
        "-ex",
        "info threads",
        "-ex",
        "echo ==BT==\\n",
        "-ex",
        "bt",
        "-ex",
        "echo ==END==\\n",
    ]);
    for e in extra {
        cmd.args(["-ex", e]);
    }
    let out = run(&mut cmd);
    let threads = out
        .lines()
        .filter(|l| {
            let t = l.trim_start().trim_start_matches('*').trim_start();
            t.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
                && (t.contains("Thread 0x") || t.contains("LWP "))
        })
        .count();
    let bt = out
        .split("==BT==")
        .nth(1)
        .unwrap_or("")
        .split("==END==")
        .next()
        .unwrap_or("")
        .to_string();
    let rest = out.split("==END==").nth(1).unwrap_or("").to_string();
    (threads, bt, rest)
}

/// True if a backtrace has a frame resolved to a function name.
pub fn has_resolved_frame(bt: &str) -> bool {
    bt.lines().any(|l| {
        l.trim_start().starts_with('#')
            && l.split(" in ").nth(1).is_some_and(|f| {
                f.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
            })
    })
}

/// Parses the ConsoleTarget's `pattern 0x<addr> <len>` reply.
pub fn parse_pattern(reply: &str) -> (u64, usize) {
    let mut it = reply.split_whitespace();
    assert_eq!(it.next(), Some("pattern"), "{reply}");
    let addr = u64::from_str_radix(it.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    let len = it.next().unwrap().parse().unwrap();
    (addr, len)
}

pub fn expected_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) & 0xff) as u8).collect()
}

/// A tiny deterministic generator for test timings (no extra dependency).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A small tmpfs mounted for a test; unmounted on drop.
pub struct TmpMount(pub tempfile::TempDir);
impl TmpMount {
    pub fn new(opts: &str) -> TmpMount {
        let d = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs -o {opts} (tests run as root)");
        TmpMount(d)
    }
}
impl Drop for TmpMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// ClrMD's count of the ConsoleTarget's leaked objects in `core` (through the target's own
/// DAC), and whether ClrMD can walk the heap (false when the GC state says a GC is under way).
pub fn clrmd_leaked(target: &Target, core: &Path) -> (u64, bool) {
    let dac = target.built().runtime_dir.join("libmscordaccore.so");
    let out = run_oracle(
        "HeapOracle",
        &[
            "count",
            core.to_str().unwrap(),
            dac.to_str().unwrap(),
            "ConsoleTarget.LeakedItem",
        ],
    )
    .expect("ClrMD reads the core");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    (
        v["count"].as_u64().unwrap_or(u64::MAX),
        v["can_walk_heap"].as_bool().unwrap_or(false),
    )
}
